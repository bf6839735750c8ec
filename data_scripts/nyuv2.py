"""Prepare NYUv2 in the preprocessed 288 x 384 version of the multi-task literature (Liu et al., 2019).

    python -m data_scripts.nyuv2 --root ~/mtl-data

The archive holds ``nyuv2/{train,val}/{image,label,depth,normal}/<i>.npy``: 795 training and 654 test images
(its "val" folder is the test set of the literature). Preparation stacks them into arrays, keeps the test set as
``test``, splits the training images into ``train`` and ``val`` (the last 10% of a permutation drawn with seed 0),
and writes ``<split>_{images,segmentation,depth,normal}.npy`` under ``<root>/nyuv2``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from mtlutils.datasets.prepared import default_root

from .download import Source, extract, fetch

VAL_FRACTION = 0.1
# No checksum is published for this archive: its SHA-256 is recorded on first download and checked afterwards.
SOURCES = [
    Source(
        "nyuv2.zip", ("https://www.dropbox.com/sh/86nssgwm6hm3vkb/AACrnUQ4GxpdrBbLjb6n-mWNa?dl=1",),
        note="It is the preprocessed NYUv2 released with MTAN (Liu et al., 2019): a folder nyuv2/ with train/ and val/.",
    )
]


def _stack(folder: Path, kind: str, indices: list[int]) -> np.ndarray:
    return np.stack([np.load(folder / kind / f"{i}.npy") for i in indices])


def read_split(folder: Path) -> dict[str, np.ndarray]:
    """One folder of the archive as channel-first arrays."""
    indices = sorted(int(p.stem) for p in (folder / "image").glob("*.npy"))
    return {
        "images": _stack(folder, "image", indices).transpose(0, 3, 1, 2).astype(np.float32),
        "segmentation": _stack(folder, "label", indices).astype(np.int8),
        "depth": _stack(folder, "depth", indices).transpose(0, 3, 1, 2).astype(np.float32),
        "normal": _stack(folder, "normal", indices).transpose(0, 3, 1, 2).astype(np.float32),
    }


def prepare(extracted: Path, out: Path, seed: int = 0) -> None:
    train, test = read_split(extracted / "train"), read_split(extracted / "val")
    order = np.random.default_rng(seed).permutation(len(train["images"]))
    cut = len(order) - int(round(VAL_FRACTION * len(order)))
    splits = {
        "train": {k: v[order[:cut]] for k, v in train.items()},
        "val": {k: v[order[cut:]] for k, v in train.items()},
        "test": test,
    }
    out.mkdir(parents=True, exist_ok=True)
    for split, arrays in splits.items():
        for kind, array in arrays.items():
            path = out / f"{split}_{kind}.npy"
            partial = path.with_name(path.name + ".part")
            with open(partial, "wb") as f:
                np.save(f, array)
            os.replace(partial, path)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=default_root(), help="data root (default: %(default)s)")
    args = parser.parse_args(argv)
    raw = args.root / "nyuv2" / "raw"
    (archive,) = [fetch(source, raw) for source in SOURCES]
    if not (raw / "extracted").is_dir():
        extract(archive, raw / "extracted", again=f"python -m data_scripts.nyuv2 --root {args.root}")
    prepare(raw / "extracted" / "nyuv2", args.root / "nyuv2")
    print(f"NYUv2 is ready under {args.root / 'nyuv2'}")


if __name__ == "__main__":
    main()
