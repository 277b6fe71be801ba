"""Signals a running `nasp run` / `nasp eval` understands: stop, pause, resume, hang-up."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Any

from rich.console import Console

from nasp.trainer.trainer import Trainer


@contextlib.contextmanager
def stop_on_signals(trainer: Trainer, console: Console | None = None) -> Iterator[None]:
    """While inside: Ctrl-C, SIGTERM or a closed terminal (SIGHUP) stop ``trainer`` after its current step
    (a checkpoint follows); a second Ctrl-C aborts at once. SIGUSR1 pauses it before its next step and
    SIGUSR2 resumes it: that is how nasp-tui, or `kill -USR1 PID`, holds a run without losing it. The
    previous handlers come back on leaving."""
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
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
