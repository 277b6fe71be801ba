"""Two runs side by side (c on two rows of the runs screen) or two genotypes (d): both runs' curves on the same
charts, their final numbers in two columns with the difference, and their genotypes diffed edge by edge."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from nasp.spaces import SearchSpace

from ..curves import LINES, RUN_STYLES, RUN_TAGS, CurveChart, compare_charts, finite
from ..genodiff import EdgeDiff, as_dict, diff_genotypes, diff_text
from ..runs import RunInfo
from ..widgets import Drawing, NavBar
from .live import GridPair

WIDE_FROM = 150  # columns from which the two charts, and the numbers and the diff, sit side by side
# (metrics.jsonl key, row name, format) of the numbers compared, in this order; a row shows when either run has it
NUMBERS = (("val_acc", "val acc", "{:.4f}"), ("test_acc", "test acc", "{:.4f}"), ("val_ppl", "val ppl", "{:.2f}"),
           ("test_ppl", "test ppl", "{:.2f}"), ("val_loss", "val loss", "{:.4f}"), ("test_loss", "test loss", "{:.4f}"),
           ("train_loss", "train loss", "{:.4f}"), ("train_acc", "train acc", "{:.4f}"),
           ("arch_loss", "arch loss", "{:.4f}"), ("param_count", "params", "{:,.0f}"),
           ("elapsed_s", "seconds", "{:.1f}"))
BEST = {"val_acc": max, "test_acc": max, "val_ppl": min, "test_ppl": min}  # the best epoch of a score
FORMATS = {key: fmt for key, _, fmt in NUMBERS}


@dataclass
class Side:
    """One of the two things compared: a run (its per-epoch records and summary) or a genotype alone."""

    label: str
    genotype: dict[str, Any] | None
    space: SearchSpace | None
    records: list[dict[str, Any]] = field(default_factory=list)
    info: RunInfo | None = None


def run_side(path: str | Path) -> Side:
    """A run folder as compared: metrics.jsonl, its genotype.json (an evaluation's: the genotype it trains), its
    space (read without importing its plugins)."""
    from nasp.errors import NaspError
    from nasp.genotype import Genotype
    from nasp.runfolder import RunFolder, read_json

    from ..runs import run_info, run_space

    folder = RunFolder(path)
    info = run_info(folder.path)
    genotype = read_json(folder.genotype_path) or None
    raw = run_space(folder.path, read_json(folder.config_path))
    space = SearchSpace.model_validate(raw) if raw else None
    if space is None and genotype:
        try:
            space = Genotype.model_validate(genotype).resolve_space(strict=False)
        except (ValueError, NaspError):
            space = None
    records = [m for m in folder.metrics() if "epoch" in m]
    return Side(folder.path.name, genotype, space, records, info)


def genotype_side(label: str, genotype: Any) -> Side:
    """A genotype (a nasp Genotype) compared on its own: no curves, no numbers of a run."""
    return Side(label, as_dict(genotype), genotype.resolve_space(strict=False))


def _last(records: list[dict[str, Any]], key: str) -> float | None:
    for r in reversed(records):
        if finite(r.get(key)):
            return float(r[key])
    return None


def numbers_text(a: Side, b: Side, diffs: list[EdgeDiff]) -> Text:
    """The two sides' numbers in two columns and B - A: what they are (status, algorithm, space, epochs), the last
    epoch's metrics, the best score and its epoch, and how many genotype edges differ."""
    rows: list[tuple[str, str, str, str]] = []
    ia, ib = a.info, b.info
    if ia is not None and ib is not None:
        rows += [("status", ia.status, ib.status, ""), ("algorithm", ia.algorithm, ib.algorithm, ""),
                 ("space", ia.space, ib.space, ""), ("data", ia.data, ib.data, ""),
                 ("epochs", f"{ia.epoch}/{ia.epochs}", f"{ib.epoch}/{ib.epochs}", f"{ib.epoch - ia.epoch:+d}")]
    else:
        rows.append(("space", str((a.genotype or {}).get("space", "?")), str((b.genotype or {}).get("space", "?")), ""))
    for key, name, fmt in NUMBERS:
        va, vb = _last(a.records, key), _last(b.records, key)
        if va is None and vb is None:
            continue
        delta = fmt.replace("{:", "{:+").format(vb - va) if va is not None and vb is not None else ""
        rows.append((name, fmt.format(va) if va is not None else "-", fmt.format(vb) if vb is not None else "-", delta))
    for key, pick in BEST.items():
        best = []
        for side in (a, b):
            scored = [(float(r[key]), int(r["epoch"])) for r in side.records if finite(r.get(key))]
            best.append(pick(scored, key=lambda t: t[0]) if scored else None)
        if any(best):
            fmt = FORMATS[key]
            cells = [f"{fmt.format(v)} (epoch {e})" if v is not None else "-" for v, e in (t or (None, 0) for t in best)]
            rows.append((f"best {key.replace('_', ' ')}", cells[0], cells[1], ""))
    differ = sum(d.differs for d in diffs)
    kept = [sum(1 for d in diffs if getattr(d, attr) is not None) for attr in ("a", "b")]
    rows += [("genotype edges", str(kept[0]), str(kept[1]), ""), ("edges differing", str(differ), "", "")]
    w = [max(len(r[i]) for r in rows) for i in range(4)]
    heads = [f"{tag} {side.label[:22]}" for tag, side in zip(RUN_TAGS, (a, b), strict=True)]
    w[1], w[2] = max(w[1], len(heads[0])), max(w[2], len(heads[1]))
    text = Text()
    text.append(f"{'':<{w[0]}}  ", style="bold")
    for i, (head, (colors, _)) in enumerate(zip(heads, RUN_STYLES, strict=True)):
        text.append(f"{head:<{w[i + 1]}}  ", style=f"bold {colors['val']}")
    text.append("B - A", style="bold")
    for name, va, vb, delta in rows:
        text.append("\n")
        text.append(f"{name:<{w[0]}}  ", style="bold")
        text.append(f"{va:<{w[1]}}  ")
        text.append(f"{vb:<{w[2]}}  ")
        text.append(delta, style="dim")
    return text


def who_text(a: Side, b: Side) -> Text:
    """The header: which run (or genotype) is A and which is B, with the line style and colour each has."""
    text = Text()
    for i, side in enumerate((a, b)):
        colors, line = RUN_STYLES[i]
        if i:
            text.append("\n")
        text.append(f"{RUN_TAGS[i]} {LINES[line]} {side.label}", style=f"bold {colors['val']}")
        if side.info is not None:
            info = side.info
            text.append(f"  {info.algorithm} on {info.space}, {info.status}, epoch {info.epoch}/{info.epochs}",
                        style="dim")
        elif side.genotype:
            text.append(f"  genotype of space {side.genotype.get('space', '?')}", style="dim")
    return text


class CompareScreen(Screen[None]):
    """Two runs or two genotypes compared; 1-3 jump to the curves, the numbers, the genotypes."""

    DEFAULT_CSS = """
    CompareScreen #who { height: auto; padding: 0 1; background: $boost; }
    CompareScreen #body { height: 1fr; padding: 0 1; }
    CompareScreen #charts { layout: vertical; height: auto; }
    CompareScreen #charts.-wide { layout: horizontal; }
    CompareScreen #charts.-wide #chart-0 { margin-right: 2; }
    CompareScreen #facts { layout: vertical; height: auto; margin-top: 1; }
    CompareScreen #facts.-wide { layout: horizontal; }
    CompareScreen #numbers { width: auto; height: auto; margin: 0 4 1 0; }
    CompareScreen #diff { width: auto; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "jump('charts')", "Curves"),
        Binding("2", "jump('numbers')", "Numbers"),
        Binding("3", "jump('diff')", "Genotypes"),
        Binding("down,j", "scroll(1)", "Scroll", show=False),
        Binding("up,k", "scroll(-1)", "Scroll up", show=False),
        Binding("pagedown", "scroll(10)", "Page down", show=False),
        Binding("pageup", "scroll(-10)", "Page up", show=False),
        Binding("escape,q", "back", "Back"),
    ]

    def __init__(self, a: Side, b: Side) -> None:
        super().__init__()
        self.a, self.b = a, b
        self.diffs = diff_genotypes(a.genotype or {}, b.genotype or {}, a.space or b.space)
        self.charts = compare_charts([a.records, b.records]) if a.records or b.records else []
        self.numbers = numbers_text(a, b, self.diffs)

    @classmethod
    def of_runs(cls, a: str | Path, b: str | Path) -> CompareScreen:
        return cls(run_side(a), run_side(b))

    def compose(self) -> ComposeResult:
        yield NavBar("runs", f"compare {self.a.label} with {self.b.label}")
        yield Static(who_text(self.a, self.b), id="who")
        with VerticalScroll(id="body"):
            with Container(id="charts"):
                for i, chart in enumerate(self.charts):
                    yield CurveChart(chart, id=f"chart-{i}")
            with Container(id="facts"):
                yield Drawing(self.numbers, id="numbers")
                yield GridPair("diff", id="diff")
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#charts").display = bool(self.charts)
        self.layout_parts()

    def on_resize(self) -> None:
        self.layout_parts()

    def layout_parts(self) -> None:
        """Charts fill the first screen (side by side from WIDE_FROM columns, one above the other below it); the
        numbers and the diff follow, side by side when wide."""
        width, height = self.size.width, self.size.height
        wide = width >= WIDE_FROM
        self.query_one("#charts").set_class(wide, "-wide")
        self.query_one("#facts").set_class(wide, "-wide")
        rows = max((height - 6) // 2, 10) if wide else max((height - 5) // 2, 8)
        for chart in self.query(CurveChart):
            chart.styles.height = rows
            chart.styles.width = "1fr" if wide else "100%"
        cells = list(dict.fromkeys(d.cell for d in self.diffs))
        texts = [diff_text(self.diffs, ct) for ct in cells] or [Text("no genotype to compare", style="dim italic")]
        room = width - 2 - (max(map(len, self.numbers.plain.split("\n"))) + 4 if wide else 0)
        self.query_one("#diff", GridPair).show(texts, room)

    def diff_lines(self) -> list[str]:
        """The genotype diff as drawn (each cell type's table), for a look without the screen."""
        return [line for d in self.query_one("#diff", GridPair).query(Drawing)
                for line in str(d.render()).split("\n")]

    def action_jump(self, part: str) -> None:
        target = self.query_one(f"#{part}")
        if target.display:
            self.query_one("#body", VerticalScroll).scroll_to_widget(target, animate=False, top=True)

    def action_scroll(self, lines: int) -> None:
        self.query_one("#body", VerticalScroll).scroll_relative(y=lines, animate=False)

    def action_back(self) -> None:
        self.app.pop_screen()
