"""Grouped updates: Alternated, RandomGroups and SelectiveGroups (properties in the style of torchjd's tests)."""

import numpy as np
import pytest
import torch

from mtlutils import affinity, data, models
from mtlutils.strategies import (
    AffinityProbe,
    Aggregated,
    Alternated,
    Averaged,
    CountMatchedGroups,
    RandomGroups,
    SelectiveGroups,
    adam,
    sgd,
)
from mtlutils.train import fit


def _clone(net_fn):
    return net_fn(), net_fn()


def _steps(strategy, net, suite, n=3, batch_size=32):
    for batch, _ in zip(suite.train.batches(batch_size), range(n)):
        strategy.step(net, batch)


def _assert_same_parameters(a, b, exact=True):
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        if exact:
            assert torch.equal(pa, pb), name
        else:
            torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("per_group", [False, True])
def test_a_head_outside_the_group_and_its_optimizer_state_do_not_move(suite, per_group):
    net = models.for_suite(suite)
    strategy = Alternated(optimizer_per_group=per_group)
    strategy.setup(net, suite.tasks)
    strategy.step(net, suite.train)  # every head now has optimizer state
    head = dict(net.heads["t3"].named_parameters())
    before = {n: p.detach().clone() for n, p in head.items()}
    states = [o.state[p] for o in strategy.optimizers.values() for p in head.values() if p in o.state]
    state_before = [{k: v.clone() for k, v in s.items()} for s in states]
    strategy.update_groups(net, suite.train, [("t0", "t1"), ("t2",)])
    for name, p in head.items():
        assert torch.equal(p, before[name]), name
        assert p.grad is None
    for state, saved in zip(states, state_before):
        assert all(torch.equal(state[k], saved[k]) for k in saved)


@pytest.mark.parametrize("idle_heads", ["still", "moving"])
def test_groups_updated_without_the_trace_move_the_network_as_with_it(suite, idle_heads):
    groups = [("t1", "t3"), ("t0",), ("t2",)]
    nets, measured = [], []
    for trace in (True, False):
        net = models.for_suite(suite, seed=3)
        strategy = RandomGroups(group_size=2, idle_heads=idle_heads)
        strategy.setup(net, suite.tasks)
        for batch, _ in zip(suite.train.batches(32), range(3)):
            record, losses = strategy.update_groups(net, batch, groups, trace=trace)
        nets.append(net)
        measured.append((record, losses))
    _assert_same_parameters(*nets, exact=True)
    (traced, with_trace), (untraced, without_trace) = measured
    assert traced.losses == untraced.losses and traced.forward_passes == untraced.forward_passes == len(groups)
    assert len(with_trace) == len(groups) and without_trace == [untraced.losses]


def test_moving_idle_heads_step_through_their_momentum_as_the_official_runs_did(suite):
    lr, momentum = 0.1, 0.9
    for idle_heads in ("still", "moving"):
        net = models.for_suite(suite)
        strategy = Alternated(optimizer_factory=sgd(lr, momentum=momentum), idle_heads=idle_heads)
        strategy.setup(net, suite.tasks)
        strategy.step(net, suite.train)  # every head has a momentum buffer now
        head = dict(net.heads["t3"].named_parameters())
        before = {n: p.detach().clone() for n, p in head.items()}
        buffers = {n: strategy.optimizers["all"].state[p]["momentum_buffer"].clone() for n, p in head.items()}
        strategy.update_groups(net, suite.train, [("t0",)])
        for name, p in head.items():  # SGD: buffer <- momentum * buffer + 0, parameter <- parameter - lr * buffer
            expected = before[name] - lr * momentum * buffers[name] if idle_heads == "moving" else before[name]
            torch.testing.assert_close(p.detach(), expected)
            assert p.grad is None if idle_heads == "still" else not p.grad.any()


def test_idle_heads_must_be_still_or_moving():
    with pytest.raises(ValueError, match="idle_heads must be 'still' or 'moving'"):
        RandomGroups(2, idle_heads="frozen")


def test_group_size_t_takes_the_same_step_as_averaged(suite):
    a, b = _clone(lambda: models.for_suite(suite, seed=0))
    grouped = RandomGroups(group_size=4, group_loss="mean", optimizer_factory=adam(1e-2))
    averaged = Averaged(optimizer_factory=adam(1e-2))
    grouped.setup(a, suite.tasks)
    averaged.setup(b, suite.tasks)
    _steps(grouped, a, suite)
    _steps(averaged, b, suite)
    _assert_same_parameters(a, b, exact=False)


@pytest.mark.parametrize("per_group", [False, True])
def test_group_size_one_takes_the_same_steps_as_alternated(suite, per_group):
    a, b = _clone(lambda: models.for_suite(suite, seed=0))
    grouped = RandomGroups(group_size=1, optimizer_per_group=per_group)
    grouped.setup(a, suite.tasks, seed=5)
    drawn = [suite.task(g[0]) for g in grouped.groups]
    alternated = Alternated(optimizer_per_group=per_group)
    alternated.setup(b, drawn)
    _steps(grouped, a, suite)
    _steps(alternated, b, suite)
    _assert_same_parameters(a, b)


def test_each_group_optimizer_counts_its_own_steps(suite):
    net = models.for_suite(suite)
    strategy = Alternated(optimizer_per_group=True)
    strategy.setup(net, suite.tasks)
    _steps(strategy, net, suite, n=3)
    assert set(strategy.optimizers) == {(n,) for n in suite.task_names}
    trunk_weight = next(net.shared_parameters())
    assert all(o.state[trunk_weight]["step"].item() == 3 for o in strategy.optimizers.values())


def test_a_shared_optimizer_steps_the_trunk_once_per_group(suite):
    net = models.for_suite(suite)
    strategy = Alternated()
    strategy.setup(net, suite.tasks)
    _steps(strategy, net, suite, n=3)
    (optimizer,) = strategy.optimizers.values()
    assert optimizer.state[next(net.shared_parameters())]["step"].item() == 3 * 4
    assert optimizer.state[next(net.task_parameters("t2"))]["step"].item() == 3


def test_grouped_step_costs_one_pass_per_group(suite):
    net = models.for_suite(suite)
    strategy = RandomGroups(group_size=3)
    strategy.setup(net, suite.tasks)
    record = strategy.step(net, suite.train)
    assert len(record.groups) == 2 and sorted(sum(map(list, record.groups), [])) == suite.task_names
    assert (record.forward_passes, record.backward_passes, record.optimizer_steps) == (2, 2, 2)
    selective = SelectiveGroups(warmup=10)
    selective.setup(net, suite.tasks)
    record = selective.step(net, suite.train)
    assert (record.forward_passes, record.backward_passes) == (4 + 1, 4)  # measure_last adds a no-grad pass


def test_random_groups_redraw(suite):
    net = models.for_suite(suite)
    never, each_step = RandomGroups(2, redraw="never"), RandomGroups(2, redraw="step")
    never.setup(net, suite.tasks, seed=1)
    each_step.setup(net, suite.tasks, seed=1)
    seen_never = {tuple(never.step(net, b).groups[0]) for b, _ in zip(suite.train.batches(16), range(8))}
    seen_step = {tuple(each_step.step(net, b).groups[0]) for b, _ in zip(suite.train.batches(16), range(8))}
    assert len(seen_never) == 1 and len(seen_step) > 1
    per_epoch = RandomGroups(1, redraw="epoch")
    run = fit(models.for_suite(suite), suite, per_epoch, epochs=6, batch_size=256, progress=False)
    by_epoch = run.history.groupby("epoch")["groups"].agg(set)
    assert all(len(s) == 1 for s in by_epoch) and len(set().union(*by_epoch)) > 1


def test_selective_groups_warm_up_with_one_task_per_group_and_record_affinity(suite):
    strategy = SelectiveGroups(warmup=5, regroup_every=2)
    run = fit(models.for_suite(suite), suite, strategy, steps=12, batch_size=64, progress=False, snapshot_every=3)
    assert all(len(groups) == 4 and all(len(g) == 1 for g in groups) for groups in run.groups[:5])
    assert [step for step, _ in run.affinity] == [2, 5, 8, 11]
    assert run.affinity[-1][1].shape == (4, 4) and (run.affinity[-1][1] != 0).any()


def test_selective_groups_resume_from_a_checkpoint(suite, tmp_path):
    make = lambda: SelectiveGroups(warmup=4, regroup_every=3)  # noqa: E731
    whole = fit(models.for_suite(suite), suite, make(), epochs=3, batch_size=128, progress=False)
    path = tmp_path / "ckpt"
    fit(models.for_suite(suite), suite, make(), epochs=2, batch_size=128, progress=False, checkpoint=path)
    resumed = fit(models.for_suite(suite), suite, make(), epochs=3, batch_size=128, progress=False, checkpoint=path)
    assert resumed.history.drop(columns="seconds").equals(whole.history.drop(columns="seconds"))
    assert (resumed.affinity[-1][1] == whole.affinity[-1][1]).all()


def _related(n):
    """An affinity in which task 0 helps every other and is helped by them: affinity propagation makes one group
    around it, under either normalisation."""
    hub = np.zeros((n, n))
    hub[0, :] = hub[:, 0] = 0.5
    np.fill_diagonal(hub, 1.0)
    hub[1, 2], hub[2, 3] = 0.01, 0.02
    return hub


@pytest.mark.parametrize("attribution, warmup_batches", [("intended", 3), ("as_coded", 4)])
def test_as_coded_selective_groups_warm_up_one_batch_longer_and_update_a_lone_group_twice(suite, attribution,
                                                                                          warmup_batches):
    net = models.for_suite(suite)
    strategy = SelectiveGroups(beta=0.01, warmup=3, attribution=attribution)
    strategy.setup(net, suite.tasks)
    batches = suite.train.batches(32)
    for _ in range(warmup_batches):
        assert len(strategy.step(net, next(batches)).groups) == 4
    strategy.affinity.matrix[:] = _related(4)
    record = strategy.step(net, next(batches))
    everyone = [tuple(suite.task_names)]
    assert record.groups == (everyone * 2 if attribution == "as_coded" else everyone)
    assert record.optimizer_steps == len(record.groups)
    assert not np.allclose(strategy.affinity.matrix, _related(4))  # the lone group's change is credited


def test_as_coded_credits_a_doubled_lone_group_with_its_first_step():
    names = ["a", "b"]
    before, after_first, after_second = {"a": 2.0, "b": 4.0}, {"a": 1.0, "b": 3.0}, {"a": 0.5, "b": 2.0}
    doubled = affinity.ProximalAffinity(names, beta=0.5)
    doubled.update([("a", "b"), ("a", "b")], [before, after_first, after_second], "as_coded")
    first_step = affinity.ProximalAffinity(names, beta=0.5)
    first_step.update_group(("a", "b"), before, after_first)
    np.testing.assert_array_equal(doubled.matrix, first_step.matrix)
    single = affinity.ProximalAffinity(names, beta=0.5)
    single.update([("a", "b")], [before, after_first], "as_coded")
    assert not single.matrix.any()  # one group listed once: nothing to credit


def test_the_probe_can_look_ahead_along_its_optimizer_without_moving_anything(suite):
    runs = {how: fit(models.for_suite(suite, seed=1), suite, AffinityProbe(lookahead_every=3, lookahead=how),
                     steps=7, batch_size=64, progress=False) for how in ("gradient", "optimizer")}
    assert runs["gradient"].history.drop(columns="seconds").equals(runs["optimizer"].history.drop(columns="seconds"))
    ahead = [m for _, m in runs["optimizer"].measurements["lookahead"]]
    assert len(ahead) == 3 and not np.allclose(ahead[-1], runs["gradient"].measurements["lookahead"][-1][1])
    with pytest.raises(ValueError, match="shared optimizer"):
        AffinityProbe(lookahead="optimizer", optimizer_per_group=True)


@pytest.mark.parametrize("size", [0, 5])
def test_group_size_outside_one_to_t_is_refused(suite, size):
    with pytest.raises(ValueError, match=r"group_size must (lie in 1\.\.T|be a positive integer)"):
        RandomGroups(size).setup(models.for_suite(suite), suite.tasks)


@pytest.mark.parametrize("beta", [0.0, -0.1, 1.5])
def test_beta_outside_zero_one_is_refused(beta):
    with pytest.raises(ValueError, match=r"beta must lie in \(0, 1\]"):
        SelectiveGroups(beta=beta)


def test_unknown_choices_are_refused():
    with pytest.raises(ValueError, match="unknown aggregator 'adamw'; choose from"):
        Aggregated("adamw")
    with pytest.raises(ValueError, match="attribution"):
        SelectiveGroups(attribution="paper")
    with pytest.raises(ValueError, match="redraw"):
        RandomGroups(2, redraw="batch")


@pytest.mark.parametrize("make", [Alternated, lambda: RandomGroups(1), SelectiveGroups, Aggregated])
def test_one_task_is_not_enough_for_a_multi_task_strategy(make):
    one = data.load("clusters", "smoke", n_tasks=1, n_clusters=1)
    with pytest.raises(ValueError, match="needs at least 2 tasks; the suite has 1"):
        make().setup(models.for_suite(one), one.tasks)


def test_the_affinity_probe_tracks_both_attributions_of_the_selective_warm_up(suite):
    make_net = lambda: models.for_suite(suite, seed=1)  # noqa: E731
    probe_net = make_net()
    probe = fit(probe_net, suite, AffinityProbe(beta=0.1, lookahead_every=4, lookahead_lr=0.01), steps=10,
                batch_size=64, progress=False, snapshot_every=1)
    for i, attribution in enumerate(AffinityProbe.attributions):
        net = make_net()
        warm = fit(net, suite, SelectiveGroups(beta=0.1, warmup=100, attribution=attribution), steps=10, batch_size=64,
                   progress=False, snapshot_every=1)
        assert probe.history.drop(columns="seconds").equals(warm.history.drop(columns="seconds"))
        assert all((p[1][i] == w[1]).all() for p, w in zip(probe.affinity, warm.affinity, strict=True))
        _assert_same_parameters(probe_net, net)  # measuring the lookahead moves nothing
    assert not (probe.affinity[-1][1][0] == probe.affinity[-1][1][1]).all()
    assert [step for step, _ in probe.measurements["lookahead"]] == [0, 4, 8]
    assert probe.measurements["lookahead"][0][1].shape == (4, 4)


def test_the_checkpoint_keeps_the_measurements(suite, tmp_path):
    make = lambda: AffinityProbe(lookahead_every=3)  # noqa: E731
    whole = fit(models.for_suite(suite), suite, make(), epochs=2, batch_size=128, progress=False)
    path = tmp_path / "ckpt"
    fit(models.for_suite(suite), suite, make(), epochs=1, batch_size=128, progress=False, checkpoint=path)
    resumed = fit(models.for_suite(suite), suite, make(), epochs=2, batch_size=128, progress=False, checkpoint=path)
    assert [s for s, _ in resumed.measurements["lookahead"]] == [s for s, _ in whole.measurements["lookahead"]]
    assert all((a == b).all() for (_, a), (_, b) in zip(resumed.measurements["lookahead"], whole.measurements["lookahead"]))
    assert all((a == b).all() for (_, a), (_, b) in zip(resumed.affinity, whole.affinity))


def test_count_matched_groups_take_the_given_number_of_groups_at_every_step(suite):
    counts = [4, 4, 1, 2, 3]
    net = models.for_suite(suite)
    strategy = CountMatchedGroups(counts)
    strategy.setup(net, suite.tasks, seed=3)
    records = [strategy.step(net, batch) for batch, _ in zip(suite.train.batches(32), range(7))]
    assert [len(r.groups) for r in records] == [*counts, 3, 3]  # the last count holds after the end
    for record in records:
        sizes = sorted(len(g) for g in record.groups)
        assert sorted(t for g in record.groups for t in g) == sorted(suite.task_names)  # a partition of the tasks
        assert sizes[-1] - sizes[0] <= 1  # as equal as possible
        assert record.backward_passes == record.optimizer_steps == len(record.groups)
    assert len({r.groups[0] for r in records[:2]}) == 2  # redrawn at every step


def test_count_matched_groups_resume_and_refuse_bad_counts(suite, tmp_path):
    def make():
        return CountMatchedGroups([4, 2, 1, 3] * 5, optimizer_factory=adam(1e-2))

    whole = fit(models.for_suite(suite), suite, make(), epochs=3, batch_size=128, progress=False)
    path = tmp_path / "run.pt"
    fit(models.for_suite(suite), suite, make(), epochs=2, batch_size=128, progress=False, checkpoint=path)
    resumed = fit(models.for_suite(suite), suite, make(), epochs=3, batch_size=128, progress=False, checkpoint=path)
    assert resumed.groups == whole.groups
    with pytest.raises(ValueError, match="positive integers"):
        CountMatchedGroups([2, 0])
    with pytest.raises(ValueError, match="exceeds the 4 tasks"):
        CountMatchedGroups([5]).setup(models.for_suite(suite), suite.tasks)
