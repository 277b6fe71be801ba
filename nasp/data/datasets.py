"""Datasets as in-memory uint8 tensors, registered by name; batches are cut and augmented on device.

Search data sets are small (CIFAR-10's 50,000 images are 150 MB), so holding them as one tensor and
slicing batches beats a DataLoader on a 2-core machine and keeps the order exactly reproducible.

Every loader takes ``split`` ("train" or "test"): a search uses the training split only, so the test
images an evaluation reports on never steer the search. Image folders (ImageNet style) are listed,
not loaded: ``imagefolder`` returns an ImageFolderSet whose images are decoded on demand.
"""

from __future__ import annotations

import gzip
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass, field
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


Loader = Callable[..., "ImageSet | ImageFolderSet"]  # (root, split="train"); plugins may take root only
SPLITS = ("train", "test")
DATASETS: Registry[Loader] = Registry("dataset")


def register_dataset(name: str) -> Callable[[Loader], Loader]:
    """Decorator: make a loader ``(root) -> ImageSet`` available as ``data=<name>``."""
    return DATASETS.register(name)


def list_datasets() -> list[str]:
    """The image dataset names ``data=`` takes (text corpora: ``nasp.data.list_corpora``)."""
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


EMBEDDED_TRAIN = 8000  # embedded split: images 0..7999 train, 8000..9999 test (fixed, class-balanced to +-13%)


@register_dataset("embedded")
def embedded(root: Path | None = None, split: str = "train") -> ImageSet:
    """Fashion-MNIST's 10,000 test images, shipped inside the package (works offline): 8,000 train, 2,000 test."""
    folder = Path(str(resources.files("nasp.data") / "embedded")) if root is None else root
    data = _fashion(folder, "t10k", "embedded")
    part = slice(None, EMBEDDED_TRAIN) if split == "train" else slice(EMBEDDED_TRAIN, None)
    data.images, data.labels = data.images[part].contiguous(), data.labels[part].contiguous()
    return data


@register_dataset("fashion-mnist")
def fashion_mnist(root: Path | None = None, split: str = "train") -> ImageSet:
    """Fashion-MNIST from a folder (Debian: /usr/share/datasets/fashion-mnist): 60,000 train, 10,000 test."""
    return _fashion(root or Path("/usr/share/datasets/fashion-mnist"), "train" if split == "train" else "t10k",
                    "fashion-mnist")


def _torchvision(name: str, cls_name: str, root: Path | None, stats: tuple[tuple[float, ...], tuple[float, ...]],
                 train: bool = True) -> ImageSet:
    import torchvision

    folder = root or cache_dir() / name
    cls = getattr(torchvision.datasets, cls_name)
    try:
        ds = cls(str(folder), train=train, download=False)
    except RuntimeError:
        try:
            ds = cls(str(folder), train=train, download=True)
        except Exception as exc:
            raise DataError(f"{name}: not found in '{folder}' and the download failed ({type(exc).__name__}). "
                            f"Offline, put the extracted python version of {name} in that folder "
                            f"or point data.root at it") from None
    images = torch.from_numpy(np.asarray(ds.data)).permute(0, 3, 1, 2).contiguous()
    labels = torch.as_tensor(ds.targets, dtype=torch.int64)
    return ImageSet(name, images, labels, len(ds.classes), *stats, tuple(ds.classes))


@register_dataset("cifar10")
def cifar10(root: Path | None = None, split: str = "train") -> ImageSet:
    """CIFAR-10: 50,000 train, 10,000 test images (torchvision; downloads into the cache when online)."""
    return _torchvision("cifar10", "CIFAR10", root, ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
                        split == "train")


@register_dataset("cifar100")
def cifar100(root: Path | None = None, split: str = "train") -> ImageSet:
    """CIFAR-100: 50,000 train, 10,000 test images (torchvision; downloads into the cache when online)."""
    return _torchvision("cifar100", "CIFAR100", root, ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
                        split == "train")


# --- image folders (ImageNet, Tiny ImageNet) -----------------------------------------------------------
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
FOLDER_LAYOUT = "expected <root>/train/<class>/<image> and <root>/val/<class>/<image> (or test/)"


def read_image(path: Path) -> torch.Tensor:
    """One image file as uint8 (3, H, W) RGB."""
    from torchvision.io import ImageReadMode, decode_image

    try:
        return decode_image(str(path), mode=ImageReadMode.RGB)
    except (RuntimeError, OSError, ValueError) as exc:
        raise DataError(f"imagefolder: cannot decode '{path}' ({exc})") from None


@dataclass
class ImageFolderSet:
    """An ImageNet-style folder: image files and labels, decoded on demand (``images`` decodes all of them,
    for in-memory use such as a search on Tiny ImageNet; evaluation streams them instead)."""

    name: str
    root: Path
    files: list[Path]
    labels: torch.Tensor
    classes: tuple[str, ...]
    mean: tuple[float, ...] = IMAGENET_STATS[0]
    std: tuple[float, ...] = IMAGENET_STATS[1]
    _images: torch.Tensor | None = field(default=None, repr=False)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def channels(self) -> int:
        return 3

    @property
    def size(self) -> int:
        return int(read_image(self.files[0]).shape[-1])

    def __len__(self) -> int:
        return len(self.files)

    @property
    def images(self) -> torch.Tensor:
        if self._images is None:
            first = read_image(self.files[0])
            out = torch.empty((len(self.files), *first.shape), dtype=torch.uint8)
            for i, path in enumerate(self.files):
                img = first if i == 0 else read_image(path)
                if img.shape != first.shape:
                    raise DataError(f"{self.name}: '{path}' is {img.shape[2]}x{img.shape[1]}, '{self.files[0]}' is "
                                    f"{first.shape[2]}x{first.shape[1]}; holding a folder in memory needs one image "
                                    f"size (resize the images, or let `nasp eval` stream them)")
                out[i] = img
            self._images = out
        return self._images


def _images_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _class_folders(folder: Path) -> dict[str, list[Path]]:
    classes = {d.name: _images_under(d) for d in sorted(folder.iterdir()) if d.is_dir()}
    if not classes:
        raise DataError(f"imagefolder: '{folder}' has no class subfolders; {FOLDER_LAYOUT}")
    empty = [name for name, files in classes.items() if not files]
    if empty:
        raise DataError(f"imagefolder: class folder '{folder / empty[0]}' has no images "
                        f"({', '.join(IMAGE_SUFFIXES)}){f' (and {len(empty) - 1} more)' if len(empty) > 1 else ''}")
    return classes


def _annotated(folder: Path, ann: Path) -> dict[str, list[Path]]:
    """Tiny ImageNet's val/: images/ plus val_annotations.txt (file<TAB>class...)."""
    out: dict[str, list[Path]] = {}
    for n, line in enumerate(ann.read_text().splitlines(), 1):
        parts = line.split("\t")
        if len(parts) < 2:
            raise DataError(f"imagefolder: '{ann}' line {n} is not '<file><TAB><class>'")
        path = folder / "images" / parts[0]
        if not path.is_file():
            raise DataError(f"imagefolder: '{ann}' line {n} names '{path}', which does not exist")
        out.setdefault(parts[1], []).append(path)
    return out


@register_dataset("imagefolder")
def imagefolder(root: Path | None = None, split: str = "train") -> ImageFolderSet:
    """ImageNet-style folder (data.root): train/<class>/ and val/<class>/ (or test/); Tiny ImageNet as unpacked."""
    if root is None:
        raise DataError(f"imagefolder: set data.root to the dataset folder; {FOLDER_LAYOUT}")
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"imagefolder: '{root}' does not exist or is not a folder; {FOLDER_LAYOUT}")
    train_dir = root / "train"
    if not train_dir.is_dir():
        raise DataError(f"imagefolder: '{root}' has no train/ folder; {FOLDER_LAYOUT}")
    train = _class_folders(train_dir)
    classes = tuple(train)
    if split == "train":
        by_class = train
    else:
        folder = next((root / s for s in ("val", "test") if (root / s).is_dir()), None)
        if folder is None:
            raise DataError(f"imagefolder: '{root}' has no val/ or test/ folder for the test split; {FOLDER_LAYOUT}")
        ann = folder / "val_annotations.txt"
        by_class = _annotated(folder, ann) if ann.is_file() else _class_folders(folder)
        unknown = sorted(set(by_class) - set(classes))
        if unknown:
            raise DataError(f"imagefolder: '{folder}' has classes that train/ lacks: {', '.join(unknown[:5])}"
                            f"{' ...' if len(unknown) > 5 else ''}")
    index = {c: i for i, c in enumerate(classes)}
    files = [f for c in by_class for f in by_class[c]]
    labels = torch.tensor([index[c] for c in by_class for _ in by_class[c]], dtype=torch.int64)
    return ImageFolderSet("imagefolder", root, files, labels, classes)


def load_dataset(name: str, root: str | Path | None = None, split: str = "train") -> ImageSet | ImageFolderSet:
    """The ``split`` ("train" or "test") of dataset ``name``; a plugin loader without ``split`` has a train split only."""
    if split not in SPLITS:
        raise DataError(f"split '{split}' is not one of {', '.join(SPLITS)}")
    loader = DATASETS.get(name)
    path = Path(root) if root else None
    if split == "train":
        return loader(path)
    if "split" not in inspect.signature(loader).parameters:
        raise DataError(f"dataset '{name}' has no test split (its loader takes no 'split' argument)")
    return loader(path, split=split)
