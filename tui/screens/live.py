"""The live screen: the search as it runs (here or in another process), redrawn from LiveState."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, TabbedContent, TabPane

from .. import render
from ..curves import CurveChart, live_charts
from ..livestate import LiveState, format_seconds, kept_rows
from ..widgets import Drawing, NavBar

TABS = ["tab-abar", "tab-a", "tab-fig4", "tab-curves", "tab-cell"]
COMPACT_BELOW = 30  # terminal rows under which the live header is one line
STATUS_STYLE = {"running": "bold green", "paused": "bold yellow", "stopping": "bold yellow", "starting": "bold cyan",
                "finished": "bold blue", "stopped": "bold magenta", "failed": "bold red", "idle": "dim",
                "died": "bold red"}


def score_text(metrics: dict) -> str:
    """A search's validation score: perplexity for a language model, else accuracy."""
    if "val_ppl" in metrics:
        return f"ppl {float(metrics['val_ppl']):.1f}"
    return f"acc {float(metrics.get('val_acc', 0)):.3f}"


def compact_status(state: LiveState, following: bool, width: int) -> Text:
    """The header in one line, for short terminals (80x24): status, epoch, step, ETA, latest losses; the message
    (a failure's, a stop's) replaces the numbers when there is one."""
    if state.status == "idle" and state.run_dir is None:
        return Text("No search here yet: F2 sets one up · F4 picks a run · a attaches to a run folder", style="bold")
    text = Text(f"● {state.status}{' (following)' if following else ''} ", style=STATUS_STYLE.get(state.status, "bold"))
    current = min(state.epoch + 1, state.epochs) if state.active or state.step else state.epoch
    text.append(f" epoch {current}/{state.epochs} step {state.step}/{state.steps_per_epoch} "
                f"ETA {format_seconds(state.eta_s())} ")
    if state.message and not state.active:
        text.append(state.message, style="italic")
    else:
        if state.step_train_loss:
            text.append(f" loss {state.step_train_loss[-1]:.3f}")
        if state.history:
            text.append(f" val {score_text(state.history[-1].metrics)}")
    text.truncate(max(width, 20), overflow="ellipsis")
    return text


def status_text(state: LiveState, following: bool, width: int) -> Text:
    """The two header lines: where the run is, and its latest numbers."""
    text = Text()
    if state.status == "idle" and state.run_dir is None:
        text.append("No search here yet. ", style="bold")
        text.append("F2: set one up and start it · F4: pick a run to follow, replay or resume · a: attach to a run folder")
        return text
    text.append(f"● {state.status} ", style=STATUS_STYLE.get(state.status, "bold"))
    if following:
        text.append(" (following)", style="dim")
    cfg = state.config
    text.append(f"  {state.algorithm or '?'} · {cfg.get('space', {}).get('name', '?')} · {cfg.get('data', {}).get('name', '?')}"
                f" · {state.device or '?'}")
    # the epoch being trained (or where a stopped run stopped)
    current = min(state.epoch + 1, state.epochs) if state.active or state.step else state.epoch
    text.append(f"  epoch {current}/{state.epochs}  step {state.step}/{state.steps_per_epoch}")
    text.append(f"  ETA {format_seconds(state.eta_s())}", style="bold")
    text.append("\n")
    loss = state.step_train_loss[-1] if state.step_train_loss else None
    acc = state.step_train_acc[-1] if state.step_train_acc else None
    if loss is not None and acc is not None:
        text.append(f"loss {loss:.3f} acc {acc:.2f}  ")
    text.append(f"step: arch {state.last_arch_s:.2f}s weight {state.last_weight_s:.2f}s  ")
    if state.history:
        m = state.history[-1].metrics
        text.append(f"val loss {float(m.get('val_loss', 0)):.3f} {score_text(m)}  "
                    f"params {int(m.get('param_count', 0)) / 1e6:.3f}M  ")
    text.append(f"Ā updates {state.updates}, changed entries {state.changes}", style="dim")
    if state.message:
        text.append(f"\n{state.message}", style="italic")
    return text


def grids(state: LiveState, kind: str, width: int) -> list[Text]:
    """One drawing per cell type: Ā ('abar'), A ('a'), ops over epochs ('fig4')."""
    out = []
    if state.space is None:
        return [Text("waiting for the run to start…", style="dim italic")]
    for ct, cell in state.space.cells.items():
        kept = kept_rows(state.space, ct, state.genotype)
        if kind == "abar":
            out.append(render.discrete_grid(cell, state.discrete.get(ct), f"{ct} cell Ā (edges x ops)", kept,
                                            state.changed.get(ct)))
        elif kind == "a":
            out.append(render.heatmap(cell, state.A.get(ct), f"{ct} cell A", state.softmax_A, kept))
        else:
            sel = [h.selected.get(ct, []) for h in state.history]
            live = None
            if state.discrete.get(ct) is not None and state.active:
                from ..livestate import selected_ops

                live = selected_ops(state.discrete[ct], state.A.get(ct))
            out.append(render.op_timeline(cell, sel, f"{ct} cell: selected op per edge over epochs"
                                          + (" (| now)" if live else ""), live, width=width))
    return out


def curves(state: LiveState, width: int, compact: bool = False) -> Text:
    """The numbers under the loss and accuracy charts: step seconds and genotype size per epoch as sparklines
    (``compact``, a short terminal: one line of their latest values, so the charts keep the rows)."""
    width = max(width - 2, 30)
    rows = [("arch s/epoch", state.epoch_series("arch_s"), "{:.1f}"),
            ("weight s/epoch", state.epoch_series("weight_s"), "{:.1f}"),
            ("params/epoch", [v / 1e6 for v in state.epoch_series("param_count")], "{:.3f}M")]
    text = Text()
    if compact:
        latest = [f"{label} {fmt.format(values[-1])}" for label, values, fmt in rows if values]
        text.append(" · ".join(latest) if latest else "step seconds and genotype size arrive at each epoch's end",
                    style="dim")
        text.truncate(width, overflow="ellipsis")
        return text
    for label, values, fmt in rows:
        text.append_text(render.chart_line(label, values, width, fmt))
        text.append("\n")
    text.append("charts: train loss/acc and arch loss per step, validation per epoch; below: step seconds and "
                "genotype size per epoch", style="dim")
    return text


class GridPair(Container):
    """Two drawings side by side when they fit, one above the other when they do not."""

    DEFAULT_CSS = """
    GridPair { layout: horizontal; height: auto; }
    GridPair.-narrow { layout: vertical; }
    GridPair > Drawing { width: auto; height: auto; margin-right: 3; margin-bottom: 1; }
    """

    def __init__(self, kind: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kind = kind

    def show(self, texts: list[Text], width: int) -> None:
        """Show ``texts`` (one per cell type), side by side when ``width`` has room."""
        drawings = list(self.query(Drawing))
        if len(drawings) != len(texts):
            self.remove_children()
            self.mount_all([Drawing(t) for t in texts])
        else:
            for d, t in zip(drawings, texts, strict=True):
                d.show(t)
        need = sum(max(len(line) for line in t.plain.split("\n")) for t in texts)
        self.set_class(need + 3 * len(texts) > width, "-narrow")


class LiveScreen(Screen[None]):
    """Ā, A, Fig. 4, curves and the cell of the current run; p pauses, x stops."""

    DEFAULT_CSS = """
    LiveScreen #status { height: auto; padding: 0 1; background: $boost; }
    LiveScreen #tabs { height: 1fr; }
    LiveScreen TabPane { padding: 0 1; height: 1fr; }
    LiveScreen VerticalScroll { height: 1fr; }
    LiveScreen #legend { color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("p,space", "pause", "Pause/resume"),
        Binding("x", "stop", "Stop (checkpoint)"),
        Binding("a", "attach", "Attach to run"),
        Binding("g", "genotype", "Edit genotype"),
        Binding("1", "tab(0)", "Ā grid", show=False),
        Binding("2", "tab(1)", "A heatmap", show=False),
        Binding("3", "tab(2)", "Ops over epochs", show=False),
        Binding("4", "tab(3)", "Curves", show=False),
        Binding("5", "tab(4)", "Cell", show=False),
        # the tab bar has the focus: these scroll the tab's content (the second cell is below the first at 80x24)
        Binding("down,j", "scroll_pane(1)", "Scroll", show=False),
        Binding("up,k", "scroll_pane(-1)", "Scroll up", show=False),
        Binding("pagedown", "scroll_pane(10)", "Page down", show=False),
        Binding("pageup", "scroll_pane(-10)", "Page up", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._shown_version = -1
        self._shown_state: LiveState | None = None
        self.drawn_tab = ""  # the tab the last redraw rendered (tests time key presses with it)

    def compose(self) -> ComposeResult:
        yield NavBar("live", "live search")
        yield Drawing("", id="status")
        with TabbedContent(id="tabs"):
            with TabPane("1 Ā", id="tab-abar"), VerticalScroll():
                yield GridPair("abar", id="abar")
                yield Drawing("", id="legend")
            with TabPane("2 A", id="tab-a"), VerticalScroll():
                yield GridPair("a", id="heat")
            with TabPane("3 ops/epoch", id="tab-fig4"), VerticalScroll():
                yield GridPair("fig4", id="fig4")
            with TabPane("4 curves", id="tab-curves"), Vertical():
                yield CurveChart(id="c-loss")
                yield CurveChart(id="c-score")
                yield Drawing("", id="curves")
            with TabPane("5 cell", id="tab-cell"), VerticalScroll():
                yield Drawing("", id="cell")
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        self.set_interval(0.1, self.redraw)
        self.redraw(force=True)

    def on_screen_resume(self) -> None:
        self.redraw(force=True)

    def on_resize(self) -> None:
        self.redraw(force=True)

    @property
    def state(self) -> LiveState:
        return self.app.state  # type: ignore[attr-defined, no-any-return]

    def redraw(self, force: bool = False) -> None:
        """Re-render what changed since the last frame (called 10 times a second, cheap when idle)."""
        state = self.state
        if not force and state is self._shown_state and state.version == self._shown_version:
            return
        if not self.is_current and not force:
            return
        self._shown_state, self._shown_version = state, state.version
        width = self.size.width - 2
        following = bool(getattr(self.app, "following", False))
        compact = self.size.height < COMPACT_BELOW  # 80x24: one header line, so the cells get the rows
        self.query_one("#status", Drawing).show((compact_status if compact else status_text)(state, following, width))
        active = self.query_one("#tabs", TabbedContent).active
        # only the visible tab is rendered; the others catch up when shown
        if active == "tab-abar":
            self.query_one("#abar", GridPair).show(grids(state, "abar", width), width)
            legend = Text()
            if state.space is not None:
                for ct, cell in state.space.cells.items():
                    legend.append(f"{ct}: ", style="bold")
                    legend.append_text(render.legend(cell.ops, width=width - len(ct) - 2))
                    legend.append("\n")
            legend.append("● selected in Ā · bold rows: edges the genotype keeps · yellow: changed by the last update",
                          style="dim")
            self.query_one("#legend", Drawing).show(legend)
        elif active == "tab-a":
            self.query_one("#heat", GridPair).show(grids(state, "a", width), width)
        elif active == "tab-fig4":
            self.query_one("#fig4", GridPair).show(grids(state, "fig4", width // 2 - 3), width)
        elif active == "tab-curves":
            loss, score = live_charts(state)
            self.query_one("#c-loss", CurveChart).show(loss)
            self.query_one("#c-score", CurveChart).show(score)
            self.query_one("#curves", Drawing).show(curves(state, width, compact))
        elif active == "tab-cell":
            self.query_one("#cell", Drawing).show(cell_texts(state.genotype, width))
        self.drawn_tab = active

    def on_tabbed_content_tab_activated(self) -> None:
        self.redraw(force=True)

    def action_tab(self, index: int) -> None:
        self.query_one("#tabs", TabbedContent).active = TABS[index]

    def action_scroll_pane(self, lines: int) -> None:
        scroll_active_pane(self.query_one("#tabs", TabbedContent), lines)

    def action_pause(self) -> None:
        self.app.toggle_pause()  # type: ignore[attr-defined]
        self.redraw(force=True)

    def action_stop(self) -> None:
        self.app.stop_search()  # type: ignore[attr-defined]
        self.redraw(force=True)

    def action_attach(self) -> None:
        self.app.ask_attach()  # type: ignore[attr-defined]

    def action_genotype(self) -> None:
        state = self.state
        if state.run_dir is None or not state.history:
            self.notify("no genotype yet: it is written at the end of the first epoch", severity="warning")
            return
        self.app.open_genotype(state.run_dir)  # type: ignore[attr-defined]


def scroll_active_pane(tabs: TabbedContent, lines: int) -> None:
    """Scroll the active tab's content by ``lines`` (keys, while the tab bar keeps the focus)."""
    pane = tabs.active_pane
    if pane is not None:
        for scroller in pane.query(VerticalScroll):
            scroller.scroll_relative(y=lines, animate=False)
            break


def cell_texts(genotype: dict[str, Any] | None, width: int) -> Text:
    """Every cell of a genotype dict, drawn as text by nasp.viz (the cell graph's drawing)."""
    if not genotype:
        return Text("the cell is drawn at the end of the first epoch", style="dim italic")
    from nasp.errors import NaspError
    from nasp.genotype import Genotype
    from nasp.viz.text import genotype_rich

    try:
        return genotype_rich(Genotype.model_validate(genotype), width=max(width, 40))
    except (ValueError, NaspError) as exc:
        return Text(f"cannot draw the genotype: {exc}", style="red")
