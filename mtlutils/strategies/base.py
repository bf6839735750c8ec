"""What every strategy shares: the Strategy base class, the StepRecord of a step, the losses of a forward pass,
and the checks of the options a strategy is made with."""

from __future__ import annotations

import numbers
import time
from dataclasses import dataclass, field
from typing import Callable, Hashable, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ..models import MultiTaskNet
from ..tasks import Split, Task
from .optimizers import OptimizerFactory, adam, sgd

# kind -> (test, what it accepts); ``kind(value)`` is what the strategy keeps
_KINDS: dict[type, tuple[Callable[[object], bool], str]] = {
    int: (lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool), "a whole number"),
    float: (lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool), "a number"),
    bool: (lambda v: isinstance(v, (bool, np.bool_)), "True or False"),
    str: (lambda v: isinstance(v, str), "a string"),
    dict: (lambda v: isinstance(v, Mapping) and all(isinstance(k, str) for k in v), "a mapping with names as keys"),
    list: (lambda v: isinstance(v, Iterable) and not isinstance(v, (str, bytes, Mapping)), "a list"),
}


def checked(owner: object, option: str, value, kind: type, allowed: str | None = None, optional: bool = False):
    """``value`` of ``owner``'s ``option`` as ``kind`` (int, float, bool, str, dict or list), None if ``optional``.

    Whole numbers are any integral number but a bool (numpy's too), numbers any real one but a bool; another kind
    is refused with a TypeError that names the strategy, the option, the value and ``allowed`` (what it takes)."""
    if optional and value is None:
        return None
    test, described = _KINDS[kind]
    if not test(value):
        raise TypeError(f"{type(owner).__name__}: {option} must be {allowed or described}"
                        f"{', or None' if optional else ''}; got {value!r}.")
    return kind(value)


def choice(owner: object, option: str, value, allowed: Sequence[str]) -> str:
    """``value`` if it is one of the strings ``allowed``: another kind is a TypeError, another string a ValueError."""
    *others, last = map(repr, allowed)
    listed = f"{', '.join(others)} or {last}" if others else last
    if checked(owner, option, value, str, listed) not in allowed:
        raise ValueError(f"{type(owner).__name__}: {option} must be {listed}, not {value!r}.")
    return value


def registry_name(owner: object, option: str, value, registry: Mapping, alternative: str = "") -> str:
    """``value`` if it names an entry of ``registry``: another kind is a TypeError, an unknown name a ValueError,
    both listing the names; ``alternative`` adds to the TypeError's list what else the option takes."""
    names = ", ".join(registry)
    if checked(owner, option, value, str, f"one of {names}{alternative}") not in registry:
        raise ValueError(f"{type(owner).__name__}: unknown {option} {value!r}; choose from {names}.")
    return value


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


def task_losses(net: MultiTaskNet, batch: Split, tasks: Sequence[Task], features: Tensor | None = None
                ) -> dict[str, Tensor]:
    """One forward pass: the loss of every task in ``tasks`` on ``batch`` (from the trunk's ``features`` when they
    are already computed); NaN or inf raises NonFiniteLossError."""
    if features is None:
        features = net.trunk(batch.x)
    losses = {t.name: t.loss(net.heads[t.name](features), batch.y[t.name]) for t in tasks}
    for name, loss in losses.items():
        if not torch.isfinite(loss):
            raise NonFiniteLossError(name, loss.item())
    return losses


class Strategy:
    """Base class. Subclasses implement ``_parameters`` (what the optimizer of a key updates) and ``_update``.

    Optimizers are created on first use, one per key: a strategy with one optimizer uses one key, and a strategy
    with an optimizer per group uses the group as its key, so each group has its own moments and step counter.
    """

    min_tasks = 1

    def __init__(self, optimizer_factory: OptimizerFactory | None = None):
        if optimizer_factory is not None and (not callable(optimizer_factory) or optimizer_factory in (adam, sgd)):
            raise TypeError(f"{type(self).__name__}: optimizer_factory must be an optimizer factory (parameters -> "
                            f"optimizer) such as adam() or sgd() return, or None; got {optimizer_factory!r}.")
        self.optimizer_factory = optimizer_factory or adam()
        self.tasks: list[Task] = []
        self.optimizers: dict[Hashable, torch.optim.Optimizer] = {}

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def setup(self, net: MultiTaskNet, tasks: Sequence[Task], seed: int = 0) -> None:
        """Bind the strategy to a network and its tasks; ``seed`` drives any random choice the strategy makes."""
        if len(tasks) < self.min_tasks:
            raise ValueError(
                f"{type(self).__name__} needs at least {self.min_tasks} tasks; the suite has {len(tasks)}."
            )
        missing = [t.name for t in tasks if t.name not in net.heads]
        if missing:
            raise ValueError(f"The network has no head for task(s) {missing}; build it for this suite.")
        self.tasks = list(tasks)
        self.generator = torch.Generator().manual_seed(seed)
        self.optimizers = {}

    def start_epoch(self, epoch: int) -> None:
        """Called by ``fit`` before every epoch."""

    def optimizer(self, net: MultiTaskNet, key: Hashable) -> torch.optim.Optimizer:
        if key not in self.optimizers:
            self.optimizers[key] = self.optimizer_factory(self._parameters(net, key))
        return self.optimizers[key]

    def step(self, net: MultiTaskNet, batch: Split) -> StepRecord:
        if not self.tasks:
            raise RuntimeError(f"{type(self).__name__}.setup(net, tasks) must be called before step().")
        start = time.perf_counter()
        record = self._update(net, batch)
        record.seconds = time.perf_counter() - start
        return record

    def state_dict(self) -> dict:
        return {
            "optimizers": {key: o.state_dict() for key, o in self.optimizers.items()},
            "generator": self.generator.get_state(),
            "extra": self._extra_state(),
        }

    def load_state_dict(self, state: dict, net: MultiTaskNet) -> None:
        for key, saved in state["optimizers"].items():
            self.optimizer(net, key).load_state_dict(saved)
        self.generator.set_state(state["generator"])
        self._load_extra_state(state["extra"])

    def _extra_state(self) -> dict:
        return {}

    def _load_extra_state(self, state: dict) -> None:
        pass

    def _parameters(self, net: MultiTaskNet, key: Hashable) -> list[nn.Parameter]:
        raise NotImplementedError

    def _update(self, net: MultiTaskNet, batch: Split) -> StepRecord:
        raise NotImplementedError
