"""Where prepared datasets live, and the error that names the data script when they are missing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar("T")


class DataNotPrepared(FileNotFoundError):
    """The files of a dataset are missing; the message names the command that prepares them."""


class DataDamaged(ValueError):
    """A prepared file cannot be read; the message names it and the command that prepares it again."""


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


def read_prepared(folder: Path, file: str, read: Callable[[Path], T]) -> T:
    """``read(folder / file)`` for a folder from ``prepared_dir``; a file that cannot be read (empty, truncated,
    overwritten) raises DataDamaged naming it and the command that prepares it again."""
    path = folder / file
    try:
        return read(path)
    except Exception as error:  # numpy, torch and json each fail in their own way on a damaged file
        reason = f"{type(error).__name__}{f': {error}' if str(error) else ''}; the file has {path.stat().st_size} bytes"
        raise DataDamaged(
            f"The prepared file {path} of dataset {folder.name!r} is damaged or incomplete ({reason}). Prepare it "
            f"again with\n    python -m data_scripts.{folder.name} --root {folder.parent}"
        ) from None
