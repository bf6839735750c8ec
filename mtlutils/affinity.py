"""Measures of how tasks relate during training."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .models import MultiTaskNet
from .tasks import Split, Task


def shared_gradients(net: MultiTaskNet, batch: Split, tasks: Sequence[Task]) -> torch.Tensor:
    """Gradient of each task's loss with respect to the shared parameters, one flattened row per task.

    Leaves every ``.grad`` of the network untouched.
    """
    shared = [p for p in net.shared_parameters() if p.requires_grad]
    predictions = net(batch.x, tasks=[t.name for t in tasks])
    rows = []
    for i, task in enumerate(tasks):
        loss = task.loss(predictions[task.name], batch.y[task.name])
        grads = torch.autograd.grad(loss, shared, retain_graph=i < len(tasks) - 1, allow_unused=True)
        rows.append(torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, shared)]))
    return torch.stack(rows)


def gradient_cosine(net: MultiTaskNet, batch: Split, tasks: Sequence[Task]) -> np.ndarray:
    """Cosine similarity between the shared-parameter gradients of every pair of tasks (a T x T matrix).

    A negative entry means the two tasks' gradients conflict (Yu et al., 2020): a step that lowers one loss
    raises the other to first order. A task with a zero gradient has cosine 0 with every task.
    """
    grads = shared_gradients(net, batch, tasks)
    norms = grads.norm(dim=1, keepdim=True)
    unit = torch.where(norms > 0, grads / norms.clamp_min(1e-30), torch.zeros_like(grads))
    return (unit @ unit.T).numpy()


def conflict_rate(cosines: Sequence[np.ndarray]) -> np.ndarray:
    """Fraction of measurements in which each pair of tasks had a negative gradient cosine (T x T, diagonal 0)."""
    if len(cosines) == 0:
        raise ValueError("conflict_rate: no cosine measurements; train with gradient_cosine_every set.")
    return (np.stack(cosines) < 0).mean(axis=0)


def conflict_within_and_across(
    cosines: Sequence[tuple[int, np.ndarray]], group_of: Sequence[int], since_step: int = 0
) -> dict[str, float]:
    """Conflict rates of the task pairs in the same group and of the pairs in different groups.

    ``cosines`` are the ``(step, matrix)`` pairs of ``Run.cosines``; measurements before ``since_step`` are
    left out. Returns ``{"within": rate, "across": rate}`` (NaN where there is no such pair).
    """
    rates = conflict_rate([matrix for step, matrix in cosines if step >= since_step])
    group_of = np.asarray(group_of)
    same = group_of[:, None] == group_of[None, :]
    off_diagonal = ~np.eye(len(group_of), dtype=bool)
    within, across = rates[same & off_diagonal], rates[~same]
    return {
        "within": float(within.mean()) if within.size else float("nan"),
        "across": float(across.mean()) if across.size else float("nan"),
    }
