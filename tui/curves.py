"""Curves over epochs drawn in braille dots (2 x 4 dots a character), as wide and as tall as the widget showing
them, so a wide terminal is filled by the curve instead of a one-line sparkline. Pure drawing (``draw``), the
series a run's numbers make (``live_charts``, ``run_charts``, ``compare_charts``) and the widget (``CurveChart``)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.widget import Widget

if TYPE_CHECKING:
    from .livestate import LiveState

BRAILLE = 0x2800
DOTS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))  # the bit of dot (row, column) in a character
LINES = {"solid": "━", "dotted": "┅", "sparse": "┄"}  # how the legend draws each line style
MARK = "▲"  # on the x axis: an epoch whose genotype changed
CURSOR = "●"  # on the x axis: the epoch shown (replay)
MARK_STYLE, CURSOR_STYLE = "bold yellow", "bold reverse"

# a run's own curves: one colour a quantity
COLORS = {"train": "#4fc3f7", "val": "#ff8a65", "valid": "#ff8a65", "test": "#81c784", "arch": "#fff176"}
# two runs on one chart: one colour family and line style a run (val bright, train darker)
RUN_STYLES = (({"val": "#4fc3f7", "valid": "#4fc3f7", "test": "#4fc3f7", "train": "#2a7fa8"}, "solid"),
              ({"val": "#ff8a65", "valid": "#ff8a65", "test": "#ff8a65", "train": "#b35a3c"}, "dotted"))
RUN_TAGS = ("A", "B")

LOSSES = ("train_loss", "val_loss", "valid_loss", "test_loss")
ACCURACIES = ("train_acc", "val_acc", "test_acc")
PERPLEXITIES = ("train_ppl", "val_ppl", "valid_ppl", "test_ppl")


@dataclass(frozen=True)
class Series:
    """One curve: (x, y) points (x in epochs), its colour and line style (a key of LINES)."""

    label: str
    points: tuple[tuple[float, float], ...]
    color: str
    line: str = "solid"


@dataclass(frozen=True)
class Chart:
    """What one chart shows; frozen, so a widget redraws only when it changed. ``marks``: epochs marked ▲ on the
    x axis (genotype changes); ``cursor``: the epoch marked ● (the one a replay shows)."""

    title: str
    series: tuple[Series, ...]
    fmt: str = "{:.3f}"
    marks: tuple[float, ...] = ()
    cursor: float | None = None
    x_name: str = "epoch"


def finite(v: Any) -> bool:
    """Whether ``v`` is a number to draw or compare (not None, not a bool, not NaN or infinite)."""
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _bucket(points: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """Points on the same pixel column merged into their mean (thousands of steps on a few hundred columns)."""
    out: list[tuple[int, float]] = []
    total, n = 0.0, 0
    for i, (c, y) in enumerate(points):
        total, n = total + y, n + 1
        if i + 1 == len(points) or points[i + 1][0] != c:
            out.append((c, total / n))
            total, n = 0.0, 0
    return out


def _ticks(x0: float, x1: float, room: int) -> list[float]:
    """Labelled x values: whole epochs when the range spans some, spaced so their labels fit ``room`` columns."""
    label = max(len(f"{x1:g}"), len(f"{x0:g}")) + 2
    most = max(room // label, 2)
    whole = list(range(math.ceil(x0), math.floor(x1) + 1))
    if len(whole) >= 2:
        step = math.ceil(len(whole) / most)
        ticks = [float(v) for v in whole[::step]]
        return ticks if ticks[-1] == whole[-1] or len(ticks) < 2 else [*ticks[:-1], float(whole[-1])]
    return [x0 + (x1 - x0) * k / (most - 1) for k in range(most)] if x1 > x0 else [x0]


def _legend(chart: Chart, width: int) -> Text:
    """The title and each curve's line style, name and latest value; without the values when they do not fit."""
    for values in (True, False):
        text = Text()
        text.append(chart.title, style="bold")
        for s in chart.series:
            text.append("  ")
            text.append(f"{LINES.get(s.line, '━')} {s.label}", style=s.color)
            if s.points and values:
                text.append(f" {chart.fmt.format(s.points[-1][1])}", style="dim")
        if chart.marks:
            text.append(f"  {MARK} genotype changed", style=MARK_STYLE)
        if text.cell_len <= width:
            break
    return text


def _fit(text: Text, width: int) -> Text:
    """``text`` cut or padded to exactly ``width`` columns."""
    text.truncate(width, overflow="ellipsis")
    text.pad_right(width - text.cell_len)
    return text


def draw(chart: Chart, width: int, height: int) -> Text:
    """The chart as ``height`` lines of ``width`` columns: a title line with the legend, the plot (y labels on the
    left, each series a braille line), the x axis (▲ marks, ● cursor) and its epoch labels."""
    width, height = max(width, 24), max(height, 4)
    series = [Series(s.label, tuple(p for p in s.points if finite(p[0]) and finite(p[1])), s.color, s.line)
              for s in chart.series]
    points = [p for s in series for p in s.points]
    lines = [_fit(_legend(chart, width), width)]
    if not points:
        lines.append(_fit(Text("(no data yet)", style="dim italic"), width))
        lines.extend(_fit(Text(), width) for _ in range(height - 2))
        return Text("\n").join(lines)
    ys = [y for _, y in points]
    lo, hi = min(ys), max(ys)
    if hi - lo < 1e-12:
        pad = abs(hi) * 0.05 or 0.5
        lo, hi = lo - pad, hi + pad
    xs = [x for x, _ in points] + list(chart.marks) + ([chart.cursor] if chart.cursor is not None else [])
    x0, x1 = min(xs), max(xs)
    if x1 - x0 < 1e-12:
        x0, x1 = x0 - 0.5, x1 + 0.5
    plot_h = max(height - 3, 1)
    mid_row = (plot_h - 1) // 2 if plot_h >= 3 else -1
    mid_value = hi - (mid_row * 4 + 1.5) / max(plot_h * 4 - 1, 1) * (hi - lo)
    labels = {0: chart.fmt.format(hi), plot_h - 1: chart.fmt.format(lo)}
    if mid_row > 0:
        labels[mid_row] = chart.fmt.format(mid_value)
    gutter = max(len(v) for v in labels.values()) + 1
    plot_w = max(width - gutter - 1, 4)
    cols, rows = plot_w * 2, plot_h * 4

    def px(x: float) -> int:
        return round((x - x0) / (x1 - x0) * (cols - 1))

    def py(y: float) -> int:
        return round((hi - y) / (hi - lo) * (rows - 1))

    bits = [[0] * plot_w for _ in range(plot_h)]
    owner = [[-1] * plot_w for _ in range(plot_h)]

    def dot(c: int, r: int, k: int) -> None:
        if 0 <= c < cols and 0 <= r < rows:
            bits[r // 4][c // 2] |= DOTS[r % 4][c % 2]
            owner[r // 4][c // 2] = k

    for k, s in enumerate(series):
        pix = _bucket([(px(x), y) for x, y in sorted(s.points)])
        path = [(c, py(y)) for c, y in pix]
        if len(path) == 1:
            c, r = path[0]
            for dc in (-1, 0, 1):
                dot(c + dc, r, k)
            continue
        every = {"dotted": 2, "sparse": 4}.get(s.line, 1)
        t = 0
        for (c0, r0), (c1, r1) in itertools.pairwise(path):
            n = max(abs(c1 - c0), abs(r1 - r0), 1)
            for i in range(n):
                if t % every == 0 or i == 0:
                    dot(round(c0 + (c1 - c0) * i / n), round(r0 + (r1 - r0) * i / n), k)
                t += 1
        dot(*path[-1], k)
    mark_cols = {px(m) // 2 for m in chart.marks}
    cursor_col = px(chart.cursor) // 2 if chart.cursor is not None else None
    for r in range(plot_h):
        line = Text()
        label = labels.get(r)
        line.append(f"{label or '':>{gutter - 1}} ", style="dim")
        line.append("┤" if label else "│", style="dim")
        for c in range(plot_w):
            if bits[r][c]:
                line.append(chr(BRAILLE + bits[r][c]), style=series[owner[r][c]].color)
            elif c == cursor_col:
                line.append("┊", style="dim")
            elif c in mark_cols:
                line.append("┊", style="dim yellow")
            else:
                line.append(" ")
        lines.append(line)
    axis = Text(" " * gutter + "└", style="dim")
    for c in range(plot_w):
        if c == cursor_col:
            axis.append(CURSOR, style=CURSOR_STYLE)
        elif c in mark_cols:
            axis.append(MARK, style=MARK_STYLE)
        else:
            axis.append("─", style="dim")
    lines.append(axis)
    under = [" "] * plot_w
    taken = -1
    for v in _ticks(x0, x1, plot_w):
        name = f"{v:g}" if v == int(v) else f"{v:.1f}"
        start = min(max(px(v) // 2 - len(name) // 2, 0), plot_w - len(name))
        if start <= taken or start < 0:
            continue
        under[start:start + len(name)] = name
        taken = start + len(name)
    # the x axis's name under the y labels when it fits there (the last epoch's label takes the right end)
    left = f"{chart.x_name:>{gutter}} " if len(chart.x_name) < gutter else " " * (gutter + 1)
    lines.append(_fit(Text(left + "".join(under), style="dim"), width))
    return Text("\n").join(lines[:height])


# --- the series of a run --------------------------------------------------------------------------------
def epoch_points(records: Sequence[Mapping[str, Any]], key: str) -> tuple[tuple[float, float], ...]:
    """(epoch, value) of every per-epoch record holding a number under ``key``."""
    return tuple((float(r["epoch"]), float(r[key])) for r in records
                 if finite(r.get(key)) and finite(r.get("epoch")))


def step_points(values: Sequence[float], steps_per_epoch: int) -> tuple[tuple[float, float], ...]:
    """Per-step values (step i of the run is point i) as (epochs, value): step s of epoch e is at e - 1 + s / steps."""
    per = max(steps_per_epoch, 1)
    return tuple(((i + 1) / per, float(v)) for i, v in enumerate(values))


def _label(key: str) -> str:
    return key.replace("_", " ")


def _score_keys(records: Sequence[Mapping[str, Any]]) -> tuple[tuple[str, ...], str, str]:
    """A language model's runs are scored by perplexity, the others by accuracy: (keys, title, format)."""
    if any(finite(r.get(k)) for r in records for k in PERPLEXITIES):
        return PERPLEXITIES, "perplexity", "{:.1f}"
    return ACCURACIES, "accuracy", "{:.3f}"


def run_charts(records: Sequence[Mapping[str, Any]], marks: Sequence[float] = (), cursor: float | None = None) -> list[Chart]:
    """A run's loss and accuracy (or perplexity) charts from its per-epoch records (metrics.jsonl)."""
    keys, title, fmt = _score_keys(records)
    out = []
    for chart_keys, chart_title, chart_fmt in ((LOSSES, "loss", "{:.3f}"), (keys, title, fmt)):
        series = tuple(Series(_label(k), pts, COLORS[k.split("_")[0]]) for k in chart_keys
                       if (pts := epoch_points(records, k)))
        out.append(Chart(chart_title, series, chart_fmt, tuple(marks), cursor))
    return out


def live_charts(state: LiveState) -> list[Chart]:
    """The live run's charts: training loss, accuracy and architecture loss per step, validation per epoch."""
    records = [h.metrics for h in state.history]
    spe = state.steps_per_epoch or 1
    loss = [Series("train loss/step", step_points(state.step_train_loss, spe), COLORS["train"]),
            Series("val loss", epoch_points(records, "val_loss"), COLORS["val"]),
            Series("arch loss/step", step_points(state.step_arch_loss, spe), COLORS["arch"], "sparse")]
    keys, title, fmt = _score_keys(records)
    if title == "perplexity":
        score = [Series(_label(k), epoch_points(records, k), COLORS[k.split("_")[0]]) for k in keys]
    else:
        score = [Series("train acc/step", step_points(state.step_train_acc, spe), COLORS["train"]),
                 Series("val acc", epoch_points(records, "val_acc"), COLORS["val"])]
    return [Chart("loss", tuple(s for s in loss if s.points)),
            Chart(title, tuple(s for s in score if s.points), fmt)]


def compare_charts(runs: Sequence[Sequence[Mapping[str, Any]]]) -> list[Chart]:
    """Two runs' loss and score per epoch on the same charts: run A solid in blues, run B dotted in oranges."""
    every = [r for records in runs for r in records]
    keys, title, fmt = _score_keys(every)
    out = []
    for chart_keys, chart_title, chart_fmt in ((LOSSES, "loss", "{:.3f}"), (keys, title, fmt)):
        series = []
        # the validation (test) curves first: the legend names them before the training ones when cut
        for k in (*chart_keys[1:], chart_keys[0]):
            for tag, records, (colors, line) in zip(RUN_TAGS, runs, RUN_STYLES, strict=False):
                pts = epoch_points(records, k)
                if pts:
                    series.append(Series(f"{tag} {_label(k)}", pts, colors[k.split("_")[0]], line))
        out.append(Chart(chart_title, tuple(series), chart_fmt))
    return out


class CurveChart(Widget):
    """A chart filling the widget's size; ``show`` repaints only when the chart changed."""

    DEFAULT_CSS = """
    CurveChart { height: 1fr; min-height: 4; }
    """

    def __init__(self, chart: Chart | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.chart = chart

    def show(self, chart: Chart | None) -> None:
        """Show ``chart`` (None: nothing)."""
        if chart != self.chart:
            self.chart = chart
            self.refresh()

    def render(self) -> Text:
        if self.chart is None:
            return Text("")
        text = draw(self.chart, self.size.width, self.size.height)
        text.no_wrap = True
        return text

    def lines(self) -> list[str]:
        """The chart's lines as drawn at the widget's size now (what the terminal shows)."""
        return self.render().plain.split("\n")
