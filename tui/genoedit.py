"""Editing a genotype: one change at a time, each checked by Genotype's own validation; saved as a new file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nasp.errors import GenotypeError
from nasp.genotype import Genotype
from nasp.runfolder import GENOTYPE, RunFolder
from nasp.spaces import SearchSpace

from .render import node_names


def eval_size_defaults() -> tuple[int, int]:
    """Channels and cells of the evaluation network (the evaluation config's defaults when it exists)."""
    try:
        from nasp.evaluation.config import EvalModelConfig
    except ImportError:
        return 36, 20
    fields = EvalModelConfig.model_fields
    return int(fields["channels"].default), int(fields["layers"].default)


class GenotypeEdit:
    """A genotype being edited: the current version, where it came from, and an undo history."""

    def __init__(self, genotype: Genotype, source: Path | None = None, label: str | None = None,
                 name: str | None = None) -> None:
        self.original = genotype
        self.genotype = genotype
        self.source = source
        self.name = name  # a named genotype (DARTS_V2, NASP, ...): evaluated by name while unchanged
        self.label = label or (str(source) if source else "genotype")
        self.undo_stack: list[Genotype] = []
        self.saved_to: Path | None = None
        self.saved: Genotype = genotype  # what is on disk: the source, or the last save
        self._stamp = self._source_stamp()
        self.source_moved_on = False  # the source changed on disk under unsaved edits

    def _source_stamp(self) -> tuple[int, int] | None:
        try:
            st = self.source.stat() if self.source is not None else None
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size) if st is not None else None

    def refresh_from_source(self) -> bool:
        """Follow the source file when something rewrote it (a search writes genotype.json every epoch): without
        unsaved edits the new genotype replaces the shown one (True); with edits they stay and ``source_moved_on``
        says so. A source that cannot be read now is left alone."""
        stamp = self._source_stamp()
        if stamp is None or stamp == self._stamp or self.source is None:
            return False
        try:
            new = Genotype.load(self.source)
        except GenotypeError:
            return False
        self._stamp = stamp
        if new == self.original:
            return False
        if self.unsaved:
            self.source_moved_on = True
            return False
        self.original = self.saved = self.genotype = new
        self.undo_stack.clear()
        self.source_moved_on = False
        return True

    @classmethod
    def load(cls, spec: str | Path) -> GenotypeEdit:
        """A genotype file, a run folder's genotype.json, a named genotype (DARTS_V2, NASP, ...) or a DARTS-style
        ``Genotype(...)`` string (GenotypeError when missing, invalid or of a space that is neither registered nor
        stored with it)."""
        from nasp.genotypes import read_genotype
        from nasp.genotypes.registry import string_form
        from nasp.safe_io import exists

        form = string_form(str(spec))  # a string first: a real one is longer than a file name may be
        path = None if form else Path(spec)
        on_disk = path is not None and exists(path)
        # structure only: a plugin's ops need not be registered, nothing is imported
        geno = Genotype.load(path) if on_disk and path is not None else read_genotype(str(spec))
        geno.resolve_space()  # editing offers the space's ops: GenotypeError when the space is unknown
        if on_disk and path is not None:
            return cls(geno, RunFolder(path).genotype_path if path.is_dir() else path)
        label = {"darts": "DARTS genotype string", "nb201": "NAS-Bench-201 string"}.get(form or "", str(spec))
        return cls(geno, None, label, None if form else str(spec))

    def eval_target(self) -> str | None:
        """What ``nasp eval genotype=`` takes for the genotype as shown: its file, or its name; None while edits
        are unsaved (evaluation reads a file)."""
        if self.unsaved:
            return None
        if self.saved_to is not None:
            return str(self.saved_to)
        if self.source is not None:  # an epoch's genotype opened from a run's history is not its genotype.json
            try:
                return str(self.source) if Genotype.load(self.source) == self.genotype else None
            except GenotypeError:
                return None
        return self.name

    @property
    def space(self) -> SearchSpace:
        return self.genotype.resolve_space()

    @property
    def modified(self) -> bool:
        return self.genotype != self.original

    @property
    def unsaved(self) -> bool:
        """Edits made since the genotype was opened or last saved (leaving then asks first)."""
        return self.genotype != self.saved

    def discard(self) -> None:
        """Back to what is on disk (the source, or the last save)."""
        self.genotype = self.saved
        self.undo_stack.clear()

    def op_choices(self, cell_type: str) -> list[str]:
        """The ops a node of this cell type can use: the space's ops for that cell type."""
        return list(self.space.cells[cell_type].ops)

    def input_choices(self, cell_type: str, node: int) -> list[tuple[str, int]]:
        """(name, index) of the nodes node ``node`` may read: the cell inputs and earlier nodes."""
        cell = self.space.cells[cell_type]
        names = node_names(cell)
        return [(names[i], i) for i in range(cell.n_inputs + node)]

    def changed(self, cell_type: str, node: int, edge: int, *, op: str | None = None, input: int | None = None) -> Genotype:
        """The genotype with one edge changed, or GenotypeError saying why that edit is invalid."""
        data: dict[str, Any] = self.genotype.model_dump(mode="json", exclude_none=True)
        try:
            e = data["cells"][cell_type][node][edge]
        except (KeyError, IndexError):
            raise GenotypeError(f"{cell_type} cell has no node {node} edge {edge}") from None
        if op is not None:
            e["op"] = op
        if input is not None:
            e["input"] = input
        return Genotype.from_json(json.dumps(data))

    def apply(self, genotype: Genotype) -> None:
        self.undo_stack.append(self.genotype)
        self.genotype = genotype

    def edit(self, cell_type: str, node: int, edge: int, *, op: str | None = None, input: int | None = None) -> Genotype:
        """Apply one change when valid (GenotypeError, and nothing changes, when not)."""
        new = self.changed(cell_type, node, edge, op=op, input=input)
        self.apply(new)
        return new

    def undo(self) -> bool:
        if not self.undo_stack:
            return False
        self.genotype = self.undo_stack.pop()
        return True

    def default_save_path(self) -> Path:
        """A new file next to the source: ``<stem>-edit.json``, ``<stem>-edit-2.json``, ..."""
        base = self.source if self.source is not None else Path(f"{self.name}.json" if self.name else GENOTYPE)
        stem = base.stem.removesuffix("-edit")
        path, n = base.with_name(f"{stem}-edit.json"), 1
        while path.exists():
            n += 1
            path = base.with_name(f"{stem}-edit-{n}.json")
        return path

    def save(self, path: str | Path) -> Path:
        """Write the edited genotype to a NEW file; the source and existing files are never overwritten."""
        path = Path(path)
        if self.source is not None and path.resolve() == self.source.resolve():
            raise GenotypeError(f"'{path}' is the genotype being edited; save the edit as a new file")
        if path.exists():
            raise GenotypeError(f"'{path}' exists; edits are saved as new files, pick another name")
        if path.suffix != ".json":
            raise GenotypeError(f"'{path}': genotype files end in .json")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.genotype.save(path)
        self.saved_to, self.saved = path, self.genotype
        return path

    def export_drawing(self, base: str | Path, fmt: str = "svg") -> list[Path]:
        """Graphviz drawings of each cell, ``<base>-<cell type>.<fmt>`` (needs nasp.viz.render)."""
        from nasp.viz.render import render_genotype

        base = Path(base)
        base.parent.mkdir(parents=True, exist_ok=True)
        return render_genotype(self.genotype, base.parent, fmt=fmt, prefix=f"{base.name}-")
