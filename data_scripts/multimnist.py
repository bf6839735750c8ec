"""Prepare MultiMNIST (full): download the four MNIST files, verify them, and build 48k/12k/10k images.

    python -m data_scripts.multimnist --root ~/mtl-data

MNIST's 60,000 training digits are split at random (seed 0) into 48,000 and 12,000 source digits for train and
val, and its 10,000 test digits are the test sources. Every source digit is the left digit of one image, whose
right digit is another digit of the same split. The result, ``<root>/multimnist/multimnist.pt``, is what
``mtlutils.data.load("multimnist", "full")`` and ``load("digit_attributes", "full")`` read.
"""

from __future__ import annotations

import argparse
import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np
import torch

from mtlutils.datasets.multimnist import PREPARED_FILE, pair_up
from mtlutils.datasets.prepared import default_root

from .download import Source, fetch

MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
TRAIN_FRACTION = 0.8  # 48,000 of MNIST's 60,000 training digits; the rest are val sources


def sources(mirrors=MIRRORS) -> list[Source]:
    return [Source(name, tuple(m + name for m in mirrors), sha256=sha) for name, sha in SHA256.items()]


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (LeCun's MNIST format, optionally gzipped) as an array."""
    again = f"delete it and run `python -m data_scripts.multimnist` again to fetch it anew"
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (EOFError, OSError, zlib.error) as error:
        raise ValueError(f"{path} is damaged or incomplete ({type(error).__name__}: {error}); {again}.") from None
    if len(data) < 4 or data[0:2] != b"\x00\x00" or data[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file; {again}.")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if len(data) != 4 + 4 * ndim + math.prod(shape):
        raise ValueError(f"{path} holds {len(data) - 4 - 4 * ndim} bytes for an array of shape {shape} "
                         f"({math.prod(shape)} bytes): it is incomplete; {again}.")
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def prepare(raw: Path, out: Path, seed: int = 0) -> Path:
    """Build the MultiMNIST splits from the four IDX files in ``raw``; writes ``out/multimnist.pt`` atomically."""
    train_x = torch.from_numpy(read_idx(raw / "train-images-idx3-ubyte.gz").copy())
    train_y = torch.from_numpy(read_idx(raw / "train-labels-idx1-ubyte.gz").astype(np.int64))
    test_x = torch.from_numpy(read_idx(raw / "t10k-images-idx3-ubyte.gz").copy())
    test_y = torch.from_numpy(read_idx(raw / "t10k-labels-idx1-ubyte.gz").astype(np.int64))
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(train_x), generator=generator)
    cut = int(round(TRAIN_FRACTION * len(train_x)))
    pools = {"train": order[:cut], "val": order[cut:]}
    saved = {}
    for split, (digits, labels) in {
        "train": (train_x[pools["train"]], train_y[pools["train"]]),
        "val": (train_x[pools["val"]], train_y[pools["val"]]),
        "test": (test_x, test_y),
    }.items():
        images, left, right = pair_up(digits, labels, None, generator)
        saved |= {f"{split}_images": images, f"{split}_left": left, f"{split}_right": right}
    out.mkdir(parents=True, exist_ok=True)
    target = out / PREPARED_FILE
    partial = out / (PREPARED_FILE + ".part")
    torch.save(saved, partial)
    os.replace(partial, target)
    return target


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=default_root(), help="data root (default: %(default)s)")
    args = parser.parse_args(argv)
    folder = args.root / "multimnist"
    for source in sources():
        fetch(source, folder / "raw")
    target = prepare(folder / "raw", folder)
    print(f"MultiMNIST is ready: {target}")


if __name__ == "__main__":
    main()
