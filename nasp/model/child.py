"""The network a genotype defines: only the chosen op on each kept edge (an ordinary network)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from nasp.ops import create_op
from nasp.ops.layers import FactorizedReduce, ReLUConvBN

if TYPE_CHECKING:
    from nasp.genotype import Genotype


class ChildCell(nn.Module):
    def __init__(self, nodes: list, n_inputs: int, C_pp: int, C_p: int, C: int, reduction: bool,
                 reduction_prev: bool, affine: bool = True) -> None:
        super().__init__()
        self.reduction = reduction
        self.n_inputs = n_inputs
        self.preprocess0 = FactorizedReduce(C_pp, C, affine) if reduction_prev else ReLUConvBN(C_pp, C, 1, 1, 0, affine)
        self.preprocess1 = ReLUConvBN(C_p, C, 1, 1, 0, affine)
        self.inputs = [[e.input for e in node] for node in nodes]
        self.ops = nn.ModuleList(
            nn.ModuleList(create_op(e.op, C, 2 if reduction and e.input < n_inputs else 1, affine) for e in node)
            for node in nodes
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for inputs, ops in zip(self.inputs, self.ops, strict=True):
            terms = [op(states[i]) for i, op in zip(inputs, ops, strict=True)]
            states.append(sum(terms[1:], terms[0]))
        return torch.cat(states[self.n_inputs:], dim=1)


class ChildNetwork(nn.Module):
    """The discrete network of a CNN genotype, laid out like the search network."""

    def __init__(self, genotype: Genotype, channels: int = 16, layers: int = 8, num_classes: int = 10,
                 in_channels: int = 3, stem_multiplier: int = 3, affine: bool = True) -> None:
        super().__init__()
        space = genotype.resolve_space()
        assert space is not None
        C_curr = stem_multiplier * channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C_curr, 3, padding=1, bias=False), nn.BatchNorm2d(C_curr))
        C_pp, C_p, C_curr = C_curr, C_curr, channels
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = layers >= 3 and i in (layers // 3, 2 * layers // 3)
            if reduction:
                C_curr *= 2
            ct = "reduce" if reduction else "normal"
            nodes = genotype.cells[ct]
            self.cells.append(ChildCell(nodes, space.cells[ct].n_inputs, C_pp, C_p, C_curr, reduction,
                                        reduction_prev, affine))
            reduction_prev = reduction
            C_pp, C_p = C_p, len(nodes) * C_curr
        self.classifier = nn.Linear(C_p, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(F.adaptive_avg_pool2d(s1, 1).flatten(1))
