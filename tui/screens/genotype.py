"""The genotype editor: each node's inputs and ops as choices, invalid edits refused with the reason,
the cell drawing and the evaluation network's parameter count kept up to date; saved as a new file."""

from __future__ import annotations

import importlib.util
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Input, Label, Select, Static

from nasp.errors import NaspError

from ..genoedit import GenotypeEdit, eval_size_defaults
from ..process import SearchProcess
from ..render import node_names
from ..widgets import NavBar, PathDialog
from .live import cell_texts


def eval_available() -> bool:
    """Whether the evaluation command exists in this installation (issue: `nasp eval`)."""
    try:
        return importlib.util.find_spec("nasp.cli.evaluate") is not None
    except ModuleNotFoundError:
        return False


def eval_score(values: dict[str, Any]) -> str | None:
    """An evaluation's test score as its status reports it: accuracy (images) or perplexity (language models)."""
    acc, ppl = values.get("test_acc"), values.get("test_ppl")
    if isinstance(ppl, int | float) and not isinstance(acc, int | float):
        return f"test perplexity {ppl:.2f}"
    return f"test accuracy {100 * acc:.2f}%" if isinstance(acc, int | float) else None


def eval_command(target: str | Path) -> str:
    return f"nasp eval {shlex.quote(f'genotype={target}')}"


class GenotypeScreen(Screen[None]):
    """Edit the open genotype; ctrl+s saves it as a new file."""

    DEFAULT_CSS = """
    GenotypeScreen #source { height: auto; padding: 0 1; background: $boost; }
    GenotypeScreen #body { height: 1fr; padding: 0 1; }
    GenotypeScreen #cells { height: auto; }
    GenotypeScreen .cellname { text-style: bold; color: $accent; }
    GenotypeScreen .node { height: 1; }
    GenotypeScreen .node Label { width: 7; }
    GenotypeScreen .node Label.plus { width: 3; text-align: center; }
    GenotypeScreen .node Select.in { width: 11; }
    GenotypeScreen .node Select.op { width: 18; margin-left: 1; }
    GenotypeScreen .node Select:focus SelectCurrent { background: $accent; color: $text; text-style: bold; }
    GenotypeScreen .node:focus-within Label { color: $accent; text-style: bold; }
    GenotypeScreen #sizes { height: 1; margin-top: 1; }
    GenotypeScreen #sizes Label { width: auto; margin-right: 1; }
    GenotypeScreen #sizes Input { width: 6; margin-right: 1; }
    GenotypeScreen #rnn-sizes { height: 1; margin-top: 1; display: none; }
    GenotypeScreen #rnn-sizes Label { width: auto; margin-right: 1; }
    GenotypeScreen #rnn-sizes Input { width: 7; margin-right: 1; }
    GenotypeScreen #params { height: 1; }
    GenotypeScreen #message { height: auto; margin-top: 1; }
    GenotypeScreen #message.-empty { display: none; }
    GenotypeScreen #message.-error { color: $error; }
    GenotypeScreen #drawing { margin-top: 1; height: auto; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+o", "open", "Open genotype", priority=True),
        Binding("ctrl+s", "save", "Save as new file", priority=True),
        Binding("ctrl+z", "undo", "Undo edit", priority=True),
        Binding("ctrl+g", "export", "Graphviz export", priority=True),
        Binding("ctrl+t", "evaluate", "Evaluate", priority=True),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.shown_version = -1
        self.param_text = ""
        self.evaluation: SearchProcess | None = None  # the `nasp eval` child started here
        self.eval_label = ""
        self.last_eval_acc: float | None = None

    @property
    def edit(self) -> GenotypeEdit | None:
        return self.app.genotype_edit  # type: ignore[attr-defined, no-any-return]

    def compose(self) -> ComposeResult:
        yield NavBar("genotype", "genotype editor")
        yield Static("", id="source", markup=False)
        with VerticalScroll(id="body"):
            yield Vertical(id="cells")
            channels, layers = eval_size_defaults()
            with Horizontal(id="sizes"):
                yield Label("evaluation network: C")
                yield Input(str(channels), id="size-c", compact=True, type="integer")
                yield Label("cells")
                yield Input(str(layers), id="size-l", compact=True, type="integer")
                yield Label("classes")
                yield Input("10", id="size-k", compact=True, type="integer")
                yield Label("in-ch")
                yield Input("3", id="size-i", compact=True, type="integer")
            with Horizontal(id="rnn-sizes"):  # a recurrent genotype's language model (DARTS's PTB sizes)
                yield Label("language model: emsize = nhid")
                yield Input("850", id="rnn-nhid", compact=True, type="integer")
                yield Label("words")
                yield Input("10000", id="rnn-vocab", compact=True, type="integer")
            yield Static("", id="params")
            yield Static("", id="message", classes="-empty")
            yield Static("", id="drawing")
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        self.load_current()
        self.set_interval(2.0, self.follow_source)

    def on_screen_resume(self) -> None:
        self.follow_source()
        self.load_current()

    def follow_source(self) -> None:
        """The genotype file changed on disk (the search wrote a newer epoch's): show the new one, or say so under
        unsaved edits."""
        edit = self.edit
        if edit is None:
            return
        moved = edit.source_moved_on
        if edit.refresh_from_source():
            self.shown_version = -1  # rebuild the node rows
            self.load_current()
            self.set_message(f"{edit.source} changed on disk: showing its new genotype")
        elif edit.source_moved_on and not moved:
            self.set_message(f"{edit.source} changed on disk; your edits stay (ctrl+s saves them as a new file; "
                             f"ctrl+o opens the file again)", error=True)
            self.redraw()

    def on_resize(self) -> None:
        self.redraw()

    def load_current(self) -> None:
        """Rebuild the node rows when the app opened another genotype."""
        version = self.app.genotype_version  # type: ignore[attr-defined]
        if version == self.shown_version:
            return
        self.shown_version = version
        cells = self.query_one("#cells", Vertical)
        cells.remove_children()
        edit = self.edit
        if edit is None:
            cells.mount(Static("No genotype open. ctrl+o: open a genotype file or a run folder · "
                               "F4: pick a run and press g · F3: g edits the running search's genotype"))
            self.redraw()
            return
        self.query_one("#sizes").display = not self.recurrent
        self.query_one("#rnn-sizes").display = self.recurrent
        widgets: list[Any] = []
        for ct, nodes in edit.genotype.cells.items():
            widgets.append(Label(f"{ct} cell", classes="cellname"))
            cell = edit.space.cells[ct]
            names = node_names(cell, edit.space.kind)
            in_width = max(11, 4 + max(len(n) for n in names))  # the widest input name whole (x_{t}/h_{t-1}) and ▼
            for j, node in enumerate(nodes):
                row = [Label(f"node {names[cell.n_inputs + j]}")]
                for k, e in enumerate(node):
                    if k:
                        row.append(Label("+", classes="plus"))
                    if cell.all_inputs:  # a dense cell (nb201): every edge is there, only its op is chosen
                        row.append(Label(names[e.input], id=f"s-{ct}-{j}-{k}-in", classes="in"))
                    else:
                        choose_input = Select(edit.input_choices(ct, j), value=e.input, allow_blank=False, compact=True,
                                              id=f"s-{ct}-{j}-{k}-in", classes="in",
                                              tooltip=f"{ct} cell node {j}: input {k + 1}")
                        choose_input.styles.width = in_width
                        row.append(choose_input)
                    row.append(Select([(o, o) for o in edit.op_choices(ct)], value=e.op, allow_blank=False, compact=True,
                                      id=f"s-{ct}-{j}-{k}-op", classes="op", tooltip=f"{ct} cell node {j}: op {k + 1}"))
                widgets.append(Horizontal(*row, classes="node"))
        cells.mount_all(widgets)
        self.set_message("")
        self.redraw()
        self.count_params()

    # --- drawing -------------------------------------------------------------------------------
    def redraw(self) -> None:
        edit = self.edit
        src = self.query_one("#source", Static)
        if edit is None:
            src.update("genotype editor")
            self.query_one("#drawing", Static).update("")
            self.query_one("#params", Static).update("")
            return
        state = "edited, not saved" if edit.unsaved else (f"saved as {edit.saved_to}" if edit.saved_to else "unchanged")
        if edit.source_moved_on:
            state += " · its file changed on disk since"
        src.update(f"{edit.label} · space {edit.genotype.space} · {state}")
        self.query_one("#drawing", Static).update(cell_texts(edit.genotype.model_dump(mode="json"),
                                                             self.size.width - 4))
        self.query_one("#params", Static).update(self.param_text)

    def set_message(self, message: str, error: bool = False) -> None:
        msg = self.query_one("#message", Static)
        msg.set_class(error, "-error")
        msg.set_class(not message, "-empty")
        msg.update(Text(message))

    @property
    def recurrent(self) -> bool:
        return self.edit is not None and self.edit.space.kind == "rnn"

    def sizes(self) -> tuple[int, ...] | None:
        """C, cells, classes, in-channels (cnn); nhid, words (rnn): whole numbers, else None."""
        ids = ["rnn-nhid", "rnn-vocab"] if self.recurrent else [f"size-{k}" for k in "clki"]
        try:
            vals = tuple(int(self.query_one(f"#{i}", Input).value) for i in ids)
        except ValueError:
            return None
        return vals if all(v >= 1 for v in vals) and (not self.recurrent or vals[1] >= 2) else None

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id and event.input.id.startswith(("size-", "rnn-")):
            self.count_params()

    def count_params(self) -> None:
        edit, sizes = self.edit, self.sizes()
        if edit is None:
            return
        if sizes is None:
            self.param_text = ("parameters: give whole numbers for the width (≥ 1) and the words (≥ 2)" if self.recurrent
                               else "parameters: give whole numbers ≥ 1 for C, cells, classes and in-channels")
            self.query_one("#params", Static).update(self.param_text)
            return
        self.query_one("#params", Static).update(f"parameters: counting… ({self.param_text or 'building on meta'})")
        self._count(edit.genotype, sizes)

    @work(thread=True, exclusive=True, group="params", exit_on_error=False)
    def _count(self, genotype: Any, sizes: tuple[int, ...]) -> None:
        """Building the network (on the meta device) takes a moment; done off the UI thread."""
        try:
            space = genotype.resolve_space(strict=False)
            if space is not None and space.kind == "rnn":  # a language model, not the CNN
                from nasp.evaluation.config import EvalConfig
                from nasp.evaluation.recurrent import rnn_param_count

                nhid, words = sizes
                n = rnn_param_count(genotype, EvalConfig(rnn={"emsize": nhid, "nhid": nhid}), words)
                text = f"parameters: {n / 1e6:.3f}M ({n:,}) at emsize = nhid = {nhid}, {words:,} words"
            else:
                from nasp.model.budget import genotype_params

                n = genotype_params(genotype, *sizes)
                text = f"parameters: {n / 1e6:.3f}M ({n:,}) at C={sizes[0]}, {sizes[1]} cells, {sizes[2]} classes, " \
                       f"{sizes[3]} in-channels"
        except Exception as exc:
            text = f"parameters: cannot build the network ({type(exc).__name__}: {exc})"
        self.app.call_from_thread(self._show_params, genotype, text)

    def _show_params(self, genotype: Any, text: str) -> None:
        if self.edit is not None and self.edit.genotype is genotype:
            self.param_text = text
            self.query_one("#params", Static).update(text)

    # --- editing ------------------------------------------------------------------------------
    def on_select_changed(self, event: Select.Changed) -> None:
        edit, sid = self.edit, event.select.id or ""
        if edit is None or not sid.startswith("s-"):
            return
        _, ct, j, k, what = sid.split("-")
        node, edge = int(j), int(k)
        current = edit.genotype.cells[ct][node][edge]
        value = event.value
        old = current.op if what == "op" else current.input
        if value == old or value is Select.NULL:
            return
        names = dict((i, n) for n, i in edit.input_choices(ct, node))
        twin = next((i for i, e in enumerate(edit.genotype.cells[ct][node]) if i != edge and e.input == value), None)
        if what == "in" and twin is not None:  # said with the names the rows show, not the indices
            with event.select.prevent(Select.Changed):
                event.select.value = old
            why = (f"{ct} cell node {node}: {names.get(value, value)} already feeds this node (its edge {twin + 1}); "  # type: ignore[call-overload]
                   f"each input feeds a node once")
            self.set_message(f"refused: {why}", error=True)
            self.notify(why, title="edit refused", severity="error")
            return
        try:
            if what == "op":
                edit.edit(ct, node, edge, op=str(value))
            else:
                edit.edit(ct, node, edge, input=int(value))  # type: ignore[arg-type]
        except NaspError as exc:
            with event.select.prevent(Select.Changed):
                event.select.value = old
            self.set_message(f"refused: {exc}", error=True)
            self.notify(str(exc), title="edit refused", severity="error")
            return
        shown = (lambda v: names.get(v, v)) if what == "in" else (lambda v: v)
        self.set_message(f"{ct} cell node {node}, edge {edge + 1}: {shown(old)} → {shown(value)}")
        self.redraw()
        self.count_params()

    def sync_selects(self) -> None:
        """Show the current genotype in the choices (after an undo)."""
        edit = self.edit
        if edit is None:
            return
        for ct, nodes in edit.genotype.cells.items():
            for j, node in enumerate(nodes):
                for k, e in enumerate(node):
                    for what, value in (("in", e.input), ("op", e.op)):
                        sel = self.query_one(f"#s-{ct}-{j}-{k}-{what}", Select)
                        with sel.prevent(Select.Changed):
                            sel.value = value

    def action_undo(self) -> None:
        edit = self.edit
        if edit is None or not edit.undo():
            self.notify("nothing to undo")
            return
        self.sync_selects()
        self.set_message("undone")
        self.redraw()
        self.count_params()

    # --- files ---------------------------------------------------------------------------------
    def action_open(self) -> None:
        def done(path: str | None) -> None:
            if path:
                self.app.open_genotype(path)  # type: ignore[attr-defined]

        start = str(self.edit.source) if self.edit and self.edit.source else ""
        self.app.push_screen(PathDialog("Open a genotype file, run folder, name (DARTS_V2, NASP) or Genotype(...) string",
                                        start, suffixes=(".json",)), done)

    def action_save(self, then: Callable[[], object] | None = None) -> None:
        """Save as a new file (asks where); ``then`` runs once it is saved (leaving the editor after a save)."""
        edit = self.edit
        if edit is None:
            self.notify("no genotype open", severity="warning")
            return

        def done(path: str | None) -> None:
            if path and self.save_to(path) is not None and then is not None:
                then()

        self.app.push_screen(PathDialog("Save the genotype as a NEW file", str(edit.default_save_path()),
                                        suffixes=(".json",)), done)

    def save_to(self, path: str) -> Path | None:
        edit = self.edit
        assert edit is not None
        try:
            saved = edit.save(path)
        except NaspError as exc:
            self.set_message(f"not saved: {exc}", error=True)
            self.notify(str(exc), title="not saved", severity="error")
            return None
        self.set_message(f"saved {saved} (the original {edit.source or 'genotype'} is unchanged)")
        self.notify(f"saved {saved}")
        self.redraw()
        return saved

    def action_export(self) -> None:
        edit = self.edit
        if edit is None:
            self.notify("no genotype open", severity="warning")
            return
        if importlib.util.find_spec("nasp.viz.render") is None:
            self.notify("graphviz drawings need nasp.viz (`nasp render`), which this installation lacks",
                        severity="warning")
            return
        base = (edit.saved_to or edit.default_save_path()).with_suffix("")

        def done(path: str | None) -> None:
            if not path:
                return
            try:
                paths = edit.export_drawing(path)
            except NaspError as exc:
                self.set_message(f"export: {exc}", error=True)
                self.notify(str(exc), title="export", severity="error")
                return
            self.set_message("drawings: " + ", ".join(str(p) for p in paths))
            self.notify(f"wrote {len(paths)} drawings")

        self.app.push_screen(PathDialog("Graphviz drawings: base path (writes <base>-<cell>.svg and .gv)", str(base)),
                             done)

    def action_evaluate(self) -> None:
        edit = self.edit
        if edit is None:
            self.notify("no genotype open", severity="warning")
            return
        target = edit.eval_target()
        if target is None:
            self.notify("save the edited genotype first (ctrl+s): evaluation reads it from a file", severity="warning")
            return
        if self.evaluation is not None and self.evaluation.running:
            self.notify(f"an evaluation is running (pid {self.evaluation.pid}); wait for it to finish", severity="warning")
            return
        available = eval_available()

        def done(extra: str | None) -> None:
            if extra is not None and available:
                try:
                    words = shlex.split(extra)
                except ValueError as exc:
                    self.set_message(f"extra arguments: {exc}", error=True)
                    return
                self.start_eval(target, words)

        space = edit.genotype.resolve_space(strict=False)
        self.app.push_screen(EvalDialog(target, available, space is not None and space.kind == "rnn"), done)

    def start_eval(self, target: str, extra: list[str]) -> None:
        """`nasp eval genotype=TARGET EXTRA` as a child process (like a search started here); its progress and
        result, or what went wrong, show under the cell and in a notification."""
        # the app's runs folder unless the extra words say otherwise (a later out= wins): the app finds the run there
        words = [f"genotype={target}", f"out={self.app.runs_dir}", *extra]  # type: ignore[attr-defined]
        runs = Path(next(w.split("=", 1)[1] for w in reversed(words) if w.startswith("out=")))
        self.evaluation = SearchProcess(words, runs, nice=self.app.nice, command="eval")  # type: ignore[attr-defined]
        self.eval_label = Path(target).name if Path(target).exists() else target[:40]
        self.set_message(f"evaluation of {self.eval_label} started (pid {self.evaluation.pid}); loading data…")
        self.notify(f"evaluation started, pid {self.evaluation.pid}")
        self.eval_timer = self.set_interval(0.5, self.poll_eval)

    def poll_eval(self) -> None:
        from nasp.runfolder import RunFolder

        proc = self.evaluation
        if proc is None:
            return
        exited = not proc.running
        run_dir = proc.find_run_dir()
        st = RunFolder(run_dir).status() if run_dir is not None else None
        score = eval_score(st.values) if st is not None else None
        if not exited:
            if st is not None:
                self.set_message(f"evaluating {self.eval_label}: {st.epoch}/{st.epochs} epochs done"
                                 + (f", {score}" if score else "") + f" (pid {proc.pid}; run folder {run_dir})")
            return
        self.eval_timer.stop()
        self.evaluation = None
        if proc.returncode == 0 and st is not None:
            proc.discard_log()
            acc = st.values.get("test_acc")
            self.last_eval_acc = float(acc) if isinstance(acc, int | float) else None
            text = f"evaluation of {self.eval_label} finished: {score or 'no test score recorded'} (run folder {run_dir})"
            self.set_message(text)
            self.notify(text, title="evaluation finished", timeout=10)
        elif proc.returncode == 0:
            self.set_message(f"evaluation of {self.eval_label} finished, but its run folder is not under {proc.runs_dir} "
                             f"(its output: {proc.log})", error=True)
        elif proc.returncode == 130:
            self.set_message(f"evaluation of {self.eval_label} stopped (run folder {run_dir})")
        else:
            why = proc.failure()
            self.set_message(f"evaluation failed: {why}  (its output: {proc.log})", error=True)
            self.notify(why, title="evaluation failed", severity="error", timeout=10)


class EvalDialog(ModalScreen[str | None]):
    """The evaluation command of a genotype file, with extra arguments; starts it when `nasp eval` exists."""

    DEFAULT_CSS = """
    EvalDialog { align: center middle; }
    EvalDialog > Vertical { width: 78; max-width: 100%; height: auto; border: thick $accent; padding: 0 1;
                            background: $surface; }
    EvalDialog #cmd { margin: 1 0; background: $boost; }
    EvalDialog Horizontal { height: auto; align-horizontal: right; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close")]

    def __init__(self, target: str, available: bool, recurrent: bool = False) -> None:
        super().__init__()
        self.target, self.available, self.recurrent = target, available, recurrent

    def compose(self) -> ComposeResult:
        from nasp.evaluation.config import search_of

        # a search's genotype brings its data (and eval-cpu for the embedded data); any other starts from eval-cpu
        # (a recurrent cell: eval-rnn-cpu), which needs no download
        preset = "eval-rnn-cpu" if self.recurrent else "eval-cpu"
        extra = "" if search_of(self.target) is not None else f"--config {preset}"
        with Vertical():
            yield Label("Evaluate this genotype (train its network from scratch, then test it)")
            yield Label("extra arguments (config overrides, --config PRESET):")
            yield Input(extra, id="extra", compact=True)
            yield Static("", id="cmd", markup=False)
            if not self.available:
                yield Static("This installation has no `nasp eval`: run the command where it exists.")
            with Horizontal():
                if self.available:
                    yield Button("Start evaluation", variant="primary", id="start", compact=True)
                    yield Label(" ")
                yield Button("Close", id="close", compact=True)

    def on_mount(self) -> None:
        self.show_command()

    def on_input_changed(self) -> None:
        self.show_command()

    def show_command(self) -> None:
        extra = self.query_one("#extra", Input).value.strip()
        self.query_one("#cmd", Static).update("$ " + eval_command(self.target) + (f" {extra}" if extra else ""))

    def on_input_submitted(self) -> None:
        if self.available:
            self.dismiss(self.query_one("#extra", Input).value)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(self.query_one("#extra", Input).value if event.button.id == "start" else None)

    def action_close(self) -> None:
        self.dismiss(None)
