"""The members of one stacked job (``mtlutils.stacked``): their stacked parameters, optimizers, batch orders, group
steps and records, each as ``fit`` keeps them for a run alone."""

from __future__ import annotations

import time
from typing import Sequence

import torch
from torch import Tensor
from torch.func import functional_call, stack_module_state, vmap
from torchjd import scalarization

from .strategies import (AffinityProbe, Aggregated, GroupedUpdates, NonFiniteLossError, Scalarized, SelectiveGroups,
                         SplitBatchWeighted, StepRecord, Strategy)
from .tasks import TaskSuite
from .stacked_forward import stacked_forward
from .stacked_optimizers import OPTIMIZERS, member_shape
from .stacked_steps import MethodSteps
from .train import Recorder


class Members(MethodSteps):
    """The members of one job as one stacked network: their parameters, optimizer, batch orders and records."""

    def __init__(self, nets, suites: Sequence[TaskSuite], strategies: Sequence[Strategy], configs, device,
                 random_states):
        c = configs[0]
        self.nets, self.suites, self.strategies, self.device = list(nets), list(suites), list(strategies), device
        self.tasks = strategies[0].tasks
        self.names = [t.name for t in self.tasks]
        self.batch_size, self.eval_every, self.eval_at = c["batch_size"], c["eval_every"], set(c["eval_at"] or ())
        self.cosine_every = c["gradient_cosine_every"]
        self.steps_per_epoch = -(-len(suites[0].train) // self.batch_size)
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
        """Each member's batches of one epoch from its own suite, in the order its own generator draws (as
        ``Split.batches`` draws it alone), stacked: (inputs, [targets of each task]), members first."""
        trains = [suite.train for suite in self.suites]
        orders = [torch.randperm(len(trains[0]), generator=order) for order in self.orders]
        for start in range(0, len(trains[0]), self.batch_size):
            index = [order[start:start + self.batch_size] for order in orders]
            yield (torch.stack([train.x[i] for train, i in zip(trains, index)]),
                   [torch.stack([train.y[n][i] for train, i in zip(trains, index)]) for n in self.names])

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
                recorder.evaluate(net, self.suites[i], self.tasks, step)

    def training(self) -> bool:
        """Whether a member is still training (none stopped on a NaN or infinite loss)."""
        return any(outcome is None for outcome in self.outcome)

    def evaluated_after(self, step: int) -> bool:
        asked = (self.eval_every and step % self.eval_every == 0) or step in self.eval_at
        return bool(asked) and step < self.total


def _coefficients(strategy: Strategy, group: tuple[str, ...]) -> dict[str, float]:
    """The weight of each task's loss in a group's loss: an averaged loss's weights (uniform by default), 1 for
    single-task training's task, and for grouped updates 1 (the sum) or 1 / |group| (the mean)."""
    if isinstance(strategy, GroupedUpdates):
        return {n: 1.0 / len(group) if strategy.group_loss == "mean" else 1.0 for n in group}
    weights = getattr(strategy, "weights", None)
    return {n: float(weights[n]) if weights is not None else 1.0 / len(group) for n in group}


