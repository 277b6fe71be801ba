"""Text drawings for the terminal: Ā grids, A heatmaps, each edge's op over the epochs (the paper's
Fig. 4) and sparklines. Pure functions returning rich Text; the cell itself is nasp.viz.text's drawing."""

from __future__ import annotations

import math
import re

from rich.text import Text

from nasp.genotype import Genotype
from nasp.spaces import CellSpace
from nasp.viz.graph import CellShape, edge_names, input_names

SPARK = "▁▂▃▄▅▆▇█"
# distinct colours for op indices (Fig. 4 and the legend)
OP_COLORS = ["#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
             "#bfef45", "#fabed4", "#469990", "#dcbeff", "#9a6324", "#fffac8", "#800000", "#aaffc3"]


def op_color(k: int) -> str:
    return OP_COLORS[k % len(OP_COLORS)]


def short_op(name: str) -> str:
    """A 4-character column label: sep_conv_3x3 -> sep3, conv_1x3_3x1 -> cv13, skip_connect -> skip."""
    parts = name.split("_")
    sizes = [t.split("x")[0] for t in parts if re.fullmatch(r"\d+x\d+", t)]
    if parts[0] == "conv":
        return ("cv" + "".join(sizes))[:4] if sizes else "conv"
    if sizes:
        return parts[0][: 4 - len(sizes[0])] + sizes[0]
    return name[:4]


def short_ops(ops: tuple[str, ...] | list[str]) -> list[str]:
    """Column labels for a cell's ops, unique (falls back to the op's index where two collide)."""
    labels = [short_op(o) for o in ops]
    return [lab if labels.count(lab) == 1 else f"{lab[:2]}{k:02d}" for k, lab in enumerate(labels)]


def _shape(cell: CellSpace, kind: str | None = None) -> CellShape:
    """The cell's drawing shape; its kind follows from the cell when not given (a dense cell keeps all its inputs, a
    valid cnn cell reads 2, an rnn cell 1)."""
    guess = "dense" if cell.all_inputs else "rnn" if cell.n_inputs == 1 else "cnn"
    return CellShape(kind or guess, cell.n_inputs, cell.reduction)


def node_names(cell: CellSpace, kind: str | None = None) -> list[str]:
    """Names of a cell's nodes by index, as the cell graph names them: c_{k-2}, c_{k-1}, then 0, 1, ..."""
    return input_names(_shape(cell, kind)) + [str(j) for j in range(cell.n_nodes)]


def genotype_lines(genotype: Genotype) -> str:
    """A genotype in text with the node names every screen uses (c_{k-2}, c_{k-1}, 0, 1, ...), one line a cell type:
    ``normal: 0 ← sep_conv_3x3(c_{k-2}) + sep_conv_3x3(c_{k-1}) | 1 ← ...``."""
    space = genotype.resolve_space(strict=False)
    lines = []
    for ct, nodes in genotype.cells.items():
        cell = space.cells.get(ct) if space is not None else None
        names = node_names(cell, space.kind) if cell is not None and space is not None else []
        parts = [f"{j} ← " + " + ".join(f"{e.op}({names[e.input] if e.input < len(names) else e.input})" for e in node)
                 for j, node in enumerate(nodes)]
        lines.append(f"{ct}: " + " | ".join(parts))
    return "\n".join(lines)


def edge_labels(cell: CellSpace, kind: str | None = None) -> list[str]:
    """Row names of A, as the plots name them (``c_{k-2}→0``)."""
    return edge_names(_shape(cell, kind), cell.edges)


def legend(ops: tuple[str, ...] | list[str], colored: bool = False, width: int = 80, marks: list[str] | None = None) -> Text:
    """``label=op`` for each op (``marks`` replace the labels), wrapped to ``width`` columns."""
    text = Text()
    col = 0
    for k, (lab, op) in enumerate(zip(marks or short_ops(ops), ops, strict=True)):
        item = len(lab) + 1 + len(op)
        if col and col + 2 + item > width:
            text.append("\n")
            col = 0
        elif col:
            text.append("  ")
            col += 2
        text.append(lab, style=f"bold black on {op_color(k)}" if colored else "bold")
        text.append(f"={op}", style="dim")
        col += item
    return text


def op_mark(k: int) -> str:
    """One character naming op index ``k`` in the Fig. 4 grid: 0-9, then a-z."""
    return "0123456789abcdefghijklmnopqrstuvwxyz"[k] if 0 <= k < 36 else "?"


def discrete_grid(cell: CellSpace, matrix: list[list[float]] | None, title: str, kept: set[int] | None = None,
                  changed: set[tuple[int, int]] | None = None) -> Text:
    """Ā as edges x ops: ● for a selected entry (its value when not 1), · otherwise; rows the genotype
    keeps are bold, entries the last step changed are highlighted."""
    labels = edge_labels(cell)
    w = max(len(lab) for lab in labels)
    text = Text()
    text.append(f"{title}\n", style="bold")
    text.append(" " * (w + 1) + "".join(f"{lab:>5}" for lab in short_ops(cell.ops)) + "\n", style="dim")
    kept, changed = kept or set(), changed or set()
    for r, lab in enumerate(labels):
        row = matrix[r] if matrix is not None and r < len(matrix) else None
        text.append(f"{lab:<{w}} ", style="bold" if r in kept else "dim")
        for c in range(cell.n_ops):
            v = row[c] if row is not None and c < len(row) else 0.0
            if v == 0:
                mark, style = "·", "dim"
            else:
                mark = "●" if v == 1 else f"{v:.2f}"[-4:]
                style = "bold green" if r in kept else "green"
            if (r, c) in changed:
                style = "bold black on yellow"
                mark = mark if mark != "·" else "○"  # an entry that just turned off
            text.append(" " * (5 - len(mark)))
            text.append(mark, style=style)
        text.append("\n")
    text.rstrip()
    return text


def softmax_rows(matrix: list[list[float]]) -> list[list[float]]:
    out = []
    for row in matrix:
        m = max(row) if row else 0.0
        e = [math.exp(v - m) for v in row]
        s = sum(e) or 1.0
        out.append([v / s for v in e])
    return out


def _heat(v: float, lo: float, hi: float) -> str:
    t = 0.0 if hi <= lo else min(max((v - lo) / (hi - lo), 0.0), 1.0)
    r, g, b = int(20 + 235 * t), int(30 + 150 * t * (1 - t) * 2), int(120 * (1 - t) + 20)
    return f"#{r:02x}{g:02x}{b:02x}"


def _cell_value(v: float) -> str:
    """A value in 4 columns: 3 decimals below 1 (.498, -.02), 2 up to 10, else a whole number."""
    if -1 < v < 1:
        return f"{v:.3f}".replace("0.", ".", 1).rjust(4)[:4] if v >= 0 else f"{v:.2f}".replace("0.", ".", 1).rjust(4)[:4]
    return f"{v:4.2f}"[:4] if abs(v) < 10 else f"{v:4.0f}"[-4:]


def heatmap(cell: CellSpace, matrix: list[list[float]] | None, title: str, softmax: bool = False,
            kept: set[int] | None = None) -> Text:
    """A's values, edges x ops, coloured from low (blue) to high (red); DARTS's alphas softmaxed per edge."""
    labels = edge_labels(cell)
    w = max(len(lab) for lab in labels)
    text = Text()
    text.append(f"{title}{' (softmax per edge)' if softmax else ''}\n", style="bold")
    text.append(" " * (w + 1) + "".join(f"{lab:>5}" for lab in short_ops(cell.ops)) + "\n", style="dim")
    if not matrix:
        text.append("(A arrives at the end of the first epoch)", style="dim italic")
        return text
    mat = softmax_rows(matrix) if softmax else matrix
    values = [v for row in mat for v in row]
    lo, hi = min(values), max(values)
    kept = kept or set()
    for r, lab in enumerate(labels):
        text.append(f"{lab:<{w}} ", style="bold" if r in kept else "dim")
        for c in range(cell.n_ops):
            v = mat[r][c] if r < len(mat) and c < len(mat[r]) else 0.0
            text.append(" ")
            text.append(_cell_value(v), style=f"white on {_heat(v, lo, hi)}")
        text.append("\n")
    text.append(f"low {lo:.3g}", style=f"white on {_heat(lo, lo, hi)}")
    text.append(" ")
    text.append(f"high {hi:.3g}", style=f"white on {_heat(hi, lo, hi)}")
    return text


def op_timeline(cell: CellSpace, selections: list[list[int]], title: str, live: list[int] | None = None,
                cursor: int | None = None, width: int | None = None) -> Text:
    """The paper's Fig. 4: one row per edge, one column per epoch, each entry the selected op's index in
    its colour; ``live`` adds the current step's choice as a last column after '|'."""
    labels = edge_labels(cell)
    w = max(len(lab) for lab in labels)
    cols = len(selections)
    first = 0
    if width is not None:
        room = max(width - w - 4, 4)
        first = max(cols - room, 0)  # long searches: show the latest epochs that fit
    shown = selections[first:]
    text = Text()
    text.append(f"{title}  epochs {first + 1}-{cols}\n" if cols else f"{title}\n", style="bold")

    def mark(k: int, extra: str = "") -> None:
        if k >= 0:
            text.append(op_mark(k), style=f"bold black on {op_color(k)}{extra}")
        else:
            text.append("·", style="dim")

    for r, lab in enumerate(labels):
        text.append(f"{lab:<{w}} ", style="dim")
        for e, sel in enumerate(shown):
            mark(sel[r] if r < len(sel) else -1, " underline" if cursor is not None and e + first == cursor else "")
        if live is not None:
            text.append("|", style="dim")
            mark(live[r] if r < len(live) else -1)
        text.append("\n")
    text.append_text(legend(cell.ops, colored=True, width=max(width or 80, 30),
                            marks=[op_mark(k) for k in range(cell.n_ops)]))
    return text


def spark(values: list[float], width: int) -> str:
    """A one-line chart of ``values`` squeezed (bucket means) into ``width`` characters."""
    if not values or width <= 0:
        return ""
    if len(values) > width:
        n = len(values)
        values = [sum(values[i * n // width:(i + 1) * n // width]) / max(len(values[i * n // width:(i + 1) * n // width]), 1)
                  for i in range(width)]
    lo, hi = min(values), max(values)
    if hi - lo < 1e-12:
        return SPARK[3] * len(values)
    return "".join(SPARK[min(int((v - lo) / (hi - lo) * (len(SPARK) - 1) + 0.5), len(SPARK) - 1)] for v in values)


def chart_line(label: str, values: list[float], width: int, fmt: str = "{:.3f}") -> Text:
    """``label  ▁▂▅▇  last (min..max)`` for the curves panel."""
    text = Text()
    text.append(f"{label:<16}", style="bold")
    if not values:
        text.append("(no data yet)", style="dim")
        return text
    tail = f" {fmt.format(values[-1])} ({fmt.format(min(values))}..{fmt.format(max(values))})"
    text.append(spark(values, max(width - 16 - len(tail), 8)), style="cyan")
    text.append(tail)
    return text
