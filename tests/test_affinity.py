import copy
import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from mtlutils import affinity, models
from mtlutils.tasks import Task


def test_gradient_cosine_is_symmetric_with_unit_diagonal(suite):
    net = models.for_suite(suite)
    cos = affinity.gradient_cosine(net, suite.train, suite.tasks)
    assert cos.shape == (4, 4)
    np.testing.assert_allclose(cos, cos.T, atol=1e-6)
    np.testing.assert_allclose(np.diag(cos), 1.0, atol=1e-6)
    assert all(p.grad is None for p in net.parameters())


def test_a_task_and_its_copy_have_cosine_one(suite):
    net = models.for_suite(suite)
    twin = Task("twin", suite.tasks[0].loss, suite.tasks[0].metrics, False)
    net.heads["twin"] = net.heads["t0"]
    suite.train.y["twin"] = suite.train.y["t0"]
    cos = affinity.gradient_cosine(net, suite.train, [suite.tasks[0], twin])
    assert cos[0, 1] == pytest.approx(1.0, abs=1e-6)


def test_conflict_rates():
    neg = np.array([[1.0, -0.5], [-0.5, 1.0]])
    pos = np.array([[1.0, 0.5], [0.5, 1.0]])
    np.testing.assert_allclose(affinity.conflict_rate([neg, pos, neg, neg]), [[0, 0.75], [0.75, 0]])
    with pytest.raises(ValueError, match="no cosine"):
        affinity.conflict_rate([])
    three = np.array([[1, 0.2, -0.3], [0.2, 1, -0.4], [-0.3, -0.4, 1]])
    rates = affinity.conflict_within_and_across([(0, pos[[0, 0, 1]][:, [0, 0, 1]]), (5, three)], [0, 0, 1], since_step=5)
    assert rates == {"within": 0.0, "across": 1.0}


# Proximal inter-task affinity on a case computed by hand. Groups g1 = (a, b) then g2 = (c,), beta = 0.5.
L0 = {"a": 1.0, "b": 2.0, "c": 4.0}
L1 = {"a": 0.5, "b": 2.2, "c": 3.0}  # after g1: a_t = (1 - L1/L0) / 2 = (0.25, -0.05, 0.125)
L2 = {"a": 0.6, "b": 2.2, "c": 2.0}  # after g2: a_t = (1 - L2/L1) / 1 = (-0.2, 0, 1/3)


def test_proximal_affinity_intended_matches_the_hand_computation():
    tracker = affinity.ProximalAffinity(["a", "b", "c"], beta=0.5)
    tracker.update([("a", "b"), ("c",)], [L0, L1, L2], "intended")
    expected = np.array([
        # row a: self 0.25 >= 0 kept; b conflicts with a: -max(-0.05, 0.25); c outside: 0.125
        [0.5 * 0.25, 0.5 * -0.25, 0.5 * 0.125],
        # row b: a conflicts: -max(0.25, -0.05); self -0.05 < 0: no update; c outside
        [0.5 * -0.25, 0.0, 0.5 * 0.125],
        # row c: a and b outside; self 1/3 >= 0
        [0.5 * -0.2, 0.0, 0.5 / 3],
    ])
    np.testing.assert_allclose(tracker.matrix, expected, atol=1e-12)


def test_as_coded_credits_the_previous_groups_change_and_never_the_last():
    tracker = affinity.ProximalAffinity(["a", "b", "c"], beta=0.5)
    tracker.update([("a", "b"), ("c",)], [L0, L1, L2], "as_coded")
    # g2 = (c,) is credited with g1's change L0 -> L1, divided by |g2| = 1; g1 gets nothing; L1 -> L2 is unused.
    expected = np.zeros((3, 3))
    expected[2] = 0.5 * np.array([0.5, -0.1, 0.25])
    np.testing.assert_allclose(tracker.matrix, expected, atol=1e-12)


def test_intended_without_the_last_measurement_skips_the_last_group():
    tracker = affinity.ProximalAffinity(["a", "b", "c"], beta=0.5)
    tracker.update([("a", "b"), ("c",)], [L0, L1], "intended")
    assert (tracker.matrix[2] == 0).all() and (tracker.matrix[0] != 0).any()


def test_groups_from_affinity_recovers_blocks_and_falls_back(monkeypatch):
    names = ["a", "b", "c", "d", "e"]
    blocks = np.array([[1.0, 0.8, 0.8, 0.0, 0.1], [0.9, 1.0, 0.7, 0.1, 0.0], [0.8, 0.9, 1.0, 0.0, 0.0],
                       [0.0, -0.1, 0.0, 1.0, 0.9], [0.1, 0.0, 0.0, 0.8, 1.0]])
    groups = affinity.groups_from_affinity(0.01 * blocks, names)
    assert sorted(map(sorted, groups)) == [["a", "b", "c"], ["d", "e"]]

    class NeverConverges:
        def __init__(self, **kwargs):
            pass

        def fit(self, x):
            import warnings

            from sklearn.exceptions import ConvergenceWarning
            warnings.warn("no convergence", ConvergenceWarning)

    monkeypatch.setattr(affinity, "AffinityPropagation", NeverConverges)
    previous = [("a", "d"), ("b", "c", "e")]
    assert affinity.groups_from_affinity(blocks, names, previous=previous) == previous
    assert affinity.groups_from_affinity(blocks, names) == [(n,) for n in names]


def test_as_coded_normalisation_divides_only_above_the_diagonal():
    a = np.array([[2.0, 1.0, 4.0], [3.0, 4.0, 2.0], [6.0, 8.0, 5.0]])
    # in place, column by column: [[1, 1/4, 4/5], [3, 1, 2/5], [6, 8, 1]], then (X + X^T) / 2
    np.testing.assert_allclose(affinity.normalized_affinity(a, as_coded=True),
                               [[1, 1.625, 3.4], [1.625, 1, 4.2], [3.4, 4.2, 1]])
    # intended: [[1, 1/4, 4/5], [3/2, 1, 2/5], [3, 2, 1]], then (X + X^T) / 2
    np.testing.assert_allclose(affinity.normalized_affinity(a), [[1, 0.875, 1.9], [0.875, 1, 1.2], [1.9, 1.2, 1]])


def test_normalisation_guards_non_positive_diagonals():
    x = affinity.normalized_affinity(np.array([[0.0, 0.2], [-0.4, 0.5]]))
    assert np.isfinite(x).all()
    np.testing.assert_allclose(x, x.T)


def _linear_pair():
    """w * x through one head of weight 1 (task a, target 1) and one of weight -1 (task b, target 0), w = 2."""
    from torch import nn

    from mtlutils.models import MultiTaskNet
    from mtlutils.tasks import Split

    trunk = nn.Linear(1, 1, bias=False)
    heads = nn.ModuleDict({"a": nn.Linear(1, 1, bias=False), "b": nn.Linear(1, 1, bias=False)})
    with torch.no_grad():
        trunk.weight.fill_(2.0)
        heads["a"].weight.fill_(1.0)
        heads["b"].weight.fill_(-1.0)
    net = MultiTaskNet(trunk, heads)
    mse = lambda p, y: ((p.reshape(y.shape) - y) ** 2).mean()  # noqa: E731
    tasks = [Task(n, mse, {}, True) for n in ("a", "b")]
    batch = Split(torch.tensor([[1.0], [2.0]]), {"a": torch.tensor([1.0, 1.0]), "b": torch.tensor([0.0, 0.0])})
    return net, tasks, batch


def test_lookahead_affinity_matches_a_hand_computation_on_a_linear_model():
    net, tasks, batch = _linear_pair()
    trunk = net.trunk
    # w = 2: L_a = ((2-1)^2 + (4-1)^2) / 2 = 5, L_b = (2^2 + 4^2) / 2 = 10; dL_a/dw = 7, dL_b/dw = 10.
    # lr 0.1: a's step gives w = 1.3 (L_a = 1.325, L_b = 4.225); b's step gives w = 1.0 (L_a = 0.5, L_b = 2.5).
    z = affinity.lookahead_affinity(net, batch, tasks, lr=0.1)
    np.testing.assert_allclose(z, [[1 - 1.325 / 5, 1 - 4.225 / 10], [1 - 0.5 / 5, 1 - 2.5 / 10]], rtol=1e-5)
    assert trunk.weight.item() == 2.0 and trunk.weight.grad is None


def test_lookahead_along_the_optimizer_follows_its_momentum_and_divides_by_its_learning_rate():
    net, tasks, batch = _linear_pair()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net.trunk.weight.grad = torch.tensor([[1.0]])
    for head in net.heads.values():
        head.weight.grad = torch.zeros(1, 1)
    optimizer.step()  # w: 2 -> 1.9, momentum buffer 1
    before = copy.deepcopy(optimizer.state_dict())
    z = affinity.lookahead_affinity(net, batch, tasks, optimizer=optimizer)
    # at w = 1.9: L_a = (0.81 + 7.84) / 2 = 4.325, L_b = (3.61 + 14.44) / 2 = 9.025; dL_a/dw = 6.5, dL_b/dw = 9.5.
    # SGD's step with task i's gradient: w' = 1.9 - 0.1 (0.9 * 1 + g_i): a gives 1.16, b gives 0.86.
    loss_a = lambda w: ((w - 1) ** 2 + (2 * w - 1) ** 2) / 2  # noqa: E731
    loss_b = lambda w: (w ** 2 + (2 * w) ** 2) / 2  # noqa: E731
    expected = [[(1 - loss_a(w) / loss_a(1.9)) / 0.1, (1 - loss_b(w) / loss_b(1.9)) / 0.1] for w in (1.16, 0.86)]
    np.testing.assert_allclose(z, expected, rtol=1e-5)
    assert net.trunk.weight.item() == pytest.approx(1.9) and net.trunk.weight.grad.item() == 1.0
    after = optimizer.state_dict()
    assert after["param_groups"] == before["param_groups"]
    assert all(torch.equal(after["state"][k]["momentum_buffer"], v["momentum_buffer"]) for k, v in before["state"].items())
    with pytest.raises(ValueError, match="either lr"):
        affinity.lookahead_affinity(net, batch, tasks, lr=0.1, optimizer=optimizer)


def test_lookahead_along_adam_is_where_its_step_would_go():
    net, tasks, batch = _linear_pair()
    optimizer = torch.optim.Adam(net.parameters(), lr=0.1)
    for _ in range(3):  # moments that are not the task gradients
        net.zero_grad()
        sum(t.loss(net(batch.x)[t.name], batch.y[t.name]) for t in tasks).backward()
        optimizer.step()
    z = affinity.lookahead_affinity(net, batch, tasks, optimizer=optimizer)
    for i, task in enumerate(tasks):
        twin = copy.deepcopy(net)
        twin_optimizer = torch.optim.Adam(twin.parameters(), lr=0.1)
        twin_optimizer.load_state_dict(copy.deepcopy(optimizer.state_dict()))  # its own moments
        losses = [t.loss(twin(batch.x)[t.name], batch.y[t.name]).item() for t in tasks]
        twin.zero_grad(set_to_none=True)
        (grad,) = torch.autograd.grad(task.loss(twin(batch.x)[task.name], batch.y[task.name]), [twin.trunk.weight])
        twin.trunk.weight.grad = grad
        twin_optimizer.step()
        after = [t.loss(twin(batch.x)[t.name], batch.y[t.name]).item() for t in tasks]
        np.testing.assert_allclose(z[i], [(1 - a / b) / 0.1 for a, b in zip(after, losses)], rtol=1e-5)


def _tag_search_by_enumeration(z, max_groups):
    """TAG's network selection as its code runs it: every selection of 1 to max_groups distinct non-empty
    subsets that covers the tasks; a task counts its best group; a task alone scores -1e6."""
    n = len(z)
    subsets = [s for k in range(1, n + 1) for s in itertools.combinations(range(n), k)]

    def score(task, group):
        return -1e6 if len(group) == 1 else np.mean([z[b, task] for b in group if b != task])

    best = -np.inf
    for k in range(1, max_groups + 1):
        for selection in itertools.combinations(subsets, k):
            if set().union(*selection) != set(range(n)):
                continue
            best = max(best, np.mean([max(score(t, g) for g in selection if t in g) for t in range(n)]))
    return best


def _selection_score(z, names, groups):
    index = {name: i for i, name in enumerate(names)}
    members = [[index[n] for n in g] for g in groups]
    score = lambda t, g: -1e6 if len(g) == 1 else np.mean([z[b, t] for b in g if b != t])  # noqa: E731
    return np.mean([max(score(t, g) for g in members if t in g) for t in range(len(names))])


@settings(max_examples=25, deadline=None)
@given(st.integers(3, 5), st.integers(1, 3), st.integers(0, 2**31 - 1))
def test_tag_selection_is_as_good_as_tags_enumeration(n, max_groups, seed):
    z = np.random.default_rng(seed).normal(size=(n, n))
    names = [f"t{i}" for i in range(n)]
    groups = affinity.select_groups_tag(z, names, max_groups)
    assert 1 <= len(groups) <= max_groups and set().union(*map(set, groups)) == set(names)
    assert _selection_score(z, names, groups) == pytest.approx(_tag_search_by_enumeration(z, max_groups))


def test_tag_selection_lets_a_helpful_task_serve_two_groups():
    names = ["a", "b", "c"]
    z = np.array([[0.0, 0.8, 0.8],  # a's step helps b and c
                  [0.3, 0.0, -0.9],  # b and c hurt each other
                  [0.3, -0.9, 0.0]])
    assert sorted(map(sorted, affinity.select_groups_tag(z, names, max_groups=2))) == [["a", "b"], ["a", "c"]]
    assert affinity.served_by(z, names, [("a", "b"), ("a", "c")]) == [("a", "b"), ("c",)]  # a: 0.3 from either
    partition = affinity.select_groups_tag(z, names, max_groups=2, search="partition")
    assert sorted(map(sorted, partition)) in ([["a", "b"], ["c"]], [["a", "c"], ["b"]])


def test_tag_selection_never_leaves_a_task_alone_when_a_pair_can_serve_it():
    names = ["a", "b", "c", "d"]
    z = -np.abs(np.random.default_rng(0).normal(size=(4, 4)))  # every step hurts every other task
    tag = affinity.select_groups_tag(z, names, max_groups=4)
    assert all(len(g) > 1 for g in tag)
    assert affinity.select_groups_tag(z, names, max_groups=4, search="partition") == [(n,) for n in names]


def test_partition_search_is_the_best_partition():
    rng = np.random.default_rng(1)
    names = list("abcde")
    for _ in range(10):
        z = rng.normal(size=(5, 5))
        groups = affinity.select_groups_tag(z, names, max_groups=3, search="partition")
        assert sorted(n for g in groups for n in g) == names  # every task exactly once

        def total(partition):
            return sum(np.mean([z[b, a] for b in g if b != a]) if len(g) > 1 else 0.0 for g in partition for a in g)

        index = {n: i for i, n in enumerate(names)}
        best = max(total(p) for p in _partitions_of(list(range(5))) if len(p) <= 3)
        assert total([[index[n] for n in g] for g in groups]) == pytest.approx(best)


def _partitions_of(items):
    if not items:
        yield []
        return
    for partition in _partitions_of(items[1:]):
        for i in range(len(partition)):
            yield partition[:i] + [[items[0], *partition[i]]] + partition[i + 1:]
        yield [[items[0]], *partition]


def test_tag_selection_refuses_what_it_cannot_search():
    with pytest.raises(ValueError, match="T <= 12"):
        affinity.select_groups_tag(np.zeros((30, 30)), [str(i) for i in range(30)], max_groups=5)
    with pytest.raises(ValueError, match="search must be"):
        affinity.select_groups_tag(np.zeros((2, 2)), ["a", "b"], 1, search="greedy")


def test_group_agreement_is_the_adjusted_rand_index_of_the_partitions():
    truth = [("a", "b"), ("c", "d")]
    assert affinity.group_agreement([("d", "c"), ("b", "a")], truth) == 1.0  # order and labels do not matter
    assert affinity.group_agreement([("a", "c"), ("b", "d")], truth) < 0  # every pair split: worse than chance
    assert affinity.group_agreement([("a",), ("b",), ("c",), ("d",)], truth) == 0.0
    with pytest.raises(ValueError, match="different tasks"):
        affinity.group_agreement([("a", "b"), ("c",)], truth)
    with pytest.raises(ValueError, match="twice"):
        affinity.group_agreement([("a", "b"), ("b", "c", "d")], truth)
    assert affinity.group_agreement([("a", "b", "c", "d")] * 2, [tuple("abcd")]) == 1.0  # a lone group updated twice


def test_moving_average_starts_from_zero_and_forgets_geometrically():
    ones, zeros = np.ones((2, 2)), np.zeros((2, 2))
    averaged = affinity.moving_average([(0, ones), (5, zeros), (10, zeros)], weight=0.5)
    assert [step for step, _ in averaged] == [0, 5, 10]
    assert [float(m[0, 0]) for _, m in averaged] == [0.5, 0.25, 0.125]
    with pytest.raises(ValueError, match="weight"):
        affinity.moving_average([(0, ones)], weight=0)


def test_pair_scores_average_both_directions_in_combinations_order():
    matrix = np.array([[9.0, 1.0, 2.0], [3.0, 9.0, 4.0], [6.0, 8.0, 9.0]])
    assert affinity.pair_scores(matrix).tolist() == [2.0, 4.0, 6.0]  # (0, 1), (0, 2), (1, 2)


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=0, max_value=10_000))
def test_rank_correlation_depends_on_ranks_only_and_its_interval_is_ordered(seed):
    rng = np.random.default_rng(seed)
    transfer = rng.normal(size=(6, 10))
    measure = transfer + rng.normal(scale=0.5, size=transfer.shape)
    rho, low, high = affinity.rank_correlation(measure, transfer)
    assert -1 <= low <= high <= 1 and -1 <= rho <= 1  # a percentile interval need not hold the point estimate
    one_seed = affinity.rank_correlation(measure[:1], transfer[:1])
    assert one_seed[1:] == (-np.inf, np.inf)  # one seed: no interval
    assert affinity.rank_correlation(np.exp(measure[:1]), transfer[:1])[0] == pytest.approx(one_seed[0])



@settings(max_examples=10, deadline=None)
@given(st.integers(min_value=0, max_value=10_000), st.booleans())
def test_rank_correlation_is_scipy_s_spearman_on_the_means_of_the_resampled_seeds(seed, ties):
    rng = np.random.default_rng(seed)
    transfer = rng.normal(size=(4, 8))
    measure = transfer + rng.normal(size=transfer.shape)
    measure = np.round(measure) if ties else measure
    draws = np.random.default_rng(3).integers(0, 4, size=(200, 4))  # the draws of rank_correlation(..., seed=3)
    resampled = [stats.spearmanr(measure[d].mean(axis=0), transfer[d].mean(axis=0)).statistic for d in draws]
    expected = (stats.spearmanr(measure.mean(axis=0), transfer.mean(axis=0)).statistic,
                *np.nanpercentile(resampled, [2.5, 97.5]))
    assert affinity.rank_correlation(measure, transfer, resamples=200, seed=3) == pytest.approx(expected, abs=1e-12)


@settings(max_examples=10, deadline=None)
@given(st.integers(min_value=0, max_value=10_000))
def test_a_bootstrap_over_pairs_and_seeds_resamples_the_pairs_of_each_seed_resample(seed):
    rng = np.random.default_rng(seed)
    transfer = rng.normal(size=(4, 8))
    measure = transfer + rng.normal(size=transfer.shape)
    draws = np.random.default_rng(3)  # the draws of rank_correlation(..., seed=3): the seeds, then the pairs
    rows, columns = draws.integers(0, 4, size=(200, 4)), draws.integers(0, 8, size=(200, 8))
    resampled = [stats.spearmanr(measure[r].mean(axis=0)[c], transfer[r].mean(axis=0)[c]).statistic
                 for r, c in zip(rows, columns)]
    expected = (stats.spearmanr(measure.mean(axis=0), transfer.mean(axis=0)).statistic,
                *np.nanpercentile(resampled, [2.5, 97.5]))
    both = affinity.rank_correlation(measure, transfer, resamples=200, seed=3, over="pairs and seeds")
    assert both == pytest.approx(expected, abs=1e-12)
    with pytest.raises(ValueError, match="resample one of"):
        affinity.rank_correlation(measure, transfer, over="pairs")

def test_rank_correlation_finds_a_monotone_relation_and_not_noise():
    rng = np.random.default_rng(0)
    transfer = rng.normal(size=(10, 15)) + np.linspace(-3, 3, 15)
    assert affinity.rank_correlation(2 * transfer + 1, transfer) == (1.0, 1.0, 1.0)
    rho, low, high = affinity.rank_correlation(rng.normal(size=(10, 15)), transfer)
    assert low < 0 < high and high - low > 0.3
    with pytest.raises(ValueError, match="3 pairs or more"):
        affinity.rank_correlation(transfer[:, :2], transfer[:, :2])


def test_agreement_over_training_reads_evenly_spaced_snapshots_up_to_the_last():
    names, truth = ["a", "b", "c", "d"], [("a", "b"), ("c", "d")]
    apart, together = np.zeros((4, 4)), np.ones((4, 4))
    series = [(step, together if step < 90 else apart) for step in range(100)]
    seen = []

    def grouping(matrix):
        seen.append(matrix)
        return truth if matrix is apart else [tuple(names)]

    points = affinity.agreement_over_training(series, truth, grouping, points=5)
    assert [step for step, _ in points] == [0, 25, 50, 74, 99] and len(seen) == 5
    assert [ari for _, ari in points] == [0.0, 0.0, 0.0, 0.0, 1.0]
    assert [step for step, _ in affinity.agreement_over_training(series[:3], truth, grouping, points=30)] == [0, 1, 2]


def test_within_and_across_average_the_off_diagonal_pairs_of_each_kind():
    matrix = np.array([[9.0, 1.0, 2.0], [3.0, 9.0, 4.0], [5.0, 6.0, 9.0]])
    means = affinity.within_and_across(matrix, [0, 0, 1])  # tasks 0 and 1 together, task 2 alone
    assert means == {"within": 2.0, "across": 4.25}  # (1 + 3) / 2 and (2 + 4 + 5 + 6) / 4: the diagonal never counts
    alone = affinity.within_and_across(matrix, [0, 1, 2])
    assert np.isnan(alone["within"]) and alone["across"] == (1 + 2 + 3 + 4 + 5 + 6) / 6
