"""Strategies around a torchjd module (an aggregator, a scalarizer, a weighting): building it on the network's
device with the strategy's keyword arguments, and keeping its whole state through a checkpoint."""

from __future__ import annotations

import io
from typing import Callable, Mapping

import torch
from torch import Tensor, nn

from ..models import MultiTaskNet
from .base import Strategy, checked, registry_name
from .optimizers import OptimizerFactory


def _saved(module: nn.Module, device: torch.device) -> dict:
    """A torchjd module with all of its state (buffers, counters, inner optimizers), for a checkpoint."""
    buffer = io.BytesIO()
    torch.save(module, buffer)
    return {"module": buffer.getvalue(), "device": str(device)}


def _restored(state: dict, device: torch.device) -> nn.Module:
    """The module that ``_saved`` wrote (from this package's own checkpoint). On the device it was saved from, every
    tensor comes back where it was (torchjd keeps some state on the CPU on purpose); saved from another device, the
    tensors that were on that device move to ``device``."""
    where = None if state["device"] == str(device) else {state["device"]: str(device)}
    return torch.load(io.BytesIO(state["module"]), map_location=where, weights_only=False)


def _device(net: MultiTaskNet) -> torch.device:
    return next(net.parameters()).device


def _tensor_kwargs(kwargs: Mapping, device: torch.device, dtype: torch.dtype) -> dict:
    """Keyword arguments with tensors moved to ``device`` and lists of numbers (as a JSON configuration holds a
    preference vector) made tensors of ``dtype`` there."""
    def convert(value):
        if isinstance(value, Tensor):
            return value.to(device)
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, (int, float)) for v in value):
            return torch.tensor(value, dtype=dtype, device=device)
        return value
    return {key: convert(value) for key, value in kwargs.items()}


def _build(kind: str, table: Mapping[str, Callable], name: str, n_tasks: int, kwargs: Mapping, device: torch.device,
           dtype: torch.dtype = torch.float32):
    """``table[name](n_tasks, **kwargs)`` with its tensors created on ``device`` in ``dtype`` (the network's);
    wrong arguments are explained."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            return table[name](n_tasks, **_tensor_kwargs(kwargs, device, dtype))
    except TypeError as error:
        raise ValueError(f"{kind} {name!r} does not accept the arguments {dict(kwargs)}: {error}") from None
    finally:
        torch.set_default_dtype(previous)


class _AroundTorchjdModule(Strategy):
    """A strategy around one torchjd module (``module``): its name is one of ``TABLE``'s, checked when the strategy
    is made; ``setup`` builds it on the network's device with the strategy's keyword arguments for it, and a
    checkpoint keeps its state. ``ROLE`` names it in messages and in the checkpoint."""

    ROLE: str
    TABLE: Mapping[str, Callable]
    min_tasks = 2

    def __init__(self, method: str, method_kwargs: Mapping | None, optimizer_factory: OptimizerFactory | None):
        super().__init__(optimizer_factory)
        self.method = registry_name(self, self.ROLE, method, self.TABLE)
        self.method_kwargs = checked(self, f"{self.ROLE}_kwargs", method_kwargs, dict,
                                     f"a mapping of keyword -> value for the {self.ROLE}", optional=True) or {}

    def setup(self, net, tasks, seed=0):
        super().setup(net, tasks, seed)
        self._device = _device(net)
        self.module = _build(f"{type(self).__name__}: {self.ROLE}", self.TABLE, self.method, len(tasks),
                             self.method_kwargs, self._device, next(net.parameters()).dtype).to(self._device)

    def _extra_state(self):
        return {self.ROLE: _saved(self.module, self._device)}

    def _load_extra_state(self, state):
        self.module = _restored(state[self.ROLE], self._device)
