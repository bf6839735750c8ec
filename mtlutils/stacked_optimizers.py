"""Adam and SGD over stacked parameters (``mtlutils.stacked``): one learning rate and one weight decay per member,
and steps that move only the members that take one."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor


class StackedAdam:
    """Adam (Kingma & Ba, 2015) over stacked parameters, one learning rate and one decoupled weight decay per
    member (AdamW, Loshchilov & Hutter, 2019, which is Adam when the decay is 0), as torch's Adam and AdamW compute
    it: for member i at its t-th step of a parameter, p <- p (1 - lr_i wd_i); m <- b1 m + (1 - b1) g;
    v <- b2 v + (1 - b2) g^2; p <- p - lr_i / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
    ``step(masks)`` moves, of each parameter k, only the members that ``masks[k]`` marks: the others keep their
    values, moments and step counts, as torch's optimizers leave a parameter without a gradient. The parameters
    whose every member has stepped at every step (all of an averaged run's, a grouped run's trunk) take torch's
    fused Adam, computed at a learning rate of 1 and scaled by each member's; the others, multi-tensor operations
    (``torch._foreach_*``) where every member steps and masked ones where some do."""

    def __init__(self, params: Sequence[Tensor], lr: Tensor, weight_decay: Tensor, betas=(0.9, 0.999),
                 eps: float = 1e-8):
        self.params, self.lr, self.betas, self.eps = list(params), lr.double(), betas, eps
        self.decayed = bool((weight_decay > 0).any())
        self.shrink = [(1 - lr.double() * weight_decay.double()).to(p.dtype).view(member_shape(p)) for p in self.params]
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        # each parameter's step counts (in float64, as torch keeps them), step sizes and second-moment corrections,
        # one row a parameter, with each row seen in its parameter's shape
        self.counts = torch.zeros(len(self.params), len(lr), dtype=torch.float64, device=lr.device)
        self.sizes = torch.zeros_like(self.counts, dtype=self.params[0].dtype)
        self.roots = torch.zeros_like(self.sizes)
        self.size_of = [self.sizes[k].view(member_shape(p)) for k, p in enumerate(self.params)]
        self.root_of = [self.roots[k].view(member_shape(p)) for k, p in enumerate(self.params)]
        # a parameter that every step has moved for every member (``uniform``) steps by torch's fused Adam with a
        # learning rate of 1 on a stand-in, whose moves are then scaled by each member's learning rate
        self.uniform = [True] * len(self.params)
        self.steps = [torch.zeros((), dtype=torch.float32, device=lr.device) for _ in self.params]
        self.moves = [torch.zeros_like(p) for p in self.params]
        self.rates = [lr.to(p.dtype).view(member_shape(p)) for p in self.params]

    @torch.no_grad()
    def step(self, masks: Tensor | None) -> None:
        """One step of the members that ``masks`` marks for each parameter, (parameters, members); None: every
        member steps every parameter."""
        present = [p.grad is not None for p in self.params]
        if masks is None:
            whole, partial = present, []
            if all(present):
                self.counts += 1
            else:
                self.counts += torch.tensor(present, device=self.counts.device)[:, None]
        else:
            masks = masks & torch.tensor(present, device=masks.device)[:, None]
            every, some = masks.all(dim=1).tolist(), masks.any(dim=1).tolist()
            whole = every
            partial = [k for k, (a, b) in enumerate(zip(every, some)) if b and not a]
            self.counts += masks
        for k in partial:
            self.uniform[k] = False
        fused = [k for k, w in enumerate(whole) if w and self.uniform[k]]
        rest = [k for k, w in enumerate(whole) if w and not self.uniform[k]]
        if fused:
            self._fused_step(fused)
        if not rest and not partial:
            return
        b1, b2 = self.betas
        t = self.counts.clamp(min=1)
        self.sizes.copy_(self.lr / (1 - b1 ** t))
        self.roots.copy_((1 - b2 ** t).sqrt())
        if rest:
            self._step_all(rest)
        for k in partial:
            p, g, m, v, keep = self.params[k], self.params[k].grad, self.m[k], self.v[k], masks[k].view(
                member_shape(self.params[k]))
            p.copy_(torch.where(keep, p * self.shrink[k], p))
            m.copy_(torch.where(keep, m.lerp(g, 1 - b1), m))
            v.copy_(torch.where(keep, v * b2 + (1 - b2) * g * g, v))
            p.copy_(torch.where(keep, p - m / (v.sqrt() / self.root_of[k]).add_(self.eps) * self.size_of[k], p))

    def _fused_step(self, chosen: list[int]) -> None:
        """The ``chosen`` parameters step for every member, each of them having moved every member at every
        earlier step: torch's fused Adam computes the moves at a learning rate of 1, each member's then scaled by
        its own learning rate."""
        b1, b2 = self.betas
        params = [self.params[k] for k in chosen]
        # fused Adam reads a gradient's memory as if laid out like its parameter (LeNet's stacked convolution
        # weights are channels-last): one in another layout is copied into the parameter's first
        grads = [p.grad if p.grad.stride() == p.stride() else torch.empty_like(p).copy_(p.grad) for p in params]
        moves, steps = [self.moves[k] for k in chosen], [self.steps[k] for k in chosen]
        torch._foreach_zero_(moves)
        torch._foreach_add_(steps, 1)
        torch._fused_adam_(moves, grads, [self.m[k] for k in chosen], [self.v[k] for k in chosen], [], steps,
                           lr=1.0, beta1=b1, beta2=b2, weight_decay=0.0, eps=self.eps, amsgrad=False,
                           maximize=False)
        if self.decayed:
            torch._foreach_mul_(params, [self.shrink[k] for k in chosen])
        torch._foreach_mul_(moves, [self.rates[k] for k in chosen])
        torch._foreach_add_(params, moves)

    def _step_all(self, chosen: list[int]) -> None:
        """The ``chosen`` parameters step for every member, in place, as torch's Adam."""
        b1, b2 = self.betas
        params, grads = [self.params[k] for k in chosen], [self.params[k].grad for k in chosen]
        m, v = [self.m[k] for k in chosen], [self.v[k] for k in chosen]
        if self.decayed:
            torch._foreach_mul_(params, [self.shrink[k] for k in chosen])
        torch._foreach_lerp_(m, grads, 1 - b1)
        torch._foreach_mul_(v, b2)
        torch._foreach_addcmul_(v, grads, grads, value=1 - b2)
        denominators = torch._foreach_sqrt(v)
        torch._foreach_div_(denominators, [self.root_of[k] for k in chosen])
        torch._foreach_add_(denominators, self.eps)
        updates = torch._foreach_div(m, denominators)
        torch._foreach_mul_(updates, [self.size_of[k] for k in chosen])
        torch._foreach_sub_(params, updates)


def member_shape(p: Tensor) -> tuple[int, ...]:
    """The shape that lays one value per member along a stacked parameter's first dimension."""
    return (-1,) + (1,) * (p.dim() - 1)


class StackedSGD:
    """Plain SGD over stacked parameters, one learning rate and one (L2) weight decay per member, as torch's SGD
    without momentum computes it: p <- p - lr_i (g + wd_i p), for the members that ``masks[k]`` marks."""

    def __init__(self, params: Sequence[Tensor], lr: Tensor, weight_decay: Tensor):
        self.params, self.lr, self.weight_decay = list(params), lr.double(), weight_decay.double()

    @torch.no_grad()
    def step(self, masks: Tensor | None) -> None:
        if masks is None:
            masks = torch.ones(len(self.params), len(self.lr), dtype=torch.bool, device=self.lr.device)
        for p, on in zip(self.params, masks):
            if p.grad is not None:
                shape = member_shape(p)
                lr, decay = self.lr.to(p.dtype).view(shape), self.weight_decay.to(p.dtype).view(shape)
                p.copy_(torch.where(on.view(shape), p - lr * (p.grad + decay * p), p))


OPTIMIZERS = {"adam": StackedAdam, "sgd": StackedSGD}
