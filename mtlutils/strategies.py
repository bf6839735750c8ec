"""Update strategies: how one batch updates the parameters of a multi-task network.

A strategy owns its optimizer(s), built by ``optimizer_factory(params)`` when ``setup`` first sees the network,
and ``step(net, batch)`` returns a StepRecord with the losses, the groups updated and the cost of the step.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn

from .models import MultiTaskNet
from .tasks import Split, Task

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


def adam(lr: float = 1e-3, weight_decay: float = 0.0) -> OptimizerFactory:
    """An optimizer factory for Adam (AdamW when ``weight_decay`` > 0)."""
    if weight_decay > 0:
        return lambda params: torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    return lambda params: torch.optim.Adam(params, lr=lr)


def sgd(lr: float = 1e-2, momentum: float = 0.0, weight_decay: float = 0.0) -> OptimizerFactory:
    """An optimizer factory for SGD."""
    return lambda params: torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


@dataclass
class StepRecord:
    """What one call of ``Strategy.step`` did: the loss of each task on the batch before any update, the
    groups updated in order, and its cost."""

    losses: dict[str, float]
    groups: list[tuple[str, ...]]
    forward_passes: int = 0
    backward_passes: int = 0
    optimizer_steps: int = 0
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


class NonFiniteLossError(FloatingPointError):
    """A task's loss is NaN or infinite; training stops before the parameters are touched."""

    def __init__(self, task: str, value: float, step: int | None = None):
        self.task, self.value, self.step = task, value, step
        where = f" at step {step}" if step is not None else ""
        super().__init__(
            f"The loss of task {task!r} is {value}{where}. Training stopped before this update. "
            "Lower the learning rate, check the inputs and targets of this task, or clip gradients."
        )


def task_losses(net: MultiTaskNet, batch: Split, tasks: Sequence[Task]) -> dict[str, Tensor]:
    """One forward pass: the loss of every task in ``tasks`` on ``batch``; NaN or inf raises NonFiniteLossError."""
    predictions = net(batch.x, tasks=[t.name for t in tasks])
    losses = {t.name: t.loss(predictions[t.name], batch.y[t.name]) for t in tasks}
    for name, loss in losses.items():
        if not torch.isfinite(loss):
            raise NonFiniteLossError(name, loss.item())
    return losses


class Strategy:
    """Base class. Subclasses implement ``_build_optimizers`` and ``_update``."""

    min_tasks = 1

    def __init__(self, optimizer_factory: OptimizerFactory | None = None):
        self.optimizer_factory = optimizer_factory or adam()
        self.tasks: list[Task] = []
        self.optimizers: list[torch.optim.Optimizer] = []

    def setup(self, net: MultiTaskNet, tasks: Sequence[Task], seed: int = 0) -> None:
        """Bind the strategy to a network and its tasks and build the optimizer(s)."""
        if len(tasks) < self.min_tasks:
            raise ValueError(
                f"{type(self).__name__} needs at least {self.min_tasks} tasks; the suite has {len(tasks)}."
            )
        missing = [t.name for t in tasks if t.name not in net.heads]
        if missing:
            raise ValueError(f"The network has no head for task(s) {missing}; build it for this suite.")
        self.tasks = list(tasks)
        self.generator = torch.Generator().manual_seed(seed)
        self.optimizers = self._build_optimizers(net)

    def step(self, net: MultiTaskNet, batch: Split) -> StepRecord:
        if not self.optimizers:
            raise RuntimeError(f"{type(self).__name__}.setup(net, tasks) must be called before step().")
        start = time.perf_counter()
        record = self._update(net, batch)
        record.seconds = time.perf_counter() - start
        return record

    def state_dict(self) -> dict:
        return {"optimizers": [o.state_dict() for o in self.optimizers], "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        for optimizer, saved in zip(self.optimizers, state["optimizers"], strict=True):
            optimizer.load_state_dict(saved)
        self.generator.set_state(state["generator"])

    def _build_optimizers(self, net: MultiTaskNet) -> list[torch.optim.Optimizer]:
        raise NotImplementedError

    def _update(self, net: MultiTaskNet, batch: Split) -> StepRecord:
        raise NotImplementedError


class SingleTask(Strategy):
    """Train one task alone: the trunk and that task's head, on that task's loss. The baseline of Delta_m."""

    def __init__(self, task: str, optimizer_factory: OptimizerFactory | None = None):
        super().__init__(optimizer_factory)
        self.task = task

    def setup(self, net: MultiTaskNet, tasks: Sequence[Task], seed: int = 0) -> None:
        chosen = [t for t in tasks if t.name == self.task]
        if not chosen:
            raise ValueError(f"SingleTask: no task {self.task!r}; the tasks are {[t.name for t in tasks]}.")
        super().setup(net, chosen, seed)

    def _build_optimizers(self, net):
        return [self.optimizer_factory([*net.shared_parameters(), *net.task_parameters(self.task)])]

    def _update(self, net, batch):
        (optimizer,) = self.optimizers
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
        if weights is not None:
            values = list(weights.values())
            if any(w < 0 or not math.isfinite(w) for w in values) or not math.isclose(sum(values), 1.0, abs_tol=1e-6):
                raise ValueError(
                    f"Averaged: weights must be finite, non-negative and sum to 1 (the simplex); got {dict(weights)}."
                )
        self.weights = dict(weights) if weights is not None else None

    def setup(self, net, tasks, seed=0):
        if self.weights is not None and set(self.weights) != {t.name for t in tasks}:
            raise ValueError(
                f"Averaged: weights are given for {sorted(self.weights)} but the tasks are {sorted(t.name for t in tasks)}."
            )
        super().setup(net, tasks, seed)

    def _build_optimizers(self, net):
        return [self.optimizer_factory(net.parameters())]

    def _update(self, net, batch):
        (optimizer,) = self.optimizers
        optimizer.zero_grad(set_to_none=True)
        losses = task_losses(net, batch, self.tasks)
        weights = self.weights or {t.name: 1.0 / len(self.tasks) for t in self.tasks}
        total = sum(weights[name] * loss for name, loss in losses.items())
        total.backward()
        optimizer.step()
        names = tuple(t.name for t in self.tasks)
        return StepRecord({n: l.item() for n, l in losses.items()}, [names], 1, 1, 1)
