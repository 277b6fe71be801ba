"""Callbacks subscribe to trainer events (Lightning's split): console, files, checkpoints, UIs."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from nasp.trainer.events import EpochEnd, Event, RunEnd, RunStart, StepEnd

if TYPE_CHECKING:
    from nasp.trainer.trainer import Trainer


class Callback:
    """Override the hooks you need; ``on_event`` sees every event. Epochs and steps count from 1 in every event
    (``nasp.trainer.events``). Under torchrun a callback runs on rank 0 alone unless its class sets
    ``all_ranks = True`` (nasp's own callbacks, which write the run folder and the console, never do)."""

    all_ranks: ClassVar[bool] = False

    def on_run_start(self, trainer: Trainer, event: RunStart) -> None:
        """The run starts (or resumes: ``event.start_epoch`` / ``start_step``)."""

    def on_step(self, trainer: Trainer, event: StepEnd) -> None:
        """A step ended: ``event.epoch`` and ``event.step`` count from 1; ``event.values`` its numbers."""

    def on_epoch_end(self, trainer: Trainer, event: EpochEnd) -> None:
        """Epoch ``event.epoch`` (from 1) ended: ``event.metrics``; a search's A, Ā (labelled) and genotype in ``event.record``."""

    def on_run_end(self, trainer: Trainer, event: RunEnd) -> None:
        """The run ended: ``event.status`` is finished, stopped or failed; ``event.result`` its final numbers."""

    def on_event(self, trainer: Trainer, event: Event) -> None:
        """Every event, after its own hook (also ``Paused``, ``Resumed``, ``Failed``)."""

    def dispatch(self, trainer: Trainer, event: Event) -> None:
        """Call the hook of ``event`` and then ``on_event`` (the trainer calls this)."""
        if isinstance(event, RunStart):
            self.on_run_start(trainer, event)
        elif isinstance(event, StepEnd):
            self.on_step(trainer, event)
        elif isinstance(event, EpochEnd):
            self.on_epoch_end(trainer, event)
        elif isinstance(event, RunEnd):
            self.on_run_end(trainer, event)
        self.on_event(trainer, event)
