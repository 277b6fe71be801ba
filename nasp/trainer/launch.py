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
from nasp.errors import ResumeError
from nasp.runfolder import RunFolder, RunFolderError, check_out, create_run_folder
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
    if not distributed.is_main():
        return []
    cbs: list[Callback] = [RunRecorder(folder), *(own(folder, task) if own else []),
                           *create_loggers(list(loggers or []), folder, task)]
    if console:
        cbs.append(ConsoleProgress())
    return cbs + list(extra or [])


def start(build: Callable[[], Task], out: str | Path, name: str, config_json: str,
          write_files: Callable[[RunFolder], None] | None = None, own_callbacks: CallbacksOf | None = None,
          callbacks: list[Callback] | None = None, console: bool = True, loggers: list[str] | None = None) -> Trainer:
    """A trainer for a new run: ``out`` must be a writable folder and the ``loggers`` known before the (slow) task
    is built; the run folder is created only once the task is built, so a bad input leaves no folder behind."""
    distributed.init()
    distributed.on_main(lambda: check_out(out))
    check_loggers(list(loggers or []))
    task = build()
    distributed.barrier()  # every rank built its task (a rank that failed ends this run before a folder exists)

    made: list[RunFolder] = []

    def create() -> Path:
        folder = RunFolder(create_run_folder(out, name))
        made.append(folder)
        folder.lock()
        folder.write_config(config_json)
        if write_files is not None:
            write_files(folder)
        return folder.path

    path = distributed.on_main(create)
    folder = made[0] if made else RunFolder(path)  # rank 0 keeps the locked one
    trainer = Trainer(task, folder, _callbacks(folder, task, own_callbacks, callbacks, console, loggers))
    return trainer


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


def check_plugins_named(raw: dict[str, Any], plugins: list[str], run_dir: str | Path, command: str) -> None:
    """A run that used plugins resumes only when the user names them again: nasp never imports code
    because a file (config.json) says so."""
    used = [str(p) for p in raw.get("plugins") or []]
    if used and not plugins:
        raise ResumeError(f"resume: '{run_dir}' used plugins ({', '.join(used)}), which are code: name them again to "
                          f"run them: nasp {command} resume={run_dir} plugins={','.join(used)}")


def resume(folder: RunFolder, task: Task, own_callbacks: CallbacksOf | None = None,
           callbacks: list[Callback] | None = None, console: bool = True, loggers: list[str] | None = None) -> Trainer:
    """A trainer that continues ``folder`` from its last good checkpoint (the previous one, with a warning,
    when the latest is damaged); records written after that checkpoint are dropped."""
    if distributed.current() is None:
        state, warning = folder.load_checkpoint(map_location=task.device)
    else:  # every rank continues from rank 0's reading of the one checkpoint
        state, warning = distributed.on_main(lambda: folder.load_checkpoint(map_location="cpu"))
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
