"""plots.rank_paths: each entry's rank along a parameter."""

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402

from mtlutils import plots  # noqa: E402


def test_each_entry_is_drawn_at_its_rank_for_every_value_of_the_parameter():
    v = np.linspace(0, 1, 5)
    left, right = pd.Series({"a": 90.0, "b": 80.0, "c": 85.0}), pd.Series({"a": 70.0, "b": 95.0, "c": 60.0})
    scores = pd.DataFrame({w: w * left + (1 - w) * right for w in v})
    fig, ax = plt.subplots()
    plots.rank_paths(ax, scores)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines) == ["a", "b", "c"]
    for name, line in lines.items():
        np.testing.assert_allclose(line.get_xdata(), v)
        np.testing.assert_array_equal(line.get_ydata(), scores.rank(ascending=False).loc[name])
    assert list(lines["b"].get_ydata()) == [1, 1, 1, 2, 3]  # b leads on the right digit, trails on the left
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # rank 1 at the top
    assert [t for t in ax.get_yticks()] == [1, 2, 3]
    plt.close(fig)


def test_at_two_values_it_draws_what_rank_changes_draws():
    before, after = pd.Series({"a": 90.0, "b": 80.0, "c": 85.0}), pd.Series({"a": 70.0, "b": 95.0, "c": 60.0})
    fig, (one, two) = plt.subplots(1, 2)
    plots.rank_paths(one, pd.DataFrame({0: before, 1: after}))
    plots.rank_changes(two, before, after, ("before", "after"))
    drawn = lambda ax: [(l.get_label(), list(l.get_ydata()), l.get_color()) for l in ax.get_lines()]  # noqa: E731
    assert drawn(one) == drawn(two)
    plt.close(fig)
