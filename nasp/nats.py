"""The NAS-Bench-201 table looked up: a cell's tabulated accuracies from NATS-Bench's topology files.

NATS-Bench ships the table as a folder (``NATS-tss-v1_0-3ffb9-simple``) of bz2-compressed pickles: ``meta.pickle.pbz2``
(``meta_archs``: the 15,625 architecture strings, by index) and one ``<index:06d>.pickle.pbz2`` per cell, a mapping
from the training budget ('12', '200' epochs) to that cell's results: ``all_results[(dataset, seed)]`` with
``eval_acc1es['<set>@<epoch>']`` for each evaluation set, and ``dataset_seed[dataset]`` the seeds trained.

A pickle can hold any Python call; these are read with a restricted unpickler that runs nothing a file holds: the
only globals it resolves are ``collections.OrderedDict`` (an empty container, filled item by item) and NumPy's
scalar and dtype, which it replaces with its own decoders of a few fixed-size number formats (``struct``). Any other
global, any oversized file, anything not of the expected shape is one ``DataError`` line naming the file.
"""

from __future__ import annotations

import bz2
import collections
import io
import os
import pickle
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from nasp.errors import DataError, FileRefusedError
from nasp.safe_io import read_bounded

ENV = "NASP_BENCH201"
SUFFIX = ".pickle.pbz2"
FOLDER_GLOB = "NATS-tss-v1_0-*-simple"
MAX_FILE = 64 << 20  # compressed; the meta file is about 35 kB, a cell's file about 85 kB
MAX_PICKLE = 256 << 20  # decompressed
# the benchmark's own split of each dataset (NAS-Bench-201, Table 3): where its test and validation numbers live
TEST_SET = {"cifar10": ("cifar10", "ori-test"), "cifar100": ("cifar100", "x-test"),
            "ImageNet16-120": ("ImageNet16-120", "x-test")}
VALID_SET = {"cifar10": ("cifar10-valid", "x-valid"), "cifar100": ("cifar100", "x-valid"),
             "ImageNet16-120": ("ImageNet16-120", "x-valid")}
DATASETS = tuple(TEST_SET)
_NUMPY_TYPES = {"f8": "d", "f4": "f", "i8": "q", "i4": "i", "u8": "Q", "u4": "I", "b1": "?"}


class _DType:
    """Stands in for ``numpy.dtype(name, align, copy)``: keeps the name and byte order, nothing else."""

    def __init__(self, name: object = None, *_: object) -> None:
        if not isinstance(name, str) or name not in _NUMPY_TYPES:
            raise pickle.UnpicklingError(f"a NumPy dtype {name!r:.20} (only {', '.join(_NUMPY_TYPES)} are read)")
        self.code = _NUMPY_TYPES[name]
        self.order = "<"

    def __setstate__(self, state: object) -> None:
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">", "|", "="):
            self.order = "<" if state[1] in ("|", "=") else state[1]


def _scalar(dtype: object, data: object = None) -> float | int | bool:
    """Stands in for ``numpy.core.multiarray.scalar(dtype, bytes)``: the number those bytes hold."""
    if not isinstance(dtype, _DType) or not isinstance(data, bytes) or len(data) != struct.calcsize(dtype.code):
        raise pickle.UnpicklingError("a NumPy scalar that is not a plain number")
    return struct.unpack(dtype.order + dtype.code, data)[0]


_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("numpy", "dtype"): _DType,
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy._core.multiarray", "scalar"): _scalar,
}


class _TableUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        found = _ALLOWED.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(f"it names {module[:60]}.{name[:60]}, which a table file has no need of")
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("it holds persistent references")


def read_table_file(path: Path) -> Any:
    """The contents of one bz2-compressed pickle of the benchmark, read with the restricted unpickler (the file
    through ``nasp.safe_io``: a regular file, bounded; decompressed to a bound)."""
    where = f"NAS-Bench-201 file '{path}'"
    if not path.exists():
        raise DataError(f"{where} does not exist")
    try:
        packed = read_bounded(path, MAX_FILE, follow=True)  # the user names the folder: a link to it is theirs
    except FileRefusedError as exc:
        raise DataError(f"{where}: {exc}") from None
    except OSError as exc:
        raise DataError(f"{where} cannot be read: {exc.strerror or exc}") from None
    try:
        unpacker = bz2.BZ2Decompressor()
        data = unpacker.decompress(packed, MAX_PICKLE + 1)
    except (OSError, ValueError) as exc:  # not bz2 data
        raise DataError(f"{where} cannot be read as bz2 data: {exc}") from None
    if len(data) > MAX_PICKLE:
        raise DataError(f"{where} holds more than {MAX_PICKLE} bytes once decompressed; a table file holds less")
    if not unpacker.eof:
        raise DataError(f"{where} is cut short (bz2 data ends early)")
    try:
        return _TableUnpickler(io.BytesIO(data)).load()
    except pickle.UnpicklingError as exc:
        raise DataError(f"{where} is not a table file of the benchmark: {exc}") from None
    except Exception as exc:  # a malformed pickle: any error of the pickle machine itself
        raise DataError(f"{where} is not a readable pickle ({type(exc).__name__}: {' '.join(str(exc).split())[:120]})"
                        ) from None


def find_folder(root: str | Path) -> Path:
    """The benchmark's folder: ``root`` itself when it holds ``meta.pickle.pbz2``, else its one
    ``NATS-tss-v1_0-*-simple`` subfolder (``root`` may be $TORCH_HOME)."""
    root = Path(root).expanduser()
    if (root / f"meta{SUFFIX}").exists():  # the reader says why when it is not a regular file
        return root
    if not root.is_dir():
        raise DataError(f"bench201.root '{root}' is not a folder; give the NATS-Bench topology folder "
                        f"(NATS-tss-v1_0-3ffb9-simple, see docs/nb201.md)")
    found = sorted(p for p in root.glob(FOLDER_GLOB) if (p / f"meta{SUFFIX}").is_file())
    if not found:
        raise DataError(f"bench201.root '{root}' holds no meta{SUFFIX} and no {FOLDER_GLOB} folder with one "
                        f"(see docs/nb201.md for getting the files)")
    return found[-1]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class Bench201:
    """The benchmark's table in ``folder``: architecture strings by index, each cell's file read when asked."""

    folder: Path
    archs: dict[str, int]

    @classmethod
    def open(cls, root: str | Path) -> Bench201:
        folder = find_folder(root)
        meta = read_table_file(folder / f"meta{SUFFIX}")
        archs = meta.get("meta_archs") if isinstance(meta, dict) else None
        if not isinstance(archs, list) or not all(isinstance(a, str) for a in archs):
            raise DataError(f"NAS-Bench-201 file '{folder / f'meta{SUFFIX}'}' has no list of architecture strings "
                            f"'meta_archs'")
        return cls(folder, {a: i for i, a in enumerate(archs)})

    def index(self, arch: str) -> int | None:
        return self.archs.get(arch)

    def results(self, index: int, epochs: int = 200) -> dict[str, Any]:
        """The results of cell ``index`` for the training budget of ``epochs`` (the benchmark's 200 or 12)."""
        path = self.folder / f"{index:06d}{SUFFIX}"
        data = _read_cached(path)
        hp = data.get(str(epochs)) if isinstance(data, dict) else None
        if not isinstance(hp, dict) or not isinstance(hp.get("all_results"), dict):
            raise DataError(f"NAS-Bench-201 file '{path}' has no results for {epochs} epochs")
        return hp

    def accuracy(self, arch: str, dataset: str = "cifar10", which: str = "test", epochs: int = 200) -> float | None:
        """The tabulated accuracy (%) of ``arch`` after its last epoch, averaged over the benchmark's seeds, on the
        test or validation set of ``dataset`` as the benchmark splits it; None when ``arch`` is not in the table."""
        index = self.index(arch)
        if index is None:
            return None
        hp = self.results(index, epochs)
        name, split = (TEST_SET if which == "test" else VALID_SET)[dataset]
        seeds = hp.get("dataset_seed", {}).get(name) if isinstance(hp.get("dataset_seed"), dict) else None
        accs = []
        for seed in seeds if isinstance(seeds, list) else []:
            run = hp["all_results"].get((name, seed))
            evals = run.get("eval_acc1es") if isinstance(run, dict) else None
            last = run.get("epochs") if isinstance(run, dict) else None
            value = evals.get(f"{split}@{int(last) - 1}") if isinstance(evals, dict) and _number(last) else None
            if _number(value) is not None:
                accs.append(float(value))
        if not accs:
            raise DataError(f"NAS-Bench-201 file '{self.folder / f'{index:06d}{SUFFIX}'}' has no {split} accuracy of "
                            f"{name} after {epochs} epochs")
        return sum(accs) / len(accs)


@lru_cache(maxsize=64)
def _read_cached(path: Path) -> Any:
    return read_table_file(path)


def bench201_root(configured: str | None) -> str | None:
    """Where the benchmark is: the ``bench201.root`` key, else $NASP_BENCH201, else None (no lookup)."""
    return configured or os.environ.get(ENV) or None
