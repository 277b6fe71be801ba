"""The evaluation loop: train a genotype's network from scratch, test it each epoch.

Like the search Trainer it stops only between steps and tells callbacks through events; a stop
leaves a checkpoint from which a resumed run ends exactly as an uninterrupted one (the data order,
augmentation, cutout and drop-path masks all derive from (seed, epoch, step))."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nasp.evaluation.config import EvalConfig
from nasp.evaluation.data import EvalData, derive_seed
from nasp.evaluation.network import EvalNetwork
from nasp.trainer.callback import Callback
from nasp.trainer.events import Event


@dataclass
class EvalEvent(Event):
    kind = "event"

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.kind, **asdict(self)}


@dataclass
class EvalStart(EvalEvent):
    kind = "eval_start"
    run_dir: str
    config: dict[str, Any]
    genotype: dict[str, Any]
    epochs: int
    steps_per_epoch: int
    params: int
    params_with_aux: int
    start_epoch: int = 0
    start_step: int = 0
    device: str = "cpu"


@dataclass
class EvalStep(EvalEvent):
    kind = "eval_step"
    epoch: int
    step: int
    steps_per_epoch: int
    train_loss: float
    train_acc: float
    lr: float


@dataclass
class EvalEpoch(EvalEvent):
    kind = "eval_epoch"
    epoch: int
    epochs: int
    train_loss: float
    train_acc: float
    test_loss: float | None
    test_acc: float | None
    test_top5: float | None
    lr: float
    drop_path: float
    train_s: float
    test_s: float
    elapsed_s: float
    images_per_s: float
    best_acc: float | None
    best_epoch: int


@dataclass
class EvalEnd(EvalEvent):
    kind = "eval_end"
    run_dir: str
    status: str  # finished | stopped
    epoch: int
    step: int
    params: int
    test_acc: float | None = None
    test_top5: float | None = None
    best_acc: float | None = None
    best_epoch: int = 0
    elapsed_s: float = 0.0


@dataclass
class EvalProgress:
    """Where the run is and the running sums of the current epoch (saved in checkpoints)."""

    epoch: int = 0
    step: int = 0
    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    train_s: float = 0.0
    elapsed_s: float = 0.0
    best_acc: float | None = None
    best_epoch: int = 0
    last: dict[str, Any] = field(default_factory=dict)


def learning_rate(cfg: EvalConfig, epoch: int) -> float:
    """The learning rate of ``epoch`` (0-based): linear warm-up, then cosine to lr_min or step decay."""
    o = cfg.optim
    if epoch < o.warmup_epochs:
        return o.lr * (epoch + 1) / o.warmup_epochs
    if o.schedule == "step":
        return o.lr * o.gamma ** ((epoch - o.warmup_epochs) // o.decay_every)
    span = max(cfg.epochs - o.warmup_epochs, 1)
    return o.lr_min + (o.lr - o.lr_min) * (1 + math.cos(math.pi * (epoch - o.warmup_epochs) / span)) / 2


def autocast(device: torch.device, amp: bool) -> Any:
    """bf16 autocast on CUDA when ``amp``; a no-op context elsewhere."""
    return torch.autocast("cuda", torch.bfloat16) if amp and device.type == "cuda" else torch.autocast("cpu", enabled=False)


@torch.no_grad()
def score(net: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], device: torch.device, amp: bool,
          num_classes: int) -> dict[str, float]:
    """Mean loss, top-1 and top-5 accuracy of ``net`` (put in eval mode) over ``batches``."""
    net.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    top1 = torch.zeros((), dtype=torch.int64, device=device)
    top5 = torch.zeros((), dtype=torch.int64, device=device)
    seen = 0
    k = min(5, num_classes)
    for x, y in batches:
        with autocast(device, amp):
            logits = net(x)
        logits = logits.float()
        loss_sum += nn.functional.cross_entropy(logits, y, reduction="sum").double()
        best = logits.topk(k, 1).indices
        top1 += (best[:, 0] == y).sum()
        top5 += (best == y[:, None]).any(1).sum()
        seen += int(y.shape[0])
    seen = max(seen, 1)
    return {"test_loss": float(loss_sum) / seen, "test_acc": int(top1) / seen, "test_top5": int(top5) / seen}


class EvalTrainer:
    def __init__(self, cfg: EvalConfig, net: EvalNetwork, data: EvalData, run_dir: Path, genotype: dict[str, Any],
                 callbacks: list[Callback] | None = None, params: tuple[int, int] = (0, 0)) -> None:
        self.cfg = cfg
        self.net = net
        self.data = data
        self.device = data.device
        self.run_dir = Path(run_dir)
        self.genotype = genotype
        self.callbacks = list(callbacks or [])
        self.params, self.params_with_aux = params
        self.epochs = cfg.epochs
        o = cfg.optim
        self.optimizer = torch.optim.SGD(net.parameters(), lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay,
                                         nesterov=o.nesterov)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=o.label_smoothing)
        self.amp = cfg.amp and self.device.type == "cuda"
        self.drop_generator = torch.Generator(device=self.device)
        self.progress = EvalProgress()
        self.log_every = 10  # steps between step events (each one syncs the device)
        self._stop = threading.Event()
        self._sums: tuple[torch.Tensor, torch.Tensor] | None = None

    # --- control --------------------------------------------------------------------------------
    def request_stop(self) -> None:
        """Stop after the current step; a checkpoint is written and the run can be resumed."""
        self._stop.set()

    @property
    def steps_per_epoch(self) -> int:
        return self.data.steps_per_epoch

    def emit(self, event: Event) -> None:
        for cb in self.callbacks:
            cb.dispatch(self, event)  # type: ignore[arg-type]

    # --- the loop -------------------------------------------------------------------------------
    def fit(self) -> EvalEnd:
        prog = self.progress
        self.emit(EvalStart(str(self.run_dir), self.cfg.model_dump(mode="json"), self.genotype, self.epochs,
                            self.steps_per_epoch, self.params, self.params_with_aux, prog.epoch, prog.step,
                            str(self.device)))
        while prog.epoch < self.epochs:
            lr = learning_rate(self.cfg, prog.epoch)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            drop = self.cfg.model.drop_path * prog.epoch / self.epochs
            self.net.train()
            self._load_sums()
            t0 = time.perf_counter()
            for step, (x, y) in enumerate(self.data.train_epoch(prog.epoch, prog.step), prog.step):
                if self._stop.is_set():
                    self._store_sums()
                    self._add_time(time.perf_counter() - t0)
                    return self._end("stopped")
                self._step(x, y, step, lr, drop)
            self._store_sums()
            self._add_time(time.perf_counter() - t0)
            self._end_epoch(lr, drop)
        return self._end("finished")

    def _add_time(self, seconds: float) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.progress.train_s += seconds
        self.progress.elapsed_s += seconds

    def _load_sums(self) -> None:
        prog = self.progress
        self._sums = (torch.tensor(prog.loss_sum, dtype=torch.float64, device=self.device),
                      torch.tensor(prog.correct, dtype=torch.int64, device=self.device))

    def _store_sums(self) -> None:
        assert self._sums is not None
        self.progress.loss_sum = float(self._sums[0])
        self.progress.correct = int(self._sums[1])

    def _step(self, x: torch.Tensor, y: torch.Tensor, step: int, lr: float, drop: float) -> None:
        prog, cfg = self.progress, self.cfg
        self.drop_generator.manual_seed(derive_seed(cfg.seed, prog.epoch, step, 2))
        self.net.set_drop_path(drop, self.drop_generator)
        with autocast(self.device, self.amp):
            logits, aux = self.net(x)
        loss = self.criterion(logits.float(), y)
        total = loss if aux is None else loss + cfg.model.auxiliary_weight * self.criterion(aux.float(), y)
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        nn.utils.clip_grad_norm_(self.net.parameters(), cfg.optim.grad_clip)
        self.optimizer.step()
        n = int(y.shape[0])
        assert self._sums is not None
        self._sums[0].add_(loss.detach().double() * n)
        self._sums[1].add_((logits.detach().argmax(1) == y).sum())
        prog.step = step + 1
        prog.seen += n
        if prog.step % self.log_every == 0 or prog.step == self.steps_per_epoch:
            self.emit(EvalStep(prog.epoch, prog.step, self.steps_per_epoch, float(self._sums[0]) / prog.seen,
                               int(self._sums[1]) / prog.seen, lr))

    def test(self) -> dict[str, float]:
        """Loss, top-1 and top-5 accuracy on the test split."""
        result = score(self.net, self.data.test_batches(), self.device, self.amp, self.data.num_classes)
        self.net.train()
        return result

    def _end_epoch(self, lr: float, drop: float) -> None:
        prog, epoch = self.progress, self.progress.epoch + 1
        t0 = time.perf_counter()
        tested = epoch % self.cfg.eval_every == 0 or epoch == self.epochs
        result = self.test() if tested else {"test_loss": None, "test_acc": None, "test_top5": None}
        test_s = time.perf_counter() - t0 if tested else 0.0
        prog.elapsed_s += test_s
        acc = result["test_acc"]
        if acc is not None and (prog.best_acc is None or acc > prog.best_acc):
            prog.best_acc, prog.best_epoch = acc, epoch
        event = EvalEpoch(
            epoch=epoch, epochs=self.epochs, train_loss=prog.loss_sum / max(prog.seen, 1),
            train_acc=prog.correct / max(prog.seen, 1), **result, lr=lr, drop_path=drop, train_s=prog.train_s,
            test_s=test_s, elapsed_s=prog.elapsed_s, images_per_s=prog.seen / max(prog.train_s, 1e-9),
            best_acc=prog.best_acc, best_epoch=prog.best_epoch)
        if tested:
            prog.last = {**result, "epoch": epoch}
        prog.epoch, prog.step = epoch, 0
        prog.loss_sum, prog.correct, prog.seen, prog.train_s = 0.0, 0, 0, 0.0
        self.emit(event)

    def _end(self, status: str) -> EvalEnd:
        prog = self.progress
        event = EvalEnd(str(self.run_dir), status, prog.epoch, prog.step, self.params, prog.last.get("test_acc"),
                        prog.last.get("test_top5"), prog.best_acc, prog.best_epoch, prog.elapsed_s)
        self.emit(event)
        return event

    # --- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"model": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                "progress": asdict(self.progress), "epochs": self.epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.progress = EvalProgress(**state["progress"])
