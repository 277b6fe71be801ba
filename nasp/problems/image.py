"""Image classification: a batch is (images, labels), the loss is cross-entropy, the metric accuracy."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F

from nasp import distributed
from nasp.data import Batches, ImageSet, split_indices
from nasp.problems.base import ClassificationProblem

Batch = tuple[torch.Tensor, torch.Tensor]


class ImageClassification(ClassificationProblem):
    """An in-memory image set cut into the two halves a search needs (weights, architecture)."""

    kind = "image"

    def __init__(self, data: ImageSet) -> None:
        self.data = data

    @property
    def network_shape(self) -> dict[str, Any]:
        """What a network for this problem must know of the data."""
        return {"num_classes": self.data.num_classes, "in_channels": self.data.channels}

    def search_batches(self, limit: int | None, train_portion: float, batch_size: int, device: torch.device,
                       augment: bool, seed: int, channels_last: bool) -> tuple[Batches, Batches]:
        """(weight-step batches, architecture-step batches) of a seeded split of the images."""
        train_idx, val_idx = split_indices(len(self.data), limit, train_portion, seed)
        augment = augment and self.data.channels == 3
        train = Batches(self.data, train_idx, batch_size, device, augment, seed, channels_last)
        val = Batches(self.data, val_idx, batch_size, device, False, seed + 1, channels_last)
        return train, val

    @torch.no_grad()
    def score(self, logits_of: Callable[[torch.Tensor], torch.Tensor], batches: Iterable[Batch]) -> dict[str, float]:
        """Mean loss and accuracy of ``logits_of`` over ``batches`` (under torchrun: over every rank's share)."""
        total_loss, correct, seen = 0.0, 0, 0
        for x, y in batches:
            if not len(y):  # a rank's share of a last, small batch
                continue
            logits = logits_of(x).float()
            total_loss += float(F.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(1) == y).sum())
            seen += int(y.shape[0])
        total_loss, correct, seen = distributed.all_sum({"loss": total_loss, "correct": correct, "seen": seen}).values()
        return {"loss": total_loss / max(seen, 1), "acc": correct / max(seen, 1)}
