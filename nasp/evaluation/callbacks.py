"""What an evaluation run writes and prints: run folder files, checkpoints, best/last models, console."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from nasp.evaluation.trainer import EvalEnd, EvalEpoch, EvalStart, EvalStep, EvalTrainer
from nasp.trainer.callback import Callback
from nasp.trainer.events import Event
from nasp.trainer.files import append_jsonl, atomic_write_bytes, atomic_write_text

MODEL_FORMAT = "nasp-eval-model/1"
METRIC_KEYS = ("epoch", "epochs", "train_loss", "train_acc", "test_loss", "test_acc", "test_top5", "lr", "drop_path",
               "train_s", "test_s", "elapsed_s", "images_per_s", "best_acc", "best_epoch")


def save_torch(path: Path, obj: Any) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def model_record(trainer: EvalTrainer, epoch: int, result: dict[str, Any]) -> dict[str, Any]:
    """What ``nasp test`` needs to rebuild and score the network: weights, genotype, config, data shape."""
    state = {k: v.detach().cpu() for k, v in trainer.net.state_dict().items()}
    return {"format": MODEL_FORMAT, "genotype": trainer.genotype, "config": trainer.cfg.model_dump(mode="json"),
            "num_classes": trainer.data.num_classes, "in_channels": trainer.data.channels,
            "image_size": trainer.data.image_size, "epoch": epoch, "params": trainer.params, **result, "model": state}


class EvalFiles(Callback):
    """metrics.jsonl (an epoch a line), events.jsonl (step events at most once a second), status.json,
    result.json (at the end)."""

    def __init__(self, run_dir: Path, step_interval_s: float = 1.0) -> None:
        self.dir = Path(run_dir)
        self.step_interval_s = step_interval_s
        self._last_step_write = 0.0

    def on_event(self, trainer: EvalTrainer, event: Event) -> None:  # type: ignore[override]
        if isinstance(event, EvalStep):
            now = time.monotonic()
            if now - self._last_step_write < self.step_interval_s and event.step != event.steps_per_epoch:
                return
            self._last_step_write = now
        append_jsonl(self.dir / "events.jsonl", event.to_dict())
        if isinstance(event, EvalStart):
            self._status(trainer, "running")
        elif isinstance(event, EvalEpoch):
            append_jsonl(self.dir / "metrics.jsonl", {k: getattr(event, k) for k in METRIC_KEYS})
            self._status(trainer, "running", test_acc=event.test_acc)
        elif isinstance(event, EvalEnd):
            self._status(trainer, event.status, test_acc=event.test_acc)
            if event.status == "finished":
                atomic_write_text(self.dir / "result.json", json.dumps(result_record(trainer, event), indent=2) + "\n")

    def _status(self, trainer: EvalTrainer, state: str, **extra: Any) -> None:
        atomic_write_text(self.dir / "status.json", json.dumps({
            "status": state, "kind": "eval", "epoch": trainer.progress.epoch, "epochs": trainer.epochs,
            "pid": os.getpid(), **extra}))


def result_record(trainer: EvalTrainer, event: EvalEnd) -> dict[str, Any]:
    acc, top5 = event.test_acc, event.test_top5
    return {"genotype": trainer.genotype, "params": event.params, "params_m": round(event.params / 1e6, 2),
            "params_with_aux": trainer.params_with_aux, "epochs": trainer.epochs, "test_acc": acc, "test_top5": top5,
            "test_error": None if acc is None else 1 - acc, "test_top5_error": None if top5 is None else 1 - top5,
            "best_acc": event.best_acc, "best_epoch": event.best_epoch, "elapsed_s": event.elapsed_s,
            "device": str(trainer.device), "dataset": trainer.cfg.data.name}


class EvalCheckpointer(Callback):
    """checkpoint.pt (to resume) after every epoch and at a stop; last.pt after every epoch; best.pt when the
    test accuracy improves. All written atomically."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = Path(run_dir)

    def on_event(self, trainer: EvalTrainer, event: Event) -> None:  # type: ignore[override]
        if isinstance(event, EvalEpoch):
            save_torch(self.dir / "checkpoint.pt", trainer.state_dict())
            result = {"test_acc": event.test_acc, "test_top5": event.test_top5}
            save_torch(self.dir / "last.pt", model_record(trainer, event.epoch, result))
            if event.test_acc is not None and event.best_epoch == event.epoch:
                save_torch(self.dir / "best.pt", model_record(trainer, event.epoch, result))
        elif isinstance(event, EvalEnd) and event.status == "stopped":
            save_torch(self.dir / "checkpoint.pt", trainer.state_dict())


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


class EvalConsole(Callback):
    """A live bar in a terminal; one line an epoch otherwise."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, soft_wrap=True)
        self.progress: Progress | None = None
        self.task: Any = None

    def on_event(self, trainer: EvalTrainer, event: Event) -> None:  # type: ignore[override]
        if isinstance(event, EvalStart):
            cfg = event.config
            verb = "resuming" if event.start_epoch or event.start_step else "evaluating"
            self.console.print(
                f"[bold]nasp[/] {verb} {cfg.get('genotype')} ({event.genotype.get('space')}): {event.params / 1e6:.2f}M "
                f"params ({event.params_with_aux / 1e6:.2f}M with the auxiliary head), data {cfg['data']['name']}, "
                f"{event.epochs} epochs of {event.steps_per_epoch} steps, device {event.device}; "
                f"run folder {event.run_dir}")
            if self.console.is_terminal:
                self.progress = Progress(TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                                         TextColumn("{task.fields[info]}"), TimeRemainingColumn(), console=self.console,
                                         transient=True)
                self.progress.start()
                self.task = self.progress.add_task("eval", total=event.steps_per_epoch, completed=event.start_step,
                                                   epoch=f"{event.start_epoch + 1}/{event.epochs}", info="")
        elif isinstance(event, EvalStep):
            if self.progress is not None:
                self.progress.update(self.task, completed=event.step, epoch=f"{event.epoch + 1}/{trainer.epochs}",
                                     info=f"loss {event.train_loss:.3f} acc {event.train_acc:.3f} lr {event.lr:.4f}")
        elif isinstance(event, EvalEpoch):
            self.console.print(
                f"epoch {event.epoch}/{event.epochs}  train loss {event.train_loss:.3f} acc {event.train_acc:.3f}  "
                f"test acc {_pct(event.test_acc)} top-5 {_pct(event.test_top5)}  lr {event.lr:.4f} "
                f"drop-path {event.drop_path:.3f}  {event.images_per_s:.0f} img/s  {event.elapsed_s:.0f}s")
            if self.progress is not None:
                self.progress.reset(self.task, total=trainer.steps_per_epoch, epoch=f"{event.epoch + 1}/{event.epochs}")
        elif isinstance(event, EvalEnd):
            if self.progress is not None:
                self.progress.stop()
            if event.status == "stopped":
                self.console.print(f"[bold yellow]stopped[/] at epoch {event.epoch + 1}, step {event.step}; continue "
                                   f"with:\n  nasp eval resume={event.run_dir}")
