"""Where prepared datasets live, and the error that names the data script when they are missing."""

from __future__ import annotations

import os
from pathlib import Path


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
