"""Group updates steered or watched by a measure of how tasks relate: selective task group updates (Jeong & Yoon,
2025) on the proximal inter-task affinity, and a probe that tracks it beside TAG's lookahead affinity."""

from __future__ import annotations

import numpy as np
import torch

from ..affinity import ProximalAffinity, groups_from_affinity, lookahead_affinity
from .base import checked, choice
from .grouped import GroupedUpdates
from .optimizers import OptimizerFactory


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
        self.beta = checked(self, "beta", beta, float, "a number in (0, 1]")
        if not 0 < self.beta <= 1:
            raise ValueError(f"SelectiveGroups: beta must lie in (0, 1], not {self.beta}.")
        self.attribution = choice(self, "attribution", attribution, ("intended", "as_coded"))
        self.warmup = checked(self, "warmup", warmup, int, "a whole number >= 0")
        self.regroup_every = checked(self, "regroup_every", regroup_every, int, "a whole number >= 1")
        if self.warmup < 0 or self.regroup_every < 1:
            raise ValueError(f"SelectiveGroups: need warmup >= 0 and regroup_every >= 1, got {self.warmup} and "
                             f"{self.regroup_every}.")
        self.measure_last = checked(self, "measure_last", measure_last, bool)

    def setup(self, net, tasks, seed=0):
        super().setup(net, tasks, seed)
        self.affinity = ProximalAffinity(self.task_names, self.beta)
        self.groups = [(name,) for name in self.task_names]
        self.batches = 0

    def next_groups(self):
        """The groups of the next batch: regrouped from the affinity when it is time, in a new random order."""
        official = self.attribution == "as_coded"
        warmup = self.warmup + official
        if self.batches >= warmup and (self.batches - warmup) % self.regroup_every == 0:
            self.groups = groups_from_affinity(self.affinity.matrix, self.task_names, self.groups, as_coded=official)
        order = torch.randperm(len(self.groups), generator=self.generator)
        groups = [self.groups[i] for i in order]
        return groups * 2 if official and len(groups) == 1 else groups

    def after_groups(self, groups, trace) -> dict:
        """Credit the batch's loss changes (``trace``, as ``update_groups`` measures them) to the affinity; returns
        what the step reports (``StepRecord.extra``)."""
        self.affinity.update(groups, trace, self.attribution)
        self.batches += 1
        return {"affinity": self.affinity.matrix}

    def _update(self, net, batch):
        groups = self.next_groups()
        record, trace = self.update_groups(net, batch, groups, measure_last=self.measure_last)
        record.extra.update(self.after_groups(groups, trace))
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
    measure_last = True  # the last task's change is measured too

    def __init__(self, beta: float = 1e-3, lookahead_every: int | None = None, lookahead_lr: float = 1e-3,
                 lookahead: str = "gradient", optimizer_per_group: bool = False,
                 optimizer_factory: OptimizerFactory | None = None, idle_heads: str = "still"):
        super().__init__(optimizer_per_group, "sum", optimizer_factory, idle_heads=idle_heads)
        self.lookahead_every = checked(self, "lookahead_every", lookahead_every, int, "a positive whole number",
                                       optional=True)
        if self.lookahead_every is not None and self.lookahead_every < 1:
            raise ValueError(f"AffinityProbe: lookahead_every must be a positive integer or None, not "
                             f"{self.lookahead_every}.")
        self.lookahead = choice(self, "lookahead", lookahead, ("gradient", "optimizer"))
        if self.lookahead == "optimizer" and self.optimizer_per_group:
            raise ValueError("AffinityProbe: lookahead='optimizer' follows one shared optimizer; it needs "
                             "optimizer_per_group=False.")
        self.beta = checked(self, "beta", beta, float, "a number in (0, 1]")
        self.lookahead_lr = checked(self, "lookahead_lr", lookahead_lr, float, "a positive number")

    def setup(self, net, tasks, seed=0):
        super().setup(net, tasks, seed)
        self.trackers = {a: ProximalAffinity(self.task_names, self.beta) for a in self.attributions}
        self.batches = 0

    def lookahead_due(self) -> bool:
        """Whether TAG's lookahead affinity is measured on the next batch, before its updates."""
        return bool(self.lookahead_every) and self.batches % self.lookahead_every == 0

    def next_groups(self):
        """One task a group, in a new random order."""
        order = torch.randperm(len(self.tasks), generator=self.generator)
        return [(self.task_names[i],) for i in order]

    def after_groups(self, groups, trace) -> dict:
        """Credit the batch's loss changes to the affinity under both attributions; returns them stacked."""
        for attribution, tracker in self.trackers.items():
            tracker.update(groups, trace, attribution)
        self.batches += 1
        return {"affinity": np.stack([self.trackers[a].matrix for a in self.attributions])}

    def _update(self, net, batch):
        extra = {}
        if self.lookahead_due():
            step = {"optimizer": self.optimizer(net, "all")} if self.lookahead == "optimizer" else {"lr": self.lookahead_lr}
            extra["lookahead"] = lookahead_affinity(net, batch, self.tasks, **step)
        groups = self.next_groups()
        record, trace = self.update_groups(net, batch, groups, measure_last=self.measure_last)
        record.extra = {**extra, **self.after_groups(groups, trace)}
        return record

    def _extra_state(self):
        return {"matrices": {a: t.matrix.copy() for a, t in self.trackers.items()}, "batches": self.batches}

    def _load_extra_state(self, state):
        for attribution, matrix in state["matrices"].items():
            self.trackers[attribution].matrix[:] = matrix
        self.batches = state["batches"]
