"""Seeded splits and batches of an ImageSet, normalised and augmented as tensors."""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F

from nasp import distributed
from nasp.data.datasets import ImageSet


def split_indices(n: int, limit: int | None, train_portion: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded permutation of the images, capped at ``limit``, cut into (train, val)."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    if limit is not None:
        perm = perm[: min(limit, n)]
    cut = round(len(perm) * train_portion)
    cut = min(max(cut, 1), len(perm) - 1)
    return perm[:cut], perm[cut:]


class Batches:
    """Batches of a subset, reshuffled each epoch from (seed, epoch) so a resumed run sees the
    same batches as an uninterrupted one. Under torchrun each rank makes its share of every global batch
    (the same images and augmentation a single process gives those rows); ``key`` names the batch size
    that must split evenly over the ranks (None: scoring batches, which may split unevenly)."""

    def __init__(self, data: ImageSet, indices: torch.Tensor, batch_size: int, device: torch.device,
                 augment: bool = False, seed: int = 0, channels_last: bool = False,
                 key: str | None = "batch_size") -> None:
        self.data = data
        self.indices = indices
        self.batch_size = min(batch_size, len(indices))
        self.device = device
        self.augment = augment
        self.seed = seed
        self.channels_last = channels_last
        self.mean = torch.tensor(data.mean, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(data.std, device=device).view(1, -1, 1, 1)
        if key is not None:
            distributed.check_batch(self.batch_size, key)

    def __len__(self) -> int:
        return len(self.indices) // self.batch_size

    def epoch(self, epoch: int, shuffle: bool = True) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        gen = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        order = self.indices[torch.randperm(len(self.indices), generator=gen)] if shuffle else self.indices
        n = len(order) // self.batch_size if shuffle else -(-len(order) // self.batch_size)
        for b in range(n):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield self.make(idx, gen if self.augment else None)

    def make(self, idx: torch.Tensor, gen: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        rows = distributed.shard(len(idx))
        total, idx = len(idx), idx[rows]
        x = self.data.images[idx].to(self.device, non_blocking=True).float().div_(255)
        if gen is not None:
            x = random_crop_flip(x, gen, part=rows, total=total)
        x = (x - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, self.data.labels[idx].to(self.device, non_blocking=True)


def random_crop_flip(x: torch.Tensor, gen: torch.Generator, pad: int = 4, part: slice = slice(None),
                     total: int | None = None) -> torch.Tensor:
    """Random crop after zero padding, and horizontal flip, per image (the standard CIFAR recipe). ``x`` may
    be the rows ``part`` of a batch of ``total`` images: the draws are the whole batch's, each row keeps its own."""
    n, _, h, w = x.shape
    total = n if total is None else total
    padded = F.pad(x, (pad, pad, pad, pad))
    dx = torch.randint(0, 2 * pad + 1, (total,), generator=gen)[part].tolist()
    dy = torch.randint(0, 2 * pad + 1, (total,), generator=gen)[part].tolist()
    flip = (torch.rand(total, generator=gen) < 0.5)[part].tolist()
    out = torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
    if any(flip):
        f = torch.tensor(flip, device=x.device)
        out[f] = out[f].flip(-1)
    return out
