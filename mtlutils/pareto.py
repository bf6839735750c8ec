"""Which trade-offs between tasks no other one beats: dominance and the Pareto front of a set of points.

A point (one row: a score per task, higher is better) dominates another when it is higher on every task. The
front of a set is what remains once every dominated point is dropped: the trade-offs that a sweep of task
weights (a *scalarization*, Xin et al., 2022) or a set of methods actually reaches.
"""

from __future__ import annotations

import pandas as pd


def dominated(points: pd.DataFrame, by: pd.DataFrame | None = None) -> pd.Series:
    """For every row of ``points``, whether some row of ``by`` (by default ``points`` itself) is strictly higher
    on every column of ``points``; a row never dominates itself, and a NaN beats nothing and is beaten by
    nothing."""
    if points.shape[1] == 0:
        raise ValueError("dominated: the points have no columns (no task to compare on).")
    by = points if by is None else by
    mine, theirs = points.to_numpy(float), by[list(points.columns)].to_numpy(float)
    beaten = (theirs[None, :, :] > mine[:, None, :]).all(axis=2).any(axis=1)
    return pd.Series(beaten, index=points.index)


def non_dominated(points: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``points`` that no other row beats on every column (higher is better): its Pareto front, in
    the order of ``points``."""
    return points[~dominated(points).to_numpy()]
