"""Gradient aggregation by torchjd's aggregators: the registry of those that apply to two tasks, the book's label of
each, why the others are left out, and the Aggregated strategy."""

from __future__ import annotations

from typing import Callable

import torch
from torchjd import aggregation
from torchjd.autojac import jac_to_grad, mtl_backward

from .base import StepRecord, Strategy, checked, registry_name, task_losses
from .optimizers import OptimizerFactory
from .torchjd_module import _build, _device, _restored, _saved

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
    # No warm-up by default (n_warmup_steps=0), as in the official code and LibMTL: the first step's excess risks
    # are the baseline. The paper's 3 epochs of warm-up depend on the epoch length: give them as
    # aggregator_kwargs={"n_warmup_steps": 3 * steps_per_epoch}.
    "excess_mtl": lambda n, **kw: aggregation.ExcessMTL(**kw),
    # PCD is asymmetric: the first task is the primary objective; tau = 0.02, the paper's representative setting
    "pcd": lambda n: aggregation.PCD(tau=0.02),
    "random": lambda n: aggregation.Random(),
    # CR-MOGM's moving average (alpha = 0.9, torchjd's default) of MGDA's weights, the paper's main case
    "cr_mogm": lambda n: aggregation.GramianWeightedAggregator(
        aggregation.CRMOGMWeighting(aggregation.MGDAWeighting())),
}

# name -> the book's label of the method, in the order of the book's tables
AGGREGATOR_LABELS: dict[str, str] = {
    "pcgrad": "PCGrad", "mgda": "MGDA", "cagrad": "CAGrad", "nashmtl": "Nash-MTL", "upgrad": "UPGrad",
    "imtlg": "IMTL-G", "dualproj": "DualProj", "aligned_mtl": "Aligned-MTL", "config": "ConFIG",
    "graddrop": "GradDrop", "gradvac": "GradVac", "fairgrad": "FairGrad", "excess_mtl": "ExcessMTL",
    "pcd": "PCD", "random": "random gradient weights", "cr_mogm": "CR-MOGM (MGDA)",
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

# registered methods that the book does not label, since Averaged already runs them, with the reason
COVERED_BY_AVERAGED: dict[str, str] = {
    "mean": "Mean (aggregator or scalarizer) is the mean of the task losses' gradients: Averaged with uniform "
            "weights, the w=0.50 point of the front.",
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
    smoothing MGDA's weights (Zhou et al., 2022). ``aggregator_kwargs`` are given to a named aggregator's factory
    (ExcessMTL's ``n_warmup_steps``). ``NOT_APPLICABLE`` says why the other aggregators are left out.
    One forward pass; the Jacobian costs one backward pass per task. Stateful aggregators keep their state through
    a checkpoint.
    """

    min_tasks = 2

    def __init__(self, aggregator="upgrad", aggregator_kwargs: dict | None = None,
                 optimizer_factory: OptimizerFactory | None = None):
        super().__init__(optimizer_factory)
        self.aggregator_kwargs = checked(self, "aggregator_kwargs", aggregator_kwargs, dict,
                                         "a mapping of keyword -> value for the aggregator", optional=True) or {}
        if not isinstance(aggregator, aggregation.Aggregator):
            registry_name(self, "aggregator", aggregator, AGGREGATORS, ", or a torchjd Aggregator")
            if self.aggregator_kwargs:  # refused now, not in a worker: built once for two tasks
                _build("Aggregated: aggregator", AGGREGATORS, aggregator, 2, self.aggregator_kwargs,
                       torch.device("cpu"))
        elif self.aggregator_kwargs:
            raise ValueError("Aggregated: aggregator_kwargs apply to an aggregator named from AGGREGATORS, not to a "
                             "torchjd Aggregator object, which is built already.")
        self.aggregator = aggregator

    def setup(self, net, tasks, seed=0):
        super().setup(net, tasks, seed)
        self._device = _device(net)
        if isinstance(self.aggregator, str):
            self._aggregator = _build("Aggregated: aggregator", AGGREGATORS, self.aggregator, len(tasks),
                                      self.aggregator_kwargs, self._device, next(net.parameters()).dtype)
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
