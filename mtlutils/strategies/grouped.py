"""Sequential group updates (Pascal et al., 2021): one optimizer step per group of tasks on every batch, with the
groups taken one task at a time, drawn at random, or drawn in given numbers."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..models import MultiTaskNet
from ..tasks import Split
from .base import StepRecord, Strategy, checked, choice, task_losses
from .optimizers import OptimizerFactory


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
        self.optimizer_per_group = checked(self, "optimizer_per_group", optimizer_per_group, bool)
        self.group_loss = choice(self, "group_loss", group_loss, ("sum", "mean"))
        self.idle_heads = choice(self, "idle_heads", idle_heads, ("still", "moving"))

    def _parameters(self, net, key):
        if key == "all":
            return list(net.parameters())
        return [*net.shared_parameters(), *(p for name in key for p in net.task_parameters(name))]

    def _groups(self) -> list[tuple[str, ...]]:
        raise NotImplementedError

    def next_groups(self) -> list[tuple[str, ...]]:
        """The groups of the next batch, in the order they are updated (drawn from the strategy's generator)."""
        return self._groups()

    def _update(self, net, batch):
        record, _ = self.update_groups(net, batch, self.next_groups(), trace=False)
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
        self.order = choice(self, "order", order, ("fixed", "shuffle"))

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
        self.redraw = choice(self, "redraw", redraw, ("never", "epoch", "step"))
        self.group_size = checked(self, "group_size", group_size, int, "a positive whole number")
        if self.group_size < 1:
            raise ValueError(f"RandomGroups: group_size must be a positive integer, not {self.group_size!r}.")

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
        counts = checked(self, "counts", counts, list, "a non-empty list of positive whole numbers")
        counts = [checked(self, f"counts[{i}]", c, int, "a positive whole number") for i, c in enumerate(counts)]
        if not counts or any(c < 1 for c in counts):
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
