"""`python main.py [run|report|predict] ...`: the command line of the experiment runner (see --help)."""

import time

STARTED = time.perf_counter()  # the process's start as `--timings` counts it (before any of our imports)

import os  # noqa: E402
import sys  # noqa: E402

from tuning.cli import main  # noqa: E402


def end(code: int) -> None:
    """Exit with `code` once the output is flushed, without tearing the interpreter down: every file is
    written and closed and the workers are gone by now, and clearing the modules of numpy, pandas,
    matplotlib and scikit-learn object by object would add a few tenths of a second to every command."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # `... | head` closed our stdout: nothing more to say
        pass
    if "multiprocessing.util" in sys.modules:  # the workers' queues' semaphores: unlinked and unregistered, or
        sys.modules["multiprocessing.util"]._run_finalizers()  # loky's tracker warns of "leaked semlock objects"
    os._exit(code)


if __name__ == "__main__":
    end(main(started=STARTED))
