import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from mtlutils import config, experiments, metrics, stats
from mtlutils.runtime import resolve_device

CONFIG = dict(dataset="clusters", size="smoke", epochs=1, batch_size=64, data={"angle": 90})


def test_the_cache_returns_a_finished_run_without_training(tmp_path, monkeypatch):
    first = experiments.run(CONFIG, tmp_path)
    monkeypatch.setattr(experiments, "_train_job", lambda *a, **k: pytest.fail("trained again"))
    again = experiments.run(CONFIG, tmp_path)
    assert again.history.equals(first.history) and again.metrics == first.metrics
    assert [p.name for p in tmp_path.iterdir()] == [f"{config.config_key(CONFIG)}.json"]


def test_the_cache_key_covers_the_whole_configuration():
    key = config.config_key(CONFIG)
    assert key == config.config_key(dict(reversed(list(CONFIG.items()))))
    assert key == config.config_key({**CONFIG, "seed": 0})  # a default spelled out
    assert key != config.config_key({**CONFIG, "seed": 1})
    assert key != config.config_key({**CONFIG, "data": {"angle": 45}})


def test_the_cache_key_holds_the_device_the_run_trains_on(monkeypatch):
    monkeypatch.delenv("MTLUTILS_DEVICE", raising=False)
    here = str(resolve_device("auto"))
    assert config.resolve(CONFIG)["device"] == here
    assert config.config_key(CONFIG) == config.config_key({**CONFIG, "device": here})
    assert config.config_key({**CONFIG, "device": "cpu"}) != config.config_key({**CONFIG, "device": "cuda"})
    monkeypatch.setenv("MTLUTILS_DEVICE", "cuda")  # e.g. a CPU laptop that sends its runs to GPU workers
    assert config.config_key(CONFIG) == config.config_key({**CONFIG, "device": "cuda"})
    assert config.resolve({**CONFIG, "device": "cpu"})["device"] == "cpu"  # a named device stays


def test_unknown_names_are_refused():
    with pytest.raises(KeyError, match="learning_rate"):
        config.config_key({"learning_rate": 1})
    with pytest.raises(ValueError, match="strategy must be a strategy name: single_task, averaged"):
        config.complete({"strategy": "magic"})


def test_grid_is_the_product_of_its_axes():
    configs = experiments.grid({"epochs": 2}, seed=[0, 1, 2], lr=[1e-3, 1e-2])
    assert len(configs) == 6 and all(c["epochs"] == 2 for c in configs)
    assert {(c["seed"], c["lr"]) for c in configs} == {(s, lr) for s in range(3) for lr in (1e-3, 1e-2)}


def test_confidence_interval_is_the_student_t_interval():
    values = [1.0, 2.0, 4.0]
    mean, low, high = stats.confidence_interval(values)
    half = scipy_stats.t.ppf(0.975, 2) * np.std(values, ddof=1) / np.sqrt(3)
    assert mean == pytest.approx(7 / 3) and low == pytest.approx(mean - half) and high == pytest.approx(mean + half)
    assert stats.confidence_interval([5.0])[1:] == (-np.inf, np.inf)


def test_summarize_gives_one_row_per_cell():
    table = pd.DataFrame({"method": ["a"] * 3 + ["b"] * 2, "value": [1.0, 2.0, 3.0, 5.0, 5.0]})
    summary = stats.summarize(table, by=["method"]).set_index("method")
    assert summary.loc["a", "n"] == 3 and summary.loc["a", "mean"] == 2.0
    assert summary.loc["b", "ci_low"] == summary.loc["b", "ci_high"] == 5.0


def test_relative_to_baseline_matches_seeds_and_signs(tmp_path):
    configs = [{**CONFIG, "seed": s} for s in (0, 1)]
    suite = experiments.suite_for(CONFIG)
    configs += [c for base in configs for c in experiments.single_task_configs(base, suite.task_names)]
    runs = experiments.run_grid(configs, tmp_path, progress=False)
    table = experiments.results(configs, runs)
    relative = stats.relative_to_baseline(table, suite.tasks, match=["seed"])
    assert len(relative) == 2 * len(suite.task_names)
    row = relative.iloc[0]
    mse = table.set_index(["strategy", "seed", "task"])["value"]
    expected = -100 * (mse["averaged", row.seed, row.task] - mse["single_task", row.seed, row.task]) / mse[
        "single_task", row.seed, row.task]
    assert row.relative == pytest.approx(expected)
    with pytest.raises(ValueError, match="no 'single_task' runs"):
        stats.relative_to_baseline(table[table.strategy == "averaged"], suite.tasks, match=["seed"])


def test_results_can_label_methods(tmp_path):
    configs = [{**CONFIG, "seed": 0}]
    table = experiments.results(configs, experiments.run_grid(configs, tmp_path, progress=False),
                                label=lambda c: f"{c['strategy']}@{c['lr']}")
    assert set(table["method"]) == {"averaged@0.001"}


def test_interval_text():
    a = {"mean": 1.24, "ci_low": -0.31, "ci_high": 2.7}
    assert stats.describe_interval(a) == "+1.2% (95% CI -0.3 to +2.7)"
    assert stats.describe_interval(a, unit="", decimals=2) == "+1.24 (95% CI -0.31 to +2.70)"


@given(st.floats(-10, 10), st.floats(0, 10))
def test_sign_of_an_interval_says_which_side_of_zero_it_lies_on(low, width):
    row = {"ci_low": low, "ci_high": low + width}
    side = stats.sign_of(row)
    assert side == (1 if low > 0 else -1 if low + width < 0 else 0)
    assert stats.sign_of({"ci_low": -low - width, "ci_high": -low}) == -side  # the mirror interval


def test_split_seeds_gives_disjoint_tuning_and_reporting_seeds():
    assert config.split_seeds(5, 3) == ([5], [6, 7, 8])
    assert config.split_seeds(0, 10, tuning=2) == ([0, 1], list(range(2, 12)))
    assert config.split_seeds(3, 2, tuning=0) == ([], [3, 4])
    with pytest.raises(ValueError, match="at least 2 reporting seeds"):
        config.split_seeds(0, 1)
    with pytest.raises(TypeError, match="SEED must be a whole number >= 0 .*not '2'"):
        config.split_seeds("2", 3)
    ties = config.tie_seeds(0, 2)  # neither tuning nor reporting seeds, whatever the number of reporting seeds
    assert len(set(ties)) == 2 and all(not set(ties) & {*sum(config.split_seeds(0, n, tuning=2), [])}
                                       for n in (2, 10, 40, 998))
    with pytest.raises(ValueError, match="1000 at most together"):
        config.split_seeds(0, 999, tuning=2)  # the reporting seeds would reach the tie seeds


def test_resolution_states_the_half_widths_of_paired_intervals():
    rng = np.random.default_rng(0)
    wide = pd.DataFrame({"base": rng.normal(size=10), "a": rng.normal(size=10), "b": rng.normal(size=10)})
    table = stats.paired_differences(wide, reference="base")
    assert np.allclose(table.half_width, (table.ci_high - table.ci_low) / 2) and (table.half_width > 0).all()
    text = stats.resolution(table)
    low, high = sorted(table.half_width)
    assert text.startswith("Resolution: with 10 paired seeds") and f"{low:.1f} to {high:.1f} points" in text
    assert "are 1.0 points" in stats.resolution(pd.DataFrame({"ci_low": [-1.0, 0.0], "ci_high": [1.0, 2.04], "n": [3, 3]}))
    assert "with 3 to 5 paired seeds" in stats.resolution(pd.DataFrame({"ci_low": [-1.0, 0.0], "ci_high": [1.0, 2.0],
                                                                       "n": [3, 5]}))
    with pytest.raises(ValueError, match="two paired seeds"):
        stats.resolution(stats.paired_differences(wide.iloc[:1], reference="base"))


def test_settings_pick_the_size_and_apply_overrides():
    table = {"smoke": {"seeds": 2, "epochs": 1}, "small": {"seeds": 3, "epochs": 5}}
    assert config.settings(table, "small") == {"seeds": 3, "epochs": 5}
    assert config.settings(table, "small", {"seeds": 2}) == {"seeds": 2, "epochs": 5}
    with pytest.raises(ValueError, match="'smoke', 'small'"):
        config.settings(table, "large")
    with pytest.raises(KeyError, match="lr"):
        config.settings(table, "smoke", {"lr": 1.0})


def test_a_run_can_be_given_steps_instead_of_epochs(tmp_path):
    result = experiments.run({**CONFIG, "epochs": None, "steps": 3}, tmp_path)
    assert result.cost["steps"] == 3 and len(result.history) == 3
    only_steps = {"dataset": "clusters", "size": "smoke", "steps": 5}  # steps without epochs means steps
    assert experiments.run(only_steps, tmp_path).cost["steps"] == 5
    assert config.config_key(only_steps) == config.config_key({**only_steps, "epochs": None})
    with pytest.raises(ValueError, match="give the number of epochs or of steps to train, one of the two"):
        experiments.train({**CONFIG, "steps": 3})


def test_paired_differences_are_seed_by_seed():
    wide = pd.DataFrame({"base": [1.0, 5.0, 9.0], "a": [2.0, 6.0, 10.0], "b": [0.0, 5.0, np.nan]}, index=[0, 1, 2])
    table = stats.paired_differences(wide, reference="base")
    assert list(table.index) == ["a", "b"]
    assert table.loc["a", "mean"] == table.loc["a", "ci_low"] == table.loc["a", "ci_high"] == 1.0  # always +1
    assert table.loc["b", "n"] == 2 and table.loc["b", "mean"] == -0.5  # the missing seed is left out
    unpaired = stats.confidence_interval(wide["a"])
    assert unpaired[2] - unpaired[1] > 0  # the seeds' spread that pairing removes


def test_pair_transfer_compares_each_pair_trained_alone_with_its_single_task_runs(tmp_path):
    suite = experiments.suite_for(CONFIG)
    table = experiments.pair_transfer(CONFIG, suite.tasks, seeds=[0, 1], cache_dir=tmp_path, progress=False)
    n = len(suite.tasks)
    assert len(table) == 2 * n * (n - 1) // 2 and table.pair.tolist() == list(range(n * (n - 1) // 2)) * 2
    row = table.iloc[0]
    weights = {t: 0.5 if t in (row["first"], row["second"]) else 0.0 for t in suite.task_names}
    pair_run = experiments.run({**CONFIG, "seed": 0, "strategy_kwargs": {"weights": weights}}, tmp_path)
    singles = [experiments.run(c, tmp_path) for c in experiments.single_task_configs({**CONFIG, "seed": 0},
                                                                                      [row["first"], row["second"]])]
    chosen = [t for t in suite.tasks if t.name in (row["first"], row["second"])]
    expected = metrics.delta_m({t.name: pair_run.metrics["test"][t.name] for t in chosen},
                               {t.name: r.metrics["test"][t.name] for t, r in zip(chosen, singles)}, chosen)
    assert row["gain"] == pytest.approx(expected)
    assert len(list(tmp_path.glob("*.json"))) == 2 * (n * (n - 1) // 2 + n)  # the check above trained nothing new


def test_pair_transfer_read_at_the_chosen_step_scores_each_run_where_its_validation_error_was_lowest(tmp_path):
    two = {**CONFIG, "epochs": 3, "eval_every": 1, "data": {"angle": 90, "n_tasks": 2, "n_clusters": 2}}
    suite = experiments.suite_for(two)
    table = experiments.pair_transfer(two, suite.tasks, seeds=[0], cache_dir=tmp_path, progress=False, at="chosen")
    weights = {t: 0.5 for t in suite.task_names}
    pair_run = experiments.run({**two, "seed": 0, "strategy_kwargs": {"weights": weights}}, tmp_path)
    singles = [experiments.run(c, tmp_path) for c in experiments.single_task_configs({**two, "seed": 0},
                                                                                      suite.task_names)]
    lowest = [r.metrics_at(r.chosen_step(higher_is_better=False))["test"] for r in singles]
    expected = metrics.delta_m(pair_run.scores("chosen", higher_is_better=False)["test"],
                               {t.name: scores[t.name] for t, scores in zip(suite.tasks, lowest)}, suite.tasks)
    assert table.gain.tolist() == [pytest.approx(expected)]
    with pytest.raises(ValueError, match="eval_every"):
        experiments.pair_transfer(CONFIG, suite.tasks, seeds=[0], cache_dir=tmp_path, at="chosen")


def test_pair_transfer_among_some_tasks_trains_their_pairs_on_the_whole_network(tmp_path):
    suite = experiments.suite_for(CONFIG)
    among = suite.task_names[1:3]
    table = experiments.pair_transfer(CONFIG, suite.tasks, seeds=[0], cache_dir=tmp_path, progress=False, among=among)
    assert table[["first", "second"]].values.tolist() == [among]
    weights = {t: 0.5 if t in among else 0.0 for t in suite.task_names}  # every head of the suite's network
    experiments.run({**CONFIG, "seed": 0, "strategy_kwargs": {"weights": weights}}, tmp_path)
    assert len(list(tmp_path.glob("*.json"))) == 1 + 2  # the pair and its two single-task runs: nothing new
    with pytest.raises(ValueError, match=r"among names \['nope'\], which are not tasks of the suite"):
        experiments.pair_transfer(CONFIG, suite.tasks, seeds=[0], cache_dir=tmp_path, among=["nope"])


def test_confidence_interval_refuses_values_that_are_not_finite():
    with pytest.raises(ValueError, match="1 of the 3 values are NaN or infinite"):
        stats.confidence_interval([1.0, float("nan"), 2.0])


@pytest.mark.parametrize("setting, value, allowed", [
    ("lr", 0, "a finite number > 0"), ("lr", float("nan"), "a finite number > 0"), ("lr", "0.01", "a finite number > 0"),
    ("weight_decay", -1, "a finite number >= 0"), ("epochs", 1.5, "a whole number >= 1"), ("epochs", 0, "a whole"),
    ("steps", -3, "a whole number >= 1"), ("batch_size", 0, "a whole number >= 1"), ("seed", "2", "a whole number"),
    ("seed", True, "a whole number"), ("eval_at", [0, 5], "a list of whole numbers >= 1"),
    ("strategy_kwargs", None, "a mapping"),
])
def test_a_bad_run_setting_is_refused_before_any_work_naming_it(setting, value, allowed, tmp_path):
    with pytest.raises(ValueError, match=rf"Run setting {setting}=.* is not allowed: {setting} must be {allowed}"):
        experiments.run_grid([{**CONFIG, setting: value}], tmp_path, progress=False)
    assert not list(tmp_path.iterdir())  # nothing trained, nothing written


def test_a_run_needs_epochs_or_steps():
    with pytest.raises(ValueError, match="give the number of epochs or of steps"):
        config.complete({"epochs": None})


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(config.DEFAULTS)),
                       st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=True),
                                 st.text(max_size=3), st.lists(st.integers(-1, 3), max_size=2))))
def test_the_settings_check_gives_a_valid_configuration_or_a_clear_error(described):
    try:
        complete = config.complete(described)
    except (ValueError, KeyError, TypeError) as error:
        assert "Run setting" in str(error) or "Unknown configuration" in str(error)
    else:
        assert all(check(complete[key]) for key, (check, _) in config.RULES.items())


TABLE = {"small": {"seeds": 10, "lrs": [1e-3], "beta": 1e-2, "selective": {"warmup": 50}, "name": "x"}}


@pytest.mark.parametrize("overrides, error, message", [
    ({"seeds": 0}, ValueError, r"OVERRIDES\['seeds'\] = 0: give at least 2"),
    ({"seeds": "2"}, TypeError, r"OVERRIDES\['seeds'\] = '2' is a str; this setting is a whole number, like 10"),
    ({"seeds": 2.5}, TypeError, "is a number; this setting is a whole number"),
    ({"lrs": 1e-3}, TypeError, "is a number; this setting is a list"),
    ({"beta": float("inf")}, ValueError, "give a finite number"),
    ({"selective": {"warmup": -1}}, ValueError, r"OVERRIDES\['selective.warmup'\] = -1: give at least 0"),
])
def test_chapter_overrides_of_the_wrong_kind_or_range_are_refused(overrides, error, message):
    with pytest.raises(error, match=message):
        config.settings(TABLE, "small", overrides)


def test_chapter_overrides_of_the_right_kind_replace_the_settings():
    chosen = config.settings(TABLE, "small", {"seeds": 3, "beta": 1, "selective": {"warmup": 0}})
    assert chosen["seeds"] == 3 and chosen["beta"] == 1 and chosen["selective"] == {"warmup": 0}


def test_step_times_time_every_method_in_this_process_on_the_same_batches(tmp_path, monkeypatch):
    monkeypatch.setenv("MTLUTILS_CACHE", str(tmp_path))
    methods = {"averaged": CONFIG, "alternated": {**CONFIG, "strategy": "alternated"}}
    times = experiments.step_times(methods, steps=2, rounds=3, skip=1)
    assert list(times.index) == list(methods) and (times > 0).all() and times.name == "ms per step"
    assert not list(tmp_path.iterdir())  # nothing trained into the cache
    with pytest.raises(ValueError, match="steps >= 1"):
        experiments.step_times(methods, steps=0)
