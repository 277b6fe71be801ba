"""Datasets as in-memory uint8 tensors, registered by name; batches are cut and augmented on device.

Search data sets are small (CIFAR-10's 50,000 images are 150 MB), so holding them as one tensor and
slicing batches beats a DataLoader on a 2-core machine and keeps the order exactly reproducible.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from nasp.errors import DataError
from nasp.registry import Registry


@dataclass
class ImageSet:
    """Images (N, C, H, W) uint8, labels (N,) int64, and how to normalise them."""

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: tuple[str, ...] = ()

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def size(self) -> int:
        return int(self.images.shape[-1])

    def __len__(self) -> int:
        return int(self.labels.shape[0])


Loader = Callable[[Path | None], ImageSet]
DATASETS: Registry[Loader] = Registry("dataset")


def register_dataset(name: str) -> Callable[[Loader], Loader]:
    return DATASETS.register(name)


def list_datasets() -> list[str]:
    return DATASETS.names()


def cache_dir() -> Path:
    return Path(os.environ.get("NASP_DATA", Path.home() / ".cache" / "nasp" / "data"))


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (MNIST's format), gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read '{path}': {exc}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"'{path}' is not an IDX file")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DataError(f"'{path}' is truncated: {body.size} bytes for shape {dims}")
    return body.reshape(dims)


FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")
FASHION_STATS = ((0.2860,), (0.3530,))


def _fashion(folder: Path, split: str, name: str) -> ImageSet:
    found = {}
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        for suffix in (".gz", ""):
            p = folder / f"{split}-{kind}{suffix}"
            if p.is_file():
                found[kind] = p
                break
        else:
            raise DataError(f"{name}: '{folder / f'{split}-{kind}.gz'}' is missing. Fashion-MNIST's IDX files "
                            f"belong there (Debian: apt-get install dataset-fashion-mnist; or set data.root)")
    images = read_idx(found["images-idx3-ubyte"])
    labels = read_idx(found["labels-idx1-ubyte"])
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise DataError(f"{name}: images {images.shape} and labels {labels.shape} in '{folder}' do not match")
    return ImageSet(name, torch.from_numpy(images.copy())[:, None], torch.from_numpy(labels.astype(np.int64)), 10,
                    *FASHION_STATS, FASHION_CLASSES)


@register_dataset("embedded")
def embedded(root: Path | None = None) -> ImageSet:
    """Fashion-MNIST's 10,000 test images, shipped inside the package (works offline)."""
    folder = Path(str(resources.files("nasp.data") / "embedded")) if root is None else root
    return _fashion(folder, "t10k", "embedded")


@register_dataset("fashion-mnist")
def fashion_mnist(root: Path | None = None) -> ImageSet:
    """Fashion-MNIST's 60,000 training images from a folder (Debian: /usr/share/datasets/fashion-mnist)."""
    return _fashion(root or Path("/usr/share/datasets/fashion-mnist"), "train", "fashion-mnist")


def _torchvision(name: str, cls_name: str, root: Path | None, stats: tuple[tuple[float, ...], tuple[float, ...]]) -> ImageSet:
    import torchvision

    folder = root or cache_dir() / name
    cls = getattr(torchvision.datasets, cls_name)
    try:
        ds = cls(str(folder), train=True, download=False)
    except RuntimeError:
        try:
            ds = cls(str(folder), train=True, download=True)
        except Exception as exc:
            raise DataError(f"{name}: not found in '{folder}' and the download failed ({type(exc).__name__}). "
                            f"Offline, put the extracted python version of {name} in that folder "
                            f"or point data.root at it") from None
    images = torch.from_numpy(np.asarray(ds.data)).permute(0, 3, 1, 2).contiguous()
    labels = torch.as_tensor(ds.targets, dtype=torch.int64)
    return ImageSet(name, images, labels, len(ds.classes), *stats, tuple(ds.classes))


@register_dataset("cifar10")
def cifar10(root: Path | None = None) -> ImageSet:
    """CIFAR-10's 50,000 training images (torchvision; downloads into the cache when online)."""
    return _torchvision("cifar10", "CIFAR10", root, ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)))


@register_dataset("cifar100")
def cifar100(root: Path | None = None) -> ImageSet:
    """CIFAR-100's 50,000 training images (torchvision; downloads into the cache when online)."""
    return _torchvision("cifar100", "CIFAR100", root, ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)))


def load_dataset(name: str, root: str | Path | None = None) -> ImageSet:
    loader = DATASETS.get(name)
    return loader(Path(root) if root else None)
