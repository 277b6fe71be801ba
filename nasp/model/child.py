"""The network a genotype defines: only the chosen op on each kept edge (an ordinary network)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from nasp.model.layout import cell_slots
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
        C_stem = stem_multiplier * channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C_stem, 3, padding=1, bias=False), nn.BatchNorm2d(C_stem))
        slots, C_p = cell_slots(channels, layers, C_stem, {ct: len(nodes) for ct, nodes in genotype.cells.items()})
        self.cells = nn.ModuleList(
            ChildCell(genotype.cells[s.cell_type], space.cells[s.cell_type].n_inputs, s.C_pp, s.C_p, s.C, s.reduction,
                      s.reduction_prev, affine)
            for s in slots
        )
        self.classifier = nn.Linear(C_p, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(F.adaptive_avg_pool2d(s1, 1).flatten(1))
