"""The statistics every chapter quotes: means with Student-t confidence intervals, paired differences seed by seed,
each task's change against a baseline, the resolution of a set of comparisons, their correction for being many, and
the words that report them.

Runs with the same seed share their initialisation and batches, so the difference of two methods is taken seed by
seed (``paired_differences``): its interval is tighter than the two methods' separate intervals.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
import pandas as pd
from scipy import stats

from .metrics import delta_m
from .tasks import Task


def confidence_interval(values: Iterable[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval (low, high) of the mean; a single value has an infinite interval."""
    x = np.asarray(list(values), dtype=float)
    if x.size == 0:
        raise ValueError("confidence_interval: no values.")
    if not np.isfinite(x).all():
        raise ValueError(f"confidence_interval: {int((~np.isfinite(x)).sum())} of the {x.size} values are NaN or "
                         "infinite; drop the runs that have none (and say so) before summarising.")
    mean = float(x.mean())
    if x.size == 1:
        return mean, -np.inf, np.inf
    half = float(stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
    return mean, mean - half, mean + half


def summarize(table: pd.DataFrame, by: list[str], value: str = "value", level: float = 0.95) -> pd.DataFrame:
    """Mean, confidence interval and number of runs of ``value`` in every cell of ``by``."""
    rows = []
    for key, cell in table.groupby(by, sort=True):
        mean, low, high = confidence_interval(cell[value], level)
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, key)), "mean": mean, "ci_low": low, "ci_high": high, "n": len(cell)})
    return pd.DataFrame(rows)


def paired_differences(wide: pd.DataFrame, reference, level: float = 0.95) -> pd.DataFrame:
    """For every other column of ``wide`` (rows: seeds, columns: methods), the mean and confidence interval of its
    difference from the ``reference`` column, seed by seed: one ``summarize`` row per column, with the interval's
    ``half_width``, the resolution of the comparison (``resolution``), and the two-sided ``p_value`` of the paired
    t-test (below 1 - ``level`` exactly when the interval leaves out zero; NaN with one seed). A seed missing from
    either column is left out."""
    rows = {}
    for column in wide.columns:
        if column != reference:
            difference = (wide[column] - wide[reference]).dropna()
            mean, low, high = confidence_interval(difference, level)
            rows[column] = {"mean": mean, "ci_low": low, "ci_high": high, "half_width": (high - low) / 2,
                            "n": len(difference), "p_value": p_value(difference)}
    return pd.DataFrame.from_dict(rows, orient="index")


def seeds_for(differences: Iterable[float], target: float, most: int, level: float = 0.95) -> int:
    """How many paired seeds a comparison needs for the half-width of its interval to be at most ``target``, at the
    spread of its ``differences`` so far: the fewest n (no fewer than it has, at most ``most``) with
    t(n - 1) s / sqrt(n) <= target, s their standard deviation; ``most`` where no n up to it is enough."""
    x = np.asarray(list(differences), dtype=float)
    if x.size < 2 or target <= 0 or most < x.size:
        raise ValueError(f"seeds_for: give at least two differences, a target > 0 and most >= their number "
                         f"({x.size} differences, {target=}, {most=}).")
    spread = x.std(ddof=1)
    for n in range(x.size, most + 1):
        if stats.t.ppf(0.5 + level / 2, n - 1) * spread / np.sqrt(n) <= target:
            return n
    return most


def p_value(differences: Iterable[float]) -> float:
    """The two-sided p-value of the paired t-test that the mean of paired ``differences`` is 0 (below 1 - level
    exactly when ``confidence_interval`` leaves out 0); with every difference equal (no spread), 1 for 0 and 0
    otherwise, as the interval [d, d] contains zero or not; NaN for one difference."""
    difference = np.asarray(list(differences), dtype=float)
    if difference.size < 2:
        return np.nan
    if np.ptp(difference) == 0:
        return 1.0 if difference[0] == 0 else 0.0
    return float(stats.ttest_1samp(difference, 0.0).pvalue)


def corrected(differences: pd.DataFrame, rate: float = 0.05) -> pd.DataFrame:
    """``paired_differences`` rows with their p-values adjusted for their number by Benjamini and Hochberg's
    procedure (``scipy.stats.false_discovery_control``), ``p_adjusted``, and ``survives``: separated from zero
    with the expected share of false separations among those reported kept at ``rate``."""
    if not 0 < rate < 1:
        raise ValueError(f"corrected: the false-discovery rate must lie in (0, 1), not {rate}.")
    p = differences["p_value"].to_numpy(dtype=float)
    if not np.isfinite(p).all():
        raise ValueError("corrected: every comparison needs at least two paired seeds for a p-value.")
    adjusted = stats.false_discovery_control(p, method="bh") if len(p) else p
    return differences.assign(p_adjusted=adjusted, survives=adjusted < rate)


def surviving(differences: pd.DataFrame, rate: float = 0.05, level: float = 0.95) -> str:
    """How many of a set of comparisons (``paired_differences`` rows) their intervals separate from zero, and how
    many of them survive the Benjamini-Hochberg correction (``corrected``), as a sentence that names the
    survivors."""
    table = corrected(differences, rate)
    above, below = separated(table)
    kept, count = list(table.index[table.survives]), len(above) + len(below)
    correction = f"the correction for their number (Benjamini-Hochberg, false-discovery rate {100 * rate:.0f}%)"
    survivors = (f"none survives {correction}" if not kept else
                 f"{len(kept)} {'survives' if len(kept) == 1 else 'survive'} {correction}: {listing(kept)}")
    return (f"Of {len(table)} comparisons, {count} {'is' if count == 1 else 'are'} separated from zero at "
            f"{100 * level:.0f}% each; {survivors}.")


def paired_gap(wide: pd.DataFrame, a, b, level: float = 0.95) -> pd.Series:
    """Column ``a`` of ``wide`` minus column ``b``, seed by seed: one ``paired_differences`` row."""
    return paired_differences(wide[[b, a]], reference=b, level=level).loc[a]


def relative_to_baseline(
    table: pd.DataFrame, tasks: Iterable[Task], match: list[str], baseline: str = "single_task",
    method: str = "strategy",
) -> pd.DataFrame:
    """Each task's relative performance (percent, positive = better) against the baseline run it matches.

    ``table`` comes from ``experiments.results``; a row whose ``method`` column (by default ``strategy``) equals
    ``baseline`` is the reference of every other row with the same values in ``match`` (e.g. ``["seed",
    "data.angle"]``) and the same task. The change of a task is Delta_m restricted to that task
    (``metrics.delta_m``): the mean over its metrics of the signed relative change. Returns one row per (run, task)
    with the ``match`` columns, the ``method`` column, ``task`` and ``relative``.
    """
    by_name = {t.name: t for t in tasks}
    is_base = table[method] == baseline
    if not is_base.any():
        raise ValueError(f"relative_to_baseline: the table has no {baseline!r} runs to compare with.")

    def scores(rows: pd.DataFrame) -> dict:
        return {task: dict(zip(cell.metric, cell.value)) for task, cell in rows.groupby("task")}

    base = {key: scores(rows) for key, rows in table[is_base].groupby(match)}
    out = []
    for key, rows in table[~is_base].groupby([*match, method]):
        reference = base.get(key[:-1])
        if reference is None:
            raise KeyError(f"relative_to_baseline: no {baseline!r} run for {dict(zip(match, key[:-1]))}.")
        for task, values in scores(rows).items():
            change = delta_m({task: values}, {task: reference[task]}, [by_name[task]])
            out.append({**dict(zip([*match, method], key)), "task": task, "relative": change})
    return pd.DataFrame(out)


def delta_by_seed(table: pd.DataFrame, tasks: Iterable[Task], baseline: str, method: str = "method") -> pd.DataFrame:
    """Every method's Delta_m (Maninis et al., 2019) against the ``baseline`` method of the same seed, from a long
    table of results (``relative_to_baseline``, then the mean over tasks): one row per (method, seed), column
    ``relative`` (percent, positive when better than the baseline)."""
    relative = relative_to_baseline(table, list(tasks), match=["seed"], method=method, baseline=baseline)
    return relative.groupby([method, "seed"], as_index=False).relative.mean()


def resolution(differences: pd.DataFrame, unit: str = " points", level: float = 0.95, decimals: int = 1) -> str:
    """What a set of paired comparisons (``paired_differences`` rows, or ``summarize`` rows of paired quantities)
    can resolve, as a sentence: the half-widths of their intervals. A difference "not separated" from zero is then
    one no larger than about that."""
    half = (differences.ci_high - differences.ci_low) / 2
    if not np.isfinite(half).all():
        raise ValueError("resolution: every comparison needs at least two paired seeds for a finite interval.")
    low, high = half.min(), half.max()
    fewest, most = int(differences["n"].min()), int(differences["n"].max())
    span = (f"{low:.{decimals}f}{unit}" if round(low, decimals) == round(high, decimals)
            else f"{low:.{decimals}f} to {high:.{decimals}f}{unit}")
    seeds = f"{fewest}" if fewest == most else f"{fewest} to {most}"
    return (f"Resolution: with {seeds} paired seeds, the half-widths of the {100 * level:.0f}% intervals of the "
            f"differences are {span}; a difference smaller than that is not resolved by these seeds.")


def sign_of(row: Mapping) -> int:
    """Which side of zero a ``summarize`` or ``paired_differences`` row's interval lies on: 1 above, -1 below, 0
    when it contains zero (the seeds do not separate the quantity from zero)."""
    return 1 if row["ci_low"] > 0 else -1 if row["ci_high"] < 0 else 0


SIDES = {1: "above 0", -1: "below 0", 0: "not separated from 0"}


def side(row: Mapping) -> str:
    """``sign_of`` in words: "above 0", "below 0" or "not separated from 0"."""
    return SIDES[sign_of(row)]


def separated(table: pd.DataFrame) -> tuple[list, list]:
    """The index labels of the rows of ``table`` whose interval lies above zero, and of those below it."""
    signs = {label: sign_of(row) for label, row in table.iterrows()}
    return [label for label, s in signs.items() if s > 0], [label for label, s in signs.items() if s < 0]


def describe_interval(row: Mapping, unit: str = "%", level: float = 0.95, decimals: int = 1) -> str:
    """A ``summarize`` row as text: ``+1.2% (95% CI -0.3 to +2.7)``."""
    f = f"+.{decimals}f"
    return f"{row['mean']:{f}}{unit} ({100 * level:.0f}% CI {row['ci_low']:{f}} to {row['ci_high']:{f}})"


def describe_gap(gap: Mapping, a, b, unit: str = "%", level: float = 0.95, decimals: int = 1) -> str:
    """A ``paired_gap(wide, a, b)`` row as text: ``a minus b: +1.2% (95% CI +0.3 to +2.1)``, followed by `` (the
    interval contains 0)`` when the seeds do not separate the difference from zero."""
    text = f"{a} minus {b}: {describe_interval(gap, unit, level, decimals)}"
    return text + ("" if sign_of(gap) else " (the interval contains 0)")


def listing(names: Iterable, last: str = " and ", empty: str = "none") -> str:
    """Names as a phrase: "a", "a and b", "a, b and c" (``last`` joins the final two), ``empty`` when there are
    none."""
    names = [str(n) for n in names]
    if not names:
        return empty
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + last + names[-1]
