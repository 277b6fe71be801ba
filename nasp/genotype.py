"""The discrete architecture a search returns: for each cell type, each node's inputs and ops.

Reading a genotype (``Genotype.load``, ``from_json``, ``model_validate``) checks its structure only: it
fits its space when the space is known (the registered one, or ``space_def`` stored with it), else it
is a well-formed cell DAG; op and cell type names are plain identifiers. That is all viewing needs, and
it never needs the ops' code. Code that builds networks also requires the ops to be registered:
``Genotype.load(path, registered_ops=True)`` or ``genotype.require_registered_ops()``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from nasp.errors import GenotypeError
from nasp.registry import did_you_mean
from nasp.runfolder import GENOTYPE
from nasp.spaces import SPACES, SearchSpace, get_space
from nasp.spaces.space import MAX_INPUTS, MAX_NODES, check_identifier, check_label

MAX_GENOTYPE_FILE = 4 << 20  # a genotype file is a few kilobytes


class Edge(BaseModel):
    """One kept edge: ``op`` applied to node ``input`` (0.. are the cell inputs, then earlier nodes)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    op: str
    input: int = Field(ge=0, le=MAX_INPUTS + MAX_NODES)

    @field_validator("op")
    @classmethod
    def _op_name(cls, op: str) -> str:
        return check_identifier("op", op)


class Genotype(BaseModel):
    """Per cell type, a list over intermediate nodes of that node's kept edges."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    space: str = Field(description="name of the search space the genotype belongs to")
    cells: dict[str, list[list[Edge]]]
    space_def: SearchSpace | None = Field(None, description="the space itself, for spaces not in the registry")

    @field_validator("space")
    @classmethod
    def _space_name(cls, name: str) -> str:
        if not name:
            raise ValueError("the genotype names no space")
        return check_label("space name", name)

    @field_validator("cells")
    @classmethod
    def _cell_types(cls, cells: dict[str, list[list[Edge]]]) -> dict[str, list[list[Edge]]]:
        if not cells:
            raise ValueError("the genotype has no cells")
        for ct, nodes in cells.items():
            check_identifier("cell type", ct)
            if len(nodes) > MAX_NODES:
                raise ValueError(f"{ct} cell has {len(nodes)} nodes; at most {MAX_NODES} are allowed")
        return cells

    @model_validator(mode="after")
    def _fits_space(self, info: ValidationInfo) -> Genotype:
        space = self.resolve_space(strict=False)
        problem = self._problem(space) if space is not None else self._structure_problem()
        if problem:
            raise ValueError(problem)
        if isinstance(info.context, dict) and info.context.get("registered_ops"):
            if space is None:
                raise ValueError(self._unregistered_space())
            problem = space.registered_ops_problem()
            if problem:
                raise ValueError(f"space '{space.name}': {problem}")
        return self

    def _unregistered_space(self) -> str:
        return (f"genotype's space '{self.space}' is not registered and the genotype stores no space_def "
                f"(load the plugin that registers it with plugins=...){did_you_mean(self.space, SPACES.names())}")

    def resolve_space(self, strict: bool = True) -> SearchSpace | None:
        """The genotype's space: its ``space_def``, else the registered space of that name; None (or
        GenotypeError when ``strict``) when neither is there."""
        if self.space_def is not None:
            return self.space_def
        if self.space in SPACES:
            return get_space(self.space, registered_ops=False)
        if strict:
            raise GenotypeError(self._unregistered_space())
        return None

    def require_registered_ops(self) -> Genotype:
        """This genotype when its space is known and all its ops are registered (building a network needs
        that), else GenotypeError with a did-you-mean."""
        space = self.resolve_space()
        assert space is not None
        space.require_registered_ops(GenotypeError, "genotype of ")
        return self

    def _structure_problem(self) -> str | None:
        """Checks of a genotype whose space is unknown: a well-formed DAG (inputs from node 0's, as drawn)."""
        for cell_type, nodes in self.cells.items():
            if not nodes:
                return f"{cell_type} cell has no nodes"
            n_inputs = max([2] + [e.input + 1 for e in nodes[0]])
            if n_inputs > MAX_INPUTS:
                return (f"{cell_type} cell, node 0: reads input {n_inputs - 1}; a cell has at most {MAX_INPUTS} "
                        f"inputs")
            for j, edges in enumerate(nodes):
                where = f"{cell_type} cell, node {j}"
                if not edges:
                    return f"{where}: no inputs; each node reads at least one earlier node"
                inputs = [e.input for e in edges]
                if len(set(inputs)) != len(inputs):
                    return f"{where}: input {inputs} repeated; each input node may feed a node once"
                for e in edges:
                    if e.input >= n_inputs + j:
                        return (f"{where}: input {e.input} out of range; node {j} may read inputs 0..{n_inputs + j - 1} "
                                f"(space '{self.space}' is unknown, so the cell's {n_inputs} inputs are those node 0 reads)")
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
                if len(edges) != cell.kept_inputs(j):
                    which = "this node reads every earlier node" if cell.all_inputs else "each node takes exactly"
                    return f"{where}: {len(edges)} inputs, {which} {cell.kept_inputs(j)}"
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
        """The genotype as JSON (``from_json`` and ``load`` read it)."""
        return self.model_dump_json(indent=indent, exclude_none=True)

    @classmethod
    def from_json(cls, text: str | bytes, registered_ops: bool = False, source: str | None = None) -> Genotype:
        """Parse and validate a genotype; GenotypeError (one line, prefixed with ``source``) when it is not one.

        ``registered_ops``: also require the space's ops to be registered (for code that builds networks)."""
        prefix = f"{source}: " if source else ""
        try:
            return cls.model_validate_json(text, context={"registered_ops": registered_ops})
        except ValidationError as exc:
            err = exc.errors()[0]
            msg = " ".join(err["msg"].removeprefix("Value error, ").split())
            if err["type"] == "json_invalid":
                raise GenotypeError(f"{prefix}invalid genotype: not valid JSON ({msg}); a genotype is a JSON object with 'space' "
                                    f"and 'cells'") from None
            loc = ".".join(str(p) for p in err["loc"])
            if err["type"] == "model_type":
                msg = f"{msg}: a genotype is a JSON object with 'space' and 'cells'"
            raise GenotypeError(f"{prefix}invalid genotype{' at ' + loc if loc else ''}: {msg}") from None

    @classmethod
    def load(cls, path: str | Path, registered_ops: bool = False) -> Genotype:
        """A genotype file, or a run folder's ``genotype.json``; every problem is one GenotypeError line naming
        the file. Structure only unless ``registered_ops`` (see the module docstring)."""
        from nasp.errors import FileRefusedError
        from nasp.safe_io import read_bounded

        path, named = Path(path), True
        if path.is_dir():
            if not (path / GENOTYPE).exists() and not (path / GENOTYPE).is_symlink():
                raise GenotypeError(f"'{path}' is a folder without genotype.json (a run folder has one after its "
                                    f"first epoch)")
            path, named = path / GENOTYPE, False  # inside a run folder: never through a link
        where = f"genotype file '{path}'"
        if not path.exists() and not path.is_symlink():
            raise GenotypeError(f"{where} does not exist")
        try:
            data = read_bounded(path, MAX_GENOTYPE_FILE, follow=named)
        except FileRefusedError as exc:
            raise GenotypeError(f"genotype file {exc}") from None
        except OSError as exc:
            raise GenotypeError(f"{where} cannot be read: {exc.strerror or exc}") from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise GenotypeError(f"{where} is not UTF-8 text (a binary file?); a genotype file is JSON") from None
        return cls.from_json(text, registered_ops, source=where)

    def save(self, path: str | Path) -> Path:
        """Write the JSON to ``path``; returns the path."""
        path = Path(path)
        path.write_text(self.to_json() + "\n")
        return path

    def as_pairs(self) -> dict[str, list[tuple[str, int]]]:
        """DARTS's flat (op, input) list per cell type."""
        return {ct: [(e.op, e.input) for node in nodes for e in node] for ct, nodes in self.cells.items()}

    @classmethod
    def from_pairs(cls, space: str | SearchSpace, **cells: list[tuple[str, int]]) -> Genotype:
        """Build from DARTS-style (op, input) lists, ``inputs_per_node`` consecutive pairs a node (a dense cell:
        node j's j + 1 pairs)."""
        sp = get_space(space) if isinstance(space, str) else space
        out: dict[str, list[list[Edge]]] = {}
        for ct, pairs in cells.items():
            cell = sp.cells.get(ct)
            nodes, n, j = [], 0, 0
            while n < len(pairs):
                k = cell.kept_inputs(j) if cell is not None else 2
                nodes.append([Edge(op=o, input=i) for o, i in pairs[n:n + k]])
                n, j = n + k, j + 1
            out[ct] = nodes
        space_def = None if isinstance(space, str) or space.name in SPACES else sp
        return cls(space=sp.name, cells=out, space_def=space_def)

    def describe(self) -> str:
        """One line a cell type: each node's ``op(input)`` terms."""
        lines = []
        for ct, nodes in self.cells.items():
            parts = [" + ".join(f"{e.op}({e.input})" for e in node) for node in nodes]
            lines.append(f"{ct}: " + " | ".join(parts))
        return "\n".join(lines)
