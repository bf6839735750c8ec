"""Everything a grid is given is checked in the calling process before any run trains, and a grid whose runs are
all cached needs no worker and no scheduler."""

import os
import time

import numpy as np
import pytest

from mtlutils import config, experiments, models, strategies, workers
from mtlutils.train import fit

CONFIG = dict(dataset="clusters", size="smoke", epochs=1, batch_size=64, data={"angle": 90})


@pytest.fixture
def no_training(monkeypatch):
    """Fails the test if any run is trained."""
    monkeypatch.setattr(experiments, "_train_job", lambda *a, **k: pytest.fail("a run was trained"))


@pytest.mark.parametrize("kwargs, named", [
    ({"strategy": "averaged", "strategy_kwargs": {"weights": "uniform"}}, "weights"),
    ({"strategy": "aggregated", "strategy_kwargs": {"aggregator": None}}, "aggregator"),
    ({"strategy": "random_groups", "strategy_kwargs": {"group_size": "2"}}, "group_size"),
    ({"strategy": "selective_groups", "strategy_kwargs": {"beta": [0.1]}}, "beta"),
    ({"strategy": "averaged", "strategy_kwargs": {"weight": {"a": 1.0}}}, "weight"),
])
def test_a_strategy_option_of_the_wrong_kind_is_refused_before_any_run(kwargs, named, tmp_path, no_training):
    with pytest.raises((TypeError, ValueError), match=rf"strategy_kwargs=.*{named}.*does not fit strategy"):
        experiments.run_grid([CONFIG, {**CONFIG, **kwargs}], tmp_path, progress=False)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("variable, value", [
    ("MTLUTILS_SCHEDULER", "my-cluster"), ("MTLUTILS_SCHEDULER", "tcp://127.0.0.1"),
    ("MTLUTILS_WORKERS", "two"), ("MTLUTILS_WORKERS", "0"), ("MTLUTILS_DEVICE", "gpu0"),
    ("MTLUTILS_DEVICE", "cuda:7"),
])
def test_a_malformed_environment_variable_is_refused_naming_it(variable, value, tmp_path, monkeypatch, no_training):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=variable):
        experiments.run_grid([CONFIG], tmp_path, progress=False)
    assert not list(tmp_path.glob("*.json"))


def test_an_unwritable_cache_is_refused_before_any_run(tmp_path, no_training):
    blocked = tmp_path / "a file"
    blocked.write_text("not a folder")
    with pytest.raises(PermissionError, match=r"run cache .*a file/runs cannot be written.*MTLUTILS_CACHE"):
        experiments.run_grid([CONFIG], blocked / "runs", progress=False)


def test_numpy_numbers_train_and_share_the_key_of_plain_ones(tmp_path, monkeypatch):
    plain = {**CONFIG, "seed": 3, "batch_size": 32, "lr": 3e-3}
    numpy = {**CONFIG, "seed": np.int64(3), "batch_size": np.int32(32), "lr": np.float64(3e-3)}
    assert config.config_key(numpy) == config.config_key(plain)
    assert type(config.complete(numpy)["seed"]) is int
    first = experiments.run(numpy, tmp_path)
    monkeypatch.setattr(experiments, "_train_job", lambda *a, **k: pytest.fail("trained again"))
    assert experiments.run(plain, tmp_path).metrics == first.metrics
    seeds = experiments.grid({**CONFIG, "batch_size": 32, "lr": 3e-3}, seed=np.arange(3, 4))
    assert experiments.run_grid(seeds, tmp_path, progress=False)[0].metrics == first.metrics


def test_a_fully_cached_grid_needs_no_worker_and_no_scheduler(tmp_path, monkeypatch):
    monkeypatch.setenv("MTLUTILS_WORKERS", "1")
    grid = experiments.grid(CONFIG, seed=[0, 1])
    trained = experiments.run_grid(grid, tmp_path, progress=False)
    monkeypatch.setenv("MTLUTILS_SCHEDULER", "tcp://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("MTLUTILS_WORKERS", "many")
    start = time.perf_counter()
    again = experiments.run_grid(grid, tmp_path, progress=True)
    assert time.perf_counter() - start < 10
    assert [r.metrics for r in again] == [r.metrics for r in trained]
    assert not workers._clients


def test_mtlutils_device_means_the_same_in_fit_and_in_a_grid(suite, tmp_path, monkeypatch, no_training):
    monkeypatch.setenv("MTLUTILS_DEVICE", "cpu")
    assert config.resolve(CONFIG)["device"] == "cpu"
    run = fit(models.for_suite(suite), suite, strategies.Averaged(), steps=2, progress=False)
    assert run.device == "cpu"
    monkeypatch.setenv("MTLUTILS_DEVICE", "cuda:7")  # no machine here has eight GPUs
    # the key names the device the runs are to train on (a Dask cluster's GPU workers may have it) ...
    assert config.resolve(CONFIG)["device"] == "cuda:7"
    # ... and where they would train here, the grid and fit both refuse it, naming the variable
    for call in (lambda: experiments.run_grid([CONFIG], tmp_path, progress=False),
                 lambda: fit(models.for_suite(suite), suite, strategies.Averaged(), steps=2, progress=False)):
        with pytest.raises(ValueError, match="MTLUTILS_DEVICE='cuda:7' cannot be used"):
            call()


def test_temporary_files_of_killed_writes_are_cleaned_up(tmp_path):
    stale, fresh = tmp_path / ".abc.json.123.0f.tmp", tmp_path / ".def.json.456.1e.tmp"
    for path in (stale, fresh):
        path.write_text("half a run")
    hours_ago = time.time() - 2 * 3600
    os.utime(stale, (hours_ago, hours_ago))
    experiments.run(CONFIG, tmp_path)
    assert not stale.exists() and fresh.exists()  # a fresh one may be another process's write in progress
