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
# # Negative transfer
#
# A multi-task network shares one trunk between several tasks and gives each task a small head of its own.
# Sharing is cheap, and when the tasks need the same features it pools their data: each task learns from the
# labels of the others. But the trunk has a finite capacity, and one update of the shared parameters serves
# every task at once. When the tasks want different things from the trunk, training them together can make
# some of them *worse* than training each alone. This is **negative transfer**
# {cite}`caruana1997multitask,standley2020tasks`, the problem every later chapter tries to solve.
#
# This chapter asks: **when does sharing a network help, and when does it hurt?** We answer it on a benchmark
# where we control how much the tasks disagree, by one angle.

# %% tags=["parameters"]
SIZE = "small"  # "smoke" (seconds, for tests) | "small" (the book) | "full" (below)
# full: more samples, angles and seeds; synthetic data (no data script); a CPU will do.
# Its run time here, from its runs counted and their steps timed:
#   python benchmarks/full_mode_time.py --chapters 01
# on 2 CPU cores (2026-12-02): 800 runs, 4.1 M steps, 0.6 h of runs, 0.3 h in all
SEED = 0  # the first seed; the chapter uses SEED, SEED + 1, ... (it tunes nothing)
OVERRIDES = {}  # replaces entries of SETTINGS below, e.g. {"seeds": 2} for fewer seeds

# %% tags=["hide-input"]
import numpy as np
import pandas as pd
from IPython.display import Markdown
from matplotlib import pyplot as plt

import mtlutils as mtl

mtl.plots.use_style()

# %% tags=["hide-input"]
SETTINGS = mtl.settings({
    "smoke": dict(angles=[0, 90, 180], seeds=2, epochs=3),
    "small": dict(angles=[0, 45, 90, 135, 180], seeds=10, epochs=40),
    "full": dict(angles=[0, 30, 60, 90, 120, 150, 180], seeds=20, epochs=40),
}, SIZE, OVERRIDES)
_, SEEDS = mtl.split_seeds(SEED, SETTINGS["seeds"], tuning=0)  # SEED, SEED + 1, ...
BASE = dict(dataset="clusters", size=SIZE, lr=3e-3, batch_size=32,
            epochs=SETTINGS["epochs"], data_seed=None)  # each seed its own data draw
COSINE_EVERY = 4  # steps between two measurements of the gradients' cosines

# %% tags=["hide-input"]
suite = mtl.experiments.suite_for({**BASE, "data": {"angle": SETTINGS["angles"][0]}})
task_names = suite.task_names
BASE["eval_every"] = -(-len(suite.train) // BASE["batch_size"])  # every epoch
mtl.glue("n_tasks", len(task_names), display=False)
mtl.glue("n_clusters", len(suite.meta["groups"]), display=False)
mtl.glue("input_dim", suite.input_shape[0], display=False)
mtl.glue("noise", suite.meta["noise"], display=False)
mtl.glue("lr", BASE["lr"], display=False)
mtl.glue("cosine_every", COSINE_EVERY, display=False)

# %% [markdown]
# ## A benchmark with a dial for conflict
#
# The `clusters` dataset has $T$ = {glue:text}`n_tasks` regression tasks, split evenly into $C$ =
# {glue:text}`n_clusters` clusters. All tasks read the same input $x \sim \mathcal N(0, I_d)$, with $d$ =
# {glue:text}`input_dim`. Cluster $c$ has a unit direction $u_c$, and the two directions meet at an angle
# $\alpha$ that we choose. Task $t$ of cluster $c$ points along $w_t$, a slightly perturbed copy of $u_c$, and its
# target is
#
# $$ y_t = \operatorname{standardise}\big(\operatorname{relu}(w_t^\top x)\big) + \sigma\,\varepsilon, \qquad
#    \varepsilon \sim \mathcal N(0, 1), $$
#
# with noise level $\sigma$ = {glue:text}`noise`.
#
# The standard network squeezes its trunk through a **bottleneck of one feature** before the linear heads. One
# task alone needs exactly one feature, $\operatorname{relu}(w_t^\top x)$; two clusters that point apart need two,
# so they must share one. How much they lose is set by how correlated their targets are. For directions at
# angle $\alpha$ the correlation has a closed form (the arc-cosine kernel {cite}`cho2009kernel`), and so has the
# largest fraction of the two clusters' signal that one shared feature can carry:

# %%
clusters = mtl.datasets.clusters
angles = np.linspace(0, 180, 181)
bound = [clusters.shared_fraction_bound(a) for a in angles]
fig, ax = plt.subplots(figsize=(6, 3.2))
ax.plot(angles, [clusters.target_correlation(a) for a in angles],
        label="target correlation of the two clusters")
ax.plot(angles, bound, label="best fraction of signal one feature carries")
ax.axhline(0, color="grey", lw=0.8)
ax.set(xlabel="angle between the clusters (degrees)", ylabel="value",
       xticks=range(0, 181, 45))
ax.legend(frameon=False, loc="lower left")
mtl.plots.savefig(fig, "01_bound")
mtl.glue("bound_worst_angle", float(angles[np.argmin(bound)]), display=False)
mtl.glue("bound_at_180", 100 * clusters.shared_fraction_bound(180), display=False)

# %% [markdown]
# The capacity argument predicts that conflict is worst at {glue:text}`bound_worst_angle:.0f` degrees, not at
# 180: opposed clusters have *anti*-correlated targets, and a head can flip the sign of a shared feature, so one
# feature still carries {glue:text}`bound_at_180:.0f`% of their signal. "Opposed" targets are not the most
# conflicting ones; unrelated ones are.
#
# ## Single-task versus averaged training
#
# Write $\theta_s$ for the shared trunk, $\theta_t$ for the head of task $t$ and $L_t$ for its loss. **Single-task
# training** fits one network per task, $\min_{\theta_s, \theta_t} L_t(\theta_s, \theta_t)$. **Averaged
# training** fits one network for all tasks,
#
# $$ \min_{\theta_s, \theta_1, \dots, \theta_T} \; \frac1T \sum_{t=1}^T L_t(\theta_s, \theta_t), $$
#
# with one gradient step on the mean loss per batch (`strategies.Averaged`). We compare the two with the same
# optimizer (Adam, learning rate {glue:text}`lr:g`), batch size and number of epochs, read every network at the
# epoch of its lowest validation error (early stopping: a single-task network, which has the trunk to itself, would
# otherwise be read after it has started to fit the noise), and measure task $t$'s test mean squared error $M_t$ there
# against its single-task value $B_t$ from the same seed:
#
# $$ \Delta_t = -\,\frac{M_t - B_t}{B_t} \times 100\%, $$
#
# positive when sharing helped. The mean of $\Delta_t$ over tasks is the $\Delta_m$ of
# {cite}`maninis2019attentive`. For a metric where higher is better the sign is $+$, and in general the change is
# divided by $|B_t|$: LibMTL and the code of Nash-MTL divide by $B_t$, which reverses the verdict for a metric that
# can be negative. All the metrics of this book are positive, so the two conventions give the same numbers here.
# Every angle is trained with several seeds; a seed draws the network's initialisation, the batch order and the data
# itself (new task directions at the same angle, new samples), so that the spread over seeds covers the draw of the
# data too. Finished runs are cached on disk, so re-running this notebook is fast.

# %%
AVERAGED = {**BASE, "strategy": "averaged", "gradient_cosine_every": COSINE_EVERY}
configs = []
data = [{"angle": angle} for angle in SETTINGS["angles"]]
for averaged in mtl.grid(AVERAGED, data=data, seed=SEEDS):
    single = {**averaged, "gradient_cosine_every": None}  # baselines measure no cosines
    configs += [averaged, *mtl.experiments.single_task_configs(single, task_names)]
runs = mtl.run_grid(configs)
table = mtl.experiments.results(configs, runs, at="chosen", higher_is_better=False)
relative = mtl.stats.relative_to_baseline(
    table, suite.tasks, match=["data.angle", "seed"]
).rename(columns={"data.angle": "angle"})
averaged_runs = {(c["data"]["angle"], c["seed"]): run for c, run in zip(configs, runs)
                 if c["strategy"] == "averaged"}  # the shared networks by (angle, seed)
print(f"{len(runs)} runs: {len(SETTINGS['angles'])} angles x {len(SEEDS)} seeds "
      f"x (1 averaged + {len(task_names)} single-task)")

# %%
per_task = mtl.stats.summarize(relative, by=["angle", "task"], value="relative")
delta = relative.groupby(["angle", "seed"], as_index=False).relative.mean()
overall = mtl.stats.summarize(delta, by=["angle"], value="relative")

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
mtl.plots.lines_with_ci(per_task, x="angle", hue="task", ax=axes[0])
mtl.plots.lines_with_ci(overall, x="angle", ax=axes[1])
for ax, title in zip(axes, ["each task", r"mean over tasks ($\Delta_m$)"]):
    ax.axhline(0, color="black", lw=0.8)
    ax.set(xlabel="angle between the clusters (degrees)", title=title,
           xticks=SETTINGS["angles"])
axes[0].set_ylabel("test MSE change vs single-task (%)\n(positive = sharing helped)")
fig.suptitle("Averaged vs single-task training: mean and 95% CI over "
             f"{len(SEEDS)} seeds", y=1.02)
mtl.plots.savefig(fig, "01_relative_performance")
overall.round(2)

# %%
describe = mtl.stats.describe_interval
by_angle = overall.set_index("angle")
first, last = SETTINGS["angles"][0], SETTINGS["angles"][-1]
worst = int(by_angle["mean"].idxmin())
VERDICTS = {1: "sharing **helps**: the whole interval lies above zero",
            -1: "sharing **hurts**: the whole interval lies below zero",
            0: "the seeds **do not separate** sharing from training alone: the "
               "interval contains zero"}  # by mtl.stats.sign_of
for name, angle in [("aligned", first), ("worst", worst), ("opposed", last)]:
    row = by_angle.loc[angle]
    mtl.glue(f"delta_{name}", Markdown(describe(row)), display=False)
    verdict = VERDICTS[mtl.stats.sign_of(row)]
    mtl.glue(f"verdict_{name}", Markdown(verdict), display=False)
mtl.glue("worst_angle", worst, display=False)
mtl.glue("n_seeds", len(SEEDS), display=False)

# %% [markdown]
# Which cluster pays at the worst angle, and is 180 degrees really kinder than the worst angle, seed by seed?

# %%
cluster_of = dict(zip(task_names, suite.meta["cluster_of"]))
at_worst = relative[relative.angle == worst]
at_worst = at_worst.assign(cluster=at_worst.task.map(cluster_of))
by_cluster = at_worst.groupby(["seed", "cluster"]).relative.mean().unstack()
mtl.glue("loser_loss", float(-by_cluster.min(axis=1).mean()), display=False)
mtl.glue("winner_loss", float(-by_cluster.max(axis=1).mean()), display=False)
first_lost = int((by_cluster[0] < by_cluster[1]).sum())  # seeds: cluster 0 lost more
mtl.glue("first_cluster_lost", first_lost, display=False)

# %%
by_seed = delta.pivot(index="seed", columns="angle", values="relative")
# opposed minus worst, seed by seed
gap = mtl.stats.paired_gap(by_seed, last, worst) if last != worst else None
compared = overall if gap is None else pd.concat([overall, pd.DataFrame([gap])])
resolution = mtl.stats.resolution(compared, unit="%")
mtl.glue("resolution", Markdown(resolution), display=False)
mtl.glue("opposed_minus_worst", Markdown(
    "zero (it is the worst angle)" if gap is None else describe(gap)), display=False)

# %%
mtl.glue("summary_opposed", Markdown(
    f"Opposed clusters ({last} degrees) lost clearly less than the worst angle "
    f"({worst} degrees), seed by seed: how much tasks compete depends on the features "
    "they need, not on the sign of their targets, since a head can flip a shared "
    "feature."
    if gap is not None and mtl.stats.sign_of(gap) > 0 else
    f"The seeds do not show opposed clusters ({last} degrees) losing less than the "
    f"worst angle ({worst} degrees), although the capacity bound above predicts it."),
    display=False)

# %% [markdown]
# With {glue:text}`n_seeds` seeds per angle, the mean change over tasks is
#
# - aligned clusters (0 degrees): {glue:md}`delta_aligned`, so {glue:md}`verdict_aligned`;
# - the worst angle, {glue:text}`worst_angle` degrees: {glue:md}`delta_worst`, so {glue:md}`verdict_worst`;
# - opposed clusters (180 degrees): {glue:md}`delta_opposed`, so {glue:md}`verdict_opposed`.
#
# Seed by seed, $\Delta_m$ at 180 degrees minus $\Delta_m$ at the worst angle is {glue:md}`opposed_minus_worst`.
# Each $\Delta_m$ is itself paired: a seed's shared network against the single-task networks of the same seed.
# {glue:md}`resolution`
#
# The left panel shows that the harm is not shared out evenly. At {glue:text}`worst_angle` degrees, the cluster
# that lost more lost on average {glue:text}`loser_loss:.0f`% against {glue:text}`winner_loss:.0f`% for the
# other, and the first cluster was the one that lost more in {glue:text}`first_cluster_lost` of the
# {glue:text}`n_seeds` seeds: the one shared feature ends up serving one cluster better than the other, and the
# wide per-task intervals are that tug of war.
#
# ## What the gradients say
#
# A common diagnosis of negative transfer looks at the gradients of the task losses with respect to the shared
# parameters, $g_t = \nabla_{\theta_s} L_t$. When $\cos(g_i, g_j) < 0$ the tasks *conflict*: to first order, a
# step along $g_i$ raises $L_j$ {cite}`yu2020gradient`. During every averaged run above we measured the cosine of
# every pair of tasks on the training batch once every {glue:text}`cosine_every` steps. We split the pairs into
# those within a cluster and those across clusters, and count how often each conflicts in the second half of
# training:

# %%
cosine_rows = []
for (angle, seed), result in averaged_runs.items():
    rates = mtl.affinity.conflict_within_and_across(
        result.cosines, suite.meta["cluster_of"], since_step=result.cost["steps"] // 2)
    cosine_rows += [dict(angle=angle, seed=seed, pairs=pairs, rate=100 * rate)
                    for pairs, rate in rates.items()]
cosine_rates = pd.DataFrame(cosine_rows)
conflicts = mtl.stats.summarize(cosine_rates, by=["angle", "pairs"], value="rate")
middle = SETTINGS["angles"][len(SETTINGS["angles"]) // 2]
example = averaged_runs[middle, SEEDS[0]]  # one run's cosines, late in training
late = [m for s, m in example.cosines if s >= example.cost["steps"] // 2]

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8),
                         gridspec_kw={"width_ratios": [1.4, 1]})
mtl.plots.lines_with_ci(conflicts, x="angle", hue="pairs", ax=axes[0],
                        label_fmt="{} clusters")
axes[0].set(xlabel="angle between the clusters (degrees)",
            ylabel="steps with negative cosine (%)", xticks=SETTINGS["angles"],
            title="conflict rate, second half of training "
                  f"({len(SEEDS)} seeds, 95% CI)")
mtl.plots.heatmap(np.mean(late, axis=0), example.task_names, ax=axes[1],
                  cbar_label="mean cosine")
axes[1].set_title(f"mean cosine, {middle} degrees, seed {SEEDS[0]}")
mtl.plots.savefig(fig, "01_gradient_conflict")
conflicts.round(1)

# %%
rate = conflicts.set_index(["angle", "pairs"])["mean"]
for angle, name in [(worst, "worst"), (first, "aligned")]:
    for pairs in ("across", "within"):
        value = float(rate.loc[(angle, pairs)])
        mtl.glue(f"conflict_{pairs}_{name}", value, display=False)
at_worst_rates = cosine_rates.query("angle == @worst").pivot(
    index="seed", columns="pairs", values="rate")
across_minus_within = mtl.stats.paired_gap(at_worst_rates, "across", "within")
across_text = describe(across_minus_within, unit=" points")
mtl.glue("conflict_reading", Markdown(
    "Across clusters the tasks kept pulling the one shared feature their own way: seed "
    f"by seed, the rate across minus the rate within is {across_text}."
    if mtl.stats.sign_of(across_minus_within) > 0 else
    f"Seed by seed, the rate across minus the rate within is {across_text}: "
    "these seeds do not separate the two."), display=False)

# %% [markdown]
# At {glue:text}`worst_angle` degrees, pairs across clusters conflicted in
# {glue:text}`conflict_across_worst:.0f`% of the measured steps of the second half of training, pairs within a
# cluster in {glue:text}`conflict_within_worst:.0f`%. {glue:md}`conflict_reading` But look at 0 degrees: all
# {glue:text}`n_tasks` tasks are one cluster (mean change {glue:md}`delta_aligned`), and still pairs conflict in
# {glue:text}`conflict_within_aligned:.0f`% (within) and {glue:text}`conflict_across_aligned:.0f`% (across) of the
# steps. Near a minimum of the *averaged* loss the task gradients must roughly cancel, since their mean is close
# to zero, so what remains is each task's label noise pointing its own way. A negative cosine on one batch is
# therefore weak evidence of negative transfer; a persistent one between tasks that need different features is
# strong evidence. Chapters 4 and 5 build task affinities that look at the effect of an update on the *losses*
# instead of at gradient angles.
#
# The training curves of one seed tell the same story from the losses' side:

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5), sharey=True)
for ax, angle in zip(axes, [first, worst]):
    mtl.plots.loss_curves(averaged_runs[angle, SEEDS[0]].history, ax=ax)
    ax.set_title(f"averaged training, clusters at {angle} degrees (seed {SEEDS[0]})")
mtl.plots.savefig(fig, "01_loss_curves")

# %% tags=["hide-input"]
# the chapter's answer, for the book's introduction
said = {angle: f"{VERDICTS[mtl.stats.sign_of(by_angle.loc[angle])]} (Δm "
                f"{describe(by_angle.loc[angle])})" for angle in (first, worst)}
mtl.glue("finding", Markdown(
    f"Against single-task networks, on clusters at {first} degrees {said[first]}; at "
    f"{worst} degrees, the worst angle, {said[worst]}."), display=False)

# %% [markdown]
# ## Summary
#
# - Negative transfer is measured against single-task training with the same budget: $\Delta_t < 0$ means
#   task $t$ lost by sharing.
# - On aligned clusters {glue:md}`verdict_aligned`; at {glue:text}`worst_angle` degrees
#   {glue:md}`verdict_worst`. Tasks that need the same features pool their noisy labels; tasks that compete for a
#   narrow shared representation lose.
# - {glue:md}`summary_opposed`
# - {glue:md}`resolution`
# - Negative cosines between task gradients are common even among tasks that need the same features, because near
#   a minimum of the averaged loss the gradients cancel. They are a symptom to measure over time, not a verdict
#   from one batch.
# - The harm falls unevenly on the tasks and varies between seeds: compare methods over several seeds, with
#   confidence intervals, as this book does from here on.

# %% tags=["hide-input"]
# the numbers the exercises state (mtlutils.exercises, where their checks read them)
given = {"model": mtl.exercises.DELTA_MODEL, "single": mtl.exercises.DELTA_SINGLE}
for network, scores in given.items():
    for task, values in scores.items():
        for metric, value in values.items():
            mtl.glue(f"ex_{network}_{task}_{metric}", value, display=False)
mtl.glue("ex_three_angle", mtl.exercises.THREE_ANGLE, display=False)

# %% [markdown]
# ## Exercises
#
# ````{exercise}
# :label: ex-nt-delta
# A network reports, for task A, accuracy {glue:text}`ex_model_A_acc:.2f` and error rate
# {glue:text}`ex_model_A_err:.2f`, and for task B a mean squared error of {glue:text}`ex_model_B_mse:.1f`. Its
# single-task baselines are {glue:text}`ex_single_A_acc:.2f`, {glue:text}`ex_single_A_err:.2f` and
# {glue:text}`ex_single_B_mse:.1f`. Compute $\Delta_m$ by hand in both modes of
# `metrics.delta_m` (per task, then pooled over the three metrics) and check your numbers with the function.
# Store the pair (per task, pooled) as `nt_delta`. Why do the two modes differ?
# ````
#
# ````{solution-start} ex-nt-delta
# :class: dropdown
# ````

# %%
from mtlutils.exercises import check

model, single = mtl.exercises.DELTA_MODEL, mtl.exercises.DELTA_SINGLE
tasks = list(mtl.exercises.DELTA_TASKS)  # accuracy: higher is better; the others: lower
# by hand: each metric's relative change (then signed so that a gain is positive)
entries = [("A", "acc"), ("A", "err"), ("B", "mse")]
acc, err, mse = (model[t][m] / single[t][m] - 1 for t, m in entries)
by_hand_per_task = ((acc - err) / 2 - mse) / 2 * 100  # A: mean of acc and -err; B: -mse
by_hand_pooled = (acc - err - mse) / 3 * 100
nt_delta = tuple(mtl.metrics.delta_m(model, single, tasks, mode=mode)
                 for mode in ("per_task", "pooled"))
print(f"per task {nt_delta[0]:.2f}%, pooled {nt_delta[1]:.2f}%; "
      f"by hand {by_hand_per_task:.2f}% and {by_hand_pooled:.2f}%")
# Per task gives every task equal weight; pooled gives every metric equal weight, so
# task A, with two metrics, counts twice as much as task B.
check("ex-nt-delta", nt_delta)

# %% [markdown]
# ````{solution-end}
# ````
#
# ````{exercise}
# :label: ex-nt-bottleneck
# Negative transfer here comes from a shared bottleneck of one feature. Train the averaged network at the
# worst angle with a bottleneck of two features (`model={"bottleneck": 2}` in the configuration), with the
# single-task baselines built the same way, and compare the mean $\Delta_t$ with the one above. What does the
# result say about capacity as a remedy for negative transfer?
# ````
#
# ````{solution-start} ex-nt-bottleneck
# :class: dropdown
# ````

# %%
WIDE = {**BASE, "data": {"angle": worst}, "strategy": "averaged",
        "model": {"bottleneck": 2}}
wide = []
for averaged in mtl.grid(WIDE, seed=SEEDS):
    wide += [averaged, *mtl.experiments.single_task_configs(averaged, task_names)]
READ = dict(at="chosen", higher_is_better=False)  # at the lowest validation error
wide_table = mtl.experiments.results(wide, mtl.run_grid(wide), **READ)
wide_relative = mtl.stats.relative_to_baseline(wide_table, suite.tasks, match=["seed"])
wide_delta = wide_relative.groupby("seed").relative.mean()
mean, low, high = mtl.stats.confidence_interval(wide_delta)
wide_interval = dict(mean=mean, ci_low=low, ci_high=high)
print(f"bottleneck 2 at {worst} degrees: {describe(wide_interval)}")
print(f"bottleneck 1 at {worst} degrees: {describe(by_angle.loc[worst])}")
# Two features give each cluster its own, carrying all its signal (the bound above):
# capacity is one remedy; the next chapters change how shared parameters are updated.

# %% [markdown]
# ````{solution-end}
# ````
#
# ````{exercise}
# :label: ex-nt-three
# With three clusters, all pairs of cluster directions can meet at the same angle only up to 120 degrees. Use
# `clusters.shared_fraction_bound` to find, for three clusters, the fraction of the signal that one shared
# feature and two shared features can carry at {glue:text}`ex_three_angle` degrees (store the pair as
# `nt_three`), and the angle at which one feature is worst off.
# ````
#
# ````{solution-start} ex-nt-three
# :class: dropdown
# ````

# %%
angle = mtl.exercises.THREE_ANGLE
fraction = clusters.shared_fraction_bound  # (angle, n_clusters, bottleneck)
three = np.linspace(0, 120, 121)
one_feature = [fraction(a, n_clusters=3, bottleneck=1) for a in three]
nt_three = (fraction(angle, 3, 1), fraction(angle, 3, 2))
print(f"at {angle} degrees: one feature {nt_three[0]:.2f}, "
      f"two features {nt_three[1]:.2f}")
print(f"one feature is worst off at {three[int(np.argmin(one_feature))]:.0f} degrees")
check("ex-nt-three", nt_three)

# %% [markdown]
# ````{solution-end}
# ````
