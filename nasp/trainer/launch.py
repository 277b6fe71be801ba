"""Starting and resuming a run, the same way for every task: out= checked before any work, the task built,
a new run folder created race-free and locked, or an existing one locked and its checkpoint loaded.

Under torchrun every rank builds its task, but rank 0 alone creates, locks and writes the run folder and
prints; the others learn its path, config and checkpoint from rank 0 (no shared file system is needed)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nasp import distributed
from nasp.errors import ConfigError, ResumeError
from nasp.runfolder import RunFolder, RunFolderError, check_name, check_out, create_run_folder, reuse_run_folder
from nasp.trainer.callback import Callback
from nasp.trainer.console import ConsoleProgress
from nasp.trainer.loggers import check_loggers, create_loggers
from nasp.trainer.recorder import RunRecorder
from nasp.trainer.task import Task
from nasp.trainer.trainer import Trainer

log = logging.getLogger(__name__)
CallbacksOf = Callable[[RunFolder, Task], list[Callback]]


def _callbacks(folder: RunFolder, task: Task, own: CallbacksOf | None, extra: list[Callback] | None,
               console: bool, loggers: list[str] | None = None) -> list[Callback]:
    """Rank 0 (or a plain run) gets every callback; the other ranks of a torchrun run only the user's callbacks
    that ask for it (``all_ranks = True``)."""
    if not distributed.is_main():
        return [cb for cb in extra or [] if getattr(cb, "all_ranks", False)]  # (any object with the hooks may be one)
    cbs: list[Callback] = [RunRecorder(folder), *(own(folder, task) if own else []),
                           *create_loggers(list(loggers or []), folder, task)]
    if console:
        cbs.append(ConsoleProgress())
    return cbs + list(extra or [])


def start(build: Callable[[], Task], out: str | Path, name: str, config_json: str,
          write_files: Callable[[RunFolder], None] | None = None, own_callbacks: CallbacksOf | None = None,
          callbacks: list[Callback] | None = None, console: bool = True, loggers: list[str] | None = None,
          reuse: bool = False) -> Trainer:
    """A trainer for a new run: ``out`` must be a writable folder and the ``loggers`` known before the (slow) task
    is built; the run folder is created only once the task is built, so a bad input leaves no folder behind.
    ``reuse`` (resume=auto): a folder ``out/name`` that holds no checkpoint is started again in place."""
    distributed.init()
    distributed.on_main(lambda: check_out(out))
    check_loggers(list(loggers or []))
    task = build()
    distributed.barrier()  # every rank built its task (a rank that failed ends this run before a folder exists)

    made: list[RunFolder] = []

    def create() -> Path:
        folder = RunFolder(reuse_run_folder(out, name) if reuse else create_run_folder(out, name))
        made.append(folder)
        folder.lock()
        if reuse:
            folder.clear_records()
        folder.write_config(config_json)
        if write_files is not None:
            write_files(folder)
        return folder.path

    path = distributed.on_main(create)
    folder = made[0] if made else RunFolder(path)  # rank 0 keeps the locked one
    announce(folder)
    trainer = Trainer(task, folder, _callbacks(folder, task, own_callbacks, callbacks, console, loggers))
    return trainer


def announce(folder: RunFolder) -> None:
    """Under torchrun the first rank of every node but rank 0's says where the run folder is (rank 0's console
    line names it there): with c10d, rank 0's node is whichever joined first."""
    if distributed.current() is None or distributed.is_main() or distributed.local_rank() != 0:
        return
    import sys

    print(f"nasp: rank {distributed.rank()} on {distributed.host()}: the run folder is {folder.path.resolve()} on "
          f"{distributed.main_host()} (rank 0 writes it)", file=sys.stderr, flush=True)


def auto_folder(out: str | Path, name: str | None, command: str) -> Path | None:
    """resume=auto: the run folder ``out/name`` when it holds a checkpoint to continue (rank 0 looks, every
    rank gets its answer), else None: the run starts, in that folder."""
    if not name:
        raise ConfigError(f"key 'resume': resume=auto continues the run folder out/name, so it needs a stable "
                          f"name= (e.g. nasp {command} name=myrun resume=auto)")
    check_name(name)
    distributed.init()
    path = Path(out) / name

    def look() -> bool:
        folder = RunFolder(path)
        return folder.config_path.is_file() and folder.has_checkpoint()

    return path if distributed.on_main(look) else None


def open_for_resume(run_dir: str | Path, kind: str, command: str) -> tuple[RunFolder, dict[str, Any]]:
    """The locked run folder ``run_dir`` of a ``kind`` run, and its config as a dict (read by rank 0, which
    alone locks it, under torchrun)."""
    distributed.init()
    opened: list[RunFolder] = []

    def read() -> dict[str, Any]:
        folder, raw = _open_for_resume(run_dir, kind, command)
        opened.append(folder)
        return raw

    raw = distributed.on_main(read)
    return (opened[0] if opened else RunFolder(run_dir)), raw


def _open_for_resume(run_dir: str | Path, kind: str, command: str) -> tuple[RunFolder, dict[str, Any]]:
    folder = RunFolder(run_dir)
    try:
        raw = folder.read_config()
    except RunFolderError as exc:
        raise ResumeError(f"resume: {exc}") from None
    found = folder.kind()
    if found != kind:
        other = "run" if found == "search" else "eval"
        what = "a search" if found == "search" else "an evaluation"
        raise ResumeError(f"resume: '{run_dir}' is {what} run; continue it with `nasp {other} resume={run_dir}`"
                          f" (not `nasp {command}`)")
    if not folder.has_checkpoint():
        raise ResumeError(f"resume: '{run_dir}' has no checkpoint yet (the run stopped before its first "
                          f"checkpoint); start it again instead")
    folder.lock()
    return folder, raw


def ranks(n: int) -> str:
    return f"{n} rank" if n == 1 else f"{n} ranks"


def check_world_size(state: dict[str, Any], folder: RunFolder, task: Task, change: bool) -> None:
    """A checkpoint holds each rank's own state (BatchNorm statistics, running sums, carries): it continues
    exactly on the number of ranks that wrote it; another number only when asked (``change_world_size=true``)."""
    saved, now = int(state.get("world_size", 1)), distributed.size()
    if saved == now or change:
        return
    raise ResumeError(f"resume: '{folder.path}' ran on {ranks(saved)} and this resume has {ranks(now)}; continue it "
                      f"on {saved} (`{distributed.relaunch(f'{task.command} resume={folder.path}', saved)}`) or add "
                      f"change_world_size=true to go on with {now} (its ranks' BatchNorm statistics and sums are "
                      f"then merged: no longer exactly the uninterrupted run)")


def check_plugins_named(raw: dict[str, Any], plugins: list[str], run_dir: str | Path, command: str) -> None:
    """A run that used plugins resumes only when the user names them again: nasp never imports code
    because a file (config.json) says so."""
    used = [str(p) for p in raw.get("plugins") or []]
    if used and not plugins:
        raise ResumeError(f"resume: '{run_dir}' used plugins ({', '.join(used)}), which are code: name them again to "
                          f"run them: nasp {command} resume={run_dir} plugins={','.join(used)}")


def resume(folder: RunFolder, task: Task, own_callbacks: CallbacksOf | None = None,
           callbacks: list[Callback] | None = None, console: bool = True, loggers: list[str] | None = None,
           change_world_size: bool = False) -> Trainer:
    """A trainer that continues ``folder`` from its last good checkpoint (the previous one, with a warning,
    when the latest is damaged); records written after that checkpoint are dropped. A checkpoint of another
    number of ranks is refused unless ``change_world_size``."""
    if distributed.current() is None:
        state, warning = folder.load_checkpoint(map_location=task.device)
    else:  # every rank continues from rank 0's reading of the one checkpoint
        state, warning = distributed.on_main(lambda: folder.load_checkpoint(map_location="cpu"))
    check_world_size(state, folder, task, change_world_size)
    announce(folder)
    trainer = Trainer(task, folder, _callbacks(folder, task, own_callbacks, callbacks, console, loggers))
    try:
        trainer.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ResumeError(f"resume: the checkpoint of '{folder.path}' does not fit its config "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None
    if warning and distributed.is_main():
        log.warning("%s", warning)
    if distributed.is_main():
        folder.truncate_records(trainer.progress.epoch)
    return trainer
