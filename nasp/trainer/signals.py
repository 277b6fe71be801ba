"""Signals a running `nasp run` / `nasp eval` understands: stop, pause, resume, hang-up."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Any

from rich.console import Console

from nasp.trainer.trainer import Trainer

_before_hold: dict[int, Any] = {}  # the handlers of SIGTERM and SIGHUP while a failed run's line is still to come


def _hold(signum: int, frame: Any) -> None:
    """A stop signal after the run failed: the command is already ending, with its error line and exit code."""


def release_held_signals() -> None:
    """After a failed run's error line (``stop_on_signals(..., hold_on_failure=True)``): the previous handlers of
    SIGTERM and SIGHUP back."""
    for sig, handler in list(_before_hold.items()):
        if signal.getsignal(sig) is _hold:
            signal.signal(sig, handler)
        del _before_hold[sig]


@contextlib.contextmanager
def stop_on_signals(trainer: Trainer, console: Console | None = None, hold_on_failure: bool = False
                    ) -> Iterator[None]:
    """While inside: Ctrl-C, SIGTERM or a closed terminal (SIGHUP) stop ``trainer`` after its current step
    (a checkpoint follows); a second Ctrl-C aborts at once. SIGUSR1 pauses it before its next step and
    SIGUSR2 resumes it: that is how nasp-tui, or `kill -USR1 PID`, holds a run without losing it. The
    previous handlers come back on leaving. ``hold_on_failure`` (the CLI): if the run fails, SIGTERM and SIGHUP
    do nothing until ``release_held_signals`` (after the error line), so torchrun ending the other ranks of a
    failed group cannot cut off the line that says why (the process ends right after it anyway)."""
    err = console or Console(stderr=True, soft_wrap=True)

    def stop(signum: int, frame: Any) -> None:
        trainer.request_stop()
        with contextlib.suppress(OSError):  # a closed terminal (SIGHUP) cannot be written to
            err.print("[yellow]stopping after this step (press Ctrl-C again to abort at once)...[/]")
        signal.signal(signal.SIGINT, signal.default_int_handler)

    handlers: dict[signal.Signals, Any] = {}
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            handlers[getattr(signal, name)] = stop
    if hasattr(signal, "SIGUSR1"):
        handlers[signal.SIGUSR1] = lambda signum, frame: trainer.pause()
        handlers[signal.SIGUSR2] = lambda signum, frame: trainer.unpause()
    before = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    failed = False
    try:
        yield
    except BaseException:
        failed = hold_on_failure
        raise
    finally:
        for sig, handler in before.items():
            if failed and sig in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)):
                _before_hold[sig] = handler
                signal.signal(sig, _hold)
            else:
                signal.signal(sig, handler)
