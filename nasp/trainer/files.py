"""Callbacks that write the run folder: metrics, architecture history, events, genotype, checkpoints."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import torch

from nasp.genotype import Genotype
from nasp.trainer.callback import Callback
from nasp.trainer.events import EpochEnd, Event, Paused, Resumed, RunEnd, RunStart, StepEnd
from nasp.trainer.trainer import Trainer

METRIC_KEYS = ("epoch", "epochs", "train_loss", "train_acc", "val_loss", "val_acc", "arch_loss", "lr", "arch_s",
               "weight_s", "eval_s", "elapsed_s", "param_count")


def unique_dir(base: Path) -> Path:
    """``base``, or ``base-2``, ``base-3``... whichever does not exist yet (two runs started in one second)."""
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Records of a JSON-lines file; a torn last line (a killed writer) is skipped."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def truncate_jsonl(path: Path, keep_epochs: int) -> None:
    """Drop records of epochs past ``keep_epochs`` (written after the checkpoint a resume starts from)."""
    if path.is_file():
        kept = [r for r in read_jsonl(path) if r.get("epoch", 0) <= keep_epochs]
        atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))


class RunFiles(Callback):
    """metrics.jsonl (one record an epoch), history.jsonl (A and Ā an epoch), genotype.json,
    events.jsonl (every event, for followers in other processes) and status.json."""

    def __init__(self, run_dir: Path, step_interval_s: float = 0.5) -> None:
        self.dir = Path(run_dir)
        self.step_interval_s = step_interval_s  # step events are written at most this often
        self._last_step_write = 0.0

    def on_run_start(self, trainer: Trainer, event: RunStart) -> None:
        self._status("running", event.start_epoch, event.epochs)

    def on_epoch_end(self, trainer: Trainer, event: EpochEnd) -> None:
        append_jsonl(self.dir / "metrics.jsonl", {k: getattr(event, k) for k in METRIC_KEYS})
        append_jsonl(self.dir / "history.jsonl", {"epoch": event.epoch, "A": event.A, "discrete": event.discrete,
                                                  "genotype": event.genotype})
        atomic_write_text(self.dir / "genotype.json", Genotype.model_validate(event.genotype).to_json() + "\n")
        self._status("running", event.epoch, event.epochs)

    def on_run_end(self, trainer: Trainer, event: RunEnd) -> None:
        self._status(event.status, event.epoch, trainer.epochs, val_acc=event.val_acc)

    def on_event(self, trainer: Trainer, event: Event) -> None:
        if isinstance(event, Paused | Resumed):
            self._status("paused" if isinstance(event, Paused) else "running", event.epoch, trainer.epochs)
        if isinstance(event, StepEnd):
            now = time.monotonic()
            if now - self._last_step_write < self.step_interval_s and event.step != event.steps_per_epoch:
                return
            self._last_step_write = now
        append_jsonl(self.dir / "events.jsonl", event.to_dict())

    def _status(self, state: str, epoch: int, epochs: int, **extra: Any) -> None:
        atomic_write_text(self.dir / "status.json",
                          json.dumps({"status": state, "epoch": epoch, "epochs": epochs, "pid": os.getpid(), **extra}))


class Checkpointer(Callback):
    """checkpoint.pt after every epoch and when the run stops, written atomically."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / "checkpoint.pt"

    def save(self, trainer: Trainer) -> None:
        import io

        buf = io.BytesIO()
        torch.save(trainer.state_dict(), buf)
        atomic_write_bytes(self.path, buf.getvalue())

    def on_epoch_end(self, trainer: Trainer, event: EpochEnd) -> None:
        self.save(trainer)

    def on_run_end(self, trainer: Trainer, event: RunEnd) -> None:
        self.save(trainer)
