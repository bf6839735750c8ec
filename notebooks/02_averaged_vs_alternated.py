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
# # Averaged loss versus alternated updates
#
# The usual way to train a multi-task network takes one gradient step per batch on the average of the task
# losses. Pascal et al. {cite}`pascal2021improved` ask whether the sum of the objectives is the problem: its
# landscape mixes every task's, and one step serves them all at once. Their alternative takes one step per task,
# in turn, on the same batch. This chapter asks: **does alternating the task updates change where training goes,
# what it reaches, and what it costs?**

# %% tags=["parameters"]
SIZE = "small"  # "smoke" (seconds, for tests) | "small" (the book) | "full" (below)
# full: the papers' settings on MultiMNIST, after `python -m data_scripts.multimnist`;
# it trains on the GPU when there is one.
# Its run time, here and on one H200, from its runs counted and their steps timed:
#   python benchmarks/full_mode_time.py --chapters 02
SEED = 0  # the first seed: tuning on the first tuning_seeds seeds, reports on the next
OVERRIDES = {}  # replaces entries of SETTINGS below, e.g. {"seeds": 2} for fewer seeds

# %% tags=["hide-input"]
import pandas as pd
from IPython.display import Markdown
from matplotlib import pyplot as plt

import mtlutils as mtl

mtl.plots.use_style()

# %% tags=["hide-input"]
SETTINGS = mtl.settings({
    "smoke": dict(toy_lr=1e-2, toy_steps=60, size="smoke", horizon=3, plateau=0.01,
                  lrs=[1e-3, 3e-3], extend=1, near_tie=0.01, tie_seeds=1, seeds=2,
                  tuning_seeds=1),
    "small": dict(toy_lr=1e-2, toy_steps=20000, size="small", horizon=30, plateau=0.01,
                  lrs=[1e-3, 3e-3, 1e-2], extend=2, near_tie=0.01, tie_seeds=2,
                  seeds=20, tuning_seeds=2),
    "full": dict(toy_lr=1e-3, toy_steps=100000, size="full", horizon=30, plateau=0.01,
                 lrs=[3e-4, 1e-3, 3e-3, 1e-2], extend=2, near_tie=0.01, tie_seeds=2,
                 seeds=10, tuning_seeds=2),
}, SIZE, OVERRIDES)

# %% tags=["hide-input"]
TUNING_SEEDS, SEEDS = mtl.split_seeds(SEED, SETTINGS["seeds"],
                                      tuning=SETTINGS["tuning_seeds"])
TIE_SEEDS = mtl.tie_seeds(SEED, SETTINGS["tie_seeds"])
# full mode stops here when MultiMNIST has not been prepared
suite = mtl.experiments.suite_for(dict(dataset="multimnist", size=SETTINGS["size"]))

# %% [markdown]
# ## Two update rules
#
# Write $\theta_s$ for the shared parameters, $\theta_t$ for the head of task $t$ and $L_t$ for its loss on the
# current batch. **Averaged** training takes one optimizer step along
#
# $$ g = \nabla_{\theta} \frac1T \sum_{t=1}^T L_t(\theta_s, \theta_t). $$
#
# **Alternated** training visits the tasks in turn on the same batch. For $t = 1, \dots, T$ it runs a forward pass
# with the parameters as they are now, and one optimizer step on $\theta_s$ and $\theta_t$ along
# $\nabla L_t(\theta_s, \theta_t)$; the heads of the other tasks do not move. Task $t+1$ thus sees a trunk that task
# $t$ has already moved. With Adam, two variants differ in what the optimizer remembers. One shared optimizer
# (Pascal et al.'s "IUS") keeps a single pair of moment estimates for $\theta_s$, updated $T$ times per batch by
# different tasks. One optimizer per task ("IO") gives each task its own moments and step counter, as if each task
# trained the trunk alone. Alternating costs $T$ forward and $T$ backward passes per batch instead of one of each.
#
# ## On a two-objective landscape
#
# The landscape of Liu et al. {cite}`liu2021conflict` has two objectives of a point $x \in \mathbb R^2$ and a
# Pareto set, the segment {glue:md}`pareto_set`, where neither loss can improve without the other getting worse.
# We run each update rule from {glue:text}`n_starts` starting points with Adam, and once more with $L_1$ scaled by
# {glue:text}`toy_imbalance:g` (an *imbalanced* pair of losses). PCGrad {cite}`yu2020gradient`, which removes
# the conflicting part of each task's gradient, runs beside them through `strategies.Aggregated`, which hands the
# tasks' gradients to torchjd {cite}`quinton2024jacobian`.

# %%
TOY_METHODS = {
    "Averaged": dict(strategy="averaged", lr=SETTINGS["toy_lr"]),
    "Alternated": dict(strategy="alternated", lr=SETTINGS["toy_lr"]),
    "PCGrad": dict(strategy="aggregated", strategy_kwargs={"aggregator": "pcgrad"},
                   lr=SETTINGS["toy_lr"]),
}
paths = {}  # each path until it reaches the Pareto set or stops, at most toy_steps
for imbalance in (False, True):
    ran = mtl.experiments.toy_paths(TOY_METHODS, SETTINGS["toy_steps"], imbalance, True)
    paths.update({(name, imbalance): path for name, path in ran.items()})
low, high = mtl.toy.PARETO_X1
pareto_set = f"$x_2 = {mtl.toy.PARETO_X2}$, ${low:g} \\le x_1 \\le {high:g}$"
mtl.glue("pareto_set", Markdown(pareto_set), display=False)
mtl.glue("n_starts", len(mtl.toy.STARTS), display=False)

# %%
mtl.glue("toy_imbalance", mtl.toy.IMBALANCE, display=False)
pareto = (mtl.toy.PARETO_X1, mtl.toy.PARETO_X2)
fig, axes = plt.subplots(2, 3, figsize=(13, 8.6), sharex=True, sharey=True)
for (name, imbalance), ax in zip(paths, axes.flat):
    scaled = f"L1 scaled by {mtl.toy.IMBALANCE:g}" if imbalance else "balanced"
    title = f"{name}, {scaled}"
    landscape = mtl.toy.landscape(imbalance=imbalance)
    mtl.plots.toy_paths(ax, landscape, paths[name, imbalance], pareto, title)
axes[0, 0].legend(loc="upper right", frameon=True)
fig.suptitle(f"Adam, learning rate {SETTINGS['toy_lr']:g}, at most "
             f"{SETTINGS['toy_steps']} steps; circles: starts, crosses: ends", y=1.0)
mtl.plots.savefig(fig, "02_toy_paths")

# %%
mtl.glue("toy_near", mtl.toy.NEAR, display=False)
ends = pd.DataFrame([
    dict(method=name, imbalance=imbalance, start=i,
         distance=mtl.toy.pareto_distance(p[-1, i]), settled=mtl.toy.settled(p)[i])
    for (name, imbalance), p in paths.items() for i in range(p.shape[1])
])
ends["reached"] = ends.distance < mtl.toy.NEAR
ends["stalled"] = ends.settled & ~ends.reached

# %%
summary = ends.groupby(["method", "imbalance"]).agg(
    reached=("reached", "sum"), stalled=("stalled", "sum"),
    median_distance=("distance", "median"))
for (name, imbalance), row in summary.iterrows():
    suffix = "_imbalanced" if imbalance else ""
    mtl.glue(f"reached_{name}{suffix}", int(row.reached), display=False)
    mtl.glue(f"stalled_{name}{suffix}", int(row.stalled), display=False)
    mtl.glue(f"distance_{name}{suffix}", float(row.median_distance), display=False)
summary.round(2)

# %%
unfinished = int((~ends.settled).sum())
cap = SETTINGS["toy_steps"]
mtl.glue("toy_moving", Markdown(
    f"Each path ran until it reached the Pareto set or stopped (moved less than "
    f"{mtl.toy.STILL:g} over {mtl.toy.WINDOW} steps), for at most {cap} steps; "
    + (f"{unfinished} of the {len(ends)} were still moving at that cap, so for them "
       "the counts measure speed as much as destination." if unfinished else
       f"all {len(ends)} had settled before it, so the counts measure destinations.")),
    display=False)

# %% [markdown]
# Of the {glue:text}`n_starts` starts, the number that ends within {glue:text}`toy_near:g` of the Pareto set is,
# for the balanced pair, {glue:text}`reached_Averaged` for Averaged, {glue:text}`reached_Alternated` for
# Alternated and {glue:text}`reached_PCGrad` for PCGrad (median distance of the end points
# {glue:text}`distance_Averaged:.1f`, {glue:text}`distance_Alternated:.1f` and {glue:text}`distance_PCGrad:.1f`);
# with $L_1$ scaled down, {glue:text}`reached_Averaged_imbalanced`, {glue:text}`reached_Alternated_imbalanced`
# and {glue:text}`reached_PCGrad_imbalanced`. {glue:md}`toy_moving` Where the two losses pull apart, the averaged
# step follows their sum, and Adam, which divides each coordinate of the step by the running size of its gradient,
# sees one gradient instead of two; the alternated and PCGrad steps respond to each loss separately. On a
# two-dimensional toy these are pictures, not evidence: the next section asks the question on real data.
#
# ## On MultiMNIST
#
# Two digits overlap in each image {cite}`sabour2017dynamic`; the tasks classify the left and the right digit
# (`data.load("multimnist")`, with the LeNet of Sener & Koltun {cite}`sener2018multi`). A comparison of update
# rules on networks that have barely started to learn measures how fast each one starts, not where it leads, so
# we first ask how long the averaged loss needs: we train it for {glue:text}`horizon` epochs at each learning rate
# of the grid, on the tuning seeds, and evaluate it on the validation split after every epoch.

# %%
base = dict(dataset="multimnist", size=SETTINGS["size"], batch_size=64)
chosen_budget = mtl.tuning.baseline_budget(
    {**base, "strategy": "averaged"}, SETTINGS["lrs"], TUNING_SEEDS,
    SETTINGS["horizon"], SETTINGS["plateau"])
EPOCHS = chosen_budget.epochs
base["eval_every"] = chosen_budget.steps_per_epoch  # read each run at its chosen epoch
mtl.glue("horizon", SETTINGS["horizon"], display=False)
mtl.glue("plateau_tolerance", 100 * SETTINGS["plateau"], display=False)
mtl.glue("budget_epochs", EPOCHS, display=False)
mtl.glue("budget_lr", chosen_budget.lr, display=False)

# %%
fig, ax = plt.subplots(figsize=(8, 3.8))
mtl.plots.budget(ax, chosen_budget)
ax.set(ylabel="validation accuracy (%)",
       title="averaged loss, mean over both digits; thin lines: tuning seeds")
mtl.plots.savefig(fig, "02_learning_curves")

# %% [markdown]
# At its best learning rate ({glue:text}`budget_lr:g`) the averaged loss reaches its validation plateau (no later
# epoch more than {glue:text}`plateau_tolerance:.1f` points higher) after {glue:text}`budget_epochs` epochs: that
# is the budget of every run below. We train Averaged, Alternated with one shared Adam, Alternated with one Adam per
# task, and a single-task network per task. In this book a head outside the group being updated does not move; in
# the official codes of Pascal et al. and of Jeong & Yoon, written for torch versions whose `zero_grad` fills
# gradients with zeros, it gets a zero gradient, so the shared Adam still steps it through its moments.
# "Alternated, shared Adam, heads moving" is that variant (`idle_heads="moving"`): Pascal et al.'s IUS as it ran.
# Alternating takes two optimizer steps per batch; "Averaged, twice the steps" trains the averaged loss for twice
# the epochs, so that a gain of Alternated that is only its extra steps shows in that control too.
#
# Every method gets the same learning-rate grid, searched on tuning seeds; a method whose best learning rate lies at
# an end of the grid gets one more value past it, up to {glue:text}`grid_extensions` times, and one whose best two
# learning rates lie within {glue:text}`near_tie:.1f` points of each other trains both on
# {glue:text}`tie_seeds` more seeds, which settle the choice; a learning rate at which, or one grid step below one
# at which, a tuning run failed to train is not chosen (a few seeds may collapse there, which two tuning seeds
# need not show). Each run is read at the epoch its validation accuracy chose (early stopping, scored on test), and we
# report test accuracy over the other seeds at the chosen learning rate (`tuning.tune_then_repeat`), so no
# reported run is one a choice was made on.

# %%
budget = {**base, "epochs": EPOCHS}
alternated = {**budget, "strategy": "alternated"}
METHODS = {
    "Averaged": {**budget, "strategy": "averaged"},
    "Averaged, twice the steps": {**base, "strategy": "averaged", "epochs": 2 * EPOCHS},
    "Alternated, shared Adam": alternated,
    "Alternated, Adam per task": {
        **alternated, "strategy_kwargs": {"optimizer_per_group": True}},
    "Alternated, shared Adam, heads moving": {
        **alternated, "strategy_kwargs": {"idle_heads": "moving"}},
}
SINGLE = {f"single-task {task}": config for task, config in zip(
    suite.task_names, mtl.experiments.single_task_configs(budget, suite.task_names))}

# %%
mtl.glue("grid_extensions", SETTINGS["extend"], display=False)
mtl.glue("tie_seeds", len(TIE_SEEDS), display=False)
mtl.glue("near_tie", 100 * SETTINGS["near_tie"], display=False)

# %%
tuned = mtl.tune_then_repeat({**METHODS, **SINGLE}, {"lr": SETTINGS["lrs"]}, SEEDS,
                             TUNING_SEEDS, extend=SETTINGS["extend"], at="chosen",
                             near_tie=SETTINGS["near_tie"], tie_seeds=TIE_SEEDS)
as_one = {name: "single-task" for name in SINGLE}  # the baselines count as one method
chosen = tuned.table("test").replace({"method": as_one})
tuned.chosen.set_index("method")

# %%
mtl.plots.sensitivity_figure(tuned.sensitivity(), "lr", list(tuned.chosen.method),
                             "02_sensitivity")

# %%
mtl.glue("late_share", Markdown(tuned.late_note()), display=False)
mtl.glue("divergent", Markdown(tuned.divergent_note()), display=False)
mtl.glue("lr_caveat", Markdown(tuned.edge_note()), display=False)

# %%
accuracy = mtl.stats.summarize(chosen, by=["method", "task"])
delta = mtl.stats.delta_by_seed(chosen, suite.tasks, baseline="single-task")
delta_summary = mtl.stats.summarize(delta, by=["method"], value="relative")

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8),
                         gridspec_kw={"width_ratios": [1.4, 1]})
order = [*METHODS, "single-task"]
mtl.plots.bars_with_ci(axes[0], accuracy.rename(columns={"task": "digit"}), x="method",
                       hue="digit", order=order, scale=100)
axes[0].set(xticklabels=[o.replace(", ", ",\n") for o in order],
            ylabel="test accuracy (%)", ylim=(50, 100),
            title=f"test accuracy, tuned lr ({len(SEEDS)} seeds, 95% CI)")
mtl.plots.interval_bars(axes[1], {r"$\Delta_m$": delta_summary.set_index("method")},
                        "mean", list(METHODS))
axes[1].set(xlabel=r"$\Delta_m$ vs single-task (%)",
            title="relative to single-task training")
mtl.plots.savefig(fig, "02_multimnist")
delta_summary.round(2)


# %%
describe = mtl.stats.describe_interval
ranked = delta_summary.set_index("method").sort_values("mean", ascending=False)
mtl.glue("mm_ranking", Markdown("; ".join(
    f"{name} {describe(row)}" for name, row in ranked.iterrows())), display=False)
wide = delta.pivot(index="seed", columns="method", values="relative")
pairs = [(a, b) for i, a in enumerate(ranked.index) for b in ranked.index[i + 1:]]
differences = pd.DataFrame({f"{a} minus {b}": mtl.stats.paired_gap(wide, a, b)
                            for a, b in pairs}).T
top = differences.index[0]
mtl.glue("mm_verdict", Markdown(
    f"{top}, seed by seed, is {describe(differences.loc[top], unit=' points')}: "
    + ("the seeds separate the best two" if mtl.stats.sign_of(differences.loc[top]) > 0
       else "the seeds do **not** separate the best two")), display=False)
resolution = mtl.stats.resolution(differences, unit=" points")
mtl.glue("mm_resolution", Markdown(resolution), display=False)

# %%
mtl.glue("n_seeds", len(SEEDS), display=False)
apart, _ = mtl.stats.separated(differences)  # the differences above zero
separated = ("no paired difference of Δm between two methods excludes zero: the "
             "differences do not survive the seeds. " if not apart else
             "these paired differences of Δm exclude zero: " + "; ".join(apart) + ". ")
mtl.glue("mm_summary", Markdown(separated + resolution), display=False)
mtl.glue("finding", Markdown(
    f"On MultiMNIST, every method tuned alike and trained to the averaged loss's "
    f"plateau, Δm against single-task networks over {len(SEEDS)} seeds: "
    + separated + resolution), display=False)

# %%
at_end = tuned.table("test", at="end").replace({"method": as_one})
end_delta = mtl.stats.delta_by_seed(at_end, suite.tasks, baseline="single-task")
readings = pd.concat({
    "chosen epoch": delta_summary.set_index("method"),
    "end of budget": mtl.stats.summarize(end_delta, by=["method"], value="relative")
                        .set_index("method")}, axis=1).loc[list(METHODS)]
mtl.glue("mm_at_end", Markdown("; ".join(
    f"{name} {describe(row['end of budget'])}" for name, row in readings.iterrows())),
    display=False)
readings.xs("mean", axis=1, level=1).round(2)

# %%
heads = mtl.stats.paired_gap(wide, "Alternated, shared Adam, heads moving",
                             "Alternated, shared Adam")
mtl.glue("mm_heads", Markdown(
    "heads moving minus heads still, seed by seed, is "
    f"{describe(heads, unit=' points')} of $\\Delta_m$"
    + (": the seeds do not separate the two; whatever the official runs' moving heads "
       "change lies within that interval" if mtl.stats.sign_of(heads) == 0
       else ": the official runs' moving heads change the result")), display=False)
differences.round(2)

# %% [markdown]
# With the learning rate tuned per method, $\Delta_m$ against single-task training is, from the highest:
# {glue:md}`mm_ranking`. Over {glue:text}`n_seeds` seeds, {glue:md}`mm_verdict`. {glue:md}`mm_resolution`
# {glue:md}`lr_caveat` For alternated updates with a shared Adam, {glue:md}`mm_heads`.
# {glue:md}`late_share` {glue:md}`divergent` Read after the last epoch of the budget instead of at the chosen
# one, $\Delta_m$ is: {glue:md}`mm_at_end`.
# The table below gives each method's cost: passes per batch, and milliseconds of compute per batch on this
# machine, timed by `experiments.step_times` in this process on one thread, as the CPU time of that thread, so that
# the runs and chapters computing beside it do not inflate them.

# %%
passes = tuned.cost()[["forward", "backward"]].rename(index=as_one)
timed = mtl.experiments.step_times({**METHODS, **SINGLE}).rename(index=as_one)
cost = passes.join(timed).groupby("method").mean().reindex(order)
cost["ms vs Averaged"] = cost["ms per step"] / cost.loc["Averaged", "ms per step"]
shared_adam = cost.loc["Alternated, shared Adam"]
mtl.glue("alt_cost_ratio", float(shared_adam["ms vs Averaged"]), display=False)
mtl.glue("alt_forward", float(shared_adam.forward), display=False)
mtl.glue("alt_backward", float(shared_adam.backward), display=False)
cost.round(2)

# %% [markdown]
# Alternating two tasks costs {glue:text}`alt_forward:.0f` forward and {glue:text}`alt_backward:.0f` backward
# passes per batch, and here {glue:text}`alt_cost_ratio:.2f` times the milliseconds of Averaged per batch
# (single-task rows train one task).
# With $T$ tasks the cost grows with $T$: the next chapter groups tasks to buy back most of it.
#
# ## Summary
#
# - Averaged training takes one step on the mean loss; Alternated takes one step per task, each on the trunk as
#   the previous task left it, at $T$ times the passes.
# - With Adam, alternating changes more than the order: each task's gradient is normalised on its own (one Adam
#   per task) or mixed into shared moments, and the paths on the toy landscape differ visibly.
# - On MultiMNIST, with every method tuned on the same grid and judged over several seeds:
#   {glue:md}`mm_summary`
# - Heads outside the updated group that move through the shared Adam's moments, as in the official codes:
#   {glue:md}`mm_heads`.

# %% tags=["hide-input"]
# the number an exercise states (mtlutils.exercises, where its check reads it)
mtl.glue("alt_batches", mtl.exercises.MOMENT_BATCHES, display=False)

# %% [markdown]
# ## Exercises
#
# ````{exercise}
# :label: ex-alt-order
# Alternated visits the tasks in a fixed order. Run it on the toy landscape from the start $(0, 0)$ with
# `order="fixed"` and with `order="shuffle"` (a new order every batch) and compare the end points. Does the
# order matter on this landscape?
# ````
#
# ````{solution-start} ex-alt-order
# :class: dropdown
# ````

# %%
orders = {order: dict(strategy="alternated", strategy_kwargs={"order": order},
                      lr=SETTINGS["toy_lr"]) for order in ("fixed", "shuffle")}
start = mtl.toy.STARTS.index((0.0, 0.0))  # toy_paths runs from every start
ran = mtl.experiments.toy_paths(orders, SETTINGS["toy_steps"], settle=True)
for order, path in ran.items():
    end = path[-1, start]
    print(f"{order:8s} ends at {end.round(3)}, "
          f"distance to the Pareto set {mtl.toy.pareto_distance(end):.3f}")
# Compare the two end points printed above: with two tasks, "shuffle" only swaps which
# task moves first.

# %% [markdown]
# ````{solution-end}
# ````
#
# ````{exercise}
# :label: ex-alt-moments
# With one shared Adam, how many times per batch are the trunk's moment estimates updated, and how many times a
# head's? Check your answer on the optimizer state after {glue:text}`alt_batches` batches of `Alternated()` on
# MultiMNIST, and store the pair (trunk steps, head steps) after those batches as `alt_moments`. To look inside
# its optimizer, build the strategy object by hand (`strategies.Alternated()`, then its `setup` and `step`)
# instead of training a run from a configuration, as the rest of the chapter does.
# ````
#
# ````{solution-start} ex-alt-moments
# :class: dropdown
# ````

# %%
from mtlutils.exercises import check

# by hand, not from a configuration, so that the optimizer can be opened
net = mtl.models.for_suite(suite)
strategy = mtl.strategies.Alternated()
strategy.setup(net, suite.tasks)
batches = suite.train.batches(base["batch_size"])
for batch, _ in zip(batches, range(mtl.exercises.MOMENT_BATCHES)):
    strategy.step(net, batch)
(optimizer,) = strategy.optimizers.values()
trunk, head = next(net.shared_parameters()), next(net.task_parameters("left"))
alt_moments = tuple(int(optimizer.state[p]["step"]) for p in (trunk, head))
print("trunk steps:", alt_moments[0], "head 'left' steps:", alt_moments[1])
# The trunk is stepped once per task per batch, a head once per batch: shared moments
# mix the two tasks' gradients; Adam's bias correction counts both tasks' steps.
check("ex-alt-moments", alt_moments)

# %% [markdown]
# ````{solution-end}
# ````
#
# ````{exercise}
# :label: ex-alt-mean
# Averaged uses the *mean* of the task losses, while Alternated steps on each task's loss in full. With plain SGD,
# what learning rate makes one Averaged step on two tasks move the trunk by the same total first-order amount as
# one Alternated batch? Store the factor on Averaged's learning rate as `alt_mean`. Why does the question mostly
# disappear with Adam?
# ````
#
# ````{solution-start} ex-alt-mean
# :class: dropdown
# ````

# %%
# To first order, Alternated moves the trunk by -lr (g_1 + g_2) per batch and Averaged
# by -lr (g_1 + g_2) / 2, so Averaged needs twice the learning rate (T times with T
# tasks). Adam divides each step by the running size of the gradient, so scaling the
# loss by 1/T barely changes its steps. Check with one step of SGD on the toy:
alt_mean = len(mtl.toy.suite().tasks)  # T
SGD = {"Alternated": dict(strategy="alternated", optimizer="sgd", lr=1e-3),
       "Averaged": dict(strategy="averaged", optimizer="sgd", lr=alt_mean * 1e-3)}
start = 3  # STARTS[3], a smooth point: at x2 = 0 the landscape switches its two parts
for name, path in mtl.experiments.toy_paths(SGD, steps=1).items():
    print(f"{name}, learning rate {SGD[name]['lr']:g}, "
          f"moved {path[1, start] - path[0, start]}")
check("ex-alt-mean", alt_mean)

# %% [markdown]
# ````{solution-end}
# ````
