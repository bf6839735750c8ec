import pytest
import torch

from mtlutils import data, models
from mtlutils.strategies import Aggregated, Averaged, SingleTask, adam
from mtlutils.tasks import TaskSuite


def _params(net):
    return {name: p.detach().clone() for name, p in net.named_parameters()}


def _one_task(suite) -> TaskSuite:
    keep = suite.tasks[0].name
    split = lambda s: type(s)(s.x, {keep: s.y[keep]})  # noqa: E731
    return TaskSuite("one", suite.tasks[:1], split(suite.train), split(suite.val), split(suite.test),
                     suite.input_shape, dict(suite.meta))


def test_averaged_on_one_task_takes_the_same_steps_as_single_task(suite):
    one = _one_task(suite)
    a, b = models.for_suite(one, seed=0), models.for_suite(one, seed=0)
    averaged, single = Averaged(optimizer_factory=adam(1e-2)), SingleTask("t0", optimizer_factory=adam(1e-2))
    averaged.setup(a, one.tasks)
    single.setup(b, one.tasks)
    for batch in one.train.batches(32):
        ra, rb = averaged.step(a, batch), single.step(b, batch)
        assert ra.losses == rb.losses
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(pa, pb), name


def test_single_task_leaves_the_other_heads_untouched(suite):
    net = models.for_suite(suite)
    before = _params(net)
    strategy = SingleTask("t1")
    strategy.setup(net, suite.tasks)
    record = strategy.step(net, suite.train)
    after = _params(net)
    for name in after:
        moved = not torch.equal(before[name], after[name])
        assert moved == (name.startswith("trunk") or name.startswith("heads.t1.")), name
    assert record.groups == [("t1",)] and set(record.losses) == {"t1"}


def test_averaged_records_one_pass_of_each_kind_and_all_losses(suite):
    net = models.for_suite(suite)
    strategy = Averaged()
    strategy.setup(net, suite.tasks)
    record = strategy.step(net, suite.train)
    assert (record.forward_passes, record.backward_passes, record.optimizer_steps) == (1, 1, 1)
    assert set(record.losses) == set(suite.task_names) and record.seconds > 0


def test_weights_on_one_task_equal_single_task(suite):
    weights = {name: float(name == "t2") for name in suite.task_names}
    a, b = models.for_suite(suite, seed=0), models.for_suite(suite, seed=0)
    weighted, single = Averaged(weights, optimizer_factory=adam(1e-2)), SingleTask("t2", optimizer_factory=adam(1e-2))
    weighted.setup(a, suite.tasks)
    single.setup(b, suite.tasks)
    for batch in suite.train.batches(64):
        weighted.step(a, batch)
        single.step(b, batch)
    for pa, pb in zip(a.trunk.parameters(), b.trunk.parameters()):
        torch.testing.assert_close(pa, pb)


@pytest.mark.parametrize("weights", [{"t0": 0.5, "t1": 0.6}, {"t0": -0.5, "t1": 1.5}, {"t0": float("nan"), "t1": 1.0}])
def test_weights_off_the_simplex_are_refused(weights):
    with pytest.raises(ValueError, match="simplex"):
        Averaged(weights)


def test_weights_must_name_the_tasks(suite):
    with pytest.raises(ValueError, match="weights are given for"):
        Averaged({"t0": 0.5, "t1": 0.5}).setup(models.for_suite(suite), suite.tasks)


def test_single_task_names_a_missing_task(suite):
    with pytest.raises(ValueError, match="no task 'x'"):
        SingleTask("x").setup(models.for_suite(suite), suite.tasks)


def test_step_before_setup_says_what_to_do(suite):
    with pytest.raises(RuntimeError, match="setup"):
        Averaged().step(models.for_suite(suite), suite.train)


def test_a_network_without_the_heads_is_refused(suite):
    other = data.load("clusters", "smoke", n_tasks=2, n_clusters=1)
    with pytest.raises(ValueError, match="no head"):
        Averaged().setup(models.for_suite(other), suite.tasks)


@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
def test_fused_adam_steps_like_the_default_loop_when_a_gradient_has_another_layout(weight_decay):
    default = torch.optim.AdamW if weight_decay else torch.optim.Adam
    weight = torch.randn(6, 3, 5, 5)
    gradients = [torch.randn(6, 3, 5, 5) for _ in range(3)]  # contiguous, as torchjd writes them
    ours = torch.nn.Parameter(weight.contiguous(memory_format=torch.channels_last))
    theirs = torch.nn.Parameter(weight.clone())
    optimizers = [adam(3e-2, weight_decay)([ours]), default([theirs], lr=3e-2, weight_decay=weight_decay)]
    for gradient in gradients:
        for parameter, optimizer in zip((ours, theirs), optimizers):
            parameter.grad = gradient.clone()
            optimizer.step()
    assert ours.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(ours.detach(), theirs.detach())


def test_a_torchjd_step_on_lenet_with_fused_adam_equals_the_default_loop():
    multimnist = data.load("multimnist", "smoke")
    batch = next(multimnist.train.batches(16))
    nets = []
    for factory in (adam(1e-2), lambda params: torch.optim.Adam(params, lr=1e-2)):
        net = models.for_suite(multimnist, seed=0)
        strategy = Aggregated("upgrad", optimizer_factory=factory)
        strategy.setup(net, multimnist.tasks)
        for _ in range(3):
            strategy.step(net, batch)
        nets.append(net)
    for (name, ours), theirs in zip(nets[0].named_parameters(), nets[1].parameters()):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5, msg=name)
