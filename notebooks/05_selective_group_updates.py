# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Selective task group updates
#
# Chapter 3 grouped tasks at random; chapter 4 measured, during training, which tasks help each other. Jeong & Yoon
# {cite}`jeong2025selective` put the two together: track the proximal inter-task affinity while training, group
# the tasks by it, and update the groups one after another on every batch. This chapter asks: **how do its groups
# evolve, which of its settings matter, and does it beat the other ways of training many tasks at once, tuned alike
# and counted at its cost?**

# %% tags=["parameters"]
SIZE = "small"  # "smoke" (seconds, tests) | "small" (the book) | "full" (CelebA, NYUv2)
# full mode: after `python -m data_scripts.celeba` and `python -m data_scripts.nyuv2`;
# it trains on the GPU when there is one (needed in practice). Its run time here:
#   python benchmarks/full_mode_time.py --chapters 05
SEED = 0  # the first seed: tunes on the first tuning_seeds seeds, reports on the rest
OVERRIDES = {}  # replaces entries of SETTINGS, e.g. {"seeds": 2} for fewer seeds

# %% tags=["hide-input"]
import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import Markdown
from matplotlib import pyplot as plt

import mtlutils as mtl

mtl.plots.use_style()

# %% tags=["hide-input"]
DIGITS = {"digit attributes": dict(dataset="digit_attributes", batch_size=64)}
PAPERS = {
    "CelebA, TAG's 9 attributes": dict(dataset="celeba", data={"attributes": "tag9"},
                                       batch_size=256),
    "NYUv2": dict(dataset="nyuv2", batch_size=8),
}

# %% tags=["hide-input"]
SMOKE = dict(suites=DIGITS, size="smoke", horizon=2, plateau=0.01, lrs=[3e-3], extend=1,
             seeds=2, tuning_seeds=1, near_tie=0.01, tie_seeds=1, resolve_to=1.0,
             most_seeds=3,
             selective=dict(beta=5e-2, warmup=4, regroup_every=2), sweep_epochs=4,
             sweep=dict(beta=[1e-2, 2e-1], warmup=[0, 8], regroup_every=[1, 4]))
SMALL = dict(suites=DIGITS, size="small", horizon=30, plateau=0.01,
             lrs=[1e-3, 3e-3, 1e-2], extend=2, seeds=10, tuning_seeds=2,
             near_tie=0.01, tie_seeds=2, resolve_to=1.0, most_seeds=40,
             selective=dict(beta=1e-2, warmup=50, regroup_every=10), sweep_epochs=20,
             sweep=dict(beta=[1e-3, 1e-1], warmup=[0, 150], regroup_every=[1, 50]))
FULL = dict(suites=PAPERS, size="full", horizon=20, plateau=0.01,
            lrs=[3e-4, 1e-3, 3e-3, 1e-2], extend=2, seeds=10, tuning_seeds=2,
            near_tie=0.01, tie_seeds=2, resolve_to=1.0, most_seeds=20,
            selective=dict(beta=1e-3, warmup=500, regroup_every=10), sweep_epochs=20,
            sweep=dict(beta=[1e-4, 1e-2], warmup=[0, 1500], regroup_every=[1, 50]))

# %% tags=["hide-input"]
SETTINGS = mtl.settings(dict(smoke=SMOKE, small=SMALL, full=FULL), SIZE, OVERRIDES)
TUNING_SEEDS, SEEDS = mtl.split_seeds(SEED, SETTINGS["seeds"],
                                      tuning=SETTINGS["tuning_seeds"])
TIE_SEEDS = mtl.tie_seeds(SEED, SETTINGS["tie_seeds"])
SUITES = {name: {**base, "size": SETTINGS["size"]}
          for name, base in SETTINGS["suites"].items()}
MAIN = next(iter(SUITES))  # the suite of the figures; the others get the same table
# full mode stops here until its data is ready
suites = {name: mtl.experiments.suite_for(base) for name, base in SUITES.items()}
BASE, suite = SUITES[MAIN], suites[MAIN]

# %% [markdown]
# ## The method
#
# Selective task group updates train like random grouping (chapter 3), one step per group on every batch, but
# choose the groups from the proximal inter-task affinity $A$ (chapter 4) instead of at random:
#
# 1. **Warm-up.** For the first `warmup` batches every task is its own group; the steps fill $A$.
# 2. **Grouping.** Then every `regroup_every` batches, affinity propagation on the normalised, symmetrised $A$
#    chooses the groups and their number. The official code regroups on every batch.
# 3. **Updates.** On every batch the groups are visited in a random order; group $G_j$ takes one optimizer step along
#    $\nabla \sum_{t \in G_j} L_t$, and the loss change it causes updates the rows of $G_j$ in $A$ with rate $\beta$.
#
# A batch costs one forward and one backward pass per group, plus one forward pass to measure the last group's
# effect. We use the intended attribution of chapter 4.
#
# ## How the groups evolve
#
# First on chapter 4's `clusters` ({glue:text}`sg_clusters_tasks` tasks in {glue:text}`sg_clusters_groups` known
# groups, SGD), where we can score the groups, then on the {glue:text}`sg_T` digit attributes. Each row of the
# timelines below is a task, each column a training step; the colour names the group the task was in, so a block
# of one colour is a group that stayed together.

# %%
SWEEP_BASE = dict(dataset="clusters", size=SETTINGS["size"], batch_size=32,
                  epochs=SETTINGS["sweep_epochs"], optimizer="sgd", lr=0.05,
                  data=dict(n_tasks=6, n_clusters=3, angle=120, bottleneck=3),
                  strategy="selective_groups")
clusters = mtl.experiments.suite_for(SWEEP_BASE)
mtl.glue("sg_clusters_tasks", len(clusters.tasks), display=False)
mtl.glue("sg_clusters_groups", len(clusters.meta["groups"]), display=False)
mtl.glue("sg_T", len(suite.tasks), display=False)


def selective(**change):
    """The clusters configuration of selective group updates, with settings changed."""
    return {**SWEEP_BASE, "strategy_kwargs": {**SETTINGS["selective"], **change}}


def agreement_over_steps(result, task_suite):
    """The ARI of the groups a run used at each step with the suite's known groups."""
    known = task_suite.meta["groups"]
    return [mtl.affinity.group_agreement(groups, known) for groups in result.groups]


# %%
default_runs = mtl.run_grid([{**selective(), "seed": seed} for seed in SEEDS])
warmup = SETTINGS["selective"]["warmup"]
fig, axes = plt.subplots(1, 2, figsize=(14, 3.6),
                         gridspec_kw={"width_ratios": [1.5, 1]})
mtl.plots.group_timeline(axes[0], default_runs[0].groups, clusters.meta["groups"],
                         f"clusters, seed {SEEDS[0]}: the group of each task")
for seed, result in zip(SEEDS, default_runs):
    axes[1].plot(agreement_over_steps(result, clusters), label=f"seed {seed}", lw=1.2)
axes[1].axvline(warmup, color="black", lw=0.8, ls="--")
axes[1].set(xlabel="step", ylabel="ARI with the known groups",
            title="agreement of the groups used", ylim=(-0.4, 1.05))
axes[1].legend(frameon=False, loc="lower right")
mtl.plots.savefig(fig, "05_timeline_clusters")

# %%
after = [np.mean(agreement_over_steps(r, clusters)[warmup:]) for r in default_runs]
mtl.glue("sg_clusters_ari", Markdown(", ".join(f"{a:.2f}" for a in after)),
         display=False)
mtl.glue("sg_warmup", warmup, display=False)

# %% [markdown]
# After the {glue:text}`sg_warmup` warm-up steps (dashed line), the mean ARI of the groups used, seed by seed, is
# {glue:md}`sg_clusters_ari`. Chapter 4 showed why it need not stay at 1: once the tasks of a cluster have learned
# their shared feature, a step for one of them raises the other's loss. Here, though, the tasks of a group step
# *together*, so the affinity between them is measured on a joint step, not on separate ones.
#
# ## Against the alternatives, trained to the plateau and tuned alike
#
# The budget first: as in chapters 2 and 3, the averaged loss trains for {glue:text}`sg_horizon` epochs at each
# learning rate of the grid on the tuning seeds, evaluated on the validation split after every epoch, and every run
# below trains until its best curve's validation plateau (no later epoch more than {glue:text}`sg_plateau:.1f`
# points higher). On the digit attributes these are chapter 3's curves.

# %%
budgets = {name: mtl.tuning.baseline_budget(
    {**base, "strategy": "averaged"}, SETTINGS["lrs"], TUNING_SEEDS,
    SETTINGS["horizon"], SETTINGS["plateau"]) for name, base in SUITES.items()}
SUITES = {name: {**base, "epochs": budgets[name].epochs,
                 "eval_every": budgets[name].steps_per_epoch}
          for name, base in SUITES.items()}
BASE = SUITES[MAIN]

# %%
for key, value in [("sg_horizon", SETTINGS["horizon"]), ("sg_epochs", BASE["epochs"]),
                   ("sg_plateau", 100 * SETTINGS["plateau"]), ("sg_budget_lr",
                   budgets[MAIN].lr), ("sg_extensions", SETTINGS["extend"]),
                   ("sg_tie_seeds", len(TIE_SEEDS))]:
    mtl.glue(key, value, display=False)
fig, ax = plt.subplots(figsize=(8, 3.8))
mtl.plots.budget(ax, budgets[MAIN])
ax.set(ylabel="validation accuracy (%)",
       title=f"{MAIN}: averaged loss, mean over the tasks")
mtl.plots.savefig(fig, "05_learning_curves")

# %% [markdown]
# At its best learning rate ({glue:text}`sg_budget_lr:g`) the averaged loss is on its plateau after
# {glue:text}`sg_epochs` epochs, the budget of every run. On the {glue:text}`sg_T` digit attributes we then train,
# with Adam and the same learning-rate grid for every method (searched on the tuning seeds, grown past an edge a
# method chose up to {glue:text}`sg_extensions` times, a near-tie settled on {glue:text}`sg_tie_seeds` more seeds,
# no learning rate chosen at or one grid step below one where a tuning run failed, then repeated on the other seeds,
# as in chapter 3), each run read at the epoch its validation accuracy chose: averaged training; alternated training
# and random groups of two (both from chapter 3); selective group updates; and two gradient aggregators from torchjd
# {cite}`quinton2024jacobian`: PCGrad {cite}`yu2020gradient`, which projects away the conflicting part of each
# task's gradient, and UPGrad, which projects each task's gradient onto the directions that, to first order, raise
# no task's loss, and averages the projections. Alternated training and random groups take $T$ and $\lceil T/2
# \rceil$ optimizer steps per batch; "Averaged, m x the steps" trains the averaged loss for $m$ times the epochs,
# tuned alike, so that a gain that is only the extra updates shows there too. We report $\Delta_m$ against
# **averaged training**, seed by seed: the mean over tasks of the relative change in test accuracy, so that a
# positive value means the method beat a tuned averaged loss.


# %%
def with_step_controls(base, n_tasks):
    """The chapter's methods, and the averaged loss with as many optimizer steps as
    alternated training and as random groups of two: m times the epochs."""
    steps = {"Alternated (k=1)": n_tasks, "RandomGroups (k=2)": -(-n_tasks // 2)}
    controls = {f"Averaged, {m}x the steps": {**base, "strategy": "averaged",
                                               "epochs": m * base["epochs"]}
                for m in steps.values()}
    found = mtl.experiments.many_task_methods(base, SETTINGS["selective"])
    return {**found, **controls}


# %%
methods = {name: with_step_controls(base, len(suites[name].tasks))
           for name, base in SUITES.items()}
comparisons = {name: mtl.compare_with(
    methods[name], "Averaged", {"lr": SETTINGS["lrs"]}, SEEDS, TUNING_SEEDS,
    suites[name].tasks, extend=SETTINGS["extend"], at="chosen",
    near_tie=SETTINGS["near_tie"], tie_seeds=TIE_SEEDS,
    resolve_to=SETTINGS["resolve_to"], most_seeds=SETTINGS["most_seeds"],
    timed=SETTINGS["size"] != "full")  # full: the GPU runs' own step times
    for name in SUITES}

# %%
METHODS, main = methods[MAIN], comparisons[MAIN]
tuned, test, relative = main.tuned, main.test, main.relative
delta, overview = main.delta, main.overview
order = list(overview.index)
# each run's epochs in budgets; its compute: ms per batch (timed alone) times those
multiples = {name: pd.Series({m: c["epochs"] / SUITES[name]["epochs"]
                              for m, c in methods[name].items()}) for name in SUITES}
for name, compared in comparisons.items():
    ms = compared.overview["ms vs Averaged"]
    compared.overview["compute vs Averaged"] = ms * multiples[name]

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 4))
mtl.plots.interval_bars(axes[0], {r"$\Delta_m$": overview}, "mean", order)
axes[0].set(xlabel=r"$\Delta_m$ vs averaged training (%)",
            title="test accuracy relative to a tuned averaged loss "
                  f"({tuned.seeds_span()} seeds, 95% CI)")
mtl.plots.points_with_ci(axes[1], overview, "compute vs Averaged", joined=False,
                         annotate=True)
axes[1].axhline(0, color="black", lw=0.8)
axes[1].set(xscale="log", xlabel="compute per run, relative to averaged training",
            ylabel=r"$\Delta_m$ (%)", title="what it buys against what it costs")
mtl.plots.savefig(fig, "05_comparison")
columns = ["lr", "mean", "ci_low", "ci_high", "passes", "ms vs Averaged",
           "compute vs Averaged"]
overview[columns].round(2)

# %%
mtl.plots.sensitivity_figure(tuned.sensitivity(), "lr", list(METHODS), "05_sensitivity")
mtl.glue("sg_late", Markdown(tuned.late_note()), display=False)
mtl.glue("sg_divergent", Markdown(tuned.divergent_note()), display=False)

# %% [markdown]
# Per task, the test accuracy of every method at its chosen learning rate (means over the seeds):

# %%
per_task = test.groupby(["method", "task"]).value.mean().unstack().loc[list(METHODS)]
tasks = [t for group in suite.meta.get("groups", [suite.task_names]) for t in group]
per_task = per_task[tasks] * 100
fig, ax = plt.subplots(figsize=(12, 3.6))
sns.heatmap(per_task, annot=True, fmt=".1f", cmap="mako", ax=ax,
            cbar_kws={"label": "test accuracy (%)"})
ax.set(xlabel="", ylabel="")
mtl.plots.savefig(fig, "05_per_task")

# %%
ranked = overview.sort_values("mean", ascending=False)
ranking = "; ".join(f"{m} {mtl.stats.describe_interval(row)}"
                    for m, row in ranked.iterrows())
mtl.glue("sg_ranking", Markdown(ranking), display=False)
above, below = mtl.stats.separated(overview)
unclear = [m for m in overview.index if m not in above + below]
for key, names in [("sg_above", above), ("sg_below", below), ("sg_unclear", unclear)]:
    mtl.glue(key, Markdown(mtl.stats.listing(names, last=", ")), display=False)

# %%
sel = overview.loc["SelectiveGroups"]
mtl.glue("sg_cost", float(sel["ms vs Averaged"]), display=False)
mtl.glue("sg_passes", float(sel["passes"]), display=False)
mtl.glue("n_seeds", tuned.seeds_span(), display=False)
seeds_note = tuned.seeds_note(SETTINGS["resolve_to"], " points of Δm")
mtl.glue("sg_seeds", Markdown(seeds_note), display=False)
edge = tuned.edge_note()
mtl.glue("sg_lr_caveat", Markdown(edge), display=False)
resolution = mtl.stats.resolution(overview, unit=" points of Δm")
mtl.glue("sg_resolution", Markdown(resolution), display=False)
mtl.glue("sg_corrected", Markdown(mtl.stats.surviving(overview)), display=False)

# %%
# the cheapest method above 0, and the methods the seeds do not rank it above
pick, rivals = None, []
if above:
    pick = overview.loc[above].sort_values("compute vs Averaged").index[0]
    wide = delta.pivot(index="seed", columns="method", values="relative")
    gaps = mtl.stats.paired_differences(wide, reference=pick)  # others minus the pick
    rivals = [m for m in gaps.index if m not in mtl.stats.separated(gaps)[1]]

# %%
if pick is None:
    advice = ("**averaged training**: no method's Δm interval lies above 0 here, so "
              "none beat a tuned averaged loss beyond the spread of the seeds, and "
              "averaged training is the cheapest.")
else:
    ratio = overview.loc[pick, "compute vs Averaged"]
    advice = (f"**{pick}** is the cheapest method whose Δm interval lies above 0 "
              f"here, at {ratio:.1f} times the compute of an averaged run; "
              "use it when that compute is available, and averaged training otherwise.")
if rivals:
    advice += (" Seed by seed, the seeds do not rank it above "
               f"{mtl.stats.listing(rivals, last=', ')}; and with {len(overview)} "
               "methods compared, one interval that clears 0 by a small margin can be "
               "luck.")
mtl.glue("sg_advice", Markdown(advice), display=False)

# %%
# each method with several steps per batch against the averaged loss with as many
updates = tuned.cost()["updates"]  # optimizer steps per batch
controls = [m for m in METHODS if m.startswith("Averaged, ")]
control_of = {m: min(controls, key=lambda c: abs(multiples[MAIN][c] - updates[m]))
              for m in METHODS if updates[m] > 1 and m not in controls}
by_seed = delta.pivot(index="seed", columns="method", values="relative")
versus_steps = pd.DataFrame({f"{m} minus {c}": mtl.stats.paired_gap(by_seed, m, c)
                             for m, c in control_of.items()}).T
versus_steps.round(2)

# %%
unit = " points of Δm"
mtl.glue("sg_steps", Markdown("; ".join(
    f"{n}: {mtl.stats.describe_interval(row, unit=unit)}"
    for n, row in versus_steps.iterrows())), display=False)
more, fewer = mtl.stats.separated(versus_steps)
verdict = [f"{mtl.stats.listing(more)}: beyond the extra updates"] * bool(more)
verdict += [f"{mtl.stats.listing(fewer)}: below as many averaged updates"] * bool(fewer)
steps_verdict = ("Separated: " + "; ".join(verdict) + "." if verdict
                 else "The seeds separate none of them from its control.")
mtl.glue("sg_steps_verdict", Markdown(
    steps_verdict + " " + mtl.stats.resolution(versus_steps, unit=unit)), display=False)
at_end = mtl.stats.delta_by_seed(tuned.table("test", at="end"), suite.tasks, "Averaged")
end = mtl.stats.summarize(at_end, by=["method"], value="relative").set_index("method")
mtl.glue("sg_at_end", Markdown(mtl.stats.describe_interval(end.loc["SelectiveGroups"])),
         display=False)

# %% tags=["hide-input"]
# the chapter's answer, for the book's introduction
mtl.glue("finding", Markdown(
    f"On {len(suite.tasks)} digit attributes, every method tuned alike and trained to "
    f"the averaged loss's plateau, {tuned.seeds_span()} seeds: {advice} Against the "
    f"averaged loss with as many updates: {steps_verdict}"), display=False)

# %% [markdown]
# $\Delta_m$ against averaged training, from the highest: {glue:md}`sg_ranking`. Over {glue:text}`n_seeds` seeds,
# the methods whose interval lies above 0 are: {glue:md}`sg_above`; below 0: {glue:md}`sg_below`; the interval
# contains 0, so the evidence does not separate them from averaged training: {glue:md}`sg_unclear`. Each $\Delta_m$
# is paired: a seed's run against the averaged run of the same seed. {glue:md}`sg_seeds` {glue:md}`sg_resolution`
# Against the averaged loss: {glue:md}`sg_corrected` Selective group updates cost {glue:text}`sg_passes:.1f` passes
# per batch on average and {glue:text}`sg_cost:.1f` times the milliseconds of compute of an averaged batch (timed
# alone, by `experiments.step_times`). {glue:md}`sg_lr_caveat` {glue:md}`sg_late` {glue:md}`sg_divergent` Read at
# the end of the budget instead of at the chosen epoch, selective group updates' $\Delta_m$ is
# {glue:md}`sg_at_end`.
#
# As in chapter 3, these are equal-epoch comparisons: methods with more steps per batch also get more updates. Each
# against the averaged loss with as many optimizer steps (for selective group updates, the control nearest its
# mean number of groups), in points of $\Delta_m$, seed by seed: {glue:md}`sg_steps`. {glue:md}`sg_steps_verdict`
# Chapter 6 charges every method for its compute.
#
# Full mode runs the same comparison on CelebA's nine attributes that TAG groups {cite}`fifty2021efficiently`
# (the figures above) and on NYUv2's segmentation, depth and surface normals {cite}`silberman2012indoor`, the dense
# setting of Jeong & Yoon. The table holds every suite of this run.

# %%
columns = ["mean", "ci_low", "ci_high", "passes", "compute vs Averaged"]
every_suite = pd.concat({name: c.overview[columns] for name, c in comparisons.items()},
                        names=["suite", "method"])
every_suite["Δm vs Averaged"] = [mtl.stats.side(row)
                                 for _, row in every_suite.iterrows()]
every_suite.round(2)

# %% [markdown]
# ## Random groups at equal cost
#
# Selective group updates take as many group updates per batch as affinity propagation finds groups, and the
# comparison above sets them against random groups of a fixed size. Is the affinity worth more than the number of
# updates it buys? Here each seed's selective run is matched by random groups that take, step by step, the same
# number of group updates (`strategies.CountMatchedGroups`: the groups redrawn at random every step, sizes as equal
# as possible), at the selective run's learning rate. Both cost the same passes, up to the one forward pass per batch
# that selective updates spend on measuring the last group.

# %%
selective_runs = [(c, r) for n, c, r in tuned.runs if n == "SelectiveGroups"]
matched_configs = [
    {**BASE, "lr": c["lr"], "seed": c["seed"], "strategy": "count_matched_groups",
     "strategy_kwargs": {"counts": [len(groups) for groups in r.groups]}}
    for c, r in selective_runs
]
matched_runs = mtl.run_grid(matched_configs)

# %%
control = "random, same group counts"
matched = mtl.experiments.results(matched_configs, matched_runs,
                                  label=lambda c: control, at="chosen")
matched = mtl.stats.relative_to_baseline(
    pd.concat([matched, test[test.method == "Averaged"]]), suite.tasks, match=["seed"],
    baseline="Averaged", method="method")
equal_cost = relative[relative.method.isin(["SelectiveGroups", "RandomGroups (k=2)"])]
equal_cost = pd.concat([equal_cost, matched])
by_seed = equal_cost.groupby(["seed", "method"]).relative.mean().unstack()
versus_matched = mtl.stats.paired_differences(by_seed, reference=control)
runs_of = {"SelectiveGroups": [r for _, r in selective_runs], control: matched_runs}
passes = {name: np.mean([r.passes_per_step for r in runs])
          for name, runs in runs_of.items()}

# %%
gap, unit = versus_matched.loc["SelectiveGroups"], " points of Δm"
words = {1: "the affinity's groups beat random groups of the same number",
         -1: "random groups of the same number beat the affinity's groups",
         0: "the seeds do not separate the affinity's groups from random groups of the "
            "same number"}
mtl.glue("sg_matched", Markdown(mtl.stats.describe_interval(gap, unit=unit)),
         display=False)
mtl.glue("sg_matched_verdict", Markdown(words[mtl.stats.sign_of(gap)]), display=False)
per_batch = ", ".join(f"{n} {v:.2f}" for n, v in passes.items())
mtl.glue("sg_matched_passes", Markdown(per_batch), display=False)
mtl.glue("sg_matched_resolution",
         Markdown(mtl.stats.resolution(versus_matched, unit=unit)), display=False)
versus_matched.round(2)

# %% [markdown]
# Selective group updates minus random groups with the same number of group updates, seed by seed:
# {glue:md}`sg_matched`, so {glue:md}`sg_matched_verdict`. Passes per batch: {glue:md}`sg_matched_passes`. The
# table also gives random groups of two (chapter 3) against the same matched control.
# {glue:md}`sg_matched_resolution`
#
# ## Which settings matter
#
# Back on `clusters`, we change one setting at a time around the defaults above and look at what the groups do
# (mean ARI with the known groups after the warm-up, and the number of groups) and at the mean test loss, over
# the same seeds.

# %%
sweep_configs, sweep_labels = [], []
for setting, values in SETTINGS["sweep"].items():
    # the default first, once
    for value in dict.fromkeys([SETTINGS["selective"][setting], *values]):
        for seed in SEEDS:
            sweep_configs.append({**selective(**{setting: value}), "seed": seed})
            sweep_labels.append((setting, value))
sweep_runs = mtl.run_grid(sweep_configs)

# %%
rows = []
for (setting, value), config, result in zip(sweep_labels, sweep_configs, sweep_runs):
    start = config["strategy_kwargs"]["warmup"]
    grouped = result.groups[start:] or result.groups[-1:]
    ari = [mtl.affinity.group_agreement(g, clusters.meta["groups"]) for g in grouped]
    rows.append(dict(setting=setting, value=value, seed=config["seed"],
                     ari=np.mean(ari), groups=np.mean([len(g) for g in grouped]),
                     test_loss=result.mean_metric("mse"),
                     passes=result.passes_per_step))
sweep = pd.DataFrame(rows)

# %%
fig, axes = plt.subplots(2, 3, figsize=(14, 6.5), sharey="row")
for column, setting in enumerate(SETTINGS["sweep"]):
    cell = sweep[sweep.setting == setting]
    panels = [("ari", "ARI after warm-up"), ("test_loss", "mean test MSE")]
    for row, (metric, label) in enumerate(panels):
        summary = mtl.stats.summarize(cell, by=["value"], value=metric)
        mtl.plots.lines_with_ci(summary, x="value", ax=axes[row, column])
        axes[row, column].set(xscale="log" if setting != "warmup" else "linear",
                              ylabel=label, xlabel=setting if row else "")
    axes[0, column].set_title(f"{setting} (default {SETTINGS['selective'][setting]:g})")
mtl.plots.savefig(fig, "05_settings")

# %%
columns = ["ari", "groups", "test_loss", "passes"]
sweep_table = sweep.groupby(["setting", "value"])[columns].mean()
sweep_table.round(3)

# %%
effects = []
for setting in SETTINGS["sweep"]:
    cell = sweep[sweep.setting == setting]
    losses = cell.pivot(index="seed", columns="value", values="test_loss")
    default = SETTINGS["selective"][setting]
    changes = mtl.stats.paired_differences(losses, reference=default)
    apart = [f"{v:g}" for v, row in changes.iterrows() if mtl.stats.sign_of(row)]
    ari = cell.groupby("value").ari.mean()
    aris = ", ".join(f"{ari[v]:.2f} at {v:g}" for v in ari.index)
    effects.append(
        f"{setting}: mean ARI {aris}; "
        "against the default, seed by seed, the test loss "
        + (f"changes beyond the seeds' spread at {', '.join(apart)}" if apart
           else "does not change beyond the seeds' spread"))
mtl.glue("sg_effects", Markdown("\n".join(f"- {e}." for e in effects)), display=False)

# %% [markdown]
# {glue:md}`sg_effects`
#
# $\beta$ sets the memory of the affinity: a small $\beta$ averages over a long stretch of training and reacts
# slowly; a large one follows the last few batches. The warm-up sets how long the tasks are trained one by one,
# the most expensive way, before the first grouping; chapter 4 suggests why its length can matter for the groups:
# the longer the warm-up, the later the first grouping is made, and late in training the tasks of a cluster no
# longer help each other. `regroup_every` only changes how often the groups may change,
# and its cost (chapter 3's benchmark: a grouping takes milliseconds).
#
# ## Which should I use?
#
# On this benchmark, with every method given the same tuning: {glue:md}`sg_advice` That answer is for
# {glue:text}`sg_T` small binary tasks and {glue:text}`sg_epochs` epochs; the chapter's full mode repeats it on
# CelebA and NYUv2, and chapter 6 asks the same question at equal compute, where methods that take many steps per
# batch pay for them.
#
# ## Summary
#
# - Selective group updates group tasks by the proximal affinity tracked during training and update the groups in
#   turn; the groups change during training, and their agreement with known groups follows the affinity's.
# - Against a tuned averaged loss, in $\Delta_m$ over {glue:text}`n_seeds` seeds: above 0 for {glue:md}`sg_above`;
#   below 0 for {glue:md}`sg_below`; not separated from 0 for {glue:md}`sg_unclear`. {glue:md}`sg_resolution`
# - Its cost sits between averaged and alternated training: {glue:text}`sg_passes:.1f` passes per batch here.
# - Methods that take several optimizer steps per batch against the averaged loss given as many steps:
#   {glue:md}`sg_steps_verdict`
# - At equal cost, against random groups with the same number of group updates per batch:
#   {glue:md}`sg_matched_verdict`.
#
# ## Exercises
#
# ````{exercise}
# :label: ex-sg-stretch
# In the first `clusters` run above, how many different groupings were used after the warm-up, and how many steps
# did the longest unchanged stretch last? Store the pair as `sg_stretch`.
# ````
#
# ````{solution-start} ex-sg-stretch
# :class: dropdown
# ````

# %%
from mtlutils.exercises import check

used = [tuple(sorted(tuple(sorted(g)) for g in groups))
        for groups in default_runs[0].groups[warmup:]]
longest, current = 1, 1
for previous, now in zip(used, used[1:]):
    current = current + 1 if now == previous else 1
    longest = max(longest, current)
sg_stretch = (len(set(used)), longest)
print(f"{sg_stretch[0]} different groupings after the warm-up; "
      f"the longest stretch lasted {longest} steps")
# The groups change only every regroup_every steps: stretches come in multiples of it.
check("ex-sg-stretch", sg_stretch, groups=default_runs[0].groups[warmup:])

# %% [markdown]
# ````{solution-end}
# ````
#
# ````{exercise}
# :label: ex-sg-coded
# Run the default `clusters` configuration with `attribution="as_coded"` for the same seeds and compare the mean ARI
# after the warm-up and the test loss with the intended runs.
# ````
#
# ````{solution-start} ex-sg-coded
# :class: dropdown
# ````

# %%
coded_runs = mtl.run_grid([{**selective(attribution="as_coded"), "seed": seed}
                           for seed in SEEDS])
for name, results in [("intended", default_runs), ("as coded", coded_runs)]:
    aris = [np.mean(agreement_over_steps(r, clusters)[warmup:]) for r in results]
    losses = [r.mean_metric("mse") for r in results]
    print(f"{name:9s} ARI after warm-up {np.round(aris, 2)}, "
          f"test MSE {np.round(losses, 3)}")

# %% [markdown]
# ````{solution-end}
# ````
#
# ````{exercise}
# :label: ex-sg-last
# With `measure_last=False` the extra forward pass after the last group is skipped, and the last group's change is
# never credited. What does it save per batch, and what does it do to the groups on `clusters`?
# ````
#
# ````{solution-start} ex-sg-last
# :class: dropdown
# ````

# %%
unmeasured = mtl.run_grid([{**selective(measure_last=False), "seed": seed}
                           for seed in SEEDS])
variants = [("measure_last=True", default_runs), ("measure_last=False", unmeasured)]
for name, results in variants:
    forward = np.mean([r.forward_per_step for r in results])
    aris = [np.mean(agreement_over_steps(r, clusters)[warmup:]) for r in results]
    print(f"{name:19s} {forward:.2f} forward passes per batch, "
          f"ARI after warm-up {np.round(aris, 2)}")
# One forward pass per batch: a large share when there are few groups, a small one with
# many.

# %% [markdown]
# ````{solution-end}
# ````
