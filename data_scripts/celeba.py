"""Prepare CelebA: download the aligned images, attributes and partition, verify them, and store 64 x 64 arrays.

    python -m data_scripts.celeba --root ~/mtl-data
    python -m data_scripts.celeba --root ~/mtl-data --side 32   # smaller images: four times fewer pixels to train on

CelebA is hosted on Google Drive, which often refuses scripted downloads of its 1.4 GB archive; the script then
says which files to place where by hand, and a second run picks them up. Preparation resizes every image to
64 x 64 (bilinear; ``--side`` sets another size) and writes, per official split, ``<split>_images.npy``
(N, 3, side, side) uint8 and ``<split>_attributes.npy`` (N, 40) 0/1, plus ``attribute_names.json``, under
``<root>/celeba``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from mtlutils.datasets.prepared import default_root

from .download import Source, extract, fetch

SIDE = 64  # the side of the stored images, as in the multi-task literature
MIN_SIDE = 8
SPLIT_CODES = {"0": "train", "1": "val", "2": "test"}
MANUAL = (
    "CelebA's files are on its official page, https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html: "
    "'Align&Cropped Images' -> img_align_celeba.zip, 'Anno' -> list_attr_celeba.txt, "
    "'Eval' -> list_eval_partition.txt."
)


def _drive(file_id: str) -> str:
    return f"https://drive.google.com/uc?export=download&id={file_id}"


# Only MD5 checksums are published for CelebA's files.
SOURCES = [
    Source("img_align_celeba.zip", (_drive("0B7EVK8r0v71pZjFTYXZWM3FlRnM"),), md5="00d2c5bc6d35e252742224ab0c1e8fcb", note=MANUAL),
    Source("list_attr_celeba.txt", (_drive("0B7EVK8r0v71pblRyaVFSWGxPY0U"),), md5="75e246fa4810816ffd6ee81facbd244c", note=MANUAL),
    Source("list_eval_partition.txt", (_drive("0B7EVK8r0v71pY0NSMzRuSXJEVkk"),), md5="d32c9cbf5e040fd4025c592c306e6668", note=MANUAL),
]


def read_attributes(path: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    """list_attr_celeba.txt: a count, the 40 attribute names, then one line of +1/-1 per image."""
    lines = path.read_text().splitlines()
    names = lines[1].split()
    rows = {}
    for line in lines[2:]:
        if line.strip():
            image, *values = line.split()
            rows[image] = (np.array(values, dtype=np.int8) > 0).astype(np.int8)
    return names, rows


def read_partition(path: Path) -> dict[str, str]:
    """list_eval_partition.txt: one 'image split-code' line per image (0 train, 1 val, 2 test)."""
    return {image: SPLIT_CODES[code] for image, code in (line.split() for line in path.read_text().splitlines() if line.strip())}


def _save(array: np.ndarray, path: Path) -> None:
    partial = path.with_name(path.name + ".part")
    with open(partial, "wb") as f:
        np.save(f, array)
    os.replace(partial, path)


def check_side(side: int) -> None:
    """Refuse a side the network cannot take (``models.resnet`` halves the images three times)."""
    if not isinstance(side, int) or isinstance(side, bool) or side < MIN_SIDE:
        raise ValueError(f"celeba: the side must be a whole number of pixels, at least {MIN_SIDE} (the network halves "
                         f"the images three times), not {side!r}; the papers' setting is {SIDE}.")


def prepare(raw: Path, out: Path, progress: bool = True, side: int = SIDE) -> None:
    """Resize the images in ``raw/img_align_celeba`` to ``side`` x ``side`` and write the arrays of every split to
    ``out``."""
    check_side(side)
    names, attributes = read_attributes(raw / "list_attr_celeba.txt")
    partition = read_partition(raw / "list_eval_partition.txt")
    out.mkdir(parents=True, exist_ok=True)
    for split in SPLIT_CODES.values():
        images = sorted(i for i, s in partition.items() if s == split)
        array = np.empty((len(images), 3, side, side), dtype=np.uint8)
        for k, image in enumerate(tqdm(images, desc=f"celeba {split}", disable=not progress)):
            with Image.open(raw / "img_align_celeba" / image) as picture:
                resized = picture.convert("RGB").resize((side, side), Image.BILINEAR)
            array[k] = np.asarray(resized).transpose(2, 0, 1)
        _save(array, out / f"{split}_images.npy")
        _save(np.stack([attributes[i] for i in images]) if images else np.empty((0, len(names)), np.int8),
              out / f"{split}_attributes.npy")
    (out / "attribute_names.json").write_text(json.dumps(names))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=default_root(), help="data root (default: %(default)s)")
    parser.add_argument("--side", type=int, default=SIDE,
                        help=f"side of the stored square images in pixels, at least {MIN_SIDE} (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        check_side(args.side)  # before any download
    except ValueError as error:
        parser.error(str(error))
    raw = args.root / "celeba" / "raw"
    paths = [fetch(source, raw) for source in SOURCES]
    if not (raw / "img_align_celeba").is_dir():
        extract(paths[0], raw / "img_align_celeba.extracted", again=f"python -m data_scripts.celeba --root {args.root}")
        os.replace(raw / "img_align_celeba.extracted" / "img_align_celeba", raw / "img_align_celeba")
    prepare(raw, args.root / "celeba", side=args.side)
    print(f"CelebA is ready under {args.root / 'celeba'}")


if __name__ == "__main__":
    main()
