import dataclasses
import os

import pytest
import torch

from mtlutils import data, models, runtime, strategies, train
from mtlutils.tasks import Split
from mtlutils.strategies import Alternated, Averaged, NonFiniteLossError, adam, sgd
from mtlutils.runtime import resolve_device
from mtlutils.train import fit

TIMING = ["seconds"]


def _fit(suite, seed=0, **kwargs):
    net = models.for_suite(suite, seed=seed)
    return net, fit(net, suite, Averaged(optimizer_factory=adam(3e-3)), batch_size=32, seed=seed, progress=False, **kwargs)


def test_same_seed_gives_an_identical_history(suite):
    _, a = _fit(suite, epochs=2, gradient_cosine_every=3)
    _, b = _fit(suite, epochs=2, gradient_cosine_every=3)
    assert a.history.drop(columns=TIMING).equals(b.history.drop(columns=TIMING))
    assert a.metrics == b.metrics
    assert all((x == y).all() for (_, x), (_, y) in zip(a.cosines, b.cosines))
    _, c = _fit(suite, seed=1, epochs=2)
    assert not a.history.drop(columns=TIMING).equals(c.history.drop(columns=TIMING))


def test_history_has_a_row_per_step_and_the_run_is_costed(suite):
    _, run = _fit(suite, steps=7, eval_every=3)
    assert list(run.history.step) == list(range(7))
    assert {f"loss_{n}" for n in suite.task_names} <= set(run.history.columns)
    assert run.cost["steps"] == 7 and run.cost["forward_passes"] == 7 and run.cost["optimizer_steps"] == 7
    assert sorted(run.evals.step.unique()) == [3, 6, 7]
    assert set(run.metrics) == {"val", "test"} and set(run.metrics["test"]) == set(suite.task_names)
    assert run.groups[0] == [tuple(suite.task_names)]


def test_training_lowers_the_training_loss(suite):
    _, run = _fit(suite, epochs=15)
    losses = run.history.filter(like="loss_").mean(axis=1)
    assert losses.iloc[-4:].mean() < losses.iloc[:4].mean()


def test_resuming_from_a_checkpoint_gives_the_uninterrupted_run(suite, tmp_path):
    _, whole = _fit(suite, epochs=3)
    path = tmp_path / "run.ckpt"
    net = models.for_suite(suite, seed=0)
    fit(net, suite, Averaged(optimizer_factory=adam(3e-3)), epochs=2, batch_size=32, progress=False, checkpoint=path)
    assert path.exists()
    net = models.for_suite(suite, seed=0)
    resumed = fit(net, suite, Averaged(optimizer_factory=adam(3e-3)), epochs=3, batch_size=32, progress=False, checkpoint=path)
    assert resumed.history.drop(columns=TIMING).equals(whole.history.drop(columns=TIMING))
    assert resumed.metrics == whole.metrics


def test_a_nan_loss_stops_training_naming_task_and_step(suite):
    suite.train.y["t2"][40] = float("nan")  # in the second batch of 32 when read in order
    with pytest.raises(NonFiniteLossError, match=r"task 't2' is nan at step \d+"):
        fit(models.for_suite(suite), suite, Averaged(), epochs=1, batch_size=32, progress=False)


def test_an_infinite_loss_is_caught_before_the_update(suite):
    suite.train.y["t0"][:] = float("inf")
    net = models.for_suite(suite)
    before = [p.detach().clone() for p in net.parameters()]
    with pytest.raises(NonFiniteLossError, match=r"'t0' is inf at step 0"):
        fit(net, suite, Averaged(), steps=3, batch_size=32, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))


@pytest.mark.parametrize("kwargs, match", [({}, "exactly one"), ({"epochs": 1, "steps": 1}, "exactly one"),
                                           ({"epochs": 1, "batch_size": 0}, "batch_size")])
def test_bad_arguments_are_explained(suite, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit(models.for_suite(suite), suite, strategies.Averaged(), progress=False, **kwargs)


def test_mean_metric_averages_a_metric_over_the_tasks(suite):
    run = fit(models.for_suite(suite), suite, Averaged(), epochs=1, progress=False)
    by_hand = sum(scores["mse"] for scores in run.metrics["val"].values()) / len(suite.tasks)
    assert run.mean_metric("mse", "val") == pytest.approx(by_hand)
    with pytest.raises(KeyError):
        run.mean_metric("accuracy")


def test_the_device_is_resolved_checked_and_recorded(suite):
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    net, run = _fit(suite, steps=3, device="cpu")
    assert run.device == "cpu" and all(p.device.type == "cpu" for p in net.parameters())
    with pytest.raises(ValueError, match="device must be 'auto', 'cpu', 'cuda'"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="torch sees no GPU on this machine"):
            _fit(suite, steps=1, device="cuda")


@pytest.mark.parametrize("strategy", [lambda: Averaged(), lambda: strategies.Aggregated("upgrad")])
def test_an_evaluation_along_the_way_is_that_of_the_shorter_run(suite, strategy):
    whole = fit(models.for_suite(suite, seed=1), suite, strategy(), steps=7, batch_size=32, seed=1, eval_at=[3, 5],
                progress=False)
    short = fit(models.for_suite(suite, seed=1), suite, strategy(), steps=3, batch_size=32, seed=1, progress=False)
    assert sorted(set(whole.evals.step)) == [3, 5, 7]
    assert whole.mean_metric_at(3, "mse") == short.mean_metric("mse")
    assert whole.mean_metric_at(7, "mse") == whole.mean_metric("mse")
    with pytest.raises(KeyError, match=r"after \[3, 5, 7\] steps"):
        whole.mean_metric_at(4, "mse")


def _checkpointed(suite, path, strategy, epochs):
    return fit(models.for_suite(suite), suite, strategy, epochs=epochs, batch_size=128, progress=False, checkpoint=path)


@pytest.mark.parametrize("other, named", [
    (lambda: Alternated(optimizer_factory=adam(1e-3)), "strategy: Averaged"),
    (lambda: Averaged(optimizer_factory=sgd(1e-3)), "optimizer: FusedAdam"),
    (lambda: Averaged(optimizer_factory=adam(3e-3)), "optimizer settings"),
    (lambda: Averaged(weights={"t0": 1.0, "t1": 0.0, "t2": 0.0, "t3": 0.0}, optimizer_factory=adam(1e-3)),
     "strategy settings"),
])
def test_a_checkpoint_of_another_run_is_refused_naming_both(suite, tmp_path, other, named):
    path = tmp_path / "ckpt"
    _checkpointed(suite, path, Averaged(optimizer_factory=adam(1e-3)), epochs=2)
    saved = path.read_bytes()
    with pytest.raises(ValueError, match=rf"checkpoint .*ckpt belongs to another run \(.*{named}.*\); this run has"):
        _checkpointed(suite, path, other(), epochs=3)
    assert path.read_bytes() == saved  # nothing overwritten


def test_a_damaged_checkpoint_says_so_and_where(suite, tmp_path):
    path = tmp_path / "ckpt"
    _checkpointed(suite, path, Averaged(), epochs=2)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"the checkpoint .*ckpt is damaged and cannot be read .*delete it"):
        _checkpointed(suite, path, Averaged(), epochs=3)


def test_a_checkpoint_resumes_the_run_that_wrote_it(suite, tmp_path):
    path = tmp_path / "ckpt"
    whole = fit(models.for_suite(suite), suite, Averaged(), epochs=3, batch_size=128, progress=False)
    _checkpointed(suite, path, Averaged(), epochs=2)
    resumed = _checkpointed(suite, path, Averaged(), epochs=3)
    assert resumed.history.drop(columns="seconds").equals(whole.history.drop(columns="seconds"))


def test_a_network_built_for_other_inputs_is_refused_naming_both_shapes(suite):
    other = data.load("clusters", "smoke", n_tasks=4, n_clusters=2, dim=8)
    with pytest.raises(ValueError, match=r"built for inputs of shape \(8,\), but suite 'clusters' has inputs of "
                                         r"shape \(16,\)"):
        fit(models.for_suite(other), suite, Averaged(), epochs=1, progress=False)
    bare = models.for_suite(other)
    bare.input_shape = None  # a network built by hand does not say what it takes
    with pytest.raises(ValueError, match=r"cannot take suite 'clusters'\'s inputs of shape \(16,\)"):
        fit(bare, suite, Averaged(), epochs=1, progress=False)


def test_a_head_that_does_not_fit_its_targets_is_refused_naming_both_shapes(suite):
    wide = {**suite.train.y, "t0": suite.train.y["t0"][:, None].repeat(1, 3)}  # three targets per sample for t0
    odd = dataclasses.replace(suite, train=Split(suite.train.x, wide))
    with pytest.raises(ValueError, match=r"head of task 't0' gives predictions of shape \(1,\) per sample, which "
                                         r"its loss cannot compare with targets of shape \(3,\)"):
        fit(models.for_suite(suite), odd, Averaged(), epochs=1, progress=False)


def test_the_shape_check_leaves_the_network_as_it_was(suite):
    net = models.for_suite(suite)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    train.check_fits(net, suite, suite.tasks, torch.device("cpu"))
    assert net.training and all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_a_run_on_a_gpu_uses_deterministic_algorithms_and_one_on_the_cpu_changes_nothing():
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"  # set on import, before any product on a GPU
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
              torch.backends.cudnn.benchmark)
    try:
        assert runtime.deterministic(torch.device("cpu")) == torch.device("cpu")
        assert (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
                torch.backends.cudnn.benchmark) == before
        runtime.deterministic(torch.device("cuda"))
        assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[1:]
