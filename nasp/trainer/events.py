"""What the trainer tells its callbacks. Every event is plain data with a flat JSON form, so a follower in
another thread or process (the terminal app) sees exactly what a callback sees.

The events are the same for every task (a search, an evaluation): the task's own numbers travel in one
dict field (``values``, ``metrics``/``record``, ``info``, ``result``) that the JSON form flattens, so a
search's step event reads ``{"event": "step", "epoch": 0, "step": 3, ..., "train_loss": 2.1}``.
``Event.from_dict`` turns such a record back into the typed event.

Epochs and steps are counted one way in every event, from 1: ``epoch`` is the epoch the event belongs to (the one
a step is part of, the one that ended, the one a pause, a failure or the run's end happened in) and ``step`` the
steps of it done (``StepEnd(epoch=1, step=1)`` is the first step of the first epoch; ``EpochEnd(epoch=1)`` ends
it; a run's end after its last epoch is ``RunEnd(epoch=epochs, step=steps_per_epoch)``). Only ``RunStart`` says
where a run starts from as a checkpoint's position: ``start_epoch`` epochs done, ``start_step`` steps of the next.

Ā and A arrive labelled: in a search's ``StepEnd.values["discrete"]`` and ``EpochEnd.record["A"]`` /
``["discrete"]`` each cell type's matrix is an :class:`ArchMatrix`, a list of rows (one an edge) that also knows
its ``edges`` and ``ops`` names; in JSON (events.jsonl, history.jsonl) it is the plain nested list.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

Matrix = dict[str, list[list[float]]]


class ArchMatrix(list[list[float]]):
    """One cell type's A or Ā: rows are edges, columns ops, labelled (``edges``: ``c_{k-2}→0``, ..., ``ops``);
    a plain ``list`` of rows for everything else (JSON, indexing, comparison)."""

    def __init__(self, rows: list[list[float]], edges: list[str], ops: list[str]) -> None:
        super().__init__(list(r) for r in rows)
        if len(self) != len(edges) or any(len(r) != len(ops) for r in self):
            raise ValueError(f"a matrix of {len(self)} rows for {len(edges)} edges and {len(ops)} ops")
        self.edges, self.ops = list(edges), list(ops)

    def value(self, edge: str, op: str) -> float:
        """The entry of ``edge`` (its label) and ``op``."""
        return self[self.edges.index(edge)][self.ops.index(op)]

    def row(self, edge: str) -> dict[str, float]:
        """One edge's entries by op."""
        return dict(zip(self.ops, self[self.edges.index(edge)], strict=True))

    def selected(self) -> dict[str, str]:
        """Each edge's largest entry's op (for Ā: the op it keeps), by edge; edges whose row is all zero are left out."""
        return {e: self.ops[max(range(len(r)), key=r.__getitem__)] for e, r in zip(self.edges, self, strict=True)
                if any(r)}

    def __repr__(self) -> str:
        return f"ArchMatrix(edges={self.edges}, ops={self.ops}, rows={list(self)})"


def label_matrices(matrices: Matrix, labels: dict[str, tuple[list[str], list[str]]]) -> dict[str, list[list[float]]]:
    """Each cell type's matrix as an ArchMatrix, given ``labels``: cell type -> (edge names, op names)."""
    return {ct: ArchMatrix(m, *labels[ct]) if ct in labels else m for ct, m in matrices.items()}


def event_position(epoch: int, step: int, steps_per_epoch: int) -> tuple[int, int]:
    """The (epoch, step) events say, from a run's position (epochs done, steps of the next done): (1, 0) before the
    first step, (e, steps_per_epoch) right after epoch e ended, (e + 1, s) inside epoch e + 1."""
    if step == 0 and epoch > 0:
        return epoch, steps_per_epoch
    return epoch + 1, step


def next_step(epoch: int, step: int, steps_per_epoch: int) -> tuple[int, int]:
    """(epoch, step) of the step that comes after an event's (epoch, step): what a paused run takes next."""
    if steps_per_epoch and step >= steps_per_epoch:
        return epoch + 1, 1
    return epoch, step + 1


def run_position(epoch: int, step: int, steps_per_epoch: int) -> tuple[int, int]:
    """The inverse of ``event_position``: (epochs done, steps of the next one done) of an event's (epoch, step)."""
    if steps_per_epoch and step >= steps_per_epoch:
        return epoch, 0
    return max(epoch - 1, 0), step


@dataclass
class Event:
    """What the trainer emits; ``to_dict`` / ``from_dict`` are its flat JSON form."""

    name: ClassVar[str] = "event"
    extra_field: ClassVar[str | None] = None  # the dict field the JSON form flattens

    def to_dict(self) -> dict[str, Any]:
        """The flat JSON record (the ``extra_field`` dict merged into the top level)."""
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
        """The flat JSON record: epoch, epochs, the metrics and the record side by side."""
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
    """The paused run goes on (``Trainer.unpause``; SIGUSR2)."""

    name: ClassVar[str] = "resumed"
    epoch: int
    step: int


EVENTS: dict[str, type[Event]] = {cls.name: cls for cls in (RunStart, StepEnd, EpochEnd, RunEnd, Failed, Paused, Resumed)}
