"""The callback that keeps the run folder: events, metrics, history, genotype, status and checkpoints.

Everything goes through ``nasp.runfolder.RunFolder`` (the one module that knows the file names). A
checkpoint is written at every epoch end and at a stop, never after a failure: a run that diverged
keeps its last good checkpoint.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from nasp import distributed
from nasp.runfolder import RunFolder
from nasp.trainer.callback import Callback
from nasp.trainer.events import EpochEnd, Event, Failed, Paused, Resumed, RunEnd, RunStart, StepEnd

if TYPE_CHECKING:
    from nasp.trainer.trainer import Trainer


class RunRecorder(Callback):
    """Writes every event to events.jsonl (step events at most every ``step_interval_s``), an epoch's
    metrics to metrics.jsonl and its record (A, Ā, genotype) to history.jsonl, status.json on every
    change of state, and checkpoint.pt."""

    def __init__(self, folder: RunFolder, step_interval_s: float = 0.5) -> None:
        self.folder = folder
        self.step_interval_s = step_interval_s
        self._last_step_write = 0.0

    def _status(self, trainer: Trainer, state: str, **values: object) -> None:
        self.folder.write_status(state, trainer.task.kind, trainer.progress.epoch, trainer.epochs,
                                 world_size=distributed.size(), **values)

    def on_event(self, trainer: Trainer, event: Event) -> None:
        if isinstance(event, StepEnd):
            now = time.monotonic()
            if now - self._last_step_write < self.step_interval_s and event.step != event.steps_per_epoch:
                return
            self._last_step_write = now
        if isinstance(event, Failed):  # status first: on a full disk the small file may still fit
            self._status(trainer, "failed", error=event.error, reason=event.reason)
        self.folder.append_event(event.to_dict())
        if isinstance(event, RunStart):
            self._status(trainer, "running")
        elif isinstance(event, EpochEnd):
            self.folder.append_metrics({"epoch": event.epoch, "epochs": event.epochs, **event.metrics})
            if event.record:
                self.folder.append_history({"epoch": event.epoch, **event.record})
            if "genotype" in event.record:
                from nasp.genotype import Genotype

                self.folder.write_genotype(Genotype.model_validate(event.record["genotype"]).to_json())
            self.folder.save_checkpoint(trainer.checkpoint or trainer.state_dict())
            self._status(trainer, "running", **_scalars(event.metrics))
        elif isinstance(event, Paused | Resumed):
            self._status(trainer, "paused" if isinstance(event, Paused) else "running")
        elif isinstance(event, RunEnd) and event.status != "failed":
            if event.status == "stopped":
                self.folder.save_checkpoint(trainer.checkpoint or trainer.state_dict())
            self._status(trainer, event.status, **_scalars(event.result))


def _scalars(values: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in values.items() if isinstance(v, int | float | str) or v is None}
