"""Evaluation data: the training split as reproducible augmented batches, the test split in order.

In-memory sets (CIFAR, Fashion-MNIST, the embedded set) are cut into batches on the device with
``nasp.data.Batches`` (pad-4 random crop and flip); image folders are decoded and augmented by
DataLoader workers into pinned uint8 batches. Either way the order of an epoch comes from
(seed, epoch), each image's augmentation from (seed, epoch, position) and cutout from
(seed, epoch, step), so a resumed run sees exactly the batches an uninterrupted one sees.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from nasp import distributed
from nasp.data import Batches
from nasp.data.datasets import ImageFolderSet, ImageSet, load_dataset, read_image
from nasp.errors import ConfigError, DataError
from nasp.evaluation.config import EvalConfig

Batch = tuple[torch.Tensor, torch.Tensor]


def derive_seed(*parts: int) -> int:
    """One 63-bit seed from (seed, epoch, step, ...): the same parts give the same seed in every process."""
    h = 0x9E3779B97F4A7C15
    for p in parts:
        h = (h ^ (int(p) + 0x9E3779B97F4A7C15 + (h << 6) + (h >> 2))) & 0xFFFFFFFFFFFFFFFF
        h = (h * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    return h >> 1


def cutout(x: torch.Tensor, length: int, gen: torch.Generator, part: slice = slice(None),
           total: int | None = None) -> torch.Tensor:
    """DARTS's cutout: per image, zero a length x length square (clipped at the border) centred on a random pixel.
    Applied to normalised images, as DARTS does, so the square holds the mean colour. ``x`` may be the rows
    ``part`` of a batch of ``total`` images (a rank's share): the draws are the whole batch's."""
    n, _, h, w = x.shape
    total = n if total is None else total
    cy = torch.randint(0, h, (total, 1), generator=gen)[part]
    cx = torch.randint(0, w, (total, 1), generator=gen)[part]
    ys, xs = torch.arange(h)[None], torch.arange(w)[None]
    rows = (ys >= cy - length // 2) & (ys < cy + length // 2)
    cols = (xs >= cx - length // 2) & (xs < cx + length // 2)
    keep = ~(rows[:, :, None] & cols[:, None, :])
    return x * keep[:, None].to(device=x.device, dtype=x.dtype)


# --- per-image transforms of image folders (uint8 CHW tensors, parameters from a generator) -----------------
def _uniform(gen: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=gen))


def _random_resized_crop(img: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """torchvision's RandomResizedCrop (scale 0.08-1, ratio 3/4-4/3) with a given generator."""
    from torchvision.transforms.v2 import functional as TF

    _, h, w = img.shape
    area = h * w
    for _ in range(10):
        target = area * _uniform(gen, 0.08, 1.0)
        ratio = math.exp(_uniform(gen, math.log(3 / 4), math.log(4 / 3)))
        cw, ch = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
        if 0 < cw <= w and 0 < ch <= h:
            top = int(torch.randint(0, h - ch + 1, (), generator=gen))
            left = int(torch.randint(0, w - cw + 1, (), generator=gen))
            return TF.resized_crop(img, top, left, ch, cw, [size, size], antialias=True)
    side = min(h, w)
    return TF.resized_crop(img, (h - side) // 2, (w - side) // 2, side, side, [size, size], antialias=True)


def _color_jitter(img: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """DARTS ImageNet's ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.2), in a random order."""
    from torchvision.transforms.v2 import functional as TF

    ops = [(TF.adjust_brightness, _uniform(gen, 0.6, 1.4)), (TF.adjust_contrast, _uniform(gen, 0.6, 1.4)),
           (TF.adjust_saturation, _uniform(gen, 0.6, 1.4)), (TF.adjust_hue, _uniform(gen, -0.2, 0.2))]
    for k in torch.randperm(4, generator=gen).tolist():
        fn, factor = ops[k]
        img = fn(img, factor)
    return img


def _resize_center(img: torch.Tensor, resize: int, size: int) -> torch.Tensor:
    from torchvision.transforms.v2 import functional as TF

    if min(img.shape[-2:]) != resize:
        img = TF.resize(img, [resize], antialias=True)
    return TF.center_crop(img, [size, size])


def folder_transform(img: torch.Tensor, mode: str, size: int, gen: torch.Generator | None) -> torch.Tensor:
    """imagenet: random resized crop, flip, colour jitter; crop_flip: pad size/8, random crop, flip; none;
    test (gen None): resize the shorter side (to size/0.875 for imagenet) and crop the centre."""
    from torchvision.transforms.v2 import functional as TF

    if gen is None or mode == "none":
        return _resize_center(img, round(size / 0.875) if mode == "imagenet" else size, size)
    if mode == "imagenet":
        img = _random_resized_crop(img, size, gen)
        if float(torch.rand((), generator=gen)) < 0.5:
            img = TF.horizontal_flip(img)
        return _color_jitter(img, gen)
    img = _resize_center(img, size, size)
    pad = max(size // 8, 1)
    img = torch.nn.functional.pad(img, (pad, pad, pad, pad))
    dy, dx = torch.randint(0, 2 * pad + 1, (2,), generator=gen).tolist()
    img = img[:, dy:dy + size, dx:dx + size]
    if float(torch.rand((), generator=gen)) < 0.5:
        img = TF.horizontal_flip(img)
    return img.contiguous()


class FolderImages(Dataset):
    """Items are (index, seed) pairs: the seed drives that image's augmentation (None: test transform)."""

    def __init__(self, data: ImageFolderSet, mode: str, size: int) -> None:
        self.data, self.mode, self.size = data, mode, size

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, item: tuple[int, int | None]) -> tuple[torch.Tensor, int]:
        i, seed = item
        gen = None if seed is None else torch.Generator().manual_seed(seed)
        img = folder_transform(read_image(self.data.files[i]), self.mode, self.size, gen)
        return img, int(self.data.labels[i])


class EpochBatches(Sampler[list[tuple[int, int | None]]]):
    """Batches of (index, seed): the order of epoch e from (seed, e), resumable at any step."""

    def __init__(self, indices: torch.Tensor, batch_size: int, seed: int, train: bool) -> None:
        self.indices, self.batch_size, self.seed, self.train = indices, batch_size, seed, train
        self.epoch, self.start = 0, 0
        if train:
            distributed.check_batch(batch_size)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def __len__(self) -> int:
        n = len(self.indices)
        return n // self.batch_size if self.train else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[list[tuple[int, int | None]]]:
        if self.train:
            gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = self.indices[torch.randperm(len(self.indices), generator=gen)].tolist()
        else:
            order = self.indices.tolist()
        for b in range(self.start, len(self)):
            pos = range(b * self.batch_size, min((b + 1) * self.batch_size, len(order)))
            pos = pos[distributed.shard(len(pos))]  # under torchrun: this rank's share
            if not len(pos):  # (of a last test batch smaller than the ranks)
                continue
            yield [(order[p], derive_seed(self.seed, self.epoch, p) if self.train else None) for p in pos]


def _clean_worker_error(exc: DataError) -> DataError:
    """A DataError raised in a loader worker arrives wrapped in a traceback; keep the user's message."""
    found = re.findall(r"DataError: (.+)", str(exc))
    return DataError(found[-1]) if found else exc


@dataclass
class EvalData:
    """The training batches (an epoch from any step) and the test batches of one dataset, with its shape."""

    name: str
    num_classes: int
    channels: int
    image_size: int
    train_images: int
    test_images: int
    steps_per_epoch: int
    source: Any
    test_source: Any
    cutout: int
    seed: int
    device: torch.device
    channels_last: bool
    source_stats: tuple[tuple[float, ...], tuple[float, ...]] = ((0.0,), (1.0,))  # image folders: mean, std

    def train_epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        """Normalised, augmented batches of epoch ``epoch`` from step ``start`` on (on the device)."""
        for step, (x, y) in enumerate(self._raw_train(epoch, start), start):
            if self.cutout > 0:
                total = len(x) * distributed.size()  # training shares are equal
                x = cutout(x, self.cutout, torch.Generator().manual_seed(derive_seed(self.seed, epoch, step, 1)),
                           distributed.shard(total), total)
            yield x, y

    def _raw_train(self, epoch: int, start: int) -> Iterator[Batch]:
        if isinstance(self.source, Batches):
            for step, batch in enumerate(self.source.epoch(epoch)):
                if step >= start:  # earlier batches are still made: their augmentation advances the generator
                    yield batch
            return
        self.source.batch_sampler.set_epoch(epoch, start)
        yield from self._from_loader(self.source)

    def test_batches(self) -> Iterator[Batch]:
        if isinstance(self.test_source, Batches):
            yield from self.test_source.epoch(0, shuffle=False)
        else:
            yield from self._from_loader(self.test_source)

    def _from_loader(self, loader: DataLoader) -> Iterator[Batch]:
        mean = torch.tensor(self.source_stats[0], device=self.device).view(1, -1, 1, 1)
        std = torch.tensor(self.source_stats[1], device=self.device).view(1, -1, 1, 1)
        it = iter(loader)
        while True:
            try:
                x, y = next(it)
            except StopIteration:
                return
            except DataError as exc:
                raise _clean_worker_error(exc) from None
            x = x.to(self.device, non_blocking=True).float().div_(255).sub_(mean).div_(std)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, y.to(self.device, non_blocking=True)


def _subset(n: int, limit: int | None, seed: int) -> torch.Tensor:
    if limit is None or limit >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:limit].sort().values


def _load(cfg: EvalConfig, split: str) -> ImageSet | ImageFolderSet:
    """Under torchrun rank 0 downloads or builds it first, the others then read it (no concurrent writes)."""
    return distributed.prepare_first(lambda: load_dataset(cfg.data.name, cfg.data.root, split))


def _on_device(data: ImageSet, device: torch.device) -> ImageSet:
    if device.type == "cpu":
        return data
    return replace(data, images=data.images.to(device), labels=data.labels.to(device))


def folder_image_size(cfg: EvalConfig, data: ImageFolderSet) -> int:
    if cfg.data.image_size is not None:
        return cfg.data.image_size
    _, h, w = read_image(data.files[0]).shape
    return max(h, w) if max(h, w) <= 64 else 224


def build_eval_data(cfg: EvalConfig, device: torch.device, channels_last: bool, train: bool = True) -> EvalData:
    """Both splits of ``cfg.data`` as reproducible batches (``train=False``: the test split only, for `nasp test`)."""
    test = _load(cfg, "test")
    train_set = _load(cfg, "train") if train else test
    train_idx = _subset(len(train_set), cfg.data.limit, cfg.seed) if train else torch.arange(0)
    test_idx = torch.arange(min(len(test), cfg.data.test_limit or len(test)))
    if train and len(train_idx) < cfg.batch_size:
        raise ConfigError(f"key 'batch_size': {cfg.batch_size} is more than the {len(train_idx)} training images")
    common: dict[str, Any] = dict(
        name=cfg.data.name, num_classes=train_set.num_classes, channels=train_set.channels, cutout=cfg.data.cutout,
        seed=cfg.seed, device=device, channels_last=channels_last, train_images=len(train_idx),
        test_images=len(test_idx), steps_per_epoch=len(train_idx) // cfg.batch_size)
    if isinstance(test, ImageFolderSet):
        assert isinstance(train_set, ImageFolderSet)
        size = folder_image_size(cfg, train_set)
        mode = cfg.data.augment if cfg.data.augment != "auto" else ("imagenet" if size > 64 else "crop_flip")
        workers = cfg.data.workers if cfg.data.workers is not None else min(8, os.cpu_count() or 1)
        kw: dict[str, Any] = dict(num_workers=workers, pin_memory=device.type == "cuda", persistent_workers=workers > 0)
        if workers:
            kw["prefetch_factor"] = 4
        source = None
        if train:
            source = DataLoader(FolderImages(train_set, mode, size),
                                batch_sampler=EpochBatches(train_idx, cfg.batch_size, cfg.seed, True), **kw)
        test_source = DataLoader(FolderImages(test, "imagenet" if mode == "imagenet" else "crop_flip", size),
                                 batch_sampler=EpochBatches(test_idx, cfg.test_batch_size, cfg.seed, False), **kw)
        return EvalData(image_size=size, source=source, test_source=test_source, source_stats=(test.mean, test.std),
                        **common)
    if cfg.data.augment == "imagenet":
        raise ConfigError(f"key 'data.augment': 'imagenet' needs an image folder (data=imagefolder); "
                          f"use crop_flip or none for {cfg.data.name}")
    augment = cfg.data.augment in ("auto", "crop_flip")
    source = Batches(_on_device(train_set, device), train_idx, cfg.batch_size, device, augment, cfg.seed,
                     channels_last) if train else None
    test_source = Batches(_on_device(test, device), test_idx, cfg.test_batch_size, device, False, cfg.seed, channels_last,
                          key=None)
    return EvalData(image_size=test.size, source=source, test_source=test_source, **common)
