"""``executor=ray``: each sub-run a Ray task, side by side, on this machine (Ray started in this process) or on a
cluster (``ray.address``). Ray is an optional extra (``pip install "nasp-search[ray]"``), imported only here.

A task runs its sub-run in the Ray worker's own process (a worker runs sub-run after sub-run with torch loaded;
Ray gives a GPU task a fresh worker each time), continuing from the run folder's checkpoint whenever there is
one, so every way a task can end is safe:
- its worker dies (killed, out of memory, its node lost): Ray runs the task again (``study.max_retries``) and the
  new attempt continues from the last checkpoint (each epoch's end), exactly as a resume does;
- the study is stopped (Ctrl-C, SIGTERM): every task is cancelled; Ray's cancel of a running task reaches the
  worker as a SIGINT to its main thread (``_thread.interrupt_main``), which stops the sub-run after its step with
  a checkpoint, and the task returns; queued ones never start.
Sub-runs write their run folders under the study folder, so on a cluster ``out=`` is a shared file system
mounted at the same path on every node (docs/study.md)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from nasp.errors import NaspError
from nasp.runfolder import RunFolder
from nasp.study.config import StudyConfig
from nasp.study.executor import Ended, StudyExecutor
from nasp.study.subrun import SubRun, run_subrun

INSTALL = 'pip install "nasp-search[ray]"'


class MissingExtraError(NaspError):
    """An optional extra a key needs is not installed."""


def require_ray() -> Any:
    """The ray module, or MissingExtraError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise MissingExtraError(f"executor=ray needs Ray, which is not installed: {INSTALL}") from None
    return ray


def run_in_worker(spec: str, log: str) -> dict[str, Any]:
    """The body of a sub-run's Ray task, in the worker's process: its output goes to ``log``; a cancel (a SIGINT
    to this thread, also while the sub-run is being set up) stops it after its step, with a checkpoint."""
    sub = SubRun.from_json(spec)
    stop = threading.Event()
    before = signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(log, "a", encoding="utf-8") as out, contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            out.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {sub.label} on {os.uname().nodename} "
                      f"(worker pid {os.getpid()})\n")
            out.flush()
            console = Console(file=out, soft_wrap=True)
            try:
                _wait_unlocked(sub.path, 120.0)
                return {"state": run_subrun(sub, console=False, out=console, stop=stop)}
            except NaspError as exc:
                console.print(f"nasp study: error: {exc}", highlight=False)
                return {"state": "error", "message": f"{exc} (log: {log})"}
    finally:
        signal.signal(signal.SIGINT, before)


def _wait_unlocked(path: Path, wait_s: float) -> None:
    """An earlier attempt on another node (its worker lost, its process not yet) may still be writing."""
    deadline = time.monotonic() + wait_s
    while path.is_dir() and RunFolder(path).locked_by_someone() and time.monotonic() < deadline:
        time.sleep(0.2)


class RayExecutor(StudyExecutor):
    """Sub-runs as Ray tasks, each asking for ``study.cpus_per_run`` CPUs and ``study.gpus_per_run`` GPUs; Ray runs
    as many side by side as the cluster (or this machine) has room for. With no ``ray.address`` Ray starts in this
    process (and stops with it); a Ray already started in this process is used as it is."""

    name = "ray"
    parallel = True

    def __init__(self, cfg: StudyConfig, logs: Path, console: bool = True) -> None:
        ray = require_ray()
        self.ray = ray
        self.cfg = cfg
        self.logs = logs
        self.console = console
        self._own = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
            if cfg.ray.address is not None:
                kwargs["address"] = cfg.ray.address
            try:
                ray.init(**kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"the Ray cluster at '{cfg.ray.address}'" if cfg.ray.address else "a local Ray"
                raise NaspError(f"key 'ray.address': cannot start or join {where}: {str(exc).splitlines()[0]}") from None
            self._own = True
        self._gpus = float(ray.cluster_resources().get("GPU", 0))
        # a CPU worker runs sub-run after sub-run; a GPU task's worker ends after it (max_calls=1), so CUDA, which
        # keeps the GPU a process first saw, never serves a later task given another GPU, and its memory is freed
        self._remote = {False: ray.remote(run_in_worker), True: ray.remote(max_calls=1)(run_in_worker)}
        self._refs: dict[Any, SubRun] = {}
        self._stopping = False
        self._cancelled = False

    def _resources(self, sub: SubRun) -> dict[str, Any]:
        res = self.cfg.study
        gpus = res.gpus_per_run
        if gpus is None:  # one GPU each where there are GPUs, unless the sub-run runs on the CPU
            gpus = 1.0 if self._gpus > 0 and str(sub.tree.get("device", "auto")) != "cpu" else 0.0
        options = {"num_cpus": res.cpus_per_run, "num_gpus": gpus, "max_retries": res.max_retries,
                   "name": f"nasp-{sub.kind}-{sub.arm}-s{sub.seed}"}
        # nasp's environment variables (NASP_DATA, NASP_BENCH201...) reach the sub-runs on every node
        nasp_env = {k: v for k, v in os.environ.items() if k.startswith("NASP_")}
        if nasp_env:
            options["runtime_env"] = {"env_vars": nasp_env}
        return options

    def log_path(self, sub: SubRun) -> Path:
        return self.logs / f"{sub.kind}-{sub.path.name}.log"

    def submit(self, sub: SubRun) -> None:
        if self._stopping:
            return
        options = self._resources(sub)
        ref = self._remote[options["num_gpus"] > 0].options(**options).remote(sub.to_json(), str(self.log_path(sub)))
        self._refs[ref] = sub

    def pending(self) -> int:
        return len(self._refs)

    def wait(self, timeout: float | None = None) -> list[Ended]:
        if self._stopping and not self._cancelled:
            self._cancel_all()
        if not self._refs:
            return []
        ready, _ = self.ray.wait(list(self._refs), num_returns=1, timeout=timeout)
        if ready:  # and whatever else has ended by now
            ready, _ = self.ray.wait(list(self._refs), num_returns=len(self._refs), timeout=0)
        return [self._ended(ref) for ref in ready]

    def _ended(self, ref: Any) -> Ended:
        ray = self.ray
        sub = self._refs.pop(ref)
        try:
            out = ray.get(ref)
        except ray.exceptions.TaskCancelledError:
            return Ended(sub, "stopped")
        except ray.exceptions.RayTaskError as exc:
            if "TaskCancelledError" in type(exc).__name__:
                return Ended(sub, "stopped")
            raise NaspError(f"study: {sub.label}: {str(exc.cause or exc).splitlines()[-1]}") from None
        except ray.exceptions.RayError as exc:  # its worker or node died (killed, out of memory) more often than retried
            return Ended(sub, "died", f"{sub.label}: its worker died (Ray retried it study.max_retries="
                         f"{self.cfg.study.max_retries} times): {type(exc).__name__}")
        if out["state"] == "error":
            raise NaspError(f"study: {sub.label}: {out['message']}")
        return Ended(sub, out["state"])

    def stop(self) -> None:
        self._stopping = True

    @property
    def stopping(self) -> bool:
        return self._stopping

    def _cancel_all(self) -> None:
        """Cancel every task: queued ones do not start, running ones stop their sub-run (checkpointed); ``wait``
        then returns them once their sub-run has stopped."""
        self._cancelled = True
        for ref in list(self._refs):
            self.ray.cancel(ref)

    def close(self) -> None:
        if self._refs:  # an error ends the study: stop what still runs, then wait for the checkpoints (a Ctrl-C
            self._cancel_all()  # meanwhile only asks for the stop again)
            self.ray.wait(list(self._refs), num_returns=len(self._refs), timeout=300)
            self._refs.clear()
        if self._own:
            self.ray.shutdown()
            self._own = False
