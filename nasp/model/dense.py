"""NAS-Bench-201's network skeleton for dense spaces: a 3x3 conv stem with BatchNorm, three stages of N cells at
C, 2C and 4C channels with a residual reduction block (a basic ResNet block at stride 2) between stages, then
BatchNorm-ReLU, global pooling and a linear classifier. A dense cell reads the previous cell's output (node 0);
every later node is the sum over all earlier nodes of one op per edge; the cell's output is its last node.

``DenseSearchNetwork`` runs every candidate op (the search, any algorithm: the forward modes of
``nasp.model.search``); ``DenseChildNetwork`` is the network of a genotype (one op per edge, 'none' edges
dropped: they add zeros).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from nasp.model.probe import ArchGradProbe, Selection
from nasp.model.protocol import register_network
from nasp.model.search import SearchCell
from nasp.ops import create_op
from nasp.ops.layers import ReLUConvBN
from nasp.spaces import CellSpace, SearchSpace

if TYPE_CHECKING:
    from nasp.genotype import Genotype

CELL = "cell"  # a dense space's one cell type


class ResidualReduction(nn.Module):
    """NAS-Bench-201's reduction between stages: ReLU-conv3x3(stride 2)-BN, ReLU-conv3x3-BN, plus a shortcut of
    2x2 average pooling and a 1x1 conv."""

    def __init__(self, C_in: int, C_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(C_in, C_out, 3, 2, 1, affine=True)
        self.conv_b = ReLUConvBN(C_out, C_out, 3, 1, 1, affine=True)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, stride=2), nn.Conv2d(C_in, C_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


def stage_layout(channels: int, cells: int) -> list[int | None]:
    """The skeleton's blocks in order: a cell's width, or None for a residual reduction (doubling the width)."""
    out: list[int | None] = []
    for stage in range(3):
        if stage:
            out.append(None)
        out.extend([channels * 2**stage] * cells)
    return out


class DenseSearchCell(SearchCell):
    """A dense cell with every candidate op on every edge; node 0 is the cell's input, the output its last node."""

    def __init__(self, space: CellSpace, C: int) -> None:
        nn.Module.__init__(self)
        self._build_edges(CELL, space, C, pool_bn=False)

    def forward(self, x: torch.Tensor, weights: torch.Tensor | None,  # type: ignore[override]
                selection: Selection | None = None, probe: ArchGradProbe | None = None) -> torch.Tensor:
        return self.run_nodes([x], weights, selection, probe)[-1]


class _Skeleton(nn.Module):
    """Stem, the stages' blocks (built by ``make_cell``) and the head, shared by the search and child networks."""

    def __init__(self, channels: int, cells: int, num_classes: int, in_channels: int, make_cell) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.channels = channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))
        blocks: list[nn.Module] = []
        C = channels
        for width in stage_layout(channels, cells):
            blocks.append(ResidualReduction(C, 2 * C) if width is None else make_cell(width))
            C = 2 * C if width is None else width
        self.blocks = nn.ModuleList(blocks)
        self.lastact = nn.Sequential(nn.BatchNorm2d(C), nn.ReLU())
        self.classifier = nn.Linear(C, num_classes)

    def head(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(F.adaptive_avg_pool2d(self.lastact(x), 1).flatten(1))


class DenseSearchNetwork(_Skeleton):
    """NAS-Bench-201's skeleton around dense search cells (C=16, N=5 in the benchmark)."""

    def __init__(self, space: SearchSpace, channels: int = 16, cells: int = 5, num_classes: int = 10,
                 in_channels: int = 3) -> None:
        if space.kind != "dense":
            raise ValueError(f"DenseSearchNetwork builds dense spaces, not '{space.kind}'")
        cell = space.cells[CELL]
        super().__init__(channels, cells, num_classes, in_channels, lambda C: DenseSearchCell(cell, C))
        self.space = space

    @property
    def arch_shapes(self) -> dict[str, tuple[int, int]]:
        return {ct: (c.n_edges, c.n_ops) for ct, c in self.space.cells.items()}

    def forward(self, x: torch.Tensor, weights: dict[str, torch.Tensor] | None = None,
                selection: dict[str, Selection] | None = None, probe: ArchGradProbe | None = None) -> torch.Tensor:
        s = self.stem(x)
        if probe is not None:
            probe.root = s
        for block in self.blocks:
            if isinstance(block, DenseSearchCell):
                s = block(s, None if weights is None else weights[CELL], None if selection is None else selection[CELL],
                          probe)
            else:
                s = block(s)
        return self.head(s)


@register_network("dense")
def dense_search_network(space: SearchSpace, channels: int, layers: int, num_classes: int = 10, in_channels: int = 3,
                         stem_multiplier: int = 3) -> DenseSearchNetwork:
    """NAS-Bench-201's search network: ``layers`` is N, the cells of each of the three stages (the stem is C wide
    whatever ``stem_multiplier`` says)."""
    return DenseSearchNetwork(space, channels, layers, num_classes, in_channels)


class DenseChildCell(nn.Module):
    """A genotype's dense cell: each node the sum of its edges' ops ('none' edges left out: zeros)."""

    def __init__(self, nodes: list, C: int, affine: bool = True) -> None:
        super().__init__()
        self.inputs = [[e.input for e in node if e.op != "none"] for node in nodes]
        self.ops = nn.ModuleList(nn.ModuleList(create_op(e.op, C, 1, affine) for e in node if e.op != "none")
                                 for node in nodes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states = [x]
        for inputs, ops in zip(self.inputs, self.ops, strict=True):
            terms = [op(states[i]) for i, op in zip(inputs, ops, strict=True)]
            states.append(sum(terms[1:], terms[0]) if terms else torch.zeros_like(x))
        return states[-1]


class DenseChildNetwork(_Skeleton):
    """The network of a dense genotype: NAS-Bench-201's skeleton around its cell (the benchmark's C=16, N=5)."""

    def __init__(self, genotype: Genotype, channels: int = 16, cells: int = 5, num_classes: int = 10,
                 in_channels: int = 3) -> None:
        nodes = genotype.cells[CELL]
        super().__init__(channels, cells, num_classes, in_channels, lambda C: DenseChildCell(nodes, C))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stem(x)
        for block in self.blocks:
            s = block(s)
        return self.head(s)
