"""``load(name, size)``: every dataset of the book as a TaskSuite.

Sizes: ``smoke`` (seconds, for tests), ``small`` (what the book shows, on a laptop CPU) and ``full`` (the
papers' data). Datasets read from files never download: when the files are missing, ``load`` says which
data script prepares them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from .clusters import make_clusters
from .tasks import TaskSuite

SIZES = ("smoke", "small", "full")

# name -> builder(size=..., seed=..., root=..., **kwargs)
_BUILDERS: dict[str, Callable[..., TaskSuite]] = {
    "clusters": lambda size, seed, root, **kwargs: make_clusters(size=size, seed=seed, **kwargs),
}


class DataNotPrepared(FileNotFoundError):
    """The files of a dataset are missing; the message names the command that prepares them."""


def default_root() -> Path:
    """Where prepared datasets live: ``$MTLUTILS_DATA`` or ``~/mtl-data``."""
    return Path(os.environ.get("MTLUTILS_DATA", Path.home() / "mtl-data"))


def prepared_dir(name: str, root: str | Path | None = None, files: tuple[str, ...] = ()) -> Path:
    """The folder of a prepared dataset, checked to hold ``files``; raises DataNotPrepared otherwise."""
    root = Path(root) if root is not None else default_root()
    folder = root / name
    missing = [f for f in files if not (folder / f).exists()]
    if not folder.is_dir() or missing:
        what = f"the files {missing} are missing from {folder}" if folder.is_dir() else f"{folder} does not exist"
        raise DataNotPrepared(
            f"Dataset {name!r} is not prepared: {what}. Prepare it with\n"
            f"    python -m data_scripts.{name} --root {root}\n"
            "(or set MTLUTILS_DATA to the data root where you prepared it)."
        )
    return folder


def available() -> list[str]:
    return sorted(_BUILDERS)


def load(name: str, size: str = "small", root: str | Path | None = None, seed: int = 0, **kwargs) -> TaskSuite:
    """Load dataset ``name`` at ``size``; ``seed`` fixes the draw of synthetic data; ``kwargs`` go to the builder."""
    if name not in _BUILDERS:
        raise ValueError(f"Unknown dataset {name!r}. Valid names: {', '.join(available())}.")
    if size not in SIZES:
        raise ValueError(f"Unknown size {size!r} for dataset {name!r}. Valid sizes: {', '.join(SIZES)}.")
    return _BUILDERS[name](size=size, seed=seed, root=root, **kwargs)
