"""A search space: for each cell type, its candidate ops and its DAG shape.

A CNN cell (DARTS) has 2 inputs, 4 intermediate nodes each keeping 2 incoming edges, and outputs
the concatenation of its nodes. The DARTS recurrent cell is the same shape with 1 input, 8 nodes
and 1 kept edge per node, so one model describes both. A dense cell (NAS-Bench-201's, kind ``dense``)
has 1 input and keeps every incoming edge of every node (``all_inputs``), one op each ('none' included);
its output is the last node.

Validation is in two levels, so that reading a space never needs (or imports) the code of its ops:

- structural, always: cell types, node and input counts in range, ops listed once, op and cell type
  names plain identifiers (letters, digits, underscore). ``SearchSpace.model_validate(raw)`` does
  this; it is all that viewing a space or a genotype read from a file needs.
- registered ops, for code that builds networks: every op is in the op registry (did-you-mean
  otherwise). ``SearchSpace.model_validate(raw, context=REGISTERED_OPS)`` or
  ``space.require_registered_ops()``; ``get_space``, ``load_space_file`` and ``with_ops`` do it.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from nasp.errors import ConfigError, NaspError
from nasp.ops import OPS
from nasp.registry import did_you_mean

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
MAX_NAME = 64  # op and cell type names
MAX_OPS = 64
MAX_INPUTS = 8
MAX_NODES = 64
MAX_SPACE_NAME = 100
CNN_CELLS = ("normal", "reduce")
RNN_CELLS = ("recurrent",)
DENSE_CELLS = ("cell",)

REGISTERED_OPS: dict[str, bool] = {"registered_ops": True}
"""Validation context of code that builds networks: ``model_validate(raw, context=REGISTERED_OPS)``."""


def identifier_problem(what: str, name: object) -> str | None:
    """Why ``name`` is not a plain identifier (letters, digits, underscore; at most MAX_NAME long), or None."""
    if not isinstance(name, str):
        return f"{what} must be a name (letters, digits, underscore), got {type(name).__name__} {name!r:.40}"
    if len(name) > MAX_NAME:
        return f"{what} '{name[:20]}...' is {len(name)} characters long; at most {MAX_NAME} are allowed"
    if not IDENTIFIER.match(name):
        return (f"{what} {name!r:.80} is not a plain identifier: only letters, digits and underscore are "
                f"allowed, not starting with a digit")
    return None


def check_identifier(what: str, name: str) -> str:
    """``name`` when it is a plain identifier, else ValueError (pydantic validators turn it into their error)."""
    problem = identifier_problem(what, name)
    if problem:
        raise ValueError(problem)
    return name


def check_label(what: str, text: str, limit: int = MAX_SPACE_NAME) -> str:
    """A name shown to people (space names): printable, no control characters, at most ``limit`` long."""
    if len(text) > limit:
        raise ValueError(f"{what} is {len(text)} characters long; at most {limit} are allowed")
    if not text.isprintable():
        raise ValueError(f"{what} {text!r:.80} holds control characters; only printable text is allowed")
    return text


def registered_ops_problem(ops: tuple[str, ...] | list[str], kind: str | None = None) -> str | None:
    """The did-you-mean message for the first op that is not registered (or, given the space's ``kind``, is an
    op of another kind), or None."""
    kind = "cnn" if kind == "dense" else kind  # a dense cell's ops are image ops
    known = [n for n in OPS.names() if kind is None or OPS.get(n).kind == kind]
    for op in ops:
        if op not in OPS:
            return f"unknown op '{op}'.{did_you_mean(op, known)} Known: {', '.join(known)}"
        if kind is not None and OPS.get(op).kind != kind:
            return (f"op '{op}' is an op of {OPS.get(op).kind} cells, not of {kind} cells. {kind} ops: "
                    f"{', '.join(known)}")
    return None


def _wants_registered(info: ValidationInfo) -> bool:
    return isinstance(info.context, dict) and bool(info.context.get("registered_ops"))


class CellSpace(BaseModel):
    """One cell type: candidate ops (columns of A) and the DAG they live on (rows of A)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ops: tuple[str, ...] = Field(description="candidate ops, in the column order of A")
    n_inputs: int = Field(2, ge=1, le=MAX_INPUTS, description="input nodes of the cell")
    n_nodes: int = Field(4, ge=1, le=MAX_NODES, description="intermediate nodes")
    inputs_per_node: int = Field(2, ge=1, le=MAX_INPUTS,
                                 description="incoming edges each node keeps in the discrete cell")
    reduction: bool = Field(False, description="halves height and width (stride 2 on input edges)")
    all_inputs: bool = Field(False, description="every node keeps every incoming edge, one op each (dense spaces; "
                             "inputs_per_node is then unused)")

    @field_validator("ops", mode="before")
    @classmethod
    def _ops_list(cls, ops: Any) -> Any:
        if isinstance(ops, str) or not isinstance(ops, list | tuple):
            raise ValueError(f"ops must be a list of op names, got {type(ops).__name__} {ops!r:.60}")
        return ops

    @field_validator("ops")
    @classmethod
    def _known_ops(cls, ops: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if not ops:
            raise ValueError("a cell needs at least one op")
        if len(ops) > MAX_OPS:
            raise ValueError(f"{len(ops)} ops; a cell may have at most {MAX_OPS}")
        for op in ops:
            check_identifier("op", op)
        if len(set(ops)) != len(ops):
            raise ValueError(f"ops are listed twice: {sorted({o for o in ops if ops.count(o) > 1})}")
        if _wants_registered(info):
            problem = registered_ops_problem(ops)
            if problem:
                raise ValueError(problem)
        return ops

    @model_validator(mode="after")
    def _fits(self) -> CellSpace:
        if self.inputs_per_node > self.n_inputs and not self.all_inputs:
            raise ValueError(f"inputs_per_node {self.inputs_per_node} is more than n_inputs {self.n_inputs}: "
                             f"the first node can only read the {self.n_inputs} cell input(s)")
        return self

    @cached_property
    def edges(self) -> list[tuple[int, int]]:
        """(source, node) pairs in row order of A; node indices count the inputs first."""
        return [(i, self.n_inputs + j) for j in range(self.n_nodes) for i in range(self.n_inputs + j)]

    def node_edges(self, j: int) -> range:
        """Row indices of A of the edges entering intermediate node j (0-based)."""
        start = sum(self.n_inputs + k for k in range(j))
        return range(start, start + self.n_inputs + j)

    def kept_inputs(self, j: int) -> int:
        """Incoming edges intermediate node j (0-based) keeps in the discrete cell."""
        return self.n_inputs + j if self.all_inputs else self.inputs_per_node

    @property
    def n_edges(self) -> int:
        """Rows of A: one an edge."""
        return len(self.edges)

    @property
    def n_ops(self) -> int:
        """Columns of A: one a candidate op."""
        return len(self.ops)


class SearchSpace(BaseModel):
    """A named set of cell types (``normal`` and ``reduce`` for CNNs, ``recurrent`` for RNNs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: Literal["cnn", "rnn", "dense"] = "cnn"
    cells: dict[str, CellSpace]
    description: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not name:
            raise ValueError("a space needs a name")
        return check_label("space name", name)

    @field_validator("description")
    @classmethod
    def _description(cls, text: str) -> str:
        check_label("description", text.replace("\n", " "), 2000)
        return text

    @field_validator("cells")
    @classmethod
    def _cell_types(cls, cells: dict[str, CellSpace]) -> dict[str, CellSpace]:
        if not cells:
            raise ValueError("a space needs at least one cell type")
        for ct in cells:
            check_identifier("cell type", ct)
        return cells

    @model_validator(mode="after")
    def _cells_of_kind(self) -> SearchSpace:
        problem = cnn_cells_problem(self) or rnn_cells_problem(self) or dense_cells_problem(self)
        if problem:
            raise ValueError(problem)
        return self

    @property
    def cell_types(self) -> list[str]:
        """The cell type names, in order."""
        return list(self.cells)

    def registered_ops_problem(self) -> str | None:
        """The did-you-mean message for the first op of a cell that is not registered, or None."""
        for ct, cell in self.cells.items():
            problem = registered_ops_problem(cell.ops, self.kind)
            if problem:
                return f"{ct} cell: {problem}"
        return None

    def require_registered_ops(self, error: type[NaspError] = ConfigError, where: str = "") -> SearchSpace:
        """This space when all its ops are registered (code that builds networks needs that), else ``error``."""
        problem = self.registered_ops_problem()
        if problem:
            raise error(f"{where}space '{self.name}': {problem}")
        return self

    def with_ops(self, registered_ops: bool = True, **ops: list[str]) -> SearchSpace:
        """A copy with some cell types' op lists replaced (``space.normal=a,b`` overrides); ValueError with a
        one-line message when a cell type or an op is unknown (ops must be registered unless ``registered_ops``
        is False, as for viewing a run's space)."""
        cells = dict(self.cells)
        for cell_type, names in ops.items():
            if cell_type not in cells:
                raise ValueError(f"space '{self.name}' has no cell type '{cell_type}' (it has {', '.join(cells)})")
            problem = None
            for op in names:
                problem = problem or identifier_problem("op", op)
            problem = problem or (registered_ops_problem(names, self.kind) if registered_ops else None)
            if not problem and len(set(names)) != len(names):
                problem = f"ops are listed twice: {sorted({o for o in names if list(names).count(o) > 1})}"
            if not problem and not names:
                problem = "a cell needs at least one op"
            if problem:
                raise ValueError(f"{cell_type} ops: {problem}")
            cells[cell_type] = cells[cell_type].model_copy(update={"ops": tuple(names)})
        return self.model_copy(update={"cells": cells})


def cnn_cells_problem(space: SearchSpace) -> str | None:
    """What keeps ``space`` from being a CNN space the networks can build (cell types, inputs, reductions)."""
    if space.kind != "cnn":
        return None
    missing = [ct for ct in CNN_CELLS if ct not in space.cells]
    if missing:
        return (f"a cnn space needs the cell types {' and '.join(CNN_CELLS)}; cell type '{missing[0]}' is missing "
                f"(it has {', '.join(space.cells)})")
    extra = [ct for ct in space.cells if ct not in CNN_CELLS]
    if extra:
        return f"a cnn space has the cell types {' and '.join(CNN_CELLS)} only, not '{extra[0]}'"
    for ct, cell in space.cells.items():
        if cell.n_inputs != 2:
            return f"{ct} cell: n_inputs {cell.n_inputs}; a cnn cell reads 2 inputs (the two previous cells)"
        if cell.reduction != (ct == "reduce"):
            return (f"{ct} cell: reduction {str(cell.reduction).lower()}; in a cnn space the reduce cell has "
                    f"reduction true and the normal cell reduction false")
    return None


def rnn_cells_problem(space: SearchSpace) -> str | None:
    """What keeps ``space`` from being a recurrent space (DARTS's cell: node 0 from x_t and h_{t-1}, the
    others each reading earlier nodes)."""
    if space.kind != "rnn":
        return None
    if list(space.cells) != list(RNN_CELLS):
        return f"an rnn space has the one cell type 'recurrent' (it has {', '.join(space.cells)})"
    cell = space.cells["recurrent"]
    if cell.n_inputs != 1:
        return (f"recurrent cell: n_inputs {cell.n_inputs}; a recurrent cell reads 1 input (node 0, made from x_t "
                f"and h_(t-1))")
    if cell.reduction:
        return "recurrent cell: reduction true; a recurrent cell has no reduction"
    return None


def dense_cells_problem(space: SearchSpace) -> str | None:
    """What keeps ``space`` from being a dense space (NAS-Bench-201's cell: node 0 the cell's input, every later node
    the sum of all earlier nodes, each through one op)."""
    if space.kind != "dense":
        return None
    if list(space.cells) != list(DENSE_CELLS):
        return f"a dense space has the one cell type 'cell' (it has {', '.join(space.cells)})"
    cell = space.cells["cell"]
    if cell.n_inputs != 1:
        return f"cell: n_inputs {cell.n_inputs}; a dense cell reads 1 input (the previous cell's output)"
    if cell.reduction:
        return "cell: reduction true; a dense space reduces between its stages (residual blocks), not in its cells"
    if not cell.all_inputs:
        return "cell: all_inputs false; a dense cell keeps every incoming edge of every node (all_inputs: true)"
    return None
