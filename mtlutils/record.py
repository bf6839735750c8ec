"""``Run``: the record of one training run, as ``fit`` returns it and the run cache stores it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


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

    @property
    def forward_per_step(self) -> float:
        """Forward passes per training step."""
        return self.cost["forward_passes"] / self.cost["steps"]

    @property
    def backward_per_step(self) -> float:
        """Backward passes per training step."""
        return self.cost["backward_passes"] / self.cost["steps"]

    @property
    def updates_per_step(self) -> float:
        """Optimizer steps per training step (per batch): one per group for grouped updates, one for an aggregate."""
        return self.cost["optimizer_steps"] / self.cost["steps"]

    @property
    def passes_per_step(self) -> float:
        """Forward and backward passes per training step: what a step costs, in passes."""
        return (self.cost["forward_passes"] + self.cost["backward_passes"]) / self.cost["steps"]

    @property
    def seconds_per_epoch(self) -> float:
        """Training seconds per epoch (evaluation left out)."""
        return self.cost["seconds"] / self.cost["epochs"]

    @property
    def ms_per_step(self) -> float:
        """Training milliseconds per step (evaluation left out)."""
        return 1000 * self.cost["seconds"] / self.cost["steps"]

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

    def mean_metric_by_step(self, metric: str | None, split: str = "val") -> pd.Series:
        """``metric`` on ``split`` averaged over the tasks (``None``: over the tasks and every metric) at every
        evaluated step: the run's learning curve."""
        rows = self.evals[(self.evals.split == split) & ((self.evals.metric == metric) | (metric is None))]
        if rows.empty:
            raise KeyError(f"mean_metric_by_step: the run has no evaluation of {metric!r} on {split!r}; its metrics "
                           f"are {sorted(set(self.evals.metric))}.")
        return rows.groupby("step").value.mean()

    def chosen_step(self, metric: str | None = None, higher_is_better: bool = True, up_to: int | None = None) -> int:
        """The evaluated step with the best validation ``metric`` (averaged over the tasks, and over every metric
        where ``metric`` is None; the earliest of equals), among the evaluations after at most ``up_to`` steps when
        given: early stopping on the validation split, so that the test score there is an honest estimate."""
        curve = self.mean_metric_by_step(metric, "val")
        if up_to is not None:
            curve = curve[curve.index <= up_to]
            if curve.empty:
                raise KeyError(f"chosen_step: no evaluation within the first {up_to} steps; the run was evaluated "
                               f"after {sorted(set(self.evals.step))} steps (evaluate it more often: eval_every).")
        return int(curve.idxmax() if higher_is_better else curve.idxmin())

    def metrics_at(self, step: int) -> dict:
        """Every metric of every task on val and test after ``step`` steps, shaped like ``metrics``."""
        rows = self.evals[self.evals.step == step]
        if rows.empty:
            raise KeyError(f"metrics_at: the run was not evaluated after {step} steps, only after "
                           f"{sorted(set(self.evals.step))}.")
        scores = {split: {task: {} for task in self.task_names} for split in ("val", "test")}
        for row in rows.itertuples():
            scores[row.split][row.task][row.metric] = float(row.value)
        return scores

    def scores(self, at: str = "end", higher_is_better: bool = True) -> dict:
        """The run's ``{split: {task: {metric: value}}}`` after its last step (``at="end"``) or at the step with its
        best validation score, averaged over tasks and metrics, the highest or the lowest as ``higher_is_better``
        says (``at="chosen"``: early stopping on validation)."""
        if at not in READINGS:
            raise ValueError(f"Run.scores: at={at!r}; read a run at one of {READINGS}.")
        return self.metrics if at == "end" else self.metrics_at(self.chosen_step(None, higher_is_better))

    @property
    def diverged(self) -> bool:
        """Whether training failed to go anywhere: its training loss (averaged over the tasks) over the last tenth
        of the steps is not below ``DIVERGED_FRACTION`` of that over the first tenth. (A non-finite loss stops a run
        with ``NonFiniteLossError`` instead.)"""
        losses = self.history[[c for c in self.history.columns if c.startswith("loss_")]].mean(axis=1)
        tenth = max(1, len(losses) // 10)
        return bool(losses.iloc[-tenth:].mean() >= DIVERGED_FRACTION * losses.iloc[:tenth].mean())


DIVERGED_FRACTION = 0.95
READINGS = ("end", "chosen")  # a run read after its last step, or at the step its validation score chose
