"""``fit``: train a multi-task network on a suite with a strategy, recording everything a chapter plots."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import pandas as pd
import torch
from tqdm import tqdm

from . import checkpoint as checkpoints
from .affinity import gradient_cosine
from .models import MultiTaskNet
from .record import Run
from .runtime import resolve_device
from .strategies import NonFiniteLossError, StepRecord, Strategy
from .tasks import Split, Task, TaskSuite


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


class Recorder:
    """What a run records as it trains: one history row per step, the evaluations, gradient cosines, affinity
    snapshots (every ``snapshot_every`` steps and at the last), the groups of each step and the other measurements
    a strategy reports; ``run`` turns them into the ``Run``."""

    FIELDS = ("rows", "evals", "cosines", "snapshots", "groups", "measurements")

    def __init__(self, snapshot_every: int, total_steps: int):
        self.snapshot_every, self.total_steps = snapshot_every, total_steps
        self.rows, self.evals, self.cosines, self.snapshots, self.groups = [], [], [], [], []
        self.measurements: dict[str, list[tuple[int, object]]] = {}
        self.evaluation_seconds = 0.0

    def step(self, step: int, epoch: int, record: StepRecord) -> None:
        self.rows.append(dict(
            step=step, epoch=epoch, **{f"loss_{name}": value for name, value in record.losses.items()},
            groups=" | ".join(",".join(g) for g in record.groups), forward_passes=record.forward_passes,
            backward_passes=record.backward_passes, optimizer_steps=record.optimizer_steps, seconds=record.seconds,
        ))
        self.groups.append(record.groups)
        last = (step + 1) % self.snapshot_every == 0 or step + 1 == self.total_steps
        if "affinity" in record.extra and last:
            self.snapshots.append((step, record.extra["affinity"].copy()))
        for name, value in record.extra.items():
            if name != "affinity":
                self.measurements.setdefault(name, []).append((step, value))

    def evaluate(self, net: MultiTaskNet, suite: TaskSuite, tasks: Sequence[Task], step: int) -> None:
        """Every metric of every task on val and test, after ``step`` steps."""
        start = time.perf_counter()
        for split_name, split in (("val", suite.val), ("test", suite.test)):
            for task_name, scores in evaluate(net, split, tasks).items():
                for metric, value in scores.items():
                    self.evals.append(dict(step=step, split=split_name, task=task_name, metric=metric, value=value))
        self.evaluation_seconds += time.perf_counter() - start

    def state(self) -> dict:
        return {name: getattr(self, name) for name in self.FIELDS}

    def load(self, state: dict) -> None:
        for name in self.FIELDS:
            setattr(self, name, state[name])

    def run(self, tasks: Sequence[Task], step: int, steps_per_epoch: int, device: torch.device) -> Run:
        history, evals = pd.DataFrame(self.rows), pd.DataFrame(self.evals)
        names = [t.name for t in tasks]
        metrics = {split: {task: {} for task in names} for split in ("val", "test")}
        for row in self.evals:  # the evaluation after the last step
            if row["step"] == step and row["task"] in metrics[row["split"]]:
                metrics[row["split"]][row["task"]][row["metric"]] = float(row["value"])
        cost = dict(
            steps=step, epochs=step / steps_per_epoch, forward_passes=int(history.forward_passes.sum()),
            backward_passes=int(history.backward_passes.sum()), optimizer_steps=int(history.optimizer_steps.sum()),
            seconds=float(history.seconds.sum()), evaluation_seconds=self.evaluation_seconds,
        )
        return Run(history=history, evals=evals, metrics=metrics, cost=cost, task_names=names, cosines=self.cosines,
                   groups=self.groups, affinity=self.snapshots, measurements=self.measurements, device=str(device))


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
    every epoch and a run finds its checkpoint and resumes from it; a checkpoint of another run
    (``checkpoint.run_identity``) or a damaged one is refused, naming it. A NaN or infinite loss raises
    NonFiniteLossError naming the task and the step. ``device`` (``runtime.resolve_device``: ``"auto"`` means the
    same as in a grid) is where the network, each batch (moved there as it is drawn) and the evaluation go;
    ``Run.device`` records it.
    """
    if (epochs is None) == (steps is None):
        raise ValueError("fit: give exactly one of epochs or steps.")
    if batch_size < 1:
        raise ValueError(f"fit: batch_size must be at least 1, got {batch_size}.")
    steps_per_epoch = -(-len(suite.train) // batch_size)
    total_steps = steps if steps is not None else epochs * steps_per_epoch
    if total_steps < 1:
        raise ValueError(f"fit: nothing to train ({epochs=}, {steps=}).")
    device = resolve_device(device)
    net.to(device)
    torch.manual_seed(seed)
    strategy.setup(net, suite.tasks, seed=seed)
    check_fits(net, suite, strategy.tasks, device)
    loop = _Loop(net, suite, strategy, batch_size, device, total_steps, gradient_cosine_every, eval_every, eval_at,
                 Recorder(snapshot_every or max(1, total_steps // 200), total_steps))
    loop.order.manual_seed(seed)
    path = Path(checkpoint) if checkpoint is not None else None
    identity = checkpoints.run_identity(net, suite, strategy, batch_size, seed)
    if path is not None and path.exists():
        loop.resume(checkpoints.load(path, identity))
    with tqdm(total=total_steps, initial=loop.step, disable=not progress, desc=type(strategy).__name__,
              leave=False) as bar:
        net.train()
        while loop.step < total_steps:
            loop.epoch_of_steps(bar)
            if path is not None and loop.step < total_steps:
                checkpoints.save({**loop.state(), "identity": identity}, path)
    loop.recorder.evaluate(net, suite, strategy.tasks, loop.step)
    return loop.recorder.run(strategy.tasks, loop.step, steps_per_epoch, device)


class _Loop:
    """The step loop of ``fit``: where it stands (``step``, ``epoch``, the batch order) and one epoch of steps."""

    def __init__(self, net, suite, strategy, batch_size, device, total_steps, cosine_every, eval_every, eval_at,
                 recorder: Recorder):
        self.net, self.suite, self.strategy, self.batch_size, self.device = net, suite, strategy, batch_size, device
        self.total_steps, self.cosine_every, self.recorder = total_steps, cosine_every, recorder
        self.eval_every, self.eval_at = eval_every, set(eval_at or ())
        self.order = torch.Generator()
        self.step, self.epoch = 0, 0

    def epoch_of_steps(self, bar: tqdm) -> None:
        """One pass over the training batches, or what is left of the budget in it."""
        tasks = self.strategy.tasks
        self.strategy.start_epoch(self.epoch)
        for batch in self.suite.train.batches(self.batch_size, self.order):
            batch = batch.to(self.device)
            if self.cosine_every and self.step % self.cosine_every == 0 and len(tasks) > 1:
                self.recorder.cosines.append((self.step, gradient_cosine(self.net, batch, tasks)))
            try:
                record = self.strategy.step(self.net, batch)
            except NonFiniteLossError as error:
                raise NonFiniteLossError(error.task, error.value, self.step) from None
            self.recorder.step(self.step, self.epoch, record)
            self.step += 1
            bar.update(1)
            asked = (self.eval_every and self.step % self.eval_every == 0) or self.step in self.eval_at
            if asked and self.step < self.total_steps:
                self.recorder.evaluate(self.net, self.suite, tasks, self.step)
            if self.step >= self.total_steps:
                break
        self.epoch += 1

    def state(self) -> dict:
        return dict(net=self.net.state_dict(), strategy=self.strategy.state_dict(), order=self.order.get_state(),
                    torch=torch.get_rng_state(), step=self.step, epoch=self.epoch, **self.recorder.state())

    def resume(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.strategy.load_state_dict(state["strategy"], self.net)
        self.order.set_state(state["order"])
        torch.set_rng_state(state["torch"])
        self.recorder.load(state)
        self.step, self.epoch = state["step"], state["epoch"]
