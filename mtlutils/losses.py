"""The task losses of the built-in datasets, each given twice: as a task trains on it, the mean over a batch, and
each sample's (``Task.sample_loss``), with which a stacked run (``mtlutils.stacked``) computes the losses of all its
members in one call."""

from __future__ import annotations

from torch import Tensor
from torch.nn import functional as F


def squared_error(prediction: Tensor, target: Tensor) -> Tensor:
    """Each sample's squared error, averaged over a target's own dimensions: shape (batch,)."""
    errors = F.mse_loss(prediction.reshape(target.shape), target, reduction="none")
    return errors.reshape(len(target), -1).mean(1)


def mean_squared_error(prediction: Tensor, target: Tensor) -> Tensor:
    return F.mse_loss(prediction.reshape(target.shape), target)


def sample_cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """Each sample's cross-entropy of its class logits and class label: shape (batch,)."""
    return F.cross_entropy(logits, target, reduction="none")


def cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    return F.cross_entropy(logits, target)


def sample_binary_cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """Each sample's binary cross-entropy of its one logit and its 0/1 label: shape (batch,)."""
    return F.binary_cross_entropy_with_logits(logits.reshape(target.shape), target.float(), reduction="none")


def binary_cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    return F.binary_cross_entropy_with_logits(logits.reshape(target.shape), target.float())
