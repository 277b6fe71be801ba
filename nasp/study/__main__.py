"""``python -m nasp.study SPEC``: one sub-run of a study in a process of its own (the Ray executor's tasks start
it; nasp/study/ray_executor.py). SPEC is the sub-run as JSON (``SubRun.to_json``). Its exit code says how it ended:
0 finished, 130 stopped, 3 failed, 2 a bad input (one line on stderr). SIGINT or SIGTERM stops it after its step,
with a checkpoint, also while it is being set up; on Linux so does the death of the process that started it."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

from nasp.runfolder import RunFolder
from nasp.study.subrun import EXIT_FOR, PARENT_ENV, SubRun, run_subrun


def _stop_with_parent() -> None:
    """Linux: a SIGTERM (a stop at the step boundary, checkpointed) when the process that started this one dies,
    so that a killed Ray worker leaves no sub-run behind; a parent already gone ends this process at once."""
    parent = os.environ.get(PARENT_ENV)
    if not parent or not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != int(parent):
        sys.exit(EXIT_FOR["stopped"])


def _wait_unlocked(path: Path, wait_s: float) -> None:
    """The process of an earlier attempt (its worker killed) may still be writing its stop checkpoint."""
    deadline = time.monotonic() + wait_s
    while path.is_dir() and RunFolder(path).locked_by_someone() and time.monotonic() < deadline:
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.text import Text

    from nasp.errors import NaspError

    # a stop asked while the sub-run is being set up is kept for it (Ray's processes block SIGINT: unblocked)
    stop = threading.Event()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: stop.set())
    _stop_with_parent()
    err = Console(stderr=True, soft_wrap=True)
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        err.print("usage: python -m nasp.study SPEC (a sub-run as JSON; nasp study writes it)")
        return 2
    try:
        sub = SubRun.from_json(args[0])
        _wait_unlocked(sub.path, 120.0)
        return EXIT_FOR[run_subrun(sub, console=False, out=err, stop=stop)]
    except NaspError as exc:
        err.print(Text.assemble(("nasp study: error: ", "bold red"), str(exc)), soft_wrap=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
