"""Per-task metrics and the multi-task performance measure Delta_m (Maninis et al., 2019)."""

from __future__ import annotations

from typing import Iterable, Mapping

import torch
from torch import Tensor

from .tasks import Task

Scores = Mapping[str, Mapping[str, float]]  # task name -> metric name -> value


def accuracy(logits: Tensor, target: Tensor) -> float:
    """Fraction of samples whose arg-max class equals the integer target."""
    return (logits.argmax(dim=-1) == target).float().mean().item()


def binary_accuracy(logits: Tensor, target: Tensor) -> float:
    """Fraction of samples whose logit sign matches the 0/1 target."""
    return ((logits.reshape(target.shape) > 0).float() == target.float()).float().mean().item()


def mse(prediction: Tensor, target: Tensor) -> float:
    """Mean squared error."""
    return torch.mean((prediction.reshape(target.shape) - target) ** 2).item()


def delta_m(metrics: Scores, baseline: Scores, tasks: Iterable[Task], mode: str = "per_task") -> float:
    """Relative multi-task performance against a baseline, in percent; positive means better.

    For every metric M with baseline value B the relative change is s (M - B) / |B|, with s = +1 when higher
    is better and -1 otherwise (Maninis et al., 2019). ``mode="per_task"`` averages over each task's metrics,
    then over tasks; ``mode="pooled"`` averages over all metrics at once, as the Nash-MTL and FAMO code does.
    The baseline should be single-task training with the same budget.

    The division is by |B|, where LibMTL and the Nash-MTL code divide by B: for a baseline below zero (a metric
    that can be negative, such as a log-likelihood or a correlation), dividing by B would flip the sign, and a
    better result would count as worse. With |B| a positive change always means better. Every metric in this
    book is positive, so the two agree on every number it shows.
    """
    if mode not in ("per_task", "pooled"):
        raise ValueError(f"delta_m: mode must be 'per_task' or 'pooled', not {mode!r}.")
    per_task: list[list[float]] = []
    for task in tasks:
        if task.name not in metrics or task.name not in baseline:
            where = "metrics" if task.name not in metrics else "baseline"
            raise KeyError(f"delta_m: task {task.name!r} is missing from {where}.")
        changes = []
        for name, higher in task.higher_is_better.items():
            value, base = metrics[task.name][name], baseline[task.name][name]
            if base == 0:
                raise ZeroDivisionError(f"delta_m: baseline {task.name}/{name} is 0; a relative change is undefined.")
            sign = 1.0 if higher else -1.0
            changes.append(sign * (value - base) / abs(base))
        per_task.append(changes)
    if not per_task:
        raise ValueError("delta_m: no tasks given.")
    if mode == "per_task":
        return 100.0 * sum(sum(c) / len(c) for c in per_task) / len(per_task)
    pooled = [c for changes in per_task for c in changes]
    return 100.0 * sum(pooled) / len(pooled)
