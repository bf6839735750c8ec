"""The forward pass of a stacked network (``mtlutils.stacked``) for the book's MLP and LeNet, layer by layer on the
stacked parameters: linear layers as batched matrix products, convolutions as one grouped convolution."""

from __future__ import annotations

import functools
from typing import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .models import MultiTaskNet


def stacked_forward(net: MultiTaskNet, members: int) -> dict[str, Callable] | None:
    """For a network made of linear layers, 2-d convolutions, max-pooling, flattening and ReLUs (the clusters MLP,
    LeNet): the forward pass of its trunk and of each head (``"heads.NAME"``) on the stacked parameters of
    ``members`` networks, a function ``(params, h)`` each, ``h`` members first. Linear layers are batched matrix
    products, and convolutions one grouped convolution in the channels-last layout, a group per member; vmap's
    generic rules cost more than that at these sizes (its grouped convolutions run in the default layout, slower on
    a CPU than the separate networks). None for any other network."""
    parts = {"trunk": _stacked(net.trunk, "trunk.", members)}
    parts.update({f"heads.{n}": _stacked(head, f"heads.{n}.", members) for n, head in net.heads.items()})
    return None if any(part is None for part in parts.values()) else parts


def _stacked(module: nn.Module, prefix: str, members: int) -> Callable | None:
    """``module`` on stacked inputs with the stacked parameters named ``prefix...``; None where it holds anything
    else than the layers ``_stacked_forward`` names. Features are (members, batch, features); images between
    convolutions are (batch, members x channels, height, width), channels-last."""
    if isinstance(module, nn.Linear) and module.bias is not None:
        weight, bias = prefix + "weight", prefix + "bias"
        return lambda params, h: torch.baddbmm(params[bias].unsqueeze(1), h, params[weight].transpose(1, 2))
    if isinstance(module, nn.Conv2d) and module.bias is not None and module.groups == 1 \
            and module.padding_mode == "zeros":
        weight, bias = prefix + "weight", prefix + "bias"
        settings = dict(stride=module.stride, padding=module.padding, dilation=module.dilation, groups=members)
        return lambda params, h: F.conv2d(_images(h), params[weight].flatten(0, 1), params[bias].flatten(),
                                          **settings)
    if isinstance(module, nn.MaxPool2d):
        settings = dict(kernel_size=module.kernel_size, stride=module.stride, padding=module.padding,
                        dilation=module.dilation, ceil_mode=module.ceil_mode)
        return lambda params, h: F.max_pool2d(_images(h), **settings)
    if isinstance(module, nn.Flatten) and module.start_dim == 1 and module.end_dim == -1:
        return lambda params, h: _images(h).reshape(len(h), members, -1).transpose(0, 1)
    if isinstance(module, nn.ReLU):
        return lambda params, h: torch.relu(h)
    if isinstance(module, nn.Sequential):
        parts = [_stacked(child, f"{prefix}{name}.", members) for name, child in module.named_children()]
        if any(part is None for part in parts):
            return None
        return lambda params, h: functools.reduce(lambda out, part: part(params, out), parts, h)
    return None


def _images(h: Tensor) -> Tensor:
    """Stacked images (members, batch, channels, height, width) as one batch of images whose channels are the
    members' in turn, channels-last; images already so laid out pass through."""
    if h.dim() == 4:
        return h
    members, batch, channels, height, width = h.shape
    return h.transpose(0, 1).reshape(batch, members * channels, height, width) \
        .contiguous(memory_format=torch.channels_last)
