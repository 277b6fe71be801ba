"""``executor=ray``: each sub-run a Ray task, side by side, on this machine (Ray started in this process) or on a
cluster (``ray.address``). Ray is an optional extra (``pip install "nasp-search[ray]"``), imported only here.

A task runs its sub-run in a process of its own (``python -m nasp.study``), which continues from the run
folder's checkpoint whenever there is one, so every way a task can end is safe:
- its worker dies (killed, its node lost): Ray runs the task again (``study.max_retries``); the sub-run's process
  has been asked to stop (Linux: it gets SIGTERM when its parent dies) and the new attempt continues from its
  checkpoint, exactly as a resume does;
- the study is stopped (Ctrl-C, SIGTERM): every task is cancelled; a running one forwards the stop (SIGTERM) to
  its sub-run, which stops after its step with a checkpoint; queued ones never start;
- its process is killed (not by the task): the task fails with SubRunDied, which Ray retries the same way.
Sub-runs write their run folders under the study folder, so on a cluster ``out=`` is a shared file system
mounted at the same path on every node (docs/study.md)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from nasp.errors import NaspError
from nasp.study.config import StudyConfig
from nasp.study.executor import Ended, StudyExecutor
from nasp.study.subrun import PARENT_ENV, STATE_OF, SubRun

INSTALL = 'pip install "nasp-search[ray]"'


class MissingExtraError(NaspError):
    """An optional extra a key needs is not installed."""


class SubRunDied(Exception):
    """The sub-run's process was killed (not stopped by its task): Ray runs the task again."""


def require_ray() -> Any:
    """The ray module, or MissingExtraError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise MissingExtraError(f"executor=ray needs Ray, which is not installed: {INSTALL}") from None
    return ray


def run_in_worker(spec: str, log: str) -> dict[str, Any]:
    """The body of a sub-run's Ray task: its process, started and waited for (polling: Ray's cancel is a
    KeyboardInterrupt between bytecodes); a cancel forwards a stop to the process and waits for its checkpoint."""
    sub = SubRun.from_json(spec)
    threads = str(sub.threads or 1)
    env = {**os.environ, PARENT_ENV: str(os.getpid()), "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        out.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {sub.label} on {os.uname().nodename} "
                  f"(worker pid {os.getpid()})\n".encode())
        out.flush()
        # a session of its own: a Ctrl-C at the study's terminal reaches the study, which stops its tasks
        proc = subprocess.Popen([sys.executable, "-m", "nasp.study", spec], stdin=subprocess.DEVNULL,
                                stdout=out, stderr=out, env=env, start_new_session=True)
        try:
            while proc.poll() is None:
                time.sleep(0.1)
        except KeyboardInterrupt:  # ray.cancel: stop it after its step (SIGTERM again until it has ended)
            while proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                time.sleep(0.5)
            raise
    code = proc.returncode
    if code < 0:
        raise SubRunDied(f"{sub.label}: its process was killed by signal {-code}")
    state = STATE_OF.get(code, "error")
    return {"state": state, "code": code, "message": _last_line(log) if state == "error" else None}


def _last_line(log: str) -> str:
    try:
        lines = [ln.strip() for ln in Path(log).read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return f"see {log}"
    return (lines[-1] if lines else "no output") + f" (log: {log})"


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
        self._remote = ray.remote(run_in_worker)
        self._refs: dict[Any, SubRun] = {}
        self._stopping = False
        self._cancelled = False

    def _resources(self, sub: SubRun) -> dict[str, Any]:
        res = self.cfg.study
        gpus = res.gpus_per_run
        if gpus is None:  # one GPU each where there are GPUs, unless the sub-run runs on the CPU
            gpus = 1.0 if self._gpus > 0 and str(sub.tree.get("device", "auto")) != "cpu" else 0.0
        options = {"num_cpus": res.cpus_per_run, "num_gpus": gpus, "max_retries": res.max_retries,
                   "retry_exceptions": [SubRunDied], "name": f"nasp-{sub.kind}-{sub.arm}-s{sub.seed}"}
        # nasp's environment variables (NASP_DATA, NASP_BENCH201...) reach the sub-runs on every node
        nasp_env = {k: v for k, v in os.environ.items() if k.startswith("NASP_") and k != PARENT_ENV}
        if nasp_env:
            options["runtime_env"] = {"env_vars": nasp_env}
        return options

    def log_path(self, sub: SubRun) -> Path:
        return self.logs / f"{sub.kind}-{sub.path.name}.log"

    def submit(self, sub: SubRun) -> None:
        if self._stopping:
            return
        ref = self._remote.options(**self._resources(sub)).remote(sub.to_json(), str(self.log_path(sub)))
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
            if isinstance(exc.cause, SubRunDied) or isinstance(exc, SubRunDied):
                return Ended(sub, "died", str(exc.cause))
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
        then returns them once their sub-run's process has ended."""
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
