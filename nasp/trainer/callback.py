"""Callbacks subscribe to trainer events (Lightning's split): console, files, checkpoints, UIs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nasp.trainer.events import EpochEnd, Event, RunEnd, RunStart, StepEnd

if TYPE_CHECKING:
    from nasp.trainer.trainer import Trainer


class Callback:
    """Override the hooks you need; ``on_event`` sees every event."""

    def on_run_start(self, trainer: Trainer, event: RunStart) -> None: ...

    def on_step(self, trainer: Trainer, event: StepEnd) -> None: ...

    def on_epoch_end(self, trainer: Trainer, event: EpochEnd) -> None: ...

    def on_run_end(self, trainer: Trainer, event: RunEnd) -> None: ...

    def on_event(self, trainer: Trainer, event: Event) -> None: ...

    def dispatch(self, trainer: Trainer, event: Event) -> None:
        if isinstance(event, RunStart):
            self.on_run_start(trainer, event)
        elif isinstance(event, StepEnd):
            self.on_step(trainer, event)
        elif isinstance(event, EpochEnd):
            self.on_epoch_end(trainer, event)
        elif isinstance(event, RunEnd):
            self.on_run_end(trainer, event)
        self.on_event(trainer, event)
