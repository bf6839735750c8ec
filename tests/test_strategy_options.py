"""The options a strategy is made with: another kind is refused at once, naming the strategy, the option, the value
and what it takes; numpy numbers count as numbers; every torchjd method has a label or a reason to go without."""

import re

import numpy as np
import pytest
import torch
from torchjd.aggregation import UPGrad

from mtlutils import data, models
from mtlutils.strategies import (
    AGGREGATOR_LABELS,
    AGGREGATORS,
    COVERED_BY_AVERAGED,
    SCALARIZER_LABELS,
    SCALARIZERS,
    SPLIT_WEIGHTING_LABELS,
    SPLIT_WEIGHTINGS,
    TORCHJD_FAMILIES,
    AffinityProbe,
    Aggregated,
    Alternated,
    Averaged,
    CountMatchedGroups,
    GroupedUpdates,
    RandomGroups,
    Scalarized,
    SelectiveGroups,
    SingleTask,
    SplitBatchWeighted,
    adam,
)

WRONG_KINDS = [
    (Averaged, "weights", "uniform"),
    (Averaged, "weights", [0.5, 0.5]),
    (Averaged, "weights", {0: 0.5, 1: 0.5}),
    (Averaged, "optimizer_factory", "adam"),
    (Averaged, "optimizer_factory", adam),
    (SingleTask, "task", 0),
    (Aggregated, "aggregator", None),
    (Aggregated, "aggregator", 3),
    (Aggregated, "aggregator", Averaged),
    (GroupedUpdates, "group_loss", None),
    (GroupedUpdates, "optimizer_per_group", "yes"),
    (Alternated, "optimizer_per_group", "yes"),
    (Alternated, "optimizer_per_group", 1),
    (Alternated, "order", 0),
    (Alternated, "idle_heads", True),
    (RandomGroups, "group_size", 2.0),
    (RandomGroups, "group_size", True),
    (RandomGroups, "group_size", "2"),
    (CountMatchedGroups, "counts", 3),
    (CountMatchedGroups, "counts", "22"),
    (CountMatchedGroups, "counts", {2: 1}),
    (SelectiveGroups, "beta", "x"),
    (SelectiveGroups, "beta", None),
    (SelectiveGroups, "warmup", 1.5),
    (SelectiveGroups, "regroup_every", "10"),
    (SelectiveGroups, "measure_last", "no"),
    (SelectiveGroups, "attribution", None),
    (AffinityProbe, "beta", "x"),
    (AffinityProbe, "lookahead_every", 2.5),
    (AffinityProbe, "lookahead_lr", "fast"),
    (Scalarized, "scalarizer", None),
    (Scalarized, "scalarizer_kwargs", [1]),
    (Scalarized, "scalarizer_kwargs", {1: 2.0}),
    (SplitBatchWeighted, "weighting", 2),
    (SplitBatchWeighted, "weighting_kwargs", "gamma=0.1"),
]
REQUIRED = {RandomGroups: {"group_size": 2}, CountMatchedGroups: {"counts": [2]}, SingleTask: {"task": "t0"}}


@pytest.mark.parametrize("make, option, value", WRONG_KINDS,
                         ids=[f"{m.__name__}-{o}-{getattr(v, '__name__', repr(v))}" for m, o, v in WRONG_KINDS])
def test_an_option_of_another_kind_is_refused_when_the_strategy_is_made(make, option, value):
    with pytest.raises(TypeError) as refused:
        make(**{**REQUIRED.get(make, {}), option: value})
    message = str(refused.value)
    assert message.startswith(f"{make.__name__}: {option} must be ") and message.endswith(f"; got {value!r}.")


@pytest.mark.parametrize("make, option, value", [
    (Averaged, "weights['t0']", {"t0": "half", "t1": 0.5}),
    (CountMatchedGroups, "counts[1]", [2, 1.5]),
    (CountMatchedGroups, "counts[0]", [np.float64(2.0)]),
])
def test_an_entry_of_another_kind_is_refused_by_its_place(make, option, value):
    with pytest.raises(TypeError, match=re.escape(f"{make.__name__}: {option} must be a")):
        make(value)


@pytest.mark.parametrize("make", [
    lambda: RandomGroups(np.int64(0)),
    lambda: CountMatchedGroups(np.array([2, 0])),
    lambda: SelectiveGroups(beta=np.float32(2.0)),
    lambda: SelectiveGroups(warmup=np.int16(-1)),
    lambda: AffinityProbe(lookahead_every=np.int64(0)),
    lambda: Averaged({"t0": np.float64(0.5), "t1": np.float64(0.6)}),
    lambda: Alternated(order="random"),
    lambda: Scalarized("krum"),
])
def test_a_value_of_the_right_kind_outside_the_allowed_ones_is_still_a_value_error(make):
    with pytest.raises(ValueError):
        make()


def test_numpy_whole_numbers_draw_the_same_groups_as_plain_ones(suite):
    plain, numpy = RandomGroups(2, redraw="step"), RandomGroups(np.int64(2), redraw="step")
    for strategy in (plain, numpy):
        strategy.setup(models.for_suite(suite), suite.tasks, seed=7)
    assert type(numpy.group_size) is int
    assert [plain._groups() for _ in range(5)] == [numpy._groups() for _ in range(5)]
    counts = CountMatchedGroups(np.array([1, 3, 2]))
    assert counts.counts == [1, 3, 2] and all(type(c) is int for c in counts.counts)


def _trained(strategy, suite, steps=6):
    net = models.for_suite(suite)
    strategy.setup(net, suite.tasks, seed=1)
    for batch, _ in zip(suite.train.batches(32), range(steps)):
        strategy.step(net, batch)
    return net


@pytest.mark.parametrize("plain, numpy", [
    (lambda: SelectiveGroups(beta=0.05, warmup=2, regroup_every=2, measure_last=True),
     lambda: SelectiveGroups(beta=np.float64(0.05), warmup=np.int64(2), regroup_every=np.int32(2),
                             measure_last=np.bool_(True))),
    (lambda: Averaged({"t0": 0.25, "t1": 0.25, "t2": 0.25, "t3": 0.25}),
     lambda: Averaged({f"t{i}": np.float64(0.25) for i in range(4)})),
    (lambda: AffinityProbe(beta=0.05, lookahead_every=2, lookahead_lr=0.01),
     lambda: AffinityProbe(beta=np.float64(0.05), lookahead_every=np.int64(2), lookahead_lr=np.float64(0.01))),
])
def test_numpy_numbers_train_exactly_as_plain_ones(suite, plain, numpy):
    a, b = plain(), numpy()
    assert [t.name for t in suite.tasks] == ["t0", "t1", "t2", "t3"]
    assert vars(a).keys() == vars(b).keys()
    assert all(type(vars(a)[k]) is type(vars(b)[k]) for k in vars(a))
    for pa, pb in zip(_trained(a, suite).parameters(), _trained(b, suite).parameters()):
        assert torch.equal(pa, pb)


def test_an_aggregator_instance_is_accepted():
    aggregator = UPGrad()
    assert Aggregated(aggregator).aggregator is aggregator


@pytest.mark.parametrize("registry, labels", [(AGGREGATORS, AGGREGATOR_LABELS), (SCALARIZERS, SCALARIZER_LABELS),
                                              (SPLIT_WEIGHTINGS, SPLIT_WEIGHTING_LABELS)])
def test_every_registered_method_has_a_label_or_is_covered_by_averaged(registry, labels):
    assert set(registry) - set(labels) <= set(COVERED_BY_AVERAGED)
    assert set(labels) <= set(registry)
    assert not set(labels) & set(COVERED_BY_AVERAGED)


def test_the_families_hold_the_registries_and_their_labels_in_the_book_s_order():
    assert list(TORCHJD_FAMILIES) == ["gradient aggregator", "independent batches", "loss scalarizer"]
    assert [entry[:3] for entry in TORCHJD_FAMILIES.values()] == [
        ("aggregated", "aggregator", AGGREGATORS), ("split_batch_weighted", "weighting", SPLIT_WEIGHTINGS),
        ("scalarized", "scalarizer", SCALARIZERS)]
    assert [entry[3] for entry in TORCHJD_FAMILIES.values()] == [AGGREGATOR_LABELS, SPLIT_WEIGHTING_LABELS,
                                                                  SCALARIZER_LABELS]


def test_excess_mtl_keeps_uniform_weights_through_the_warm_up_it_is_given():
    suite = data.load("clusters", "smoke")
    mean = _trained(Aggregated("mean"), suite, steps=4)
    warm = _trained(Aggregated("excess_mtl", {"n_warmup_steps": 4}), suite, steps=4)
    cold = _trained(Aggregated("excess_mtl"), suite, steps=4)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(mean.parameters(), warm.parameters()))
    assert not all(torch.allclose(a, b, atol=1e-6) for a, b in zip(mean.parameters(), cold.parameters()))
    with pytest.raises(ValueError, match="does not accept the arguments"):
        Aggregated("upgrad", {"n_warmup_steps": 4})
    with pytest.raises(ValueError, match="not to a torchjd Aggregator object"):
        Aggregated(UPGrad(), {"n_warmup_steps": 4})
