"""One update per batch on a fixed combination of the task losses: one task alone, or their weighted average."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

from ..models import MultiTaskNet
from ..tasks import Task
from .base import StepRecord, Strategy, checked, task_losses
from .optimizers import OptimizerFactory


class SingleTask(Strategy):
    """Train one task alone: the trunk and that task's head, on that task's loss. The baseline of Delta_m."""

    def __init__(self, task: str, optimizer_factory: OptimizerFactory | None = None):
        super().__init__(optimizer_factory)
        self.task = checked(self, "task", task, str, "the name of a task")

    def setup(self, net: MultiTaskNet, tasks: Sequence[Task], seed: int = 0) -> None:
        chosen = [t for t in tasks if t.name == self.task]
        if not chosen:
            raise ValueError(f"SingleTask: no task {self.task!r}; the tasks are {[t.name for t in tasks]}.")
        super().setup(net, chosen, seed)

    def _parameters(self, net, key):
        return [*net.shared_parameters(), *net.task_parameters(self.task)]

    def _update(self, net, batch):
        optimizer = self.optimizer(net, "all")
        optimizer.zero_grad(set_to_none=True)
        losses = task_losses(net, batch, self.tasks)
        losses[self.task].backward()
        optimizer.step()
        return StepRecord({self.task: losses[self.task].item()}, [(self.task,)], 1, 1, 1)


class Averaged(Strategy):
    """One step on the weighted average of the task losses, sum_t w_t L_t (unitary scalarization when uniform).

    The weights lie on the simplex (non-negative, summing to 1), so uniform weights give the *mean* of the
    losses: the same learning rate then means the same step size as single-task training, whereas the sum of
    T losses would multiply the effective learning rate of the trunk by T.
    """

    def __init__(self, weights: Mapping[str, float] | None = None, optimizer_factory: OptimizerFactory | None = None):
        super().__init__(optimizer_factory)
        allowed = "a mapping of task name -> weight on the simplex"
        weights = checked(self, "weights", weights, dict, allowed, optional=True)
        if weights is not None:
            weights = {name: checked(self, f"weights[{name!r}]", w, float) for name, w in weights.items()}
            values = list(weights.values())
            if any(w < 0 or not math.isfinite(w) for w in values) or not math.isclose(sum(values), 1.0, abs_tol=1e-6):
                raise ValueError(
                    f"Averaged: weights must be finite, non-negative and sum to 1 (the simplex); got {weights}."
                )
        self.weights = weights

    def setup(self, net, tasks, seed=0):
        if self.weights is not None and set(self.weights) != {t.name for t in tasks}:
            raise ValueError(
                f"Averaged: weights are given for {sorted(self.weights)} but the tasks are {sorted(t.name for t in tasks)}."
            )
        super().setup(net, tasks, seed)

    def _parameters(self, net, key):
        return list(net.parameters())

    def _update(self, net, batch):
        optimizer = self.optimizer(net, "all")
        optimizer.zero_grad(set_to_none=True)
        losses = task_losses(net, batch, self.tasks)
        weights = self.weights or {t.name: 1.0 / len(self.tasks) for t in self.tasks}
        total = sum(weights[name] * loss for name, loss in losses.items())
        total.backward()
        optimizer.step()
        names = tuple(t.name for t in self.tasks)
        return StepRecord({n: l.item() for n, l in losses.items()}, [names], 1, 1, 1)
