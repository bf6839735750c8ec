"""Recurring figures: what they draw."""

import matplotlib

matplotlib.use("Agg")
from types import SimpleNamespace  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402

from mtlutils import plots  # noqa: E402


def test_savefig_writes_the_figure_into_the_figure_folder_and_shows_no_path(tmp_path, monkeypatch):
    monkeypatch.setenv("MTLUTILS_FIGURES", str(tmp_path / "figures"))
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    assert plots.savefig(fig, "a_line") is None  # a cell that ends with it displays nothing more than the figure
    assert (tmp_path / "figures" / "a_line.png").read_bytes().startswith(b"\x89PNG")
    plots.savefig(fig, "elsewhere", folder=tmp_path / "other")
    assert (tmp_path / "other" / "elsewhere.png").exists()
    plt.close(fig)


def test_interval_bars_draw_one_bar_per_row_and_table_at_its_value():
    table = pd.DataFrame({"r": [0.5, -0.2], "ci_low": [0.1, -0.6], "ci_high": [0.9, 0.3]}, index=["a", "b"])
    fig, ax = plt.subplots()
    plots.interval_bars(ax, {"one": table, "two": table * 2}, "r", ["b", "a"])
    widths = [round(p.get_width(), 6) for p in ax.patches]
    assert widths == [-0.2, 0.5, -0.4, 1.0]  # rows in the order asked, tables side by side
    assert [t.get_text() for t in ax.get_yticklabels()] == ["b", "a"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["one", "two"]
    plt.close(fig)


def test_bars_with_ci_draw_one_group_per_entry_and_one_bar_per_hue_with_its_interval():
    summary = pd.DataFrame({"method": ["m", "m", "n", "n"], "task": ["L", "R", "L", "R"],
                            "mean": [0.8, 0.6, 0.9, 0.7], "ci_low": [0.7, 0.5, 0.85, 0.6],
                            "ci_high": [0.9, 0.7, 0.95, 0.8]})
    fig, ax = plt.subplots()
    plots.bars_with_ci(ax, summary, x="method", hue="task", order=["n", "m"], scale=100)
    heights = [round(p.get_height(), 6) for p in ax.patches]
    assert heights == [90, 80, 70, 60]  # task L for n then m, then task R
    centres = [round(p.get_x() + p.get_width() / 2, 6) for p in ax.patches]
    assert centres[0] < 0 < centres[2] and centres[1] < 1 < centres[3]  # each task on its own side of the tick
    caps = [line for line in ax.lines if line.get_marker() == "_"]
    assert sorted({round(float(y), 6) for line in caps for y in line.get_ydata()}) == [50, 60, 70, 80, 85, 90, 95]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["n", "m"]
    plt.close(fig)


def test_points_with_ci_join_the_rows_in_the_order_of_x_and_name_them():
    summary = pd.DataFrame({"cost": [4.0, 1.0, 2.0], "mean": [70.0, 90.0, 80.0], "ci_low": [60.0, 88.0, 75.0],
                            "ci_high": [75.0, 91.0, 85.0]}, index=["k=4", "k=1", "k=2"])
    fig, ax = plt.subplots()
    plots.points_with_ci(ax, summary, x="cost", label="drawn once", annotate=True)
    line = ax.lines[0]
    assert np.array_equal(line.get_xdata(), [1, 2, 4]) and np.array_equal(line.get_ydata(), [90, 80, 70])
    assert [t.get_text() for t in ax.texts] == [" k=1", " k=2", " k=4"]
    plots.points_with_ci(ax, summary, x="cost", label="alone", marker="s", joined=False)
    assert ax.lines[-3].get_linestyle() == "None"  # the points, then the two caps
    plt.close(fig)


def test_heatmap_row_orders_the_tasks_by_group_and_hides_the_diagonal():
    labels, groups = ["a", "b", "c"], [("b",), ("a", "c")]
    matrix = np.array([[5.0, 1.0, 2.0], [3.0, 5.0, -4.0], [0.5, 6.0, 5.0]])
    fig = plots.heatmap_row([("first", matrix), ("second", 2 * matrix)], labels, groups)
    first, second = (ax for ax in fig.axes if ax.get_title())  # the two panels, not their colour bars
    assert [t.get_text() for t in first.get_xticklabels()] == ["b", "a", "c"]
    assert first.get_title() == "first" and second.get_title() == "second"
    shown = first.collections[0].get_array().reshape(3, 3)
    assert np.ma.getmaskarray(shown).diagonal().all()  # the diagonal is left out
    assert shown[0, 1] == 3.0 and shown[1, 2] == 2.0 and shown[0, 2] == -4.0  # rows and columns b, a, c
    assert first.collections[0].get_clim() == (-6.0, 6.0) and second.collections[0].get_clim() == (-12.0, 12.0)
    assert not any(t.get_text() for t in second.get_yticklabels())  # names on the first panel only
    assert [t.get_text() for t in first.texts] == ["3.00", "-4.00", "1.00", "2.00", "6.00", "0.50"]  # row by row
    plt.close(fig)


def test_group_timeline_colours_each_task_by_the_first_task_of_its_group():
    known = [("a", "b"), ("c",)]
    steps = [[("a",), ("b",), ("c",)], [("a", "b"), ("c",)], [("a", "b", "c")]]
    fig, ax = plt.subplots()
    plots.group_timeline(ax, steps, known, title="t")
    codes = np.asarray(ax.images[0].get_array())
    assert codes.tolist() == [[0, 0, 0], [1, 0, 0], [2, 2, 0]]  # rows a, b, c; columns the steps
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"] and ax.get_title() == "t"
    plt.close(fig)


def test_rank_changes_join_each_entry_from_its_first_rank_to_its_second():
    before = pd.Series({"a": 90.0, "b": 80.0, "c": 85.0})
    after = pd.Series({"a": 70.0, "b": 95.0, "c": 60.0})
    fig, ax = plt.subplots()
    plots.rank_changes(ax, before, after, ("tuned", "default"))
    ranks = {line.get_label(): list(line.get_ydata()) for line in ax.get_lines()}
    assert ranks == {"a": [1, 2], "b": [3, 1], "c": [2, 3]}
    assert [t.get_text() for t in ax.get_xticklabels()] == ["tuned", "default"]
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # rank 1 at the top
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


def test_sensitivity_draws_each_method_across_its_grid_with_its_choice_and_failures():
    table = pd.DataFrame({"method": ["a"] * 4 + ["b"] * 4, "lr": [1e-3, 1e-3, 1e-2, 1e-2] * 2, "seed": [0, 1] * 4,
                          "value": [0.5, 0.7, 0.8, 0.9, 0.1, 0.1, 0.6, 0.6],
                          "diverged": [False] * 4 + [True, True, False, False],
                          "chosen": [False, False, True, True, False, False, True, True]})
    fig, ax = plt.subplots()
    plots.sensitivity(ax, table, "lr", ["a", "b"])
    lines = ax.get_lines()
    assert np.allclose([line.get_ydata() for line in lines], [[60, 85], [10, 60]])  # means over seeds, in %
    stars = [c for c in ax.collections if c.get_offsets().shape[0] == 1]
    assert np.allclose([c.get_offsets()[0] for c in stars], [(1e-2, 85), (1e-2, 60)])
    crosses = ax.collections[-1].get_offsets()  # b's divergent runs
    assert np.allclose(crosses, [[1e-3, 10], [1e-3, 10]])
    assert ax.get_xscale() == "log" and [t.get_text() for t in ax.get_xticklabels()] == ["0.001", "0.01"]
    plt.close(fig)


def test_the_sensitivity_figure_is_saved_with_every_method_in_its_legend(tmp_path, monkeypatch):
    monkeypatch.setenv("MTLUTILS_FIGURES", str(tmp_path))
    table = pd.DataFrame({"method": ["a", "a", "b", "b"], "lr": [1e-3, 1e-2] * 2, "seed": [0] * 4,
                          "value": [0.5, 0.8, 0.6, 0.4], "diverged": [False] * 4, "chosen": [False, True, True, False]})
    assert plots.sensitivity_figure(table, "lr", ["a", "b"], "sensitivity") is None
    figure = plt.gcf()
    assert [t.get_text() for t in figure.axes[0].get_legend().get_texts()] == ["a", "b"]
    assert figure.axes[0].get_xlabel() == "learning rate"
    assert (plots.figure_dir() / "sensitivity.png").exists()
    plt.close(figure)


def test_learning_curves_draw_each_seed_thin_and_their_mean_thick():
    curves = pd.DataFrame({"lr": [1e-3] * 4 + [1e-2] * 4, "seed": [0, 0, 1, 1] * 2, "step": [1, 2] * 4,
                           "value": [0.1, 0.5, 0.3, 0.7, 0.2, 0.2, 0.4, 0.4]})
    fig, ax = plt.subplots()
    plots.learning_curves(ax, curves, by="lr")
    thick = [line for line in ax.get_lines() if line.get_linewidth() == 2]
    assert np.allclose([line.get_ydata() for line in thick], [[20, 60], [30, 30]])
    assert len(ax.get_lines()) == 6 and [line.get_label() for line in thick] == ["lr 0.001", "lr 0.01"]
    plt.close(fig)


def test_the_budget_figure_marks_the_budget_on_the_baselines_curves():
    curves = pd.DataFrame({"lr": 1e-3, "seed": [0, 0, 1, 1], "step": [8, 16] * 2, "epoch": [1, 2] * 2,
                           "value": [0.1, 0.5, 0.3, 0.7]})
    chosen = SimpleNamespace(curves=curves, epochs=2)
    fig, ax = plt.subplots()
    plots.budget(ax, chosen)
    assert [tuple(line.get_xdata()) for line in ax.get_lines()][-1] == (2, 2)  # the dashed line at 2 epochs
    assert ax.get_legend().get_texts()[-1].get_text() == "budget: 2 epochs"
    plt.close(fig)


def test_the_sensitivity_map_gives_each_cell_its_distance_to_the_methods_best():
    table = pd.DataFrame({"method": ["a"] * 4 + ["b"] * 2, "lr": [1e-3, 1e-3, 1e-2, 1e-2, 1e-3, 1e-3],
                          "seed": [0, 1] * 3, "value": [0.5, 0.7, 0.8, 0.9, 0.4, 0.4],
                          "diverged": [False, False, False, True, False, False],
                          "chosen": [False, False, True, True, True, True]})
    fig, ax = plt.subplots()
    plots.sensitivity_map(ax, table, "lr", ["a", "b"])
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["-25.0", "0.0 x", "0.0"]  # a: 60 vs 85; b has no run at 1e-2
    boxes = [(p.get_x(), p.get_y()) for p in ax.patches]
    assert boxes == [(1, 0), (0, 1)]  # the chosen cells
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.001", "0.01"]
    plt.close(fig)
