"""An evaluation as a task of the one run loop: train a genotype's network from scratch, test it each epoch.

A stop leaves a checkpoint from which a resumed run ends exactly as an uninterrupted one (the data order,
augmentation, cutout and drop-path masks all derive from (seed, epoch, step)). Numbers are read back from
the device only every ``log_every`` steps (each read waits for the GPU), so a loss that stops being
finite is noticed at the next such step.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import nn

from nasp import distributed
from nasp.config import switch_on
from nasp.evaluation.config import EvalConfig
from nasp.evaluation.data import EvalData, derive_seed
from nasp.evaluation.network import EvalNetwork
from nasp.trainer import Task

Batch = tuple[torch.Tensor, torch.Tensor]


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


SPEED_MODES = ("eager", "compile", "graphs")


def speed_mode(cfg: EvalConfig, device: torch.device) -> str:
    """'graphs' (torch.compile's reduce-overhead mode: CUDA graphs), 'compile' or 'eager', from the keys."""
    if switch_on("cuda_graphs", cfg.cuda_graphs, device.type):
        return "graphs"
    return "compile" if switch_on("compile", cfg.compile, device.type) else "eager"


def compiled(net: nn.Module, mode: str) -> nn.Module:
    """``net`` as ``mode`` runs it (one of SPEED_MODES); the weights stay shared with ``net``."""
    if mode == "eager":
        return net
    return torch.compile(net, mode="reduce-overhead" if mode == "graphs" else None)  # type: ignore[return-value]


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
        if not len(y):  # a rank's share of a last, small batch
            continue
        with autocast(device, amp):
            logits = net(x)
        logits = logits.float()
        loss_sum += nn.functional.cross_entropy(logits, y, reduction="sum").double()
        best = logits.topk(k, 1).indices
        top1 += (best[:, 0] == y).sum()
        top5 += (best == y[:, None]).any(1).sum()
        seen += int(y.shape[0])
    total = distributed.all_sum({"loss": float(loss_sum), "top1": int(top1), "top5": int(top5), "seen": seen})
    seen = max(total["seen"], 1)  # under torchrun: over every rank's share, the whole split
    return {"test_loss": total["loss"] / seen, "test_acc": total["top1"] / seen, "test_top5": total["top5"] / seen}


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


class EvalTask(Task):
    kind = "eval"
    command = "eval"
    verb = "evaluating"

    def __init__(self, cfg: EvalConfig, net: EvalNetwork, data: EvalData, genotype: dict[str, Any],
                 params: tuple[int, int] = (0, 0)) -> None:
        self.cfg = cfg
        self.config = cfg.model_dump(mode="json")
        self.net = net
        self.data = data
        self.device = data.device
        self.speed_mode = speed_mode(cfg, self.device)
        self.train_net = compiled(distributed.data_parallel(net, self.device), self.speed_mode)  # DDP under torchrun
        self.genotype = genotype
        self.params, self.params_with_aux = params
        self.epochs = cfg.epochs
        o = cfg.optim
        self.optimizer = torch.optim.SGD(net.parameters(), lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay,
                                         nesterov=o.nesterov)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=o.label_smoothing)
        self.amp = cfg.amp and self.device.type == "cuda"
        self.drop_generator = torch.Generator(device=self.device)
        self.log_every = 10  # steps between step events (each one syncs the device)
        # the epoch's running sums (in checkpoints), and what the run has found so far
        self.loss_sum, self.correct, self.seen, self.train_s, self.elapsed_s = 0.0, 0, 0, 0.0, 0.0
        self.best_acc: float | None = None
        self.best_epoch = 0
        self.last: dict[str, Any] = {}
        self.lr = self.drop = 0.0
        self._sums: tuple[torch.Tensor, torch.Tensor] | None = None
        self._grad_ok = torch.ones((), dtype=torch.bool, device=self.device)
        self._t0 = 0.0

    @property
    def steps_per_epoch(self) -> int:
        return self.data.steps_per_epoch

    def start_info(self) -> dict[str, Any]:
        return {"genotype": self.genotype, "params": self.params, "params_with_aux": self.params_with_aux}

    def start_epoch(self, epoch: int) -> None:
        self.lr = learning_rate(self.cfg, epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr
        self.drop = self.cfg.model.drop_path * epoch / self.epochs
        self.net.train()
        self._sums = (torch.tensor(self.loss_sum, dtype=torch.float64, device=self.device),
                      torch.tensor(self.correct, dtype=torch.int64, device=self.device))
        self._t0 = time.perf_counter()

    def batches(self, epoch: int, start_step: int) -> Iterator[Batch]:
        return self.data.train_epoch(epoch, start_step)

    def step(self, batch: Batch, epoch: int, step: int) -> dict[str, Any] | None:
        cfg = self.cfg
        x, y = batch
        ranked = (distributed.rank(),) if distributed.size() > 1 else ()  # each rank its own drop-path masks
        self.drop_generator.manual_seed(derive_seed(cfg.seed, epoch, step, 2, *ranked))
        self.net.set_drop_path(self.drop, self.drop_generator)
        with autocast(self.device, self.amp):
            logits, aux = self.train_net(x)
        loss = self.criterion(logits.float(), y)
        total = loss if aux is None else loss + cfg.model.auxiliary_weight * self.criterion(aux.float(), y)
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        norm = nn.utils.clip_grad_norm_(self.net.parameters(), cfg.optim.grad_clip)
        self._grad_ok &= torch.isfinite(norm)
        self.optimizer.step()
        assert self._sums is not None
        self._sums[0].add_(loss.detach().double() * int(y.shape[0]))
        self._sums[1].add_((logits.detach().argmax(1) == y).sum())
        self.seen += int(y.shape[0])
        done = step + 1
        if done % self.log_every and done != self.steps_per_epoch:
            return None
        return {"train_loss": float(self._sums[0]) / self.seen, "train_acc": int(self._sums[1]) / self.seen,
                "lr": self.lr}

    def watched(self) -> dict[str, float]:
        return {} if bool(self._grad_ok) else {"grad_norm": math.nan}

    def pause_epoch(self) -> None:
        self._store_sums()

    def rank_state(self) -> dict[str, Any]:
        return {"sums": {"loss_sum": self.loss_sum, "correct": self.correct, "seen": self.seen},
                "buffers": distributed.own_buffers(self.net)}

    def load_rank_states(self, states: list[dict[str, Any]] | None) -> None:
        if states is None:  # a checkpoint of an older nasp: rank 0 holds the sums
            zero = {"loss_sum": 0.0, "correct": 0, "seen": 0}
            mine = {"loss_sum": self.loss_sum, "correct": self.correct, "seen": self.seen}
            states = [{"sums": mine}] + [{"sums": zero}] * (distributed.size() - 1)
        own = distributed.own_share([s["sums"] for s in states])
        self.loss_sum, self.correct, self.seen = float(own["loss_sum"]), int(own["correct"]), int(own["seen"])
        if "buffers" in states[0]:
            distributed.load_own_buffers(self.net, [s["buffers"] for s in states])

    def _store_sums(self) -> None:
        assert self._sums is not None
        self.loss_sum, self.correct = float(self._sums[0]), int(self._sums[1])
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        seconds = time.perf_counter() - self._t0
        self.train_s += seconds
        self.elapsed_s += seconds

    def test(self) -> dict[str, float]:
        """Loss, top-1 and top-5 accuracy on the test split."""
        result = score(self.net, self.data.test_batches(), self.device, self.amp, self.data.num_classes)
        self.net.train()
        return result

    def replicated(self) -> dict[str, list[torch.Tensor]]:
        return {"weights": list(self.net.parameters()), "BN statistics": list(self.net.buffers())}

    def end_epoch(self, epoch: int) -> tuple[dict[str, Any], dict[str, Any]]:
        self._store_sums()
        mine = {"loss_sum": self.loss_sum, "correct": self.correct, "seen": self.seen}
        loss_sum, correct, seen = distributed.all_sum(mine).values()  # under torchrun: every rank's images
        distributed.average_buffers(self.net)  # every rank then tests, and rank 0 saves, the same network
        t0 = time.perf_counter()
        tested = epoch % self.cfg.eval_every == 0 or epoch == self.epochs
        result = self.test() if tested else {"test_loss": None, "test_acc": None, "test_top5": None}
        test_s = time.perf_counter() - t0 if tested else 0.0
        self.elapsed_s += test_s
        acc = result["test_acc"]
        if acc is not None and (self.best_acc is None or acc > self.best_acc):
            self.best_acc, self.best_epoch = acc, epoch
        metrics = {"train_loss": loss_sum / max(seen, 1), "train_acc": correct / max(seen, 1),
                   **result, "lr": self.lr, "drop_path": self.drop, "train_s": self.train_s, "test_s": test_s,
                   "elapsed_s": self.elapsed_s, "images_per_s": seen / max(self.train_s, 1e-9),
                   "best_acc": self.best_acc, "best_epoch": self.best_epoch}
        if tested:
            self.last = {**result, "epoch": epoch}
        self.loss_sum, self.correct, self.seen, self.train_s = 0.0, 0, 0, 0.0
        return metrics, {}

    def result(self) -> dict[str, Any]:
        return {"params": self.params, "test_acc": self.last.get("test_acc"), "test_top5": self.last.get("test_top5"),
                "best_acc": self.best_acc, "best_epoch": self.best_epoch, "elapsed_s": self.elapsed_s}

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                "sums": {"loss_sum": self.loss_sum, "correct": self.correct, "seen": self.seen, "train_s": self.train_s,
                         "elapsed_s": self.elapsed_s},
                "best_acc": self.best_acc, "best_epoch": self.best_epoch, "last": dict(self.last)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        s = state["sums"]
        self.loss_sum, self.correct, self.seen = float(s["loss_sum"]), int(s["correct"]), int(s["seen"])
        self.train_s, self.elapsed_s = float(s["train_s"]), float(s["elapsed_s"])
        self.best_acc, self.best_epoch, self.last = state["best_acc"], int(state["best_epoch"]), dict(state["last"])

    # --- console -------------------------------------------------------------------------------------
    describe_format = ("{genotype_name} ({space}): {params_m:.2f}M params ({aux_m:.2f}M with the auxiliary head), "
                       "data {data[name]}, {epochs} epochs of {steps_per_epoch} steps, device {device}")
    step_format = "loss {train_loss:.3f} acc {train_acc:.3f} lr {lr:.4f}"
    epoch_format = ("train loss {train_loss:.3f} acc {train_acc:.3f}  test acc {test_pct} top-5 {top5_pct}  "
                    "lr {lr:.4f} drop-path {drop_path:.3f}  {images_per_s:.0f} img/s  {elapsed_s:.0f}s")

    def fields(self, values: dict[str, Any]) -> dict[str, Any]:
        return {**values, "genotype_name": self.cfg.genotype, "space": self.genotype.get("space"),
                "params_m": self.params / 1e6, "aux_m": self.params_with_aux / 1e6,
                "test_pct": _pct(values.get("test_acc")), "top5_pct": _pct(values.get("test_top5"))}
