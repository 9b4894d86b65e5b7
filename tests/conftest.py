"""Shared fixtures, and the order test files run in; the helpers they use live in tests/helpers.py."""

from __future__ import annotations

import pytest

from tests.helpers import QUICK, make_mnist_folder


@pytest.fixture
def quick_overrides() -> list[str]:
    return list(QUICK)


@pytest.fixture
def mnist_folder(tmp_path):
    return make_mnist_folder(tmp_path / "mnist")


# Test files that take longest (seconds on 2 cores), run first: xdist hands whole files to whichever worker is
# free, so a long file started last would keep one worker busy while the other has nothing left to do.
LONGEST_FIRST = ("tests/test_cli.py", "tests/tuning/test_parallel.py", "tests/tuning/test_faults.py",
                 "tests/tuning/test_plots.py", "tests/test_notebook.py", "tests/tuning/test_report.py",
                 "tests/tuning/test_workers.py", "tests/test_api.py", "tests/tuning/test_halving.py",
                 "tests/tuning/test_tables.py", "tests/framework/test_batchnorm.py", "tests/test_readme.py")


def pytest_collection_modifyitems(items: list) -> None:
    rank = {path: k for k, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # stable: the rest as collected
