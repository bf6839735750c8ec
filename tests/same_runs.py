"""Equality of two runs, value by value and bit for bit, leaving out the measured times."""

import numpy as np

TIMES = {"seconds", "evaluation_seconds"}


def assert_same_run(a, b, times: bool = False):
    """Every recorded value of ``a`` equals ``b``'s (arrays bit for bit, dtypes too); times only if ``times``."""
    drop = [] if times else [c for c in TIMES if c in a.history]
    assert a.history.drop(columns=drop).equals(b.history.drop(columns=drop))
    assert a.evals.equals(b.evals) and a.metrics == b.metrics and a.groups == b.groups and a.device == b.device
    assert {k: v for k, v in a.cost.items() if times or k not in TIMES} == {
        k: v for k, v in b.cost.items() if times or k not in TIMES}
    for name in ("cosines", "affinity"):
        assert [s for s, _ in getattr(a, name)] == [s for s, _ in getattr(b, name)]
        assert all(x.dtype == y.dtype and np.array_equal(x, y)
                   for (_, x), (_, y) in zip(getattr(a, name), getattr(b, name)))
    assert a.measurements.keys() == b.measurements.keys()
    for name in a.measurements:
        assert all(s == t and np.array_equal(x, y) for (s, x), (t, y) in zip(a.measurements[name], b.measurements[name]))
