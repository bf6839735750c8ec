"""``load(name, size)``: every dataset of the book as a TaskSuite.

Sizes: ``smoke`` (seconds, for tests), ``small`` (what the book shows, on a laptop CPU) and ``full`` (the
papers' data). Datasets read from files never download: when the files are missing, ``load`` says which
data script prepares them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from .datasets.celeba import make_celeba
from .datasets.clusters import make_clusters
from .datasets.multimnist import make_digit_attributes, make_multimnist
from .datasets.nyuv2 import make_nyuv2
from .datasets.prepared import DataDamaged, DataNotPrepared, default_root, prepared_dir  # noqa: F401 (part of the interface)
from .tasks import TaskSuite

SIZES = ("smoke", "small", "full")

# name -> builder(size=..., seed=..., root=..., **kwargs)
_BUILDERS: dict[str, Callable[..., TaskSuite]] = {
    "clusters": lambda size, seed, root, **kwargs: make_clusters(size=size, seed=seed, **kwargs),
    "multimnist": make_multimnist,
    "digit_attributes": make_digit_attributes,
    "celeba": make_celeba,
    "nyuv2": make_nyuv2,
}


def available() -> list[str]:
    return sorted(_BUILDERS)


def load(name: str, size: str = "small", root: str | Path | None = None, seed: int = 0, **kwargs) -> TaskSuite:
    """Load dataset ``name`` at ``size``; ``seed`` fixes the draw of synthetic data; ``kwargs`` go to the builder."""
    if name not in _BUILDERS:
        raise ValueError(f"Unknown dataset {name!r}. Valid names: {', '.join(available())}.")
    if size not in SIZES:
        raise ValueError(f"Unknown size {size!r} for dataset {name!r}. Valid sizes: {', '.join(SIZES)}.")
    return _BUILDERS[name](size=size, seed=seed, root=root, **kwargs)
