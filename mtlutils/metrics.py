"""Per-task metrics and the multi-task performance measure Delta_m (Maninis et al., 2019)."""

from __future__ import annotations

import math
from typing import Iterable, Mapping

import torch
from torch import Tensor

from .tasks import Task

Scores = Mapping[str, Mapping[str, float]]  # task name -> metric name -> value


def _nonempty(name: str, prediction: Tensor, target: Tensor) -> None:
    if prediction.numel() == 0 or target.numel() == 0:
        raise ValueError(f"{name}: the prediction ({tuple(prediction.shape)}) or the target ({tuple(target.shape)}) "
                         "is empty; a metric needs at least one sample (is the split empty?).")


def accuracy(logits: Tensor, target: Tensor) -> float:
    """Fraction of samples whose arg-max class equals the integer target."""
    _nonempty("accuracy", logits, target)
    return (logits.argmax(dim=-1) == target).float().mean().item()


def binary_accuracy(logits: Tensor, target: Tensor) -> float:
    """Fraction of samples whose logit sign matches the 0/1 target."""
    _nonempty("binary_accuracy", logits, target)
    return ((logits.reshape(target.shape) > 0).float() == target.float()).float().mean().item()


def mse(prediction: Tensor, target: Tensor) -> float:
    """Mean squared error."""
    _nonempty("mse", prediction, target)
    return torch.mean((prediction.reshape(target.shape) - target) ** 2).item()


def _checked(scores: Scores, tasks: list[Task], where: str) -> None:
    """Every task of ``tasks`` and none other, each with exactly its metrics, all finite."""
    names = {t.name for t in tasks}
    extra = sorted(set(scores) - names)
    if extra:
        raise ValueError(f"delta_m: {where} holds task(s) {extra} that are not among the tasks {sorted(names)}; "
                         "pass every task it should average over, or leave the others out of it.")
    for task in tasks:
        if task.name not in scores:
            raise KeyError(f"delta_m: task {task.name!r} is missing from {where}.")
        given, wanted = set(scores[task.name]), set(task.higher_is_better)
        if given != wanted:
            raise KeyError(f"delta_m: {where} gives task {task.name!r} the metric(s) {sorted(given)}; its metrics "
                           f"are {sorted(wanted)} (missing {sorted(wanted - given)}, extra {sorted(given - wanted)}).")
        for metric, value in scores[task.name].items():
            if not math.isfinite(value):
                raise ValueError(f"delta_m: {where} has {task.name}/{metric} = {value}; a relative change needs "
                                 "finite values (did the run diverge?).")


def delta_m(metrics: Scores, baseline: Scores, tasks: Iterable[Task], mode: str = "per_task") -> float:
    """Relative multi-task performance against a baseline, in percent; positive means better.

    For every metric M with baseline value B the relative change is s (M - B) / |B|, with s = +1 when higher
    is better and -1 otherwise (Maninis et al., 2019). ``mode="per_task"`` averages over each task's metrics,
    then over tasks; ``mode="pooled"`` averages over all metrics at once, as the Nash-MTL and FAMO code does.
    The baseline should be single-task training with the same budget. Both must hold exactly the tasks given,
    each with exactly its metrics, all finite; anything else is refused with what is wrong.

    The division is by |B|, where LibMTL and the Nash-MTL code divide by B: for a baseline below zero (a metric
    that can be negative, such as a log-likelihood or a correlation), dividing by B would flip the sign, and a
    better result would count as worse. With |B| a positive change always means better. Every metric in this
    book is positive, so the two agree on every number it shows.
    """
    if mode not in ("per_task", "pooled"):
        raise ValueError(f"delta_m: mode must be 'per_task' or 'pooled', not {mode!r}.")
    tasks = list(tasks)
    _checked(metrics, tasks, "metrics")
    _checked(baseline, tasks, "baseline")
    per_task: list[list[float]] = []
    for task in tasks:
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
