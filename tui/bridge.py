"""The trainer-to-app bridge: a Callback in the training thread that hands events to the app."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from textual.app import App

from nasp.trainer import Callback, StepEnd
from nasp.trainer.events import Event
from nasp.trainer.trainer import Trainer


class AppBridge(Callback):
    """Forwards every event, as its dict, to ``handler`` on the app's thread (``app.call_from_thread``).

    It stays cheap for the training thread: step events are batched and handed over at most every
    ``interval`` seconds (the app folds a batch in microseconds and renders later, on its own timer);
    run start, epoch end and run end go at once. ``close`` makes it drop everything (app quitting).
    """

    def __init__(self, app: App[Any], handler: Callable[[list[dict[str, Any]]], None], interval: float = 0.1) -> None:
        self.app = app
        self.handler = handler
        self.interval = interval
        self.pending: list[dict[str, Any]] = []
        self.last = 0.0
        self.closed = False

    def on_event(self, trainer: Trainer, event: Event) -> None:
        if self.closed:
            return
        self.pending.append(event.to_dict())
        if isinstance(event, StepEnd):
            now = time.monotonic()
            if now - self.last < self.interval and event.step != event.steps_per_epoch:
                return
            self.last = now
        self.flush()

    def flush(self) -> None:
        if self.closed or not self.pending:
            return
        batch, self.pending = self.pending, []
        try:
            self.app.call_from_thread(self.handler, batch)
        except RuntimeError:  # the app is not running any more
            self.closed = True

    def close(self) -> None:
        self.closed = True
