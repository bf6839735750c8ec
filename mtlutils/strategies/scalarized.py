"""Loss scalarization by torchjd's scalarizers: the registry, the book's label of each, and the Scalarized
strategy."""

from __future__ import annotations

from typing import Callable, Mapping

import torch
from torch import Tensor
from torchjd import scalarization

from .base import StepRecord, task_losses
from .optimizers import OptimizerFactory
from .torchjd_module import _AroundTorchjdModule, _restored


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

# name -> the book's label of the method, in the order of the book's tables
SCALARIZER_LABELS: dict[str, str] = {
    "uw": "uncertainty weighting", "dwa": "DWA", "famo": "FAMO", "stch": "STCH", "imtl_l": "IMTL-L",
    "geometric_mean": "geometric mean", "random": "random loss weights", "cosmos": "COSMOS", "pbi": "PBI",
}


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
