"""A search space: for each cell type, its candidate ops and its DAG shape.

A CNN cell (DARTS) has 2 inputs, 4 intermediate nodes each keeping 2 incoming edges, and outputs
the concatenation of its nodes. The DARTS recurrent cell is the same shape with 1 input, 8 nodes
and 1 kept edge per node, so one model describes both.
"""

from __future__ import annotations

from functools import cached_property
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from nasp.ops import OPS
from nasp.registry import did_you_mean


class CellSpace(BaseModel):
    """One cell type: candidate ops (columns of A) and the DAG they live on (rows of A)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ops: tuple[str, ...] = Field(description="candidate ops, in the column order of A")
    n_inputs: int = Field(2, ge=1, description="input nodes of the cell")
    n_nodes: int = Field(4, ge=1, description="intermediate nodes")
    inputs_per_node: int = Field(2, ge=1, description="incoming edges each node keeps in the discrete cell")
    reduction: bool = Field(False, description="halves height and width (stride 2 on input edges)")

    @field_validator("ops")
    @classmethod
    def _known_ops(cls, ops: tuple[str, ...]) -> tuple[str, ...]:
        if not ops:
            raise ValueError("a cell needs at least one op")
        if len(set(ops)) != len(ops):
            raise ValueError(f"ops are listed twice: {sorted({o for o in ops if ops.count(o) > 1})}")
        for op in ops:
            if op not in OPS:
                raise ValueError(f"unknown op '{op}'.{did_you_mean(op, OPS.names())} Known: {', '.join(OPS.names())}")
        return ops

    @cached_property
    def edges(self) -> list[tuple[int, int]]:
        """(source, node) pairs in row order of A; node indices count the inputs first."""
        return [(i, self.n_inputs + j) for j in range(self.n_nodes) for i in range(self.n_inputs + j)]

    def node_edges(self, j: int) -> range:
        """Row indices of A of the edges entering intermediate node j (0-based)."""
        start = sum(self.n_inputs + k for k in range(j))
        return range(start, start + self.n_inputs + j)

    @property
    def n_edges(self) -> int:
        return len(self.edges)

    @property
    def n_ops(self) -> int:
        return len(self.ops)


class SearchSpace(BaseModel):
    """A named set of cell types (``normal`` and ``reduce`` for CNNs, ``recurrent`` for RNNs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: Literal["cnn", "rnn"] = "cnn"
    cells: dict[str, CellSpace]
    description: str = ""

    @property
    def cell_types(self) -> list[str]:
        return list(self.cells)

    def with_ops(self, **ops: list[str]) -> SearchSpace:
        """A copy with some cell types' op lists replaced (``space.normal=a,b`` overrides)."""
        cells = dict(self.cells)
        for cell_type, names in ops.items():
            if cell_type not in cells:
                raise ValueError(f"space '{self.name}' has no cell type '{cell_type}' (it has {', '.join(cells)})")
            cells[cell_type] = cells[cell_type].model_copy(update={"ops": tuple(names)})
            CellSpace.model_validate(cells[cell_type].model_dump())
        return self.model_copy(update={"cells": cells})
