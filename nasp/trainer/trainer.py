"""The one run loop, for every task (a search, an evaluation): steps, epochs, signals, events, failures.

The trainer knows the Task interface only; everything else (console, run folder files, checkpoints,
drawings, the terminal app) hears about the run through events. It stops only between steps, so a stop
(Ctrl-C, the terminal app) always leaves a checkpoint a resume continues exactly. A run that fails (its
numbers stop being finite, a write fails, an exception) emits ``failed`` and ends with status ``failed``;
its last good checkpoint stays.
"""

from __future__ import annotations

import contextlib
import math
import random
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from nasp import distributed
from nasp.errors import NaspError
from nasp.runfolder import RunFolder, RunFolderError
from nasp.trainer.callback import Callback
from nasp.trainer.events import EpochEnd, Event, Failed, Paused, Resumed, RunEnd, RunStart, StepEnd, event_position
from nasp.trainer.task import Task

CHECKPOINT_FORMAT = "nasp-checkpoint/2"


class Diverged(Exception):
    """A number the run depends on is no longer finite."""


@dataclass
class Progress:
    """Where the run is: epochs done, and steps done in the current epoch."""

    epoch: int = 0
    step: int = 0


def first_non_finite(values: dict[str, Any]) -> tuple[str, float] | None:
    for key, value in values.items():
        if isinstance(value, float) and not math.isfinite(value):
            return key, value
    return None


class Trainer:
    def __init__(self, task: Task, folder: RunFolder | str | Path, callbacks: list[Callback] | None = None) -> None:
        self.task = task
        self.folder = folder if isinstance(folder, RunFolder) else RunFolder(folder)
        self.run_dir = self.folder.path
        self.callbacks = list(callbacks or [])
        self.progress = Progress()
        self.resumed = False
        self.checkpoint: dict[str, Any] | None = None  # the state the callbacks save (taken by every rank)
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()

    # --- control, callable from other threads and signal handlers ---------------------------------
    def request_stop(self) -> None:
        """Stop after the current step; a checkpoint is written and the run can be resumed."""
        self._stop.set()
        self._running.set()

    @property
    def stop_requested(self) -> bool:
        """Whether a stop was asked (also one that came after the last step: the run finished, but whoever drives
        several runs, a study, must stop too)."""
        return self._stop.is_set()

    def pause(self) -> None:
        self._running.clear()

    def unpause(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def epochs(self) -> int:
        return self.task.epochs

    @property
    def steps_per_epoch(self) -> int:
        return self.task.steps_per_epoch

    def emit(self, event: Event) -> None:
        for cb in self.callbacks:
            cb.dispatch(self, event)

    def _emit_quietly(self, event: Event) -> None:
        """On the failure path: every callback hears the event even if an earlier one fails again."""
        for cb in self.callbacks:
            with contextlib.suppress(Exception):
                cb.dispatch(self, event)

    # --- the loop ----------------------------------------------------------------------------------
    def fit(self) -> RunEnd:
        """Run to the end, a stop or a failure; the run folder's lock is released when it returns."""
        try:
            return self._fit()
        except Diverged as exc:
            return self._fail(*distributed.settle_failure(str(exc), "diverged"))
        except BaseException as exc:
            reason = "io" if isinstance(exc, RunFolderError) else "error"
            if isinstance(exc, KeyboardInterrupt):
                message = "aborted (a second Ctrl-C); the last checkpoint is kept"
            elif isinstance(exc, NaspError):
                message = str(exc)
            else:
                message = f"{type(exc).__name__}: {exc}"
            self._fail(*distributed.settle_failure(message, reason))
            raise
        finally:
            self.folder.unlock()

    def _fit(self) -> RunEnd:
        task, prog = self.task, self.progress
        self.emit(RunStart(task.kind, str(self.run_dir), task.config, task.epochs, task.steps_per_epoch, prog.epoch,
                           prog.step, str(task.device), task.start_info()))
        while prog.epoch < task.epochs:
            task.start_epoch(prog.epoch)
            for batch in task.batches(prog.epoch, prog.step):
                if prog.step >= task.steps_per_epoch:
                    break
                if self._should_stop():
                    task.pause_epoch()
                    self.checkpoint = self.state_dict()
                    return self._end("stopped")
                values = task.step(batch, prog.epoch, prog.step)
                prog.step += 1
                if values is not None:
                    self._check(values | task.watched(), f"epoch {prog.epoch + 1}, step {prog.step}")
                    self.emit(StepEnd(prog.epoch + 1, prog.step, task.steps_per_epoch, values))
            metrics, record = task.end_epoch(prog.epoch + 1)
            self._check(metrics, f"the end of epoch {prog.epoch + 1}")
            if distributed.size() > 1:
                distributed.check_replicas(task.replicated(), f"the end of epoch {prog.epoch + 1}")
            prog.epoch, prog.step = prog.epoch + 1, 0
            self.checkpoint = self.state_dict()
            self.emit(EpochEnd(prog.epoch, task.epochs, metrics, record))
        return self._end("finished")

    def _check(self, values: dict[str, Any], where: str) -> None:
        bad = first_non_finite(values)
        if bad is not None:
            key, value = bad
            kept = ("the last good checkpoint is kept" if self.progress.epoch > 0 or self.folder.has_checkpoint() else
                    "it had no checkpoint yet (it diverged in its first epoch): start it again")
            raise Diverged(f"the run diverged at {where}: {key} is {value}; {kept} (try a lower learning rate)")

    def _should_stop(self) -> bool:
        if distributed.current() is not None:
            return self._should_stop_together()
        if not self._running.is_set():
            self.emit(Paused(*self._position()))
            self._running.wait()
            if not self._stop.is_set():
                self.emit(Resumed(*self._position()))
        return self._stop.is_set()

    def _should_stop_together(self) -> bool:
        """Under torchrun: a stop or pause asked of any rank holds every rank at the same step (each waits in
        a small all-reduce, every half second, until none is paused)."""
        stop, pause = distributed.agree(self._stop.is_set(), not self._running.is_set())
        if pause and not stop:
            self.emit(Paused(*self._position()))
            while pause and not stop:
                self._running.wait(0.5)
                stop, pause = distributed.agree(self._stop.is_set(), not self._running.is_set())
            if not stop:
                self.emit(Resumed(*self._position()))
        return stop

    def _position(self) -> tuple[int, int]:
        """(epoch, step) as events count them (``nasp.trainer.events``: from 1, the epoch the run is in)."""
        return event_position(self.progress.epoch, self.progress.step, self.task.steps_per_epoch)

    def _end(self, status: str) -> RunEnd:
        event = RunEnd(str(self.run_dir), status, *self._position(), None, self.task.result())
        self.emit(event)
        return event

    def _fail(self, message: str, reason: str) -> RunEnd:
        self._emit_quietly(Failed(*self._position(), message, reason))
        event = RunEnd(str(self.run_dir), "failed", *self._position(), message, {"reason": reason})
        self._emit_quietly(event)
        return event

    # --- checkpoints -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The checkpoint: the task's state, where the run is, its number of ranks and every rank's own state
        (BatchNorm statistics, running sums, random generators: ``Task.rank_state``), so a run resumed on as many
        ranks continues exactly. Under torchrun every rank calls it (the ranks' states are gathered on rank 0)."""
        mine = {"task": self.task.rank_state(), "rng": rng_state(self.task.device)}
        return {"format": CHECKPOINT_FORMAT, "task": self.task.state_dict(), "progress": asdict(self.progress),
                "world_size": distributed.size(), "ranks": distributed.gather(mine)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.task.load_state_dict(state["task"])
        ranks = state.get("ranks")
        self.task.load_rank_states([r["task"] for r in ranks] if ranks else None)
        if ranks and len(ranks) == distributed.size():
            set_rng_state(ranks[distributed.rank()]["rng"], self.task.device)
        self.progress = Progress(**state["progress"])
        self.resumed = True


def rng_state(device: torch.device) -> dict[str, Any]:
    """The random generators a step may draw from (torch's on the CPU and on ``device``, Python's)."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
