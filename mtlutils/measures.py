"""Affinity measures against known groups: each measure's series over one run, how well the groups it gives agree
with the known ones as training goes, the heatmap panels that show it, whether it predicts the realised transfer of a
pair of tasks, and the sentences that report these comparisons.

A run of ``strategies.AffinityProbe`` updates one task at a time in a random order and lets no measure steer it, so
every measure is read off the same batches: the proximal inter-task affinity (Jeong & Yoon, 2025) under both
attributions on every step, TAG's lookahead affinity (Fifty et al., 2021) and the gradient cosine (Yu et al., 2020)
every few steps. The sparse two are smoothed to the proximal affinity's memory (``series``).
"""

from __future__ import annotations

from functools import partial
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from . import affinity, stats
from .metrics import delta_m
from .record import Run
from .tasks import TaskSuite

MEASURES = ["proximal (intended)", "proximal (as coded)", "TAG lookahead", "gradient cosine"]
INTENDED, AS_CODED, LOOKAHEAD, COSINE = MEASURES
AS_CODED_OURS = "proximal (as coded), this book's normalisation"  # the as-coded credit, grouped as intended
TAG_SELECTION, TAG_PARTITION = "TAG lookahead, TAG's selection", "TAG lookahead, best partition"
EXTRA = [AS_CODED_OURS, TAG_SELECTION, TAG_PARTITION]  # read off the same runs; rows of tables, not curves
ATTRIBUTIONS = {"intended": "intended", "as_coded": "official (as coded)"}  # SelectiveGroups steered by each


def series(run: Run, beta: float, every: int) -> dict[str, list[tuple[int, np.ndarray]]]:
    """Every measure of one probe run as ``(step, matrix)`` pairs, by name (``MEASURES``): the proximal affinity
    under both attributions as recorded, TAG's lookahead and the gradient cosine, measured every ``every`` steps,
    smoothed by ``affinity.moving_average`` with weight ``beta * every`` (at most 1), the memory of a proximal
    affinity with ``beta`` updated on every step."""
    weight = min(1.0, beta * every)
    return {
        INTENDED: [(step, m[0]) for step, m in run.affinity],
        AS_CODED: [(step, m[1]) for step, m in run.affinity],
        LOOKAHEAD: affinity.moving_average(run.measurements["lookahead"], weight),
        COSINE: affinity.moving_average(run.cosines, weight),
    }


def agreement_rows(run: Run, task_names: Sequence[str], groups: Sequence[Sequence[str]], beta: float, every: int,
                   points: int = 30, **key) -> list[dict]:
    """How the groups of every measure of a probe run agree with the known ``groups``, as table rows that start
    with ``key`` (e.g. dataset, optimizer, seed).

    For up to ``points`` evenly spaced snapshots of each measure, the last included
    (``affinity.agreement_over_training``): ``measure``, ``progress`` (the fraction of the run's steps done),
    ``ari`` (adjusted Rand index of its affinity-propagation groups) and ``final`` (the last snapshot). The as-coded
    matrix is grouped twice: normalised as the official code does (``AS_CODED``) and as the equations say
    (``AS_CODED_OURS``). Two more rows score the lookahead at the end: TAG's selection of at most ``len(groups)``
    groups (``TAG_SELECTION``, with ``overlap``: whether its groups overlap) and the best partition
    (``TAG_PARTITION``), each through the partition of the tasks by the group that serves them best.
    """
    by_measure = series(run, beta, every)
    rows = []
    for measure, snapshots in [*by_measure.items(), (AS_CODED_OURS, by_measure[AS_CODED])]:
        grouping = partial(affinity.groups_from_affinity, task_names=task_names, as_coded=measure == AS_CODED)
        aris = affinity.agreement_over_training(snapshots, groups, grouping, points=points)
        rows += [dict(**key, measure=measure, progress=(step + 1) / run.cost["steps"], ari=ari,
                      final=step == snapshots[-1][0]) for step, ari in aris]
    return rows + _tag_rows(by_measure[LOOKAHEAD][-1][1], task_names, groups, key)


def _tag_rows(z: np.ndarray, task_names: Sequence[str], groups: Sequence[Sequence[str]], key: Mapping) -> list[dict]:
    rows = []
    for measure, search in ((TAG_SELECTION, "tag"), (TAG_PARTITION, "partition")):
        selection = affinity.select_groups_tag(z, task_names, max_groups=len(groups), search=search)
        served = affinity.served_by(z, task_names, selection)
        rows.append(dict(**key, measure=measure, progress=1.0, final=True,
                         overlap=sum(map(len, selection)) > len(task_names),
                         ari=affinity.group_agreement(served, groups)))
    return rows


def panels(run: Run, beta: float, every: int) -> list[tuple[str, np.ndarray]]:
    """The heatmap panels of a probe run, as ``(title, matrix)`` for ``plots.heatmap_row``: the normalised intended
    proximal affinity early (a tenth of the way), halfway and at the end, then at the end the smoothed lookahead
    (normalised the same way) and gradient cosine."""
    by_measure, steps = series(run, beta, every), run.cost["steps"]
    proximal = by_measure[INTENDED]
    picks = (len(proximal) // 10, len(proximal) // 2, len(proximal) - 1)
    shown = [(f"{INTENDED}\nstep {proximal[i][0] + 1} of {steps}", affinity.normalized_affinity(proximal[i][1]))
             for i in picks]
    end = {LOOKAHEAD: affinity.normalized_affinity(by_measure[LOOKAHEAD][-1][1]), COSINE: by_measure[COSINE][-1][1]}
    return shown + [(f"{measure}\nend (moving average)", matrix) for measure, matrix in end.items()]


def mean_affinity(run: Run, measure: str, beta: float, every: int) -> np.ndarray:
    """A measure's matrix averaged over a probe run; the proximal affinity normalised as for grouping (with the
    official code's normalisation for ``AS_CODED``)."""
    mean = np.mean([matrix for _, matrix in series(run, beta, every)[measure]], axis=0)
    if measure in (INTENDED, AS_CODED):
        return affinity.normalized_affinity(mean, as_coded=measure == AS_CODED)
    return mean


def pair_score_matrix(runs: Sequence[Run], measure: str, n: int, beta: float, every: int) -> np.ndarray:
    """The score of every pair of the first ``n`` tasks (``affinity.pair_scores`` of ``mean_affinity``) in each of
    ``runs`` (one run a seed): an array of shape (seeds, pairs)."""
    return np.array([affinity.pair_scores(mean_affinity(run, measure, beta, every)[:n, :n]) for run in runs])


def transfer_correlations(blocks: Sequence[tuple[Sequence[Run], np.ndarray]], n: int, beta: float, every: int,
                          over: str = "pairs and seeds") -> list[dict]:
    """Does each measure predict transfer? For every measure, Spearman's correlation between its pair scores and the
    realised gains of the same pairs, with a bootstrap interval ``over`` the pairs and the seeds (or the seeds
    alone; ``affinity.rank_correlation``; Azorin et al., 2023): one row per measure. ``blocks`` holds one
    (runs, realised) per suite, their pairs pooled: the probe runs (one a seed, the same seeds in every block) and
    the realised gains of the pairs of their first ``n`` tasks (shape (seeds, pairs), ``experiments.pair_transfer``),
    e.g. one suite of two tasks per setting of a dial of transfer."""
    realised = np.hstack([gains for _, gains in blocks])
    rows = []
    for measure in MEASURES:
        scores = np.hstack([pair_score_matrix(runs, measure, n, beta, every) for runs, _ in blocks])
        rho, low, high = affinity.rank_correlation(scores, realised, over=over)
        rows.append(dict(measure=measure, seeds=len(realised), pairs=realised.shape[1], spearman=rho, ci_low=low,
                         ci_high=high))
    return rows


def gaps_by_cell(by_seed: pd.DataFrame, a: str, b: str) -> dict[tuple, pd.Series]:
    """Measure ``a`` minus measure ``b`` seed by seed (``stats.paired_gap``) in every cell of ``by_seed``, whose
    rows are indexed by the cell's levels (e.g. dataset, optimizer) and ``seed``, one column per measure."""
    cells = by_seed.index.droplevel("seed").unique()
    return {cell: stats.paired_gap(by_seed.loc[cell], a, b) for cell in cells}


def gaps_text(gaps: Mapping[tuple, Mapping]) -> str:
    """``gaps_by_cell`` in words: ``clusters with SGD: +0.12 (95% CI -0.03 to +0.27); ...``."""
    return "; ".join(f"{' with '.join(cell)}: {stats.describe_interval(gap, unit='', decimals=2)}"
                     for cell, gap in gaps.items())


def best_line(label: str, cell: pd.DataFrame, wide: pd.DataFrame) -> tuple[str, list[pd.Series]]:
    """Which measure has the highest mean ARI over training in ``cell`` (``stats.summarize`` rows indexed by
    measure), and whether the seeds separate it from each other one, seed by seed (``stats.paired_gap`` on
    ``wide``: rows seeds, columns measures). Returns the sentence, a list item, and the paired gaps, each named
    "label: best minus other"."""
    best = cell["mean"].idxmax()
    gaps = {m: stats.paired_gap(wide, best, m).rename(f"{label}: {best} minus {m}")
            for m in cell.index if m != best}
    close = [m for m, gap in gaps.items() if gap.ci_low <= 0]
    tie = (f"; seed by seed, the seeds do not separate it from {stats.listing(close)}" if close
           else "; seed by seed, it is above every other measure")
    line = (f"- {label}: {best} has the highest mean ARI over training, "
            f"{stats.describe_interval(cell.loc[best], unit='', decimals=2)}{tie}.")
    return line, list(gaps.values())


def describe_correlation(row: Mapping) -> str:
    """A ``transfer_correlations`` row in words: ``+0.48 (95% CI +0.30 to +0.63)``."""
    interval = {"mean": row["spearman"], "ci_low": row["ci_low"], "ci_high": row["ci_high"]}
    return stats.describe_interval(interval, unit="", decimals=2)


def premise_line(dataset: str, cell: pd.DataFrame) -> str:
    """The ``transfer_correlations`` of one dataset (rows indexed by measure) as a list item: each measure's
    correlation, the highest, and those whose interval lies above zero."""
    best = (f"The highest is {cell.spearman.idxmax()}; " if cell.spearman.notna().any()  # NaN: nothing varies
            else "No correlation is defined, since the gains or the measures do not vary over the pairs; ")
    supported = [m for m, row in cell.iterrows() if row.ci_low > 0]
    return (f"- {dataset} ({int(cell.pairs.iloc[0])} pairs, {int(cell.seeds.iloc[0])} seeds): "
            + "; ".join(f"{m} {describe_correlation(row)}" for m, row in cell.iterrows())
            + ". " + best + (f"the interval lies above zero for {stats.listing(supported)}." if supported
                             else "no interval lies above zero."))


def steered_row(run: Run, reference: Run, suite: TaskSuite, warmup: int) -> dict:
    """What a run of SelectiveGroups did: ``groups`` (the number of its final groups; a lone group updated twice
    counts once), ``lone`` (percent of the batches after the warm-up that updated all tasks as one group), ``ari``
    (its final groups against the suite's known groups; NaN when none are known) and ``delta`` (its test Delta_m
    against the ``reference`` run, percent)."""
    final = list(dict.fromkeys(run.groups[-1]))
    known = "groups" in suite.meta
    return dict(groups=len(final), lone=100 * np.mean([len(set(g)) == 1 for g in run.groups[warmup + 1:]]),
                ari=affinity.group_agreement(final, suite.meta["groups"]) if known else np.nan,
                delta=delta_m(run.metrics["test"], reference.metrics["test"], suite.tasks))


def official_line(dataset: str, cell: pd.DataFrame) -> str:
    """The official method against the intended one on the same seeds, as a list item: ``cell`` holds the
    ``steered_row``s of both, with ``method`` (the labels of ``ATTRIBUTIONS``) and ``seed``. It gives the share of
    lone groups, the ARI of the final groups (official minus intended, seed by seed, when groups are known) and the
    official method's test Delta_m against the intended one."""
    intended, coded = ATTRIBUTIONS["intended"], ATTRIBUTIONS["as_coded"]
    lone = cell.groupby("method").lone.mean()
    interval = stats.confidence_interval(cell[cell.method == coded].delta)
    delta = pd.Series(interval, index=["mean", "ci_low", "ci_high"])
    ari = cell.pivot(index="seed", columns="method", values="ari")
    ari_text = ""
    if ari.notna().all().all():
        gap = stats.describe_interval(stats.paired_gap(ari, coded, intended), unit="", decimals=2)
        ari_text = f"; ARI of the final groups, official minus intended, {gap}"
    settled = ", which the seeds do not tell from zero." if delta.ci_low <= 0 <= delta.ci_high else "."
    return (f"- {dataset}: after the warm-up, {lone[coded]:.0f}% of the official run's batches (and "
            f"{lone[intended]:.0f}% of the intended one's) had all tasks in one group{ari_text}; the "
            f"official method's test $\\Delta_m$ against the intended one of the same seed is "
            f"{stats.describe_interval(delta)}{settled}")
