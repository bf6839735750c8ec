"""Many runs of one network trained at once, as one stacked network (``torch.func``).

A grid's runs often differ only in what a stacked network can hold per member: the seed (the initialisation, the
order of the batches and any random groups), the learning rate, the weight decay and the weights of an averaged
loss. Such runs form a job (``jobs``) of at most ``$MTLUTILS_BATCH`` members (``members_per_job``; 1 turns stacking
off): their networks' parameters are stacked (``torch.func.stack_module_state``), one forward pass gives
every member's task losses on its own batch, one backward pass every member's gradients, and one optimizer step
(``stacked_optimizers``) updates every member with its own learning rate and weight decay. Each member's
``Run`` is what its configuration alone gives, up to float rounding (``tests/test_stacked.py`` states how close),
so it is cached under its own configuration's key.

What stacks (``signature``), with Adam or SGD, on every device: the networks of the clusters, MultiMNIST and
digit-attribute suites (``STACKED_DATASETS``: the MLP and LeNet, which hold no buffers), their linear layers as
batched matrix products and their convolutions as one grouped convolution in the channels-last layout
(``stacked_forward``), trained by
- the averaged loss, with any weights, and single-task training;
- the grouped updates (``alternated``, ``random_groups``, ``count_matched_groups``, ``selective_groups``), each
  member with its own groups: a member's heads outside its group, and a member with fewer groups in a batch, take
  no step at all (no gradient, as ``fit`` gives them), never a step with a zero gradient, except that with
  ``idle_heads="moving"`` an idle head that has had a gradient steps on a zero one, as it does alone; with
  ``optimizer_per_group=True`` each group has its own optimizer, stepping the members that update that group;
  selective group updates keep each member's proximal affinity, measured on the forward passes between its group
  steps;
- every torchjd aggregator of ``AGGREGATORS``: each member's Jacobian of its task losses by its shared parameters
  (a backward pass per task gives every member's row), aggregated by the member's own aggregator, state included;
- every torchjd scalarizer of ``SCALARIZERS``: each member's own scalarizer on its own
  losses, its task weights recorded; UW's and IMTL-L's parameters stepped by an optimizer of the member's own,
  FAMO's logits updated from the member's losses after the step, DWA's history kept per member;
- the two-batch weightings (``split_batch_weighted``: MoDo, SDMGrad), every member's batch split into the same
  parts, each member's Jacobians on them weighted by its own torchjd weighting;
- and with all but the last, the gradient cosines (``gradient_cosine_every``), from each member's Jacobian.
Where a method draws random numbers (random weights, PCGrad's and GradVac's orders, GradDrop's masks), each member
draws from its own copy of torch's global generator, seeded as ``fit`` seeds it, so it draws what it draws alone.
What trains alone, and why:
- ``affinity_probe`` with ``lookahead="optimizer"``: its lookahead takes the trial step of the member's own
  optimizer (the plain gradient's lookahead stacks);
- gradient cosines (``gradient_cosine_every``) with a two-batch weighting, whose step splits the batch;
- networks with batch norm (CelebA's ResNet, NYUv2's SegNet), whose running statistics would need a functional
  batch norm.

How much it saves, on two CPU cores with two workers (``benchmarks/grid_throughput.py --stacked --repeats 3``): the
MLP's step is nearly all overhead, which stacking shares (3.05x the runs per minute of runs alone, 10 seeds);
LeNet's is mostly convolution arithmetic, which a grouped convolution computes at about the cost of the separate
ones (1.17x on chapter 6's averaged losses); the aggregators share their per-task backward passes too (every method
of chapter 6, two learning rates and two seeds: 1.33x). The cold small-mode book (``make book`` in a fresh clone)
took 833 s stacked against 1004 s with ``MTLUTILS_BATCH=1`` (1.20x). On a GPU one stacked step replaces many kernel
launches (LeNet 1.6x at 4 members, 4.6x at 10, 11.7x at 32 on an H200, measured with ``torch.func``'s vmap).
"""

from __future__ import annotations

import json
import os
import time
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.func import functional_call, stack_module_state, vmap
from torchjd import scalarization

from .affinity import cosine_matrix
from .models import MultiTaskNet
from .record import Run
from .strategies import (AffinityProbe, Aggregated, GroupedUpdates, NonFiniteLossError, Scalarized, SelectiveGroups,
                         SplitBatchWeighted, StepRecord, Strategy)
from .tasks import TaskSuite
from .stacked_forward import stacked_forward
from .stacked_optimizers import OPTIMIZERS, member_shape
from .train import Recorder, check_fits

BATCH_VARIABLE = "MTLUTILS_BATCH"
DEFAULT_MEMBERS = 8
STACKABLE = ("averaged", "single_task", "alternated", "random_groups", "count_matched_groups", "selective_groups",
             "affinity_probe", "aggregated", "scalarized", "split_batch_weighted")
MEMBER_SETTINGS = ("seed", "lr", "weight_decay")  # and an averaged loss's weights
STACKED_DATASETS = ("clusters", "multimnist", "digit_attributes")


def members_per_job() -> int:
    """``$MTLUTILS_BATCH``, the most runs trained as one stacked network (1: none), by default ``DEFAULT_MEMBERS``."""
    text = os.environ.get(BATCH_VARIABLE, "").strip()
    if not text:
        return DEFAULT_MEMBERS
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{BATCH_VARIABLE} must be a positive integer (the most runs trained at once as one "
                         f"stacked network; 1 trains every run alone), not {text!r}.")
    return int(text)


def signature(c: Mapping) -> str | None:
    """What the members of one job share, as text; None for a configuration that trains alone."""
    options = c["strategy_kwargs"]
    if (c["strategy"] not in STACKABLE or c["optimizer"] not in OPTIMIZERS
            or options.get("lookahead", "gradient") == "optimizer" or c["dataset"] not in STACKED_DATASETS
            or c["gradient_cosine_every"] and c["strategy"] == "split_batch_weighted"):
        return None
    shared = {k: v for k, v in c.items() if k not in MEMBER_SETTINGS}
    shared["strategy_kwargs"] = {k: v for k, v in options.items() if k != "weights"}
    return json.dumps(shared, sort_keys=True, default=str)


def jobs(configs: Sequence[Mapping], size: int) -> list[list[int]]:
    """The indices of ``configs`` grouped into jobs: runs of one signature, in their order, in as few jobs of at
    most ``size`` as they fill, of sizes as equal as can be (10 runs and size 8 make two jobs of 5); every other run
    a job of its own. Formed from the configurations alone, so wherever the jobs run they are the same jobs and
    give the same results."""
    groups: dict[str, list[int]] = {}
    out = []
    for index, c in enumerate(configs):
        key = signature(c) if size > 1 else None
        if key is None:
            out.append([index])
        else:
            groups.setdefault(key, []).append(index)
    for members in groups.values():
        count = -(-len(members) // size)
        out += [members[i * len(members) // count:(i + 1) * len(members) // count] for i in range(count)]
    return sorted(out)


class _Members:
    """The members of one job as one stacked network: their parameters, optimizer, batch orders and records."""

    def __init__(self, nets, suite: TaskSuite, strategies: Sequence[Strategy], configs, device, random_states):
        c = configs[0]
        self.nets, self.suite, self.strategies, self.device = list(nets), suite, list(strategies), device
        self.tasks = strategies[0].tasks
        self.names = [t.name for t in self.tasks]
        self.batch_size, self.eval_every, self.eval_at = c["batch_size"], c["eval_every"], set(c["eval_at"] or ())
        self.cosine_every = c["gradient_cosine_every"]
        self.steps_per_epoch = -(-len(suite.train) // self.batch_size)
        self.total = c["steps"] if c["steps"] is not None else c["epochs"] * self.steps_per_epoch
        self.params, _ = stack_module_state(self.nets)
        self.owner = [name.split(".")[1] if name.startswith("heads.") else None for name in self.params]
        lr = torch.tensor([m["lr"] for m in configs], dtype=torch.float64, device=device)
        decay = torch.tensor([m["weight_decay"] for m in configs], dtype=torch.float64, device=device)
        self.new_optimizer = lambda: OPTIMIZERS[c["optimizer"]](list(self.params.values()), lr, decay)
        grouped = isinstance(strategies[0], GroupedUpdates)
        self.per_group = grouped and strategies[0].optimizer_per_group
        self.optimizer = None if self.per_group else self.new_optimizer()
        self.group_optimizers: dict[tuple[str, ...], object] = {}  # optimizer_per_group: each group's own
        # idle_heads="moving": which of each member's parameters have had a gradient (the trunk from the start)
        self.had_gradient = (torch.tensor([o is None for o in self.owner], device=device)[:, None].repeat(
            1, len(configs)) if grouped and strategies[0].idle_heads == "moving" and not self.per_group else None)
        self.orders = [torch.Generator().manual_seed(m["seed"]) for m in configs]
        self.recorders = [Recorder(max(1, self.total // 200), self.total) for _ in configs]
        self.outcome: list = [None] * len(configs)
        self.step_inputs: dict[tuple, tuple] = {}  # _inputs_of for each plan of groups met
        self.scalarized = isinstance(strategies[0], Scalarized)  # a job's members share their strategy
        self.aggregated = isinstance(strategies[0], Aggregated)
        self.split = isinstance(strategies[0], SplitBatchWeighted)
        self.traced = isinstance(strategies[0], (SelectiveGroups, AffinityProbe))  # losses kept after every group
        self.probe = isinstance(strategies[0], AffinityProbe)
        self.task_weights: Tensor | None = None  # a scalarizer's weight of each task's loss in the last step
        self.shared = [p for p, owner in zip(self.params.values(), self.owner) if owner is None]
        self.heads = {n: [p for p, owner in zip(self.params.values(), self.owner) if owner == n] for n in self.names}
        # the scalarizer parameters that UW and IMTL-L learn with the network: each member's, stepped by an
        # optimizer of its own from its strategy's factory (Adam and SGD step each parameter on its own)
        self.learned = [list(s.module.parameters()) if self.scalarized and s._learned_with_the_network else []
                        for s in self.strategies]
        self.learned_optimizers = [s.optimizer_factory(ps) if ps else None for s, ps in zip(self.strategies,
                                                                                              self.learned)]
        self.famo = self.scalarized and isinstance(strategies[0].module, scalarization.FAMO)
        self.random_states = list(random_states)
        forward = stacked_forward(self.nets[0], len(self.nets))
        self.losses = vmap(self._losses_of_one) if forward is None else self._losses_of_all(forward)

    def _losses_of_one(self, params, x, ys):
        predictions = functional_call(self.nets[0], params, (x,), {"tasks": self.names})
        return torch.stack([t.loss(predictions[t.name], y) for t, y in zip(self.tasks, ys)])

    def _losses_of_all(self, forward):
        """The members' task losses from their stacked predictions (``stacked_forward``): each task's from its
        ``sample_loss`` on all members' samples at once where it has one, else vmapped."""
        if all(t.sample_loss is not None for t in self.tasks):
            def losses(predictions, ys):
                return torch.stack([t.sample_loss(p.flatten(0, 1), y.flatten(0, 1)).view(len(y), -1).mean(1)
                                    for t, p, y in zip(self.tasks, predictions, ys)], dim=1)
        else:
            losses = vmap(lambda predictions, ys: torch.stack([t.loss(p, y) for t, p, y in
                                                               zip(self.tasks, predictions, ys)]))

        def of_all(params, x, ys):
            features = forward["trunk"](params, x)
            return losses([forward[f"heads.{n}"](params, features) for n in self.names], ys)

        return of_all

    def plan(self) -> list[list[tuple[tuple[str, ...], dict[str, float]]]]:
        """Each member's groups for the next batch, in order, each with the coefficient of every task's loss in
        that group's loss."""
        return [[(g, _coefficients(s, g)) for g in (s.next_groups() if isinstance(s, GroupedUpdates)
                                                     else [tuple(self.names)])]
                for s in self.strategies]

    def batches(self):
        """Each member's batches of one epoch, in the order its own generator draws (as ``Split.batches`` draws
        it alone), stacked: (inputs, [targets of each task]), members first."""
        train = self.suite.train
        orders = torch.stack([torch.randperm(len(train), generator=order) for order in self.orders])
        for start in range(0, len(train), self.batch_size):
            index = orders[:, start:start + self.batch_size]
            yield train.x[index], [train.y[n][index] for n in self.names]

    def train_batch(self, x: Tensor, ys: list[Tensor], step: int, epoch: int) -> None:
        """One batch of every member still training: its groups stepped in turn, each on the losses of the forward
        pass after the previous group's step, as ``GroupedUpdates.update_groups`` does for one network."""
        start = time.perf_counter()
        x, ys = x.to(self.device), [y.to(self.device) for y in ys]
        if self.split:
            return self._split_batch(x, ys, step, epoch, start)
        plan = [p if self.outcome[i] is None else [] for i, p in enumerate(self.plan())]
        passes = [len(p) + self._measures_last(i) for i, p in enumerate(plan)]  # forward passes of each member
        after = [x, ys] if self.famo else None  # FAMO's forward pass after the step, on the same batch
        traces: list[list[dict]] = [[] for _ in plan]
        lookahead = None
        for j in range(max(passes)):
            with torch.set_grad_enabled(j < max(map(len, plan))):
                losses = self.losses(self.params, x, ys)  # (members, tasks)
            values = losses.detach()
            self._stop_non_finite(values, [self._counted(i, p, j) for i, p in enumerate(plan)], step)
            rows = values.cpu().tolist()
            for i, trace in enumerate(traces):
                if j < passes[i]:
                    trace.append(dict(zip(self.names, rows[i])))
            if j == 0:
                lookahead = self._measure_before_steps(x, ys, losses, step)
            if j < max(map(len, plan)):
                self._group_step([p[j] if j < len(p) and self.outcome[i] is None else None
                                  for i, p in enumerate(plan)], losses)
        if after is not None:
            self._famo_update(*after, step)
        seconds = (time.perf_counter() - start) / len(self.nets)
        for i, (strategy, recorder) in enumerate(zip(self.strategies, self.recorders)):
            if self.outcome[i] is None:
                groups = [g for g, _ in plan[i]]
                backward = len(self.names) if self.aggregated else len(groups)  # a Jacobian: a pass per task
                record = StepRecord(traces[i][0], groups, passes[i] + self.famo, backward, len(groups), seconds)
                if lookahead is not None:
                    record.extra["lookahead"] = lookahead[i]
                if self.traced:
                    record.extra.update(strategy.after_groups(groups, traces[i]))
                if self.scalarized:
                    record.extra["task_weights"] = self.task_weights[i].detach().cpu().double().numpy()
                recorder.step(step, epoch, record)

    def _measures_last(self, i: int) -> bool:
        """Whether member i measures its losses once more after its last group (``measure_last``)."""
        strategy = self.strategies[i]
        return self.traced and strategy.measure_last and self.outcome[i] is None

    def _counted(self, i: int, plan: list, j: int):
        """The tasks whose losses ``fit`` computes, and so checks, in member i's forward pass j: all of them before
        the first group, and after each group those a traced strategy records or else the next group's."""
        if j == 0 or (self.traced and j < len(plan) + self._measures_last(i)):
            return self.names if plan or j == 0 else ()
        return plan[j][0] if j < len(plan) else ()

    def _group_step(self, groups: list, losses: Tensor) -> None:
        """One optimizer step of every member that has a group here, on that group's loss."""
        groups = [g if self.outcome[i] is None else None for i, g in enumerate(groups)]
        coefficients, stepping, masks = self._step_inputs(groups, losses.dtype)
        for p in self.params.values():
            p.grad = None
        if self.aggregated:
            self._aggregate(losses, groups)
            self.optimizer.step(masks)
            return
        if self.scalarized:  # each member's torchjd scalarizer on its own losses, as ``Scalarized`` steps alone
            for ps in self.learned:
                for p in ps:
                    p.grad = None
            chosen = torch.stack([self._own_random(i, s.module, row)
                                  for i, (s, row) in enumerate(zip(self.strategies, losses))])
            (self.task_weights,) = torch.autograd.grad(chosen.sum(), losses, retain_graph=True)
        else:
            chosen = losses * coefficients
        if stepping is not None:  # the losses of a member that takes no step, NaN ones included, give no gradient
            keep = stepping.view(-1, *[1] * (chosen.dim() - 1))
            chosen = torch.where(keep, chosen, torch.zeros_like(chosen))
        chosen.sum().backward()
        if self.had_gradient is not None:
            masks = self._with_idle_heads(groups, masks)
        if self.per_group:
            self._step_each_group(groups, masks)
        else:
            self.optimizer.step(masks)
        for i, optimizer in enumerate(self.learned_optimizers):
            if optimizer is not None and groups[i] is not None:
                optimizer.step()

    def _with_idle_heads(self, groups: list, masks: Tensor | None) -> Tensor | None:
        """``idle_heads="moving"``: the masks of a group step with, besides each member's group, every head of a
        stepping member that has had a gradient, its gradient set to zero: a shared optimizer steps such a head
        alone, since ``zero_grad`` leaves it a zero gradient."""
        if masks is None:  # every member steps every parameter: no head is idle
            self.had_gradient.fill_(True)
            return None
        stepping = torch.tensor([g is not None for g in groups], device=self.device)
        idle = self.had_gradient & stepping & ~masks
        self.had_gradient |= masks
        for p, members, any_idle in zip(self.params.values(), idle, idle.any(dim=1).tolist()):
            if any_idle:
                p.grad = torch.where(members.view(member_shape(p)), torch.zeros((), dtype=p.dtype, device=p.device),
                                     p.grad)
        return masks | idle

    def _step_each_group(self, groups: list, masks: Tensor | None) -> None:
        """``optimizer_per_group=True``: each group's own optimizer (its moments and step counts, made when the
        group first steps) steps the members that update that group here."""
        if masks is None:
            masks = torch.ones(len(self.params), len(groups), dtype=torch.bool, device=self.device)
        for key in dict.fromkeys(g[0] for g in groups if g is not None):
            members = torch.tensor([g is not None and g[0] == key for g in groups], device=self.device)
            if key not in self.group_optimizers:
                self.group_optimizers[key] = self.new_optimizer()
            self.group_optimizers[key].step(masks & members)

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
                steps = jacobians[:, t].split([fixed[name][0].numel() for name in shared], dim=1)
                moved = {**fixed, **{name: fixed[name] - lr * g.view_as(fixed[name])
                                     for name, g in zip(shared, steps)}}
                rows.append(1.0 - self.losses(moved, x, ys).double() / before)
        return torch.stack(rows, dim=1).cpu().numpy()

    def _set_shared_gradients(self, gradients: Tensor) -> None:
        """The shared parameters' gradients from every member's gradient vector, (members, shared parameters)."""
        for p, g in zip(self.shared, gradients.split([p[0].numel() for p in self.shared], dim=1)):
            p.grad = g.reshape(p.shape)

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
        _set_random_state(self.random_states[i], self.device)
        try:
            return module(argument)
        finally:
            self.random_states[i] = _random_state(self.device)

    @torch.no_grad()
    def _famo_update(self, x: Tensor, ys: list[Tensor], step: int) -> None:
        """FAMO's update of each member's task logits from its losses recomputed after the step, as alone."""
        losses = self.losses(self.params, x, ys)
        training = [i for i, outcome in enumerate(self.outcome) if outcome is None]
        self._stop_non_finite(losses, [self.names if i in training else () for i in range(len(self.nets))], step)
        for i in training:
            if self.outcome[i] is None:
                self.strategies[i].module.update(losses[i])

    def _step_inputs(self, groups: list, dtype: torch.dtype) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """``_inputs_of`` these groups, kept for the next batches with the same groups."""
        key = tuple(g[0] if g else None for g in groups)
        if key not in self.step_inputs:
            if len(self.step_inputs) >= 256:  # random groups seldom repeat: keep the table small
                self.step_inputs.clear()
            self.step_inputs[key] = self._inputs_of(groups, dtype)
        return self.step_inputs[key]

    def _inputs_of(self, groups: list, dtype: torch.dtype) -> tuple[Tensor, Tensor | None, Tensor]:
        """For one plan of groups: the coefficient of every member's task losses, (members, tasks); which members
        step (None: all of them); and each parameter's mask of the members that step it, (parameters, members;
        None: all of them)."""
        coefficients = torch.tensor([[g[1].get(n, 0.0) if g else 0.0 for n in self.names] for g in groups],
                                    dtype=dtype, device=self.device)
        stepping = torch.tensor([g is not None for g in groups], device=self.device)
        masks = torch.tensor([[g is not None and (owner is None or owner in g[0]) for g in groups]
                              for owner in self.owner], device=self.device)
        return coefficients, None if bool(stepping.all()) else stepping, None if bool(masks.all()) else masks

    def _stop_non_finite(self, losses: Tensor, counted: list, step: int) -> None:
        """Stop each member one of whose ``counted`` tasks has a NaN or infinite loss, with ``fit``'s error."""
        finite = torch.isfinite(losses)
        if bool(finite.all()):
            return
        finite = finite.cpu().tolist()
        for i, names in enumerate(counted):
            bad = [t for t, n in enumerate(self.names) if n in names and not finite[i][t]]
            if bad and self.outcome[i] is None:
                self.outcome[i] = NonFiniteLossError(self.names[bad[0]], float(losses[i, bad[0]]), step)

    def evaluate(self, step: int) -> None:
        """Every member still training evaluated as ``fit`` evaluates a network: its parameters copied into its
        own network first."""
        for i, (net, recorder) in enumerate(zip(self.nets, self.recorders)):
            if self.outcome[i] is None:
                with torch.no_grad():
                    for name, p in net.named_parameters():
                        p.copy_(self.params[name][i])
                recorder.evaluate(net, self.suite, self.tasks, step)

    def training(self) -> bool:
        """Whether a member is still training (none stopped on a NaN or infinite loss)."""
        return any(outcome is None for outcome in self.outcome)

    def evaluated_after(self, step: int) -> bool:
        asked = (self.eval_every and step % self.eval_every == 0) or step in self.eval_at
        return bool(asked) and step < self.total


def _random_state(device: torch.device) -> list[Tensor]:
    """The state of torch's global random numbers on the CPU, and on ``device`` where it is a GPU."""
    return [torch.get_rng_state()] + ([torch.cuda.get_rng_state(device)] if device.type == "cuda" else [])


def _set_random_state(state: list[Tensor], device: torch.device) -> None:
    torch.set_rng_state(state[0])
    if device.type == "cuda":
        torch.cuda.set_rng_state(state[1], device)


def _coefficients(strategy: Strategy, group: tuple[str, ...]) -> dict[str, float]:
    """The weight of each task's loss in a group's loss: an averaged loss's weights (uniform by default), 1 for
    single-task training's task, and for grouped updates 1 (the sum) or 1 / |group| (the mean)."""
    if isinstance(strategy, GroupedUpdates):
        return {n: 1.0 / len(group) if strategy.group_loss == "mean" else 1.0 for n in group}
    weights = getattr(strategy, "weights", None)
    return {n: float(weights[n]) if weights is not None else 1.0 / len(group) for n in group}


def fit_members(nets: Sequence[MultiTaskNet], suite: TaskSuite, strategies: Sequence[Strategy],
                configs: Sequence[Mapping], device: torch.device) -> list[Run | NonFiniteLossError]:
    """Train the members of one job (``nets[i]`` with ``strategies[i]`` and the completed ``configs[i]``, which
    share a signature) as one stacked network, as ``fit`` trains each alone: the strategies set up as ``fit`` sets
    them up, and the same batches, groups, losses, random numbers, evaluations and records. A member whose loss becomes NaN or infinite stops there, alone: its entry is
    the NonFiniteLossError that ``fit`` would raise, and the others train on. A job too large for the device's
    memory stops with a MemoryError that says which ``MTLUTILS_BATCH`` to set."""
    try:
        return _fit_members(nets, suite, strategies, configs, device)
    except torch.cuda.OutOfMemoryError:
        raise MemoryError(f"{len(nets)} runs stacked as one network do not fit in the memory of {device}: set "
                          f"{BATCH_VARIABLE}={max(1, len(nets) // 2)} or fewer ({BATCH_VARIABLE}=1 trains every run "
                          "alone).") from None


def _fit_members(nets, suite, strategies, configs, device) -> list[Run | NonFiniteLossError]:
    random_states = []
    for net, strategy, c in zip(nets, strategies, configs):
        torch.manual_seed(c["seed"])
        strategy.setup(net.to(device), suite.tasks, seed=c["seed"])
        random_states.append(_random_state(device))
    members = _Members(nets, suite, strategies, configs, device, random_states)
    check_fits(nets[0], suite, members.tasks, device)
    step, epoch = 0, 0
    while step < members.total and members.training():
        for strategy in strategies:
            strategy.start_epoch(epoch)
        for x, ys in members.batches():
            members.train_batch(x, ys, step, epoch)
            step += 1
            if members.evaluated_after(step):
                members.evaluate(step)
            if step >= members.total or not members.training():
                break
        epoch += 1
    members.evaluate(step)
    return [members.outcome[i] or members.recorders[i].run(members.tasks, step, members.steps_per_epoch, device)
            for i in range(len(configs))]
