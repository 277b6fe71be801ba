"""A cell drawn as text (rich), for ``nasp show`` and the terminal app; fits a given width.

Each intermediate node is a small block: its incoming edges, one line each, joined by a bracket
that points at the node; the last line shows what the output does with the nodes::

    c_{k-2} ── sep_conv_3x3 ──┐
    c_{k-1} ── sep_conv_3x3 ──┴─▶ 0
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text

from nasp.genotype import Genotype
from nasp.viz.graph import cell_graph, output_combine

STYLE = {"input": "bold green", "node": "bold cyan", "output": "bold yellow", "op": "magenta", "line": "grey50",
         "title": "bold"}
MIN_OP = 4  # an op name is never cut below this many characters


def _fit(name: str, width: int) -> str:
    return name if cell_len(name) <= width else name[: max(1, width - 1)] + "…"


def cell_rich(genotype: Genotype, cell_type: str, width: int = 80) -> Text:
    """The text drawing of one cell as a styled rich Text, every line at most ``width`` cells wide."""
    g = cell_graph(genotype, cell_type)
    inputs, nodes, out = g.graph["inputs"], g.graph["nodes"], g.graph["output"]
    src_w = max(cell_len(n) for n in [*inputs, *nodes])
    node_w = max(cell_len(n) for n in nodes) if nodes else 1
    ops = [d["op"] for _, v, d in g.edges(data=True) if v != out]
    op_w = max((cell_len(o) for o in ops), default=MIN_OP)
    fixed = 1 + src_w + 4 + 4 + 4 + node_w  # indent, source, " ── ", " ──┐", "─▶ " and the node
    op_w = max(MIN_OP, min(op_w, width - fixed))

    text = Text(no_wrap=True, overflow="crop")
    kind = "recurrent cell" if g.graph["kind"] == "rnn" else f"{cell_type} cell"
    extra = ", reduction" if g.graph["reduction"] else ""
    degrees = {g.in_degree(v) for v in nodes}
    per = degrees.pop() if len(degrees) == 1 else None
    shape = f"{len(nodes)} nodes" + (f", {per} input{'s' * (per != 1)} each" if per is not None else "")
    text.append(_fit(f"{kind} · {genotype.space} · {shape}{extra}", width), STYLE["title"])
    text.append("\n")
    for v in nodes:
        incoming = sorted(g.in_edges(v, data=True), key=lambda e: e[2]["input"])
        for i, (u, _, d) in enumerate(incoming):
            last = i == len(incoming) - 1
            kind_u = g.nodes[u]["kind"]
            text.append(" ")
            text.append(u.rjust(src_w), STYLE[kind_u])
            text.append(" ── ", STYLE["line"])
            op = _fit(d["op"], op_w)
            text.append(op, STYLE["op"])
            text.append(" " + "─" * (op_w - cell_len(op) + 2), STYLE["line"])
            if len(incoming) == 1:
                text.append("──▶ ", STYLE["line"])
            elif i == 0:
                text.append("┐", STYLE["line"])
            elif not last:
                text.append("┤", STYLE["line"])
            else:
                text.append("┴─▶ ", STYLE["line"])
            if last:
                text.append(v, STYLE["node"])
            text.append("\n")
    combine = output_combine(g.graph["kind"])
    joined = nodes[-1:] if combine == "last" else nodes
    parts = [Text(" "), Text(", ".join(joined), STYLE["node"]), Text(f" ── {combine} ──▶ ", STYLE["line"]),
             Text(out, STYLE["output"])]
    line = Text.assemble(*parts)
    if line.cell_len > width:
        line = Text.assemble(Text(" "), Text(f"{nodes[0]}..{nodes[-1]}", STYLE["node"]),
                             Text(f" ── {combine} ──▶ ", STYLE["line"]), Text(out, STYLE["output"]))
    text.append_text(line)
    lines = text.split("\n")
    for ln in lines:
        ln.truncate(width, overflow="ellipsis")
    return Text("\n").join(lines)


def cell_text(genotype: Genotype, cell_type: str, width: int = 80) -> str:
    """The text drawing of one cell, plain, every line at most ``width`` columns."""
    return cell_rich(genotype, cell_type, width).plain


def genotype_rich(genotype: Genotype, width: int = 80) -> Text:
    """Every cell of a genotype, one drawing after the other."""
    return Text("\n\n").join(cell_rich(genotype, ct, width) for ct in genotype.cells)
