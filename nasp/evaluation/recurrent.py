"""Evaluating a recurrent cell (DARTS's rnn/train.py): a language model trained from scratch on a corpus.

DARTS's recipe, every setting a key (``rnn.*`` plus the shared keys, ``RNN_DEFAULTS``): the genotype's cell
in ``RecurrentNetwork`` (embedding tied to the decoder, locked dropouts), plain SGD at lr 20 on windows of
variable length (the lr scaled by length/bptt), gradient clip 0.25, and a switch to averaged SGD (ASGD,
t0=0, lambd=0) once the validation loss is worse than the best of all but the last ``nonmono`` checks.
Under ASGD validation scores the averaged weights. The weights that scored best on validation are kept and
scored on the test split (one stream, as DARTS) after the last epoch.

Resumable exactly: the windows of an epoch and every dropout mask derive from (seed, epoch, step); the hidden
state a window hands to the next, the optimiser (SGD or ASGD with its averages), the validation history and
the best weights are in the checkpoint.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from nasp import distributed
from nasp.data.corpus import Corpus, TextBatches, Window, load_corpus
from nasp.errors import ConfigError, DataError
from nasp.evaluation.config import EvalConfig
from nasp.evaluation.data import derive_seed
from nasp.genotype import Genotype
from nasp.model.budget import count_params
from nasp.model.loss import cross_entropy
from nasp.model.recurrent import HiddenCarry, RecurrentNetwork, RNNDropouts, TokenWindow, selection_of_genotype
from nasp.runfolder import RunFolder
from nasp.trainer import Callback, Task

if TYPE_CHECKING:
    from nasp.trainer.events import EpochEnd, RunEnd
    from nasp.trainer.trainer import Trainer

# vocabulary of the built-in corpora, so a dry run needs no data
CORPUS_VOCAB = {"ptb": 10_000, "wikitext2": 33_278, "embedded-text": 10_000}
MODEL_FORMAT = "nasp-eval-model/1"
Batch = tuple[torch.Tensor, torch.Tensor, Window]


def should_switch_to_asgd(history: list[float], val_loss: float, nonmono: int) -> bool:
    """DARTS's (and AWD-LSTM's) non-monotone trigger: more than ``nonmono`` earlier checks, and ``val_loss`` worse
    than the best of all of them but the last ``nonmono``."""
    return len(history) > nonmono and val_loss > min(history[:-nonmono])


def perplexity(loss: float | None) -> float | None:
    return None if loss is None else math.exp(min(loss, 700.0))


def build_rnn_network(genotype: Genotype, cfg: EvalConfig, vocab_size: int) -> RecurrentNetwork:
    r = cfg.rnn
    space = genotype.resolve_space()
    assert space is not None
    net = RecurrentNetwork(space, vocab_size, r.emsize, r.nhid,
                           RNNDropouts(r.dropout, r.dropouth, r.dropoutx, r.dropouti, r.dropoute),
                           batch_norm=False, init_range=r.init_range, alpha=r.alpha, beta=r.beta)
    return net


def vocab_size_for(cfg: EvalConfig) -> int:
    """``rnn.vocab_size``, else the built-in corpus's, else (a plugin's corpus, or data.root given) the loaded one's."""
    if cfg.rnn.vocab_size is not None:
        return cfg.rnn.vocab_size
    if cfg.data.name in CORPUS_VOCAB and cfg.data.root is None:
        return CORPUS_VOCAB[cfg.data.name]
    return load_corpus(cfg.data.name, cfg.data.root).vocab_size


def rnn_param_count(genotype: Genotype, cfg: EvalConfig | None = None, vocab_size: int = CORPUS_VOCAB["ptb"]) -> int:
    """Parameters of the language model of ``genotype`` (DARTS's PTB sizes by default), built on the meta device."""
    with torch.device("meta"):
        return count_params(build_rnn_network(genotype, cfg or EvalConfig(), vocab_size))


def rnn_dry_run(cfg: EvalConfig, genotype: Genotype) -> dict[str, Any]:
    """Parameters of the language model ``cfg`` describes (no memory, no data)."""
    vocab = vocab_size_for(cfg)
    return {"genotype": cfg.genotype, "space": genotype.space, "kind": "rnn", "params": rnn_param_count(genotype, cfg, vocab),
            "vocab_size": vocab, "emsize": cfg.rnn.emsize, "nhid": cfg.rnn.nhid, "data": cfg.data.name}


# --- data ------------------------------------------------------------------------------------------------------
@dataclass
class TextData:
    corpus: str
    vocab_size: int
    train: TextBatches
    valid: TextBatches
    test: TextBatches
    device: torch.device


def build_text_data(cfg: EvalConfig, device: torch.device, corpus: Corpus | None = None) -> TextData:
    """The corpus's splits as streams: training in ``batch_size`` streams, validation in ``eval_batch_size``,
    test in ``rnn.test_batch_size``; ``data.limit`` / ``data.test_limit`` keep the first that many tokens."""
    corpus = corpus or distributed.prepare_first(lambda: load_corpus(cfg.data.name, cfg.data.root))
    r, d = cfg.rnn, cfg.data
    train = corpus.train[: d.limit] if d.limit else corpus.train
    valid = corpus.valid[: d.test_limit] if d.test_limit else corpus.valid
    test = corpus.test[: d.test_limit] if d.test_limit else corpus.test
    eval_batch = cfg.eval_batch_size or 10
    distributed.check_batch(cfg.batch_size)  # under torchrun each rank trains on its share of the streams
    part = distributed.shard(cfg.batch_size) if distributed.size() > 1 else None
    return TextData(corpus.name, corpus.vocab_size,
                    TextBatches(train, cfg.batch_size, r.bptt, device, r.variable_bptt, r.max_seq_len_delta, cfg.seed,
                                part),
                    TextBatches(valid, eval_batch, r.bptt, device), TextBatches(test, r.test_batch_size, r.bptt, device),
                    device)


@torch.no_grad()
def score_text(net: RecurrentNetwork, selection: Any, batches: TextBatches) -> float:
    """Mean loss per predicted token over the split, in fixed windows, the hidden state carried (net in eval mode)."""
    net.eval()
    carry = HiddenCarry()
    total = torch.zeros((), dtype=torch.float64, device=batches.data.device)
    count = 0
    for i, (x, y, _) in enumerate(batches.epoch()):
        logits = net(TokenWindow(x, carry, i), selection=selection)
        total += nn.functional.cross_entropy(logits.float(), y, reduction="sum").double()
        count += int(y.numel())
    return float(total) / max(count, 1)


# --- the task ----------------------------------------------------------------------------------------------------
class RNNEvalTask(Task):
    kind = "eval"
    command = "eval"
    verb = "evaluating"

    def __init__(self, cfg: EvalConfig, net: RecurrentNetwork, selection: Any, data: TextData,
                 genotype: dict[str, Any], params: int) -> None:
        self.cfg = cfg
        self.config = cfg.model_dump(mode="json")
        self.net = net
        self.selection = selection
        self.data = data
        self.device = data.device
        self.genotype = genotype
        self.params = params
        self.epochs = cfg.epochs
        self.asgd = False
        self.optimizer: torch.optim.Optimizer = self._sgd()
        self.carry = HiddenCarry()
        self.log_every = 10
        self._epoch = 0
        # the epoch's running sums (in checkpoints), and what the run has found so far
        self.loss_sum, self.seen, self.train_s, self.elapsed_s = 0.0, 0, 0.0, 0.0
        self.history: list[float] = []  # validation losses under SGD (the switch rule reads them)
        self.best_loss: float | None = None
        self.best_epoch = 0
        self.asgd_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] = {}
        self.last: dict[str, Any] = {}
        self._sum: torch.Tensor | None = None
        self._t0 = 0.0

    def _sgd(self) -> torch.optim.Optimizer:
        o = self.cfg.optim
        return torch.optim.SGD(self.net.parameters(), lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)

    def _asgd(self) -> torch.optim.Optimizer:
        o = self.cfg.optim
        return torch.optim.ASGD(self.net.parameters(), lr=o.lr, t0=0, lambd=0.0, weight_decay=o.weight_decay)

    @property
    def steps_per_epoch(self) -> int:
        return len(self.data.train.plan(self._epoch))

    def start_info(self) -> dict[str, Any]:
        return {"genotype": self.genotype, "params": self.params, "vocab_size": self.data.vocab_size,
                "train_tokens": self.data.train.tokens}

    def start_epoch(self, epoch: int) -> None:
        self._epoch = epoch
        self.net.train()
        self._sum = torch.tensor(self.loss_sum, dtype=torch.float64, device=self.device)
        self._t0 = time.perf_counter()

    def batches(self, epoch: int, start_step: int) -> Iterator[Batch]:
        if start_step == 0:
            self.carry = HiddenCarry()  # each epoch starts from a zero state (DARTS)
        return self.data.train.epoch(epoch, start_step)

    def step(self, batch: Batch, epoch: int, step: int) -> dict[str, Any] | None:
        x, y, w = batch
        r, o = self.cfg.rnn, self.cfg.optim
        lr = o.lr * (w.lr_scale if r.variable_bptt else 1.0)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        net = self.net
        train = self.data.train
        logits = net(TokenWindow(x, self.carry, step, derive_seed(self.cfg.seed, epoch, step, 3), train.part,
                                 train.batch_size), selection=self.selection)
        raw_loss = cross_entropy(logits, y)
        loss = raw_loss if net.penalty is None else raw_loss + net.penalty
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        distributed.average_gradients(net.parameters())  # under torchrun: every rank the same step
        nn.utils.clip_grad_norm_(net.parameters(), o.grad_clip)
        self.optimizer.step()
        for group in self.optimizer.param_groups:
            group["lr"] = o.lr
        assert self._sum is not None
        self._sum.add_(raw_loss.detach().double() * int(y.numel()))
        self.seen += int(y.numel())
        done = step + 1
        if done % self.log_every and done != self.steps_per_epoch:
            return None
        train_loss = float(self._sum) / max(self.seen, 1)
        return {"train_loss": train_loss, "train_ppl": perplexity(train_loss), "lr": o.lr}

    def pause_epoch(self) -> None:
        self._store_sums()

    def _store_sums(self) -> None:
        assert self._sum is not None
        self.loss_sum = float(self._sum)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        seconds = time.perf_counter() - self._t0
        self.train_s += seconds
        self.elapsed_s += seconds

    def _averaged(self) -> dict[nn.Parameter, torch.Tensor] | None:
        """Under ASGD, swap the averaged weights in; returns the trained ones to put back (``_restore``)."""
        if not self.asgd:
            return None
        kept = {}
        for p in self.net.parameters():
            ax = self.optimizer.state.get(p, {}).get("ax")
            if ax is not None:
                kept[p] = p.detach().clone()
                p.data.copy_(ax)
        return kept

    @staticmethod
    def _restore(kept: dict[nn.Parameter, torch.Tensor] | None) -> None:
        for p, value in (kept or {}).items():
            p.data.copy_(value)

    def _snapshot(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()}

    def test(self) -> float:
        """Test loss of the weights that scored best on validation (the current ones when none did yet)."""
        kept = self._snapshot() if self.best_state else None
        if self.best_state:
            self.net.load_state_dict(self.best_state)
        loss = score_text(self.net, self.selection, self.data.test)
        if kept is not None:
            self.net.load_state_dict(kept)
        self.net.train()
        return loss

    def replicated(self) -> dict[str, list[torch.Tensor]]:
        return {"weights": list(self.net.parameters())}

    def rank_state(self) -> dict[str, Any]:
        return {"sums": {"loss_sum": self.loss_sum, "seen": self.seen}, "carry": self.carry.state_dict()}

    def load_rank_states(self, states: list[dict[str, Any]] | None) -> None:
        if states is None:  # a checkpoint of an older nasp (one process)
            return
        own = distributed.own_share([s["sums"] for s in states])
        self.loss_sum, self.seen = float(own["loss_sum"]), int(own["seen"])
        self.carry = HiddenCarry()
        self.carry.load_state_dict(distributed.own_rows([s["carry"] for s in states]), self.device)

    def end_epoch(self, epoch: int) -> tuple[dict[str, Any], dict[str, Any]]:
        self._store_sums()
        summed = distributed.all_sum({"loss_sum": self.loss_sum, "seen": self.seen})  # under torchrun: every stream
        t0 = time.perf_counter()
        kept = self._averaged()
        valid_loss = score_text(self.net, self.selection, self.data.valid)
        if self.best_loss is None or valid_loss < self.best_loss:
            self.best_loss, self.best_epoch = valid_loss, epoch
            self.best_state = self._snapshot()
        self._restore(kept)
        if not self.asgd:
            if self.cfg.rnn.asgd and should_switch_to_asgd(self.history, valid_loss, self.cfg.rnn.nonmono):
                self.asgd, self.asgd_epoch = True, epoch
                self.optimizer = self._asgd()
            self.history.append(valid_loss)
        valid_s = time.perf_counter() - t0
        test_loss, test_s = None, 0.0
        if epoch == self.epochs:
            t1 = time.perf_counter()
            test_loss = self.test()
            test_s = time.perf_counter() - t1
            self.last = {"test_loss": test_loss, "epoch": epoch}
        self.net.train()
        self.elapsed_s += valid_s + test_s
        train_loss = summed["loss_sum"] / max(summed["seen"], 1)
        metrics = {"train_loss": train_loss, "train_ppl": perplexity(train_loss), "valid_loss": valid_loss,
                   "valid_ppl": perplexity(valid_loss), "best_valid_ppl": perplexity(self.best_loss),
                   "best_epoch": self.best_epoch, "test_loss": test_loss, "test_ppl": perplexity(test_loss),
                   "asgd": self.asgd, "lr": self.cfg.optim.lr, "train_s": self.train_s, "valid_s": valid_s,
                   "test_s": test_s, "elapsed_s": self.elapsed_s, "tokens_per_s": summed["seen"] / max(self.train_s, 1e-9)}
        self.loss_sum, self.seen, self.train_s = 0.0, 0, 0.0
        return metrics, {}

    def result(self) -> dict[str, Any]:
        test_loss = self.last.get("test_loss")
        return {"params": self.params, "valid_loss": self.best_loss, "valid_ppl": perplexity(self.best_loss),
                "test_loss": test_loss, "test_ppl": perplexity(test_loss), "best_epoch": self.best_epoch,
                "asgd_epoch": self.asgd_epoch, "elapsed_s": self.elapsed_s}

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.net.state_dict(), "optimizer": self.optimizer.state_dict(), "asgd": self.asgd,
                "asgd_epoch": self.asgd_epoch, "history": list(self.history), "carry": self.carry.state_dict(),
                "sums": {"loss_sum": self.loss_sum, "seen": self.seen, "train_s": self.train_s,
                         "elapsed_s": self.elapsed_s},
                "best_loss": self.best_loss, "best_epoch": self.best_epoch, "best_state": self.best_state,
                "last": dict(self.last)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["model"])
        self.asgd, self.asgd_epoch = bool(state["asgd"]), state["asgd_epoch"]
        self.optimizer = self._asgd() if self.asgd else self._sgd()
        self.optimizer.load_state_dict(state["optimizer"])
        self.history = [float(v) for v in state["history"]]
        self.carry = HiddenCarry()
        self.carry.load_state_dict(state["carry"], self.device)
        s = state["sums"]
        self.loss_sum, self.seen = float(s["loss_sum"]), int(s["seen"])
        self.train_s, self.elapsed_s = float(s["train_s"]), float(s["elapsed_s"])
        self.best_loss, self.best_epoch = state["best_loss"], int(state["best_epoch"])
        self.best_state = {k: v.cpu() for k, v in state["best_state"].items()}
        self.last = dict(state["last"])

    # --- console -------------------------------------------------------------------------------------
    describe_format = ("{genotype_name} ({space}): {params_m:.2f}M params, data {data[name]} ({vocab_size:,} words, "
                       "{train_tokens:,} training tokens), {epochs} epochs of about {steps_per_epoch} windows, "
                       "device {device}")
    step_format = "loss {train_loss:.3f} ppl {train_ppl:.1f} lr {lr:g}"
    epoch_format = ("train ppl {train_ppl:.1f}  valid ppl {valid_ppl:.2f} (best {best_valid_ppl:.2f}, epoch {best_epoch})"
                    "{test_part}  {optimizer}  {tokens_per_s:.0f} tokens/s  {elapsed_s:.0f}s")
    finished_format = "run folder {run_dir}"

    def fields(self, values: dict[str, Any]) -> dict[str, Any]:
        test = values.get("test_ppl")
        return {**values, "genotype_name": self.cfg.genotype, "space": self.genotype.get("space"),
                "params_m": self.params / 1e6, "optimizer": "ASGD" if values.get("asgd") else "SGD",
                "test_part": "" if test is None else f"  test ppl {test:.2f}"}


def build_rnn_task(cfg: EvalConfig, genotype: Genotype, device: torch.device) -> RNNEvalTask:
    data = build_text_data(cfg, device)
    torch.manual_seed(cfg.seed)
    net = build_rnn_network(genotype, cfg, data.vocab_size).to(device)
    space = genotype.resolve_space()
    assert space is not None
    return RNNEvalTask(cfg, net, selection_of_genotype(space, genotype), data,
                       genotype.model_dump(mode="json", exclude_none=True), count_params(net))


def test_rnn_model(path: Path, record: dict[str, Any], cfg: EvalConfig, genotype: Genotype) -> dict[str, Any]:
    """``nasp test`` of a saved language model: its test-split perplexity (``rnn.test_batch_size`` streams)."""
    from nasp.plugins import resolve_device

    device = resolve_device(cfg.device)
    corpus = load_corpus(cfg.data.name, cfg.data.root)
    if corpus.vocab_size != record["vocab_size"]:
        raise DataError(f"test: the model was trained on a {record['vocab_size']:,}-word vocabulary; corpus "
                        f"'{cfg.data.name}' has {corpus.vocab_size:,} words")
    data = build_text_data(cfg, device, corpus)
    net = build_rnn_network(genotype, cfg, corpus.vocab_size)
    net.load_state_dict(record["model"])
    net = net.to(device)
    space = genotype.resolve_space()
    assert space is not None
    t0 = time.perf_counter()
    loss = score_text(net, selection_of_genotype(space, genotype), data.test)
    return {"model": str(path), "kind": "rnn", "genotype": genotype.model_dump(mode="json", exclude_none=True),
            "epoch": record["epoch"], "params": count_params(net), "dataset": cfg.data.name,
            "tokens": data.test.tokens, "test_loss": loss, "test_ppl": perplexity(loss),
            "seconds": time.perf_counter() - t0, "device": str(device)}


def check_rnn_config(cfg: EvalConfig) -> None:
    """Keys of image networks given to a recurrent evaluation are an error, not silently ignored."""
    from nasp.evaluation.config import image_only_keys_given

    given = image_only_keys_given(cfg)
    if given:
        raise ConfigError(f"key '{given[0]}': applies to image networks only; a recurrent genotype is evaluated as a "
                          f"language model (its keys: rnn.*, see docs/recurrent.md)")


# --- what the run folder keeps -------------------------------------------------------------------------------------
def model_record(task: RNNEvalTask, epoch: int, state: dict[str, torch.Tensor], valid_loss: float | None) -> dict[str, Any]:
    """What ``nasp test`` needs to rebuild and score the language model: weights, genotype, config, vocabulary size."""
    return {"format": MODEL_FORMAT, "kind": "rnn", "genotype": task.genotype, "config": task.cfg.model_dump(mode="json"),
            "vocab_size": task.data.vocab_size, "epoch": epoch, "params": task.params, "valid_loss": valid_loss,
            "model": state}


class RNNEvalModels(Callback):
    """last.pt after every epoch (the trained weights), best.pt when validation improves (the weights scored:
    averaged under ASGD), result.json at the end."""

    def __init__(self, folder: RunFolder, task: RNNEvalTask) -> None:
        self.folder = folder
        self.task = task

    def on_epoch_end(self, trainer: Trainer, event: EpochEnd) -> None:
        m = event.metrics
        task = self.task
        self.folder.save_model("last", model_record(task, event.epoch, task._snapshot(), m["valid_loss"]))
        if m["best_epoch"] == event.epoch:
            self.folder.save_model("best", model_record(task, event.epoch, task.best_state, task.best_loss))

    def on_run_end(self, trainer: Trainer, event: RunEnd) -> None:
        if event.status == "finished":
            t = self.task
            self.folder.write_result({"genotype": t.genotype, "kind": "rnn", "params": t.params,
                                      "params_m": round(t.params / 1e6, 2), "epochs": t.epochs, **event.result,
                                      "dataset": t.cfg.data.name, "vocab_size": t.data.vocab_size,
                                      "device": str(t.device)})
