"""Shared fixtures; the helpers they use live in tests/helpers.py."""

from __future__ import annotations

import pytest

from tests.helpers import QUICK, make_mnist_folder


@pytest.fixture
def quick_overrides() -> list[str]:
    return list(QUICK)


@pytest.fixture
def mnist_folder(tmp_path):
    return make_mnist_folder(tmp_path / "mnist")
