"""Read .npy streams and .npz archives without trusting them: every size is checked before it is allocated.

`np.load` allocates whatever a header declares (a few bytes of header can declare a terabyte),
and a zip member can inflate far beyond its stored bytes. Here an array's declared size must
equal the bytes that hold it, a member's size what its compressed bytes can give, and nothing
is ever unpickled. Every failure is an `ArchiveError` (a ValueError) naming the entry.
"""

from __future__ import annotations

import math
import os
import struct
import tokenize
import zipfile
import zlib

import numpy as np

# Deflate expands at most about 1032:1 (RFC 1951's longest match per 2-bit code), so a member
# declaring more than that is a zip bomb or damage. Tiny members compress poorly: allow some slack.
DEFLATE_MAX_RATIO = 1032
DEFLATE_SLACK = 1024
_KINDS = {"b": "booleans", "i": "integers", "u": "integers", "f": "floats", "U": "text"}
# What the standard library and NumPy raise on damaged zip or .npy bytes.
# NumPy parses a .npy header with ast.literal_eval, and a damaged one with tokenize: both fail their own ways.
_READ_ERRORS = (OSError, EOFError, ValueError, TypeError, SyntaxError, tokenize.TokenError, zipfile.BadZipFile,
                zipfile.LargeZipFile, zlib.error, struct.error, NotImplementedError, RuntimeError)


class ArchiveError(ValueError):
    """A .npy or .npz that is damaged, hostile or not what was expected."""


def read_header(fp, name: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """The (shape, fortran_order, dtype) of the .npy stream `fp`, which is left just after the header."""
    try:
        version = np.lib.format.read_magic(fp)
        if version not in ((1, 0), (2, 0)):  # 3.0 only adds UTF-8 field names: structured arrays, never ours
            raise ArchiveError(f"{name}: .npy format version {version} is not read here")
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(fp)
    except ArchiveError:
        raise
    except _READ_ERRORS as exc:
        raise ArchiveError(f"{name}: {exc}") from None
    if not all(0 <= d < 2**62 for d in shape):
        raise ArchiveError(f"{name}: impossible shape {shape}")
    return shape, fortran, dtype


def check_dtype(dtype: np.dtype, name: str, kinds: str) -> None:
    """Refuse a dtype outside `kinds` (numpy kind letters); object arrays are never unpickled."""
    if dtype.hasobject:
        raise ArchiveError(f"{name} holds Python objects, which are never unpickled (allow_pickle=False)")
    if dtype.kind not in kinds or dtype.fields is not None or dtype.subdtype is not None:
        expected = " or ".join(dict.fromkeys(_KINDS[k] for k in kinds))
        raise ArchiveError(f"{name} holds {dtype}; expected {expected}")


def read_npy(fp, size: int, name: str, kinds: str) -> np.ndarray:
    """The array in the .npy stream `fp` of `size` bytes, its header checked against those bytes before reading."""
    shape, fortran, dtype = read_header(fp, name)
    check_dtype(dtype, name, kinds)
    nbytes = math.prod(shape) * dtype.itemsize
    try:
        held = size - fp.tell()
        if nbytes != held:
            raise ArchiveError(f"{name} declares shape {shape} of {dtype} ({nbytes:,} bytes) but holds {held:,}")
        if nbytes == 0:
            return np.zeros(shape, dtype=dtype)
        data = fp.read(nbytes)
    except ArchiveError:
        raise
    except _READ_ERRORS as exc:
        raise ArchiveError(f"{name}: {exc}") from None
    if len(data) != nbytes:
        raise ArchiveError(f"{name} is truncated: {len(data):,} of {nbytes:,} bytes")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")


class ArrayArchive:
    """The arrays of a .npz (a zip of .npy members) by name, each read only when asked for."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = path
        try:
            self._length = os.path.getsize(path)
            self._zip = zipfile.ZipFile(path)
        except _READ_ERRORS as exc:
            raise ArchiveError(str(exc)) from None
        self._members = {info.filename[:-4]: info for info in self._zip.infolist() if info.filename.endswith(".npy")}

    def __enter__(self) -> ArrayArchive:
        return self

    def __exit__(self, *exc) -> None:
        self._zip.close()

    def __contains__(self, name: str) -> bool:
        return name in self._members

    def header(self, name: str) -> tuple[tuple[int, ...], np.dtype]:
        """The shape and dtype member `name` declares, read from its header alone."""
        with self._open(name) as fp:
            shape, _, dtype = read_header(fp, name)
        return shape, dtype

    def read(self, name: str, kinds: str) -> np.ndarray:
        """Member `name` as an array whose dtype kind is in `kinds`."""
        with self._open(name) as fp:
            return read_npy(fp, self._members[name].file_size, name, kinds)

    def _open(self, name: str):
        info = self._members.get(name)
        if info is None:
            raise ArchiveError(f"{name} is missing")
        if info.flag_bits & 0x1:
            raise ArchiveError(f"{name} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ArchiveError(f"{name} uses zip compression method {info.compress_type}; expected stored or deflated")
        if info.header_offset + info.compress_size > self._length:
            raise ArchiveError(f"{name} runs past the end of the file: the file is truncated")
        stored = info.compress_type == zipfile.ZIP_STORED
        limit = info.compress_size if stored else info.compress_size * DEFLATE_MAX_RATIO + DEFLATE_SLACK
        if info.file_size > limit:
            raise ArchiveError(f"{name} declares {info.file_size:,} bytes, more than its {info.compress_size:,} "
                               f"stored bytes can hold (a zip bomb or damage)")
        try:
            return self._zip.open(info)
        except _READ_ERRORS as exc:
            raise ArchiveError(f"{name}: {exc}") from None
