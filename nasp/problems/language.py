"""Language modelling: a batch is (a window of tokens, the next tokens), the loss cross-entropy, the metric perplexity.

A search splits the corpus's training tokens in two contiguous parts (weights, architecture), as the image search
splits its images; the validation and test splits are never seen. Each part is read in order, ``bptt`` tokens at a
time in ``batch_size`` parallel streams, the hidden state carried from window to window (reset each epoch).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
import torch.nn.functional as F

from nasp import distributed
from nasp.data.corpus import TextBatches
from nasp.model.recurrent import HiddenCarry, TokenWindow
from nasp.problems.base import ClassificationProblem

Batch = tuple[TokenWindow, torch.Tensor]


class TokenStream:
    """The windows of a split (corpus.TextBatches) as TokenWindows sharing a hidden carry. Dropout masks of window i
    in an epoch are seeded by (seed, epoch, i), and the carry is part of the state, so a resumed search continues
    exactly."""

    def __init__(self, tokens: torch.Tensor, batch_size: int, bptt: int, device: torch.device, seed: int) -> None:
        part = distributed.shard(batch_size) if distributed.size() > 1 else None  # this rank's streams
        self.batches = TextBatches(tokens, batch_size, bptt, device, seed=seed, part=part)
        self.seed = seed
        self.carry = HiddenCarry()
        self._resumed = False

    def __len__(self) -> int:
        return len(self.batches)

    def epoch(self, epoch: int, shuffle: bool = True) -> Iterator[Batch]:
        """The windows of ``epoch`` in order (``shuffle=False``: a scoring pass, with a carry of its own)."""
        if not shuffle:
            carry = HiddenCarry()
        elif self._resumed:
            carry, self._resumed = self.carry, False
        else:
            carry = self.carry = HiddenCarry()
        b = self.batches
        for i, (x, y, _) in enumerate(b.epoch(epoch)):
            yield TokenWindow(x, carry, i, (self.seed * 1_000_003 + epoch) * 100_003 + i, b.part, b.batch_size), y

    def state_dict(self) -> dict[int, torch.Tensor]:
        return self.carry.state_dict()

    def load_state_dict(self, state: dict[int, torch.Tensor]) -> None:
        self.carry.load_state_dict(state, self.batches.data.device)
        self._resumed = True


class LanguageModeling(ClassificationProblem):
    """A corpus (its vocabulary and training tokens) cut into the two parts a search needs."""

    kind = "text"

    def __init__(self, vocab_size: int, train_tokens: torch.Tensor) -> None:
        self.vocab_size = vocab_size
        self.tokens = train_tokens
        self.streams: dict[str, TokenStream] = {}

    @property
    def network_shape(self) -> dict[str, Any]:
        return {"vocab_size": self.vocab_size}

    def search_batches(self, limit: int | None, train_portion: float, batch_size: int, bptt: int,
                       device: torch.device, seed: int) -> tuple[TokenStream, TokenStream]:
        """(weight-step windows, architecture-step windows) of the first ``limit`` training tokens."""
        tokens = self.tokens[:limit] if limit is not None else self.tokens
        cut = min(max(round(tokens.numel() * train_portion), 1), tokens.numel() - 1)
        parts = tokens[:cut], tokens[cut:]
        train, val = (TokenStream(p, batch_size, bptt, device, seed + i) for i, p in enumerate(parts))
        self.streams = {"train": train, "val": val}
        return train, val

    @torch.no_grad()
    def score(self, logits_of: Callable[[TokenWindow], torch.Tensor], batches: Iterable[Batch]) -> dict[str, float]:
        """Mean loss per token, next-word accuracy and perplexity of ``logits_of`` over ``batches``."""
        total_loss, correct, seen = 0.0, 0, 0
        for x, y in batches:
            logits = logits_of(x).float()
            total_loss += float(F.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(1) == y).sum())
            seen += int(y.numel())
        total_loss, correct, seen = distributed.all_sum({"loss": total_loss, "correct": correct, "seen": seen}).values()
        loss = total_loss / max(seen, 1)  # under torchrun: over every rank's streams
        return {"loss": loss, "acc": correct / max(seen, 1), "ppl": math.exp(min(loss, 50.0))}

    def state_dict(self) -> dict[str, Any]:
        return {name: stream.state_dict() for name, stream in self.streams.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, carry in state.items():
            self.streams[name].load_state_dict(carry)

    def load_rank_states(self, every: list[dict[str, Any]]) -> None:
        """Every rank's carries (``state_dict``) from a checkpoint: this rank's own on as many ranks; on another
        number, the streams of all of them put side by side and this rank's share taken."""
        self.load_state_dict({name: distributed.own_rows([e[name] for e in every]) for name in every[0]})
