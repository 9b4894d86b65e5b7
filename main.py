"""`python main.py [run|report|predict] ...`: the command line of the experiment runner (see --help)."""

import time

STARTED = time.perf_counter()  # the process's start as `--timings` counts it (before any of our imports)

import sys  # noqa: E402

from tuning.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(started=STARTED))
