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

    def __init__(self, trunk: nn.Module, heads: nn.ModuleDict, input_shape: tuple[int, ...] | None = None):
        super().__init__()
        if len(heads) == 0:
            raise ValueError("MultiTaskNet needs at least one head.")
        self.trunk = trunk
        self.heads = heads
        self.input_shape = input_shape  # the shape of one input it was built for, when known (``for_suite``)

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
    return MultiTaskNet(trunk, heads).to(memory_format=torch.channels_last)


class ToUnitRange(nn.Module):
    """Scales uint8 images to floats in [0, 1], so that large image datasets can stay uint8 in memory."""

    def forward(self, x: Tensor) -> Tensor:
        return x.float() / 255.0 if x.dtype == torch.uint8 else x


class BasicBlock(nn.Module):
    """Two 3 x 3 convolutions with batch norm and a shortcut (He et al., 2016)."""

    def __init__(self, n_in: int, n_out: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(n_in, n_out, 3, stride, 1, bias=False), nn.BatchNorm2d(n_out), nn.ReLU(),
            nn.Conv2d(n_out, n_out, 3, 1, 1, bias=False), nn.BatchNorm2d(n_out),
        )
        self.shortcut = (
            nn.Sequential(nn.Conv2d(n_in, n_out, 1, stride, bias=False), nn.BatchNorm2d(n_out))
            if stride != 1 or n_in != n_out else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


def resnet(suite: TaskSuite, outputs: dict[str, int] | None = None, widths=(32, 64, 128, 256)) -> MultiTaskNet:
    """A small ResNet for 64 x 64 images (CelebA): a 3 x 3 stem, one basic block per width (stride 2 after the
    first), global average pooling; each head is one linear layer to ``outputs[task]`` logits."""
    outputs = outputs or {name: 1 for name in suite.task_names}
    channels = suite.input_shape[0]
    stages = [BasicBlock(a, b, 1 if i == 0 else 2) for i, (a, b) in enumerate(zip((widths[0], *widths[:-1]), widths))]
    trunk = nn.Sequential(
        ToUnitRange(), nn.Conv2d(channels, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(),
        *stages, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    )
    heads = nn.ModuleDict({name: nn.Linear(widths[-1], outputs[name]) for name in suite.task_names})
    return MultiTaskNet(trunk, heads)


def _conv_block(n_in: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(n_in, n_out, 3, padding=1), nn.BatchNorm2d(n_out), nn.ReLU())


class SegNetTrunk(nn.Module):
    """A SegNet-style encoder-decoder (Badrinarayanan et al., 2017) as used for NYUv2 by Liu et al. (2019): each
    encoder stage is two conv-BN-ReLU layers and a 2 x 2 max-pool whose indices the mirrored decoder unpools with."""

    def __init__(self, channels: int, widths=(64, 128, 256, 512, 512)):
        super().__init__()
        ins = (channels, *widths[:-1])
        self.encoder = nn.ModuleList(nn.Sequential(_conv_block(a, b), _conv_block(b, b)) for a, b in zip(ins, widths))
        outs = (widths[0], *widths[:-1])
        self.decoder = nn.ModuleList(
            nn.Sequential(_conv_block(b, b), _conv_block(b, a)) for a, b in zip(outs[::-1], widths[::-1])
        )
        self.pool, self.unpool = nn.MaxPool2d(2, return_indices=True), nn.MaxUnpool2d(2)

    def forward(self, x: Tensor) -> Tensor:
        indices, sizes = [], []
        for stage in self.encoder:
            x = stage(x)
            sizes.append(x.shape)
            x, index = self.pool(x)
            indices.append(index)
        for stage, index, size in zip(self.decoder, reversed(indices), reversed(sizes)):
            x = stage(self.unpool(x, index, output_size=size))
        return x


def segnet(suite: TaskSuite, outputs: dict[str, int] | None = None, widths=(64, 128, 256, 512, 512)) -> MultiTaskNet:
    """SegNet-style trunk for dense prediction; each head is conv 3 x 3 -> ReLU -> conv 1 x 1 to its channels."""
    outputs = outputs or {name: 1 for name in suite.task_names}
    trunk = SegNetTrunk(suite.input_shape[0], widths)
    heads = nn.ModuleDict({
        name: nn.Sequential(nn.Conv2d(widths[0], widths[0], 3, padding=1), nn.ReLU(), nn.Conv2d(widths[0], n, 1))
        for name, n in outputs.items()
    })
    return MultiTaskNet(trunk, heads)


_ARCHITECTURES = {"bottleneck_mlp": bottleneck_mlp, "lenet": lenet, "resnet": resnet, "segnet": segnet}


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
        net = _ARCHITECTURES[architecture](suite, **spec)
    net.input_shape = tuple(suite.input_shape)
    return net
