"""The two-objective toy landscape of Liu et al. (2021, CAGrad), as a multi-task "network".

There is no data: the network's only parameter is the point x in R^2 (the trunk), and each head evaluates one
objective at x, so every strategy of the package runs on it unchanged and its path can be drawn.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from .models import MultiTaskNet
from .strategies import Strategy
from .tasks import Split, Task, TaskSuite

LOWER = 5e-6
STARTS = [(-8.5, 7.5), (0.0, 0.0), (9.0, 9.0), (-7.5, -0.5), (9.0, -1.0)]
PARETO_X2 = -8.3552  # the Pareto set is {(x1, PARETO_X2) : -7 <= x1 <= 7}
PARETO_X1 = (-7.0, 7.0)
IMBALANCE = 0.1  # the imbalanced variant scales L1 by this factor


def objectives(x: Tensor) -> tuple[Tensor, Tensor]:
    """(L1, L2) at points ``x`` of shape (..., 2)."""
    x1, x2 = x[..., 0], x[..., 1]
    f1 = torch.log(torch.clamp(torch.abs(0.5 * (-x1 - 7) - torch.tanh(-x2)), min=LOWER)) + 6
    f2 = torch.log(torch.clamp(torch.abs(0.5 * (-x1 + 3) + torch.tanh(-x2) + 2), min=LOWER)) + 6
    c1 = torch.clamp(torch.tanh(x2 / 2), min=0)
    c2 = torch.clamp(torch.tanh(-x2 / 2), min=0)
    f1_sq = ((-x1 + 7) ** 2 + 0.1 * (-x2 - 8) ** 2) / 10 - 20
    f2_sq = ((-x1 - 7) ** 2 + 0.1 * (-x2 - 8) ** 2) / 10 - 20
    return c1 * f1 + c2 * f1_sq, c1 * f2 + c2 * f2_sq


class Point(nn.Module):
    """The trunk: learnable points, one (2,) point or a (P, 2) batch of them; the dummy input is ignored."""

    def __init__(self, start):
        super().__init__()
        self.x = nn.Parameter(torch.tensor(start, dtype=torch.float32))

    def forward(self, inputs: Tensor) -> Tensor:
        return self.x.reshape(-1, 2)


class Objective(nn.Module):
    """A head without parameters: objective ``index`` (0 or 1) at every point, times ``scale``."""

    def __init__(self, index: int, scale: float = 1.0):
        super().__init__()
        self.index, self.scale = index, scale

    def forward(self, points: Tensor) -> Tensor:
        return self.scale * objectives(points)[self.index]


def _value(prediction: Tensor, target: Tensor) -> Tensor:
    return prediction.sum()  # the points do not interact: each gets the gradient of its own loss


def suite(imbalance: bool = False) -> TaskSuite:
    """The toy as a TaskSuite: tasks L1 and L2, one dummy sample; ``imbalance`` scales L1 by ``IMBALANCE``."""
    split = Split(torch.zeros(1, 1), {"L1": torch.zeros(1), "L2": torch.zeros(1)})
    tasks = [Task(name, _value, {"loss": lambda p, t: p.mean().item()}, higher_is_better=False) for name in ("L1", "L2")]
    return TaskSuite("toy", tasks, split, split, split, input_shape=(1,), meta={"imbalance": imbalance})


def net(start=STARTS[0], imbalance: bool = False) -> MultiTaskNet:
    """The network whose only parameter is the point (or the (P, 2) points) ``start``."""
    heads = nn.ModuleDict({"L1": Objective(0, IMBALANCE if imbalance else 1.0), "L2": Objective(1)})
    return MultiTaskNet(Point(start), heads)


NEAR = 0.5  # a point this close to the Pareto set has reached it
STILL, WINDOW = 0.05, 1000  # a point that moved less than STILL over the last WINDOW steps has stopped


def settled(path: np.ndarray) -> np.ndarray:
    """Which points of a path (steps + 1, ..., 2) have settled at its last step: reached the Pareto set (within
    ``NEAR``) or stopped (moved less than ``STILL`` over the last ``WINDOW`` steps)."""
    moved = np.linalg.norm(path[-1] - path[max(0, len(path) - 1 - WINDOW)], axis=-1)
    return (pareto_distance(path[-1]) < NEAR) | ((len(path) > WINDOW) & (moved < STILL))


def trajectory(strategy: Strategy, start=STARTS[0], steps: int = 20_000, imbalance: bool = False,
               settle: bool = False) -> np.ndarray:
    """The path under ``strategy`` from one point (shape (steps + 1, 2)) or from several at once (shape
    (steps + 1, P, 2)). With ``settle``, training stops once every point has ``settled`` (checked every ``WINDOW``
    steps), and the path stays at its last point for the steps left: ``steps`` is then a cap.

    Several points run as one network whose loss is the sum of the points' losses. With an optimizer that acts
    coordinate by coordinate (SGD, Adam) and a strategy that combines losses linearly (Averaged, Alternated,
    RandomGroups), each point then follows exactly its own run. Gradient aggregators look at all coordinates at
    once, so run them from one point at a time.
    """
    toy_suite, toy_net = suite(imbalance), net(start, imbalance)
    strategy.setup(toy_net, toy_suite.tasks)
    shape = toy_net.trunk.x.shape
    path = np.empty((steps + 1, *shape))
    path[0] = toy_net.trunk.x.detach().numpy()
    for i in range(steps):
        strategy.step(toy_net, toy_suite.train)
        path[i + 1] = toy_net.trunk.x.detach().numpy()
        if settle and (i + 1) % WINDOW == 0 and settled(path[:i + 2]).all():
            path[i + 2:] = path[i + 1]
            break
    return path


def landscape(low=(-10.0, -10.0), high=(10.0, 10.0), n: int = 200, imbalance: bool = False):
    """(x1, x2, L1, L2) on an n x n grid, for contour plots."""
    x1, x2 = torch.meshgrid(torch.linspace(low[0], high[0], n), torch.linspace(low[1], high[1], n), indexing="xy")
    l1, l2 = objectives(torch.stack([x1, x2], dim=-1))
    return x1.numpy(), x2.numpy(), (IMBALANCE if imbalance else 1.0) * l1.numpy(), l2.numpy()


def pareto_distance(points: np.ndarray) -> np.ndarray:
    """Euclidean distance of points (..., 2) to the Pareto set, the segment x2 = PARETO_X2, -7 <= x1 <= 7."""
    dx = np.maximum(np.abs(points[..., 0]) - PARETO_X1[1], 0.0)
    return np.hypot(dx, points[..., 1] - PARETO_X2)
