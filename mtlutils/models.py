"""Multi-task networks: one shared trunk, one head per task (hard parameter sharing)."""

from __future__ import annotations

from typing import Iterable, Iterator

import torch
from torch import Tensor, nn

from .tasks import TaskSuite


class MultiTaskNet(nn.Module):
    """A shared ``trunk`` followed by one head per task; ``forward`` returns a dict of predictions.

    The shared parameters theta_s are the trunk's; the task-specific parameters theta_t are head t's.
    """

    def __init__(self, trunk: nn.Module, heads: nn.ModuleDict):
        super().__init__()
        if len(heads) == 0:
            raise ValueError("MultiTaskNet needs at least one head.")
        self.trunk = trunk
        self.heads = heads

    @property
    def task_names(self) -> list[str]:
        return list(self.heads.keys())

    def forward(self, x: Tensor, tasks: Iterable[str] | None = None) -> dict[str, Tensor]:
        features = self.trunk(x)
        names = self.task_names if tasks is None else list(tasks)
        return {name: self.heads[name](features) for name in names}

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return self.trunk.parameters()

    def task_parameters(self, name: str) -> Iterator[nn.Parameter]:
        if name not in self.heads:
            raise KeyError(f"No head named {name!r}; the heads are {self.task_names}.")
        return self.heads[name].parameters()


def mlp(sizes: list[int], final_activation: bool = False) -> nn.Sequential:
    """Linear layers with ReLU between them (and after the last one when ``final_activation``)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2 or final_activation:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def bottleneck_mlp(suite: TaskSuite, hidden: int = 64, bottleneck: int = 1) -> MultiTaskNet:
    """MLP trunk input -> hidden -> ReLU -> hidden -> ReLU -> bottleneck (linear); one linear head per task.

    A narrow bottleneck forces the tasks to share few features: tasks that need different features compete.
    """
    (n_in,) = suite.input_shape
    trunk = mlp([n_in, hidden, hidden, bottleneck])
    heads = nn.ModuleDict({name: nn.Linear(bottleneck, 1) for name in suite.task_names})
    return MultiTaskNet(trunk, heads)


def lenet(suite: TaskSuite, outputs: dict[str, int] | None = None, features: int = 50) -> MultiTaskNet:
    """The LeNet-style network of the MultiMNIST literature (Sener & Koltun, 2018): a trunk of two 5 x 5
    convolutions (10 and 20 channels, each followed by 2 x 2 max-pooling and ReLU) and a 50-unit layer; each head
    is 50 -> ReLU -> ``outputs[task]`` (class logits, or one logit for a binary task)."""
    outputs = outputs or {name: 10 for name in suite.task_names}
    channels, height, width = suite.input_shape
    side = lambda n: ((n - 4) // 2 - 4) // 2  # noqa: E731 (two 5 x 5 convolutions, each pooled by 2)
    trunk = nn.Sequential(
        nn.Conv2d(channels, 10, 5), nn.MaxPool2d(2), nn.ReLU(),
        nn.Conv2d(10, 20, 5), nn.MaxPool2d(2), nn.ReLU(),
        nn.Flatten(), nn.Linear(20 * side(height) * side(width), features), nn.ReLU(),
    )
    heads = nn.ModuleDict(
        {name: nn.Sequential(nn.Linear(features, 50), nn.ReLU(), nn.Linear(50, outputs[name])) for name in suite.task_names}
    )
    return MultiTaskNet(trunk, heads)


_ARCHITECTURES = {"bottleneck_mlp": bottleneck_mlp, "lenet": lenet}


def for_suite(suite: TaskSuite, seed: int = 0, **kwargs) -> MultiTaskNet:
    """The standard network of a suite, initialised from ``seed``.

    The architecture and its defaults come from ``suite.meta["model"]``; ``kwargs`` override the defaults.
    """
    spec = dict(suite.meta.get("model", {}))
    architecture = spec.pop("architecture", None)
    if architecture not in _ARCHITECTURES:
        raise ValueError(
            f"Suite {suite.name!r} names no known architecture ({architecture!r}); "
            f"known ones are {sorted(_ARCHITECTURES)}."
        )
    spec.update(kwargs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _ARCHITECTURES[architecture](suite, **spec)
