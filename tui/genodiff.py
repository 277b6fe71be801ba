"""What differs between two genotypes, edge by edge, in the node names every screen uses (``c_{k-1}→0``): for the
comparison of two runs or two genotypes, and for the epochs of a replay where the search's genotype changed."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from nasp.spaces import SearchSpace

from .render import node_names

DIFFERS_STYLE = "bold black on yellow"

EdgeKey = tuple[str, int, int]  # (cell type, node, input)


@dataclass(frozen=True)
class EdgeDiff:
    """One edge (``source`` feeding intermediate node ``node`` of a cell type) and its op in each genotype (None:
    that genotype does not keep the edge)."""

    cell: str
    node: int
    source: int
    name: str
    a: str | None
    b: str | None

    @property
    def differs(self) -> bool:
        return self.a != self.b

    def describe(self) -> str:
        """``normal c_{k-1}→0: sep_conv_3x3 → skip_connect`` (``+ op`` a new edge, ``- op`` a dropped one)."""
        if self.a is None:
            change = f"+ {self.b}"
        elif self.b is None:
            change = f"- {self.a}"
        else:
            change = f"{self.a} → {self.b}"
        return f"{self.cell} {self.name}: {change}"


def as_dict(genotype: Any) -> dict[str, Any]:
    """A genotype as the dict history.jsonl and genotype.json hold (a Genotype is dumped)."""
    if isinstance(genotype, Mapping):
        return dict(genotype)
    dump = getattr(genotype, "model_dump", None)
    return dump(mode="json", exclude_none=True) if dump is not None else {}


def edge_ops(genotype: Any) -> dict[EdgeKey, str]:
    """Each kept edge's op by (cell type, node, input); an input feeding a node twice joins its ops with '+'."""
    out: dict[EdgeKey, str] = {}
    cells = as_dict(genotype).get("cells") or {}
    for ct, nodes in cells.items():
        for j, node in enumerate(nodes or []):
            for edge in node or []:
                key = (str(ct), j, int(edge.get("input", -1)))
                out[key] = f"{out[key]}+{edge.get('op')}" if key in out else str(edge.get("op"))
    return out


def _names(space: SearchSpace | None, cell_type: str) -> list[str]:
    cell = space.cells.get(cell_type) if space is not None else None
    return node_names(cell, space.kind) if cell is not None and space is not None else []


def diff_genotypes(a: Any, b: Any, space: SearchSpace | None = None) -> list[EdgeDiff]:
    """Every edge kept by either genotype, in cell, node and input order, with both ops; ``space`` names the nodes
    (indices without it)."""
    ops_a, ops_b = edge_ops(a), edge_ops(b)
    order = list(dict.fromkeys([k[0] for k in ops_a] + [k[0] for k in ops_b]))
    keys = sorted(set(ops_a) | set(ops_b), key=lambda k: (order.index(k[0]), k[1], k[2]))
    names = {ct: _names(space, ct) for ct in order}
    out = []
    for ct, j, i in keys:
        source = names[ct][i] if i < len(names[ct]) else str(i)
        out.append(EdgeDiff(ct, j, i, f"{source}→{j}", ops_a.get((ct, j, i)), ops_b.get((ct, j, i))))
    return out


def genotype_changes(history: Sequence[tuple[int, Any]], space: SearchSpace | None = None) -> list[tuple[int, list[EdgeDiff]]]:
    """The epochs whose genotype differs from the recorded epoch before it, each with its changed edges
    (``history``: (epoch, genotype) in order, as history.jsonl holds them)."""
    out = []
    for (_, before), (epoch, after) in itertools.pairwise(history):
        changed = [d for d in diff_genotypes(before, after, space) if d.differs]
        if changed:
            out.append((epoch, changed))
    return out


def diff_text(diffs: Sequence[EdgeDiff], cell_type: str, tags: tuple[str, str] = ("A", "B"),
              colors: tuple[str, str] = ("#4fc3f7", "#ff8a65")) -> Text:
    """One cell type's edges as a table: ``≠`` and highlighted where the two genotypes' ops differ."""
    rows = [d for d in diffs if d.cell == cell_type]
    n = sum(d.differs for d in rows)
    text = Text()
    text.append(f"{cell_type} cell: ", style="bold")
    text.append(f"{n} of {len(rows)} edges differ" if n else f"all {len(rows)} edges the same",
                style="bold yellow" if n else "green")
    w_name = max([len(d.name) for d in rows] + [4])
    w_a = max([len(d.a or "·") for d in rows] + [len(tags[0])])
    text.append(f"\n  {'edge':<{w_name}}  ", style="dim")
    text.append(f"{tags[0]:<{w_a}}", style=f"bold {colors[0]}")
    text.append("  ")
    text.append(tags[1], style=f"bold {colors[1]}")
    for d in rows:
        text.append("\n")
        style = DIFFERS_STYLE if d.differs else ""
        text.append("≠ " if d.differs else "  ", style="bold yellow" if d.differs else "")
        text.append(f"{d.name:<{w_name}}", style="bold" if d.differs else "dim")
        text.append("  ")
        text.append(f"{d.a or '·':<{w_a}}", style=style or colors[0])
        text.append("  ")
        text.append(d.b or "·", style=style or colors[1])
    return text


def changes_text(changes: Sequence[tuple[int, Sequence[EdgeDiff]]], epochs: int, current: int | None = None) -> Text:
    """The replay's list of genotype changes: one line an epoch (``epoch 3: normal c_{k-1}→0: sep_conv_3x3 →
    skip_connect; ...``), the epoch shown in bold."""
    text = Text()
    if not changes:
        text.append(f"the genotype is the same in all {epochs} recorded epochs", style="dim")
        return text
    text.append(f"genotype changed at {len(changes)} of {epochs} recorded epochs (▲ on the x axis; [ and ] jump "
                "between them; d diffs the epoch shown with the last):", style="bold")
    for epoch, diffs in changes:
        text.append("\n")
        here = epoch == current
        text.append(f"{'▶' if here else ' '} epoch {epoch}: ", style="bold yellow" if here else "yellow")
        text.append("; ".join(d.describe() for d in diffs), style="bold" if here else "")
    return text
