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


def test_lenet_keeps_its_convolutions_channels_last_and_computes_the_same_function():
    from mtlutils import data

    suite = data.load("multimnist", "smoke")
    net = models.for_suite(suite, seed=3)
    convolutions = [m.weight for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convolutions and all(w.is_contiguous(memory_format=torch.channels_last) for w in convolutions)
    default = models.for_suite(suite, seed=3).to(memory_format=torch.contiguous_format)
    x = suite.test.x[:16]
    with torch.no_grad():
        ours, theirs = net(x), default(x)
    for name in suite.task_names:  # the flattened features keep their order: the same network, another layout
        torch.testing.assert_close(ours[name], theirs[name], rtol=1e-5, atol=1e-5)
