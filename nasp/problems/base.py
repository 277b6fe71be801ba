"""What every problem shares: targets are class indices (images' labels, the next words), the loss is cross-entropy."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from nasp.model.search import upcast


class ClassificationProblem:
    """A batch is (inputs, targets): one class index per target, scored by cross-entropy."""

    @staticmethod
    def loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(upcast(logits), y)

    @staticmethod
    def batch_size(batch: tuple[Any, torch.Tensor]) -> int:
        """Targets in the batch (images, or tokens of a window)."""
        return int(batch[1].numel())
