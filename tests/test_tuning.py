from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtlutils import cache, experiments, tuning
from mtlutils.config import config_key, resolve
from mtlutils.record import Run

CONFIG = dict(dataset="clusters", size="smoke", epochs=1, batch_size=64, data={"angle": 90})
ACCURACY = dict(dataset="digit_attributes", size="smoke", epochs=1, batch_size=64)  # higher is better


def _run(val, test, losses=(1.0, 0.5)):
    """A run of ``len(losses)`` steps with two tasks, evaluated at steps 1, 2, ... with the mean validation and test
    scores ``val`` and ``test`` (task "b" 0.1 above task "a")."""
    evals = pd.DataFrame([dict(step=s + 1, split=split, task=t, metric="accuracy", value=v + (0.1 if t == "b" else 0))
                          for split, values in (("val", val), ("test", test)) for s, v in enumerate(values)
                          for t in "ab"])
    history = pd.DataFrame({"loss_a": list(losses), "loss_b": list(losses)})
    last = len(val)
    return Run(history=history, evals=evals, task_names=["a", "b"], cost=dict(steps=last),
               metrics={split: {"a": {"accuracy": v[-1]}, "b": {"accuracy": v[-1] + 0.1}}
                        for split, v in (("val", val), ("test", test))})


def test_best_hyperparameters_picks_the_best_mean_per_method():
    table = pd.DataFrame({
        "method": ["a", "a", "a", "a", "b", "b"],
        "lr": [0.1, 0.1, 0.01, 0.01, 0.1, 0.01],
        "value": [0.9, 0.7, 0.85, 0.85, 0.2, 0.3],
    })
    best = tuning.best_hyperparameters(table, ["lr"]).set_index("method")["lr"]
    assert best["a"] == 0.01 and best["b"] == 0.01  # a: 0.80 vs 0.85; b: 0.2 vs 0.3
    lowest = tuning.best_hyperparameters(table, ["lr"], higher_is_better=False).set_index("method")["lr"]
    assert lowest["a"] == 0.1 and lowest["b"] == 0.1


SCORES = st.integers(0, 20).map(lambda k: k / 20)  # accuracies apart by more than rounding


@given(st.lists(SCORES, min_size=1, max_size=12), st.lists(SCORES, min_size=12, max_size=12))
def test_a_run_read_at_its_chosen_step_is_its_test_score_where_validation_peaked(val, test):
    result = _run(val, test[:len(val)])
    step = result.chosen_step()
    assert val[step - 1] == max(val) and max(val) not in val[:step - 1]  # the earliest of the best
    chosen = result.scores("chosen")
    assert chosen["test"]["a"]["accuracy"] == test[step - 1]
    assert chosen["test"]["b"]["accuracy"] == pytest.approx(test[step - 1] + 0.1)
    assert result.scores("end") == result.metrics
    with pytest.raises(ValueError, match="read a run at one of"):
        result.scores("best")


def test_a_run_that_learns_nothing_is_divergent():
    assert not _run([0.5] * 10, [0.5] * 10, losses=np.linspace(2.3, 0.3, 20)).diverged
    assert _run([0.1] * 10, [0.1] * 10, losses=[2.3] * 20).diverged  # stuck at chance
    assert _run([0.1] * 10, [0.1] * 10, losses=np.linspace(2.3, 9.0, 20)).diverged  # rising


@given(st.lists(st.integers(-60, 0), min_size=2, max_size=5, unique=True), st.sampled_from(["low", "high"]))
def test_a_grid_grows_past_its_edge_at_the_ratio_of_its_outer_values(exponents, side):
    values = [10 ** (k / 10) for k in exponents]  # grids of learning rates and weight decays, 1e-6 to 1
    value = tuning.beyond(values, side)
    ordered = sorted(values)
    edge, inner = (ordered[0], ordered[1]) if side == "low" else (ordered[-1], ordered[-2])
    assert value == pytest.approx(edge * edge / inner)
    assert (value < ordered[0]) if side == "low" else (value > ordered[-1])
    assert tuning.beyond([0.0, *values], "low") is None  # zero ends a learning rate or a weight decay
    assert tuning.beyond(values[:1], side) is None


@given(st.lists(st.floats(0, 1), min_size=1, max_size=20), st.floats(0, 0.2))
def test_the_plateau_is_the_first_step_no_later_step_beats_by_the_tolerance(curve, tolerance):
    curves = pd.DataFrame({"step": range(10, 10 * len(curve) + 1, 10), "seed": 0, "value": curve})
    step = tuning.plateau_step(pd.concat([curves, curves.assign(seed=1)]), tolerance)
    i = step // 10 - 1
    assert max(curve[i:]) - curve[i] <= tolerance
    assert all(max(curve[j:]) - curve[j] > tolerance for j in range(i))


def test_tune_then_repeat_tunes_on_its_own_seeds_and_reports_on_others(tmp_path):
    methods = {"averaged": CONFIG, "alternated": {**CONFIG, "strategy": "alternated"}}
    tuned = tuning.tune_then_repeat(methods, {"lr": [1e-2, 3e-2]}, seeds=[3, 4], tuning_seeds=[1, 2],
                                    cache_dir=tmp_path, progress=False)
    for name in methods:
        runs = [(c, r) for n, c, r in tuned.tuning if n == name]
        assert sorted((c["lr"], c["seed"]) for c, _ in runs) == [(1e-2, 1), (1e-2, 2), (3e-2, 1), (3e-2, 2)]
        scores = {lr: np.mean([v for c, r in runs if c["lr"] == lr for t in r.metrics["val"].values()
                               for v in t.values()]) for lr in (1e-2, 3e-2)}
        lr = tuned.chosen.set_index("method").loc[name, "lr"]
        assert lr == max(scores, key=scores.get)  # the best mean over both tuning seeds
        repeated = [c for n, c, _ in tuned.runs if n == name]
        assert [c["seed"] for c in repeated] == [3, 4] and all(c["lr"] == lr for c in repeated)
    table = tuned.table("test")
    assert set(table.method) == set(methods) and set(table.seed) == {3, 4}
    assert len(list(tmp_path.glob("*.json"))) == 2 * (2 * 2 + 2)  # every reported run is a run of its own
    sensitivity = tuned.sensitivity()
    assert len(sensitivity) == len(tuned.tuning) and sensitivity.chosen.sum() == 2 * 2  # two methods, two seeds


def test_a_grid_grows_past_the_edge_a_method_chose_a_bounded_number_of_times(tmp_path):
    method = {"averaged": {**ACCURACY, "eval_every": 2}}
    tuned = tuning.tune_then_repeat(method, {"lr": [1e-4, 1e-3]}, seeds=[3, 4], tuning_seeds=[1], cache_dir=tmp_path,
                                    progress=False, extend=2, at="chosen")
    grid, chosen = tuned.grids["averaged"]["lr"], tuned.chosen.lr[0]
    added = tuned.extended["averaged"]["lr"]  # a two-value grid has every choice at an edge: it grows at least once
    assert grid[:2] == [1e-4, 1e-3] and grid[2:] == added and 1 <= len(added) <= 2
    for i, value in enumerate(added):  # each value one step past the edge its round chose, on the grid's log scale
        before = sorted(grid[:2 + i])
        assert value == pytest.approx(before[-1] * 10) or value == pytest.approx(before[0] / 10)
    at_edge = chosen in (min(grid), max(grid))
    assert len(added) == 2 or not at_edge  # it stopped growing early only with its choice inside
    assert len(tuned.tuning) == len(grid) and sorted(c["lr"] for _, c, _ in tuned.tuning) == sorted(grid)
    assert ("lie at an edge" in tuned.edge_note()) == at_edge and tuned.extend == 2
    steps = tuned.chosen_steps()
    assert list(steps.seed) == [3, 4] and (steps.chosen <= steps.steps).all()
    assert steps.late.tolist() == (steps.chosen > 0.9 * steps.steps).tolist()
    table = tuned.table("test")
    for (_, config, result), (_, rows) in zip(tuned.runs, table.groupby("seed")):
        at_step = result.metrics_at(result.chosen_step())["test"]
        assert sorted(rows.value) == sorted(v for t in at_step.values() for v in t.values())


def test_tune_then_repeat_refuses_bad_settings_before_training(tmp_path):
    with pytest.raises(ValueError, match=r"seeds \[4\] both tune and report"):
        tuning.tune_then_repeat({"a": CONFIG}, {"lr": [1e-3]}, seeds=[4, 5], tuning_seeds=[4], cache_dir=tmp_path)
    with pytest.raises(ValueError, match="one value per grid key"):
        tuning.tune_then_repeat({"a": CONFIG}, {"lr": []}, seeds=[0], tuning_seeds=[1], cache_dir=tmp_path)
    with pytest.raises(ValueError, match="same configuration"):
        tuning.tune_then_repeat({"a": CONFIG, "b": {**CONFIG, "lr": 0.5}}, {"lr": [1e-3]}, [0], [1], tmp_path)
    with pytest.raises(ValueError, match="give its configuration eval_every"):
        tuning.tune_then_repeat({"a": CONFIG}, {"lr": [1e-3]}, [0], [1], tmp_path, at="chosen")
    with pytest.raises(ValueError, match="a whole number >= 0"):
        tuning.tune_then_repeat({"a": CONFIG}, {"lr": [1e-3]}, [0], [1], tmp_path, extend=-1)
    assert not list(tmp_path.glob("*.json"))  # refused before anything trained


def test_the_edge_note_says_where_choices_sit_and_why_the_grid_stopped():
    chosen = pd.DataFrame({"method": ["a", "b"], "lr": [1e-3, 3e-3], "weight_decay": [0.0, 1e-3]})
    grids = {"a": {"lr": [1e-3, 3e-3, 1e-2], "weight_decay": [0.0, 1e-3]},
             "b": {"lr": [1e-3, 3e-3, 1e-2], "weight_decay": [0.0, 1e-4]}}
    inside = tuning.Tuned(chosen.iloc[[1]], [], [], {"b": {"lr": grids["b"]["lr"]}})
    assert inside.edge_note() == "Every method chose values inside its grid."
    edge = tuning.Tuned(chosen, [], [], {**grids, "b": {**grids["b"], "weight_decay": [0.0, 1e-4, 1e-3]}},
                        {"b": {"weight_decay": [1e-3]}}, extend=1)
    assert edge.edge_note() == (
        "The grid grew past an edge for 1 of the 2 methods: b (weight decay 0.001). "
        "1 choice(s) are zero, where the axis ends (a: weight decay). "
        "2 choice(s) lie at an edge that the grid may grow past no further (at most 1 time(s) per axis): "
        "a: learning rate 0.001; b: weight decay 0.001; a wider grid could still move them.")


def test_the_budget_is_the_plateau_of_the_best_curve(tmp_path):
    curves = pd.DataFrame({"lr": [1e-3] * 4 + [1e-2] * 4, "seed": 0, "step": [1, 2, 3, 4] * 2,
                           "value": [0.1, 0.5, 0.6, 0.61, 0.3, 0.8, 0.9, 0.7]})
    assert tuning.budget_from_curves(curves, tolerance=0.05) == (1e-2, 3)
    assert tuning.budget_from_curves(curves, tolerance=0.15) == (1e-2, 2)
    configs = [{**ACCURACY, "eval_every": 2, "seed": seed} for seed in (0, 1)]
    runs = tuning.experiments.run_grid(configs, tmp_path, progress=False)
    table = tuning.learning_curves(configs, runs)
    assert list(table.columns) == ["lr", "seed", "step", "value"] and list(table.step) == [2, 4, 6, 8] * 2
    assert table.value.iloc[3] == pytest.approx(runs[0].mean_metric("accuracy", "val"))


def test_the_notes_count_late_choices_and_failed_runs():
    learning = _run([0.1, 0.2, 0.9], [0.1, 0.2, 0.8], losses=np.linspace(2.0, 0.5, 10))  # best at its last step
    early = _run([0.9, 0.2, 0.3], [0.8, 0.2, 0.3], losses=np.linspace(2.0, 0.5, 10))
    stuck = _run([0.1, 0.1, 0.1], [0.1, 0.1, 0.1], losses=[2.3] * 10)
    chosen = pd.DataFrame({"method": ["a", "b"], "lr": [1e-3, 1e-3]})
    runs = [("a", {"seed": 3, "lr": 1e-3}, learning), ("a", {"seed": 4, "lr": 1e-3}, early),
            ("b", {"seed": 3, "lr": 1e-3}, early), ("b", {"seed": 4, "lr": 1e-3}, early)]
    tuned = tuning.Tuned(chosen, [("b", {"seed": 1, "lr": 1e-2}, stuck), ("b", {"seed": 2, "lr": 1e-2}, stuck)], runs)
    assert tuned.late_note() == ("1 of the 4 reported runs chose a step in the last tenth of their budget (25%), "
                                 "where a longer budget might have chosen later (most of them a: 1 of 2).")
    assert tuned.divergent_note().startswith("2 of the 6 runs failed to train (their training loss")
    assert "b at learning rate 0.01 (2 tuning runs)" in tuned.divergent_note()
    assert tuning.Tuned(chosen, [], runs[1:]).late_note().startswith("0 of the 3 reported runs")
    assert tuning.Tuned(chosen, [], runs).divergent_note() == "None of the 4 runs failed to train."


def test_the_baseline_budget_is_the_plateau_epoch_of_its_best_learning_rate(tmp_path):
    chosen = tuning.baseline_budget(ACCURACY, [1e-3, 1e-2], seeds=[0, 1], horizon=3, tolerance=0.0,
                                    cache_dir=tmp_path, progress=False)
    assert chosen.steps_per_epoch == 8 and sorted(set(chosen.curves.step)) == [8, 16, 24]
    assert len(chosen.curves) == 2 * 2 * 3 and (chosen.curves.epoch == chosen.curves.step / 8).all()
    assert (chosen.lr, chosen.step) == tuning.budget_from_curves(chosen.curves, 0.0)
    assert chosen.epochs == -(-chosen.step // 8) and type(chosen.lr) is float  # glued as text
    assert len(list(tmp_path.glob("*.json"))) == 4  # one run per learning rate and seed, evaluated every epoch


def test_a_coordinate_search_tunes_one_axis_after_the_other(tmp_path):
    method = {"averaged": ACCURACY}
    grid = {"lr": [1e-3, 1e-2], "weight_decay": [0.0, 1e-3]}
    tuned = tuning.tune_then_repeat(method, grid, seeds=[3, 4], tuning_seeds=[1, 2], cache_dir=tmp_path,
                                    progress=False, search="coordinate")
    table = tuned.sensitivity()
    first = table[table.weight_decay == 0.0].groupby("lr").value.mean()  # the learning rate, without decay
    lr = first.idxmax()
    second = table[table.lr == lr].groupby("weight_decay").value.mean()  # then the decay at that learning rate
    assert len(table) == 3 * 2 and set(table[table.weight_decay > 0].lr) == {lr}
    assert (tuned.chosen.lr[0], tuned.chosen.weight_decay[0]) == (lr, second.idxmax())
    assert len(tuned.sensitivity(along="weight_decay")) == 2 * 2
    searched = tuned.sensitivity(along="lr", holding={"weight_decay": 0.0})  # the first stage, whatever was chosen
    assert sorted(searched.lr) == [1e-3, 1e-3, 1e-2, 1e-2] and (searched.weight_decay == 0.0).all()
    assert (searched.chosen == (searched.lr == lr)).all()
    with pytest.raises(ValueError, match="search the grid by one of"):
        tuning.tune_then_repeat(method, grid, [3], [1], tmp_path, search="random")


def test_a_run_of_a_lower_is_better_metric_is_read_at_its_lowest_validation_score():
    result = _run([0.5, 0.2, 0.4], [0.6, 0.3, 0.1])  # an error: the lowest validation is best
    assert result.chosen_step(higher_is_better=False) == 2
    assert result.scores("chosen", higher_is_better=False)["test"]["a"]["accuracy"] == 0.3
    assert result.scores("chosen")["test"]["a"]["accuracy"] == 0.6  # the highest, for a score


def test_the_reported_curves_hold_every_evaluation_of_every_reported_run():
    runs = [("a", {"seed": 3}, _run([0.1, 0.2, 0.3], [0.2, 0.4, 0.6])), ("b", {"seed": 3}, _run([0.5], [0.7]))]
    curves = tuning.Tuned(pd.DataFrame({"method": ["a", "b"]}), [], runs).curves("test")
    assert list(curves.columns) == ["method", "seed", "step", "value"]
    assert curves.method.tolist() == ["a", "a", "a", "b"] and curves.step.tolist() == [1, 2, 3, 1]
    assert curves.value.tolist() == pytest.approx([0.25, 0.45, 0.65, 0.75])  # the mean of the tasks a and b


def test_a_comparison_pairs_each_seed_with_the_reference_and_times_the_steps_alone(tmp_path):
    methods = {"averaged": ACCURACY, "alternated": {**ACCURACY, "strategy": "alternated"}}
    with pytest.raises(KeyError, match="reference"):
        tuning.compare_with(methods, "single", {"lr": [3e-3]}, [3, 4], [1], [], tmp_path, False)
    suite = experiments.suite_for(ACCURACY)
    compared = tuning.compare_with(methods, "averaged", {"lr": [3e-3]}, [3, 4], [1], suite.tasks, tmp_path, False)
    test = compared.tuned.table("test").pivot_table(index="seed", columns=["method", "task"], values="value")
    by_hand = 100 * (test["alternated"] / test["averaged"] - 1).mean(axis=1)  # accuracies: higher is better
    row = compared.overview.loc["alternated"]
    assert list(compared.overview.index) == ["alternated"]
    assert row["mean"] == pytest.approx(by_hand.mean())
    assert row["passes"] == 2 * len(suite.tasks)  # a forward and a backward pass per task
    assert row["ms vs averaged"] > 2  # ten optimizer steps per batch against one, timed alone
    untimed = tuning.compare_with(methods, "averaged", {"lr": [3e-3]}, [3, 4], [1], suite.tasks, tmp_path, False,
                                  timed=False)  # every run cached: the runs' own step times
    runs = {name: np.mean([r.ms_per_step for n, _, r in untimed.tuned.runs if n == name]) for name in methods}
    assert untimed.overview.loc["alternated", "ms vs averaged"] == pytest.approx(runs["alternated"] / runs["averaged"])
    resolved = tuning.compare_with(methods, "averaged", {"lr": [3e-3]}, [3, 4], [1], suite.tasks, tmp_path, False,
                                   timed=False, resolve_to=1e-3, most_seeds=3)  # two seeds resolve nothing so fine
    assert resolved.tuned.seed_counts().to_dict() == {"averaged": 3, "alternated": 3}
    assert resolved.overview.loc["alternated", "n"] == 3 and sorted(resolved.delta.seed.unique()) == [3, 4, 5]


def test_a_near_tie_is_settled_on_more_seeds_and_a_clear_choice_is_left_alone(tmp_path):
    methods = {"tied": CONFIG, "clear": {**CONFIG, "strategy": "alternated"}}
    scores = {("tied", 1e-3): [0.80, 0.80, 0.82, 0.82], ("tied", 3e-3): [0.805, 0.805, 0.70, 0.70],
              ("tied", 1e-2): [0.1, 0.1], ("clear", 1e-3): [0.5, 0.5], ("clear", 3e-3): [0.9, 0.9]}
    done = {}
    for (name, lr), values in scores.items():
        for seed, value in zip([1, 2, 3, 4], values):  # seeds 3 and 4: the tie seeds, where they were trained
            config = {**methods[name], "lr": lr, "seed": seed}
            done[config_key(config)] = (name, config, _run([value], [value]))
    tuning_runs = [t for t in done.values() if t[1]["seed"] in (1, 2)]
    chosen = pd.DataFrame({"method": ["tied", "clear"], "lr": [3e-3, 3e-3]})
    settled = tuning.settle_ties(chosen, tuning_runs, ["lr"], [3, 4], 0.01, "end", dict(done), tmp_path, False)
    assert settled.set_index("method").lr.to_dict() == {"tied": 1e-3, "clear": 3e-3}  # the mean over four seeds
    assert not list(tmp_path.glob("*.json"))  # only the two tied points were asked for on the tie seeds
    with pytest.raises(ValueError, match="tie seeds other than the tuning seeds"):
        tuning.tune_then_repeat(methods, {"lr": [1e-3]}, [5], [1], tmp_path, False, near_tie=0.01, tie_seeds=[1])


@given(st.lists(st.booleans(), min_size=1, max_size=6))
def test_a_point_is_at_the_edge_of_divergence_where_it_or_the_next_larger_learning_rate_failed(failed):
    lrs = [10.0 ** -k for k in range(len(failed), 0, -1)]  # increasing
    stuck, learning = [2.3] * 10, np.linspace(2.0, 0.5, 10)
    triples = [("m", {"lr": lr, "weight_decay": wd, "seed": 1},
                _run([0.5], [0.5], stuck if bad and wd == 0 else learning))
               for lr, bad in zip(lrs, failed) for wd in (0.0, 1e-3)]
    edge = tuning.unstable(triples, ["lr", "weight_decay"])
    expected = {("m", (lr, 0.0)) for i, lr in enumerate(lrs) if failed[i] or failed[i + 1:i + 2] == [True]}
    assert edge == expected  # the points with weight decay learn: they are the stable ones left
    assert tuning.unstable(triples, ["weight_decay"]) == set()  # only a learning rate diverges
    alone = [t for t in triples if t[1]["weight_decay"] == 0.0]
    assert tuning.unstable(alone, ["lr"]) == ({("m", (lr,)) for _, (lr, _) in expected}
                                              if len(expected) < len(lrs) else set())  # no point left: keep all


def test_a_learning_rate_next_to_one_that_failed_is_passed_over_and_the_note_says_so(tmp_path):
    store, grid = cache.RunCache(tmp_path), [1e-3, 3e-3, 1e-2]
    scores = {1e-3: 0.5, 3e-3: 0.6, 1e-2: 0.7, tuning.beyond(grid, "high"): 0.2}  # the grid grows past 1e-2
    for lr, score in scores.items():
        for seed in (1, 2):
            config = resolve({**ACCURACY, "lr": lr, "seed": seed})
            failed = lr == max(scores) and seed == 1
            store.store(config_key(config), config, _run([score], [score], [2.3] * 10 if failed else [1.0, 0.5]))
    tuned = tuning.tune_then_repeat({"m": ACCURACY}, {"lr": grid}, seeds=[3, 4], tuning_seeds=[1, 2],
                                    cache_dir=tmp_path, progress=False, extend=1)
    assert tuned.chosen.lr.tolist() == [3e-3] and tuned.passed_over == {"m": {"lr": 1e-2}}
    assert {c["lr"] for _, c, _ in tuned.runs} == {3e-3} and "the best validation score of m (learning rate 0.01)" \
        in tuned.divergent_note()


def test_more_seeds_go_where_an_interval_is_wider_than_asked_and_stop_at_the_most(tmp_path):
    methods = {"reference": CONFIG, "steady": {**CONFIG, "lr": 2e-2}, "noisy": {**CONFIG, "lr": 3e-2}}
    tuned = tuning.tune_then_repeat(methods, {"weight_decay": [0.0]}, seeds=[3, 4, 5], tuning_seeds=[1],
                                    cache_dir=tmp_path, progress=False)

    def per_seed(t):  # the steady method differs by 0.5 on every seed, the noisy one by +-3
        seeds = {name: sorted(c["seed"] for n, c, _ in t.runs if n == name) for name in methods}
        return pd.DataFrame({"reference": pd.Series(0.0, index=seeds["reference"]),
                             "steady": pd.Series(0.5, index=seeds["steady"]),
                             "noisy": pd.Series([3.0 * (-1) ** s for s in seeds["noisy"]], index=seeds["noisy"])})

    more = tuning.more_seeds(tuned, "reference", per_seed, target=1.0, most=8, cache_dir=tmp_path, progress=False)
    seeds = {name: sorted(c["seed"] for n, c, _ in more.runs if n == name) for name in methods}
    assert seeds == {"reference": list(range(3, 11)), "steady": [3, 4, 5], "noisy": list(range(3, 11))}
    assert all(c["lr"] == 3e-2 for n, c, _ in more.runs if n == "noisy") and len(more.tuning) == len(tuned.tuning)
    assert (tuned.seeds_span(), more.seeds_span()) == ("3", "3 to 8")
    assert more.seeds_note(1.0).endswith("(reference: 8, noisy: 8 seeds).") and "Every method reports 3 seeds" in \
        tuned.seeds_note(1.0)
    with pytest.raises(ValueError, match=r"seeds \[1\] tuned or settled a tie"):
        tuning.more_seeds(replace(tuned, tuning=[("x", {"seed": 1}, None)], runs=[("x", {"seed": -2}, None)]),
                          "x", per_seed, 1.0, 4)
