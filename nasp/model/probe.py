"""What a sparse forward runs and how it scores the rest: the selection (per node, the switched-on (edge, op) pairs
of Ā) and the architecture-gradient probe. When a node's gradient arrives during the backward pass, the probe runs
every candidate op of that node's edges without autograd and takes dL/da = <dL/dnode, op(x)>, freeing each output at
once (NASP's architecture gradient at the memory of the child network). Below the networks that use them
(``nasp.model.search``, ``nasp.model.recurrent``) and the protocol that names them (``nasp.model.protocol``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from nasp.spaces import CellSpace

# per node: the (edge row, op column) pairs that are switched on
Selection = list[list[tuple[int, int]]]


def selection_of(mask: torch.Tensor, cell: CellSpace) -> Selection:
    """The switched-on entries of a discrete architecture (a boolean mask), grouped by node."""
    return selections_of({"": mask}, {"": cell})[""]


def selections_of(masks: dict[str, torch.Tensor], cells: dict[str, CellSpace]) -> dict[str, Selection]:
    """``selection_of`` for every cell type with one read of the masks: on a GPU the one host sync of a NASP
    step (the sparse forward's structure is decided on the host)."""
    flat = torch.cat([m.detach().reshape(-1) for m in masks.values()]).tolist()
    out: dict[str, Selection] = {}
    offset = 0
    for ct, mask in masks.items():
        cell, (n_edges, n_ops) = cells[ct], mask.shape
        node_of = {e: j for j in range(cell.n_nodes) for e in cell.node_edges(j)}
        sel: Selection = [[] for _ in range(cell.n_nodes)]
        for i, on in enumerate(flat[offset:offset + n_edges * n_ops]):
            if on:
                sel[node_of[i // n_ops]].append((i // n_ops, i % n_ops))
        out[ct] = sel
        offset += n_edges * n_ops
    return out


def upcast(t: torch.Tensor) -> torch.Tensor:
    """Half-precision tensors (autocast) to float32; float32 and float64 stay as they are."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


class Dot:
    """<g, y> for many y with one g, without temporaries: g is laid out once in y's memory format."""

    def __init__(self, g: torch.Tensor) -> None:
        self.g = upcast(g)
        self._layouts: dict[bool, torch.Tensor] = {}

    def _flat_g(self, channels_last: bool) -> torch.Tensor:
        if channels_last not in self._layouts:
            if channels_last:
                self._layouts[True] = self.g.contiguous(memory_format=torch.channels_last).permute(0, 2, 3, 1).reshape(-1)
            else:
                self._layouts[False] = self.g.contiguous().view(-1)
        return self._layouts[channels_last]

    def __call__(self, y: torch.Tensor) -> torch.Tensor:
        y = upcast(y)
        if y.is_contiguous():
            return torch.dot(self._flat_g(False), y.view(-1))
        if y.dim() == 4 and y.is_contiguous(memory_format=torch.channels_last):
            return torch.dot(self._flat_g(True), y.permute(0, 2, 3, 1).reshape(-1))
        return torch.sum(self.g * y)


class ArchGradProbe:
    """Collects dL/dA for every entry of the architecture matrices during one backward pass."""

    def __init__(self, shapes: dict[str, tuple[int, int]], device: torch.device, stacked: bool = True) -> None:
        """``stacked``: a node's same-shape candidate convolutions run as one grouped convolution (fewer
        launches; False runs each op alone, the reference the stacked probe is tested against)."""
        self.stacked = stacked
        self.grads = {ct: torch.zeros(shape, device=device, dtype=torch.float64) for ct, shape in shapes.items()}
        self.root: torch.Tensor | None = None  # the stem output: backward stops there
        self.finishers: list[Callable[[], None]] = []  # work a network leaves for after the backward pass

    def finish(self) -> dict[str, torch.Tensor]:
        """The gradients, once the backward pass is done (a recurrent network scores its candidates then)."""
        for finish in self.finishers:
            finish()
        self.finishers.clear()
        return self.grads


def stackable(mods: list[nn.Module]) -> bool:
    """Whether ``run_stacked`` can run these modules as one: the same layers (ReLU, Conv2d without bias,
    BatchNorm2d with a momentum), the same hyperparameters, only the weights differ."""
    first = mods[0]
    if any(type(m) is not type(first) for m in mods):
        return False
    if isinstance(first, nn.Sequential):
        return all(len(m) == len(first) for m in mods) and all(stackable(list(layers)) for layers in zip(*mods, strict=True))
    if isinstance(first, nn.ReLU):
        return True
    if isinstance(first, nn.Conv2d):
        keys = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "padding_mode")
        return first.bias is None and first.padding_mode == "zeros" and all(
            getattr(m, key) == getattr(first, key) for m in mods for key in keys)
    if isinstance(first, nn.BatchNorm2d):
        keys = ("num_features", "eps", "momentum", "affine", "track_running_stats", "training")
        return first.momentum is not None and all(getattr(m, key) == getattr(first, key) for m in mods for key in keys)
    return False


def run_stacked(mods: list[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """The outputs of ``mods`` (``stackable``) on their inputs, all stacked along channels: each convolution
    becomes one with ``len(mods)`` times the groups, each batch norm one over all channels (its running
    statistics written back to every module, as the modules' own forward would)."""
    first, n = mods[0], len(mods)
    if isinstance(first, nn.Sequential):
        for layers in zip(*mods, strict=True):
            x = run_stacked(list(layers), x)
        return x
    if isinstance(first, nn.ReLU):
        return torch.relu(x)
    if isinstance(first, nn.Conv2d):
        weight = torch.cat([m.weight for m in mods])
        return F.conv2d(x, weight, None, first.stride, first.padding, first.dilation, first.groups * n)
    assert isinstance(first, nn.BatchNorm2d)
    track = first.track_running_stats and first.running_mean is not None
    if first.training and track:
        torch._foreach_add_([m.num_batches_tracked for m in mods], 1)
    mean = torch.cat([m.running_mean for m in mods]) if track else None
    var = torch.cat([m.running_var for m in mods]) if track else None
    weight = torch.cat([m.weight for m in mods]) if first.affine else None
    bias = torch.cat([m.bias for m in mods]) if first.affine else None
    out = F.batch_norm(x, mean, var, weight, bias, first.training or not track, first.momentum, first.eps)
    if first.training and track:
        torch._foreach_copy_([m.running_mean for m in mods], list(mean.split(first.num_features)))
        torch._foreach_copy_([m.running_var for m in mods], list(var.split(first.num_features)))
    return out


def split_leading_relu(module: nn.Module) -> nn.Module | None:
    """The rest of ``module`` after its leading ReLU (sharing its layers), or None if it has none."""
    if isinstance(module, nn.Sequential) and len(module) > 0:
        first, rest = module[0], list(module)[1:]
        if isinstance(first, nn.ReLU):
            return nn.Sequential(*rest)
        inner = split_leading_relu(first)
        if inner is not None:
            return nn.Sequential(inner, *rest)
    return None
