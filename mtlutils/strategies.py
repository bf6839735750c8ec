"""Update strategies: how one batch updates the parameters of a multi-task network.

A strategy owns its optimizer(s), built by ``optimizer_factory(params)`` when ``setup`` first sees the network,
and ``step(net, batch)`` returns a StepRecord with the losses, the groups updated and the cost of the step.
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Hashable, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torchjd import aggregation, scalarization
from torchjd.autojac import jac, jac_to_grad, mtl_backward

from .affinity import ProximalAffinity, groups_from_affinity, lookahead_affinity
from .models import MultiTaskNet
from .tasks import Split, Task

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


class _GradientsInParameterLayout:
    """torch's fused Adam reads each gradient's memory as if it were laid out like its parameter: a gradient stored
    in another layout (torchjd writes contiguous ones; LeNet's convolution weights are channels-last) would be read
    scrambled. Such a gradient is copied into its parameter's layout before the step."""

    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None and p.grad.stride() != p.stride():
                    p.grad = torch.empty_like(p).copy_(p.grad)
        return super().step(closure)


class FusedAdam(_GradientsInParameterLayout, torch.optim.Adam):
    """Adam in torch's fused implementation, safe for gradients in another memory layout than their parameters."""


class FusedAdamW(_GradientsInParameterLayout, torch.optim.AdamW):
    """AdamW in torch's fused implementation, safe for gradients in another memory layout than their parameters."""


def adam(lr: float = 1e-3, weight_decay: float = 0.0) -> OptimizerFactory:
    """An optimizer factory for Adam (AdamW when ``weight_decay`` > 0), in torch's fused implementation: the same
    update, computed for all parameters in one kernel, which makes the steps of small networks markedly cheaper
    (``benchmarks/run_cost.py``)."""
    if weight_decay > 0:
        return lambda params: FusedAdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    return lambda params: FusedAdam(params, lr=lr, fused=True)


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


class GroupedUpdates(Strategy):
    """Sequential group updates (Pascal et al., 2021): for each group g_j of the batch, in order, a forward pass
    on the same batch, a backward pass of the group loss, and an optimizer step on the trunk and g_j's heads.

    The group loss is the sum of the group's task losses (``group_loss="sum"``, as both papers do) or their mean.
    ``optimizer_per_group=False`` shares one optimizer ("IUS"); True gives every group its own optimizer over the
    parameters it updates, with its own moments and step counter ("IO"). Subclasses choose the groups.

    ``idle_heads="still"``: heads outside the group get no gradient (``None``, not zero), so neither they nor their
    optimizer state move. ``"moving"`` is what both official codes do, under the torch versions they were written
    for, whose ``zero_grad`` fills gradients with zeros: a head outside the group that has had a gradient gets a
    zero one, so a shared optimizer steps it too, through its momentum or Adam moments (and weight decay).
    """

    min_tasks = 2

    def __init__(self, optimizer_per_group: bool = False, group_loss: str = "sum",
                 optimizer_factory: OptimizerFactory | None = None, idle_heads: str = "still"):
        super().__init__(optimizer_factory)
        if group_loss not in ("sum", "mean"):
            raise ValueError(f"group_loss must be 'sum' or 'mean', not {group_loss!r}.")
        if idle_heads not in ("still", "moving"):
            raise ValueError(f"idle_heads must be 'still' or 'moving', not {idle_heads!r}.")
        self.optimizer_per_group, self.group_loss, self.idle_heads = optimizer_per_group, group_loss, idle_heads

    def _parameters(self, net, key):
        if key == "all":
            return list(net.parameters())
        return [*net.shared_parameters(), *(p for name in key for p in net.task_parameters(name))]

    def _groups(self) -> list[tuple[str, ...]]:
        raise NotImplementedError

    def _update(self, net, batch):
        record, _ = self.update_groups(net, batch, self._groups(), trace=False)
        return record

    def update_groups(self, net: MultiTaskNet, batch: Split, groups: Sequence[tuple[str, ...]],
                      measure_last: bool = False, trace: bool = True) -> tuple[StepRecord, list[dict[str, float]]]:
        """Update ``groups`` in order; returns the record and the losses of every task before the first group
        step and after each group step (the forward pass after g_j also serves g_{j+1}; ``measure_last`` adds a
        no-grad forward pass after the last group). With ``trace=False`` only the first losses are kept, and the
        forward pass after g_j computes the losses of g_{j+1} alone: the same updates, without the other heads."""
        losses = task_losses(net, batch, self.tasks)
        measured = [{n: l.item() for n, l in losses.items()}]
        forward = 1
        for j, group in enumerate(groups):
            optimizer = self.optimizer(net, tuple(group) if self.optimizer_per_group else "all")
            net.zero_grad(set_to_none=self.idle_heads == "still")
            loss = sum(losses[name] for name in group)
            (loss / len(group) if self.group_loss == "mean" else loss).backward()
            optimizer.step()
            if j < len(groups) - 1:
                needed = self.tasks if trace else [t for t in self.tasks if t.name in groups[j + 1]]
                losses = task_losses(net, batch, needed)
            elif measure_last:
                with torch.no_grad():
                    losses = task_losses(net, batch, self.tasks)
            else:
                continue
            forward += 1
            if trace:
                measured.append({n: l.item() for n, l in losses.items()})
        return StepRecord(measured[0], [tuple(g) for g in groups], forward, len(groups), len(groups)), measured


class Alternated(GroupedUpdates):
    """One update per task, in turn, on the same batch (Pascal et al., 2021): groups of one task.

    ``order="fixed"`` follows the order of the tasks; ``"shuffle"`` draws a new order for every batch.
    """

    def __init__(self, order: str = "fixed", optimizer_per_group: bool = False,
                 optimizer_factory: OptimizerFactory | None = None, idle_heads: str = "still"):
        super().__init__(optimizer_per_group, "sum", optimizer_factory, idle_heads=idle_heads)
        if order not in ("fixed", "shuffle"):
            raise ValueError(f"Alternated: order must be 'fixed' or 'shuffle', not {order!r}.")
        self.order = order

    def _groups(self):
        names = self.task_names
        if self.order == "shuffle":
            names = [names[i] for i in torch.randperm(len(names), generator=self.generator)]
        return [(name,) for name in names]


class RandomGroups(GroupedUpdates):
    """Random task grouping (Pascal et al., 2021): the tasks split at random into ceil(T / k) groups of
    ``group_size`` k (the last one smaller), updated one after another.

    ``redraw="never"`` draws the partition once from the seed, before training (the paper); ``"epoch"`` and
    ``"step"`` draw a new one every epoch or every batch. k = T is one update on the summed loss (Averaged with
    ``group_loss="mean"``); k = 1 is Alternated in the drawn order.
    """

    def __init__(self, group_size: int, redraw: str = "never", optimizer_per_group: bool = False,
                 group_loss: str = "sum", optimizer_factory: OptimizerFactory | None = None, idle_heads: str = "still"):
        super().__init__(optimizer_per_group, group_loss, optimizer_factory, idle_heads=idle_heads)
        if redraw not in ("never", "epoch", "step"):
            raise ValueError(f"RandomGroups: redraw must be 'never', 'epoch' or 'step', not {redraw!r}.")
        if not isinstance(group_size, int) or group_size < 1:
            raise ValueError(f"RandomGroups: group_size must be a positive integer, not {group_size!r}.")
        self.group_size, self.redraw = group_size, redraw

    def setup(self, net, tasks, seed=0):
        if self.group_size > len(tasks):
            raise ValueError(
                f"RandomGroups: group_size must lie in 1..T = 1..{len(tasks)} for this suite, not {self.group_size}."
            )
        super().setup(net, tasks, seed)
        self.groups = self.draw()

    def draw(self) -> list[tuple[str, ...]]:
        """A random partition of the tasks into groups of ``group_size``."""
        names = [self.task_names[i] for i in torch.randperm(len(self.tasks), generator=self.generator)]
        return [tuple(names[i : i + self.group_size]) for i in range(0, len(names), self.group_size)]

    def start_epoch(self, epoch):
        if self.redraw == "epoch" and epoch > 0:
            self.groups = self.draw()

    def _groups(self):
        if self.redraw == "step":
            self.groups = self.draw()
        return self.groups

    def _extra_state(self):
        return {"groups": self.groups}

    def _load_extra_state(self, state):
        self.groups = state["groups"]


class CountMatchedGroups(GroupedUpdates):
    """Random groups in given numbers: at step i, a new random partition of the tasks into ``counts[i]`` groups of
    sizes as equal as possible (the last count holds after the end of the list).

    With the numbers of groups a SelectiveGroups run used, step by step, this is its control at equal cost: the same
    group updates per batch, the groups drawn at random instead of from the affinity.
    """

    def __init__(self, counts: Sequence[int], optimizer_per_group: bool = False, group_loss: str = "sum",
                 optimizer_factory: OptimizerFactory | None = None, idle_heads: str = "still"):
        super().__init__(optimizer_per_group, group_loss, optimizer_factory, idle_heads=idle_heads)
        counts = list(counts)
        if not counts or any(not isinstance(c, int) or c < 1 for c in counts):
            raise ValueError(f"CountMatchedGroups: counts must be a non-empty list of positive integers, not {counts!r}.")
        self.counts = counts

    def setup(self, net, tasks, seed=0):
        if max(self.counts) > len(tasks):
            raise ValueError(f"CountMatchedGroups: a count of {max(self.counts)} groups exceeds the {len(tasks)} tasks.")
        super().setup(net, tasks, seed)
        self.step_index = 0

    def _groups(self):
        count = self.counts[min(self.step_index, len(self.counts) - 1)]
        self.step_index += 1
        names = [self.task_names[i] for i in torch.randperm(len(self.tasks), generator=self.generator)]
        return [tuple(part) for part in np.array_split(np.array(names, dtype=object), count)]

    def _extra_state(self):
        return {"step_index": self.step_index}

    def _load_extra_state(self, state):
        self.step_index = state["step_index"]


class SelectiveGroups(GroupedUpdates):
    """Selective task group updates (Jeong & Yoon, 2025): groups found adaptively from the proximal inter-task
    affinity tracked during training, updated one after another on every batch.

    The first ``warmup`` batches update one task per group. After that the groups come from affinity propagation
    on the tracked affinity (``affinity.groups_from_affinity``), recomputed every ``regroup_every`` batches (the
    official code regroups every batch), and their order is shuffled on every batch. ``attribution`` chooses how
    loss changes are credited (see ``affinity.ProximalAffinity.update``); ``measure_last`` adds a no-grad forward
    pass after the last group so that its change is measured too.

    ``attribution="as_coded"`` is the official method (wooseong97/sel-update-mtl) as it runs: besides its
    attribution, its warm-up lasts ``warmup + 1`` batches (the counter is compared before it is incremented), it
    groups with the official normalisation and retries (``groups_from_affinity(as_coded=True)``), and a batch whose
    tasks form one group updates that group twice, so that the first step's change is credited to it.

    Cost (benchmarks/step_cost.py): one affinity propagation takes milliseconds, so regrouping on every batch can
    add about a tenth to a small network's step; ``regroup_every=10`` brings it near 1%. The last-group pass
    costs one forward pass per batch, which matters when there are few groups.
    """

    def __init__(self, beta: float = 1e-3, warmup: int = 100, regroup_every: int = 1, attribution: str = "intended",
                 measure_last: bool = True, optimizer_per_group: bool = False, group_loss: str = "sum",
                 optimizer_factory: OptimizerFactory | None = None, idle_heads: str = "still"):
        super().__init__(optimizer_per_group, group_loss, optimizer_factory, idle_heads=idle_heads)
        if not 0 < beta <= 1:
            raise ValueError(f"SelectiveGroups: beta must lie in (0, 1], not {beta}.")
        if attribution not in ("intended", "as_coded"):
            raise ValueError(f"SelectiveGroups: attribution must be 'intended' or 'as_coded', not {attribution!r}.")
        if warmup < 0 or regroup_every < 1:
            raise ValueError(f"SelectiveGroups: need warmup >= 0 and regroup_every >= 1, got {warmup} and {regroup_every}.")
        self.beta, self.warmup, self.regroup_every = beta, warmup, regroup_every
        self.attribution, self.measure_last = attribution, measure_last

    def setup(self, net, tasks, seed=0):
        super().setup(net, tasks, seed)
        self.affinity = ProximalAffinity(self.task_names, self.beta)
        self.groups = [(name,) for name in self.task_names]
        self.batches = 0

    def _update(self, net, batch):
        official = self.attribution == "as_coded"
        warmup = self.warmup + official
        if self.batches >= warmup and (self.batches - warmup) % self.regroup_every == 0:
            self.groups = groups_from_affinity(self.affinity.matrix, self.task_names, self.groups, as_coded=official)
        order = torch.randperm(len(self.groups), generator=self.generator)
        groups = [self.groups[i] for i in order]
        if official and len(groups) == 1:
            groups = groups * 2
        record, trace = self.update_groups(net, batch, groups, measure_last=self.measure_last)
        self.affinity.update(groups, trace, self.attribution)
        self.batches += 1
        record.extra["affinity"] = self.affinity.matrix
        return record

    def _extra_state(self):
        return {"matrix": self.affinity.matrix.copy(), "groups": self.groups, "batches": self.batches}

    def _load_extra_state(self, state):
        self.affinity.matrix[:] = state["matrix"]
        self.groups, self.batches = state["groups"], state["batches"]


class AffinityProbe(GroupedUpdates):
    """One update per task in a new random order on every batch (the warm-up of SelectiveGroups), measuring how
    the tasks relate without letting the measure steer training, so that measures can be compared on one run.

    The proximal inter-task affinity (Jeong & Yoon, 2025) is tracked under both attributions from the same losses
    (``record.extra["affinity"]`` stacks the intended and the as-coded matrix), and every ``lookahead_every``
    batches TAG's lookahead affinity (Fifty et al., 2021) is measured before the updates
    (``record.extra["lookahead"]``): along the plain gradient with step size ``lookahead_lr``
    (``lookahead="gradient"``, the paper's equation) or along the shared optimizer's own step, divided by its
    learning rate (``lookahead="optimizer"``, as TAG's code computes it).
    """

    attributions = ("intended", "as_coded")

    def __init__(self, beta: float = 1e-3, lookahead_every: int | None = None, lookahead_lr: float = 1e-3,
                 lookahead: str = "gradient", optimizer_per_group: bool = False,
                 optimizer_factory: OptimizerFactory | None = None, idle_heads: str = "still"):
        super().__init__(optimizer_per_group, "sum", optimizer_factory, idle_heads=idle_heads)
        if lookahead_every is not None and lookahead_every < 1:
            raise ValueError(f"AffinityProbe: lookahead_every must be a positive integer or None, not {lookahead_every}.")
        if lookahead not in ("gradient", "optimizer"):
            raise ValueError(f"AffinityProbe: lookahead must be 'gradient' or 'optimizer', not {lookahead!r}.")
        if lookahead == "optimizer" and optimizer_per_group:
            raise ValueError("AffinityProbe: lookahead='optimizer' follows one shared optimizer; it needs "
                             "optimizer_per_group=False.")
        self.beta, self.lookahead_every, self.lookahead_lr = beta, lookahead_every, lookahead_lr
        self.lookahead = lookahead

    def setup(self, net, tasks, seed=0):
        super().setup(net, tasks, seed)
        self.trackers = {a: ProximalAffinity(self.task_names, self.beta) for a in self.attributions}
        self.batches = 0

    def _update(self, net, batch):
        extra = {}
        if self.lookahead_every and self.batches % self.lookahead_every == 0:
            step = {"optimizer": self.optimizer(net, "all")} if self.lookahead == "optimizer" else {"lr": self.lookahead_lr}
            extra["lookahead"] = lookahead_affinity(net, batch, self.tasks, **step)
        order = torch.randperm(len(self.tasks), generator=self.generator)
        groups = [(self.task_names[i],) for i in order]
        record, trace = self.update_groups(net, batch, groups, measure_last=True)
        for attribution, tracker in self.trackers.items():
            tracker.update(groups, trace, attribution)
        self.batches += 1
        record.extra = {**extra, "affinity": np.stack([self.trackers[a].matrix for a in self.attributions])}
        return record

    def _extra_state(self):
        return {"matrices": {a: t.matrix.copy() for a, t in self.trackers.items()}, "batches": self.batches}

    def _load_extra_state(self, state):
        for attribution, matrix in state["matrices"].items():
            self.trackers[attribution].matrix[:] = matrix
        self.batches = state["batches"]


def _saved(module: nn.Module, device: torch.device) -> dict:
    """A torchjd module with all of its state (buffers, counters, inner optimizers), for a checkpoint."""
    buffer = io.BytesIO()
    torch.save(module, buffer)
    return {"module": buffer.getvalue(), "device": str(device)}


def _restored(state: dict, device: torch.device) -> nn.Module:
    """The module that ``_saved`` wrote (from this package's own checkpoint). On the device it was saved from, every
    tensor comes back where it was (torchjd keeps some state on the CPU on purpose); saved from another device, the
    tensors that were on that device move to ``device``."""
    where = None if state["device"] == str(device) else {state["device"]: str(device)}
    return torch.load(io.BytesIO(state["module"]), map_location=where, weights_only=False)


def _device(net: MultiTaskNet) -> torch.device:
    return next(net.parameters()).device


def _tensor_kwargs(kwargs: Mapping, device: torch.device) -> dict:
    """Keyword arguments with tensors moved to ``device`` and lists of numbers (as a JSON configuration holds a
    preference vector) made float tensors there."""
    def convert(value):
        if isinstance(value, Tensor):
            return value.to(device)
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, (int, float)) for v in value):
            return torch.tensor(value, dtype=torch.float32, device=device)
        return value
    return {key: convert(value) for key, value in kwargs.items()}


def _build(kind: str, table: Mapping[str, Callable], name: str, n_tasks: int, kwargs: Mapping, device: torch.device):
    """``table[name](n_tasks, **kwargs)`` with its tensors created on ``device``; wrong arguments are explained."""
    with torch.device(device):
        try:
            return table[name](n_tasks, **_tensor_kwargs(kwargs, device))
        except TypeError as error:
            raise ValueError(f"{kind} {name!r} does not accept the arguments {dict(kwargs)}: {error}") from None


def _unknown(strategy: str, kind: str, name, table: Mapping) -> None:
    if not isinstance(name, str) or name not in table:
        raise ValueError(f"{strategy}: unknown {kind} {name!r}; choose from {', '.join(table)}.")


# name -> aggregator for T tasks; built on use, since some need optional solvers
AGGREGATORS: dict[str, Callable[[int], aggregation.Aggregator]] = {
    "mean": lambda n: aggregation.Mean(),
    "pcgrad": lambda n: aggregation.PCGrad(),
    "mgda": lambda n: aggregation.MGDA(),
    "cagrad": lambda n: aggregation.CAGrad(c=0.4),
    "nashmtl": lambda n: aggregation.NashMTL(n_tasks=n),
    "upgrad": lambda n: aggregation.UPGrad(),
    "imtlg": lambda n: aggregation.IMTLG(),
    "dualproj": lambda n: aggregation.DualProj(),
    "aligned_mtl": lambda n: aggregation.AlignedMTL(),
    "config": lambda n: aggregation.ConFIG(),
    "graddrop": lambda n: aggregation.GradDrop(),
    "gradvac": lambda n: aggregation.GradVac(),
    # alpha = 2: the official code's run scripts for CelebA and QM9 (its argument's default, 1, is proportional
    # fairness; alpha -> infinity approaches max-min fairness)
    "fairgrad": lambda n: aggregation.FairGrad(alpha=2.0),
    # No warm-up (n_warmup_steps=0), as in the official code and LibMTL: the first step's excess risks are the
    # baseline. The paper's 3 epochs of warm-up depend on the epoch length, which this factory does not know.
    "excess_mtl": lambda n: aggregation.ExcessMTL(),
    # PCD is asymmetric: the first task is the primary objective; tau = 0.02, the paper's representative setting
    "pcd": lambda n: aggregation.PCD(tau=0.02),
    "random": lambda n: aggregation.Random(),
    # CR-MOGM's moving average (alpha = 0.9, torchjd's default) of MGDA's weights, the paper's main case
    "cr_mogm": lambda n: aggregation.GramianWeightedAggregator(
        aggregation.CRMOGMWeighting(aggregation.MGDAWeighting())),
}

# torchjd aggregators (and, for sum and constant, scalarizers) that are not offered, with the reason
NOT_APPLICABLE: dict[str, str] = {
    "krum": "Krum keeps the rows closest to the others when some may be adversarial; it needs at least "
            "n_byzantine + 3 rows, so never applies to two tasks.",
    "trimmed_mean": "TrimmedMean drops the trim_number largest and smallest values of each coordinate and needs "
                    "2 * trim_number + 1 rows; with two tasks only trim_number = 0 is possible, which is Mean.",
    "sum": "Sum (aggregator or scalarizer) is the sum of the task losses' gradients: Averaged with uniform weights "
           "at T times the learning rate.",
    "constant": "Constant(weights) (aggregator or scalarizer) is a fixed weighting of the task losses: "
                "Averaged(weights=...) traces that scalarization front.",
}


class Aggregated(Strategy):
    """Gradient aggregation: the per-task gradients of the shared parameters (one Jacobian row per task) are
    combined by a torchjd aggregator (Quinton & Rey, 2024), and each head is trained on its own task's loss.

    ``aggregator`` is a name from ``AGGREGATORS`` or a torchjd ``Aggregator``. The names: mean; PCGrad (Yu et al.,
    2020); MGDA (Desideri, 2012; Sener & Koltun, 2018); CAGrad with c = 0.4 (Liu et al., 2021); Nash-MTL (Navon et
    al., 2022); UPGrad (Quinton & Rey, 2024); IMTL-G (Liu et al., 2021); DualProj (Lopez-Paz & Ranzato, 2017, as in
    Quinton & Rey, 2024); Aligned-MTL (Senushkin et al., 2023); ConFIG (Liu, Chu & Thuerey, 2024); GradDrop (Chen et
    al., 2020); GradVac (Wang et al., 2021); FairGrad with alpha = 2 (Ban & Ji, 2024); ExcessMTL (He et al., 2024);
    PCD, the first task primary (Varam & AlHajri, 2026); random weights on the gradients (Lin et al., 2022); CR-MOGM
    smoothing MGDA's weights (Zhou et al., 2022). ``NOT_APPLICABLE`` says why the other aggregators are left out.
    One forward pass; the Jacobian costs one backward pass per task. Stateful aggregators keep their state through
    a checkpoint.
    """

    min_tasks = 2

    def __init__(self, aggregator="upgrad", optimizer_factory: OptimizerFactory | None = None):
        super().__init__(optimizer_factory)
        if isinstance(aggregator, str):
            _unknown("Aggregated", "aggregator", aggregator, AGGREGATORS)
        self.aggregator = aggregator

    def setup(self, net, tasks, seed=0):
        super().setup(net, tasks, seed)
        self._device = _device(net)
        if isinstance(self.aggregator, str):
            self._aggregator = AGGREGATORS[self.aggregator](len(tasks))
        else:
            self._aggregator = self.aggregator

    def _parameters(self, net, key):
        return list(net.parameters())

    def _update(self, net, batch):
        optimizer = self.optimizer(net, "all")
        optimizer.zero_grad(set_to_none=True)
        features = net.trunk(batch.x)
        losses = list(task_losses(net, batch, self.tasks, features).values())
        shared = [p for p in net.shared_parameters() if p.requires_grad]
        mtl_backward(losses, features, shared_params=shared,
                     tasks_params=[list(net.task_parameters(t.name)) for t in self.tasks])
        jac_to_grad(shared, self._aggregator)
        optimizer.step()
        names = tuple(self.task_names)
        return StepRecord({n: l.item() for n, l in zip(names, losses)}, [names], 1, len(names), 1)

    def _extra_state(self):
        return {"aggregator": _saved(self._aggregator, self._device)}

    def _load_extra_state(self, state):
        if "aggregator" in state:
            self._aggregator = _restored(state["aggregator"], self._device)


def _uniform(n: int) -> Tensor:
    return torch.full((n,), 1.0 / n)


# name -> factory(n_tasks, **kwargs) of a torchjd scalarizer; the defaults of required arguments are the papers'
SCALARIZERS: dict[str, Callable[..., scalarization.Scalarizer]] = {
    "uw": lambda n, **kw: scalarization.UW(n, **kw),
    "dwa": lambda n, **kw: scalarization.DWA(**kw),  # temperature 2, the paper's
    "famo": lambda n, **kw: scalarization.FAMO(n, **kw),  # lr 0.025 and weight decay 1e-3 on the logits, the paper's
    # mu = 1: the official multi-task code's setting (the paper tries 0.01 to 1). That code also divides the losses
    # by their mean over a warm-up epoch and takes logs; torchjd's STCH takes the losses as they are.
    "stch": lambda n, mu=1.0, **kw: scalarization.STCH(mu, **kw),
    "imtl_l": lambda n, **kw: scalarization.IMTLL(n, **kw),
    "geometric_mean": lambda n: scalarization.GeometricMean(),
    "random": lambda n: scalarization.Random(),
    # lambda = 2: the official code's default (its Multi-MNIST setting); one uniform preference, where the paper draws
    # a new one per batch (and feeds it to the network) to learn the whole front
    "cosmos": lambda n, lambda_=2.0, weights=None: scalarization.COSMOS(
        lambda_, _uniform(n) if weights is None else weights),
    # theta = 5, MOEA/D's experiments; the origin as the ideal point suits non-negative losses
    "pbi": lambda n, theta=5.0, weights=None, reference=None: scalarization.PBI(
        theta, _uniform(n) if weights is None else weights, reference),
}


class _AroundTorchjdModule(Strategy):
    """A strategy around one torchjd module (``module``): its name is one of ``TABLE``'s, checked when the strategy
    is made; ``setup`` builds it on the network's device with the strategy's keyword arguments for it, and a
    checkpoint keeps its state. ``ROLE`` names it in messages and in the checkpoint."""

    ROLE: str
    TABLE: Mapping[str, Callable]
    min_tasks = 2

    def __init__(self, method: str, method_kwargs: Mapping | None, optimizer_factory: OptimizerFactory | None):
        super().__init__(optimizer_factory)
        _unknown(type(self).__name__, self.ROLE, method, self.TABLE)
        self.method, self.method_kwargs = method, dict(method_kwargs or {})

    def setup(self, net, tasks, seed=0):
        super().setup(net, tasks, seed)
        self._device = _device(net)
        self.module = _build(f"{type(self).__name__}: {self.ROLE}", self.TABLE, self.method, len(tasks),
                             self.method_kwargs, self._device).to(self._device)

    def _extra_state(self):
        return {self.ROLE: _saved(self.module, self._device)}

    def _load_extra_state(self, state):
        self.module = _restored(state[self.ROLE], self._device)


class Scalarized(_AroundTorchjdModule):
    """One step on a scalarization of the task losses computed by a torchjd scalarizer: the losses, stacked in task
    order, become one loss, backpropagated once through the heads and the trunk.

    ``scalarizer`` is a name from ``SCALARIZERS``, built with ``scalarizer_kwargs``: uncertainty weighting ("uw",
    Kendall, Gal & Cipolla, 2018), dynamic weight average ("dwa", Liu, Johns & Davison, 2019), FAMO ("famo", Liu et
    al., 2023), smooth Tchebycheff ("stch", Lin et al., 2024), IMTL-L ("imtl_l", Liu et al., 2021), the geometric
    mean ("geometric_mean", Chennupati et al., 2019), random loss weighting ("random", Lin et al., 2022), COSMOS
    ("cosmos", Ruchte & Grabocka, 2021) and PBI ("pbi", Zhang & Li, 2007).

    What each needs is done here: the log-variances of UW and the scales of IMTL-L are learned by the strategy's
    optimizer with the network; FAMO updates its own task logits from the losses recomputed on the same batch after
    the step (one more forward pass, without gradients); DWA closes an epoch before every epoch after the first.
    The scalarizers keep their papers' scales: UW, IMTL-L and DWA sum the losses (DWA's weights sum to T), so the
    same learning rate moves the trunk about T times as far as Averaged's mean. ``record.extra["task_weights"]``
    holds the weight of each task's loss in the step, the derivative of the scalarized loss by that loss; ``module``
    is the torchjd scalarizer that ``setup`` built, its state kept through a checkpoint. One forward and one backward
    pass (FAMO: two forward passes).
    """

    ROLE, TABLE = "scalarizer", SCALARIZERS

    def __init__(self, scalarizer: str = "uw", scalarizer_kwargs: Mapping | None = None,
                 optimizer_factory: OptimizerFactory | None = None):
        super().__init__(scalarizer, scalarizer_kwargs, optimizer_factory)

    @property
    def _learned_with_the_network(self) -> bool:
        # FAMO's logits are stepped by FAMO's own Adam in update(); they must stay out of the strategy's optimizer
        return not isinstance(self.module, scalarization.FAMO)

    def _parameters(self, net, key):
        extra = list(self.module.parameters()) if self._learned_with_the_network else []
        return [*net.parameters(), *extra]

    def start_epoch(self, epoch):
        if epoch > 0 and isinstance(self.module, scalarization.DWA):
            self.module.step()  # the average losses of the epoch that just ended

    def _update(self, net, batch):
        optimizer = self.optimizer(net, "all")
        optimizer.zero_grad(set_to_none=True)
        losses = task_losses(net, batch, self.tasks)
        stacked = torch.stack(list(losses.values()))
        loss = self.module(stacked)
        # through the scalarizer alone, not the network: no backward pass of the network
        (weights,) = torch.autograd.grad(loss, stacked, retain_graph=True)
        loss.backward()
        optimizer.step()
        forward = 1
        if isinstance(self.module, scalarization.FAMO):
            with torch.no_grad():
                after = task_losses(net, batch, self.tasks)
            self.module.update(torch.stack(list(after.values())))
            forward = 2
        record = StepRecord({n: l.item() for n, l in losses.items()}, [tuple(self.task_names)], forward, 1, 1)
        record.extra["task_weights"] = weights.detach().cpu().double().numpy()
        return record

    def _load_extra_state(self, state):
        saved = _restored(state[self.ROLE], self._device)
        if self._learned_with_the_network:  # the optimizer holds the parameters: keep them, with the saved values
            with torch.no_grad():
                for (name, held), value in zip(self.module.named_parameters(), saved.parameters()):
                    held.copy_(value)
                    owner, _, leaf = name.rpartition(".")
                    setattr(saved.get_submodule(owner), leaf, held)
        self.module = saved


# name -> factory(n_tasks, **kwargs) of a torchjd weighting of J_1 J_2^T from independent parts of a batch
SPLIT_WEIGHTINGS: dict[str, Callable[..., aggregation.Weighting]] = {
    "modo": lambda n, **kw: aggregation.MoDoWeighting(**kw),  # gamma = 0.1, rho = 0.1: torchjd's defaults
    "sdmgrad": lambda n, **kw: aggregation.SDMGradWeighting(**kw),  # lambda = 0.3, the official experiments'
}
SPLIT_PARTS = {"modo": 2, "sdmgrad": 3}


class SplitBatchWeighted(_AroundTorchjdModule):
    """Task weights from two independent estimates of the Jacobian, by torchjd's MoDo (Chen et al., 2024) or
    SDMGrad (Xiao, Ban & Ji, 2023) weighting; each batch, drawn at random, is split into independent parts.

    For part i, J_i is the Jacobian of the part's task losses with respect to the trunk's parameters
    (``torchjd.autojac.jac``), and the weights are ``weighting(J_1 @ J_2.T)``. The trunk then takes
    sum_t w_t grad L_t and each head its own task's unweighted gradient, where L_t is, for "modo", the mean of
    task t's losses on the two halves (MoDo's two-batch version, whose trunk gradient is read from J_1 and J_2) and,
    for "sdmgrad", its loss on a third part, the update batch of SDMGrad. Cost: MoDo 2 forward and 2T backward
    passes (on halves of the batch); SDMGrad 3 forward and 2T + 1 backward passes (on thirds). The heads'
    gradients come from a backward pass through the heads alone, not counted. ``record.losses`` averages the parts
    by size; ``record.extra["task_weights"]`` holds w; ``module`` is the torchjd weighting, whose state survives a
    checkpoint.
    """

    ROLE, TABLE = "weighting", SPLIT_WEIGHTINGS

    def __init__(self, weighting: str = "modo", weighting_kwargs: Mapping | None = None,
                 optimizer_factory: OptimizerFactory | None = None):
        super().__init__(weighting, weighting_kwargs, optimizer_factory)
        self.parts = SPLIT_PARTS[weighting]

    def _parameters(self, net, key):
        return list(net.parameters())

    def _split(self, batch: Split) -> list[Split]:
        if len(batch) < self.parts:
            raise ValueError(
                f"SplitBatchWeighted({self.method!r}) splits every batch into {self.parts} independent parts and "
                f"needs at least {self.parts} examples; got a batch of {len(batch)}. The last batch of an epoch holds "
                f"len(train) % batch_size examples: choose a batch_size that leaves none or at least {self.parts}."
            )
        return [Split(batch.x[index], {name: y[index] for name, y in batch.y.items()})
                for index in torch.arange(len(batch), device=batch.x.device).tensor_split(self.parts)]

    def _losses(self, net: MultiTaskNet, part: Split) -> Tensor:
        return torch.stack(list(task_losses(net, part, self.tasks).values()))

    def _update(self, net, batch):
        optimizer = self.optimizer(net, "all")
        optimizer.zero_grad(set_to_none=True)
        parts = self._split(batch)
        shared = [p for p in net.shared_parameters() if p.requires_grad]
        heads = [p for t in self.tasks for p in net.task_parameters(t.name) if p.requires_grad]
        retain = self.method == "modo"  # MoDo's heads train on the same graphs
        losses, jacobians = [], []
        for part in parts[:2]:
            losses.append(self._losses(net, part))
            jacobians.append(torch.cat([j.flatten(1) for j in jac(losses[-1], shared, retain_graph=retain)], dim=1))
        weights = self.module(jacobians[0] @ jacobians[1].T).detach()
        if self.method == "modo":
            update = (losses[0] + losses[1]) / 2
            gradient = weights @ ((jacobians[0] + jacobians[1]) / 2)
            for p, g in zip(shared, gradient.split([p.numel() for p in shared])):
                p.grad = g.view_as(p).clone()
        else:
            losses.append(self._losses(net, parts[2]))
            update = losses[2]
            (weights @ update).backward(inputs=shared, retain_graph=bool(heads))
        if heads:
            update.sum().backward(inputs=heads)
        optimizer.step()
        sizes = torch.tensor([len(p) for p in parts], dtype=losses[0].dtype, device=losses[0].device)
        mean = (torch.stack([l.detach() for l in losses]) * sizes[:, None]).sum(0) / sizes.sum()
        names = tuple(self.task_names)
        backward = 2 * len(names) + (self.method == "sdmgrad")
        record = StepRecord(dict(zip(names, mean.tolist())), [names], len(parts), backward, 1)
        record.extra["task_weights"] = weights.cpu().double().numpy()
        return record

