"""Many runs of one network trained at once, as one stacked network (``torch.func``).

A grid's runs often differ only in what a stacked network can hold per member: the seed (the initialisation, the
order of the batches and any random groups), the data seed of a synthetic suite, the learning rate, the weight decay
and the weights of an averaged loss. Such runs form a job (``jobs``) of at most ``$MTLUTILS_BATCH`` members (``members_per_job``; 1 turns stacking
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
MLP's step is nearly all overhead, which stacking shares (3.11x the runs per minute of runs alone, 10 seeds);
LeNet's is mostly convolution arithmetic, which a grouped convolution computes at about the cost of the separate
ones (1.27x on chapter 6's averaged losses); the aggregators share their per-task backward passes too (every method
of chapter 6, two learning rates and two seeds: 1.57x). The cold small-mode book (``make book`` in a fresh clone)
took 815 s stacked against 1148 s and 1204 s in two builds with ``MTLUTILS_BATCH=1`` (1.41x). On a GPU one stacked
step replaces many kernel launches (LeNet 1.6x at 4 members, 4.6x at 10, 11.7x at 32 on an H200, measured with
``torch.func``'s vmap).
"""

from __future__ import annotations

import json
import os
from typing import Mapping, Sequence

import torch

from .models import MultiTaskNet
from .record import Run
from .stacked_members import Members
from .stacked_optimizers import OPTIMIZERS
from .stacked_steps import random_state
from .strategies import NonFiniteLossError, Strategy
from .tasks import TaskSuite
from .train import check_fits

BATCH_VARIABLE = "MTLUTILS_BATCH"
DEFAULT_MEMBERS = 8
STACKABLE = ("averaged", "single_task", "alternated", "random_groups", "count_matched_groups", "selective_groups",
             "affinity_probe", "aggregated", "scalarized", "split_batch_weighted")
MEMBER_SETTINGS = ("seed", "data_seed", "lr", "weight_decay")  # and an averaged loss's weights
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


def fit_members(nets: Sequence[MultiTaskNet], suites: Sequence[TaskSuite], strategies: Sequence[Strategy],
                configs: Sequence[Mapping], device: torch.device) -> list[Run | NonFiniteLossError]:
    """Train the members of one job (``nets[i]`` on ``suites[i]`` with ``strategies[i]`` and the completed
    ``configs[i]``, which share a signature) as one stacked network, as ``fit`` trains each alone: the strategies set
    up as ``fit`` sets them up, and the same batches, groups, losses, random numbers, evaluations and records. The
    suites may differ (a synthetic suite drawn per seed), not in their sizes. A member whose loss
    becomes NaN or infinite stops there, alone: its entry is the NonFiniteLossError that ``fit`` would raise, and
    the others train on. A job too large for the device's memory stops with a MemoryError that says which
    ``MTLUTILS_BATCH`` to set."""
    try:
        return _fit_members(nets, suites, strategies, configs, device)
    except torch.cuda.OutOfMemoryError:
        raise MemoryError(f"{len(nets)} runs stacked as one network do not fit in the memory of {device}: set "
                          f"{BATCH_VARIABLE}={max(1, len(nets) // 2)} or fewer ({BATCH_VARIABLE}=1 trains every run "
                          "alone).") from None


def _fit_members(nets, suites, strategies, configs, device) -> list[Run | NonFiniteLossError]:
    sizes = {tuple(len(getattr(s, split)) for split in ("train", "val", "test")) for s in suites}
    if len(sizes) > 1:
        raise ValueError(f"fit_members: the members' suites differ in size {sorted(sizes)}; stacked members need "
                         "splits of one size (train such runs alone: MTLUTILS_BATCH=1).")
    random_states = []
    for net, suite, strategy, c in zip(nets, suites, strategies, configs):
        torch.manual_seed(c["seed"])
        strategy.setup(net.to(device), suite.tasks, seed=c["seed"])
        random_states.append(random_state(device))
    members = Members(nets, suites, strategies, configs, device, random_states)
    check_fits(nets[0], suites[0], members.tasks, device)
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

