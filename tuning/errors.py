"""The one exception type for bad input from the user."""


class UserError(Exception):
    """Bad input (config, data, folder, model file): the CLI prints the message on one line and exits 2."""
