"""Memory estimates of the search and evaluation networks, checked before either is allocated.

The estimate adds what training holds at its peak: the activations autograd keeps for the backward pass
(every op's intermediate outputs; in the search network every candidate op on every edge, as DARTS's
dense pass runs them), and the parameters with their gradients and SGD momentum. Each op's activations
are measured once, on a tiny tensor, as a multiple of its output (a separable conv keeps about eight
tensors of its output's size, a pool one), so plugin ops are weighed by what they really keep.
``check_memory`` compares an estimate with a limit (``available_memory``) and refuses with a ConfigError
naming the keys that lower it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from nasp.errors import ConfigError
from nasp.model.layout import cell_slots
from nasp.ops import OpSpec, create_op, get_op, op_param_count

if TYPE_CHECKING:
    from nasp.genotype import Genotype
    from nasp.spaces import SearchSpace


def count_params(net: nn.Module, auxiliary: bool = False) -> int:
    """Parameters of ``net``, each once (a tied embedding and decoder count once, as DARTS counts them); without an
    auxiliary head unless asked (DARTS's convention)."""
    return sum(p.numel() for name, p in net.named_parameters() if auxiliary or not name.startswith("auxiliary."))

def genotype_params(genotype: Genotype, channels: int = 16, layers: int = 8, num_classes: int = 10,
                    in_channels: int = 3) -> int:
    """Parameters of the network ``genotype`` defines (built on the meta device: no memory). A dense genotype
    (nb201): ``layers`` is N, the cells of each stage of NAS-Bench-201's skeleton."""
    from nasp.model.child import ChildNetwork
    from nasp.model.dense import DenseChildNetwork

    space = genotype.resolve_space(strict=False)
    with torch.device("meta"):
        if space is not None and space.kind == "dense":
            net: nn.Module = DenseChildNetwork(genotype, channels, layers, num_classes, in_channels)
        else:
            net = ChildNetwork(genotype, channels, layers, num_classes, in_channels)
    return sum(p.numel() for p in net.parameters())


GIB = 1024**3
LOWER_KEYS = ("batch_size", "model.channels", "model.layers")
DENSE_LOWER_KEYS = ("batch_size", "dense.channels", "dense.cells")


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a network needs to train: ``activation_bytes`` for one batch, ``state_bytes`` for the
    parameters, their gradients and the optimiser's state."""

    params: int
    activation_bytes: int
    state_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.activation_bytes + self.state_bytes

    @property
    def gib(self) -> float:
        return self.total_bytes / GIB


def _leaves(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if not list(m.children())]


def op_activation_factor(name: str, stride: int, search: bool = True) -> float:
    """Values op ``name`` keeps for backward (its leaf modules' outputs), in units of its output's size.

    Measured once per registered op and stride on a (2, 4, 8, 8) tensor; the torch RNG is left as it was."""
    return _factor(get_op(name), stride, search)


@cache
def _factor(spec: OpSpec, stride: int, search: bool, C: int = 4, size: int = 8) -> float:
    counted: list[int] = []

    def add(module: nn.Module, inputs: object, out: object) -> None:
        if isinstance(out, torch.Tensor):
            counted.append(out.numel())

    with torch.random.fork_rng(devices=[]), torch.no_grad():
        op = create_op(spec.name, C, stride, affine=not search, search=search)
        hooks = [m.register_forward_hook(add) for m in _leaves(op)]
        out = op(torch.linspace(-1.0, 1.0, 2 * C * size * size).reshape(2, C, size, size))
        for h in hooks:
            h.remove()
    kept = sum(counted)
    return max(kept / out.numel(), 1.0)  # at least its own output (an identity keeps none, its sum does)


def _relu_conv_bn(values: int) -> int:
    return 3 * values  # ReLU, 1x1 conv, BatchNorm outputs


def _state_bytes(params: int, bytes_per_value: int) -> int:
    return 3 * params * bytes_per_value  # weights, gradients, SGD momentum


def estimate_search_memory(space: SearchSpace, channels: int, layers: int, batch_size: int, image_size: int,
                           in_channels: int = 3, num_classes: int = 10, stem_multiplier: int = 3,
                           bytes_per_value: int = 4) -> MemoryEstimate:
    """The search network (``nasp.model.SearchNetwork``) trained densely: every candidate op's activations on
    every edge of every cell (batch x channels x height x width each), the preprocessing, the node sums and
    the weighted terms, plus the parameters, gradients and momentum. Builds nothing; the torch RNG is left
    as it was."""
    with torch.random.fork_rng(devices=[]):
        return _search(space, channels, layers, batch_size, image_size, in_channels, num_classes, stem_multiplier,
                       bytes_per_value)


def _search(space: SearchSpace, channels: int, layers: int, batch_size: int, image_size: int, in_channels: int,
            num_classes: int, stem_multiplier: int, bytes_per_value: int) -> MemoryEstimate:
    C_stem = stem_multiplier * channels
    slots, C_last = cell_slots(channels, layers, C_stem, {ct: c.n_nodes for ct, c in space.cells.items()})
    B = batch_size
    size = image_size
    values = 2 * B * C_stem * size * size  # stem conv and BatchNorm
    params = in_channels * C_stem * 9 + 2 * C_stem + C_last * num_classes + num_classes
    sizes = [size, size]  # resolution of the previous two cells' outputs
    for slot in slots:
        cell = space.cells[slot.cell_type]
        h_in = sizes[-1]
        h_out = h_in // 2 if slot.reduction else h_in
        plane_in, plane_out = B * slot.C * h_in * h_in, B * slot.C * h_out * h_out
        values += (_relu_conv_bn(plane_in) if not slot.reduction_prev else 3 * plane_in)  # preprocess0
        values += _relu_conv_bn(plane_in)  # preprocess1
        params += slot.C_pp * slot.C + slot.C_p * slot.C  # the two 1x1 preprocessing convs (or factorized reduce)
        for src, _dst in cell.edges:
            stride = 2 if slot.reduction and src < cell.n_inputs else 1
            for op in cell.ops:
                values += math.ceil((op_activation_factor(op, stride) + 1) * plane_out)  # op + its weighted term
                params += op_param_count(op, slot.C, stride)
        values += 2 * cell.n_nodes * plane_out  # node sums and the cell's concatenated output
        sizes.append(h_out)
    return MemoryEstimate(params, values * bytes_per_value, _state_bytes(params, bytes_per_value))


def estimate_dense_search_memory(space: SearchSpace, channels: int, cells: int, batch_size: int, image_size: int,
                                 in_channels: int = 3, num_classes: int = 10, bytes_per_value: int = 4) -> MemoryEstimate:
    """The dense search network (``nasp.model.dense``, NAS-Bench-201's skeleton) trained densely: every candidate op
    of every edge of each cell, the node sums, the residual reductions between the stages, the stem and the head,
    plus parameters, gradients and momentum. Builds nothing; the torch RNG is left as it was."""
    from nasp.model.dense import CELL, stage_layout

    cell = space.cells[CELL]
    B, size, C = batch_size, image_size, channels
    values = 2 * B * C * size * size  # stem conv and BatchNorm
    params = in_channels * C * 9 + 2 * C
    with torch.random.fork_rng(devices=[]):
        for width in stage_layout(channels, cells):
            if width is None:  # a residual reduction: two ReLU-conv-BN at half the size, the shortcut, the sum
                size = max(1, size // 2)
                values += 9 * B * 2 * C * size * size
                params += C * 2 * C * 9 + 2 * C * 2 * C * 9 + 4 * 2 * C + C * 2 * C
                C *= 2
                continue
            plane = B * C * size * size
            for _ in cell.edges:
                for op in cell.ops:
                    values += math.ceil((op_activation_factor(op, 1, search=False) + 1) * plane)
                    params += op_param_count(op, C, 1)
            values += cell.n_nodes * plane
    values += 2 * B * C * size * size  # the last BatchNorm-ReLU
    params += 2 * C + C * num_classes + num_classes
    return MemoryEstimate(params, values * bytes_per_value, _state_bytes(params, bytes_per_value))


def estimate_eval_memory(genotype: Genotype, channels: int, layers: int, batch_size: int, image_size: int,
                         in_channels: int = 3, num_classes: int = 10, stem_multiplier: int = 3,
                         stem_stride: int = 1, bytes_per_value: int = 4) -> MemoryEstimate:
    """The evaluation network of ``genotype`` (the chosen op on each kept edge): the same sum over its
    cells, with only the genotype's ops. ``stem_stride``: 1 for the CIFAR stem, 8 for the ImageNet one."""
    with torch.random.fork_rng(devices=[]):
        return _eval(genotype, channels, layers, batch_size, image_size, in_channels, num_classes, stem_multiplier,
                     stem_stride, bytes_per_value)


def _eval(genotype: Genotype, channels: int, layers: int, batch_size: int, image_size: int, in_channels: int,
          num_classes: int, stem_multiplier: int, stem_stride: int, bytes_per_value: int) -> MemoryEstimate:
    space = genotype.resolve_space()
    n_inputs = {ct: (space.cells[ct].n_inputs if space is not None else 2) for ct in genotype.cells}
    C_stem = stem_multiplier * channels
    slots, C_last = cell_slots(channels, layers, C_stem, {ct: len(nodes) for ct, nodes in genotype.cells.items()})
    B = batch_size
    size = max(1, image_size // stem_stride)
    values = 2 * B * C_stem * size * size
    params = in_channels * C_stem * 9 + 2 * C_stem + C_last * num_classes + num_classes
    sizes = [size, size]
    for slot in slots:
        nodes = genotype.cells[slot.cell_type]
        h_in = sizes[-1]
        h_out = h_in // 2 if slot.reduction else h_in
        plane_in, plane_out = B * slot.C * h_in * h_in, B * slot.C * h_out * h_out
        values += 2 * _relu_conv_bn(plane_in)
        params += slot.C_pp * slot.C + slot.C_p * slot.C
        for node in nodes:
            for edge in node:
                stride = 2 if slot.reduction and edge.input < n_inputs[slot.cell_type] else 1
                values += math.ceil(op_activation_factor(edge.op, stride, search=False) * plane_out)
                params += op_param_count(edge.op, slot.C, stride, affine=True)
        values += 2 * len(nodes) * plane_out
        sizes.append(h_out)
    return MemoryEstimate(params, values * bytes_per_value, _state_bytes(params, bytes_per_value))


def estimate_rnn_search_memory(space: SearchSpace, vocab_size: int, emsize: int, nhid: int, streams: int, bptt: int,
                               bytes_per_value: int = 4) -> MemoryEstimate:
    """The recurrent search network (``nasp.model.recurrent``) trained on one window: per token the embedding, the
    cell's input transform, every node's transform and each candidate op's output (the dense pass), the node
    states, and the logits with their gradient; the parameters (embedding and decoder tied when emsize == nhid)
    with their gradients and momentum. Arithmetic only: nothing is allocated."""
    cell = next(iter(space.cells.values()))
    n_nodes, n_ops = cell.n_nodes, len(cell.ops)
    decoder = vocab_size if emsize == nhid else nhid * vocab_size + vocab_size
    params = vocab_size * emsize + (emsize + nhid) * 2 * nhid + n_nodes * nhid * 2 * nhid + decoder
    per_token = emsize + 2 * nhid * (n_nodes + 1) + nhid * n_nodes * (n_ops + 1) + 2 * vocab_size
    return MemoryEstimate(params, streams * bptt * per_token * bytes_per_value, _state_bytes(params, bytes_per_value))


def available_memory(device: torch.device | str) -> int | None:
    """Bytes free for a network on ``device``: free CUDA memory, or the machine's available RAM for the CPU;
    None where nasp cannot tell (mps)."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type != "cpu":
        return None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(estimate: MemoryEstimate, limit: int | None, what: str = "the search network",
                 where: str = "this device", keys: tuple[str, ...] = LOWER_KEYS) -> None:
    """ConfigError when ``estimate`` exceeds ``limit`` bytes (None: no limit known), with both in GiB and the
    keys that lower it. Pure: the caller measures the limit (``available_memory``)."""
    if limit is None or estimate.total_bytes <= limit:
        return
    lower = ", ".join(keys)
    raise ConfigError(f"{what} needs about {estimate.gib:.1f} GiB to train ({estimate.activation_bytes / GIB:.1f} GiB "
                      f"of activations, {estimate.state_bytes / GIB:.2f} GiB of parameters, gradients and optimiser "
                      f"state) but {where} has {limit / GIB:.1f} GiB available; lower {lower}")
