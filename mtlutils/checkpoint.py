"""Checkpoints of a run in progress: what a checkpoint must share with the run that resumes from it, and atomic
writes, so a run killed midway resumes from its last whole epoch."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .models import MultiTaskNet
from .strategies import Strategy
from .tasks import TaskSuite


def _plain(value):
    """``value`` with everything but numbers, strings, booleans, None and containers of them left out."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [v for v in map(_plain, value) if v is not _LEFT_OUT]
    if isinstance(value, dict):
        return {str(k): v for k, v in ((k, _plain(v)) for k, v in value.items()) if v is not _LEFT_OUT}
    return _LEFT_OUT


_LEFT_OUT = object()


def run_identity(net: MultiTaskNet, suite: TaskSuite, strategy: Strategy, batch_size: int, seed: int) -> dict:
    """What a checkpoint must share with the run that resumes from it: the strategy and its settings (read right
    after ``setup``), the optimizer and its hyperparameters, the network's parameters, the suite, the batch size
    and the seed. The number of epochs or steps may differ: a run can be resumed to train longer."""
    optimizer = strategy.optimizer_factory([torch.nn.Parameter(torch.zeros(1))])
    settings = {k: v for k, v in _plain(vars(strategy)).items() if k not in ("tasks", "optimizers")}
    return {
        "strategy": type(strategy).__name__, "strategy settings": settings,
        "optimizer": type(optimizer).__name__, "optimizer settings": _plain(optimizer.defaults),
        "network": {name: list(p.shape) for name, p in net.state_dict().items()},
        "suite": [suite.name, [t.name for t in suite.tasks]], "batch_size": batch_size, "seed": seed,
    }


def load(path: Path, identity: dict) -> dict:
    try:
        state = torch.load(path, weights_only=False, map_location="cpu")
    except Exception as error:  # a truncated or overwritten file fails in pickle, zipfile or torch itself
        raise ValueError(f"fit: the checkpoint {path} is damaged and cannot be read ({type(error).__name__}: "
                         f"{error}); delete it to train this run from the start.") from None
    theirs = state.get("identity") if isinstance(state, dict) else None
    if theirs != identity:
        differ = sorted(k for k in identity if theirs is None or theirs.get(k) != identity[k])
        written = "a run" if theirs is None else "; ".join(f"{k}: {theirs.get(k)}" for k in differ)
        raise ValueError(f"fit: the checkpoint {path} belongs to another run ({written}); this run has "
                         + "; ".join(f"{k}: {identity[k]}" for k in differ)
                         + ". Resume with the same settings, or give this run a checkpoint path of its own.")
    return state


def save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


