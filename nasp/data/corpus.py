"""Text corpora for language models (PTB, WikiText-2, the embedded one) as token tensors, and their windows.

A corpus is three splits of whitespace-separated words with ``<eos>`` at each line end, the rule of DARTS's
and AWD-LSTM's ``data.py``; word ids are given in order of first appearance over train, valid, test, as
theirs are, so a model trained here and there sees the same ids. Reading and numbering a corpus takes
seconds, so the result is cached (under ``cache_dir()/corpus``), keyed by the files' paths, sizes and
modification times; a cache file that does not fit (another key, a damaged file, foreign contents) is
rebuilt, never trusted: it is loaded with ``weights_only=True`` and checked.

Training reads a split as ``batchify``'s (steps, batch) matrix in windows of ``bptt`` steps (DARTS's
``get_batch``): fixed windows for a search and for scoring, DARTS's variable windows for evaluation
training. The windows of an epoch derive from (seed, epoch) alone, so a resumed run takes the same ones.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from nasp.data.datasets import cache_dir
from nasp.errors import DataError
from nasp.registry import Registry

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
EOS = "<eos>"
CACHE_FORMAT = "nasp-corpus/1"


@dataclass
class Corpus:
    """A vocabulary (index -> word) and the three splits as 1-D int64 tensors of word ids."""

    name: str
    vocab: list[str]
    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def split(self, name: str) -> torch.Tensor:
        if name not in SPLITS:
            raise DataError(f"split '{name}' is not one of {', '.join(SPLITS)}")
        return getattr(self, name)


CorpusLoader = Callable[[Path | None], Corpus]
CORPORA: Registry[CorpusLoader] = Registry("corpus")


def register_corpus(name: str) -> Callable[[CorpusLoader], CorpusLoader]:
    """``@register_corpus("name")`` on a function ``(root: Path | None) -> Corpus`` makes ``data=name`` a corpus."""
    return CORPORA.register(name)


def list_corpora() -> list[str]:
    return CORPORA.names()


def load_corpus(name: str, root: str | Path | None = None) -> Corpus:
    """Corpus ``name`` (from ``root`` when given, else its loader's default folder)."""
    return CORPORA.get(name)(Path(root) if root else None)


# --- reading -----------------------------------------------------------------------------------------------
def read_text(path: Path, name: str) -> str:
    """A corpus file as text (gunzipped when it ends in .gz); DataError for an unreadable, binary,
    non-UTF-8 or empty file."""
    try:
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{name}: cannot read '{path}': {getattr(exc, 'strerror', None) or exc}") from None
    if b"\x00" in data[:1 << 16]:
        raise DataError(f"{name}: '{path}' is a binary file, not text (a corpus file is words separated by spaces)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{name}: '{path}' is not UTF-8 text (byte {exc.start}: {data[exc.start:exc.start + 1]!r})") \
            from None
    if not text.split():
        raise DataError(f"{name}: '{path}' is empty (no words)")
    return text


def lines_of(text: str) -> list[str]:
    """Lines as Python's text files yield them (universal newlines), without the terminators."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def tokenize(texts: list[str]) -> tuple[list[str], list[torch.Tensor]]:
    """(vocabulary, one id tensor per text): words split on whitespace, ``<eos>`` after each line, ids in order of
    first appearance (DARTS's Dictionary)."""
    index: dict[str, int] = {}
    vocab: list[str] = []
    out = []
    for text in texts:
        ids: list[int] = []
        for line in lines_of(text):
            for word in [*line.split(), EOS]:
                i = index.get(word)
                if i is None:
                    i = index[word] = len(vocab)
                    vocab.append(word)
                ids.append(i)
        out.append(torch.tensor(ids, dtype=torch.int64))
    return vocab, out


# --- cache -------------------------------------------------------------------------------------------------
def cache_key(name: str, files: dict[str, Path]) -> str:
    """Changes when a file is replaced, edited or touched: paths, sizes and modification times."""
    h = hashlib.sha256(f"{CACHE_FORMAT}\n{name}".encode())
    for split in SPLITS:
        st = files[split].stat()
        h.update(f"\n{split}\t{files[split].resolve()}\t{st.st_size}\t{st.st_mtime_ns}".encode())
    return h.hexdigest()


def cache_path(name: str, key: str) -> Path:
    return cache_dir() / "corpus" / f"{name}-{key[:20]}.pt"


def _from_cache(path: Path, name: str, key: str) -> Corpus | None:
    """The cached corpus when ``path`` holds exactly one for ``key``, else None (the caller rebuilds it)."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # damaged, truncated or foreign: rebuilt
        return None
    if not isinstance(state, dict) or state.get("format") != CACHE_FORMAT or state.get("key") != key:
        return None
    vocab = state.get("vocab")
    if not isinstance(vocab, list) or not vocab or not all(isinstance(w, str) for w in vocab):
        return None
    splits = [state.get(s) for s in SPLITS]
    for t in splits:
        if not isinstance(t, torch.Tensor) or t.dtype != torch.int64 or t.ndim != 1 or t.numel() == 0:
            return None
        if int(t.min()) < 0 or int(t.max()) >= len(vocab):
            return None
    return Corpus(name, vocab, *splits)


def _to_cache(path: Path, corpus: Corpus, key: str) -> None:
    """Write the cache atomically; a cache that cannot be written (read-only home) is only slower next time."""
    from nasp.runfolder import RunFolderError, atomic_write_bytes

    buf = io.BytesIO()
    torch.save({"format": CACHE_FORMAT, "key": key, "vocab": corpus.vocab,
                **{s: corpus.split(s) for s in SPLITS}}, buf)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buf.getvalue())
    except (OSError, RunFolderError):
        pass


def read_corpus(name: str, files: dict[str, Path], cache: bool = True) -> Corpus:
    """The corpus in ``files`` (split -> path), from the cache when it is current, else read and cached."""
    key = cache_key(name, files)
    path = cache_path(name, key)
    if cache:
        found = _from_cache(path, name, key)
        if found is not None:
            return found
    if cache:
        log.info("building the cache of %s in %s (once; later runs read it)", name, path.parent)
    vocab, ids = tokenize([read_text(files[s], name) for s in SPLITS])
    corpus = Corpus(name, vocab, *ids)
    if cache:
        _to_cache(path, corpus, key)
    return corpus


def corpus_files(name: str, folder: Path, candidates: dict[str, tuple[str, ...]], hint: str) -> dict[str, Path]:
    """split -> the first existing file of ``candidates[split]`` in ``folder``; DataError naming what is missing."""
    if not folder.exists():
        raise DataError(f"{name}: folder '{folder}' does not exist; {hint}")
    if not folder.is_dir():
        raise DataError(f"{name}: '{folder}' is not a folder; {hint}")
    out = {}
    for split in SPLITS:
        found = next((folder / c for c in candidates[split] if (folder / c).is_file()), None)
        if found is None:
            raise DataError(f"{name}: '{folder / candidates[split][0]}' is missing; {hint}")
        out[split] = found
    return out


# --- the built-in corpora ------------------------------------------------------------------------------------
PTB_HINT = ("data.root must hold Mikolov's PTB: ptb.train.txt, ptb.valid.txt, ptb.test.txt (from simple-examples.tgz, "
            "data/; or AWD-LSTM's train.txt, valid.txt, test.txt)")
WT2_HINT = ("data.root must hold WikiText-2 (word level): wiki.train.tokens, wiki.valid.tokens, wiki.test.tokens "
            "(from wikitext-2-v1.zip; or train.txt, valid.txt, test.txt)")


@register_corpus("ptb")
def ptb(root: Path | None = None) -> Corpus:
    """Penn Treebank, Mikolov's version (data.root, default <cache>/ptb): 10,000 words, 929k/73k/82k tokens."""
    folder = root or cache_dir() / "ptb"
    names = {s: (f"ptb.{s}.txt", f"{s}.txt") for s in SPLITS}
    return read_corpus("ptb", corpus_files("ptb", folder, names, PTB_HINT))


@register_corpus("wikitext2")
def wikitext2(root: Path | None = None) -> Corpus:
    """WikiText-2 (data.root, default <cache>/wikitext2): 33,278 words, 2.1M/218k/246k tokens."""
    folder = root or cache_dir() / "wikitext2"
    names = {s: (f"wiki.{s}.tokens", f"{s}.txt") for s in SPLITS}
    return read_corpus("wikitext2", corpus_files("wikitext2", folder, names, WT2_HINT))


@register_corpus("embedded-text")
def embedded_text(root: Path | None = None) -> Corpus:
    """The King James Bible, PTB style, shipped inside nasp (works offline): 10,000 words, 742k/41k/40k tokens."""
    folder = Path(str(resources.files("nasp.data") / "embedded")) if root is None else root
    names = {s: (f"kjv.{s}.txt.gz", f"kjv.{s}.txt") for s in SPLITS}
    return read_corpus("embedded-text", corpus_files("embedded-text", folder, names,
                                                     "it holds kjv.train.txt.gz, kjv.valid.txt.gz, kjv.test.txt.gz"))


# --- batches and windows ------------------------------------------------------------------------------------
def batchify(tokens: torch.Tensor, batch_size: int) -> torch.Tensor:
    """(steps, batch): ``batch_size`` contiguous streams side by side, the tail that does not fill a row dropped
    (DARTS's batchify)."""
    steps = tokens.numel() // batch_size
    if steps < 2:
        raise DataError(f"{tokens.numel()} tokens cannot be cut into {batch_size} streams of at least 2 tokens "
                        f"(a smaller batch size, or more text)")
    return tokens[: steps * batch_size].view(batch_size, steps).t().contiguous()


@dataclass(frozen=True)
class Window:
    """Rows ``start .. start+length`` of a batchified split are the inputs, one row later the targets;
    ``lr_scale`` (length / bptt) scales the step's learning rate (DARTS)."""

    start: int
    length: int
    lr_scale: float = 1.0


def fixed_windows(steps: int, bptt: int) -> list[Window]:
    """Consecutive windows of ``bptt`` rows (the last one shorter) over a (steps, batch) matrix: search, scoring."""
    return [Window(i, min(bptt, steps - 1 - i)) for i in range(0, steps - 1, bptt)]


def variable_windows(steps: int, bptt: int, max_seq_len_delta: int, seed: int, epoch: int) -> list[Window]:
    """DARTS's training windows: bptt with probability 0.95, else bptt/2, as the mean of N(mean, 5); at least 5,
    at most bptt + max_seq_len_delta rows; the learning rate scaled by length/bptt. Drawn from (seed, epoch)."""
    rng = np.random.default_rng([seed, epoch])
    out, i = [], 0
    while i < steps - 2:
        mean = bptt if rng.random() < 0.95 else bptt / 2
        length = min(max(5, int(rng.normal(mean, 5))), bptt + max_seq_len_delta)
        out.append(Window(i, min(length, steps - 1 - i), length / bptt))
        i += length
    return out


def window(data: torch.Tensor, w: Window) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs (T, B), targets (T*B,)) of one window."""
    return data[w.start: w.start + w.length], data[w.start + 1: w.start + 1 + w.length].reshape(-1)


class TextBatches:
    """A batchified split on its device and its windows per epoch, resumable from (epoch, step)."""

    def __init__(self, tokens: torch.Tensor, batch_size: int, bptt: int, device: torch.device | str = "cpu",
                 variable: bool = False, max_seq_len_delta: int = 20, seed: int = 0, part: slice | None = None) -> None:
        """``part``: the streams (columns) this process takes of the ``batch_size`` (under torchrun, a rank's share;
        the windows, variable lengths included, are the same on every rank)."""
        data = batchify(tokens, batch_size)
        self.part = part
        self.data = (data if part is None else data[:, part].contiguous()).to(device)
        self.batch_size, self.bptt = batch_size, bptt
        self.variable, self.max_seq_len_delta, self.seed = variable, max_seq_len_delta, seed
        self._plans: dict[int, list[Window]] = {}

    @property
    def steps(self) -> int:
        """Rows of the batchified matrix (time steps per stream)."""
        return int(self.data.shape[0])

    @property
    def tokens(self) -> int:
        """Tokens the windows predict: every row but the first, in every stream."""
        return (self.steps - 1) * self.batch_size

    def plan(self, epoch: int) -> list[Window]:
        if epoch not in self._plans:
            if len(self._plans) > 4:
                self._plans.clear()
            self._plans[epoch] = (variable_windows(self.steps, self.bptt, self.max_seq_len_delta, self.seed, epoch)
                                  if self.variable else fixed_windows(self.steps, self.bptt))
        return self._plans[epoch]

    def __len__(self) -> int:
        """Windows of a fixed-window epoch (a variable one has about as many: ``len(plan(epoch))``)."""
        return math.ceil((self.steps - 1) / self.bptt)

    def epoch(self, epoch: int = 0, start_step: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor, Window]]:
        """(inputs, targets, window) of ``epoch`` from window ``start_step`` on."""
        for w in self.plan(epoch)[start_step:]:
            x, y = window(self.data, w)
            yield x, y, w
