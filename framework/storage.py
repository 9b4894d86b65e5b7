"""Flat storage: every layer's parameters in one buffer, their gradients in another, and views into them.

On small networks numpy's per-call overhead, paid per array, costs more than the arithmetic; an
optimizer that finds the parameters (and the gradients) as one contiguous span updates all of
them with a handful of whole-buffer operations, and gradient clipping takes one norm of one span.
"""

from __future__ import annotations

import numpy as np


def share_storage(layers: list, dtype: np.dtype) -> None:
    """Move every layer's parameters into one flat buffer, end to end, and their gradients into another.

    The arrays keep their shapes, values and dict keys (they become views), so layers see no
    difference. Only done when every layer with parameters says `flat_storage = True` (Dense,
    BatchNorm): a custom layer might keep its own references to its arrays.
    """
    trainable = [layer for layer in layers if layer.params]
    if not all(getattr(layer, "flat_storage", False) for layer in trainable):
        return
    for attr in ("params", "grads"):
        dicts = [getattr(layer, attr) for layer in trainable]
        flat = np.empty(sum(a.size for d in dicts for a in d.values()), dtype=dtype)
        offset = 0
        for d in dicts:
            for key, array in d.items():
                view = flat[offset:offset + array.size].reshape(array.shape)
                view[...] = array
                d[key] = view
                offset += array.size


def span(arrays: list[np.ndarray]) -> np.ndarray | None:
    """The 1-D array that `arrays` tile end to end, when they are consecutive C-ordered views of one buffer."""
    if not arrays:
        return None
    base = arrays[0].base
    if not isinstance(base, np.ndarray) or base.ndim != 1 or not base.flags.c_contiguous:
        return None
    start = arrays[0].__array_interface__["data"][0]
    end = start
    for a in arrays:
        if a.base is not base or a.dtype != base.dtype or not a.flags.c_contiguous \
                or a.__array_interface__["data"][0] != end:
            return None
        end += a.nbytes
    offset = (start - base.__array_interface__["data"][0]) // base.itemsize
    return base[offset:offset + (end - start) // base.itemsize]


def split(flat: np.ndarray, like: list[np.ndarray]) -> list[np.ndarray]:
    """Views of `flat` shaped like the arrays of `like`, end to end."""
    views, offset = [], 0
    for a in like:
        views.append(flat[offset:offset + a.size].reshape(a.shape))
        offset += a.size
    return views
