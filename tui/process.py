"""A search the app starts: `nasp run` in a child process that the app follows through its run folder.

Why a process and not a thread: the app then never shares an interpreter (its lock, its garbage
collector) with the training loop, so a key is answered as fast while a search trains as when it
does not; a crash in the search cannot take the app down; and the run is exactly the `nasp run` line
the setup screen shows. Control goes through the signals `nasp run` understands: SIGUSR1 pauses,
SIGUSR2 resumes, SIGTERM stops after the current step with a checkpoint (as Ctrl-C does, but a
repeated SIGTERM never aborts the checkpoint the way a second Ctrl-C would).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PAUSE, RESUME = getattr(signal, "SIGUSR1", None), getattr(signal, "SIGUSR2", None)
STOP = signal.SIGTERM


def send(pid: int, sig: signal.Signals | None) -> bool:
    """Send ``sig`` to ``pid``; False when the process is gone or the platform lacks the signal."""
    if sig is None:
        return False
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


class SearchProcess:
    """`python -m nasp COMMAND ARGS` (``run``, or ``eval`` from the genotype editor), its output in ``RUNS/.logs/``
    (kept when it fails, removed otherwise)."""

    def __init__(self, args: list[str], runs_dir: Path, run_dir: Path | None = None, nice: int = 0,
                 command: str = "run") -> None:
        self.runs_dir = runs_dir
        self.command = command
        self.run_dir = run_dir  # known for a resume; found by the child's pid for a new run
        self.started = time.time()
        from nasp.runfolder import LOGS  # (imported here: the app imports this module before torch, see startup.py)

        logs = runs_dir / LOGS
        logs.mkdir(parents=True, exist_ok=True)
        log = tempfile.NamedTemporaryFile(dir=logs, prefix=time.strftime("%Y%m%d-%H%M%S-"), suffix=".log",  # noqa: SIM115
                                          delete=False)
        self.log = Path(log.name)
        with log:
            self.proc = subprocess.Popen([sys.executable, "-m", "nasp", command, *args], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT)
        if nice > 0 and hasattr(os, "setpriority"):
            # a lower CPU priority keeps the search out of the way of other work (it runs slower there)
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, self.proc.pid, nice)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    def find_run_dir(self) -> Path | None:
        """The run folder the child created: the newest one whose status names the child's pid."""
        if self.run_dir is None:
            from nasp.runfolder import iter_run_folders

            for folder in iter_run_folders(self.runs_dir):
                if folder.status().pid == self.pid:
                    self.run_dir = folder.path
                    break
        return self.run_dir

    def failure(self) -> str:
        """What the child said before exiting with an error: its error line, else the end of its output."""
        try:
            lines = [x.strip() for x in self.log.read_text(errors="replace").splitlines() if x.strip()]
        except OSError:
            lines = []
        prefix = f"nasp {self.command}: error: "
        for line in reversed(lines):
            if line.startswith(prefix):
                return line.removeprefix(prefix)
        tail = " / ".join(lines[-3:])
        return f"`nasp {self.command}` exited with code {self.returncode}" + (f": {tail}" if tail else "")

    def discard_log(self) -> None:
        with contextlib.suppress(OSError):
            self.log.unlink()
