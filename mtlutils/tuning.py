"""Tuning every method alike, then reporting it on other seeds: grids that grow past an edge a method chose, each run
read at the step its validation score chose, divergent runs counted, and the comparisons built on them.

Kurin et al. (2022) and Xin et al. (2022) found that a well-tuned averaged loss matches most multi-task optimizers;
the rules here give every method the same grid, the same number of grid extensions and the same tuning seeds.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from . import experiments
from .config import complete, config_key
from .record import DIVERGED_FRACTION, READINGS, Run
from .stats import paired_differences, p_value, relative_to_baseline, seeds_for, summarize
from .tasks import Task

LATE = 0.9  # a chosen step past this share of the budget falls in its last tenth


def best_hyperparameters(table: pd.DataFrame, hyper: list[str], method: str = "method", value: str = "value",
                         higher_is_better: bool = True) -> pd.DataFrame:
    """For every method, the hyperparameter values whose mean ``value`` (over seeds, tasks and metrics) is best.

    Pass the validation table: the test numbers of the chosen settings are then an honest estimate.
    """
    means = table.groupby([method, *hyper], as_index=False)[value].mean()
    best = means.groupby(method)[value].idxmax() if higher_is_better else means.groupby(method)[value].idxmin()
    return means.loc[best, [method, *hyper]].reset_index(drop=True)


@dataclass
class Tuned:
    """The runs of ``tune_then_repeat``: ``chosen`` (one row per method with its chosen hyperparameters), the
    tuning runs and the repeated runs at the chosen values as (method, configuration, run) triples, each method's
    final ``grids`` and the values ``extended`` beyond the first grid (``{method: {key: [values]}}``), ``at``, where
    a run is read (``Run.scores``), ``extend``, how many times an axis could grow, and ``passed_over``, each method's
    best-scoring values that were not chosen because they lie at the edge of divergence (``unstable``)."""

    chosen: pd.DataFrame
    tuning: list[tuple[str, dict, Run]]
    runs: list[tuple[str, dict, Run]]
    grids: dict[str, dict[str, list]] = field(default_factory=dict)
    extended: dict[str, dict[str, list]] = field(default_factory=dict)
    at: str = "end"
    extend: int = 0
    passed_over: dict[str, dict] = field(default_factory=dict)

    def table(self, split: str = "test", at: str | None = None) -> pd.DataFrame:
        """``experiments.results`` of the repeated runs on ``split``, with a ``method`` column, each run read
        ``at`` (by default where the tuning read it)."""
        return _labelled(self.runs, split, at or self.at)

    def cost(self) -> pd.DataFrame:
        """What a step of each method cost in the repeated runs, one row per method (means over its seeds):
        forward, backward and all passes per step, optimizer updates per step, training seconds per epoch and
        milliseconds per step."""
        rows = [dict(method=name, forward=r.forward_per_step, backward=r.backward_per_step, passes=r.passes_per_step,
                     updates=r.updates_per_step, seconds_per_epoch=r.seconds_per_epoch, ms_per_step=r.ms_per_step)
                for name, _, r in self.runs]
        return pd.DataFrame(rows).groupby("method").mean()

    def curves(self, split: str = "test", metric: str | None = None) -> pd.DataFrame:
        """The reported runs' learning curves (``learning_curves``): method, seed, step and value, ``metric`` on
        ``split`` averaged over the tasks at every evaluation."""
        return pd.concat([learning_curves([config], [result], keys=("seed",), metric=metric, split=split)
                          .assign(method=name) for name, config, result in self.runs],
                         ignore_index=True)[["method", "seed", "step", "value"]]

    def sensitivity(self, along: str | None = None, holding: Mapping | None = None) -> pd.DataFrame:
        """Every tuning run's validation score (mean over tasks and metrics, read ``at``), one row per run:
        method, the grid's keys, seed, value, whether it ``diverged`` and whether its point was ``chosen``. With
        ``along``, only the runs that differ in that key alone from their method's choice, or from the values of
        ``holding`` for the keys it names (``{"weight_decay": 0.0}``: the learning rates a coordinate search tried
        before it tuned the weight decay); ``chosen`` then marks the method's chosen value of ``along``."""
        keys = list(self.chosen.columns.drop("method"))
        if along is not None:
            table = self.sensitivity()
            held = self.chosen.assign(**dict(holding or {}))
            others = [k for k in keys if k != along]
            picked = table.merge(held[["method", *others]], on=["method", *others])[list(table.columns)]
            return picked.assign(chosen=picked[along] == picked.method.map(self.chosen.set_index("method")[along]))
        picked = {(row["method"], *(row[k] for k in keys)) for row in self.chosen.to_dict("records")}
        rows = [dict(method=name, **{k: config[k] for k in keys}, seed=config["seed"],
                     value=_mean_score(result.scores(self.at)["val"]), diverged=result.diverged,
                     chosen=(name, *(config[k] for k in keys)) in picked)
                for name, config, result in self.tuning]
        return pd.DataFrame(rows)

    def divergent(self) -> pd.DataFrame:
        """The runs, tuning and reported, whose training failed (``Run.diverged``): method, phase, the grid's keys
        and seed."""
        keys = list(self.chosen.columns.drop("method"))
        rows = [dict(method=name, phase=phase, **{k: config[k] for k in keys}, seed=config["seed"])
                for phase, triples in (("tuning", self.tuning), ("reported", self.runs))
                for name, config, result in triples if result.diverged]
        return pd.DataFrame(rows, columns=["method", "phase", *keys, "seed"])

    def chosen_steps(self) -> pd.DataFrame:
        """For every reported run, the step its validation score chose and its budget: method, seed, chosen,
        steps, and ``late`` (chosen in the budget's last tenth, where a longer budget could have chosen later)."""
        rows = [dict(method=name, seed=config["seed"], chosen=result.chosen_step(), steps=result.cost["steps"])
                for name, config, result in self.runs]
        table = pd.DataFrame(rows)
        table["late"] = table.chosen > LATE * table.steps
        return table

    def late_note(self) -> str:
        """A sentence on how many reported runs chose a step in the budget's last tenth (``chosen_steps``)."""
        steps = self.chosen_steps()
        late = steps[steps.late]
        text = (f"{len(late)} of the {len(steps)} reported runs chose a step in the last tenth of their budget "
                f"({100 * len(late) / len(steps):.0f}%)")
        if late.empty:
            return text + ": every other run had passed its best validation score well before the end."
        most = late.method.value_counts()
        return (text + f", where a longer budget might have chosen later (most of them {most.index[0]}: "
                f"{most.iloc[0]} of {int((steps.method == most.index[0]).sum())}).")

    def divergent_note(self) -> str:
        """A sentence counting the runs whose training failed (``divergent``), naming them."""
        failed, total = self.divergent(), len(self.tuning) + len(self.runs)
        if failed.empty:
            return f"None of the {total} runs failed to train."
        keys = [k for k in failed.columns if k not in ("method", "phase", "seed")]
        named = "; ".join(f"{name} at {', '.join(f'{_name(k)} {row[k]:g}' for k in keys)} "
                          f"({len(rows)} {rows.phase.iloc[0]} run{'s' if len(rows) > 1 else ''})"
                          for (name, *_), rows in failed.groupby(["method", *keys, "phase"], sort=False)
                          for row in [rows.iloc[0]])
        passed = [f"{name} ({', '.join(f'{_name(k)} {v:g}' for k, v in values.items())})"
                  for name, values in self.passed_over.items()]
        return (f"{len(failed)} of the {total} runs failed to train (their training loss over the last tenth of "
                f"the steps is not below {100 * DIVERGED_FRACTION:.0f}% of that over the first tenth): {named}. "
                "They count at the scores they reached, in the tuning as in the reports."
                + (" No method is given a learning rate at which, or one grid step below one at which, a tuning run "
                   "failed: that passed over the best validation score of " + "; ".join(passed) + "."
                   if passed else ""))

    def seed_counts(self) -> pd.Series:
        """How many seeds report each method (``more_seeds`` may give some more than others)."""
        return pd.Series([name for name, _, _ in self.runs]).value_counts().reindex(self.chosen.method)

    def seeds_span(self) -> str:
        """The number of reporting seeds, as text: "10", or "10 to 27" where ``more_seeds`` gave some more."""
        counts = self.seed_counts()
        return f"{counts.min()}" if counts.min() == counts.max() else f"{counts.min()} to {counts.max()}"

    def seeds_note(self, target: float, unit: str = " points") -> str:
        """A sentence on the reporting seeds: how many report every method, and which ones got more because their
        paired interval was wider than ``target`` (``more_seeds``)."""
        counts = self.seed_counts()
        more = counts[counts > counts.min()].sort_values(ascending=False)
        if more.empty:
            return (f"Every method reports {counts.min()} seeds; no interval needed more to be within "
                    f"±{target:g}{unit}.")
        return (f"Every method reports {counts.min()} seeds or more: where a paired interval was wider than "
                f"±{target:g}{unit}, the method and its reference were repeated on as many more seeds as the spread "
                "of its differences asked, up to the chapter's limit ("
                + ", ".join(f"{n}: {k}" for n, k in more.items()) + " seeds).")

    def edge_note(self) -> str:
        """A sentence on the grids: which methods' grids grew past an edge they chose, and which choices still lie at
        an edge, and why the grid stopped there: zero, where a learning rate's or a weight decay's axis ends, or the
        ``extend`` extensions an axis may take, all taken."""
        extended = [f"{name} ({', '.join(f'{_name(k)} {_values(v)}' for k, v in keys.items())})"
                    for name, keys in self.extended.items() if keys]
        edges = [(row["method"], key, row[key]) for row in self.chosen.to_dict("records")
                 for key in self.grids.get(row["method"], {}) if _at_edge(self.grids[row["method"]][key], row[key])]
        at_zero = [f"{name}: {_name(key)}" for name, key, value in edges if value == 0]
        at_end = [f"{name}: {_name(key)} {value:g}" for name, key, value in edges if value != 0]
        parts = [f"The grid grew past an edge for {len(extended)} of the {len(self.chosen)} methods: "
                 + "; ".join(extended) + "."] if extended else []
        if at_zero:
            parts.append(f"{len(at_zero)} choice(s) are zero, where the axis ends ({'; '.join(at_zero)}).")
        if at_end:
            parts.append(f"{len(at_end)} choice(s) lie at an edge that the grid may grow past no further (at most "
                         f"{self.extend} time(s) per axis): {'; '.join(at_end)}; a wider grid could still move them.")
        return " ".join(parts) or "Every method chose values inside its grid."


def _name(key: str) -> str:
    return {"lr": "learning rate", "weight_decay": "weight decay"}.get(key, key)


def _values(values: list) -> str:
    return ", ".join(f"{v:g}" for v in values)


def _at_edge(values: list, value) -> bool:
    return len(values) >= 2 and value in (min(values), max(values))


def _mean_score(split_scores: dict) -> float:
    return float(np.mean([v for task in split_scores.values() for v in task.values()]))


def _labelled(triples: list[tuple[str, dict, Run]], split: str, at: str) -> pd.DataFrame:
    names = {config_key(c): name for name, c, _ in triples}
    return experiments.results([c for _, c, _ in triples], [r for _, _, r in triples], split,
                               label=lambda c: names[config_key(c)], at=at)


def beyond(values: Iterable[float], side: str) -> float | None:
    """The next value of a grid axis past its ``side`` ("low" or "high"), at the ratio of its two outermost values
    on that side (a log-spaced grid stays log-spaced); ``None`` where the axis cannot grow there (fewer than two
    positive values, or zero, where a learning rate or a weight decay ends)."""
    positive = sorted(v for v in set(values) if v > 0)
    if len(positive) < 2 or (side == "low" and 0 in set(values)):
        return None
    edge, inner = (positive[0], positive[1]) if side == "low" else (positive[-1], positive[-2])
    return float(f"{edge * edge / inner:.12g}")  # 1e-2, not 0.009999999999999998


SEARCHES = ("grid", "coordinate")


def tune_then_repeat(methods: Mapping[str, Mapping], grid: Mapping[str, Iterable], seeds: Iterable[int],
                     tuning_seeds: Iterable[int], cache_dir: str | Path | None = None, progress: bool = True,
                     extend: int = 0, at: str = "end", search: str = "grid", near_tie: float = 0.0,
                     tie_seeds: Iterable[int] = ()) -> Tuned:
    """Give every method the same hyperparameter ``grid``: train each grid point on the ``tuning_seeds``, keep the
    point with the best mean validation score (over tuning seeds, tasks and metrics, higher is better), then train
    every one of ``seeds`` there.

    ``methods`` maps a name to its configuration; ``grid`` maps configuration keys to candidate values, e.g.
    ``{"lr": [1e-3, 3e-3]}``. ``search="grid"`` tries every combination; ``"coordinate"`` tunes one axis after the
    other, in the grid's order, each at the values chosen for the axes before it and at the first value of those
    after it (``{"lr": [...], "weight_decay": [0.0, ...]}``: the learning rate without decay, then the decay at that
    learning rate). Where a method chooses a value at an edge of an axis, its grid grows one value past that edge
    (``beyond``) and is tuned again, at most ``extend`` times per axis, so that its choice is bracketed. Each run is
    read ``at`` its end or at the step its validation score chose (``Run.scores``: the runs must be evaluated during
    training, ``eval_every``). Where a method's best two points score within ``near_tie`` of each other (mean over
    the tuning seeds), both are trained on the ``tie_seeds`` too and the better by the mean over all their seeds is
    kept (``settle_ties``): more seeds where a choice is a near-tie. A learning rate at the edge of divergence
    (``unstable``: a tuning run failed there or one grid step above) is not chosen; ``Tuned.passed_over`` keeps the
    best scores so passed over. The reporting ``seeds`` must be disjoint from
    the tuning and tie seeds: a run the choice was made on would flatter the method it chose for.
    """
    seeds, tuning_seeds, grid = list(seeds), list(tuning_seeds), {k: list(v) for k, v in grid.items()}
    tie_seeds = list(tie_seeds)
    _check(methods, grid, seeds, [*tuning_seeds, *tie_seeds], extend, at, search)
    if set(tie_seeds) & set(tuning_seeds) or near_tie < 0:
        raise ValueError(f"tune_then_repeat: give near_tie >= 0 and tie seeds other than the tuning seeds "
                         f"({near_tie=}, {tie_seeds=}, {tuning_seeds=}).")
    grids = {name: {k: list(v) for k, v in grid.items()} for name in methods}
    extended: dict[str, dict[str, list]] = {name: {} for name in methods}
    point = {name: {k: v[0] for k, v in grid.items()} for name in methods}  # each method's values so far
    done: dict[str, tuple[str, dict, Run]] = {}
    passed_over: dict[str, dict] = {}
    for axes in [list(grid)] if search == "grid" else [[k] for k in grid]:
        for round_ in range(extend + 1):
            tuning = [(name, {**config, **point[name], **dict(zip(axes, values)), "seed": seed})
                      for name, config in methods.items()
                      for values in itertools.product(*(grids[name][k] for k in axes)) for seed in tuning_seeds]
            new = [(n, c) for n, c in tuning if config_key(c) not in done]
            for (name, config), result in zip(new, experiments.run_grid([c for _, c in new], cache_dir, progress)):
                done[config_key(config)] = (name, config, result)
            tried = [done[config_key(c)] for _, c in tuning]
            edge = unstable(tried, axes)
            stable = [t for t in tried if (t[0], _point(t[1], axes)) not in edge]
            chosen = _best(stable, list(grid), at, list(methods))
            if round_ == extend or not _grow(chosen, grids, extended, axes):
                break
        best = _best(tried, list(grid), at, list(methods)).set_index("method")
        for name, row in chosen.set_index("method").iterrows():
            if any(best.loc[name, k] != row[k] for k in axes):
                passed_over.setdefault(name, {}).update({k: best.loc[name, k] for k in axes})
        if near_tie > 0 and tie_seeds:
            chosen = settle_ties(chosen, stable, axes, tie_seeds, near_tie, at, done, cache_dir, progress)
        for row in chosen.to_dict("records"):
            point[row["method"]].update({k: row[k] for k in axes})
    repeated = [(row["method"], {**methods[row["method"]], **{k: row[k] for k in grid}, "seed": seed})
                for row in chosen.to_dict("records") for seed in seeds]
    runs = experiments.run_grid([c for _, c in repeated], cache_dir, progress)
    return Tuned(chosen, list(done.values()), [(n, c, r) for (n, c), r in zip(repeated, runs)], grids,
                 {name: keys for name, keys in extended.items() if keys}, at, extend, passed_over)


def more_seeds(tuned: Tuned, reference: str, per_seed: Callable[[Tuned], pd.DataFrame], target: float, most: int,
               cache_dir: str | Path | None = None, progress: bool = True) -> Tuned:
    """``tuned`` with more reporting seeds where a comparison is not yet resolved: each method whose paired interval
    with ``reference`` (over ``per_seed(tuned)``: one row per seed, one column per method) has a half-width above
    ``target`` repeats its chosen configuration on as many more seeds as the spread of its differences asks
    (``stats.seeds_for``), ``reference`` with it, on the seeds that follow the reporting ones, at most ``most``
    seeds in all. Repeated until every half-width is within ``target`` or its method has ``most`` seeds: the
    number of seeds follows the spread, never the mean, so the intervals stay honest."""
    reporting = sorted({c["seed"] for _, c, _ in tuned.runs})
    spare = [reporting[-1] + 1 + i for i in range(max(0, most - len(reporting)))]
    if set(spare) & {c["seed"] for _, c, _ in tuned.tuning}:
        raise ValueError(f"more_seeds: seeds {sorted(set(spare) & {c['seed'] for _, c, _ in tuned.tuning})} tuned "
                         f"or settled a tie; give fewer most seeds ({most}) or tie seeds further away.")
    while True:
        wide = per_seed(tuned)
        paired = paired_differences(wide, reference)
        asked = {name: seeds_for((wide[name] - wide[reference]).dropna(), target, most)
                 for name in paired.index[(paired.half_width > target) & (paired.n < most)]}
        if not asked:
            return tuned
        has = {name: {c["seed"] for n, c, _ in tuned.runs if n == name} for name in [*asked, reference]}
        template = {name: config for name, config, _ in tuned.runs}  # a method's chosen configuration
        needed = {**asked, reference: max(asked.values())}
        new = [(name, {**template[name], "seed": seed})
               for name, n in needed.items() for seed in [*reporting, *spare][:n] if seed not in has[name]]
        runs = experiments.run_grid([c for _, c in new], cache_dir, progress)
        tuned = replace(tuned, runs=[*tuned.runs, *((n, c, r) for (n, c), r in zip(new, runs))])


def settle_ties(chosen: pd.DataFrame, tuning: list[tuple[str, dict, Run]], axes: list[str], tie_seeds: list[int],
                near_tie: float, at: str, done: dict, cache_dir: str | Path | None = None, progress: bool = True
                ) -> pd.DataFrame:
    """``chosen`` (one row per method) with each near-tie settled on more seeds: where a method's best two points
    along ``axes`` score within ``near_tie`` of each other (mean validation score over the ``tuning`` runs' seeds),
    both train on ``tie_seeds`` too (kept in ``done``, by configuration key) and the one with the better mean over
    all their seeds is chosen."""
    table = _labelled(tuning, "val", at)
    table["point"] = list(zip(*(table[k] for k in axes)))
    means, contenders = table.groupby(["method", "point"]).value.mean(), {}
    for name in chosen.method:
        best_two = means.loc[name].nlargest(2)
        if len(best_two) == 2 and best_two.iloc[0] - best_two.iloc[1] < near_tie:
            contenders[name] = list(best_two.index)
    extra = {config_key(tied): (name, tied) for name, c, _ in tuning
             if name in contenders and _point(c, axes) in contenders[name]
             for tied in ({**c, "seed": seed} for seed in tie_seeds)}
    new = [(n, c) for key, (n, c) in extra.items() if key not in done]
    for (name, config), result in zip(new, experiments.run_grid([c for _, c in new], cache_dir, progress)):
        done[config_key(config)] = (name, config, result)
    settled = chosen.set_index("method")
    for name, points in contenders.items():
        runs = [t for t in [*tuning, *(done[key] for key in extra)] if t[0] == name and _point(t[1], axes) in points]
        best = _labelled(runs, "val", at).groupby(axes).value.mean().idxmax()
        settled.loc[name, axes] = list(best) if isinstance(best, tuple) else [best]
    return settled.reset_index()


def unstable(tuning: list[tuple[str, dict, Run]], axes: list[str]) -> set[tuple[str, tuple]]:
    """The (method, point along ``axes``) pairs at the edge of divergence: a tuning run failed there
    (``Run.diverged``), or at the next larger learning rate that the method tried with the other values held. The
    mean over a few tuning seeds does not see a learning rate at which one seed in ten collapses; a failure one grid
    step above it warns of one. Empty unless ``axes`` holds ``"lr"``. A method with no other point keeps them all."""
    if "lr" not in axes:
        return set()
    failed = {(name, _point(c, axes)) for name, c, r in tuning if r.diverged}
    points = {(name, _point(c, axes)) for name, c, _ in tuning}
    lr = axes.index("lr")

    def above(name: str, point: tuple) -> tuple | None:
        higher = [p for n, p in points if n == name and p[lr] > point[lr]
                  and p[:lr] + p[lr + 1:] == point[:lr] + point[lr + 1:]]
        return min(higher, key=lambda p: p[lr]) if higher else None

    edge = {(name, p) for name, p in points if (name, p) in failed or (name, above(name, p)) in failed}
    return {(name, p) for name, p in edge if any(n == name and (n, q) not in edge for n, q in points)}


def _best(triples: list[tuple[str, dict, Run]], keys: list[str], at: str, methods: list[str]) -> pd.DataFrame:
    """``best_hyperparameters`` of the ``triples``' validation scores, one row per method in ``methods``' order."""
    return best_hyperparameters(_labelled(triples, "val", at), keys).set_index("method").loc[methods].reset_index()


def _point(config: Mapping, axes: list[str]) -> tuple:
    """A configuration's values along ``axes``: its point on the grid."""
    return tuple(complete(config)[k] for k in axes)


def _grow(chosen: pd.DataFrame, grids: dict, extended: dict, axes: list[str]) -> bool:
    """Add to each method's grid, along ``axes``, the value past an edge it chose; whether any grid grew."""
    grew = False
    for row in chosen.to_dict("records"):
        for key in axes:
            values = grids[row["method"]][key]
            for side, edge in (("low", min(values)), ("high", max(values))):
                value = beyond(values, side) if len(values) >= 2 and row[key] == edge else None
                if value is not None:
                    values.append(value)
                    extended[row["method"]].setdefault(key, []).append(value)
                    grew = True
    return grew


def _check(methods: Mapping[str, Mapping], grid: dict, seeds: list, tuning_seeds: list, extend: int, at: str,
           search: str) -> None:
    if not seeds or not tuning_seeds or not grid or not all(grid.values()):
        raise ValueError("tune_then_repeat: give at least one seed, one tuning seed and one value per grid key "
                         f"({seeds=}, {tuning_seeds=}, {grid=}).")
    if set(seeds) & set(tuning_seeds):
        raise ValueError(f"tune_then_repeat: seeds {sorted(set(seeds) & set(tuning_seeds))} both tune and report; "
                         "the reporting seeds must be disjoint from the tuning seeds (see split_seeds).")
    if not isinstance(extend, int) or extend < 0:
        raise ValueError(f"tune_then_repeat: extend={extend!r}; give how many times a grid may grow, a whole "
                         "number >= 0.")
    if at not in READINGS:
        raise ValueError(f"tune_then_repeat: at={at!r}; read the runs at one of {READINGS}.")
    if search not in SEARCHES:
        raise ValueError(f"tune_then_repeat: search={search!r}; search the grid by one of {SEARCHES}.")
    keys = {}
    for name, config in methods.items():
        if at == "chosen" and not (config.get("eval_every") or config.get("eval_at")):
            raise ValueError(f"tune_then_repeat: method {name!r} is read at its chosen step but is evaluated only "
                             "at its end; give its configuration eval_every (e.g. one epoch's steps).")
        key = config_key({k: v for k, v in config.items() if k not in grid and k != "seed"})
        if key in keys:
            raise ValueError(f"tune_then_repeat: methods {keys[key]!r} and {name!r} have the same configuration.")
        keys[key] = name


def plateau_step(curves: pd.DataFrame, tolerance: float) -> int:
    """The training budget a learning curve asks for: the first evaluated step from which the curve, averaged over
    seeds (``curves``: columns step, seed, value; higher is better), never rises more than ``tolerance`` above its
    value there: the validation plateau."""
    if curves.empty or tolerance < 0:
        raise ValueError(f"plateau_step: give a non-empty table of curves and a tolerance >= 0 (got {tolerance}).")
    mean = curves.groupby("step").value.mean().sort_index()
    later_best = mean[::-1].cummax()[::-1]
    return int(mean.index[(later_best - mean <= tolerance).to_numpy()][0])


def at_pass_budget(tuned: Tuned, names: Iterable[str], passes: float, metric: str = "accuracy") -> pd.DataFrame:
    """The repeated runs of the ``names`` methods of ``tuned`` at one compute budget: each read at its best
    validation step among those within the steps that spend ``passes`` forward and backward passes at its method's
    mean passes per step (``Tuned.cost``), and at most its whole run.

    With a constant learning rate, the first s steps of a run are a run of s steps, so early stopping within them is
    early stopping on a run of s steps, at the granularity of the run's evaluations. One row per run, in the order
    of ``tuned.runs``: ``method``, ``seed``, ``steps`` (the budget's), ``chosen`` (the step read) and ``value``, the
    test ``metric`` averaged over the tasks."""
    names, per_step = set(names), tuned.cost()["passes"]
    if names - set(per_step.index):
        raise KeyError(f"at_pass_budget: no runs of {sorted(names - set(per_step.index))} among the tuned methods.")
    rows = []
    for name, config, result in tuned.runs:
        if name in names:
            steps = min(int(round(passes / per_step[name])), result.cost["steps"])
            step = result.chosen_step(up_to=steps)
            rows.append(dict(method=name, seed=config["seed"], steps=steps, chosen=step,
                             value=result.mean_metric_at(step, metric)))
    return pd.DataFrame(rows, columns=["method", "seed", "steps", "chosen", "value"])


@dataclass
class Comparison:
    """Methods against a reference method, tuned alike (``compare_with``): the ``tuned`` runs, their ``test`` table,
    each run's per-task change against the reference run of its seed (``relative``), its Delta_m (``delta``: method,
    seed, relative) and one ``overview`` row per other method: the interval of its Delta_m, its passes per step,
    milliseconds of compute per step (timed alone, or the runs' own: ``compare_with``) and their ratio to the
    reference's, its chosen hyperparameters, and the ``p_value`` of its Delta_m, for ``stats.corrected``."""

    tuned: Tuned
    test: pd.DataFrame
    relative: pd.DataFrame
    delta: pd.DataFrame
    overview: pd.DataFrame


def compare_with(methods: Mapping[str, Mapping], reference: str, grid: Mapping[str, Iterable], seeds: Iterable[int],
                 tuning_seeds: Iterable[int], tasks: Iterable[Task], cache_dir: str | Path | None = None,
                 progress: bool = True, extend: int = 0, at: str = "end", near_tie: float = 0.0,
                 tie_seeds: Iterable[int] = (), timed: bool = True, resolve_to: float = 0.0,
                 most_seeds: int = 0) -> Comparison:
    """Tune every method alike (``tune_then_repeat``) and compare each with ``reference`` seed by seed, in Delta_m
    over ``tasks`` (positive: better than the reference); ``extend``, ``at``, ``near_tie`` and ``tie_seeds`` as
    there. With ``resolve_to`` > 0, a method whose interval is wider than that (half-width, in points of Delta_m)
    gets more seeds, at most ``most_seeds`` (``more_seeds``). With ``timed``, the milliseconds of a step are timed on
    the CPU in this process (``experiments.step_times``), not read from the runs, which may have trained beside
    others; without it (runs on a GPU, one at a time), they are the runs' own."""
    if reference not in methods:
        raise KeyError(f"compare_with: the reference {reference!r} is not among the methods {sorted(methods)}.")
    tasks = list(tasks)

    def relative_of(tuned: Tuned) -> pd.DataFrame:
        return relative_to_baseline(tuned.table("test"), tasks, match=["seed"], baseline=reference, method="method")

    def delta_by_seed(tuned: Tuned) -> pd.DataFrame:  # the reference's Delta_m is 0 on each of its seeds
        return relative_of(tuned).groupby(["seed", "method"]).relative.mean().unstack("method").assign(
            **{reference: 0.0})

    tuned = tune_then_repeat(methods, grid, list(seeds), tuning_seeds, cache_dir, progress, extend, at,
                             near_tie=near_tie, tie_seeds=tie_seeds)
    if resolve_to > 0:
        tuned = more_seeds(tuned, reference, delta_by_seed, resolve_to, most_seeds, cache_dir, progress)
    test, relative = tuned.table("test"), relative_of(tuned)
    delta = relative.groupby(["method", "seed"], as_index=False).relative.mean()
    summary = summarize(delta, by=["method"], value="relative").set_index("method")
    summary["half_width"] = (summary.ci_high - summary.ci_low) / 2
    summary["p_value"] = delta.groupby("method").relative.apply(p_value)
    cost = tuned.cost()[["passes", "ms_per_step"]].rename(columns={"ms_per_step": "ms per step"})
    if timed:
        cost["ms per step"] = experiments.step_times(methods)
    cost[f"ms vs {reference}"] = cost["ms per step"] / cost.loc[reference, "ms per step"]
    others = [m for m in methods if m != reference]
    overview = summary.reindex(others).join(cost).join(tuned.chosen.set_index("method"))
    return Comparison(tuned, test, relative, delta, overview)


def learning_curves(configs: Iterable[Mapping], runs: Iterable[Run], keys: Iterable[str] = ("lr", "seed"),
                    metric: str | None = None, split: str = "val") -> pd.DataFrame:
    """The runs' learning curves as one long table: the configuration's ``keys``, step, and value, ``metric`` on
    ``split`` averaged over the tasks (and over every metric where ``metric`` is None) at each evaluated step."""
    keys = list(keys)
    return pd.concat([result.mean_metric_by_step(metric, split).rename("value").reset_index()
                      .assign(**{k: complete(config)[k] for k in keys}) for config, result in zip(configs, runs, strict=True)],
                     ignore_index=True)[[*keys, "step", "value"]]


def budget_from_curves(curves: pd.DataFrame, tolerance: float, by: str = "lr") -> tuple[object, int]:
    """The training budget from a baseline's learning curves (``learning_curves``): the value of ``by`` whose curve,
    averaged over seeds, peaks highest, and the step where that curve reaches its plateau (``plateau_step``)."""
    peaks = curves.groupby([by, "step"]).value.mean().groupby(level=by).max()
    best = peaks.idxmax()
    return best, plateau_step(curves[curves[by] == best], tolerance)


@dataclass
class Budget:
    """A chapter's training budget, read from its baseline's learning curves (``baseline_budget``): the ``curves``
    (lr, seed, step, epoch, value), the learning rate ``lr`` whose curve peaked highest, the ``step`` where it reached
    its plateau, and that step in whole ``epochs`` of ``steps_per_epoch`` steps, the budget of every run."""

    curves: pd.DataFrame
    lr: float
    step: int
    epochs: int
    steps_per_epoch: int


def baseline_budget(config: Mapping, lrs: Iterable[float], seeds: Iterable[int], horizon: int, tolerance: float,
                    cache_dir: str | Path | None = None, progress: bool = True) -> Budget:
    """Train the baseline ``config`` (an averaged loss, say) for ``horizon`` epochs at each of ``lrs`` on ``seeds``,
    evaluated after every epoch, and take as the budget the epoch where its best curve reaches its validation
    plateau: no later epoch more than ``tolerance`` above it (``budget_from_curves``), rounded up to whole epochs."""
    c = complete({**config, "epochs": horizon, "steps": None})
    per_epoch = -(-len(experiments.suite_for(c).train) // c["batch_size"])
    configs = [{**c, "lr": lr, "seed": seed, "eval_every": per_epoch} for lr in lrs for seed in seeds]
    curves = learning_curves(configs, experiments.run_grid(configs, cache_dir, progress))
    curves["epoch"] = curves.step / per_epoch
    lr, step = budget_from_curves(curves, tolerance)
    return Budget(curves, float(lr), step, -(-step // per_epoch), per_epoch)
