import math

import numpy as np
import pytest
import torch

from mtlutils import experiments, toy, workers
from mtlutils.strategies import AGGREGATORS, Aggregated, Averaged, adam


@pytest.mark.parametrize(
    "point, expected",
    [
        # x2 > 0: only the log part. c1 = tanh(1) = 0.761594; f1 = log|-4 + tanh 2| + 6 = 7.110532;
        # f2 = log|1 - tanh 2 + 2| + 6 = 6.710974.
        ((1.0, 2.0), (0.761594 * 7.110532, 0.761594 * 6.710974)),
        # x2 < 0: only the quadratic part. c2 = tanh(1.5) = 0.905148; f1q = (81 + 2.5) / 10 - 20 = -11.65;
        # f2q = (25 + 2.5) / 10 - 20 = -17.25.
        ((-2.0, -3.0), (0.905148 * -11.65, 0.905148 * -17.25)),
        # x2 = 0: both gates are closed.
        ((0.5, 0.0), (0.0, 0.0)),
    ],
)
def test_objectives_match_hand_computation(point, expected):
    l1, l2 = toy.objectives(torch.tensor(point))
    assert l1.item() == pytest.approx(expected[0], abs=1e-4)
    assert l2.item() == pytest.approx(expected[1], abs=1e-4)


def test_log_part_is_clamped_at_lower():
    x2 = 2.0
    x1 = -7.0 - 2.0 * math.tanh(-x2)  # makes 0.5 (-x1 - 7) - tanh(-x2) vanish
    l1, _ = toy.objectives(torch.tensor([x1, x2], dtype=torch.float64))
    assert l1.item() == pytest.approx(math.tanh(1.0) * (math.log(toy.LOWER) + 6), rel=1e-6)


def test_imbalance_scales_the_first_objective_only():
    point = (1.0, 2.0)
    plain, scaled = toy.net(point), toy.net(point, imbalance=True)
    x = torch.zeros(1, 1)
    assert scaled(x)["L1"].item() == pytest.approx(0.1 * plain(x)["L1"].item())
    assert scaled(x)["L2"].item() == pytest.approx(plain(x)["L2"].item())


def test_averaged_trajectory_lowers_the_mean_loss():
    path = toy.trajectory(Averaged(optimizer_factory=adam(1e-2)), start=toy.STARTS[1], steps=300)
    assert path.shape == (301, 2)
    mean_loss = [sum(toy.objectives(torch.tensor(p, dtype=torch.float32))).item() / 2 for p in path[[0, -1]]]
    assert mean_loss[1] < mean_loss[0]
    assert np.all(np.isfinite(path))


@pytest.mark.parametrize("name", AGGREGATORS)
def test_every_aggregator_trains_the_toy(name):
    path = toy.trajectory(Aggregated(name, optimizer_factory=adam(1e-2)), start=toy.STARTS[3], steps=30)
    assert np.isfinite(path).all() and not np.allclose(path[0], path[-1])


def test_several_points_follow_their_own_runs_under_averaged_and_alternated():
    from mtlutils.strategies import Alternated

    for make in (lambda: Averaged(optimizer_factory=adam(1e-2)), lambda: Alternated(optimizer_factory=adam(1e-2))):
        together = toy.trajectory(make(), start=toy.STARTS, steps=50)
        assert together.shape == (51, 5, 2)
        for i, start in enumerate(toy.STARTS):
            np.testing.assert_allclose(together[:, i], toy.trajectory(make(), start=start, steps=50), atol=1e-5)


def test_landscape_grid_matches_the_objectives():
    x1, x2, l1, l2 = toy.landscape(n=5, imbalance=True)
    point = torch.tensor([x1[1, 3], x2[1, 3]])
    assert l1[1, 3] == pytest.approx(0.1 * toy.objectives(point)[0].item(), rel=1e-5)
    assert l2[1, 3] == pytest.approx(toy.objectives(point)[1].item(), rel=1e-5)


def test_pareto_distance():
    points = np.array([[0.0, toy.PARETO_X2], [10.0, toy.PARETO_X2], [3.0, toy.PARETO_X2 + 2.0]])
    np.testing.assert_allclose(toy.pareto_distance(points), [0.0, 3.0, 2.0])


@pytest.mark.parametrize("count", ["1", "2"])
def test_toy_paths_are_each_start_s_own_trajectory_wherever_they_run(monkeypatch, count):
    monkeypatch.setenv("MTLUTILS_WORKERS", count)
    methods = {"avg": dict(strategy="averaged", lr=1e-2),
               "pcgrad": dict(strategy="aggregated", strategy_kwargs={"aggregator": "pcgrad"}, lr=1e-2)}
    paths = experiments.toy_paths(methods, steps=30, imbalance=True)
    assert set(paths) == {"avg", "pcgrad"} and paths["avg"].shape == (31, len(toy.STARTS), 2)
    alone = toy.trajectory(Aggregated("pcgrad", optimizer_factory=adam(1e-2)), toy.STARTS[2], 30, imbalance=True)
    assert np.array_equal(paths["pcgrad"][:, 2], alone)
    together = toy.trajectory(Averaged(optimizer_factory=adam(1e-2)), toy.STARTS, 30, imbalance=True)
    assert np.array_equal(paths["avg"], together)  # one start at a time or all at once: the same paths
    workers.shutdown()


def test_a_settling_path_stops_once_every_point_has_reached_the_set_or_stopped():
    start = np.array([[0.0, -8.3552], [3.0, -8.0]])  # within NEAR of the Pareto set: settled at the first check
    free = toy.trajectory(Averaged(optimizer_factory=adam(1e-2)), start, steps=3 * toy.WINDOW)
    settling = toy.trajectory(Averaged(optimizer_factory=adam(1e-2)), start, steps=3 * toy.WINDOW, settle=True)
    assert settling.shape == free.shape and toy.settled(free[:toy.WINDOW + 1]).all()
    assert np.array_equal(settling[:toy.WINDOW + 1], free[:toy.WINDOW + 1])
    assert (settling[toy.WINDOW:] == settling[toy.WINDOW]).all() and not (free[toy.WINDOW:] == free[toy.WINDOW]).all()
    far = toy.trajectory(Averaged(optimizer_factory=adam(1e-2)), np.array([[9.0, 9.0]]), 2 * toy.WINDOW, settle=True)
    assert not toy.settled(far[:toy.WINDOW + 1]).all() and not (far[toy.WINDOW:] == far[toy.WINDOW]).all()
    near = np.full((toy.WINDOW + 1, 1, 2), [0.0, -8.0])  # within NEAR of the set: reached
    still = np.full((toy.WINDOW + 1, 1, 2), [9.0, 9.0])  # far, and not moving: stopped
    moving = np.linspace([9.0, 9.0], [5.0, 5.0], toy.WINDOW + 1)[:, None]  # far, and moving
    assert toy.settled(near).all() and toy.settled(still).all() and not toy.settled(moving).any()
