"""The run folder: the one module that knows its file names, writes them and reads them back.

A run folder (of `nasp run` or `nasp eval`) holds::

    config.json        the resolved config (written once, at the start)
    status.json        what the run is doing now: running | paused | stopped | finished | failed, its pid
    events.jsonl       every event of the trainer, one JSON object a line (followers tail it)
    metrics.jsonl      one record an epoch (the numbers of the epoch_end event)
    history.jsonl      search only: A, Ā and the genotype after each epoch
    genotype.json      search: the current genotype; eval: the genotype being trained
    checkpoint.pt      what a resume needs (tensors and plain values only), written atomically
    checkpoint.prev.pt the checkpoint before it, kept so a damaged latest one costs one epoch, not the run
    best.pt, last.pt   eval only: the model at its best test accuracy and at its last epoch (`nasp test`)
    result.json        eval only: the final numbers
    .lock              held (flock) by the one process writing the folder; the OS releases it when it dies

A study folder (`nasp study`, ``StudyFolder``) holds study.json (its config and its sub-runs' states),
search/<arm>-s<seed>/ and eval/<arm>-s<seed>/ (run folders), results.md and results.json, plots/.

Guarantees (docs/reliability.md): every file is replaced atomically (a temporary file, fsync, rename; the
temporary file is removed when a write fails); one writer at a time; checkpoints are loaded with
``weights_only=True``, so a checkpoint cannot run code; a run whose status says running but whose lock
nobody holds is reported as ``died``. Every file is opened through ``nasp.safe_io``: never through a planted
link, only regular files (a FIFO or a device is refused at once), read up to a bound (1 MiB a JSON file, 64 MiB
a JSON-lines file).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nasp import filelock
from nasp.errors import ConfigError, FileRefusedError, NaspError, ResumeError
from nasp.safe_io import MAX_JSON_BYTES, MAX_JSONL_BYTES, append_bytes, create_new, exists, open_regular, read_bounded, read_from

CONFIG = "config.json"
STATUS = "status.json"
EVENTS = "events.jsonl"
METRICS = "metrics.jsonl"
HISTORY = "history.jsonl"
GENOTYPE = "genotype.json"
CHECKPOINT = "checkpoint.pt"
PREVIOUS_CHECKPOINT = "checkpoint.prev.pt"
BEST_MODEL = "best.pt"
LAST_MODEL = "last.pt"
RESULT = "result.json"
LOCK = ".lock"
CELLS = "cells"
METRICS_CSV = "metrics.csv"  # loggers=csv
TENSORBOARD = "tensorboard"  # loggers=tensorboard: event files
WANDB = "wandb"  # loggers=wandb: its offline files, caches and settings
SUBFOLDERS = (CELLS, TENSORBOARD, WANDB)  # what nasp writes into inside a run folder: never a planted link
LOGS = ".logs"  # in the runs folder: output of searches the terminal app started
# a study folder (`nasp study`): its manifest, its sub-runs' folders, its table and figures
STUDY = "study.json"
STUDY_SEARCHES = "search"
STUDY_EVALS = "eval"
STUDY_TABLE_MD = "results.md"
STUDY_TABLE_JSON = "results.json"
STUDY_LOGS = "logs"
PLOTS = "plots"

ACTIVE = ("running", "paused", "stopping")  # statuses of a run whose process should be alive
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


class RunFolderError(NaspError):
    """A run folder cannot be created, locked, written or read."""


class RunLockedError(RunFolderError):
    """Another process writes this run folder."""


# --- atomic files -------------------------------------------------------------------------------------
def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` at once: readers see the old file or the new one, never a part.
    A failed write (disk full) removes its temporary file, keeps the old file and raises RunFolderError."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with os.fdopen(create_new(tmp), "wb") as f:  # a new file: never written through a planted link
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # replaces a link planted as ``path`` by the file; its target is untouched
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise RunFolderError(f"cannot write '{path}': {exc.strerror or exc}") from None


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """One JSON line, written with one write call (a line is whole or, after a crash, torn at the end)."""
    line = (json.dumps(record) + "\n").encode()
    try:
        append_bytes(path, line)  # a regular file with one name only: never through a link, never to a FIFO
    except OSError as exc:
        raise RunFolderError(f"cannot write '{path}': {exc.strerror or exc}") from None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Records of a JSON-lines file; a torn or foreign line is skipped, a missing file is []. FileRefusedError
    (one line) for a link, a FIFO, a device or a file over MAX_JSONL_BYTES."""
    try:
        text = read_bounded(path, MAX_JSONL_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object file, or {} when it is missing, unreadable or not an object. FileRefusedError (one line) for
    a link, a FIFO, a device or a file over MAX_JSON_BYTES."""
    try:
        data = json.loads(read_bounded(path, MAX_JSON_BYTES).decode("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_torch(path: Path, obj: Any) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_torch(path: Path, map_location: Any = "cpu", follow: bool = False) -> Any:
    """A file of tensors and plain values (``weights_only=True``: unpickling runs no code). Anything else,
    a pickle that would build objects or run a command, is refused with one line naming the file, and so is a
    link (unless ``follow``: a file the user names), a FIFO or a device."""
    import warnings

    try:
        with os.fdopen(open_regular(path, follow=follow), "rb") as f, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's two-line notes (pickle protocols) before nasp's one line
            return torch.load(f, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise RunFolderError(f"'{path}' does not exist") from None
    except IsADirectoryError:
        raise RunFolderError(f"'{path}' is a folder, not a checkpoint file") from None
    except FileRefusedError as exc:
        raise RunFolderError(str(exc)) from None
    except Exception as exc:  # UnpicklingError, RuntimeError (truncated zip), EOFError...
        text = str(exc)
        if "Unsupported global" in text or "GLOBAL" in text:
            what = "it holds objects other than tensors and plain values; nothing in it was run"
        elif "weights_only" in text.lower() or "weights only" in text.lower():
            what = "a pickle that is not a checkpoint torch wrote; nothing in it was run"
        else:  # random bytes, a truncated archive
            first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
            what = f"not a checkpoint torch wrote: {first}"
        raise RunFolderError(f"'{path}' is unreadable as a nasp checkpoint ({what[:200]})") from None


# --- names and creation ---------------------------------------------------------------------------------
def check_name(name: str) -> str:
    """``name=`` is one plain folder name (no path separators, no '..'), so a run stays inside ``out=``."""
    if not NAME_RE.match(name) or len(name) > 200:
        raise ConfigError(f"key 'name': '{name}' is not a plain folder name (letters, digits, '.', '_', '+', '-'; "
                          f"no '/' or leading '.')")
    return name


def check_out(out: str | Path) -> Path:
    """``out=`` exists as a writable folder (created if needed); one message otherwise, before any work."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"key 'out': '{out}' is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"key 'out': cannot create '{out}' ({exc.strerror or exc})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"key 'out': '{out}' is not writable")
    return path


def create_run_folder(out: str | Path, name: str) -> Path:
    """A new folder ``out/name`` (``name-2``, ``name-3``... when taken), created race-free: two runs started
    in the same second get two folders."""
    base = check_out(out) / check_name(name)
    for n in range(1, 10_000):
        path = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            raise ConfigError(f"key 'out': cannot create '{path}' ({exc.strerror or exc})") from None
        return path
    raise RunFolderError(f"'{base}' and 9,999 numbered variants exist already; choose another name=")


def reuse_run_folder(out: str | Path, name: str) -> Path:
    """The folder ``out/name``, created when missing (resume=auto found no checkpoint in it: the run starts there)."""
    path = check_out(out) / check_name(name)
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise ConfigError(f"key 'name': '{path}' is {'a link' if path.is_symlink() else 'a file'}, not a run folder "
                          f"(resume=auto starts or continues a folder of its own)")
    try:
        path.mkdir(exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"key 'out': cannot create '{path}' ({exc.strerror or exc})") from None
    return path


def default_name(*parts: str) -> str:
    """``<time>-part-part``, parts reduced to safe characters (a space file path becomes its stem)."""
    safe = [re.sub(r"[^A-Za-z0-9._+-]+", "_", Path(p).stem if "/" in p or p.endswith((".yaml", ".yml", ".json")) else p)
            for p in parts]
    return "-".join([time.strftime("%Y%m%d-%H%M%S"), *safe]).strip("._-") or "run"


# --- status ---------------------------------------------------------------------------------------------
@dataclass
class Status:
    """status.json as read back; ``state`` is ``died`` when it says running but no process holds the lock."""

    state: str
    kind: str
    epoch: int
    epochs: int
    pid: int | None
    error: str | None
    values: dict[str, Any]

    @property
    def resumable(self) -> bool:
        return self.state in ("stopped", "died", "failed")


# --- the folder -----------------------------------------------------------------------------------------
class RunFolder:
    """Paths, writers and readers of one run folder."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock_fd: int | None = None

    def __repr__(self) -> str:
        return f"RunFolder('{self.path}')"

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def genotype_path(self) -> Path:
        return self.path / GENOTYPE

    @property
    def checkpoint_path(self) -> Path:
        return self.path / CHECKPOINT

    @property
    def cells_dir(self) -> Path:
        return self.path / CELLS

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / TENSORBOARD

    @property
    def metrics_csv_path(self) -> Path:
        return self.path / METRICS_CSV

    def write_metrics_csv(self) -> None:
        """metrics.csv from metrics.jsonl (one row an epoch, the scalar columns in order of first appearance);
        rewritten whole, so it always agrees with metrics.jsonl, also after a resume dropped later epochs."""
        import csv
        import io

        rows = [{k: v for k, v in r.items() if isinstance(v, int | float | str | None)} for r in self.metrics()]
        columns = list(dict.fromkeys(k for r in rows for k in r))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(self.path / METRICS_CSV, buf.getvalue())

    def model_path(self, which: str) -> Path:
        return self.path / (BEST_MODEL if which == "best" else LAST_MODEL)

    # --- the lock ------------------------------------------------------------------------------------
    def lock(self, wait_s: float = 1.0) -> None:
        """Become the one writer of this folder, or RunLockedError naming the holder's pid. The OS drops the
        lock when this process exits however it exits (SIGKILL included)."""
        self._check_subfolders()
        fd = self._open_lock()
        deadline = time.monotonic() + wait_s  # a reader probing the lock holds it for microseconds
        while not filelock.try_lock(fd):
            if time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            holder = filelock.holder(fd)
            os.close(fd)
            raise RunLockedError(f"run folder '{self.path}' is in use by another nasp process (pid {holder}); "
                                 f"wait for it or stop it first")
        filelock.write_pid(fd)
        self._lock_fd = fd

    def _check_subfolders(self) -> None:
        """RunFolderError when a folder nasp writes into (cells/, tensorboard/, wandb/) is a link or not a folder:
        O_NOFOLLOW guards a file's last name only, so a planted ``cells -> /elsewhere`` would take the drawings."""
        for name in SUBFOLDERS:
            path = self.path / name
            try:
                st = path.lstat()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise RunFolderError(f"cannot use '{path}': {exc.strerror or exc}") from None
            if not stat.S_ISDIR(st.st_mode):
                what = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a folder"
                raise RunFolderError(f"cannot lock '{self.path}': '{path}' is {what}; nasp writes only into folders "
                                     f"it created (remove it, or start a new run)")

    def _open_lock(self) -> int:
        """The lock file, created (O_EXCL) or an existing one that is a regular file with one name holding at
        most a pid: a planted link, or a file with other content, is refused and never truncated."""
        path = self.path / LOCK
        try:
            try:
                return open_regular(path, os.O_RDWR | os.O_CREAT | os.O_EXCL)
            except FileExistsError:
                fd = open_regular(path, os.O_RDWR)
        except FileRefusedError as exc:
            raise RunFolderError(f"cannot lock '{self.path}': {exc}") from None
        except OSError as exc:
            raise RunFolderError(f"cannot lock '{self.path}': {exc.strerror or exc}") from None
        held_by = filelock.holder(fd)
        if os.fstat(fd).st_size > 32 or not (held_by == "unknown" or held_by.isdigit()):
            os.close(fd)
            raise RunFolderError(f"cannot lock '{self.path}': '{path}' holds something other than a pid; nasp "
                                 f"does not overwrite a file it did not write (remove it if it is yours)")
        return fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            filelock.unlock(self._lock_fd)
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)
            self._lock_fd = None

    def locked_by_someone(self) -> bool:
        """Whether a live process holds this folder's lock (a probe: taken and dropped at once)."""
        if self._lock_fd is not None:
            return True
        try:
            fd = open_regular(self.path / LOCK, os.O_RDONLY if filelock.MECHANISM == "flock" else os.O_RDWR)
        except (OSError, FileRefusedError):  # none, or not a lock nasp wrote: nobody holds it
            return False
        try:
            return filelock.probe(fd)
        finally:
            os.close(fd)

    # --- config, genotype, status ------------------------------------------------------------------
    def write_config(self, config_json: str) -> None:
        atomic_write_text(self.config_path, config_json.rstrip("\n") + "\n")

    def read_config(self) -> dict[str, Any]:
        """config.json as a dict; RunFolderError when it is missing or unreadable."""
        if not self.path.is_dir():
            raise RunFolderError(f"'{self.path}' is not a folder")
        if not exists(self.config_path):
            raise RunFolderError(f"'{self.path}' has no {CONFIG}; is it a run folder of `nasp run` or `nasp eval`?")
        try:
            data = json.loads(read_bounded(self.config_path, MAX_JSON_BYTES).decode("utf-8"))
        except FileRefusedError as exc:
            raise RunFolderError(str(exc)) from None
        except (OSError, ValueError) as exc:
            raise RunFolderError(f"'{self.config_path}' is unreadable: {str(exc).splitlines()[0]}") from None
        if not isinstance(data, dict):
            raise RunFolderError(f"'{self.config_path}' does not hold a config (a JSON object)")
        return data

    def kind(self) -> str:
        """``search`` or ``eval``: an evaluation's config names a genotype and no algorithm."""
        config = read_json(self.config_path)
        return "eval" if "genotype" in config and "algorithm" not in config else "search"

    def write_genotype(self, genotype_json: str) -> None:
        atomic_write_text(self.genotype_path, genotype_json.rstrip("\n") + "\n")

    def write_status(self, state: str, kind: str, epoch: int, epochs: int, **values: Any) -> None:
        atomic_write_text(self.path / STATUS, json.dumps(
            {"status": state, "kind": kind, "epoch": epoch, "epochs": epochs, "pid": os.getpid(), **values}))

    def status(self) -> Status:
        raw = read_json(self.path / STATUS)
        state = str(raw.get("status", "new"))
        if state in ACTIVE and not self.locked_by_someone():
            state = "died"
        pid = raw.get("pid")
        rest = {k: v for k, v in raw.items() if k not in ("status", "kind", "epoch", "epochs", "pid", "error")}
        return Status(state, str(raw.get("kind", self.kind())), int(raw.get("epoch", 0) or 0),
                      int(raw.get("epochs", 0) or 0), pid if isinstance(pid, int) else None, raw.get("error"), rest)

    # --- records -----------------------------------------------------------------------------------
    def append_event(self, record: dict[str, Any]) -> None:
        append_jsonl(self.path / EVENTS, record)

    def append_metrics(self, record: dict[str, Any]) -> None:
        append_jsonl(self.path / METRICS, record)

    def append_history(self, record: dict[str, Any]) -> None:
        append_jsonl(self.path / HISTORY, record)

    def metrics(self) -> list[dict[str, Any]]:
        return read_jsonl(self.path / METRICS)

    def history(self) -> list[dict[str, Any]]:
        return read_jsonl(self.path / HISTORY)

    def events(self) -> list[dict[str, Any]]:
        return read_jsonl(self.path / EVENTS)

    def has_events(self) -> bool:
        return (self.path / EVENTS).is_file()

    def first_event(self, max_bytes: int = 4 << 20) -> dict[str, Any]:
        """The run_start event (it carries the resolved space of a search, the genotype of an eval)."""
        try:
            with os.fdopen(open_regular(self.path / EVENTS), "rb") as f:
                record = json.loads(f.readline(max_bytes).decode("utf-8"))
        except (OSError, ValueError):
            return {}
        return record if isinstance(record, dict) else {}

    def clear_records(self) -> None:
        """Remove what a run that ended before its first checkpoint wrote (resume=auto starts it again here)."""
        for name in (EVENTS, METRICS, HISTORY, STATUS, GENOTYPE, RESULT, BEST_MODEL, LAST_MODEL, METRICS_CSV):
            with contextlib.suppress(FileNotFoundError):
                (self.path / name).unlink()

    def truncate_records(self, keep_epochs: int) -> None:
        """Drop records of epochs past ``keep_epochs``: written after the checkpoint a resume starts from."""
        for name in (METRICS, HISTORY):
            path = self.path / name
            if path.is_file():
                kept = [r for r in read_jsonl(path) if r.get("epoch", 0) <= keep_epochs]
                atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))

    def write_result(self, result: dict[str, Any]) -> None:
        atomic_write_text(self.path / RESULT, json.dumps(result, indent=2) + "\n")

    def result(self) -> dict[str, Any]:
        """result.json of a finished evaluation ({} when there is none)."""
        return read_json(self.path / RESULT)

    # --- checkpoints and models --------------------------------------------------------------------
    def save_checkpoint(self, state: dict[str, Any]) -> None:
        """checkpoint.pt, the one before it kept as checkpoint.prev.pt. Between the two renames a crash leaves
        only the previous one, which ``load_checkpoint`` then uses."""
        buf = io.BytesIO()
        torch.save(state, buf)
        tmp_target = self.path / f".{CHECKPOINT}.new"
        atomic_write_bytes(tmp_target, buf.getvalue())
        try:
            if self.checkpoint_path.is_file():
                os.replace(self.checkpoint_path, self.path / PREVIOUS_CHECKPOINT)
            os.replace(tmp_target, self.checkpoint_path)
        except OSError as exc:
            raise RunFolderError(f"cannot write '{self.checkpoint_path}': {exc.strerror or exc}") from None

    def has_checkpoint(self) -> bool:
        return self.checkpoint_path.is_file() or (self.path / PREVIOUS_CHECKPOINT).is_file()

    def load_checkpoint(self, map_location: Any = "cpu") -> tuple[dict[str, Any], str | None]:
        """(state, warning): the latest checkpoint, or the previous one (with a warning saying why) when the
        latest is missing, truncated or unreadable. ResumeError when neither can be read."""
        errors = []
        for path in (self.checkpoint_path, self.path / PREVIOUS_CHECKPOINT):
            if not path.is_file():
                continue
            try:
                state = load_torch(path, map_location)
            except RunFolderError as exc:  # unreadable, or a link, a FIFO, a device
                errors.append(str(exc))
                continue
            if not isinstance(state, dict) or "task" not in state or "progress" not in state:
                errors.append(f"'{path}' is not a checkpoint of this nasp version")
                continue
            warning = None
            if path != self.checkpoint_path:
                warning = (f"{errors[0] if errors else f'{self.checkpoint_path} is missing'}; "
                           f"resuming from the previous checkpoint '{path.name}' instead")
            return state, warning
        if not errors:
            raise ResumeError(f"resume: '{self.path}' has no checkpoint yet (the run stopped before its first "
                              f"checkpoint); start it again instead")
        also = f"; the previous checkpoint '{PREVIOUS_CHECKPOINT}' cannot be used either" if len(errors) > 1 else ""
        raise ResumeError(f"resume: {errors[0]}{also}")

    def save_model(self, which: str, record: dict[str, Any]) -> None:
        save_torch(self.model_path(which), record)


class StudyFolder:
    """Paths and the manifest of a study folder: study.json, search/<sub-run>, eval/<sub-run>, the table, plots/."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def manifest_path(self) -> Path:
        return self.path / STUDY

    def is_study(self) -> bool:
        return self.manifest_path.is_file()

    def search_dir(self) -> Path:
        return self.path / STUDY_SEARCHES

    def eval_dir(self) -> Path:
        return self.path / STUDY_EVALS

    def logs_dir(self) -> Path:
        """The output of sub-runs run in processes of their own (executor=ray), one file per sub-run."""
        return self.path / STUDY_LOGS

    @property
    def table_md(self) -> Path:
        return self.path / STUDY_TABLE_MD

    @property
    def table_json(self) -> Path:
        return self.path / STUDY_TABLE_JSON

    @property
    def plots_dir(self) -> Path:
        return self.path / PLOTS

    def read_manifest(self) -> dict[str, Any]:
        """study.json; RunFolderError when the folder holds none."""
        if not self.is_study():
            raise RunFolderError(f"'{self.path}' is not a study folder (it has no {STUDY}; `nasp study` writes one)")
        data = read_json(self.manifest_path)
        if not data:
            raise RunFolderError(f"'{self.manifest_path}' is unreadable")
        return data

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        atomic_write_text(self.manifest_path, json.dumps(manifest, indent=2) + "\n")

    def write_table(self, markdown: str, data: dict[str, Any]) -> None:
        atomic_write_text(self.table_md, markdown.rstrip("\n") + "\n")
        atomic_write_text(self.table_json, json.dumps(data, indent=2) + "\n")


def iter_run_folders(folder: str | Path) -> Iterator[RunFolder]:
    """Run folders directly under ``folder`` (those with a config.json), newest name first."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    for p in sorted(folder.iterdir(), reverse=True):
        if p.is_dir() and (p / CONFIG).is_file():
            yield RunFolder(p)


class EventTail:
    """Follows a run folder's events.jsonl written by another process: new complete lines on each poll."""

    def __init__(self, run_dir: str | Path, from_end: bool = False) -> None:
        """``from_end``: only what is appended from now on (a resumed run's earlier sessions are known)."""
        self.folder = RunFolder(run_dir)
        self.path = self.folder.path / EVENTS
        self.offset = self.path.stat().st_size if from_end and self.path.is_file() else 0
        self.partial = b""

    def poll(self) -> list[dict[str, Any]]:
        """New records; FileRefusedError when events.jsonl is a link, a FIFO or a device."""
        try:
            data = read_from(self.path, self.offset, MAX_JSONL_BYTES)
        except OSError:
            return []
        self.offset += len(data)
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()  # an unterminated last line is still being written
        out = []
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                out.append(record)
        return out
