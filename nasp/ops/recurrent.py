"""The activations of DARTS's recurrent cell (its 'none' aside): node = s + sigmoid(c) * (act(h) - s)."""

from __future__ import annotations

from torch import nn

from nasp.ops.registry import register_op


@register_op("tanh", kind="rnn")
def tanh(C: int, stride: int, affine: bool) -> nn.Module:
    """tanh activation."""
    return nn.Tanh()


@register_op("relu", kind="rnn")
def relu(C: int, stride: int, affine: bool) -> nn.Module:
    """ReLU activation."""
    return nn.ReLU()


@register_op("sigmoid", kind="rnn")
def sigmoid(C: int, stride: int, affine: bool) -> nn.Module:
    """sigmoid activation."""
    return nn.Sigmoid()


@register_op("identity", kind="rnn")
def identity(C: int, stride: int, affine: bool) -> nn.Module:
    """No activation: the node moves towards h itself."""
    return nn.Identity()
