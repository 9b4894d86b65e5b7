"""The experiment runner: search hyperparameters of the NumPy network in parallel, log, select, test."""
