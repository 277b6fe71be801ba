"""nasp-tui: the app, its run control (a search in a worker thread, or a followed run folder) and main()."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.worker import Worker

from nasp.config import RunConfig
from nasp.errors import NaspError
from nasp.trainer import Trainer
from tui.bridge import AppBridge
from tui.genoedit import GenotypeEdit
from tui.livestate import LiveState
from tui.runs import EventTail, load_run_state, pid_alive, run_info
from tui.screens.genotype import GenotypeScreen
from tui.screens.help import HelpScreen
from tui.screens.live import LiveScreen
from tui.screens.runs import ReplayScreen, RunsScreen
from tui.screens.setup import SetupScreen
from tui.widgets import PathDialog


class NaspApp(App[None]):
    """Four screens (F2 setup, F3 live, F4 runs, F5 genotype) around one run at a time."""

    TITLE = "nasp"
    MODES: ClassVar[dict[str, Any]] = {"setup": SetupScreen, "live": LiveScreen, "runs": RunsScreen, "genotype": GenotypeScreen}
    DEFAULT_MODE = "setup"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1", "help", "Help"),
        Binding("question_mark", "help", "Help", show=False),
        Binding("f2", "switch_mode('setup')", "Setup"),
        Binding("f3", "switch_mode('live')", "Live"),
        Binding("f4", "switch_mode('runs')", "Runs"),
        Binding("f5", "switch_mode('genotype')", "Genotype"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, runs_dir: str | Path | None = None, config: str | None = None, attach: str | None = None,
                 genotype: str | None = None, mode: str | None = None, poll_s: float = 0.5, nice: int = 0) -> None:
        # start on the screen asked for (mounting the setup form first costs a second on a slow machine)
        start = mode or ("setup" if config else "genotype" if genotype else "live" if attach else "setup")
        self.DEFAULT_MODE = start  # type: ignore[misc]  (App reads it in __init__)
        super().__init__()
        if "TEXTUAL_ANIMATIONS" not in os.environ:
            # no animations: a tab switch then costs half the CPU, which keeps keys quick while a search
            # competes for the CPU (and sends less over a remote terminal)
            self.animation_level = "none"
        self.runs_dir = Path(runs_dir) if runs_dir else None
        self.initial = {"config": config, "attach": attach, "genotype": genotype, "mode": mode}
        self.poll_s = poll_s
        self.nice = nice
        self.state = LiveState()
        self.trainer: Trainer | None = None
        self.worker: Worker[None] | None = None
        self.bridge: AppBridge | None = None
        self.tail: EventTail | None = None
        self._stop_asked = False
        self._quitting = False
        self.genotype_edit: GenotypeEdit | None = None
        self.genotype_version = 0

    # --- start-up -----------------------------------------------------------------------------
    def on_mount(self) -> None:
        ini = self.initial
        if self.runs_dir is None:
            self.runs_dir = Path(RunConfig().out)
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
        self.set_interval(self.poll_s, self._poll_tail)

    # --- help ---------------------------------------------------------------------------------
    def help_sections(self) -> list[tuple[str, list[Any]]]:
        return [("everywhere", list(self.BINDINGS)), ("setup (F2)", list(SetupScreen.BINDINGS)),
                ("live (F3)", list(LiveScreen.BINDINGS)), ("runs (F4)", list(RunsScreen.BINDINGS)),
                ("replay (enter on a run)", list(ReplayScreen.BINDINGS)),
                ("genotype editor (F5)", list(GenotypeScreen.BINDINGS))]

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.help_sections()))

    # --- runs in this process -----------------------------------------------------------------
    @property
    def running_here(self) -> bool:
        return self.worker is not None and self.worker.is_running

    def _can_start(self) -> bool:
        if self.running_here:
            self.notify("a search is already running here; stop it first (x on the live screen)", severity="warning")
            return False
        return True

    def start_search(self, cfg: RunConfig) -> None:
        """Start a new search from ``cfg`` in a worker thread and show it live."""
        from nasp.search import start_run

        if not self._can_start():
            return
        self.runs_dir = Path(cfg.out)
        self._launch(lambda bridge: start_run(cfg, callbacks=[bridge], console=False), f"starting a search in {cfg.out}")

    def resume_search(self, run_dir: str | Path) -> None:
        """Continue a stopped run from its checkpoint, here."""
        from nasp.search import resume_run

        if not self._can_start():
            return
        self._launch(lambda bridge: resume_run(run_dir, callbacks=[bridge], console=False), f"resuming {run_dir}",
                     load_run_state(run_dir))

    def _launch(self, make: Callable[[AppBridge], Trainer], message: str, state: LiveState | None = None) -> None:
        """Run ``make`` (start_run or resume_run) and the search in a worker thread; ``state`` holds what the
        run did before (a resumed run's epochs), so the grids, curves and Fig. 4 show the whole run."""
        self.tail = None
        self.state = state or LiveState()
        self.state.status, self.state.message = "starting", message
        self.state.version += 1
        self.trainer = None
        self._stop_asked = False
        self.bridge = AppBridge(self, self._on_events)
        self.worker = self.run_worker(partial(self._train, make, self.bridge), name="search", group="search",
                                      thread=True, exit_on_error=False)
        self.switch_mode("live")

    def _train(self, make: Callable[[AppBridge], Trainer], bridge: AppBridge) -> None:
        """The worker thread: build the trainer (data, network) and fit it; the UI thread never waits on it."""
        if self.nice > 0 and hasattr(os, "setpriority"):
            # a lower CPU priority for this thread (and the torch threads it starts) keeps keys answered on a
            # CPU busy with other work, at the price of a slower search there (--nice)
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.nice)
        try:
            trainer = make(bridge)
        except NaspError as exc:
            self._from_thread(bridge, self._on_failed, str(exc))
            return
        except Exception as exc:
            self._from_thread(bridge, self._on_failed, f"{type(exc).__name__}: {exc}")
            return
        self._from_thread(bridge, self._on_trainer, trainer)
        try:
            trainer.fit()
        except Exception as exc:
            self._from_thread(bridge, self._on_failed, f"the search failed: {type(exc).__name__}: {exc}")

    def _from_thread(self, bridge: AppBridge, fn: Callable[..., Any], *args: Any) -> None:
        if not bridge.closed:
            try:
                self.call_from_thread(fn, *args)
            except RuntimeError:
                bridge.close()

    def _on_trainer(self, trainer: Trainer) -> None:
        self.trainer = trainer
        if self._stop_asked:
            trainer.request_stop()

    def _on_failed(self, message: str) -> None:
        self.state.status = "failed"
        self.state.message = message
        self.state.version += 1
        self.notify(message, title="search failed", severity="error", timeout=10)

    def _on_events(self, batch: list[dict[str, Any]]) -> None:
        """Fold events into the state (the live screen redraws on its own timer)."""
        now = time.monotonic()
        paused = self.state.status == "paused"
        for ev in batch:
            self.state.apply(ev, now)
            if ev.get("event") == "run_start":
                self.state.message = f"run folder {ev.get('run_dir')}"
            elif ev.get("event") == "run_end":
                self._on_run_end(ev)
        if paused and self.state.status == "running":
            self.state.status = "paused"
        if self._stop_asked and self.state.status in ("running", "paused"):
            self.state.status = "stopping"

    def _on_run_end(self, ev: dict[str, Any]) -> None:
        if ev.get("status") == "stopped":
            self.state.message = f"stopped; checkpoint in {ev.get('run_dir')}: resume it from the runs screen (F4, r)"
            self.notify(self.state.message, title="search stopped")
        else:
            self.state.message = f"finished: genotype in {ev.get('genotype_path')}; g edits it"
            self.notify(self.state.message, title="search finished")

    def toggle_pause(self) -> None:
        if self.trainer is None or not self.running_here:
            self.notify("pause works for a search started here" if self.tail else "no search is running here",
                        severity="warning")
            return
        if self.trainer.paused:
            self.trainer.unpause()
            self.state.status = "running"
            self.state.message = "resumed"
        else:
            self.trainer.pause()
            self.state.status = "paused"
            self.state.message = "paused after the current step: p resumes, x stops (with a checkpoint)"
        self.state.version += 1

    def stop_search(self) -> None:
        """Stop after the current step; the trainer writes a checkpoint a resume continues from."""
        if self.running_here:
            self._stop_asked = True
            if self.trainer is not None:
                self.trainer.request_stop()
            self.state.status = "stopping"
            self.state.message = "stopping after the current step (a checkpoint is written)…"
            self.state.version += 1
        elif self.tail is not None:
            self._stop_followed()
        else:
            self.notify("no search is running", severity="warning")

    def _stop_followed(self) -> None:
        """A run of `nasp run` in another terminal stops cleanly on SIGINT (its Ctrl-C handler)."""
        info = run_info(Path(self.state.run_dir or ""))
        if info is None or info.status != "running" or not pid_alive(info.pid) or info.pid == os.getpid():
            self.notify("the followed run is not running", severity="warning")
            return
        assert info.pid is not None
        os.kill(info.pid, signal.SIGINT)
        self.state.message = f"sent Ctrl-C (SIGINT) to pid {info.pid}: it stops after its current step"
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
        if not (run_dir / "events.jsonl").is_file():
            self.notify(f"'{run_dir}' has no events.jsonl: not a run folder of `nasp run`", severity="error")
            return
        self.tail = EventTail(run_dir)
        self.state = LiveState(message=f"following {run_dir}")
        self._poll_tail()
        self.switch_mode("live")

    def _poll_tail(self) -> None:
        if self.tail is None:
            return
        events = self.tail.poll()
        if events:
            self._on_events(events)
        info = run_info(self.tail.path.parent)
        if info is not None and info.status == "interrupted" and self.state.active:
            self.state.status = "interrupted"
            self.state.message = "the run's process is gone without a clean stop; resume it from the runs screen"
            self.state.version += 1

    # --- genotypes ------------------------------------------------------------------------------
    def open_genotype(self, source: str | Path) -> bool:
        """Load a genotype file or run folder into the editor and show it."""
        try:
            edit = GenotypeEdit.load(source)
            edit.space  # noqa: B018  (a genotype of an unknown space fails here, not in the editor)
        except NaspError as exc:
            self.notify(str(exc), title="cannot open genotype", severity="error")
            return False
        self._set_genotype(edit)
        return True

    def open_genotype_dict(self, genotype: dict[str, Any], label: str, folder: Path) -> None:
        """An epoch's genotype from a run's history (saved next to the run's genotype.json)."""
        from nasp.genotype import Genotype

        try:
            geno = Genotype.model_validate(genotype)
        except (ValueError, NaspError) as exc:
            self.notify(str(exc), title="cannot open genotype", severity="error")
            return
        self._set_genotype(GenotypeEdit(geno, folder / "genotype.json", label))

    def _set_genotype(self, edit: GenotypeEdit) -> None:
        self.genotype_edit = edit
        self.genotype_version += 1
        if self.current_mode == "genotype":
            screen = self.screen
            if isinstance(screen, GenotypeScreen):
                screen.load_current()
        else:
            self.switch_mode("genotype")

    # --- leaving --------------------------------------------------------------------------------
    async def action_quit(self) -> None:
        """Quit; a search running here is stopped first so it leaves a checkpoint (keys keep working meanwhile)."""
        if self.running_here and self.worker is not None:
            if not self._quitting:
                self._quitting = True
                self.notify("stopping the search after this step (writing its checkpoint), then quitting…", timeout=60)
                self.stop_search()
                self.run_worker(self._exit_after(self.worker), group="quit")
            return
        self.exit()

    async def _exit_after(self, worker: Worker[None]) -> None:
        await worker.wait()
        self.exit()

    def on_unmount(self) -> None:
        if self.bridge is not None:
            self.bridge.close()
        if self.trainer is not None:
            self.trainer.request_stop()


def main(argv: Sequence[str] | None = None) -> int:
    """The ``nasp-tui`` console script."""
    parser = argparse.ArgumentParser(prog="nasp-tui", description="Configure a NASP search, watch Ā evolve live, "
                                     "browse runs and edit genotypes in the terminal.")
    parser.add_argument("--runs", metavar="DIR", help="runs folder to list (default: the config's out, 'runs')")
    parser.add_argument("--config", "-c", metavar="FILE", help="YAML config to load into the setup form")
    parser.add_argument("--attach", "-a", metavar="RUN", help="follow a run folder of `nasp run` in another terminal")
    parser.add_argument("--genotype", "-g", metavar="FILE", help="genotype file or run folder to open in the editor")
    parser.add_argument("--screen", choices=["setup", "live", "runs", "genotype"], help="screen to start on")
    parser.add_argument("--nice", type=int, default=0, help="lower the CPU priority of a search started here by this "
                        "much (e.g. 10) so keys stay snappy on a CPU busy with other work; the search then runs slower "
                        "there (default 0)")
    args = parser.parse_args(argv)
    app = NaspApp(runs_dir=args.runs, config=args.config, attach=args.attach, genotype=args.genotype, mode=args.screen,
                  nice=args.nice)
    app.run()
    return 0
