"""CelebA (Liu et al., 2015): 40 binary face attributes on 64 x 64 images, official train/val/test partition.

``full`` only: it reads what ``python -m data_scripts.celeba`` prepared. ``attributes="tag9"`` keeps the nine
attributes that TAG (Fifty et al., 2021) groups.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .. import losses
from ..metrics import binary_accuracy
from .prepared import prepared_dir, read_prepared
from ..tasks import Split, Task, TaskSuite

SPLITS = ("train", "val", "test")
FILES = ("attribute_names.json", *(f"{s}_{kind}.npy" for s in SPLITS for kind in ("images", "attributes")))
TAG_SUBSET = ("5_o_Clock_Shadow", "Black_Hair", "Blond_Hair", "Brown_Hair", "Goatee", "Mustache", "No_Beard",
              "Rosy_Cheeks", "Wearing_Hat")


def make_celeba(size: str = "full", seed: int = 0, root: str | Path | None = None,
                attributes: str | list[str] = "all") -> TaskSuite:
    """The prepared CelebA as a suite of binary tasks; images stay uint8 (the network scales them)."""
    if size != "full":
        raise ValueError(
            f"celeba has only a 'full' size (got {size!r}); prepare it with `python -m data_scripts.celeba` and "
            "load it with size='full'. The offline many-task benchmark is 'digit_attributes'."
        )
    folder = prepared_dir("celeba", root, files=FILES)
    names = read_prepared(folder, "attribute_names.json", lambda p: json.loads(p.read_text()))
    chosen = names if attributes == "all" else list(TAG_SUBSET) if attributes == "tag9" else list(attributes)
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        raise ValueError(f"celeba: unknown attribute(s) {unknown}; the attributes are {names}.")
    columns = [names.index(a) for a in chosen]
    splits = {}
    for split in SPLITS:
        images = torch.from_numpy(read_prepared(folder, f"{split}_images.npy", np.load))
        labels = torch.from_numpy(read_prepared(folder, f"{split}_attributes.npy", np.load)[:, columns].astype(np.float32))
        splits[split] = Split(images, {a: labels[:, i] for i, a in enumerate(chosen)})
    tasks = [Task(a, losses.binary_cross_entropy, {"accuracy": binary_accuracy}, higher_is_better=True,
                  sample_loss=losses.sample_binary_cross_entropy) for a in chosen]
    return TaskSuite("celeba", tasks, splits["train"], splits["val"], splits["test"], tuple(splits["train"].x.shape[1:]),
                     meta={"model": {"architecture": "resnet", "outputs": {a: 1 for a in chosen}}})
