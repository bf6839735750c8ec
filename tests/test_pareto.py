import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mtlutils import pareto

scores = st.integers(min_value=0, max_value=5)  # few values: ties are frequent
clouds = st.lists(st.tuples(scores, scores, scores), min_size=1, max_size=12).map(
    lambda rows: pd.DataFrame(rows, columns=["a", "b", "c"], index=[f"p{i}" for i in range(len(rows))]))


def _beats(x, y):
    return bool((np.asarray(x) > np.asarray(y)).all())


@settings(max_examples=200, deadline=None)
@given(clouds)
def test_the_front_keeps_exactly_the_points_that_no_point_beats(points):
    front = pareto.non_dominated(points)
    assert list(front.columns) == list(points.columns)
    assert [p for p in points.index if p in front.index] == list(front.index)  # the order of points
    for kept in front.index:  # no returned point is dominated
        assert not any(_beats(points.loc[o], points.loc[kept]) for o in points.index)
    for dropped in points.index.difference(front.index):  # every dropped point is
        assert any(_beats(points.loc[o], points.loc[dropped]) for o in points.index)


@settings(max_examples=100, deadline=None)
@given(clouds, st.permutations(range(12)))
def test_the_front_does_not_depend_on_the_order_of_the_points_or_tasks(points, order):
    shuffled = points.iloc[[i for i in order if i < len(points)]]
    assert set(pareto.non_dominated(shuffled).index) == set(pareto.non_dominated(points).index)
    swapped = points[["c", "a", "b"]]
    assert set(pareto.non_dominated(swapped).index) == set(pareto.non_dominated(points).index)


@settings(max_examples=100, deadline=None)
@given(clouds)
def test_the_front_is_never_empty_and_is_its_own_front(points):
    front = pareto.non_dominated(points)
    assert len(front) >= 1
    pd.testing.assert_frame_equal(pareto.non_dominated(front), front)


def test_dominance_is_strict_on_every_column_and_reads_the_other_set_by_column_name():
    points = pd.DataFrame({"left": [1.0, 2.0, 3.0], "right": [3.0, 2.0, 1.0]}, index=["x", "y", "z"])
    by = pd.DataFrame({"right": [2.5, 4.0], "left": [2.5, 1.0]}, index=["w1", "w2"])
    # w1 = (2.5, 2.5) beats y = (2, 2) only; w2 = (1, 4) ties x on the left, so beats nothing
    assert pareto.dominated(points, by=by).to_dict() == {"x": False, "y": True, "z": False}
    assert not pareto.dominated(points).any()  # a line of trade-offs: nobody beats anybody
    assert pareto.dominated(pd.DataFrame({"a": [1.0, 2.0]})).tolist() == [True, False]


def test_nan_beats_nothing_and_no_columns_are_refused():
    points = pd.DataFrame({"a": [np.nan, 1.0], "b": [5.0, 0.0]})
    assert pareto.dominated(points).tolist() == [False, False]
    assert len(pareto.non_dominated(points.iloc[:0])) == 0
    with pytest.raises(ValueError, match="no columns"):
        pareto.dominated(pd.DataFrame(index=["a", "b"]))
