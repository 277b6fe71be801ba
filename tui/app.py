"""nasp-tui: the app, its run control (a `nasp run` child process, or a followed run folder) and main()."""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import importlib
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widget import AwaitMount
from textual.widgets import Footer, Static

from nasp.config import RunConfig
from nasp.errors import NaspError

from . import startup
from .configform import command_line
from .keyorder import KeysInOrderApp
from .livestate import LiveState
from .process import PAUSE, RESUME, STOP, SearchProcess, send
from .screens.help import HelpScreen
from .screens.setup import SetupScreen
from .widgets import ChoiceDialog, NavBar, PathDialog, UnsavedDialog

if TYPE_CHECKING:
    from .genoedit import GenotypeEdit
    from .runs import EventTail

# the screens that need torch and nasp's registries, imported when first shown (startup.py imports them
# in the background after the first screen is drawn): mode -> (module, class)
HEAVY_SCREENS = {"live": (".screens.live", "LiveScreen"), "runs": (".screens.runs", "RunsScreen"),
                 "genotype": (".screens.genotype", "GenotypeScreen")}


def heavy(module: str, name: str) -> Any:
    """``name`` of the app's ``module`` (relative, ``.screens.live``); waits for the background import first if it
    still runs, so the UI thread never imports a module the loader is importing."""
    startup.wait()
    return getattr(importlib.import_module(module, __package__), name)


def _screen_factory(mode: str) -> Callable[[], Screen[Any]]:
    module, name = HEAVY_SCREENS[mode]
    return lambda: heavy(module, name)()


class LoadingScreen(Screen[None]):
    """Shown at once when the app starts on a screen that needs torch (--genotype, --attach, --screen): the screen
    asked for replaces it when the background import is done."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def compose(self) -> ComposeResult:
        yield NavBar(self.mode, "loading")
        yield Static("… loading nasp (torch)", id="loading")
        yield Footer(show_command_palette=False)


def keep_gc_pauses_short() -> None:
    """Move every object alive now out of the garbage collector's reach.

    torch (imported for the genotype editor's parameter count) and Textual's widgets make a quarter
    of a million long-lived objects; a full collection walks them all (140 ms on a 2-core machine,
    250 ms while a search competes for the CPU), and one falls every few seconds in an app that
    redraws. Frozen, they are skipped, so a key press never waits behind a collection.
    """
    gc.collect()
    gc.freeze()


class NaspApp(KeysInOrderApp[None]):
    """Four screens (F2 setup, F3 live, F4 runs, F5 genotype) around one run at a time."""

    TITLE = "nasp"
    MODES: ClassVar[dict[str, Any]] = {"setup": SetupScreen, **{mode: _screen_factory(mode) for mode in HEAVY_SCREENS}}
    DEFAULT_MODE = "setup"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1", "help", "Help"),
        Binding("question_mark", "help", "Help", show=False),
        Binding("f2", "switch_mode('setup')", "Setup"),
        Binding("f3", "switch_mode('live')", "Live"),
        Binding("f4", "switch_mode('runs')", "Runs"),
        Binding("f5", "switch_mode('genotype')", "Genotype"),
        Binding("ctrl+p", "command_palette", "Command palette", show=False),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, runs_dir: str | Path | None = None, config: str | None = None, attach: str | None = None,
                 genotype: str | None = None, mode: str | None = None, poll_s: float = 0.5, nice: int = 10) -> None:
        # start on the screen asked for (mounting the setup form first costs a second on a slow machine)
        start = mode or ("setup" if config else "genotype" if genotype else "live" if attach else "setup")
        # torch and nasp's registries are imported behind the first screen (startup.py); a start that needs them
        # at once (another screen, a genotype, a followed run) shows a loading screen until they are there
        self._deferred = startup.defer()
        self._start = start
        first = "loading" if self._deferred and (start != "setup" or genotype or attach) else start
        self.DEFAULT_MODE = first  # type: ignore[misc]  (App reads it in __init__)
        super().__init__()
        self._loading_first = first == "loading"
        if self._loading_first:
            self.add_mode("loading", lambda: LoadingScreen(start))
        if "TEXTUAL_ANIMATIONS" not in os.environ:
            # no animations: a tab switch then costs half the CPU, which keeps keys quick while a search
            # competes for the CPU (and sends less over a remote terminal)
            self.animation_level = "none"
        self.runs_dir = Path(runs_dir) if runs_dir else None
        self.initial = {"config": config, "attach": attach, "genotype": genotype, "mode": mode}
        self.poll_s = poll_s
        self.nice = nice
        self.state = LiveState()
        self.process: SearchProcess | None = None
        self.tail: EventTail | None = None
        self._stop_asked = False
        self.pointed_run: Path | None = None  # the run a message points to ("resume it from the runs screen")
        self._quitting = False
        self.genotype_edit: GenotypeEdit | None = None
        self.genotype_version = 0

    # --- start-up -----------------------------------------------------------------------------
    def on_mount(self) -> None:
        if self.runs_dir is None:
            self.runs_dir = Path(RunConfig().out)
        self.set_interval(self.poll_s, self._poll_tail)
        if self._deferred:
            self.call_after_refresh(startup.begin)  # the imports start once the first screen is drawn
            self._imports_timer = self.set_interval(0.1, self._check_imports)
        if not self._loading_first:
            self._open_initial()
        keep_gc_pauses_short()

    def _check_imports(self) -> None:
        """The background imports are done: freeze what they brought (as after start-up), and a start on a screen
        that needed them goes on."""
        if startup.loading():
            return
        self._imports_timer.stop()
        keep_gc_pauses_short()
        if self._loading_first:
            self._loading_first = False
            self._open_initial()
            if self.current_mode == "loading":  # (e.g. the genotype did not open: the editor shows why)
                self.switch_mode(self._start)
            self.remove_mode("loading")

    def _open_initial(self) -> None:
        """What the command line asked for: a config in the form, a genotype in the editor, a run to follow."""
        ini = self.initial
        if ini["config"]:
            self.switch_mode("setup")
            setup = self.screen
            if isinstance(setup, SetupScreen) and setup.load_file(ini["config"]):
                out = setup.values.get("out")
                if isinstance(out, str) and out and self.runs_dir == Path(RunConfig().out):
                    self.runs_dir = Path(out)
        if ini["genotype"]:
            self.open_genotype(ini["genotype"])
        if ini["attach"]:
            self.attach(ini["attach"])
        if ini["mode"] and ini["mode"] != self.current_mode:
            self.switch_mode(ini["mode"])

    async def action_switch_mode(self, mode: str) -> None:
        """F2-F5 and the top line: leaving the genotype editor with unsaved edits asks first."""
        if self.current_mode == "genotype" and mode != "genotype":
            self.after_editor_edits(lambda: self.switch_mode(mode))
        else:
            self.switch_mode(mode)

    def after_editor_edits(self, then: Callable[[], object]) -> None:
        """Run ``then`` now when the genotype editor has no unsaved edits; else ask: save them (as a new file) and go
        on, discard them and go on, or stay."""
        edit = self.genotype_edit
        if edit is None or not edit.unsaved:
            then()
            return

        def done(choice: str | None) -> None:
            if choice == "discard":
                edit.discard()
                self.genotype_version += 1  # the editor shows the saved version when it comes back
                then()
            elif choice == "save":
                editor = heavy(".screens.genotype", "GenotypeScreen")
                screen = next((s for s in self.screen_stack if isinstance(s, editor)), None)
                if screen is not None:
                    screen.action_save(then=then)

        self.push_screen(UnsavedDialog(edit.label), done)

    def switch_mode(self, mode: str) -> AwaitMount:
        """Switch screens; once the new one is drawn, its widgets join the frozen objects (a screen mounted
        for the first time brings thousands that the collector would otherwise walk every few seconds)."""
        done = super().switch_mode(mode)
        self.call_after_refresh(keep_gc_pauses_short)
        return done

    # --- help ---------------------------------------------------------------------------------
    def help_sections(self) -> list[tuple[str, list[Any]]]:
        live, runs, replay, genotype = (heavy(".screens.live", "LiveScreen"), heavy(".screens.runs", "RunsScreen"),
                                        heavy(".screens.runs", "ReplayScreen"),
                                        heavy(".screens.genotype", "GenotypeScreen"))
        compare = heavy(".screens.compare", "CompareScreen")
        return [("everywhere", list(self.BINDINGS)), ("setup (F2)", list(SetupScreen.BINDINGS)),
                ("live (F3)", list(live.BINDINGS)), ("runs (F4)", list(runs.BINDINGS)),
                ("replay (enter on a run)", list(replay.BINDINGS)), ("compare (c, d in F4)", list(compare.BINDINGS)),
                ("genotype editor (F5)", list(genotype.BINDINGS))]

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The command palette (ctrl+p): every action of the app and of the screen it was opened on, by the name its
        key has in the footer and help, then Textual's own (theme, screenshot, ...)."""
        seen: set[str] = set()
        for node, bindings in ((screen, screen.BINDINGS), (self, self.BINDINGS)):
            for binding in bindings:
                if (not isinstance(binding, Binding) or not binding.description or binding.action in seen
                        or binding.action == "command_palette"):
                    continue
                seen.add(binding.action)
                key = binding.key.split(",")[0]
                yield SystemCommand(binding.description, f"{binding.action} · key {key}",
                                    functools.partial(self.run_action, binding.action, node))
        yield from super().get_system_commands(screen)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.help_sections()))

    # --- searches started here (a child process) and followed runs ------------------------------
    @property
    def following(self) -> bool:
        """The live screen shows a run of another process (not one started here)."""
        return self.tail is not None and self.process is None

    @property
    def running_here(self) -> bool:
        return self.process is not None and self.process.running

    def _can_start(self) -> bool:
        if self.running_here:
            self.notify("a search is already running here; stop it first (x on the live screen)", severity="warning")
            return False
        return True

    def start_search(self, cfg: RunConfig, overrides: list[str]) -> None:
        """Start `nasp run OVERRIDES` (``cfg`` is what they build) and show it live."""
        if not self._can_start():
            return
        self.runs_dir = Path(cfg.out)
        self._launch(overrides, f"starting `{command_line(overrides)}`")

    def resume_search(self, run_dir: str | Path, plugins: Sequence[str] = ()) -> None:
        """Continue a stopped run from its checkpoint (`nasp run resume=RUN`, naming the ``plugins`` it imports),
        showing its earlier steps and epochs too (curves and Ā history go on where they were)."""
        if not self._can_start():
            return
        run_dir = Path(run_dir)
        args = [f"resume={run_dir}", *([f"plugins={','.join(plugins)}"] if plugins else [])]
        self._launch(args, f"resuming {run_dir}", heavy(".runs", "load_live_state")(run_dir), run_dir)

    def _launch(self, args: list[str], message: str, state: LiveState | None = None,
                run_dir: Path | None = None) -> None:
        """Start the child; ``state`` holds what a resumed run did before, so the grids, curves and Fig. 4
        show the whole run, and only the events appended from now on are read."""
        assert self.runs_dir is not None
        self.tail = heavy(".runs", "EventTail")(run_dir, from_end=True) if run_dir is not None else None
        self.state = state or LiveState()
        self.state.status, self.state.message = "starting", message
        self.state.version += 1
        self._stop_asked = False
        self.process = SearchProcess(args, self.runs_dir, run_dir, self.nice)
        self.switch_mode("live")

    def _poll_tail(self) -> None:
        """Read what the followed run appended; notice a child that has exited or a followed run that died."""
        proc = self.process
        if proc is None and self.tail is None:
            return  # (nothing to follow: and nothing imported while the background imports run)
        from .runs import EventTail, run_info

        exited = proc is not None and not proc.running  # asked first: then everything it wrote is read below
        if proc is not None and self.tail is None and proc.find_run_dir() is not None:
            self.tail = EventTail(proc.run_dir)  # type: ignore[arg-type]
        if self.tail is not None:
            try:
                events = self.tail.poll()
            except NaspError as exc:  # events.jsonl became a link, a FIFO, a device: stop following, say why
                self.tail, events = None, []
                self.state.message = f"stopped following: {exc}"
                self.state.version += 1
            if events:
                self._on_events(events)
        if proc is not None and exited:
            self._on_exit(proc)
        elif self.tail is not None and proc is None:
            info = run_info(self.tail.path.parent)
            if info is not None and info.status == "died" and self.state.active:
                self.state.status = "died"
                self.state.message = ("the run's process is gone without a clean stop; resume it from the runs screen "
                                      "(F4, r)")
                self.pointed_run = self.tail.path.parent
                self.notify(f"{self.tail.path.parent.name} died: its process is gone without a clean stop",
                            title="run died", severity="error", timeout=10)
                self.state.version += 1

    def _on_exit(self, proc: SearchProcess) -> None:
        """The child exited: its last events are read; a failure shows what it said."""
        self.process = None
        if proc.returncode in (0, 130) and not self.state.active:
            proc.discard_log()
            return
        if proc.returncode in (0, 130):  # stopped before its run folder had events (e.g. while loading data)
            self.state.status, self.state.message = "stopped", "stopped before the first step"
        else:
            why = proc.failure()
            self.state.status, self.state.message = "failed", f"{why}  (its output: {proc.log})"
            self.notify(why, title="search failed", severity="error", timeout=10)
        self.state.version += 1

    def _on_events(self, batch: list[dict[str, Any]]) -> None:
        """Fold events into the state (the live screen redraws on its own timer)."""
        now = time.monotonic()
        for ev in batch:
            self.state.apply(ev, now)
            kind = ev.get("event")
            if kind == "run_start":
                self.state.message = f"run folder {ev.get('run_dir')}"
            elif kind == "paused":
                from nasp.trainer.events import next_step

                epoch, step = next_step(int(ev.get("epoch", 1)), int(ev.get("step", 0)), self.state.steps_per_epoch)
                self.state.message = f"paused before step {step} of epoch {epoch}: p resumes, x stops (with a checkpoint)"
            elif kind == "resumed":
                self.state.message = "resumed"
            elif kind == "run_end":
                self._on_run_end(ev)
        if self._stop_asked and self.state.status in ("running", "paused"):
            self.state.status = "stopping"

    def _on_run_end(self, ev: dict[str, Any]) -> None:
        if ev.get("status") == "failed":
            self.state.message = f"failed: {ev.get('error')}"
            self.notify(self.state.message, title="search failed", severity="error", timeout=10)
        elif ev.get("status") == "stopped":
            self.state.message = f"stopped; checkpoint in {ev.get('run_dir')}: resume it from the runs screen (F4, r)"
            self.pointed_run = Path(str(ev.get("run_dir")))
            self.notify(self.state.message, title="search stopped")
        else:
            from nasp.runfolder import RunFolder

            self.state.message = f"finished: genotype in {RunFolder(str(ev.get('run_dir'))).genotype_path}; g edits it"
            self.notify(self.state.message, title="search finished")

    def _target_pid(self) -> int | None:
        """The process of the run on the live screen: the child started here, or a followed `nasp run`."""
        if self.running_here:
            assert self.process is not None
            return self.process.pid
        if self.tail is not None:
            from .runs import run_info

            info = run_info(self.tail.path.parent)
            if info is not None and info.followable and info.pid and info.pid != os.getpid():
                return info.pid
        return None

    def toggle_pause(self) -> None:
        """Pause before the next step, or go on (SIGUSR1 / SIGUSR2 to the run's process)."""
        pid = self._target_pid()
        if pid is None or self.state.status not in ("running", "paused"):
            self.notify("no search is running", severity="warning")
            return
        resume = self.state.status == "paused"
        if not send(pid, RESUME if resume else PAUSE):
            self.notify("pausing needs POSIX signals (SIGUSR1/SIGUSR2), which this platform lacks", severity="warning")
            return
        self.state.message = "resuming…" if resume else "pausing after the current step…"
        self.state.version += 1

    def stop_search(self) -> None:
        """Stop after the current step (SIGTERM: `nasp run` treats it as Ctrl-C, but a second one, or a SIGHUP
        from a closed terminal before it, never turns it into an abort): it writes a checkpoint a resume
        continues from."""
        pid = self._target_pid()
        if pid is None:
            self.notify("no search is running", severity="warning")
            return
        if self._stop_asked:
            self.notify("already stopping: the run finishes its current step, then writes its checkpoint")
            return
        send(pid, STOP)
        self._stop_asked = True
        if self.state.active:
            self.state.status = "stopping"
        self.state.message = f"stopping pid {pid} after its current step (a checkpoint is written)…"
        self.state.version += 1

    # --- following a run of another process ---------------------------------------------------
    def ask_attach(self) -> None:
        def done(path: str | None) -> None:
            if path:
                self.attach(path)

        self.push_screen(PathDialog("Follow a run folder (of `nasp run` in another terminal)", f"{self.runs_dir}/"), done)

    def attach(self, run_dir: str | Path) -> None:
        """Follow ``run_dir``'s events.jsonl: everything so far, then what it appends."""
        if self.running_here:
            self.notify("a search is running here; stop it before following another", severity="warning")
            return
        run_dir = Path(run_dir)
        if not heavy("nasp.runfolder", "RunFolder")(run_dir).has_events():
            self.notify(f"'{run_dir}' has no events yet: not a run folder of `nasp run`", severity="error")
            return
        self.process = None
        self._stop_asked = False
        self.tail = heavy(".runs", "EventTail")(run_dir)
        self.state = LiveState(message=f"following {run_dir}")
        self._poll_tail()
        self.switch_mode("live")

    # --- genotypes ------------------------------------------------------------------------------
    def open_genotype(self, source: str | Path) -> bool:
        """Load a genotype file, run folder, name (DARTS_V2, NASP) or DARTS string into the editor and show it."""
        try:
            edit = heavy(".genoedit", "GenotypeEdit").load(source)
            edit.space  # noqa: B018  (a genotype of an unknown space fails here, not in the editor)
        except NaspError as exc:
            self.notify(str(exc), title="cannot open genotype", severity="error")
            return False
        self._set_genotype(edit)
        return True

    def open_genotype_dict(self, genotype: dict[str, Any], label: str, folder: Path) -> None:
        """An epoch's genotype from a run's history (saved next to the run's genotype.json)."""
        startup.wait()
        from nasp.genotype import Genotype
        from nasp.runfolder import RunFolder

        from .genoedit import GenotypeEdit

        try:
            geno = Genotype.model_validate(genotype)
        except (ValueError, NaspError) as exc:
            self.notify(str(exc), title="cannot open genotype", severity="error")
            return
        self._set_genotype(GenotypeEdit(geno, RunFolder(folder).genotype_path, label))

    def _set_genotype(self, edit: GenotypeEdit) -> None:
        self.after_editor_edits(lambda: self._show_genotype(edit))

    def _show_genotype(self, edit: GenotypeEdit) -> None:
        self.genotype_edit = edit
        self.genotype_version += 1
        if self.current_mode == "genotype":
            screen = self.screen
            if isinstance(screen, heavy(".screens.genotype", "GenotypeScreen")):
                screen.load_current()
        else:
            self.switch_mode("genotype")

    def action_screenshot(self, filename: str | None = None, path: str | None = None) -> None:
        """Save an SVG of the screen: in the Downloads folder when there is one, else in the current folder (Textual
        would fail on a missing Downloads folder); a notification says where."""
        if path is None:
            from platformdirs import user_downloads_path

            downloads = user_downloads_path()
            path = str(downloads if downloads.is_dir() else Path.cwd())
        try:
            self.deliver_screenshot(filename, path)
        except OSError as exc:
            self.notify(f"screenshot not saved: {exc}", title="screenshot", severity="error")

    # --- leaving --------------------------------------------------------------------------------
    async def action_quit(self) -> None:
        """Quit (unsaved genotype edits ask first); a search started here is stopped first so it leaves a checkpoint
        (keys keep working meanwhile)."""
        self.after_editor_edits(self._quit)

    def _quit(self) -> None:
        pid = None if self.running_here else self._target_pid()
        if pid is not None and self.state.status == "paused" and not self._quitting:
            self._ask_quit_paused(pid)
            return
        if self.running_here:
            if not self._quitting:
                self._quitting = True
                self.notify("stopping the search after this step (writing its checkpoint), then quitting…", timeout=60)
                if not self._stop_asked:
                    self.stop_search()
                self.run_worker(self._exit_after_search(), group="quit")
            return
        self.exit()

    def _ask_quit_paused(self, pid: int) -> None:
        """The followed run (another process) is paused: it would wait for a resume nobody sends. Ask first."""
        assert self.tail is not None
        name = self.tail.path.parent.name

        def done(answer: str | None) -> None:
            if answer == "resume":
                send(pid, RESUME)
            if answer in ("resume", "leave"):
                self._quitting = True
                self.exit()

        self.push_screen(ChoiceDialog(
            f"{name} is paused", f"Its process (pid {pid}) waits before its next step until something resumes it "
            f"(`kill -USR2 {pid}`, or p here). Quitting leaves it as it is.",
            [("r", "Resume it, then quit", "resume"), ("q", "Quit, leave it paused", "leave")]), done)

    async def _exit_after_search(self) -> None:
        while self.running_here:
            await asyncio.sleep(0.1)
        self._poll_tail()
        self.exit()

    def on_unmount(self) -> None:
        proc = self.process
        if proc is not None and proc.running and not self._stop_asked:
            send(proc.pid, STOP)  # leaving otherwise than by ctrl+q: the search still stops with a checkpoint
        elif proc is not None and not proc.running:
            self._poll_tail()  # it exited since the last poll: its log goes if it ended well


def main(argv: Sequence[str] | None = None) -> int:
    """The ``nasp-tui`` console script."""
    from nasp.version import __version__

    parser = argparse.ArgumentParser(prog="nasp-tui", description="Configure a NASP search, watch Ā evolve live, "
                                     "browse runs and edit genotypes in the terminal.")
    parser.add_argument("--version", action="version", version=f"nasp-tui {__version__}")
    parser.add_argument("--runs", metavar="DIR", help="runs folder to list (default: the config's out, 'runs')")
    parser.add_argument("--config", "-c", metavar="FILE", help="YAML config to load into the setup form")
    parser.add_argument("--attach", "-a", metavar="RUN", help="follow a run folder of `nasp run` in another terminal")
    parser.add_argument("--genotype", "-g", metavar="FILE", help="genotype file, run folder or name (DARTS_V2, NASP) "
                        "to open in the editor")
    parser.add_argument("--screen", choices=["setup", "live", "runs", "genotype"], help="screen to start on")
    parser.add_argument("--nice", type=int, default=10, help="CPU priority of a search started here, lowered by this "
                        "much (the search runs as its own process) so keys stay quick while it trains on the same CPU; "
                        "it only slows the search when the CPU is busy with other work too (default 10; 0: as `nasp run`)")
    args = parser.parse_args(argv)
    if not 0 <= args.nice <= 19:
        parser.error(f"argument --nice: {args.nice} is out of range; use 0 (as `nasp run`) to 19 (the lowest priority)")
    app = NaspApp(runs_dir=args.runs, config=args.config, attach=args.attach, genotype=args.genotype, mode=args.screen,
                  nice=args.nice)
    app.run()
    return 0
