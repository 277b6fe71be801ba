"""What the trainer tells its callbacks. Every event is plain data with a flat JSON form, so a follower in
another thread or process (the terminal app) sees exactly what a callback sees.

The events are the same for every task (a search, an evaluation): the task's own numbers travel in one
dict field (``values``, ``metrics``/``record``, ``info``, ``result``) that the JSON form flattens, so a
search's step event reads ``{"event": "step", "epoch": 0, "step": 3, ..., "train_loss": 2.1}``.
``Event.from_dict`` turns such a record back into the typed event.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

Matrix = dict[str, list[list[float]]]


@dataclass
class Event:
    name: ClassVar[str] = "event"
    extra_field: ClassVar[str | None] = None  # the dict field the JSON form flattens

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": self.name}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == self.extra_field:
                out.update(value)
            else:
                out[f.name] = value
        return out

    @staticmethod
    def from_dict(record: dict[str, Any]) -> Event:
        """The typed event of a JSON record (events.jsonl); unknown names raise ValueError."""
        cls = EVENTS.get(str(record.get("event")))
        if cls is None:
            raise ValueError(f"unknown event {record.get('event')!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in record.items() if k in names}
        rest = {k: v for k, v in record.items() if k not in names and k != "event"}
        if cls is EpochEnd:
            known["metrics"] = {k: v for k, v in rest.items() if not isinstance(v, dict | list)}
            known["record"] = {k: v for k, v in rest.items() if isinstance(v, dict | list)}
        elif cls.extra_field is not None:
            known[cls.extra_field] = rest
        return cls(**known)


@dataclass
class RunStart(Event):
    """``info``: what the task shows about itself (a search: its space; an evaluation: genotype, params)."""

    name: ClassVar[str] = "run_start"
    extra_field: ClassVar[str | None] = "info"
    kind: str
    run_dir: str
    config: dict[str, Any]
    epochs: int
    steps_per_epoch: int
    start_epoch: int = 0
    start_step: int = 0
    device: str = "cpu"
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class StepEnd(Event):
    """``values``: the step's numbers (losses, accuracy, timings; a search adds Ā as ``discrete``)."""

    name: ClassVar[str] = "step"
    extra_field: ClassVar[str | None] = "values"
    epoch: int
    step: int
    steps_per_epoch: int
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class EpochEnd(Event):
    """``metrics``: the numbers of the epoch (metrics.jsonl); ``record``: its larger data (a search's A, Ā
    and genotype: history.jsonl)."""

    name: ClassVar[str] = "epoch_end"
    extra_field: ClassVar[str | None] = "metrics"
    epoch: int
    epochs: int
    metrics: dict[str, Any] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.name, "epoch": self.epoch, "epochs": self.epochs, **self.metrics, **self.record}


@dataclass
class RunEnd(Event):
    """``status``: finished | stopped | failed; ``result``: the task's final numbers."""

    name: ClassVar[str] = "run_end"
    extra_field: ClassVar[str | None] = "result"
    run_dir: str
    status: str
    epoch: int
    step: int
    error: str | None = None
    result: dict[str, Any] = field(default_factory=dict)


@dataclass
class Failed(Event):
    """The run failed (diverged, a write failed, an exception): emitted before its ``run_end``."""

    name: ClassVar[str] = "failed"
    epoch: int
    step: int
    error: str
    reason: str = "error"  # diverged | io | error


@dataclass
class Paused(Event):
    """The run waits before its next step (``Trainer.pause``; SIGUSR1 for `nasp run` and `nasp eval`)."""

    name: ClassVar[str] = "paused"
    epoch: int
    step: int


@dataclass
class Resumed(Event):
    name: ClassVar[str] = "resumed"
    epoch: int
    step: int


EVENTS: dict[str, type[Event]] = {cls.name: cls for cls in (RunStart, StepEnd, EpochEnd, RunEnd, Failed, Paused, Resumed)}
