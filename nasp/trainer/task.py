"""What plugs into the one run loop (Lightning's LightningModule to its Trainer): a search, an evaluation.

A task says how to take a step, what an epoch ends with, what state a checkpoint holds and how its
numbers read on a console. The loop owns everything else: order, signals, events, checkpoints, failures.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, ClassVar

import torch

from nasp.trainer.events import EpochEnd, RunEnd, RunStart, StepEnd


class Task(ABC):
    kind: ClassVar[str]  # "search" | "eval": status.json's kind, and how the run folder is resumed
    command: ClassVar[str]  # the CLI command that runs it ("run", "eval"): `nasp <command> resume=...`
    verb: ClassVar[str] = "running"  # the console's first word: "searching", "evaluating"

    epochs: int
    device: torch.device
    config: dict[str, Any]

    @property
    @abstractmethod
    def steps_per_epoch(self) -> int: ...

    def start_info(self) -> dict[str, Any]:
        """Extra fields of the run_start event."""
        return {}

    def start_epoch(self, epoch: int) -> None:
        """Before the first step of ``epoch`` (also when a resumed run re-enters it mid-way)."""
        return None

    @abstractmethod
    def batches(self, epoch: int, start_step: int) -> Iterator[Any]:
        """The batches of ``epoch`` from ``start_step`` on (a resumed epoch skips the steps it had done)."""

    @abstractmethod
    def step(self, batch: Any, epoch: int, step: int) -> dict[str, Any] | None:
        """One training step; its numbers for a step event, or None when this step reports nothing
        (reading numbers back from a GPU waits for it, so a task may report every few steps)."""

    @abstractmethod
    def end_epoch(self, epoch: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """(metrics, record) of the finished epoch ``epoch`` (1-based): metrics are numbers (metrics.jsonl),
        record the larger data (history.jsonl)."""

    def pause_epoch(self) -> None:
        """The loop leaves the epoch mid-way (a stop): bring running sums into the checkpointed state."""
        return None

    def result(self) -> dict[str, Any]:
        """The final numbers, carried by run_end."""
        return {}

    def watched(self) -> dict[str, float]:
        """Quantities that must stay finite after every step besides the step's numbers (A, gradient norm).
        Read at each step that reports numbers."""
        return {}

    def replicated(self) -> dict[str, list[torch.Tensor]]:
        """What every rank of a distributed run must hold identically (A and Ā, the weights): the trainer
        compares a checksum of it across the ranks at every epoch end."""
        return {}

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain values only: checkpoints are loaded with ``weights_only=True``."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def rank_state(self) -> dict[str, Any]:
        """What this rank holds that the others may not (its BatchNorm statistics and running sums mid-epoch,
        a recurrent task's carries): every rank's goes into the checkpoint, so a resume on as many ranks is
        exact. Tensors and plain values only."""
        return {}

    def load_rank_states(self, states: list[dict[str, Any]] | None) -> None:
        """Every rank's ``rank_state`` from the checkpoint (None for a checkpoint without them), after
        ``load_state_dict``: a rank takes its own when the number of ranks is the same, else a merge."""
        return None

    # --- how its numbers read on a console (format strings over the event's numbers) --------------------
    describe_format: ClassVar[str] = "{kind} on {device}"
    step_format: ClassVar[str] = ""
    epoch_format: ClassVar[str] = ""
    finished_format: ClassVar[str] = "run folder {run_dir}"

    def fields(self, values: dict[str, Any]) -> dict[str, Any]:
        """The names the format strings may use: the event's numbers plus what the task derives from them."""
        return values

    def describe(self, event: RunStart) -> str:
        return self.describe_format.format(**self.fields({**event.config, **event.info, "kind": event.kind,
                                                          "device": event.device, "epochs": event.epochs,
                                                          "steps_per_epoch": event.steps_per_epoch}))

    def step_line(self, event: StepEnd) -> str:
        return self.step_format.format(**self.fields(event.values))

    def epoch_line(self, event: EpochEnd) -> str:
        return f"epoch {event.epoch}/{event.epochs}  " + self.epoch_format.format(**self.fields(event.metrics))

    def finished_line(self, event: RunEnd) -> str:
        return self.finished_format.format(**self.fields({**event.result, "run_dir": event.run_dir}))
