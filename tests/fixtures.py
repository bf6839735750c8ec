"""Files in the real formats of the datasets, for tests that must not download anything."""

import gzip
from pathlib import Path

import numpy as np


def idx_gz(array: np.ndarray) -> bytes:
    """An array as a gzipped IDX file of unsigned bytes, MNIST's format."""
    header = b"\x00\x00\x08" + bytes([array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def write_mnist(raw: Path, train: np.ndarray, train_labels: np.ndarray, test: np.ndarray, test_labels: np.ndarray):
    """The four MNIST files, as ``python -m data_scripts.multimnist`` downloads them, into ``raw``."""
    raw.mkdir(parents=True, exist_ok=True)
    files = {"train-images-idx3-ubyte.gz": train, "train-labels-idx1-ubyte.gz": train_labels,
             "t10k-images-idx3-ubyte.gz": test, "t10k-labels-idx1-ubyte.gz": test_labels}
    for name, array in files.items():
        (raw / name).write_bytes(idx_gz(np.asarray(array)))
