"""Tasks and task suites: what a multi-task dataset hands to the rest of the package."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping

import torch
from torch import Tensor

Loss = Callable[[Tensor, Tensor], Tensor]
Metric = Callable[[Tensor, Tensor], float]


@dataclass(frozen=True)
class Task:
    """One task: a loss to train on and metrics to report.

    ``loss(prediction, target)`` returns a scalar tensor (mean over the batch). ``metrics`` maps a metric
    name to ``metric(prediction, target) -> float`` over a whole split. ``higher_is_better`` is either one
    bool for every metric or a mapping from metric name to bool. ``compact``, when given, shrinks each batch of
    network outputs before a split's outputs are gathered for the metrics (e.g. dense logits to class labels).
    ``sample_loss``, when given, is each sample's loss, a (batch,) tensor whose mean is ``loss``: with it a stacked
    run (``mtlutils.stacked``) computes all its members' losses of the task in one call.
    """

    name: str
    loss: Loss
    metrics: Mapping[str, Metric]
    higher_is_better: bool | Mapping[str, bool] = True
    compact: Callable[[Tensor], Tensor] | None = None
    sample_loss: Loss | None = None

    def __post_init__(self):
        if isinstance(self.higher_is_better, bool):
            object.__setattr__(self, "higher_is_better", {m: self.higher_is_better for m in self.metrics})
        missing = set(self.metrics) - set(self.higher_is_better)
        if missing:
            raise ValueError(
                f"Task {self.name!r}: higher_is_better has no entry for metric(s) {sorted(missing)}; "
                "give one bool per metric."
            )


@dataclass
class Split:
    """A split held in memory: inputs ``x`` (first dimension = samples) and one target tensor per task."""

    x: Tensor
    y: dict[str, Tensor]

    def __post_init__(self):
        for name, target in self.y.items():
            if len(target) != len(self.x):
                raise ValueError(f"Split: task {name!r} has {len(target)} targets for {len(self.x)} inputs.")

    def __len__(self) -> int:
        return len(self.x)

    def to(self, device: torch.device | str) -> "Split":
        """The same split on ``device`` (itself when it is already there)."""
        return Split(self.x.to(device), {name: t.to(device) for name, t in self.y.items()})

    def batches(self, batch_size: int, generator: torch.Generator | None = None) -> Iterator["Split"]:
        """Mini-batches in an order drawn from ``generator`` (in order when it is None); the last may be smaller."""
        order = torch.randperm(len(self), generator=generator) if generator is not None else torch.arange(len(self))
        for start in range(0, len(self), batch_size):
            index = order[start : start + batch_size]
            yield Split(self.x[index], {name: t[index] for name, t in self.y.items()})


@dataclass
class TaskSuite:
    """A multi-task dataset: its tasks, train/val/test splits, the input shape and free-form metadata.

    ``meta`` carries what a loader knows beyond the data, e.g. ``meta["groups"]``, the true task groups of a
    synthetic suite, and ``meta["model"]``, the keyword arguments of its standard network.
    """

    name: str
    tasks: list[Task]
    train: Split
    val: Split
    test: Split
    input_shape: tuple[int, ...]
    meta: dict = field(default_factory=dict)

    @property
    def task_names(self) -> list[str]:
        return [task.name for task in self.tasks]

    def task(self, name: str) -> Task:
        for task in self.tasks:
            if task.name == name:
                return task
        raise KeyError(f"Suite {self.name!r} has no task {name!r}; its tasks are {self.task_names}.")
