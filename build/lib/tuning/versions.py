"""The Python and package versions a result depends on (best.json records them; Dask workers must match)."""

from __future__ import annotations

import platform
from importlib.metadata import version

REPORTED = ("numpy", "scikit-learn", "pandas", "joblib")  # what best.json records
MUST_MATCH = ("numpy",)  # what a Dask cluster must share with this process: NumPy's kernels decide the bits


def package_versions(packages: tuple[str, ...] = REPORTED) -> dict[str, str]:
    """{"python": ..., package: version, ...}, read from the installed metadata (nothing is imported)."""
    return {"python": platform.python_version(), **{name: version(name) for name in packages}}


def cluster_environment() -> dict[str, str]:
    """The versions that must match between this process and a Dask cluster (run there by `client.run`)."""
    return package_versions(MUST_MATCH)
