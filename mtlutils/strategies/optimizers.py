"""Optimizer factories: ``factory(params)`` builds the optimizer a strategy steps with."""

from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import nn

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
