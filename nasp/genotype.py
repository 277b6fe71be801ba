"""The discrete architecture a search returns: for each cell type, each node's inputs and ops."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from nasp.errors import GenotypeError
from nasp.registry import did_you_mean
from nasp.spaces import SPACES, SearchSpace, get_space


class Edge(BaseModel):
    """One kept edge: ``op`` applied to node ``input`` (0.. are the cell inputs, then earlier nodes)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    op: str
    input: int = Field(ge=0)


class Genotype(BaseModel):
    """Per cell type, a list over intermediate nodes of that node's kept edges."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    space: str = Field(description="name of the search space the genotype belongs to")
    cells: dict[str, list[list[Edge]]]
    space_def: SearchSpace | None = Field(None, description="the space itself, for spaces not in the registry")

    @model_validator(mode="after")
    def _fits_space(self) -> Genotype:
        space = self.resolve_space(strict=False)
        if space is not None:
            problem = self._problem(space)
            if problem:
                raise ValueError(problem)
        return self

    def resolve_space(self, strict: bool = True) -> SearchSpace | None:
        if self.space_def is not None:
            return self.space_def
        if self.space in SPACES:
            return get_space(self.space)
        if strict:
            raise GenotypeError(f"genotype's space '{self.space}' is not registered (load its plugin first)")
        return None

    def _problem(self, space: SearchSpace) -> str | None:
        missing = set(space.cells) - set(self.cells)
        extra = set(self.cells) - set(space.cells)
        if missing or extra:
            return (f"space '{space.name}' has cell types {sorted(space.cells)}, "
                    f"the genotype has {sorted(self.cells)}")
        for cell_type, nodes in self.cells.items():
            cell = space.cells[cell_type]
            if len(nodes) != cell.n_nodes:
                return f"{cell_type} cell: {len(nodes)} nodes, space '{space.name}' has {cell.n_nodes}"
            for j, edges in enumerate(nodes):
                where = f"{cell_type} cell, node {j}"
                if len(edges) != cell.inputs_per_node:
                    return f"{where}: {len(edges)} inputs, each node takes exactly {cell.inputs_per_node}"
                inputs = [e.input for e in edges]
                if len(set(inputs)) != len(inputs):
                    return f"{where}: input {inputs} repeated; each input node may feed a node once"
                for e in edges:
                    if e.op not in cell.ops:
                        return (f"{where}: op '{e.op}' is not in the {cell_type} ops of '{space.name}'."
                                f"{did_you_mean(e.op, list(cell.ops))} Allowed: {', '.join(cell.ops)}")
                    if e.input >= cell.n_inputs + j:
                        return (f"{where}: input {e.input} out of range; node {j} may read inputs "
                                f"0..{cell.n_inputs + j - 1}")
        return None

    def check(self, space: SearchSpace) -> None:
        """Raise GenotypeError when the genotype does not fit ``space``."""
        problem = self._problem(space)
        if problem:
            raise GenotypeError(problem)

    # --- conversions -------------------------------------------------------------------
    def to_json(self, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent, exclude_none=True)

    @classmethod
    def from_json(cls, text: str) -> Genotype:
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            raise GenotypeError(f"invalid genotype{' at ' + loc if loc else ''}: "
                                f"{err['msg'].removeprefix('Value error, ')}") from None

    @classmethod
    def load(cls, path: str | Path) -> Genotype:
        path = Path(path)
        if path.is_dir():
            path = path / "genotype.json"
        if not path.is_file():
            raise GenotypeError(f"genotype file '{path}' does not exist")
        return cls.from_json(path.read_text())

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.to_json() + "\n")
        return path

    def as_pairs(self) -> dict[str, list[tuple[str, int]]]:
        """DARTS's flat (op, input) list per cell type."""
        return {ct: [(e.op, e.input) for node in nodes for e in node] for ct, nodes in self.cells.items()}

    @classmethod
    def from_pairs(cls, space: str | SearchSpace, **cells: list[tuple[str, int]]) -> Genotype:
        """Build from DARTS-style (op, input) lists, ``inputs_per_node`` consecutive pairs a node."""
        sp = get_space(space) if isinstance(space, str) else space
        out: dict[str, list[list[Edge]]] = {}
        for ct, pairs in cells.items():
            k = sp.cells[ct].inputs_per_node if ct in sp.cells else 2
            out[ct] = [[Edge(op=o, input=i) for o, i in pairs[n:n + k]] for n in range(0, len(pairs), k)]
        space_def = None if isinstance(space, str) or space.name in SPACES else sp
        return cls(space=sp.name, cells=out, space_def=space_def)

    def param_count(self, channels: int = 16, layers: int = 8, num_classes: int = 10, in_channels: int = 3) -> int:
        """Parameters of the network this genotype defines (built on the meta device: no memory)."""
        import torch

        from nasp.model.child import ChildNetwork

        with torch.device("meta"):
            net = ChildNetwork(self, channels, layers, num_classes, in_channels)
        return sum(p.numel() for p in net.parameters())

    def describe(self) -> str:
        lines = []
        for ct, nodes in self.cells.items():
            parts = [" + ".join(f"{e.op}({e.input})" for e in node) for node in nodes]
            lines.append(f"{ct}: " + " | ".join(parts))
        return "\n".join(lines)
