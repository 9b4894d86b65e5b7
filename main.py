"""`python main.py [run|report|predict] ...`: the command line of the experiment runner (see --help)."""

import sys

from tuning.cli import main

if __name__ == "__main__":
    sys.exit(main())
