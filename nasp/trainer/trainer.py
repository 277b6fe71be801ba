"""The search loop: architecture step on a validation batch, weight step on a training batch.

The trainer knows the SearchAlgorithm interface only; everything else (console, files,
checkpoints, the terminal app) hears about the run through events. It stops only between steps,
so a stop (Ctrl-C, the terminal app) always leaves a checkpoint a resume continues exactly.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from nasp.algorithms import SearchAlgorithm
from nasp.data import Batches
from nasp.trainer.callback import Callback
from nasp.trainer.events import EpochEnd, Event, Paused, Resumed, RunEnd, RunStart, StepEnd


@dataclass
class Progress:
    """Where the run is, and the running sums of the current epoch (saved in checkpoints)."""

    epoch: int = 0
    step: int = 0
    arch_loss: float = 0.0
    train_loss: float = 0.0
    correct: int = 0
    seen: int = 0
    arch_s: float = 0.0
    weight_s: float = 0.0
    elapsed_s: float = 0.0
    last: dict[str, Any] = field(default_factory=dict)

    def start_epoch(self, epoch: int) -> None:
        self.epoch, self.step = epoch, 0
        self.arch_loss = self.train_loss = self.arch_s = self.weight_s = 0.0
        self.correct = self.seen = 0


class Trainer:
    def __init__(self, algorithm: SearchAlgorithm, train: Batches, val: Batches, epochs: int, run_dir: Path,
                 callbacks: list[Callback] | None = None, config: dict[str, Any] | None = None,
                 model_size: tuple[int, int, int, int] = (16, 8, 10, 3)) -> None:
        self.algorithm = algorithm
        self.train = train
        self.val = val
        self.epochs = epochs
        self.run_dir = Path(run_dir)
        self.callbacks = list(callbacks or [])
        self.config = config or {}
        self.model_size = model_size
        self.progress = Progress()
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()

    # --- control, callable from other threads and signal handlers ---------------------------
    def request_stop(self) -> None:
        """Stop after the current step; a checkpoint is written and the run can be resumed."""
        self._stop.set()
        self._running.set()

    def pause(self) -> None:
        self._running.clear()

    def unpause(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def steps_per_epoch(self) -> int:
        return min(len(self.train), len(self.val))

    def emit(self, event: Event) -> None:
        for cb in self.callbacks:
            cb.dispatch(self, event)

    # --- the loop -----------------------------------------------------------------------------
    def fit(self) -> RunEnd:
        algo, prog = self.algorithm, self.progress
        algo.net.train()
        self.emit(RunStart(str(self.run_dir), self.config, algo.space.model_dump(), self.epochs,
                           self.steps_per_epoch, prog.epoch, prog.step, str(algo.device)))
        while prog.epoch < self.epochs:
            skip = prog.step
            batches = zip(self.train.epoch(prog.epoch), self.val.epoch(prog.epoch), strict=False)
            for step, (train_batch, val_batch) in enumerate(batches):
                if step >= self.steps_per_epoch:
                    break
                if step < skip:
                    continue
                if self._should_stop():
                    return self._end("stopped")
                self._step(train_batch, val_batch)
            self._end_epoch()
        return self._end("finished")

    def _should_stop(self) -> bool:
        if not self._running.is_set():
            prog = self.progress
            self.emit(Paused(prog.epoch, prog.step))
            self._running.wait()
            if not self._stop.is_set():
                self.emit(Resumed(prog.epoch, prog.step))
        return self._stop.is_set()

    def _step(self, train_batch: tuple[torch.Tensor, torch.Tensor], val_batch: tuple[torch.Tensor, torch.Tensor]) -> None:
        algo, prog = self.algorithm, self.progress
        t0 = time.perf_counter()
        arch_loss = algo.arch_step(val_batch, train_batch)
        t1 = time.perf_counter()
        loss, correct = algo.weight_step(train_batch)
        t2 = time.perf_counter()
        n = int(train_batch[1].shape[0])
        prog.step += 1
        prog.arch_loss += arch_loss
        prog.train_loss += loss * n
        prog.correct += correct
        prog.seen += n
        prog.arch_s += t1 - t0
        prog.weight_s += t2 - t1
        prog.elapsed_s += t2 - t0
        self.emit(StepEnd(prog.epoch, prog.step, self.steps_per_epoch, arch_loss, loss, correct / n,
                          t1 - t0, t2 - t1, algo.discrete_values()))

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float]:
        """Loss and accuracy of the searched architecture on the whole validation split."""
        algo = self.algorithm
        algo.net.eval()
        total_loss, correct, seen = 0.0, 0, 0
        for x, y in self.val.epoch(0, shuffle=False):
            logits = algo.logits(x).float()
            total_loss += float(F.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(1) == y).sum())
            seen += int(y.shape[0])
        algo.net.train()
        return total_loss / max(seen, 1), correct / max(seen, 1)

    def _end_epoch(self) -> None:
        algo, prog = self.algorithm, self.progress
        t0 = time.perf_counter()
        val_loss, val_acc = self.evaluate()
        eval_s = time.perf_counter() - t0
        prog.elapsed_s += eval_s
        lr = algo.weight_lr
        algo.end_epoch()
        genotype = algo.genotype()
        steps = max(prog.step, 1)
        event = EpochEnd(
            epoch=prog.epoch + 1, epochs=self.epochs,
            train_loss=prog.train_loss / max(prog.seen, 1), train_acc=prog.correct / max(prog.seen, 1),
            val_loss=val_loss, val_acc=val_acc, arch_loss=prog.arch_loss / steps, lr=lr,
            arch_s=prog.arch_s, weight_s=prog.weight_s, eval_s=eval_s, elapsed_s=prog.elapsed_s,
            param_count=genotype.param_count(*self.model_size),
            genotype=genotype.model_dump(mode="json", exclude_none=True),
            A=algo.arch_values(), discrete=algo.discrete_values(),
        )
        prog.last = {"val_acc": val_acc, "val_loss": val_loss}
        prog.start_epoch(prog.epoch + 1)
        self.emit(event)

    def _end(self, status: str) -> RunEnd:
        prog = self.progress
        geno = self.run_dir / "genotype.json"
        event = RunEnd(str(self.run_dir), status, prog.epoch, prog.step,
                       str(geno) if geno.exists() else None, prog.last.get("val_acc"))
        self.emit(event)
        return event

    # --- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"algorithm": self.algorithm.state_dict(), "progress": vars(self.progress).copy(),
                "epochs": self.epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.algorithm.load_state_dict(state["algorithm"])
        self.progress = Progress(**state["progress"])
