"""The search network: every candidate op on every edge, run densely or sparsely.

Three forward modes serve all algorithms:
- ``dense``: node = sum over all (edge, op) of w[e, k] * op(x) (DARTS; the naive reference);
- ``sparse``: only the selected (edge, op) pairs are run, forward and backward (NASP's weight step);
- ``sparse`` with an :class:`ArchGradProbe`: the child network is run, and when the gradient of a
  node arrives during backward, the probe runs every candidate op of that node's edges without
  autograd and takes dL/da = <dL/dnode, op(x)>, freeing each output at once. That is NASP's
  architecture gradient at the memory and most of the cost of the child network.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nasp.model.layout import cell_slots
from nasp.model.probe import ArchGradProbe, Dot, Selection, run_stacked, split_leading_relu, stackable, upcast
from nasp.model.protocol import register_network
from nasp.ops import create_op
from nasp.ops.layers import FactorizedReduce, ReLUConvBN
from nasp.spaces import CellSpace, SearchSpace


class CellProbe:
    """One cell's part of the probe, for one forward and backward pass.

    Work saved without changing the result: the selected ops' outputs are kept from the forward
    pass; ops starting with a ReLU share one ReLU of their source node; parameter-free ops (pools,
    identity) give the same output on every edge leaving a node, so each runs once per source. A pool
    with its (non-affine) BatchNorm pools once per source and runs each edge's own BatchNorm on that, so
    the running statistics of every edge move as in a pass that ran every op (the authors'); other
    parameter-free ops with buffers run on each edge."""

    def __init__(self, probe: ArchGradProbe, cell: SearchCell, states: list[torch.Tensor]) -> None:
        self.grads = probe.grads[cell.cell_type]
        self.stacked = probe.stacked
        self.cell = cell
        self.states = states  # grows as the cell runs; every source of node j exists when j's hook fires
        self.selected: dict[tuple[int, int], torch.Tensor] = {}
        self.shared: dict[tuple[str, int, int], torch.Tensor] = {}
        self.pending = cell.space.n_nodes
        probe.finishers.append(self.release)

    def release(self) -> None:
        """After the backward pass: let the cell's states go. Each node's hook holds this probe and this probe
        held the nodes, a cycle through autograd that Python's collector cannot see: kept, it leaked every
        architecture step's activations (350 MB an epoch in a bare run's network)."""
        self.states = []
        self.shared.clear()
        self.selected.clear()

    def keep(self, e: int, k: int, y: torch.Tensor) -> None:
        self.selected[(e, k)] = y.detach()

    def watch(self, node: torch.Tensor, j: int) -> None:
        if node.requires_grad:
            node.register_hook(lambda g: self._node_grad(j, g))
        else:
            self._done()

    def _done(self) -> None:
        self.pending -= 1
        if self.pending == 0:
            self.shared.clear()
            self.selected.clear()

    def _output(self, e: int, k: int, src: int) -> torch.Tensor:
        y = self.selected.pop((e, k), None)
        if y is not None:
            return y
        cell = self.cell
        op = cell.edge_ops[e][k]
        key = ("op", src, k)
        split = cell.pool_norms[e][k]
        if split is not None:  # a pool and its BatchNorm: the pool once per source, each edge's own norm on it, so
            pooled = self.shared.get(("pooled", src, k))  # every edge's running statistics move, as in a full pass
            if pooled is None:
                pooled = self.shared[("pooled", src, k)] = split[0](self.states[src].detach())
            return split[1](pooled)
        shareable = cell.param_free[e][k] and not cell.stateful[e][k]  # a stateful op runs on its own edge
        if shareable and key in self.shared:
            return self.shared[key]
        x = self.states[src].detach()
        tail = cell.relu_tails[e][k]
        if tail is not None:
            relu = self.shared.get(("relu", src, 0))
            if relu is None:
                relu = self.shared[("relu", src, 0)] = torch.relu(x)
            y = tail(relu)
        else:
            y = op(x)
        if shareable:
            self.shared[key] = y
        return y

    def _node_grad(self, j: int, g: torch.Tensor) -> None:
        sp = self.cell.space
        rows = sp.node_edges(j)
        with torch.no_grad():
            dot = Dot(g)
            found: dict[tuple[int, int], torch.Tensor] = {}
            if self.stacked:
                for group in self.cell.stack_groups[j]:
                    group = [(e, k) for e, k in group if (e, k) not in self.selected]
                    if len(group) > 1:
                        found.update(zip(group, self._stacked_dots(group, g), strict=True))
            dots = [found[(e, k)] if (e, k) in found else dot(self._output(e, k, sp.edges[e][0]))
                    for e in rows for k in range(sp.n_ops)]
            self.grads[rows.start:rows.stop] += torch.stack(dots).view(len(rows), -1)
        self._done()

    def _stacked_dots(self, group: list[tuple[int, int]], g: torch.Tensor) -> torch.Tensor:
        """<g, op_e(x_e)> for one op on several edges: the inputs stacked along channels, the op's layers run
        once as grouped layers (``run_stacked``); the op's leading ReLU is shared per source as in ``_output``."""
        cell = self.cell
        xs, mods = [], []
        for e, k in group:
            src = cell.space.edges[e][0]
            tail = cell.relu_tails[e][k]
            if tail is None:
                xs.append(self.states[src].detach())
                mods.append(cell.edge_ops[e][k])
                continue
            relu = self.shared.get(("relu", src, 0))
            if relu is None:
                relu = self.shared[("relu", src, 0)] = torch.relu(self.states[src].detach())
            xs.append(relu)
            mods.append(tail)
        y = upcast(run_stacked(mods, torch.cat(xs, dim=1)))
        gy = upcast(g).unsqueeze(1)
        return (y.unflatten(1, (len(group), -1)) * gy).sum(dim=(0, 2, 3, 4))


def split_trailing_norm(op: nn.Module) -> tuple[nn.Module, nn.BatchNorm2d] | None:
    """(the layers before it, the BatchNorm) of an ``op`` ending in a non-affine BatchNorm whose other layers hold
    no parameters and no buffers (a search network's pool, ``create_op(search=True)``), else None."""
    if type(op) is not nn.Sequential or len(op) < 2 or not isinstance(op[-1], nn.BatchNorm2d) or op[-1].affine:
        return None
    layers = list(op)
    head = nn.Sequential(*layers[:-1])
    if any(True for _ in head.parameters()) or any(True for _ in head.buffers()):
        return None
    return head, layers[-1]


class SearchCell(nn.Module):
    def __init__(self, cell_type: str, space: CellSpace, C_pp: int, C_p: int, C: int, reduction_prev: bool) -> None:
        super().__init__()
        self.preprocess0 = FactorizedReduce(C_pp, C, affine=False) if reduction_prev else ReLUConvBN(C_pp, C, 1, 1, 0, False)
        self.preprocess1 = ReLUConvBN(C_p, C, 1, 1, 0, affine=False)
        self._build_edges(cell_type, space, C, pool_bn=True)

    def _build_edges(self, cell_type: str, space: CellSpace, C: int, pool_bn: bool) -> None:
        """Every candidate op on every edge, and what the probe needs of them. ``pool_bn``: pools get DARTS's
        non-affine BatchNorm (NAS-Bench-201's search cell has none)."""
        self.cell_type = cell_type
        self.space = space
        self.reduction = space.reduction
        self.edge_ops = nn.ModuleList()
        for src, _ in space.edges:
            stride = 2 if self.reduction and src < space.n_inputs else 1
            self.edge_ops.append(nn.ModuleList(create_op(name, C, stride, affine=False, search=pool_bn)
                                               for name in space.ops))
        # for the probe: ops without parameters (output depends on the source only), and each op
        # without its leading ReLU (plain lists: the layers stay registered once, in edge_ops)
        self.param_free = [[not any(True for _ in op.parameters()) for op in ops] for ops in self.edge_ops]
        self.stateful = [[any(True for _ in op.buffers()) for op in ops] for ops in self.edge_ops]
        self.pool_norms = [[split_trailing_norm(op) for op in ops] for ops in self.edge_ops]
        self.relu_tails = [[split_leading_relu(op) for op in ops] for ops in self.edge_ops]
        self.stack_groups = [self._stack_groups(j) for j in range(space.n_nodes)]

    def _stack_groups(self, j: int) -> list[list[tuple[int, int]]]:
        """Node j's (edge, op) pairs the probe can run as one: an op with parameters on edges of the same
        stride (its layers ``stackable``), with or without their shared leading ReLU alike."""
        groups: list[list[tuple[int, int]]] = []
        for k in range(self.space.n_ops):
            by_shape: dict[bool, list[int]] = {}
            for e in self.space.node_edges(j):
                if not self.param_free[e][k]:
                    by_shape.setdefault(self.reduction and self.space.edges[e][0] < self.space.n_inputs, []).append(e)
            for edges in by_shape.values():
                tails = [self.relu_tails[e][k] for e in edges]
                if len(edges) < 2 or len({t is None for t in tails}) > 1:
                    continue
                mods = [self.edge_ops[e][k] if t is None else t for e, t in zip(edges, tails, strict=True)]
                if stackable(mods):
                    groups.append([(e, k) for e in edges])
        return groups

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor | None,
                selection: Selection | None = None, probe: ArchGradProbe | None = None) -> torch.Tensor:
        states = self.run_nodes([self.preprocess0(s0), self.preprocess1(s1)], weights, selection, probe)
        return torch.cat(states[self.space.n_inputs:], dim=1)

    def run_nodes(self, states: list[torch.Tensor], weights: torch.Tensor | None, selection: Selection | None,
                  probe: ArchGradProbe | None) -> list[torch.Tensor]:
        """``states`` (the cell's inputs) extended by every node: dense (``selection`` None) or the selected ops."""
        sp = self.space
        cell_probe = CellProbe(probe, self, states) if probe is not None else None
        for j in range(sp.n_nodes):
            if selection is None:  # dense: all ops of all edges
                assert weights is not None
                node = sum(weights[e, k] * op(states[sp.edges[e][0]])
                           for e in sp.node_edges(j) for k, op in enumerate(self.edge_ops[e]))
            else:
                terms = []
                for e, k in selection[j]:
                    y = self.edge_ops[e][k](states[sp.edges[e][0]])
                    if cell_probe is not None:
                        cell_probe.keep(e, k, y)
                    terms.append(y if weights is None else weights[e, k] * y)
                node = sum(terms[1:], terms[0]) if terms else torch.zeros_like(states[-1])
            if cell_probe is not None:
                cell_probe.watch(node, j)
            states.append(node)
        return states


class SearchNetwork(nn.Module):
    """DARTS's search network: a stem, ``layers`` cells with reductions at 1/3 and 2/3, a classifier.

    Defaults follow the paper (C=16, 8 cells, stem 3C)."""

    def __init__(self, space: SearchSpace, channels: int = 16, layers: int = 8, num_classes: int = 10,
                 in_channels: int = 3, stem_multiplier: int = 3) -> None:
        super().__init__()
        if space.kind != "cnn":
            raise ValueError(f"SearchNetwork builds CNN spaces, not '{space.kind}'")
        self.space = space
        self.channels = channels
        C_stem = stem_multiplier * channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C_stem, 3, padding=1, bias=False), nn.BatchNorm2d(C_stem))
        slots, C_p = cell_slots(channels, layers, C_stem, {ct: c.n_nodes for ct, c in space.cells.items()})
        self.cells = nn.ModuleList(
            SearchCell(slot.cell_type, space.cells[slot.cell_type], slot.C_pp, slot.C_p, slot.C, slot.reduction_prev)
            for slot in slots
        )
        self.classifier = nn.Linear(C_p, num_classes)

    @property
    def arch_shapes(self) -> dict[str, tuple[int, int]]:
        return {ct: (c.n_edges, c.n_ops) for ct, c in self.space.cells.items()}

    def forward(self, x: torch.Tensor, weights: dict[str, torch.Tensor] | None = None,
                selection: dict[str, Selection] | None = None, probe: ArchGradProbe | None = None) -> torch.Tensor:
        """``weights`` per cell type scale the ops (None: selected ops unscaled); ``selection``
        per cell type makes the pass sparse."""
        s0 = s1 = self.stem(x)
        if probe is not None:
            probe.root = s0
        for cell in self.cells:
            ct = cell.cell_type
            w = None if weights is None else weights[ct]
            sel = None if selection is None else selection[ct]
            s0, s1 = s1, cell(s0, s1, w, sel, probe)
        out = F.adaptive_avg_pool2d(s1, 1).flatten(1)
        return self.classifier(out)

    def weight_parameters(self) -> list[nn.Parameter]:
        return list(self.parameters())


@register_network("cnn")
def cnn_search_network(space: SearchSpace, channels: int, layers: int, num_classes: int = 10, in_channels: int = 3,
                       stem_multiplier: int = 3) -> SearchNetwork:
    """DARTS's CNN search network for image classification."""
    return SearchNetwork(space, channels, layers, num_classes, in_channels, stem_multiplier)
