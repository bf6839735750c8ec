import pytest
import torch

from mtlutils import models


def test_shared_and_task_parameters_partition_the_network(suite):
    net = models.for_suite(suite)
    shared = {id(p) for p in net.shared_parameters()}
    per_task = [{id(p) for p in net.task_parameters(name)} for name in suite.task_names]
    assert all(shared.isdisjoint(t) for t in per_task)
    assert all(a.isdisjoint(b) for i, a in enumerate(per_task) for b in per_task[i + 1 :])
    assert shared.union(*per_task) == {id(p) for p in net.parameters()}


def test_forward_returns_one_prediction_per_requested_task(suite):
    net = models.for_suite(suite)
    out = net(suite.train.x[:5])
    assert set(out) == set(suite.task_names) and out["t0"].shape == (5, 1)
    assert set(net(suite.train.x[:5], tasks=["t1"])) == {"t1"}


def test_for_suite_initialises_from_the_seed(suite):
    a, b, c = models.for_suite(suite, seed=1), models.for_suite(suite, seed=1), models.for_suite(suite, seed=2)
    pa, pb, pc = (torch.cat([p.flatten() for p in n.parameters()]) for n in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)


def test_for_suite_overrides_the_defaults(suite):
    net = models.for_suite(suite, bottleneck=3)
    assert net.heads["t0"].in_features == 3


def test_unknown_head_is_named(suite):
    with pytest.raises(KeyError, match="t9"):
        list(models.for_suite(suite).task_parameters("t9"))
