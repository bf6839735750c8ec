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


CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair Blond_Hair "
    "Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup High_Cheekbones Male "
    "Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks "
    "Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace "
    "Wearing_Necktie Young"
).split()


def write_celeba(raw: Path, partition: list[int], rng: np.random.Generator, names=CELEBA_ATTRIBUTES) -> np.ndarray:
    """CelebA's aligned JPEGs (random pixels, 218 x 178), list_attr_celeba.txt and list_eval_partition.txt, as the
    official download unpacks them, into ``raw``: one image per entry of ``partition`` (0 train, 1 val, 2 test).
    Returns the attribute signs (images x attributes, +1 or -1)."""
    from PIL import Image

    (raw / "img_align_celeba").mkdir(parents=True, exist_ok=True)
    images = [f"{i:06d}.jpg" for i in range(1, len(partition) + 1)]
    for name in images:
        Image.fromarray(rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)).save(raw / "img_align_celeba" / name)
    signs = np.where(rng.random((len(images), len(names))) > 0.5, 1, -1)
    lines = [str(len(images)), " ".join(names)] + [f"{n} " + " ".join(f"{v:2d}" for v in row) for n, row in zip(images, signs)]
    (raw / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    (raw / "list_eval_partition.txt").write_text("".join(f"{n} {c}\n" for n, c in zip(images, partition)))
    return signs


def write_nyuv2(extracted: Path, rng: np.random.Generator, sizes=(("train", 10), ("val", 3)), height=16, width=24):
    """NYUv2 as the preprocessed download of the multi-task literature unpacks it: ``<split>/<kind>/<i>.npy`` for
    image (H x W x 3), label (H x W, -1 unlabelled, else 0..12), depth (H x W x 1) and normal (H x W x 3)."""
    for split, n in sizes:
        for kind, channels in (("image", 3), ("label", None), ("depth", 1), ("normal", 3)):
            folder = extracted / split / kind
            folder.mkdir(parents=True, exist_ok=True)
            shape = (height, width) if channels is None else (height, width, channels)
            for i in range(n):
                array = rng.integers(-1, 13, shape) if kind == "label" else rng.random(shape)
                np.save(folder / f"{i}.npy", array.astype(np.float32))


def prepare_data_root(root: Path, nyuv2_shape: tuple[int, int] = (32, 32), celeba_side: int = 16,
                      seed: int = 0) -> Path:
    """A data root prepared by the data scripts from files in the real formats: MNIST (random images, real label
    files), CelebA (random JPEGs, its 40 attributes, the official partition file, stored at ``celeba_side``: 16 by
    default, 64 is the real one) and NYUv2 (the preprocessed arrays at ``nyuv2_shape``, 32 x 32 by default, the
    least that SegNet's five poolings divide; 288 x 384 is the real one). Every dataset has a few images per split,
    so full mode runs on it in seconds."""
    from data_scripts import celeba, multimnist, nyuv2

    rng = np.random.default_rng(seed)
    raw = root / "multimnist" / "raw"
    write_mnist(raw, rng.integers(0, 256, (200, 28, 28)), rng.integers(0, 10, 200),
                rng.integers(0, 256, (100, 28, 28)), rng.integers(0, 10, 100))
    multimnist.prepare(raw, root / "multimnist")
    write_celeba(root / "celeba" / "raw", [0] * 16 + [1] * 4 + [2] * 4, rng)
    celeba.prepare(root / "celeba" / "raw", root / "celeba", progress=False, side=celeba_side)
    height, width = nyuv2_shape
    write_nyuv2(root / "nyuv2" / "extracted", rng, sizes=(("train", 12), ("val", 4)), height=height, width=width)
    nyuv2.prepare(root / "nyuv2" / "extracted", root / "nyuv2")
    return root
