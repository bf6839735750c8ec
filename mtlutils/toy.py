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
    """The trunk: a learnable point, repeated for every row of the (dummy) input."""

    def __init__(self, start):
        super().__init__()
        self.x = nn.Parameter(torch.tensor(start, dtype=torch.float32))

    def forward(self, inputs: Tensor) -> Tensor:
        return self.x.expand(len(inputs), 2)


class Objective(nn.Module):
    """A head without parameters: objective ``index`` (0 or 1) at the point, times ``scale``."""

    def __init__(self, index: int, scale: float = 1.0):
        super().__init__()
        self.index, self.scale = index, scale

    def forward(self, points: Tensor) -> Tensor:
        return self.scale * objectives(points)[self.index]


def _value(prediction: Tensor, target: Tensor) -> Tensor:
    return prediction.mean()


def suite(imbalance: bool = False) -> TaskSuite:
    """The toy as a TaskSuite: tasks L1 and L2, one dummy sample; ``imbalance`` scales L1 by 0.1."""
    split = Split(torch.zeros(1, 1), {"L1": torch.zeros(1), "L2": torch.zeros(1)})
    tasks = [Task(name, _value, {"loss": lambda p, t: p.mean().item()}, higher_is_better=False) for name in ("L1", "L2")]
    return TaskSuite("toy", tasks, split, split, split, input_shape=(1,), meta={"imbalance": imbalance})


def net(start=STARTS[0], imbalance: bool = False) -> MultiTaskNet:
    """The network whose only parameter is the point, starting at ``start``."""
    heads = nn.ModuleDict({"L1": Objective(0, 0.1 if imbalance else 1.0), "L2": Objective(1)})
    return MultiTaskNet(Point(start), heads)


def trajectory(strategy: Strategy, start=STARTS[0], steps: int = 20_000, imbalance: bool = False) -> np.ndarray:
    """The path of the point under ``strategy``: an array of shape (steps + 1, 2)."""
    toy_suite, toy_net = suite(imbalance), net(start, imbalance)
    strategy.setup(toy_net, toy_suite.tasks)
    path = np.empty((steps + 1, 2))
    path[0] = toy_net.trunk.x.detach().numpy()
    for i in range(steps):
        strategy.step(toy_net, toy_suite.train)
        path[i + 1] = toy_net.trunk.x.detach().numpy()
    return path
