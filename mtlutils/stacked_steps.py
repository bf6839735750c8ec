"""The steps of a stacked job (``mtlutils.stacked``) that need more than one weighted loss: torchjd's aggregators
through every member's Jacobian, the two-batch weightings, FAMO's update after the step, each member's own random
numbers, and what is measured on a batch before its updates (gradient cosines, TAG's lookahead affinity)."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from .affinity import cosine_matrix
from .strategies import StepRecord


class MethodSteps:
    """The method-specific steps of ``stacked_members.Members``, which holds the state they read and write."""

    def _aggregate(self, losses: Tensor, groups: list) -> None:
        """Each member's gradients as ``Aggregated`` gives them alone: the Jacobian of its task losses by its
        shared parameters (a backward pass per task, each giving every member's row), aggregated by the member's
        own torchjd aggregator; each head's parameters the gradient of its own task's loss."""
        jacobians = self._jacobians(losses, heads=True)
        self._set_shared_gradients(torch.stack([
            self._own_random(i, s._aggregator, jacobians[i]) if groups[i] is not None
            else torch.zeros_like(jacobians[i, 0]) for i, s in enumerate(self.strategies)]))

    def _jacobians(self, losses: Tensor, heads: bool, retain: bool = False) -> Tensor:
        """Every member's Jacobian of its task losses (members, tasks) by its shared parameters, (members, tasks,
        shared parameters): a backward pass per task gives every member's row. With ``heads``, each head's
        parameters get the gradient of their own task's loss from the same pass."""
        rows = []
        for t, name in enumerate(self.names):
            own = self.heads[name] if heads else []
            grads = torch.autograd.grad(losses[:, t].sum(), self.shared + own,
                                        retain_graph=retain or t < len(self.names) - 1)
            rows.append(torch.cat([g.flatten(1) for g in grads[:len(self.shared)]], dim=1))
            for p, g in zip(own, grads[len(self.shared):]):
                p.grad = g
        return torch.stack(rows, dim=1)

    def _measure_before_steps(self, x: Tensor, ys: list[Tensor], losses: Tensor, step: int) -> np.ndarray | None:
        """What is measured on a batch before its updates, from each member's Jacobian: the gradient cosines every
        ``gradient_cosine_every`` steps (recorded, as ``fit`` records them) and TAG's lookahead affinity where an
        affinity probe asks for it (returned; None where it does not)."""
        cosines = bool(self.cosine_every) and step % self.cosine_every == 0 and len(self.names) > 1
        lookahead = self.probe and any(s.lookahead_due() for s, o in zip(self.strategies, self.outcome) if o is None)
        if not (cosines or lookahead):
            return None
        jacobians = self._jacobians(losses, heads=False, retain=True)
        if cosines:
            for recorder, matrix in zip(self.recorders, cosine_matrix(jacobians).cpu().numpy()):
                recorder.cosines.append((step, matrix))
        return self._lookahead(x, ys, losses, jacobians) if lookahead else None

    def _lookahead(self, x: Tensor, ys: list[Tensor], losses: Tensor, jacobians: Tensor) -> np.ndarray:
        """TAG's lookahead affinity of every member on its batch, (members, tasks, tasks), as
        ``affinity.lookahead_affinity`` measures it alone with ``lr``: the member's shared parameters moved along
        one task's gradient (its row of ``jacobians``) at a time, its heads fixed, and each task's loss after the
        move against before it."""
        lr = self.strategies[0].lookahead_lr
        before = losses.detach().double()
        fixed = {name: p.detach() for name, p in self.params.items()}
        shared = [name for name, owner in zip(self.params, self.owner) if owner is None]
        rows = []
        with torch.no_grad():
            for t in range(len(self.names)):
                moved = {**fixed, **{name: fixed[name] - lr * g
                                     for name, g in zip(shared, self._as_shared(jacobians[:, t]))}}
                rows.append(1.0 - self.losses(moved, x, ys).double() / before)
        return torch.stack(rows, dim=1).cpu().numpy()

    def _set_shared_gradients(self, gradients: Tensor) -> None:
        """The shared parameters' gradients from every member's gradient vector, (members, shared parameters)."""
        for p, g in zip(self.shared, self._as_shared(gradients)):
            p.grad = g

    def _as_shared(self, rows: Tensor) -> list[Tensor]:
        """Every member's vector over the shared parameters, (members, shared parameters), as one tensor shaped
        like each shared parameter."""
        sizes = [p[0].numel() for p in self.shared]
        return [g.reshape(p.shape) for p, g in zip(self.shared, rows.split(sizes, dim=1))]

    def _split_batch(self, x: Tensor, ys: list[Tensor], step: int, epoch: int, start: float) -> None:
        """One step of every member as ``SplitBatchWeighted`` takes it alone: its batch split into the same
        independent parts, the weights from each member's own weighting of J_1 J_2^T, the trunk's gradient from the
        weights (MoDo: of the parts' mean Jacobian; SDMGrad: of the third part's losses), each head's from its own
        task's loss on the part(s) the step updates on."""
        first = self.strategies[0]
        indices = first.part_indices(x.shape[1], x.device)
        groups = [(tuple(self.names), {}) if outcome is None else None for outcome in self.outcome]
        _, _, masks = self._step_inputs(groups, x.dtype)
        for p in self.params.values():
            p.grad = None
        losses, jacobians = [], []
        modo = first.method == "modo"
        for index in indices[:2]:
            losses.append(self._part_losses(x, ys, index, step))
            jacobians.append(self._jacobians(losses[-1], heads=False, retain=modo))
        weights = torch.stack([
            self._own_random(i, s.module, jacobians[0][i] @ jacobians[1][i].T).detach() if groups[i] is not None
            else torch.zeros_like(losses[0][i]) for i, s in enumerate(self.strategies)])
        if modo:
            update = (losses[0] + losses[1]) / 2
            self._set_shared_gradients(torch.einsum("st,stp->sp", weights, (jacobians[0] + jacobians[1]) / 2))
        else:
            losses.append(self._part_losses(x, ys, indices[2], step))
            update = losses[2]
            (weights * update).sum().backward(inputs=self.shared, retain_graph=True)
        update.sum().backward(inputs=[p for name in self.names for p in self.heads[name]])
        self.optimizer.step(masks)
        sizes = torch.tensor([len(index) for index in indices], dtype=x.dtype, device=x.device)
        mean = (torch.stack([part.detach() for part in losses]) * sizes[:, None, None]).sum(0) / sizes.sum()
        seconds = (time.perf_counter() - start) / len(self.nets)
        names, rows = tuple(self.names), mean.cpu().tolist()
        for i, recorder in enumerate(self.recorders):
            if self.outcome[i] is None:
                record = StepRecord(dict(zip(names, rows[i])), [names], len(indices), 2 * len(names) + (not modo), 1,
                                    seconds)
                record.extra["task_weights"] = weights[i].cpu().double().numpy()
                recorder.step(step, epoch, record)

    def _part_losses(self, x: Tensor, ys: list[Tensor], index: Tensor, step: int) -> Tensor:
        """Every member's task losses on one part of its batch, (members, tasks); a member with a NaN or infinite
        one stops, as alone."""
        losses = self.losses(self.params, x[:, index], [y[:, index] for y in ys])
        self._stop_non_finite(losses.detach(), [self.names] * len(self.nets), step)
        return losses

    def _own_random(self, i: int, module: Callable, argument: Tensor) -> Tensor:
        """``module(argument)`` on member i's own stream of torch's global random numbers, as it draws alone (the
        random weights, PCGrad's and GradVac's orders, GradDrop's masks)."""
        set_random_state(self.random_states[i], self.device)
        try:
            return module(argument)
        finally:
            self.random_states[i] = random_state(self.device)

    @torch.no_grad()
    def _famo_update(self, x: Tensor, ys: list[Tensor], step: int) -> None:
        """FAMO's update of each member's task logits from its losses recomputed after the step, as alone."""
        losses = self.losses(self.params, x, ys)
        training = [i for i, outcome in enumerate(self.outcome) if outcome is None]
        self._stop_non_finite(losses, [self.names if i in training else () for i in range(len(self.nets))], step)
        for i in training:
            if self.outcome[i] is None:
                self.strategies[i].module.update(losses[i])


def random_state(device: torch.device) -> list[Tensor]:
    """The state of torch's global random numbers on the CPU, and on ``device`` where it is a GPU."""
    return [torch.get_rng_state()] + ([torch.cuda.get_rng_state(device)] if device.type == "cuda" else [])


def set_random_state(state: list[Tensor], device: torch.device) -> None:
    torch.set_rng_state(state[0])
    if device.type == "cuda":
        torch.cuda.set_rng_state(state[1], device)
