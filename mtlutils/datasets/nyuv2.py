"""NYUv2 (Silberman et al., 2012) in the preprocessed 288 x 384 version of the multi-task literature (Liu et al.,
2019): 13-class semantic segmentation, depth and surface normals.

``full`` only: it reads what ``python -m data_scripts.nyuv2`` prepared. Its 795 training images are split into
train and val (the last 10% of a seeded permutation), and its 654 test images are the test split.
Metrics are computed over every valid pixel of a split: segmentation ignores label -1, depth ignores zero depth,
normals ignore all-zero normals.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from .prepared import prepared_dir, read_prepared
from ..tasks import Split, Task, TaskSuite

N_CLASSES = 13
IGNORE = -1
SPLITS = ("train", "val", "test")
ARRAYS = ("images", "segmentation", "depth", "normal")
FILES = tuple(f"{s}_{a}.npy" for s in SPLITS for a in ARRAYS)


# Losses (one batch, logits or raw outputs) ---------------------------------------------------------------------

def segmentation_loss(logits: Tensor, target: Tensor) -> Tensor:
    return F.cross_entropy(logits, target.long(), ignore_index=IGNORE)


def depth_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error over pixels with a depth."""
    valid = target != 0
    return (prediction - target).abs()[valid].mean()


def normal_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """One minus the mean cosine between predicted and true normals over pixels with a normal."""
    valid = target.abs().sum(dim=1) != 0
    return 1 - (F.normalize(prediction, dim=1) * target).sum(dim=1)[valid].mean()


# Metrics (a whole split) -------------------------------------------------------------------------------------

def _confusion(labels: Tensor, target: Tensor) -> Tensor:
    valid = target != IGNORE
    index = target[valid].long() * N_CLASSES + labels[valid].long()
    return torch.bincount(index, minlength=N_CLASSES**2).reshape(N_CLASSES, N_CLASSES)


def mean_iou(labels: Tensor, target: Tensor) -> float:
    """Mean over the classes present (in the truth or the prediction) of intersection over union."""
    confusion = _confusion(labels, target).double()
    intersection = confusion.diag()
    union = confusion.sum(0) + confusion.sum(1) - intersection
    present = union > 0
    return (intersection[present] / union[present]).mean().item()


def pixel_accuracy(labels: Tensor, target: Tensor) -> float:
    confusion = _confusion(labels, target)
    return (confusion.diag().sum() / confusion.sum()).item()


def abs_error(prediction: Tensor, target: Tensor) -> float:
    valid = target != 0
    return (prediction.float() - target).abs()[valid].mean().item()


def rel_error(prediction: Tensor, target: Tensor) -> float:
    valid = target != 0
    return ((prediction.float() - target).abs()[valid] / target[valid]).mean().item()


def normal_angles(prediction: Tensor, target: Tensor) -> Tensor:
    """The angle in degrees between predicted and true normals at every valid pixel."""
    valid = target.abs().sum(dim=1) != 0
    cosine = (F.normalize(prediction.float(), dim=1) * F.normalize(target, dim=1)).sum(dim=1)[valid]
    return torch.rad2deg(torch.acos(cosine.clamp(-1.0, 1.0)))


def _within(degrees: float):
    def metric(prediction: Tensor, target: Tensor) -> float:
        return (normal_angles(prediction, target) < degrees).double().mean().item()

    return metric


NORMAL_METRICS = {
    "angle_mean": lambda p, t: normal_angles(p, t).mean().item(),
    "angle_median": lambda p, t: normal_angles(p, t).median().item(),
    "within_11.25": _within(11.25),
    "within_22.5": _within(22.5),
    "within_30": _within(30.0),
}


def tasks() -> list[Task]:
    """The three tasks with their losses, metrics and directions."""
    return [
        Task("segmentation", segmentation_loss, {"miou": mean_iou, "pixel_accuracy": pixel_accuracy}, True,
             compact=lambda logits: logits.argmax(dim=1).to(torch.int8)),
        Task("depth", depth_loss, {"abs_error": abs_error, "rel_error": rel_error}, False),
        Task("normal", normal_loss, NORMAL_METRICS,
             {"angle_mean": False, "angle_median": False, "within_11.25": True, "within_22.5": True, "within_30": True},
             compact=lambda output: F.normalize(output, dim=1).half()),
    ]


def make_nyuv2(size: str = "full", seed: int = 0, root: str | Path | None = None) -> TaskSuite:
    if size != "full":
        raise ValueError(
            f"nyuv2 has only a 'full' size (got {size!r}); prepare it with `python -m data_scripts.nyuv2` and load "
            "it with size='full'."
        )
    folder = prepared_dir("nyuv2", root, files=FILES)
    splits = {}
    for split in SPLITS:
        arrays = {a: torch.from_numpy(read_prepared(folder, f"{split}_{a}.npy", np.load)) for a in ARRAYS}
        splits[split] = Split(arrays["images"], {"segmentation": arrays["segmentation"].long(),
                                                 "depth": arrays["depth"], "normal": arrays["normal"]})
    return TaskSuite("nyuv2", tasks(), splits["train"], splits["val"], splits["test"], tuple(splits["train"].x.shape[1:]),
                     meta={"model": {"architecture": "segnet", "outputs": {"segmentation": N_CLASSES, "depth": 1,
                                                                            "normal": 3}}})
