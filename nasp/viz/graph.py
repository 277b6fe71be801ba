"""The canonical graph of a cell: one networkx DiGraph that rendering, text drawing and the app share.

Nodes: the cell inputs (``c_{k-2}``, ``c_{k-1}`` for a CNN cell), the intermediate nodes ``"0"`` ..
``"n-1"`` and the output (``c_{k}``); node attribute ``kind`` is ``input``, ``node`` or ``output``.
Edges into intermediate nodes carry their ``op``; edges into the output carry ``op="concat"`` (CNN:
the output concatenates the nodes), ``op="mean"`` (recurrent: h_t averages them, as in DARTS) or, from the
last node only, ``op="last"`` (dense, NAS-Bench-201: the cell's output is its last node).
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from nasp.errors import GenotypeError
from nasp.genotype import Genotype
from nasp.registry import did_you_mean


@dataclass(frozen=True)
class CellShape:
    """What a drawing needs to know of a cell type beyond the genotype."""

    kind: str  # "cnn" | "rnn" | "dense"
    n_inputs: int
    reduction: bool


def cell_shape(genotype: Genotype, cell_type: str) -> CellShape:
    """The cell type's shape from its space; a genotype of an unloaded plugin space is drawn as a CNN cell."""
    if cell_type not in genotype.cells:
        raise GenotypeError(f"the genotype has no cell type '{cell_type}'.{did_you_mean(cell_type, list(genotype.cells))} "
                            f"It has: {', '.join(genotype.cells)}")
    space = genotype.resolve_space(strict=False)
    if space is not None and cell_type in space.cells:
        cell = space.cells[cell_type]
        return CellShape(space.kind, cell.n_inputs, cell.reduction)
    first = genotype.cells[cell_type][:1]
    n_inputs = max([2] + [e.input + 1 for node in first for e in node])  # node 0 reads only cell inputs
    return CellShape("cnn", n_inputs, cell_type == "reduce")


def input_names(shape: CellShape) -> list[str]:
    """Names of the cell inputs: c_{k-2}, c_{k-1} for a CNN cell; x_{t}, h_{t-1} for a recurrent one."""
    n = shape.n_inputs
    if shape.kind == "rnn":
        if n == 1:
            return ["x_{t}/h_{t-1}"]  # DARTS's first node: tanh of a linear map of x_t and h_{t-1}
        if n == 2:
            return ["x_{t}", "h_{t-1}"]
        return [f"x_{{t}}/h_{{t-{i}}}" for i in range(n, 0, -1)]
    return [f"c_{{k-{i}}}" for i in range(n, 0, -1)]


def output_name(shape: CellShape) -> str:
    return "h_{t}" if shape.kind == "rnn" else "c_{k}"


def cell_graph(genotype: Genotype, cell_type: str) -> nx.DiGraph:
    """The DiGraph of one cell of ``genotype`` (see the module docstring for names and attributes)."""
    shape = cell_shape(genotype, cell_type)
    inputs = input_names(shape)
    nodes = genotype.cells[cell_type]
    names = inputs + [str(j) for j in range(len(nodes))]
    out = output_name(shape)
    g = nx.DiGraph(cell_type=cell_type, space=genotype.space, kind=shape.kind, reduction=shape.reduction,
                   inputs=inputs, nodes=names[len(inputs):], output=out)
    for name in inputs:
        g.add_node(name, kind="input")
    for j in range(len(nodes)):
        g.add_node(str(j), kind="node", index=j)
    g.add_node(out, kind="output")
    for j, edges in enumerate(nodes):
        for e in edges:
            if e.input >= len(inputs) + j:
                raise GenotypeError(f"{cell_type} cell, node {j}: input {e.input} is not an input or an earlier node")
            g.add_edge(names[e.input], str(j), op=e.op, input=e.input)
    combine = output_combine(shape.kind)
    for j in range(len(nodes)):
        if combine != "last" or j == len(nodes) - 1:
            g.add_edge(str(j), out, op=combine)
    return g


def output_combine(kind: str) -> str:
    """How a cell's output is made of its nodes: concat (cnn), mean (rnn) or the last node (dense)."""
    return {"rnn": "mean", "dense": "last"}.get(kind, "concat")


def edge_label(source: str, node: str) -> str:
    """How plots name an edge of A: ``c_{k-2}→0``."""
    return f"{source}→{node}"


def edge_names(shape: CellShape, edges: list[tuple[int, int]]) -> list[str]:
    """Row names of A (a CellSpace's ``edges``, node indices counting inputs first) in the graph's node names."""
    inputs = input_names(shape)

    def name(i: int) -> str:
        return inputs[i] if i < shape.n_inputs else str(i - shape.n_inputs)

    return [edge_label(name(s), name(t)) for s, t in edges]
