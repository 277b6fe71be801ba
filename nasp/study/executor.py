"""How a study's sub-runs are run: an executor takes sub-runs (``submit``) and hands back those that ended
(``wait``). The study (nasp/study/runner.py) decides what to submit and when (an evaluation once its search has
finished); an executor decides where and how many at once. ``LocalExecutor`` runs them one after another in
this process; ``RayExecutor`` (nasp/study/ray_executor.py) as Ray tasks, side by side, on one machine or a cluster.

A sub-run's outcome is its run folder's: the executor reports how it ended (finished, stopped, failed, died), the
study reads everything else from the folder, so the results do not depend on the executor."""

from __future__ import annotations

import abc
import signal
import threading
from collections import deque
from dataclasses import dataclass

from rich.console import Console

from nasp.study.subrun import SubRun, run_subrun


@dataclass
class Ended:
    """A sub-run that ended: finished, stopped (a stop was asked), failed (it diverged), or died (its process was
    killed more often than the executor retries it)."""

    sub: SubRun
    state: str
    message: str | None = None


STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))


class StudyExecutor(abc.ABC):
    """Runs sub-runs: ``submit`` queues one, ``wait`` returns those that ended since (blocking up to ``timeout``
    seconds for at least one), ``stop`` asks every queued or running one to stop at its next step boundary
    (checkpointed; queued ones do not start), ``close`` releases what the executor holds. Used as a context
    manager (in the main thread), Ctrl-C, SIGTERM or a closed terminal call ``stop`` for as long as it is open,
    also between sub-runs (a sub-run running in this process catches them itself, then hands them back)."""

    name: str = "executor"
    parallel: bool = False  # whether sub-runs run side by side (the study shows a table of them)

    @abc.abstractmethod
    def submit(self, sub: SubRun) -> None: ...

    @abc.abstractmethod
    def wait(self, timeout: float | None = None) -> list[Ended]: ...

    @abc.abstractmethod
    def pending(self) -> int:
        """Sub-runs submitted that have not ended."""

    @abc.abstractmethod
    def stop(self) -> None: ...

    @property
    @abc.abstractmethod
    def stopping(self) -> bool:
        """Whether a stop was asked (by ``stop``, or by a signal the executor caught)."""

    def close(self) -> None:  # noqa: B027 (optional)
        """Release the executor's resources (a Ray it started)."""

    def _on_signal(self, signum: int, frame: object) -> None:
        self.stop()

    def __enter__(self) -> StudyExecutor:
        self._handlers = {}
        if threading.current_thread() is threading.main_thread():
            self._handlers = {sig: signal.signal(sig, self._on_signal) for sig in STOP_SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.close()
        finally:
            for sig, handler in self._handlers.items():
                signal.signal(sig, handler)


class LocalExecutor(StudyExecutor):
    """One sub-run at a time, in this process: ``wait`` runs the next one to its end, an evaluation before any
    queued search (so a search's evaluation follows it), otherwise in the order submitted. A signal (Ctrl-C,
    SIGTERM) stops the one running after its step; the queued ones then do not start."""

    name = "local"

    def __init__(self, console: bool = True) -> None:
        self.console = console
        self.out = Console(stderr=True, soft_wrap=True)
        self._evals: deque[SubRun] = deque()
        self._searches: deque[SubRun] = deque()
        self._stopping = False

    def submit(self, sub: SubRun) -> None:
        (self._evals if sub.kind == "eval" else self._searches).append(sub)

    def pending(self) -> int:
        return len(self._evals) + len(self._searches)

    def wait(self, timeout: float | None = None) -> list[Ended]:
        if not self.pending():
            return []
        sub = (self._evals or self._searches).popleft()
        if self._stopping:
            return [Ended(sub, "stopped")]
        if self.console:
            self.out.print(f"study: {sub.label}", highlight=False)
        state = run_subrun(sub, console=self.console, out=self.out)
        if state == "stopped":
            self._stopping = True
        return [Ended(sub, state)]

    def stop(self) -> None:
        self._stopping = True

    @property
    def stopping(self) -> bool:
        return self._stopping
