"""Task weights from independent parts of each batch, by torchjd's MoDo and SDMGrad weightings: the registry,
the book's label of each, and the SplitBatchWeighted strategy."""

from __future__ import annotations

from typing import Callable, Mapping

import torch
from torch import Tensor
from torchjd import aggregation
from torchjd.autojac import jac

from ..models import MultiTaskNet
from ..tasks import Split
from .base import StepRecord, task_losses
from .optimizers import OptimizerFactory
from .torchjd_module import _AroundTorchjdModule

# name -> factory(n_tasks, **kwargs) of a torchjd weighting of J_1 J_2^T from independent parts of a batch
SPLIT_WEIGHTINGS: dict[str, Callable[..., aggregation.Weighting]] = {
    "modo": lambda n, **kw: aggregation.MoDoWeighting(**kw),  # gamma = 0.1, rho = 0.1: torchjd's defaults
    "sdmgrad": lambda n, **kw: aggregation.SDMGradWeighting(**kw),  # lambda = 0.3, the official experiments'
}
SPLIT_PARTS = {"modo": 2, "sdmgrad": 3}

# name -> the book's label of the method, in the order of the book's tables
SPLIT_WEIGHTING_LABELS: dict[str, str] = {"modo": "MoDo", "sdmgrad": "SDMGrad"}


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

    def part_indices(self, size: int, device: torch.device) -> tuple[Tensor, ...]:
        """The indices of each independent part of a batch of ``size`` examples."""
        if size < self.parts:
            raise ValueError(
                f"SplitBatchWeighted({self.method!r}) splits every batch into {self.parts} independent parts and "
                f"needs at least {self.parts} examples; got a batch of {size}. The last batch of an epoch holds "
                f"len(train) % batch_size examples: choose a batch_size that leaves none or at least {self.parts}."
            )
        return torch.arange(size, device=device).tensor_split(self.parts)

    def _split(self, batch: Split) -> list[Split]:
        return [Split(batch.x[index], {name: y[index] for name, y in batch.y.items()})
                for index in self.part_indices(len(batch), batch.x.device)]

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
