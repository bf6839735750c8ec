"""Recurring figures: what they draw."""

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402

from mtlutils import plots  # noqa: E402


def test_interval_bars_draw_one_bar_per_row_and_table_at_its_value():
    table = pd.DataFrame({"r": [0.5, -0.2], "ci_low": [0.1, -0.6], "ci_high": [0.9, 0.3]}, index=["a", "b"])
    fig, ax = plt.subplots()
    plots.interval_bars(ax, {"one": table, "two": table * 2}, "r", ["b", "a"])
    widths = [round(p.get_width(), 6) for p in ax.patches]
    assert widths == [-0.2, 0.5, -0.4, 1.0]  # rows in the order asked, tables side by side
    assert [t.get_text() for t in ax.get_yticklabels()] == ["b", "a"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["one", "two"]
    plt.close(fig)


def test_front_panel_joins_the_front_and_marks_every_method():
    columns = pd.MultiIndex.from_product([["left", "right"], ["mean", "sem"]])
    points = pd.DataFrame([[90, 1, 80, 1], [85, 1, 88, 1], [84, 1, 84, 1]], index=["w=0.2", "w=0.8", "method"],
                          columns=columns)
    front = points.loc[["w=0.8", "w=0.2"]].xs("mean", axis=1, level=1)
    fig, ax = plt.subplots()
    plots.front_panel(ax, points, ["w=0.2", "w=0.8"], front, ["method"])
    line = next(l for l in ax.get_lines() if l.get_label() == "scalarization front")
    assert np.array_equal(line.get_xdata(), [85, 90]) and np.array_equal(line.get_ydata(), [88, 80])
    assert "method" in [t.get_text() for t in ax.get_legend().get_texts()]
    plt.close(fig)
