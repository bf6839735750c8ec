"""Every torchjd method for two tasks as a strategy: Aggregated (AGGREGATORS), Scalarized (SCALARIZERS) and
SplitBatchWeighted (SPLIT_WEIGHTINGS), checked by their properties on a two-task network."""

import numpy as np
import pytest
import torch
from torchjd import aggregation

from mtlutils import config, data, models
from mtlutils.strategies import (
    AGGREGATORS,
    NOT_APPLICABLE,
    SCALARIZERS,
    SPLIT_WEIGHTINGS,
    Aggregated,
    Scalarized,
    SplitBatchWeighted,
    adam,
    sgd,
)
from mtlutils.tasks import Split
from mtlutils.train import fit
from tests.same_runs import assert_same_run

pytestmark = pytest.mark.filterwarnings("ignore:You are solving a parameterized problem that is not DPP")

METHODS = [(kind, name, make) for kind, make, table in [("aggregated", Aggregated, AGGREGATORS),
                                                        ("scalarized", Scalarized, SCALARIZERS),
                                                        ("split", SplitBatchWeighted, SPLIT_WEIGHTINGS)]
           for name in table]
T = 2


@pytest.fixture
def two():
    return data.load("clusters", "smoke", n_tasks=T, n_clusters=2, angle=90)


def _batches(suite, n, batch_size=64):
    return [b for b, _ in zip(suite.train.batches(batch_size, torch.Generator().manual_seed(0)), range(n))]


def _params(net):
    return {name: p.detach().clone() for name, p in net.named_parameters()}


def _expected_passes(kind, name):
    if kind == "aggregated":
        return 1, T
    if kind == "scalarized":
        return (2 if name == "famo" else 1), 1
    return {"modo": (2, 2 * T), "sdmgrad": (3, 2 * T + 1)}[name]


@pytest.mark.parametrize("kind, name, make", METHODS, ids=[f"{k}-{n}" for k, n, _ in METHODS])
def test_every_method_trains_the_trunk_and_every_head_and_records_its_cost(two, kind, name, make):
    net = models.for_suite(two, seed=0)
    strategy = make(name, optimizer_factory=adam(1e-2))
    strategy.setup(net, two.tasks)
    before = _params(net)
    records = [strategy.step(net, batch) for batch in _batches(two, 4)]
    for parameter, value in net.named_parameters():
        assert torch.isfinite(value).all() and not torch.equal(value, before[parameter]), parameter
    for record in records:
        assert set(record.losses) == set(two.task_names) and all(np.isfinite(list(record.losses.values())))
        passes = (record.forward_passes, record.backward_passes, record.optimizer_steps)
        assert passes == (*_expected_passes(kind, name), 1)


@pytest.mark.parametrize("name", ["uw", "imtl_l"])
def test_learned_loss_weights_are_trained_with_the_network(two, name):
    net = models.for_suite(two)
    strategy = Scalarized(name)
    strategy.setup(net, two.tasks)
    learned = list(strategy.module.parameters())
    before = [p.detach().clone() for p in learned]
    for batch in _batches(two, 3):
        strategy.step(net, batch)
    held = strategy.optimizers["all"].param_groups[0]["params"]
    assert all(any(p is q for q in held) for p in learned)
    assert all(not torch.equal(p, b) for p, b in zip(learned, before))


def test_famo_learns_its_own_logits_after_the_step_from_one_more_forward_pass(two):
    net = models.for_suite(two)
    strategy = Scalarized("famo")
    run = fit(net, two, strategy, steps=3, batch_size=64, progress=False)
    assert run.cost["forward_passes"] == 2 * 3 and run.cost["backward_passes"] == 3
    (logits,) = strategy.module.parameters()
    assert (logits != 0).all()  # they start at zero
    held = strategy.optimizers["all"].param_groups[0]["params"]
    assert not any(p is logits for p in held) and len(held) == len(list(net.parameters()))


def test_dwa_weights_are_uniform_for_two_epochs_then_follow_the_loss_ratios(two):
    run = fit(models.for_suite(two), two, Scalarized("dwa"), epochs=4, batch_size=128, progress=False)
    epochs = run.history.epoch.to_numpy()
    weights = np.stack([w for _, w in run.measurements["task_weights"]])
    assert (weights[epochs < 2] == 1).all()
    later = weights[epochs >= 2]
    assert not (later == 1).all() and np.allclose(later.sum(axis=1), T)
    for epoch in (2, 3):  # fixed within an epoch: they depend on the two previous epochs only
        assert (weights[epochs == epoch] == weights[epochs == epoch][0]).all()
    assert not np.array_equal(weights[epochs == 2][0], weights[epochs == 3][0])


def _sgd_step_matches(net, reference, weights, losses_of, lr, weighted_heads):
    """``net`` took one SGD step from ``reference``: the trunk by sum_t w_t grad L_t, head t by grad L_t (by
    w_t grad L_t when ``weighted_heads``), times lr."""
    losses = losses_of(reference)
    trunk = list(reference.trunk.parameters())
    expected = torch.autograd.grad(sum(float(w) * l for w, l in zip(weights, losses)), trunk, retain_graph=True)
    for p, q, g in zip(net.trunk.parameters(), trunk, expected):
        torch.testing.assert_close(p, q - lr * g, rtol=1e-5, atol=1e-6)
    for name, w, loss in zip(reference.heads, weights, losses):
        loss = float(w) * loss if weighted_heads else loss
        head = list(reference.heads[name].parameters())
        for p, q, g in zip(net.heads[name].parameters(), head, torch.autograd.grad(loss, head, retain_graph=True)):
            torch.testing.assert_close(p, q - lr * g, rtol=1e-5, atol=1e-6)


def _part(batch, index):
    return Split(batch.x[index], {name: y[index] for name, y in batch.y.items()})


def _losses(net, suite, part):
    features = net.trunk(part.x)
    return [task.loss(net.heads[task.name](features), part.y[task.name]) for task in suite.tasks]


@pytest.mark.parametrize("name", list(SPLIT_WEIGHTINGS))
def test_split_batch_trunk_takes_the_weighted_gradient_and_each_head_its_own(two, name):
    net, reference = models.for_suite(two, seed=0), models.for_suite(two, seed=0)
    strategy = SplitBatchWeighted(name, optimizer_factory=sgd(0.1))
    strategy.setup(net, two.tasks)
    (batch,) = _batches(two, 1, batch_size=61)
    record = strategy.step(net, batch)
    weights = record.extra["task_weights"]
    assert weights.shape == (T,) and (weights >= 0).all() and weights.sum() == pytest.approx(1.0)
    parts = [_part(batch, index) for index in torch.arange(len(batch)).tensor_split(2 if name == "modo" else 3)]

    def losses_of(m):  # MoDo: the mean of the two halves' losses; SDMGrad: the third part's
        if name == "modo":
            return [(a + b) / 2 for a, b in zip(_losses(m, two, parts[0]), _losses(m, two, parts[1]))]
        return _losses(m, two, parts[2])

    _sgd_step_matches(net, reference, weights, losses_of, 0.1, weighted_heads=False)
    whole = [loss.item() for loss in _losses(reference, two, batch)]
    assert list(record.losses.values()) == pytest.approx(whole, rel=1e-5)


@pytest.mark.parametrize("name", ["stch", "geometric_mean"])
def test_the_recorded_task_weights_are_the_weights_of_the_step(two, name):
    net, reference = models.for_suite(two, seed=0), models.for_suite(two, seed=0)
    strategy = Scalarized(name, optimizer_factory=sgd(0.1))
    strategy.setup(net, two.tasks)
    (batch,) = _batches(two, 1)
    weights = strategy.step(net, batch).extra["task_weights"]
    assert weights[0] != weights[1]
    _sgd_step_matches(net, reference, weights, lambda m: _losses(m, two, batch), 0.1, weighted_heads=True)


def test_a_preference_given_as_a_list_is_used(two):
    net = models.for_suite(two)
    strategy = Scalarized("stch", {"weights": [1.0, 0.0]})
    strategy.setup(net, two.tasks)
    before = _params(net)
    record = strategy.step(net, two.train)
    assert record.extra["task_weights"][1] == 0
    assert all(torch.equal(p, before[f"heads.t1.{n}"]) for n, p in net.heads["t1"].named_parameters())


STATEFUL = {
    "scalarized-famo": lambda: Scalarized("famo", optimizer_factory=adam(1e-2)),
    "scalarized-uw": lambda: Scalarized("uw", optimizer_factory=adam(1e-2)),
    "scalarized-dwa": lambda: Scalarized("dwa", optimizer_factory=adam(1e-2)),
    "aggregated-gradvac": lambda: Aggregated("gradvac", optimizer_factory=adam(1e-2)),
    "split-modo": lambda: SplitBatchWeighted("modo", optimizer_factory=adam(1e-2)),
}


@pytest.mark.parametrize("make", STATEFUL.values(), ids=STATEFUL.keys())
def test_resuming_a_stateful_method_from_a_checkpoint_gives_the_uninterrupted_run(two, tmp_path, make):
    settings = dict(batch_size=256, progress=False)  # two steps an epoch
    whole = fit(models.for_suite(two), two, make(), epochs=3, **settings)
    path = tmp_path / "run.ckpt"
    fit(models.for_suite(two), two, make(), epochs=2, checkpoint=path, **settings)
    resumed = fit(models.for_suite(two), two, make(), epochs=3, checkpoint=path, **settings)
    assert_same_run(resumed, whole)


@pytest.mark.parametrize("make, kind, table", [(Aggregated, "aggregator", AGGREGATORS),
                                               (Scalarized, "scalarizer", SCALARIZERS),
                                               (SplitBatchWeighted, "weighting", SPLIT_WEIGHTINGS)])
def test_an_unknown_name_is_refused_with_the_valid_ones(make, kind, table):
    with pytest.raises(ValueError, match=f"unknown {kind} 'krum'; choose from {', '.join(table)}\\.$"):
        make("krum")


def test_arguments_a_method_does_not_take_are_explained(two):
    with pytest.raises(ValueError, match=r"scalarizer 'stch' does not accept the arguments \{'nu': 1\.0\}"):
        Scalarized("stch", {"nu": 1.0}).setup(models.for_suite(two), two.tasks)


@pytest.mark.parametrize("name, size", [("modo", 1), ("sdmgrad", 2)])
def test_a_batch_too_small_to_split_is_refused(two, name, size):
    net = models.for_suite(two)
    strategy = SplitBatchWeighted(name)
    strategy.setup(net, two.tasks)
    before = _params(net)
    (batch,) = _batches(two, 1, batch_size=size)
    with pytest.raises(ValueError, match=f"needs at least {size + 1} examples; got a batch of {size}"):
        strategy.step(net, batch)
    assert all(torch.equal(p, before[n]) for n, p in net.named_parameters())


@pytest.mark.parametrize("make", [lambda: Scalarized("uw"), lambda: SplitBatchWeighted("modo")])
def test_one_task_is_not_enough(make):
    one = data.load("clusters", "smoke", n_tasks=1, n_clusters=1)
    with pytest.raises(ValueError, match="needs at least 2 tasks; the suite has 1"):
        make().setup(models.for_suite(one), one.tasks)


def test_every_torchjd_aggregator_is_offered_or_said_not_to_apply():
    classes = set(aggregation.__all__) - {"Aggregator", "Weighting", "WeightedAggregator", "GramianWeightedAggregator"}
    # a weighting whose aggregator torchjd also exports is the same method
    methods = {c for c in classes if not (c.endswith("Weighting") and c.removesuffix("Weighting") in classes)}
    left_out = {"Krum", "TrimmedMean", "Sum", "Constant"}
    assert len(methods - left_out) == len(AGGREGATORS) + len(SPLIT_WEIGHTINGS)
    assert {"CRMOGMWeighting", "MoDoWeighting", "SDMGradWeighting"} <= methods
    assert set(NOT_APPLICABLE) == {"krum", "trimmed_mean", "sum", "constant"} and all(NOT_APPLICABLE.values())


def test_a_method_can_be_given_its_own_settings_beside_the_others():
    base = dict(dataset="multimnist", size="smoke", batch_size=64)
    overrides = {"excess_mtl": {"strategy_kwargs": {"aggregator_kwargs": {"n_warmup_steps": 30}}},
                 "sdmgrad": {"batch_size": 192}}
    methods = {label: c for family in config.torchjd_methods(base, overrides).values() for label, c in family.items()}
    plain = {label: c for family in config.torchjd_methods(base).values() for label, c in family.items()}
    assert methods["ExcessMTL"]["strategy_kwargs"] == {"aggregator": "excess_mtl",
                                                      "aggregator_kwargs": {"n_warmup_steps": 30}}
    assert methods["SDMGrad"]["batch_size"] == 192 and methods["SDMGrad"]["strategy"] == "split_batch_weighted"
    assert {k: v for k, v in methods.items() if k not in ("ExcessMTL", "SDMGrad")} == {
        k: v for k, v in plain.items() if k not in ("ExcessMTL", "SDMGrad")}
    with pytest.raises(KeyError, match="not torchjd methods"):
        config.torchjd_methods(base, {"adam": {}})
