"""Shared fixtures: small, fast experiments and datasets the tests make themselves."""

from __future__ import annotations

import pytest

# A small, quick experiment: iris, 2 x 2 grid, 2 repeats, 8 epochs.
QUICK = [
    "data.dataset=iris",
    "train.epochs=8",
    "search.repeats=2",
    "search.n_jobs=1",
    "search.space={lr = [0.05, 0.2], hidden_units = [8, 16]}",
]


@pytest.fixture
def quick_overrides() -> list[str]:
    return list(QUICK)


def write_idx(path, array) -> None:
    """Write an unsigned-byte array as an MNIST IDX file (gzipped when the name ends in .gz)."""
    import gzip
    import struct

    import numpy as np

    array = np.asarray(array, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())


def digit_images_28():
    """scikit-learn's digits upscaled from 8x8 to 28x28 pixels in 0..255 (MNIST's format), and their labels."""
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.kron(digits.images, np.ones((3, 3)))  # 24x24
    return np.pad(images, ((0, 0), (2, 2), (2, 2))) * (255 / 16), digits.target


def make_mnist_folder(folder):
    """A tiny MNIST-format folder (the four IDX files) made from digits: 1500 train, 297 test images."""
    images, labels = digit_images_28()
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / "train-images-idx3-ubyte.gz", images[:1500])
    write_idx(folder / "train-labels-idx1-ubyte.gz", labels[:1500])
    write_idx(folder / "t10k-images-idx3-ubyte", images[1500:])
    write_idx(folder / "t10k-labels-idx1-ubyte", labels[1500:])
    return folder


@pytest.fixture
def mnist_folder(tmp_path):
    return make_mnist_folder(tmp_path / "mnist")
