"""``fit``: train a multi-task network on a suite with a strategy, recording everything a chapter plots."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from .affinity import gradient_cosine
from .models import MultiTaskNet
from .strategies import NonFiniteLossError, Strategy
from .tasks import Split, Task, TaskSuite


@dataclass
class Run:
    """The record of one training run.

    ``history``: one row per step (step, epoch, loss of each task before the step, cost of the step).
    ``evals``: one row per evaluation (step, split, task, metric, value). ``metrics``: the final
    ``{"val"|"test": {task: {metric: value}}}``. ``cost``: totals of passes, optimizer steps and seconds.
    ``cosines``: ``(step, T x T gradient cosine matrix)`` pairs when requested. ``groups``: the groups updated
    at each step. ``affinity``: affinity snapshots recorded by strategies that track one. ``measurements``: other
    ``(step, value)`` pairs a strategy reports in ``StepRecord.extra``, by name. ``device``: where it trained.
    """

    history: pd.DataFrame
    evals: pd.DataFrame
    metrics: dict
    cost: dict
    task_names: list[str]
    cosines: list[tuple[int, np.ndarray]] = field(default_factory=list)
    groups: list[list[tuple[str, ...]]] = field(default_factory=list)
    affinity: list[tuple[int, np.ndarray]] = field(default_factory=list)
    measurements: dict[str, list[tuple[int, object]]] = field(default_factory=dict)
    device: str = "cpu"

    def mean_metric(self, metric: str, split: str = "test") -> float:
        """The final value of ``metric`` on ``split``, averaged over the tasks."""
        return float(np.mean([scores[metric] for scores in self.metrics[split].values()]))

    def mean_metric_at(self, step: int, metric: str, split: str = "test") -> float:
        """The value of ``metric`` on ``split`` after ``step`` steps, averaged over the tasks (``fit``'s
        ``eval_at``)."""
        rows = self.evals[(self.evals.step == step) & (self.evals.split == split) & (self.evals.metric == metric)]
        if rows.empty:
            raise KeyError(f"mean_metric_at: no evaluation of {metric!r} on {split!r} after {step} steps; the run was "
                           f"evaluated after {sorted(set(self.evals.step))} steps (ask for it with eval_at).")
        return float(rows.value.mean())


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """The device a run trains on: ``"auto"`` is the GPU when torch sees one, else the CPU; a named device
    (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``) is checked to exist on this machine."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', not {device!r}.") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(chosen)!r} was asked for, but torch sees no GPU on this machine; "
                         "use device='auto' (the GPU where there is one) or 'cpu'.")
    if chosen.type == "cuda" and (chosen.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"device {str(chosen)!r} was asked for, but this machine has {torch.cuda.device_count()} GPU(s).")
    if chosen.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device 'mps' was asked for, but torch sees no Apple GPU here; use 'auto' or 'cpu'.")
    return chosen


@torch.no_grad()
def evaluate(net: MultiTaskNet, split: Split, tasks: Sequence[Task], batch_size: int = 1024) -> dict:
    """Every metric of every task on a whole split: ``{task: {metric: value}}``, computed on the network's device
    (each batch of inputs moves there, and so do the targets)."""
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    outputs: dict[str, list[torch.Tensor]] = {t.name: [] for t in tasks}
    for batch in split.batches(batch_size):
        predictions = net(batch.x.to(device), tasks=list(outputs))
        for task in tasks:
            prediction = predictions[task.name]
            outputs[task.name].append(task.compact(prediction) if task.compact else prediction)
    net.train(was_training)
    scores = {}
    for task in tasks:
        prediction = torch.cat(outputs[task.name])
        scores[task.name] = {name: float(metric(prediction, split.y[task.name].to(device))) for name, metric in task.metrics.items()}
    return scores


def _plain(value):
    """``value`` with everything but numbers, strings, booleans, None and containers of them left out."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [v for v in map(_plain, value) if v is not _LEFT_OUT]
    if isinstance(value, dict):
        return {str(k): v for k, v in ((k, _plain(v)) for k, v in value.items()) if v is not _LEFT_OUT}
    return _LEFT_OUT


_LEFT_OUT = object()


def run_identity(net: MultiTaskNet, suite: TaskSuite, strategy: Strategy, batch_size: int, seed: int) -> dict:
    """What a checkpoint must share with the run that resumes from it: the strategy and its settings (read right
    after ``setup``), the optimizer and its hyperparameters, the network's parameters, the suite, the batch size
    and the seed. The number of epochs or steps may differ: a run can be resumed to train longer."""
    optimizer = strategy.optimizer_factory([torch.nn.Parameter(torch.zeros(1))])
    settings = {k: v for k, v in _plain(vars(strategy)).items() if k not in ("tasks", "optimizers")}
    return {
        "strategy": type(strategy).__name__, "strategy settings": settings,
        "optimizer": type(optimizer).__name__, "optimizer settings": _plain(optimizer.defaults),
        "network": {name: list(p.shape) for name, p in net.state_dict().items()},
        "suite": [suite.name, [t.name for t in suite.tasks]], "batch_size": batch_size, "seed": seed,
    }


def check_fits(net: MultiTaskNet, suite: TaskSuite, tasks: Sequence[Task], device: torch.device) -> None:
    """Refuse, naming both shapes, a network that was built for other inputs than the suite's, or whose head for a
    task gives predictions its loss cannot compare with the task's targets. One forward pass on two training
    samples in evaluation mode, so nothing the network keeps (batch-norm statistics) changes."""
    shape = tuple(suite.train.x.shape[1:])
    if net.input_shape is not None and tuple(net.input_shape) != shape:
        raise ValueError(f"fit: the network was built for inputs of shape {tuple(net.input_shape)}, but suite "
                         f"{suite.name!r} has inputs of shape {shape}; build it for this suite: models.for_suite(suite).")
    sample = Split(suite.train.x[:2], {t.name: suite.train.y[t.name][:2] for t in tasks}).to(device)
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            try:
                predictions = net(sample.x, tasks=[t.name for t in tasks])
            except RuntimeError as error:
                raise ValueError(f"fit: the network cannot take suite {suite.name!r}'s inputs of shape {shape} "
                                 f"({error}); build it for this suite: models.for_suite(suite).") from None
            for task in tasks:
                prediction, target = predictions[task.name], sample.y[task.name]
                try:
                    task.loss(prediction, target)
                except RuntimeError as error:
                    raise ValueError(
                        f"fit: the head of task {task.name!r} gives predictions of shape {tuple(prediction.shape[1:])} "
                        f"per sample, which its loss cannot compare with targets of shape {tuple(target.shape[1:])} "
                        f"({error}); build the network for this suite: models.for_suite(suite).") from None
    finally:
        net.train(was_training)


def _load_checkpoint(path: Path, identity: dict) -> dict:
    try:
        state = torch.load(path, weights_only=False, map_location="cpu")
    except Exception as error:  # a truncated or overwritten file fails in pickle, zipfile or torch itself
        raise ValueError(f"fit: the checkpoint {path} is damaged and cannot be read ({type(error).__name__}: "
                         f"{error}); delete it to train this run from the start.") from None
    theirs = state.get("identity") if isinstance(state, dict) else None
    if theirs != identity:
        differ = sorted(k for k in identity if theirs is None or theirs.get(k) != identity[k])
        written = "a run" if theirs is None else "; ".join(f"{k}: {theirs.get(k)}" for k in differ)
        raise ValueError(f"fit: the checkpoint {path} belongs to another run ({written}); this run has "
                         + "; ".join(f"{k}: {identity[k]}" for k in differ)
                         + ". Resume with the same settings, or give this run a checkpoint path of its own.")
    return state


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def fit(
    net: MultiTaskNet,
    suite: TaskSuite,
    strategy: Strategy,
    epochs: int | None = None,
    steps: int | None = None,
    batch_size: int = 64,
    seed: int = 0,
    eval_every: int | None = None,
    eval_at: Sequence[int] | None = None,
    progress: bool = True,
    checkpoint: str | Path | None = None,
    gradient_cosine_every: int | None = None,
    snapshot_every: int | None = None,
    device: str | torch.device = "auto",
) -> Run:
    """Train ``net`` on ``suite.train`` with ``strategy`` for ``epochs`` epochs or ``steps`` steps.

    The batch order is drawn from ``seed``; the same seed, network initialisation and strategy give the same
    run on the CPU. Evaluation on val and test happens every ``eval_every`` steps (if given), after each number of
    steps in ``eval_at`` and at the end; evaluating changes nothing in the training, so the evaluation after s steps
    is that of a run of s steps (``Run.mean_metric_at``).
    ``gradient_cosine_every`` measures the cosine between task gradients on the current batch every that many
    steps. Strategies that track an affinity have it recorded every ``snapshot_every`` steps (by default about
    200 snapshots over the run) and at the last step. With ``checkpoint``, the state is saved atomically after
    every epoch and a run finds its checkpoint and resumes from it; a checkpoint of another run (``run_identity``) or a
    damaged one is refused, naming it. A NaN or infinite loss raises
    NonFiniteLossError naming the task and the step. ``device`` (see ``resolve_device``) is where the network,
    each batch (moved there as it is drawn) and the evaluation go; ``Run.device`` records it.
    """
    if (epochs is None) == (steps is None):
        raise ValueError("fit: give exactly one of epochs or steps.")
    if batch_size < 1:
        raise ValueError(f"fit: batch_size must be at least 1, got {batch_size}.")
    steps_per_epoch = -(-len(suite.train) // batch_size)
    total_steps = steps if steps is not None else epochs * steps_per_epoch
    if total_steps < 1:
        raise ValueError(f"fit: nothing to train ({epochs=}, {steps=}).")

    snapshot_every = snapshot_every or max(1, total_steps // 200)
    device = resolve_device(device)
    net.to(device)
    torch.manual_seed(seed)
    strategy.setup(net, suite.tasks, seed=seed)
    tasks = strategy.tasks
    check_fits(net, suite, tasks, device)
    order = torch.Generator().manual_seed(seed)
    rows: list[dict] = []
    evals: list[dict] = []
    cosines: list[tuple[int, np.ndarray]] = []
    snapshots: list[tuple[int, np.ndarray]] = []
    groups: list[list[tuple[str, ...]]] = []
    measurements: dict[str, list[tuple[int, object]]] = {}
    step, epoch = 0, 0

    checkpoint = Path(checkpoint) if checkpoint is not None else None
    identity = run_identity(net, suite, strategy, batch_size, seed)
    if checkpoint is not None and checkpoint.exists():
        state = _load_checkpoint(checkpoint, identity)
        net.load_state_dict(state["net"])
        strategy.load_state_dict(state["strategy"], net)
        order.set_state(state["order"])
        torch.set_rng_state(state["torch"])
        rows, evals, cosines, snapshots = state["rows"], state["evals"], state["cosines"], state["snapshots"]
        groups, measurements = state["groups"], state["measurements"]
        step, epoch = state["step"], state["epoch"]

    evaluation_seconds = 0.0

    def record_eval():
        nonlocal evaluation_seconds
        start = time.perf_counter()
        for split_name, split in (("val", suite.val), ("test", suite.test)):
            for task_name, scores in evaluate(net, split, tasks).items():
                for metric, value in scores.items():
                    evals.append(dict(step=step, split=split_name, task=task_name, metric=metric, value=value))
        evaluation_seconds += time.perf_counter() - start

    bar = tqdm(total=total_steps, initial=step, disable=not progress, desc=f"{type(strategy).__name__}", leave=False)
    net.train()
    while step < total_steps:
        strategy.start_epoch(epoch)
        for batch in suite.train.batches(batch_size, order):
            batch = batch.to(device)
            if gradient_cosine_every and step % gradient_cosine_every == 0 and len(tasks) > 1:
                cosines.append((step, gradient_cosine(net, batch, tasks)))
            try:
                record = strategy.step(net, batch)
            except NonFiniteLossError as error:
                raise NonFiniteLossError(error.task, error.value, step) from None
            rows.append(
                dict(
                    step=step,
                    epoch=epoch,
                    **{f"loss_{name}": value for name, value in record.losses.items()},
                    groups=" | ".join(",".join(g) for g in record.groups),
                    forward_passes=record.forward_passes,
                    backward_passes=record.backward_passes,
                    optimizer_steps=record.optimizer_steps,
                    seconds=record.seconds,
                )
            )
            groups.append(record.groups)
            if "affinity" in record.extra and ((step + 1) % snapshot_every == 0 or step + 1 == total_steps):
                snapshots.append((step, record.extra["affinity"].copy()))
            for name, value in record.extra.items():
                if name != "affinity":
                    measurements.setdefault(name, []).append((step, value))
            step += 1
            bar.update(1)
            if ((eval_every and step % eval_every == 0) or step in (eval_at or ())) and step < total_steps:
                record_eval()
            if step >= total_steps:
                break
        epoch += 1
        if checkpoint is not None and step < total_steps:
            _atomic_save(
                dict(
                    net=net.state_dict(), strategy=strategy.state_dict(), order=order.get_state(),
                    torch=torch.get_rng_state(), rows=rows, evals=evals, cosines=cosines,
                    snapshots=snapshots, groups=groups, measurements=measurements, step=step, epoch=epoch,
                    identity=identity,
                ),
                checkpoint,
            )
    bar.close()
    record_eval()

    history = pd.DataFrame(rows)
    evals_df = pd.DataFrame(evals)
    final = evals_df[evals_df.step == step]
    metrics = {
        split: {
            task: {r.metric: r.value for r in final[(final.split == split) & (final.task == task)].itertuples()}
            for task in [t.name for t in tasks]
        }
        for split in ("val", "test")
    }
    cost = dict(
        steps=step,
        epochs=step / steps_per_epoch,
        forward_passes=int(history.forward_passes.sum()),
        backward_passes=int(history.backward_passes.sum()),
        optimizer_steps=int(history.optimizer_steps.sum()),
        seconds=float(history.seconds.sum()),
        evaluation_seconds=evaluation_seconds,
    )
    return Run(
        history=history,
        evals=evals_df,
        metrics=metrics,
        cost=cost,
        task_names=[t.name for t in tasks],
        cosines=cosines,
        groups=groups,
        affinity=snapshots,
        measurements=measurements,
        device=str(device),
    )
