"""Writing files so that a reader sees the old one or the whole new one, and failures name the file."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def naming(path: Path) -> Iterator[None]:
    """Give an OSError raised inside the block (a write on a full disk carries no file name) the name `path`."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise


@contextlib.contextmanager
def atomic_open(path: Path, mode: str = "w", fsync: bool = False) -> Iterator[IO]:
    """Write `path` through a temporary file renamed into place: readers see the old file or the whole new one.

    On an error (a full disk, a read-only folder) the temporary file is removed and `path` is left as it was.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    text = "b" not in mode
    try:
        with naming(path), open(tmp, mode, **({"encoding": "utf-8", "newline": ""} if text else {})) as f:
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        with naming(path):
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    """Write a whole text file atomically."""
    with atomic_open(path) as f:
        f.write(text)
