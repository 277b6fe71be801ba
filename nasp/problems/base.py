"""What every problem shares: targets are class indices (images' labels, the next words), scored by cross-entropy
(the algorithms' ``loss``, nasp.model.loss.cross_entropy)."""

from __future__ import annotations

from typing import Any

import torch


class ClassificationProblem:
    """A batch is (inputs, targets): one class index per target."""

    @staticmethod
    def batch_size(batch: tuple[Any, torch.Tensor]) -> int:
        """Targets in the batch (images, or tokens of a window)."""
        return int(batch[1].numel())
