"""What the trainer tells its callbacks. Every event is plain data with a JSON form, so a
follower in another thread or process (the terminal app) sees exactly what a callback sees."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

Matrix = dict[str, list[list[float]]]


@dataclass
class Event:
    def to_dict(self) -> dict[str, Any]:
        return {"event": EVENT_NAMES[type(self)], **asdict(self)}


@dataclass
class RunStart(Event):
    run_dir: str
    config: dict[str, Any]
    space: dict[str, Any]
    epochs: int
    steps_per_epoch: int
    start_epoch: int = 0
    start_step: int = 0
    device: str = "cpu"


@dataclass
class StepEnd(Event):
    epoch: int
    step: int
    steps_per_epoch: int
    arch_loss: float
    train_loss: float
    train_acc: float
    arch_s: float
    weight_s: float
    discrete: Matrix = field(default_factory=dict)


@dataclass
class EpochEnd(Event):
    epoch: int
    epochs: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    arch_loss: float
    lr: float
    arch_s: float
    weight_s: float
    eval_s: float
    elapsed_s: float
    param_count: int
    genotype: dict[str, Any]
    A: Matrix
    discrete: Matrix


@dataclass
class RunEnd(Event):
    run_dir: str
    status: str  # finished | stopped
    epoch: int
    step: int
    genotype_path: str | None = None
    val_acc: float | None = None


@dataclass
class Paused(Event):
    """The run waits before its next step (``Trainer.pause``; SIGUSR1 for `nasp run`)."""

    epoch: int
    step: int


@dataclass
class Resumed(Event):
    epoch: int
    step: int


EVENT_NAMES: dict[type, str] = {RunStart: "run_start", StepEnd: "step", EpochEnd: "epoch_end", RunEnd: "run_end",
                                Paused: "paused", Resumed: "resumed"}
