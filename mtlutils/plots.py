"""One figure style for the whole book, the recurring figures, and ``savefig``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import ListedColormap

PALETTE = "colorblind"


def use_style() -> None:
    """The book's figure style: seaborn's whitegrid with a colour-blind palette and readable sizes."""
    sns.set_theme(style="whitegrid", context="notebook", palette=PALETTE)
    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 150, "savefig.bbox": "tight", "axes.titlesize": "medium"})


def figure_dir() -> Path:
    """``$MTLUTILS_FIGURES``, else ``_build/figures`` of the enclosing book, else ``./figures``."""
    if "MTLUTILS_FIGURES" in os.environ:
        return Path(os.environ["MTLUTILS_FIGURES"])
    for folder in [Path.cwd(), *Path.cwd().parents]:
        if (folder / "_config.yml").exists() and (folder / "mtlutils").is_dir():
            return folder / "_build" / "figures"
    return Path("figures")


def savefig(fig: plt.Figure, name: str, folder: str | Path | None = None) -> None:
    """Save ``fig`` as ``<folder>/<name>.png`` (by default in ``figure_dir()``; the folder is created). It returns
    nothing, so that a chapter's cell ending with it shows the figure and no file path."""
    folder = Path(folder) if folder is not None else figure_dir()
    folder.mkdir(parents=True, exist_ok=True)
    fig.savefig(folder / f"{name}.png")


def front_panel(ax: plt.Axes, points: pd.DataFrame, scalarizations: Sequence[str], front: pd.DataFrame,
                methods: Sequence[str]) -> plt.Axes:
    """Two-task accuracies against a scalarization front: ``points`` has one row per name and columns
    ``(task, "mean" | "sem")`` for the tasks ``left`` and ``right``; the scalarizations are grey and labelled, the
    ``front`` rows (left, right means) are joined by a black line, every method has its own colour and marker."""
    for name in scalarizations:
        row = points.loc[name]
        ax.errorbar(row["left", "mean"], row["right", "mean"], xerr=row["left", "sem"], yerr=row["right", "sem"],
                    color="grey", marker="o", ms=4, capsize=2)
        ax.annotate(name, (row["left", "mean"], row["right", "mean"]), fontsize="x-small", color="grey",
                    xytext=(3, 3), textcoords="offset points")
    ax.plot(front["left"], front["right"], color="black", lw=1.5, label="scalarization front")
    colours = sns.color_palette("tab20", n_colors=max(len(methods), 1))
    for i, (name, colour) in enumerate(zip(methods, colours)):
        row = points.loc[name]
        ax.errorbar(row["left", "mean"], row["right", "mean"], xerr=row["left", "sem"], yerr=row["right", "sem"],
                    color=colour, marker="sDv^<>P*Xhd"[i % 11], ms=7, capsize=2, ls="none", label=name)
    ax.set_xlabel("left digit: test accuracy (%)")
    ax.legend(frameon=True, fontsize="x-small", loc="lower left", ncol=2)
    return ax


def interval_bars(ax: plt.Axes, tables: dict[str, pd.DataFrame], value: str, rows: Sequence[str]) -> plt.Axes:
    """Horizontal bars of ``value`` with their intervals (columns ``ci_low``, ``ci_high``), one bar per entry of
    ``rows`` and per table, the tables side by side and named in the legend; a line marks zero."""
    height = 0.8 / len(tables)
    for i, (name, table) in enumerate(tables.items()):
        cell = table.loc[list(rows)]
        ax.barh(np.arange(len(rows)) + (i - (len(tables) - 1) / 2) * height, cell[value], height=0.95 * height,
                label=name, capsize=3, xerr=np.vstack([cell[value] - cell.ci_low, cell.ci_high - cell[value]]))
    ax.axvline(0, color="black", lw=0.8)
    ax.set(yticks=range(len(rows)), yticklabels=list(rows), ylim=(len(rows) - 0.5, -0.5))
    ax.legend(frameon=True, loc="best")
    return ax


def bars_with_ci(ax: plt.Axes, summary: pd.DataFrame, x: str, hue: str, order: Sequence[str],
                 scale: float = 1.0) -> plt.Axes:
    """Vertical bars of a ``experiments.summarize`` table with their intervals as error bars: one group of bars per
    entry of ``order`` (values of column ``x``), one bar in each group per value of ``hue``, heights times
    ``scale`` (100 for percent)."""
    groups = list(summary.groupby(hue, sort=True))
    width = 0.7 / len(groups)
    for i, (key, cell) in enumerate(groups):
        cell = cell.set_index(x).reindex(list(order))
        errors = scale * np.vstack([cell["mean"] - cell.ci_low, cell.ci_high - cell["mean"]])
        ax.bar(np.arange(len(order)) + (i - (len(groups) - 1) / 2) * width, scale * cell["mean"], width=width,
               label=key, yerr=errors, capsize=3)
    ax.set(xticks=range(len(order)), xticklabels=list(order))
    ax.legend(title=hue, frameon=False)
    return ax


def points_with_ci(ax: plt.Axes, summary: pd.DataFrame, x: str, label: str | None = None, marker: str = "o",
                   joined: bool = True, annotate: bool = False) -> plt.Axes:
    """The rows of a ``experiments.summarize`` table (indexed by name) as points at (``x``, mean) with their intervals
    as error bars, joined by a line in the order of ``x`` when ``joined``; ``annotate`` writes each row's name."""
    cell = summary.sort_values(x)
    ax.errorbar(cell[x], cell["mean"], yerr=[cell["mean"] - cell.ci_low, cell.ci_high - cell["mean"]], marker=marker,
                ls="-" if joined else "none", capsize=4, label=label)
    if annotate:
        for name, row in cell.iterrows():
            ax.annotate(f" {name}", (row[x], row["mean"]), textcoords="offset points", xytext=(4, -12))
    return ax


def lines_with_ci(
    summary: pd.DataFrame, x: str, hue: str | None = None, ax: plt.Axes | None = None, label_fmt: str = "{}",
    marker: str | None = "o", band_alpha: float = 0.2,
) -> plt.Axes:
    """Mean lines with shaded confidence bands from a ``experiments.summarize`` table (columns mean, ci_low, ci_high)."""
    ax = ax or plt.gca()
    groups = summary.groupby(hue, sort=False) if hue else [(None, summary)]
    for (key, cell), colour in zip(groups, sns.color_palette(PALETTE, n_colors=max(len(groups), 1))):
        cell = cell.sort_values(x)
        label = label_fmt.format(key[0] if isinstance(key, tuple) else key) if hue else None
        ax.plot(cell[x], cell["mean"], marker=marker, color=colour, label=label)
        ax.fill_between(cell[x], cell["ci_low"], cell["ci_high"], color=colour, alpha=band_alpha, linewidth=0)
    ax.set_xlabel(x)
    if hue:
        ax.legend(title=hue, frameon=False)
    return ax


def learning_curves(ax: plt.Axes, curves: pd.DataFrame, by: str, x: str = "step", scale: float = 100,
                    seeds: bool = True, order: Sequence | None = None) -> plt.Axes:
    """Learning curves (``tuning.learning_curves``): for each value of ``by`` (those of ``order``, by default all)
    the mean over seeds as a thick line and, with ``seeds``, every seed as a thin one, against ``x``."""
    values = list(order) if order is not None else sorted(curves[by].unique())
    colours = sns.color_palette(PALETTE if len(values) <= 10 else "tab20", n_colors=len(values))
    for value, colour in zip(values, colours):
        runs = curves[curves[by] == value]
        for _, seed in runs.groupby("seed") if seeds else ():
            ax.plot(seed[x], seed.value * scale, color=colour, lw=0.6, alpha=0.5)
        mean = runs.groupby(x).value.mean() * scale
        label = f"{by} {value:g}" if isinstance(value, (int, float)) else str(value)
        ax.plot(mean.index, mean.values, color=colour, lw=2, label=label)
    ax.set(xlabel=x, ylabel="validation score")
    return ax


def budget(ax: plt.Axes, chosen, scale: float = 100) -> plt.Axes:
    """A training budget (``tuning.Budget``): the baseline's learning curves by learning rate, against epochs, and a
    dashed line at the budget."""
    learning_curves(ax, chosen.curves, by="lr", x="epoch", scale=scale)
    ax.axvline(chosen.epochs, color="black", ls="--", lw=1, label=f"budget: {chosen.epochs} epochs")
    ax.legend(frameon=True, fontsize="small")
    ax.set(xlabel="epoch", ylabel="validation score (%)")
    return ax


def sensitivity(ax: plt.Axes, table: pd.DataFrame, key: str, methods: Sequence[str], scale: float = 100) -> plt.Axes:
    """Each method's validation score across its grid (``tuning.Tuned.sensitivity``): its mean over the tuning seeds
    against ``key`` (log scale) as a line, each seed a dot, the chosen point a star and divergent runs a cross, so a
    reader sees whether a choice hinges on one grid point."""
    colours = sns.color_palette("tab20", n_colors=max(len(methods), 1))
    for name, colour in zip(methods, colours):
        runs = table[table.method == name]
        mean = runs.groupby(key).value.mean() * scale
        ax.plot(mean.index, mean.values, color=colour, marker="o", ms=3, label=name)
        ax.scatter(runs[key], runs.value * scale, color=colour, s=6, alpha=0.5)
        chosen, failed = runs[runs.chosen].groupby(key).value.mean() * scale, runs[runs.diverged]
        ax.scatter(chosen.index, chosen.values, color=colour, marker="*", s=120, edgecolor="black", zorder=3)
        ax.scatter(failed[key], failed.value * scale, color=colour, marker="x", s=40, zorder=3)
    values = sorted(table[key].unique())
    ax.set(xscale="log", xlabel=key, ylabel="validation score", xticks=values)
    ax.set_xticklabels([f"{v:g}" for v in values])
    ax.minorticks_off()
    return ax


def sensitivity_figure(table: pd.DataFrame, key: str, methods: Sequence[str], name: str,
                       xlabel: str = "learning rate", ylabel: str = "validation accuracy (%)") -> None:
    """A chapter's figure of ``sensitivity`` along ``key``, every method of ``methods`` in one panel with its legend,
    saved as ``name`` (``savefig``; nothing returned, so that a cell ending with it shows the figure once)."""
    fig, ax = plt.subplots(figsize=(8, 3.8))
    sensitivity(ax, table, key, methods)
    ax.legend(frameon=True, fontsize="x-small", ncol=2)
    ax.set(xlabel=xlabel, ylabel=ylabel, title="each method across the grid; stars: chosen, crosses: failed runs")
    savefig(fig, name)


def sensitivity_map(ax: plt.Axes, table: pd.DataFrame, key: str, methods: Sequence[str], scale: float = 100,
                    floor: float = -10.0) -> plt.Axes:
    """Many methods' validation scores across one grid axis (``tuning.Tuned.sensitivity(along=key)``) as a map: one
    row per method, one column per value of ``key``, each cell the mean over the tuning seeds minus the method's best
    (in points, 0 at the best, the colour clipped at ``floor``), the chosen cell boxed and a cell with a failed run
    marked "x", so that a reader sees at a glance which choices stand on a flat optimum and which on a peak."""
    means = table.groupby(["method", key]).value.mean().unstack()[sorted(table[key].unique())] * scale
    below = means.sub(means.max(axis=1), axis=0).reindex(list(methods))
    failed = table.groupby(["method", key]).diverged.any().unstack().reindex_like(below).fillna(False)
    chosen = table[table.chosen].groupby("method")[key].first()
    mesh = ax.pcolormesh(np.ma.masked_invalid(below.to_numpy(dtype=float)), cmap="rocket", vmin=floor, vmax=0)
    for i, name in enumerate(below.index):
        for j, value in enumerate(below.columns):
            gap = below.iloc[i, j]
            if np.isfinite(gap):
                text = f"{gap:.1f}" + (" x" if failed.iloc[i, j] else "")
                ax.text(j + 0.5, i + 0.5, text, ha="center", va="center", fontsize="x-small",
                        color="black" if gap > floor / 2 else "white")
            if chosen.get(name) == value:
                ax.add_patch(plt.Rectangle((j, i), 1, 1, fill=False, edgecolor="deepskyblue", lw=2))
    ax.set(xticks=np.arange(len(below.columns)) + 0.5, yticks=np.arange(len(below)) + 0.5,
           ylim=(len(below), 0), xlabel=key)
    ax.set_xticklabels([f"{v:g}" for v in below.columns])
    ax.set_yticklabels(below.index, fontsize="small")
    ax.grid(False)
    ax.figure.colorbar(mesh, ax=ax, label="validation score minus the method's best (points)", pad=0.02)
    return ax


def loss_curves(history: pd.DataFrame, ax: plt.Axes | None = None, window: int = 20) -> plt.Axes:
    """Training loss of every task against the step, smoothed by a running mean over ``window`` steps."""
    ax = ax or plt.gca()
    for column in [c for c in history.columns if c.startswith("loss_")]:
        smooth = history[column].rolling(window, min_periods=1).mean()
        ax.plot(history["step"], smooth, label=column.removeprefix("loss_"))
    ax.set_xlabel("step")
    ax.set_ylabel(f"training loss (running mean of {window} steps)")
    ax.legend(frameon=False, ncol=2)
    return ax


def heatmap(
    matrix: np.ndarray, labels: Sequence[str], ax: plt.Axes | None = None, vmin: float = -1.0, vmax: float = 1.0,
    cbar_label: str = "", annotate: bool = True,
) -> plt.Axes:
    """A task x task matrix as a heatmap with a diverging palette centred on 0 (NaN entries left blank)."""
    ax = ax or plt.gca()
    values = np.ma.masked_invalid(np.asarray(matrix, dtype=float))
    mesh = ax.pcolormesh(values, cmap=sns.color_palette("vlag", as_cmap=True), vmin=vmin, vmax=vmax)
    ticks = np.arange(len(labels)) + 0.5
    ax.set(xticks=ticks, yticks=ticks, xlim=(0, len(labels)), ylim=(len(labels), 0), aspect="equal")
    ax.set_xticklabels(labels, rotation=0 if sum(map(len, labels)) <= 4 * len(labels) else 90)
    ax.set_yticklabels(labels, rotation=0)
    ax.grid(False)
    ax.figure.colorbar(mesh, ax=ax, label=cbar_label, fraction=0.046, pad=0.04)  # as tall as the square
    for (i, j), value in np.ndenumerate(values.filled(np.nan)) if annotate else ():
        if np.isfinite(value):  # dark text on light cells, as seaborn does
            light = sns.utils.relative_luminance(mesh.cmap(mesh.norm(value))) > 0.408
            ax.text(j + 0.5, i + 0.5, f"{value:.2f}", ha="center", va="center", color="black" if light else "white",
                    fontsize="small")
    return ax


def heatmap_row(panels: Sequence[tuple[str, np.ndarray]], labels: Sequence[str],
                groups: Sequence[Sequence[str]]) -> plt.Figure:
    """One heatmap per ``(title, matrix)`` panel, side by side, of the off-diagonal entries only, the tasks ordered
    group by group, each panel on its own colour scale symmetric about 0 (values written when there are six tasks
    or fewer)."""
    order = [list(labels).index(t) for group in groups for t in group]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.6 if len(labels) <= 6 else 6.2),
                             squeeze=False)
    for i, (ax, (title, matrix)) in enumerate(zip(axes[0], panels)):
        shown = np.array(matrix, dtype=float)[np.ix_(order, order)]
        np.fill_diagonal(shown, np.nan)
        scale = max(float(np.nanmax(np.abs(shown))), 1e-12)
        heatmap(shown, [labels[j] for j in order], ax=ax, vmin=-scale, vmax=scale, annotate=len(labels) <= 6)
        ax.set_title(title)
        if i:
            ax.set_yticklabels([])
    return fig


def group_timeline(ax: plt.Axes, groups_per_step: Sequence[Sequence[Sequence[str]]],
                   known: Sequence[Sequence[str]], title: str = "") -> plt.Axes:
    """Each task's group at each step (``Run.groups``), tasks in the order of the ``known`` groups, a group coloured
    by the first of its tasks in that order: known groups found show as bands of one colour."""
    order = [t for group in known for t in group]
    codes = np.array([[min(order.index(u) for u in next(g for g in groups if t in g)) for groups in groups_per_step]
                      for t in order])
    ax.imshow(codes, aspect="auto", interpolation="nearest", cmap=ListedColormap(sns.color_palette("tab10", len(order))),
              vmin=-0.5, vmax=len(order) - 0.5)
    ax.set(yticks=range(len(order)), yticklabels=order, xlabel="step", title=title)
    ax.grid(False)
    return ax


def rank_changes(ax: plt.Axes, before: pd.Series, after: pd.Series, labels: tuple[str, str]) -> plt.Axes:
    """How a ranking moves: each entry's rank (1 = the highest value) in ``before`` and in ``after``, joined by a
    line, with the best at the top; ``labels`` names the two rankings."""
    first, second = before.rank(ascending=False), after.rank(ascending=False)
    for name, colour in zip(before.index, sns.color_palette(PALETTE, n_colors=len(before))):
        ax.plot([0, 1], [first[name], second[name]], color=colour, marker="o", lw=2, label=name)
    ax.set(xticks=[0, 1], xticklabels=list(labels), yticks=range(1, len(before) + 1), ylabel="rank (1 = best)",
           xlim=(-0.2, 1.2), ylim=(len(before) + 0.5, 0.5))
    return ax


def rank_paths(ax: plt.Axes, scores: pd.DataFrame) -> plt.Axes:
    """How a ranking moves along a parameter: ``scores`` has one row per entry and one column per value of the
    parameter; each entry's rank (1 = the highest score) in every column, as a line over the parameter's
    values, in the order and colours of ``rank_changes``, with the best at the top."""
    ranks = scores.rank(ascending=False)
    for name, colour in zip(scores.index, sns.color_palette(PALETTE, n_colors=len(scores))):
        ax.plot(scores.columns, ranks.loc[name], color=colour, lw=2, label=name)
    ax.set(ylabel="rank (1 = best)", yticks=range(1, len(scores) + 1))
    ax.invert_yaxis()
    return ax


def toy_paths(ax: plt.Axes, landscape, paths: np.ndarray, pareto: tuple, title: str = "") -> plt.Axes:
    """Trajectories on the toy landscape: contours of the mean of the two losses, the Pareto set as a thick
    line, each path from its start (circle) to its end (cross). ``paths``: (steps + 1, P, 2)."""
    x1, x2, l1, l2 = landscape
    ax.contourf(x1, x2, (l1 + l2) / 2, levels=30, cmap="Greys", alpha=0.6)
    (x_low, x_high), level = pareto
    ax.plot([x_low, x_high], [level, level], color="black", lw=4, solid_capstyle="round", label="Pareto set")
    colours = sns.color_palette(PALETTE, n_colors=paths.shape[1])
    for i, colour in enumerate(colours):
        ax.plot(paths[:, i, 0], paths[:, i, 1], color=colour, lw=1.8)
        ax.plot(*paths[0, i], "o", color=colour, ms=6)
        ax.plot(*paths[-1, i], "X", color=colour, ms=8, mec="black")
    ax.set(xlabel="$x_1$", ylabel="$x_2$", title=title, aspect="equal")
    return ax
