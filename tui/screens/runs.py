"""The runs screen (every run folder, its status and results) and the replay of one run's Ā history."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Vertical, VerticalScroll
from textual.coordinate import Coordinate
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static, TabbedContent, TabPane

from ..curves import CurveChart, run_charts
from ..genodiff import changes_text, genotype_changes
from ..livestate import LiveState, kept_rows
from ..runs import UNREADABLE, RunInfo, list_runs, load_run_state, resume_details, resume_plugins
from ..widgets import ChoiceDialog, NavBar, PathDialog
from .live import COMPACT_BELOW, GridPair, cell_texts, score_text, scroll_active_pane

# the short columns first: a long run name, algorithm or space (an evaluation's genotype) cannot push the score off
COLUMNS = ("run", "status", "epochs", "score", "params", "algorithm", "space")
SORTS = ("newest", "score", "params", "status")


def _score_key(info: RunInfo) -> tuple[int, float]:
    """Best first: a higher accuracy, a lower perplexity; runs without a score last."""
    if isinstance(info.perplexity, int | float):
        return (0, info.perplexity)
    return (0, -info.val_acc) if isinstance(info.val_acc, int | float) else (1, 0.0)


def sort_runs(infos: list[RunInfo], by: str) -> list[RunInfo]:
    """``infos`` (newest first, as listed) in the order ``by`` (one of SORTS) names; ties keep the newest first."""
    if by == "score":
        return sorted(infos, key=_score_key)
    if by == "params":
        return sorted(infos, key=lambda i: (i.param_count is None, i.param_count or 0))
    if by == "status":
        return sorted(infos, key=lambda i: i.status)
    return list(infos)


def changed_entries(before: list[list[float]] | None, after: list[list[float]] | None) -> set[tuple[int, int]]:
    """The (edge, op) entries of Ā that differ between two epochs (none without an earlier one)."""
    if before is None or after is None:
        return set()
    return {(r, c) for r, (rb, ra) in enumerate(zip(before, after, strict=False))
            for c, (b, a) in enumerate(zip(rb, ra, strict=False)) if b != a}


def matches(info: RunInfo, text: str) -> bool:
    """Whether every word of ``text`` is part of the run's name, algorithm, space, status or kind."""
    hay = " ".join((info.name, info.algorithm, info.space, info.status, info.kind)).lower()
    return all(word in hay for word in text.lower().split())
WIDE = 28  # the longest a name column gets (cut with "…"; the detail below the table shows it whole)


def _cut(text: str, width: int = WIDE) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def info_row(info: RunInfo) -> tuple[str, ...]:
    """A search shows its validation accuracy, an evaluation its test accuracy (the column says which); a language
    model its perplexity."""
    which = "test" if info.kind == "eval" else "val"
    if isinstance(info.perplexity, (int, float)):
        acc = f"{info.perplexity_of or which} ppl {info.perplexity:.0f}"
    else:
        acc = f"{which} {info.val_acc:.3f}" if isinstance(info.val_acc, (int, float)) else "-"
    params = f"{info.param_count / 1e6:.3f}M" if isinstance(info.param_count, int) else "-"
    return (_cut(info.name, 34), info.status, f"{info.epoch}/{info.epochs}", acc, params, _cut(info.algorithm),
            _cut(info.space))


def info_detail(info: RunInfo) -> Text:
    text = Text()
    text.append(f"{info.path}\n", style="bold")
    text.append(f"{info.algorithm} on {info.space}, data {info.data}; {info.status} after {info.epoch} of {info.epochs} epochs\n")
    if info.error:
        text.append(f"error: {info.error}\n", style="red")
    if info.has_genotype:
        from nasp.errors import NaspError
        from nasp.genotype import Genotype

        from ..render import genotype_lines

        try:
            text.append(genotype_lines(Genotype.load(info.path)) + "\n", style="cyan")
        except NaspError as exc:
            text.append(f"genotype: {exc}\n", style="red")
    hints = ["g: edit its genotype"] if info.kind == "eval" else ["enter: replay Ā epoch by epoch", "g: edit its genotype"]
    if info.resumable:
        hints.append("r: resume it here")
    if info.followable:
        hints.append("f: follow it live")
    hints.append("c: compare with another run")
    if info.has_genotype:
        hints.append("d: diff its genotype")
    text.append(" · ".join(hints), style="dim")
    return text


class RunsScreen(Screen[None]):
    """Run folders of the runs folder, newest first; refreshed every 2 s."""

    DEFAULT_CSS = """
    RunsScreen #folder { height: 1; padding: 0 1; background: $boost; }
    RunsScreen #filter { margin: 0 1; }
    RunsScreen DataTable { height: 1fr; min-height: 5; }
    RunsScreen #detail { height: auto; max-height: 8; padding: 0 1; border-top: solid $accent; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "replay", "Replay Ā", priority=True),
        Binding("r", "resume", "Resume"),
        Binding("f", "follow", "Follow live"),
        Binding("g", "genotype", "Edit genotype"),
        Binding("o", "folder", "Runs folder"),
        Binding("u", "refresh", "Refresh", show=False),
        Binding("s", "sort", "Sort"),
        Binding("slash", "filter", "Filter"),
        Binding("c", "compare", "Compare two runs"),
        Binding("d", "diff_genotype", "Diff genotypes"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.infos: list[RunInfo] = []
        self.sort_by = SORTS[0]
        self.filter = ""
        self.marked: Path | None = None  # the run c marked, to compare with the next one c is pressed on

    def compose(self) -> ComposeResult:
        yield NavBar("runs", "runs")
        yield Static("", id="folder", markup=False)
        yield Input(placeholder="filter: part of a name, algorithm, space or status (enter: done, escape: clear)",
                    id="filter", compact=True)
        table: DataTable[str] = DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield table
        with VerticalScroll(id="detail"):
            yield Static("", id="info")
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#filter", Input).display = False  # shown by /
        self.query_one(DataTable).focus()
        self.query_one(DataTable).add_columns(*COLUMNS)
        self.refresh_runs()
        self._select_pointed()
        self.set_interval(2.0, self.refresh_runs)

    def on_screen_resume(self) -> None:
        self.refresh_runs()
        self._select_pointed()

    def _select_pointed(self) -> None:
        """The run a message of the app pointed to ("resume it from the runs screen") comes selected."""
        pointed = getattr(self.app, "pointed_run", None)
        if pointed is not None and self.select(pointed):
            self.app.pointed_run = None  # type: ignore[attr-defined]

    @property
    def folder(self) -> Path:
        return self.app.runs_dir  # type: ignore[attr-defined, no-any-return]

    def refresh_runs(self) -> None:
        every = list_runs(self.folder)
        infos = sort_runs([i for i in every if matches(i, self.filter)], self.sort_by)
        shown = f"{len(infos)} of {len(every)} runs" if self.filter else f"{len(every)} runs"
        self.query_one("#folder", Static).update(
            f"runs folder: {self.folder}  ({shown}, by {self.sort_by}"
            + (f", filter '{self.filter}'" if self.filter else "") + "; o: change, s: sort, /: filter)")
        if [self.row(i) for i in infos] == [self.row(i) for i in self.infos]:
            return
        table = self.query_one(DataTable)
        current = self.selected()
        self.infos = infos
        table.clear()
        for info in infos:
            table.add_row(*self.row(info), key=str(info.path))
        if current is not None:
            for i, info in enumerate(infos):
                if info.path == current.path:
                    table.move_cursor(row=i)
        self.show_detail()

    def selected(self) -> RunInfo | None:
        table = self.query_one(DataTable)
        if not self.infos or table.cursor_row < 0 or table.cursor_row >= len(self.infos):
            return None
        return self.infos[table.cursor_row]

    def on_data_table_row_highlighted(self) -> None:
        self.show_detail()

    def on_data_table_row_selected(self) -> None:
        self.action_replay()

    def show_detail(self) -> None:
        info = self.selected()
        text = info_detail(info) if info else Text(f"no run folders in {self.folder} yet: F2 sets up a search",
                                                   style="dim")
        self.query_one("#info", Static).update(text)

    def _need(self) -> RunInfo | None:
        info = self.selected()
        if info is None:
            self.notify("no run selected", severity="warning")
        elif info.status == UNREADABLE:  # skipped: nothing more of it is read
            self.notify(f"skipped {info.name}: {info.error}", severity="error")
            return None
        return info

    def action_sort(self) -> None:
        """Newest first, then best score, fewest parameters, status."""
        self.sort_by = SORTS[(SORTS.index(self.sort_by) + 1) % len(SORTS)]
        self.action_refresh()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.filter = event.value.strip()
            self.action_refresh()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            event.input.display = bool(self.filter)
            self.query_one(DataTable).focus()

    def on_key(self, event: events.Key) -> None:
        box = self.query_one("#filter", Input)
        if event.key == "escape" and box.has_focus:
            event.stop()
            box.value = ""
            box.display = False
            self.query_one(DataTable).focus()

    def action_refresh(self) -> None:
        self.infos = []
        self.refresh_runs()

    def action_replay(self) -> None:
        box = self.query_one("#filter", Input)
        if box.has_focus:  # enter in the filter (the table's enter binding comes first): done filtering
            box.display = bool(self.filter)
            self.query_one(DataTable).focus()
            return
        info = self._need()
        if info is not None and info.kind == "eval":
            self.notify(f"{info.name} is an evaluation: it has no architecture history to replay (g shows its genotype)",
                        severity="warning")
        elif info is not None:
            self.app.push_screen(ReplayScreen(info.path))

    def action_resume(self) -> None:
        info = self._need()
        if info is None:
            return
        if not info.resumable:
            why = {"finished": "it finished", "running": "it is running (f follows it)"}.get(
                info.status, "it has no checkpoint yet" if info.status in ("stopped", "died", "failed") else info.status)
            if info.kind == "eval":
                why = f"it is an evaluation (continue it with `nasp eval resume={info.path}`)"
            self.notify(f"cannot resume {info.name}: {why}", severity="warning")
            return
        plugins = resume_plugins(info.path)

        def done(answer: str | None) -> None:
            if answer == "resume":
                self.app.resume_search(info.path, plugins)  # type: ignore[attr-defined]

        self.app.push_screen(ChoiceDialog(f"Resume {info.name}?", resume_details(info, plugins),
                                          [("y", "Resume", "resume")]), done)

    def select(self, path: str | Path) -> bool:
        """Put the cursor on the run in ``path`` (the one a message pointed to); False when it is not listed."""
        for i, info in enumerate(self.infos):
            if info.path == Path(path):
                self.query_one(DataTable).move_cursor(row=i)
                self.show_detail()
                return True
        return False

    def action_follow(self) -> None:
        info = self._need()
        if info is not None:
            self.app.attach(info.path)  # type: ignore[attr-defined]

    def _need_genotype(self) -> RunInfo | None:
        """The selected run if it has a genotype, else None (and a notice saying when it will)."""
        info = self._need()
        if info is not None and not info.has_genotype:
            self.notify(f"{info.name} has no genotype yet (written at the end of its first epoch)", severity="warning")
            return None
        return info

    def action_genotype(self) -> None:
        info = self._need_genotype()
        if info is not None:
            self.app.open_genotype(info.path)  # type: ignore[attr-defined]

    def row(self, info: RunInfo) -> tuple[str, ...]:
        """The table row of ``info``; the run marked for a comparison starts with ◆."""
        cells = info_row(info)
        return (f"◆ {cells[0]}", *cells[1:]) if info.path == self.marked else cells

    def _mark(self, path: Path | None) -> None:
        """Mark the run in ``path`` for a comparison (None: no run), redrawing the name cells that change."""
        table = self.query_one(DataTable)
        before, self.marked = self.marked, path
        for i, info in enumerate(self.infos):
            if info.path in (before, path):
                table.update_cell_at(Coordinate(i, 0), self.row(info)[0])

    def action_compare(self) -> None:
        """c marks the selected run, c on a second run compares the two (curves, numbers, genotypes); c on the
        marked run unmarks it."""
        info = self._need()
        if info is None:
            return
        if self.marked is None or self.marked == info.path:
            self._mark(None if self.marked == info.path else info.path)
            if self.marked is not None:
                self.notify(f"marked {info.name}: c on another run compares the two")
            return
        first = self.marked
        self._mark(None)
        from nasp.errors import NaspError

        from .compare import CompareScreen

        try:
            screen = CompareScreen.of_runs(first, info.path)
        except NaspError as exc:
            self.notify(f"cannot compare: {exc}", severity="error")
            return
        self.app.push_screen(screen)

    def action_diff_genotype(self) -> None:
        """d: the selected run's genotype against another one (a genotype file, a run folder, a name such as
        DARTS_V2 or a DARTS string), edge by edge."""
        info = self._need_genotype()
        if info is None:
            return

        def done(spec: str | None) -> None:
            if not spec:
                return
            from nasp.errors import NaspError
            from nasp.genotype import Genotype
            from nasp.runfolder import GENOTYPE

            from ..genoedit import GenotypeEdit
            from .compare import CompareScreen, genotype_side

            try:
                other = GenotypeEdit.load(spec.strip())
                mine = Genotype.load(info.path)
            except NaspError as exc:
                self.notify(str(exc), title="cannot compare genotypes", severity="error")
                return
            src = other.source  # a run folder's genotype.json is named by its run
            label = other.label if src is None else src.parent.name if src.name == GENOTYPE else src.name
            self.app.push_screen(CompareScreen(genotype_side(info.name, mine), genotype_side(label, other.genotype)))

        start = str(self.marked) if self.marked is not None else f"{self.folder}/"
        self.app.push_screen(PathDialog(f"Compare the genotype of {info.name} with", start,
                                        "a genotype .json, a run folder or a name (DARTS_V2, NASP) · tab completes · "
                                        "escape: cancel", (".json",)), done)

    def action_folder(self) -> None:
        def done(path: str | None) -> None:
            if path:
                self.app.runs_dir = Path(path)  # type: ignore[attr-defined]
                self.action_refresh()

        self.app.push_screen(PathDialog("Runs folder", str(self.folder)), done)


class ReplayScreen(Screen[None]):
    """One run's architecture, epoch by epoch: ←/→ step, space plays, home/end jump, ]/[ go to the next / previous
    epoch where the genotype changed (marked on the curves of tab 5)."""

    DEFAULT_CSS = """
    ReplayScreen #where { height: auto; padding: 0 1; background: $boost; }
    ReplayScreen #rtabs { height: 1fr; }
    ReplayScreen TabPane { padding: 0 1; height: 1fr; }
    ReplayScreen VerticalScroll { height: 1fr; }
    ReplayScreen #rchanges-box { height: auto; max-height: 6; }
    ReplayScreen #rc-charts { layout: vertical; height: 1fr; }
    ReplayScreen #rc-charts.-side { layout: horizontal; }
    ReplayScreen #rc-charts CurveChart { width: 1fr; height: 1fr; }
    ReplayScreen #rc-charts.-side #rc-loss { margin-right: 2; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        # priority: the focused tab bar would take ←/→ to switch tabs (1-5 switch them here)
        Binding("left,h", "step(-1)", "Epoch -1", priority=True),
        Binding("right,l", "step(1)", "Epoch +1", priority=True),
        Binding("home", "jump(0)", "First epoch", show=False, priority=True),
        Binding("end", "jump(-1)", "Last epoch", show=False, priority=True),
        Binding("space", "play", "Play/pause"),
        Binding("right_square_bracket", "change(1)", "Next genotype change", show=False, priority=True),
        Binding("left_square_bracket", "change(-1)", "Previous genotype change", show=False, priority=True),
        Binding("g", "genotype", "Edit this genotype"),
        Binding("d", "diff_last", "Diff with the last epoch's genotype", show=False),
        Binding("1", "tab(0)", "Ā grid", show=False),
        Binding("2", "tab(1)", "A heatmap", show=False),
        Binding("3", "tab(2)", "Ops over epochs", show=False),
        Binding("4", "tab(3)", "Cell", show=False),
        Binding("5", "tab(4)", "Curves", show=False),
        Binding("down,j", "scroll_pane(1)", "Scroll", show=False),
        Binding("up,k", "scroll_pane(-1)", "Scroll up", show=False),
        Binding("pagedown", "scroll_pane(10)", "Page down", show=False),
        Binding("pageup", "scroll_pane(-10)", "Page up", show=False),
        Binding("escape,q", "back", "Back"),
    ]
    TABS = ("r-abar", "r-a", "r-fig4", "r-cell", "r-curves")

    def __init__(self, run: Path) -> None:
        super().__init__()
        self.run = Path(run)
        self.state: LiveState = load_run_state(self.run)
        self.index = len(self.state.history) - 1
        self.playing = False
        # the epochs whose genotype differs from the recorded epoch before, with the edges that changed
        self.changes = genotype_changes([(h.epoch, h.genotype) for h in self.state.history], self.state.space)

    def compose(self) -> ComposeResult:
        yield NavBar("runs", f"replay {self.run.name}")
        yield Static("", id="where")
        with TabbedContent(id="rtabs"):
            with TabPane("1 Ā", id="r-abar"), VerticalScroll():
                yield GridPair("abar", id="rabar")
            with TabPane("2 A", id="r-a"), VerticalScroll():
                yield GridPair("a", id="rheat")
            with TabPane("3 ops/epoch", id="r-fig4"), VerticalScroll():
                yield GridPair("fig4", id="rfig4")
            with TabPane("4 cell", id="r-cell"), VerticalScroll():
                yield Static("", id="rcell")
            with TabPane("5 curves", id="r-curves"), Vertical():
                with Container(id="rc-charts"):  # side by side under 30 rows, so each keeps its height
                    yield CurveChart(id="rc-loss")
                    yield CurveChart(id="rc-score")
                with VerticalScroll(id="rchanges-box"):
                    yield Static("", id="rchanges")
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        self.timer = self.set_interval(0.6, self._tick, pause=True)
        self.redraw()

    def on_resize(self) -> None:
        self.redraw()

    def on_tabbed_content_tab_activated(self) -> None:
        self.redraw()

    def redraw(self) -> None:
        state, hist = self.state, self.state.history
        where = Text()
        if not hist or state.space is None:
            where.append(f"{self.run.name}: no epochs recorded yet (history.jsonl is written at each epoch's end)")
            self.query_one("#where", Static).update(where)
            return
        rec = hist[self.index]
        m = rec.metrics
        where.append(f"{self.run.name}", style="bold")
        where.append(f"  epoch {rec.epoch}/{state.epochs}  ({self.index + 1} of {len(hist)} recorded)  ")
        if "val_acc" in m or "val_ppl" in m:
            where.append(f"val {score_text(m)}  ")
        if "param_count" in m:
            where.append(f"params {int(m['param_count']) / 1e6:.3f}M  ")
        prev = hist[self.index - 1] if self.index > 0 else None
        changed = {ct: changed_entries(prev.discrete.get(ct) if prev else None, rec.discrete.get(ct))
                   for ct in state.space.cells}
        n_changed = sum(len(c) for c in changed.values())
        if prev is not None and n_changed:
            where.append(f"{n_changed} Ā entries changed since epoch {prev.epoch} (highlighted)  ", style="bold")
        elif prev is not None:
            where.append(f"Ā unchanged since epoch {prev.epoch}  ")
        edges = dict(self.changes).get(rec.epoch)
        if edges:
            where.append(f"genotype: {len(edges)} edge{'s' if len(edges) > 1 else ''} changed  ", style="bold yellow")
        where.append("playing" if self.playing else "←/→ epoch · space play", style="dim")
        self.query_one("#where", Static).update(where)
        width = self.size.width - 2
        active = self.query_one("#rtabs", TabbedContent).active
        space = state.space
        from .. import render

        texts = []
        for ct, cell in space.cells.items():
            kept = kept_rows(space, ct, rec.genotype)
            if active == "r-abar":
                texts.append(render.discrete_grid(cell, rec.discrete.get(ct), f"{ct} cell Ā, epoch {rec.epoch}", kept,
                                                  changed[ct]))
            elif active == "r-a":
                texts.append(render.heatmap(cell, rec.A.get(ct), f"{ct} cell A, epoch {rec.epoch}", state.softmax_A, kept))
            elif active == "r-fig4":
                sel = [h.selected.get(ct, []) for h in hist]
                texts.append(render.op_timeline(cell, sel, f"{ct} cell: op per edge (underlined: epoch {rec.epoch})",
                                                cursor=self.index, width=width // 2 - 3))
        target = {"r-abar": "#rabar", "r-a": "#rheat", "r-fig4": "#rfig4"}.get(active)
        if target:
            self.query_one(target, GridPair).show(texts, width)
        elif active == "r-curves":
            self.query_one("#rc-charts").set_class(self.size.height < COMPACT_BELOW, "-side")
            loss, score = run_charts([h.metrics for h in hist], [e for e, _ in self.changes], rec.epoch)
            self.query_one("#rc-loss", CurveChart).show(loss)
            self.query_one("#rc-score", CurveChart).show(score)
            self.query_one("#rchanges", Static).update(changes_text(self.changes, len(hist), rec.epoch))
        else:
            self.query_one("#rcell", Static).update(cell_texts(rec.genotype, width))

    def action_step(self, delta: int) -> None:
        if self.state.history:
            self.index = min(max(self.index + delta, 0), len(self.state.history) - 1)
            self.redraw()

    def action_jump(self, index: int) -> None:
        if self.state.history:
            self.index = index % len(self.state.history)
            self.redraw()

    def action_change(self, direction: int) -> None:
        """Go to the next (1) or previous (-1) epoch where the genotype changed."""
        hist = self.state.history
        if not hist:
            return
        here = hist[self.index].epoch
        epochs = [e for e, _ in self.changes if (e > here if direction > 0 else e < here)]
        if not epochs:
            self.notify("no genotype change " + ("after" if direction > 0 else "before") + f" epoch {here}")
            return
        target = min(epochs) if direction > 0 else max(epochs)
        self.index = next(i for i, h in enumerate(hist) if h.epoch == target)
        self.redraw()

    def action_play(self) -> None:
        self.playing = not self.playing
        if self.playing:
            if self.index >= len(self.state.history) - 1:
                self.index = 0
            self.timer.resume()
        else:
            self.timer.pause()
        self.redraw()

    def _tick(self) -> None:
        if self.index >= len(self.state.history) - 1:
            self.playing = False
            self.timer.pause()
        else:
            self.index += 1
        self.redraw()

    def action_tab(self, index: int) -> None:
        self.query_one("#rtabs", TabbedContent).active = self.TABS[index]

    def action_scroll_pane(self, lines: int) -> None:
        scroll_active_pane(self.query_one("#rtabs", TabbedContent), lines)

    def action_genotype(self) -> None:
        if not self.state.history:
            return
        rec = self.state.history[self.index]
        self.app.open_genotype_dict(rec.genotype, f"{self.run.name} epoch {rec.epoch}", self.run)  # type: ignore[attr-defined]

    def action_diff_last(self) -> None:
        """d: the shown epoch's genotype against the last recorded epoch's, edge by edge (what the search went on to
        change)."""
        hist = self.state.history
        if not hist:
            return
        from .compare import CompareScreen, Side

        rec, last = hist[self.index], hist[-1]
        self.app.push_screen(CompareScreen(Side(f"{self.run.name} epoch {rec.epoch}", rec.genotype, self.state.space),
                                           Side(f"{self.run.name} epoch {last.epoch}", last.genotype, self.state.space)))

    def action_back(self) -> None:
        self.app.pop_screen()
