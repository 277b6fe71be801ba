"""Graphviz drawings of cells in the look of the DARTS/NASP figures (left to right, ops on the edges).

The ``.gv`` source is always written first; turning it into SVG/PNG/PDF needs Graphviz's ``dot``. When
``dot`` is missing, GraphvizNotFound says how to install it (the sources are already on disk).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import graphviz

from nasp.genotype import Genotype
from nasp.viz import INSTALL_GRAPHVIZ, GraphvizNotFound, VizError
from nasp.viz.graph import cell_graph

FORMATS = ("svg", "png", "pdf")
FILL = {"input": "darkseagreen2", "node": "lightblue", "output": "palegoldenrod"}  # DARTS's colours
# dark enough for edge labels; an op keeps its colour (its column in the space) in every drawing of a space
OP_COLORS = ("#1f5fa0", "#c0392b", "#1e8449", "#7d3c98", "#b9770e", "#117a8b", "#a04000", "#2e4053", "#b03a77",
             "#5b6d05", "#6c3483", "#0e6655")
PNG_DPI = 144

__all__ = ["FORMATS", "GraphvizNotFound", "cell_dot", "graphviz_missing", "render_cell", "render_genotype", "render_source",
           "write_source"]


def cell_dot(genotype: Genotype, cell_type: str) -> graphviz.Digraph:
    """The graphviz drawing of one cell, built from the canonical graph (``cell_graph``)."""
    g = cell_graph(genotype, cell_type)
    space = genotype.resolve_space(strict=False)
    ops = list(space.cells[cell_type].ops) if space is not None and cell_type in space.cells else []
    ops += sorted({d["op"] for *_, d in g.edges(data=True)} - set(ops))
    title = f"{cell_type} cell" + (" (reduction)" if g.graph["reduction"] and cell_type != "reduce" else "")
    dot = graphviz.Digraph(
        name=f"{cell_type}_cell",
        graph_attr={"rankdir": "LR", "label": f"{title} · {genotype.space}", "labelloc": "b", "fontsize": "22",
                    "fontname": "times", "nodesep": "0.35", "ranksep": "0.9", "bgcolor": "white"},
        node_attr={"style": "filled,rounded", "shape": "rect", "fontsize": "20", "fontname": "times", "height": "0.5",
                   "width": "0.5", "penwidth": "2", "margin": "0.12,0.06"},
        edge_attr={"fontsize": "18", "fontname": "times", "color": "gray30", "penwidth": "1.5", "arrowsize": "0.8"},
    )
    with dot.subgraph(name="inputs") as s:
        s.attr(rank="source")
        for name in g.graph["inputs"]:
            s.node(name, fillcolor=FILL["input"])
        for a, b in zip(g.graph["inputs"], g.graph["inputs"][1:], strict=False):
            s.edge(a, b, style="invis")  # keeps c_{k-2} above c_{k-1}
    for name in g.graph["nodes"]:
        dot.node(name, fillcolor=FILL["node"])
    with dot.subgraph(name="output") as s:
        s.attr(rank="sink")
        s.node(g.graph["output"], fillcolor=FILL["output"])
    for u, v, data in g.edges(data=True):
        if g.nodes[v]["kind"] == "output":
            dot.edge(u, v, color="gray60")
        else:
            color = OP_COLORS[ops.index(data["op"]) % len(OP_COLORS)]
            dot.edge(u, v, label=data["op"], color=color, fontcolor=color)
    return dot


def _named(base: Path, suffix: str) -> Path:
    return base.with_name(f"{base.name}.{suffix}")


def _check_format(fmt: str) -> str:
    fmt = fmt.lower().lstrip(".")
    if fmt not in FORMATS:
        raise VizError(f"format '{fmt}' is not supported; use one of {', '.join(FORMATS)}")
    return fmt


def graphviz_missing(sources: list[Path]) -> GraphvizNotFound:
    """The error to raise when dot is missing: which sources were written and how to install Graphviz."""
    listed = ", ".join(str(p) for p in sources)
    example = f"dot -Tsvg {sources[0]} -o {sources[0].with_suffix('.svg')}" if sources else "dot -Tsvg cell.gv -o cell.svg"
    return GraphvizNotFound(f"Graphviz's `dot` program is not installed (not on PATH), so only the source was written: "
                            f"{listed}. Install it with: {INSTALL_GRAPHVIZ}; then render again (or run `{example}`).")


def render_source(source: Path, out: Path, fmt: str = "svg") -> Path:
    """Turn a ``.gv`` file into ``out`` with dot; the file appears atomically (readers never see half of it)."""
    fmt = _check_format(fmt)
    exe = shutil.which("dot")
    if exe is None:
        raise graphviz_missing([source])
    tmp = out.with_name(f".{out.name}.tmp")
    args = [exe, f"-T{fmt}", *([f"-Gdpi={PNG_DPI}"] if fmt == "png" else []), "-o", str(tmp), str(source)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        raise VizError(f"dot failed on {source} (exit {proc.returncode}): {proc.stderr.strip()[:500]}")
    os.replace(tmp, out)
    return out


def write_source(genotype: Genotype, cell_type: str, out_base: Path) -> Path:
    out_base = Path(out_base)
    out_base.parent.mkdir(parents=True, exist_ok=True)
    gv = _named(out_base, "gv")
    gv.write_text(cell_dot(genotype, cell_type).source)
    return gv


def render_cell(genotype: Genotype, cell_type: str, out_base: Path, fmt: str = "svg") -> Path:
    """Write ``<out_base>.gv`` and ``<out_base>.<fmt>``; returns the drawing's path."""
    fmt = _check_format(fmt)
    gv = write_source(genotype, cell_type, Path(out_base))
    return render_source(gv, _named(Path(out_base), fmt), fmt)


def render_genotype(genotype: Genotype, out_dir: Path, fmt: str = "svg", prefix: str = "") -> list[Path]:
    """Draw every cell type to ``<out_dir>/<prefix><cell type>.<fmt>`` (all ``.gv`` sources are written first)."""
    fmt = _check_format(fmt)
    out_dir = Path(out_dir)
    bases = [out_dir / f"{prefix}{ct}" for ct in genotype.cells]
    sources = [write_source(genotype, ct, base) for ct, base in zip(genotype.cells, bases, strict=True)]
    if shutil.which("dot") is None:
        raise graphviz_missing(sources)
    return [render_source(gv, _named(base, fmt), fmt) for gv, base in zip(sources, bases, strict=True)]
