"""Runs trained as one stacked network give what each run gives alone.

The tolerance, stated: in float64 a stacked member and the same run alone agree to 1e-9 (they compute the same
updates; only the order of float operations differs). In float32 they agree to rounding, which Adam amplifies:
its step m / sqrt(v) is about the sign of a gradient, so where a gradient is near 0 a last-bit difference flips a
coordinate's step by the whole learning rate. The stacked forward pass is such a last-bit difference (a grouped
convolution runs LeNet's convolutions through another algorithm), and it moves a run no further than switching
torch's own convolution algorithm does (``test_the_float32_drift_is_that_of_another_convolution_algorithm``).
Two aggregators are held to 1e-5: Nash-MTL and FairGrad solve for their weights iteratively, to a tolerance, and a
last-bit difference in the Jacobian moves where the solver stops within it.
"""

import dataclasses

import numpy as np
import pytest
import torch

from mtlutils import config, data, experiments, models, stacked, stacked_members, workers
from mtlutils.strategies import AGGREGATORS, SCALARIZERS, SPLIT_WEIGHTINGS, NonFiniteLossError
from mtlutils.tasks import Split
from mtlutils.train import fit

FAMILIES = {  # one configuration of each family that stacks, with what each member changes
    "averaged, weights": dict(strategy="averaged", strategy_kwargs={"weights": {"t0": 0.7, "t1": 0.2, "t2": 0.1}}),
    "averaged, gradient cosines": dict(strategy="averaged", gradient_cosine_every=2),
    "aggregated, gradient cosines": dict(strategy="aggregated", gradient_cosine_every=3,
                                         strategy_kwargs={"aggregator": "upgrad"}),
    "single task": dict(strategy="single_task", strategy_kwargs={"task": "t1"}),
    "alternated, shuffled": dict(strategy="alternated", strategy_kwargs={"order": "shuffle"}),
    "random groups, redrawn": dict(strategy="random_groups", strategy_kwargs={"group_size": 2, "redraw": "epoch"}),
    "count-matched groups": dict(strategy="count_matched_groups", strategy_kwargs={"counts": [1, 3, 2]}),
    "random groups, mean, SGD": dict(strategy="random_groups", optimizer="sgd",
                                     strategy_kwargs={"group_size": 2, "group_loss": "mean"}),
    "alternated, an optimizer per group": dict(strategy="alternated", strategy_kwargs={
        "order": "shuffle", "optimizer_per_group": True}),
    "random groups, an optimizer per group": dict(strategy="random_groups", strategy_kwargs={
        "group_size": 2, "redraw": "step", "optimizer_per_group": True}),
    "random groups, moving idle heads": dict(strategy="random_groups", strategy_kwargs={
        "group_size": 2, "redraw": "step", "idle_heads": "moving"}),
    "alternated, moving idle heads": dict(strategy="alternated", strategy_kwargs={"idle_heads": "moving"}),
    "affinity probe, TAG's lookahead": dict(strategy="affinity_probe", strategy_kwargs={
        "beta": 0.1, "lookahead_every": 2, "lookahead_lr": 0.05}),
    "affinity probe, an optimizer per group": dict(strategy="affinity_probe", strategy_kwargs={
        "optimizer_per_group": True}),
    "selective groups": dict(strategy="selective_groups", strategy_kwargs={"warmup": 2, "beta": 0.1}),
    "selective groups, as coded": dict(strategy="selective_groups", strategy_kwargs={
        "warmup": 1, "beta": 0.2, "attribution": "as_coded", "measure_last": False, "regroup_every": 2}),
    **{f"scalarized, {name}": dict(strategy="scalarized", strategy_kwargs={"scalarizer": name})
       for name in SCALARIZERS},
    **{f"aggregated, {name}": dict(strategy="aggregated", strategy_kwargs={"aggregator": name})
       for name in AGGREGATORS},
    **{f"split batch, {name}": dict(strategy="split_batch_weighted", strategy_kwargs={"weighting": name})
       for name in SPLIT_WEIGHTINGS},
}
ALONE = dict(strategy="affinity_probe",  # trains alone: its lookahead takes its own optimizer's trial step
             strategy_kwargs={"lookahead_every": 2, "lookahead": "optimizer"})
MEMBERS = [dict(seed=0, lr=3e-3, weight_decay=0.0), dict(seed=1, lr=1e-2, weight_decay=1e-2),
           dict(seed=2, lr=3e-3, weight_decay=0.0)]


def double(suite):
    return dataclasses.replace(suite, **{name: Split(split.x.double(), {t: y.double() for t, y in split.y.items()})
                                         for name, split in (("train", suite.train), ("val", suite.val),
                                                             ("test", suite.test))})


def members(suite, configs, dtype):
    """The completed configurations, and a fresh network and strategy for each."""
    cs = [config.resolve(c) for c in configs]
    return cs, [(models.for_suite(suite, seed=c["seed"]).to(dtype), config.build_strategy(c)) for c in cs]


def trained_alone(suite, configs, dtype=torch.float64):
    cs, built = members(suite, configs, dtype)
    return [fit(net, suite, strategy, epochs=c["epochs"], batch_size=c["batch_size"], seed=c["seed"],
                eval_at=c["eval_at"], gradient_cosine_every=c["gradient_cosine_every"], progress=False) for c, (net, strategy) in zip(cs, built)]


def trained_stacked(suite, configs, dtype=torch.float64):
    cs, built = members(suite, configs, dtype)
    nets, strategies = zip(*built)
    return stacked.fit_members(nets, [suite] * len(nets), strategies, cs, torch.device("cpu"))


def alone_and_stacked(suite, configs, dtype=torch.float64):
    """Each configuration trained alone by ``fit``, and all of them as one stacked network."""
    return trained_alone(suite, configs, dtype), trained_stacked(suite, configs, dtype)


def largest_difference(a, b) -> float:
    assert list(a.history.groups) == list(b.history.groups)
    passes = ["forward_passes", "backward_passes", "optimizer_steps"]
    assert (a.history[passes].to_numpy() == b.history[passes].to_numpy()).all()
    assert list(a.evals.step) == list(b.evals.step) and a.cost["steps"] == b.cost["steps"]
    losses = np.abs(a.history.filter(like="loss").to_numpy() - b.history.filter(like="loss").to_numpy()).max()
    assert [step for step, _ in a.affinity] == [step for step, _ in b.affinity]
    assert [step for step, _ in a.cosines] == [step for step, _ in b.cosines]
    cosines = max((np.abs(x - y).max() for (_, x), (_, y) in zip(a.cosines, b.cosines)), default=0.0)
    affinity = max((np.abs(x - y).max() for (_, x), (_, y) in zip(a.affinity, b.affinity)), default=0.0)
    assert a.measurements.keys() == b.measurements.keys()  # a scalarizer's weights, TAG's lookahead, step by step
    for name in a.measurements:
        assert [s for s, _ in a.measurements[name]] == [s for s, _ in b.measurements[name]]
    measured = max((np.abs(w - v).max() for name in a.measurements
                    for (_, w), (_, v) in zip(a.measurements[name], b.measurements[name])), default=0.0)
    return max(losses, affinity, cosines, measured, np.abs(a.evals.value.to_numpy() - b.evals.value.to_numpy()).max())


@pytest.fixture(scope="module")
def clusters64():
    return double(data.load("clusters", "smoke", n_tasks=3, n_clusters=2, angle=120))


SOLVED = {"aggregated, nashmtl": 1e-5, "aggregated, fairgrad": 1e-5}


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_stacks_to_the_runs_alone_in_float64(family, clusters64):
    base = dict(dataset="clusters", size="smoke", epochs=3, batch_size=64, eval_at=[5], **FAMILIES[family])
    alone, together = alone_and_stacked(clusters64, [{**base, **m} for m in MEMBERS])
    for a, b in zip(alone, together, strict=True):
        assert largest_difference(a, b) < SOLVED.get(family, 1e-9)


def test_members_on_data_drawn_for_their_own_seeds_stack_to_their_runs_alone():
    drawn = dict(n_tasks=3, n_clusters=2, angle=120)
    configs = [config.resolve(dict(dataset="clusters", size="smoke", epochs=2, batch_size=64, eval_at=[3],
                                   data=drawn, seed=seed, data_seed=None)) for seed in (0, 1, 2)]
    assert [c["data_seed"] for c in configs] == [0, 1, 2]  # None: the run's own seed
    suites = [double(data.load("clusters", "smoke", seed=c["data_seed"], **drawn)) for c in configs]
    assert not torch.equal(suites[0].train.x, suites[1].train.x)
    alone = [trained_alone(suite, [c])[0] for suite, c in zip(suites, configs)]
    built = [members(suite, [c], torch.float64)[1][0] for suite, c in zip(suites, configs)]
    nets, strategies = zip(*built)
    together = stacked.fit_members(nets, suites, strategies, configs, torch.device("cpu"))
    for a, b in zip(alone, together, strict=True):
        assert largest_difference(a, b) < 1e-9
    assert len(stacked.jobs(configs, 8)) == 1  # one job: the data seed is a member's own
    with pytest.raises(ValueError, match="differ in size"):
        smaller = double(data.load("clusters", "small", seed=0, **drawn))  # other splits sizes
        stacked.fit_members(nets[:2], [suites[0], smaller], strategies[:2], configs[:2], torch.device("cpu"))


def test_learning_rates_and_weight_decays_are_each_members_own(clusters64):
    base = dict(dataset="clusters", size="smoke", epochs=2, batch_size=64)
    members = [dict(seed=0, lr=lr, weight_decay=wd) for lr in (1e-3, 3e-2) for wd in (0.0, 0.1)]
    alone, together = alone_and_stacked(clusters64, [{**base, **m} for m in members])
    finals = [r.history.filter(like="loss").to_numpy()[-1] for r in together]
    assert len({tuple(f) for f in finals}) == 4  # four different runs from one seed
    for a, b in zip(alone, together):
        assert largest_difference(a, b) < 1e-9


def test_a_diverging_member_fails_alone_with_the_error_fit_gives(clusters64):
    base = dict(dataset="clusters", size="smoke", epochs=3, batch_size=64)
    configs = [{**base, "seed": 0}, {**base, "seed": 1, "lr": 1e200}, {**base, "seed": 2}]
    with pytest.raises(NonFiniteLossError) as expected:
        trained_alone(clusters64, configs[1:2])
    together = trained_stacked(clusters64, configs)
    assert isinstance(together[1], NonFiniteLossError) and str(together[1]) == str(expected.value)
    reference = trained_alone(clusters64, [configs[0], configs[2]])
    assert largest_difference(reference[0], together[0]) < 1e-9
    assert largest_difference(reference[1], together[2]) < 1e-9


@pytest.mark.parametrize("method", [dict(strategy="averaged"), FAMILIES["aggregated, upgrad"],
                                    FAMILIES["scalarized, uw"]], ids=["averaged", "upgrad", "uw"])
def test_the_float32_drift_is_that_of_another_convolution_algorithm(method):
    suite = data.load("multimnist", "smoke")
    configs = [dict(dataset="multimnist", size="smoke", epochs=2, batch_size=64, lr=3e-3, seed=s, **method)
               for s in (0, 1)]
    alone, together = alone_and_stacked(suite, configs, torch.float32)
    try:
        torch.backends.mkldnn.enabled = False
        other_algorithm = trained_alone(suite, configs[:1], torch.float32)
    finally:
        torch.backends.mkldnn.enabled = True
    drift = largest_difference(alone[0], other_algorithm[0])
    assert largest_difference(alone[0], together[0]) <= 2 * drift + 1e-6


def test_jobs_are_formed_from_the_grid_alone():
    base = dict(dataset="clusters", size="smoke", epochs=1)
    configs = [config.resolve(c) for c in [
        {**base, "seed": 0}, {**base, "seed": 1, "lr": 1e-2}, {**base, **ALONE},
        {**base, "seed": 2, "weight_decay": 0.1}, {**base, "epochs": 2}, {**base, "seed": 3}]]
    assert stacked.jobs(configs, 8) == [[0, 1, 3, 5], [2], [4]]
    assert stacked.jobs(configs, 2) == [[0, 1], [2], [3, 5], [4]]
    assert stacked.jobs(configs, 3) == [[0, 1], [2], [3, 5], [4]]  # two jobs of two, not three and one
    assert stacked.jobs(configs, 1) == [[i] for i in range(6)]


def test_a_grid_stacks_its_runs_and_caches_each_under_its_own_key(tmp_path, monkeypatch):
    monkeypatch.setenv("MTLUTILS_WORKERS", "1")
    base = dict(dataset="clusters", size="smoke", epochs=2)
    upgrad = {**base, "strategy": "aggregated", "strategy_kwargs": {"aggregator": "upgrad"}}
    grid = [*experiments.grid(base, seed=[0, 1], lr=[1e-3, 1e-2]), {**base, **ALONE},
            *experiments.grid(upgrad, seed=[0, 1]), {**base, **ALONE, "seed": 1}]
    monkeypatch.setenv("MTLUTILS_BATCH", "4")
    assert stacked.jobs([config.resolve(c) for c in grid], 4) == [[0, 1, 2, 3], [4], [5, 6], [7]]
    together = experiments.run_grid(grid, tmp_path, progress=False)
    assert sorted(p.name for p in tmp_path.glob("*.json")) == sorted(f"{config.config_key(c)}.json" for c in grid)
    monkeypatch.setenv("MTLUTILS_BATCH", "1")  # the stacked runs stand in for the runs alone
    monkeypatch.setattr(experiments, "_train_job", lambda *a, **k: pytest.fail("trained again"))
    assert [r.metrics for r in experiments.run_grid(grid, tmp_path, progress=False)] == [r.metrics for r in together]


def test_local_workers_give_the_serial_stacked_results_bit_for_bit(tmp_path, monkeypatch):
    grid = experiments.grid(dict(dataset="clusters", size="smoke", epochs=2, strategy="random_groups",
                                 strategy_kwargs={"group_size": 2}), seed=[0, 1, 2], lr=[1e-3, 1e-2])
    monkeypatch.setenv("MTLUTILS_BATCH", "4")
    runs = {}
    for count in ("1", "2"):
        monkeypatch.setenv("MTLUTILS_WORKERS", count)
        runs[count] = experiments.run_grid(grid, tmp_path / count, progress=False)
    workers.shutdown()
    for a, b in zip(runs["1"], runs["2"]):
        assert a.history.drop(columns="seconds").equals(b.history.drop(columns="seconds")) and a.metrics == b.metrics


@pytest.mark.parametrize("value", ["0", "many", "-2"])
def test_a_malformed_batch_variable_is_refused_before_any_run(value, tmp_path, monkeypatch):
    monkeypatch.setenv("MTLUTILS_BATCH", value)
    with pytest.raises(ValueError, match="MTLUTILS_BATCH must be a positive integer"):
        experiments.run_grid([dict(dataset="clusters", size="smoke", epochs=1)], tmp_path, progress=False)
    assert not list(tmp_path.glob("*.json"))


def test_a_job_too_large_for_the_devices_memory_names_the_batch_to_set(tmp_path, monkeypatch):
    monkeypatch.setenv("MTLUTILS_WORKERS", "1")
    monkeypatch.setenv("MTLUTILS_BATCH", "4")

    def out_of_memory(*args, **kwargs):  # what torch raises when a GPU's memory runs out
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(stacked_members.Members, "train_batch", out_of_memory)
    grid = experiments.grid(dict(dataset="clusters", size="smoke", epochs=1), seed=range(4))
    with pytest.raises(experiments.GridError, match=r"4 runs stacked as one network do not fit in the memory of "
                                                     r"cpu: set MTLUTILS_BATCH=2 or fewer"):
        experiments.run_grid(grid, tmp_path, progress=False)
