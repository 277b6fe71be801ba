"""Key latency of nasp-tui, end to end: the app runs in a pseudo-terminal as in a real one, a search
trains in it, and each measurement is the time from writing a key to the terminal until the app's
output shows the key's effect (the live screen switching between its Ā and A tabs).

    python benchmarks/tui_latency.py RUNS_DIR [key=value ...] [--nice N]    # e.g. data.limit=512 model.channels=4 device=cuda

Prints the app's start-up time, the time to the first Ā update and the latency figures (median, 90th
percentile, max). Set PRESSES for the number of key presses (default 30).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import re
import select
import statistics
import struct
import sys
import termios
import time
from pathlib import Path

import yaml

from nasp.config import parse_overrides

ANSI = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>]|\x1b\][^\x07]*\x07")


class Terminal:
    """The app in a pseudo-terminal of ``cols`` x ``rows``; ``out`` collects everything it writes."""

    def __init__(self, args: list[str], cols: int = 100, rows: int = 32) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the app, as `nasp-tui ARGS` would start it
            os.environ["TERM"] = "xterm-256color"
            os.execvp(sys.executable, [sys.executable, "-c", "import sys; from tui.app import main; sys.exit(main())",
                                       *args])
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.out = bytearray()

    def pump(self, timeout: float) -> bool:
        """Read what the app wrote, waiting up to ``timeout`` for it; True when something came."""
        if select.select([self.fd], [], [], timeout)[0]:
            with contextlib.suppress(OSError):  # the app has exited
                data = os.read(self.fd, 1 << 20)
                self.out.extend(data)
                return bool(data)
        return False

    def text_since(self, mark: int) -> bytes:
        return ANSI.sub(b"", bytes(self.out[mark:]))

    def wait_for(self, pattern: bytes, mark: int, limit: float) -> float | None:
        """Monotonic time at which ``pattern`` (a regex) appeared in the output after ``mark``, or None."""
        t0 = time.perf_counter()
        fresh = True
        while time.perf_counter() - t0 < limit:
            # like a terminal, this side works only when output arrives (it shares the CPU with the app)
            if fresh and re.search(pattern, self.text_since(mark)):
                return time.perf_counter()
            fresh = self.pump(0.05)
        return None

    def key(self, data: bytes) -> None:
        os.write(self.fd, data)

    def idle(self, seconds: float) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            self.pump(0.01)


def progress(runs: Path) -> str:
    """Where the search is now and its last event (a 'step' event shows it was still training)."""
    events = [json.loads(line) for path in runs.glob("*/events.jsonl") for line in path.read_text().splitlines()]
    steps = [e for e in events if e.get("event") == "step"]
    if not steps:
        return "no step event"
    last = steps[-1]
    where = f"{len(steps)} step events, the last at epoch {last['epoch'] + 1} step {last['step']}/{last['steps_per_epoch']}"
    training = events[-1].get("event") in ("step", "epoch_end")
    return f"{where}; the search is {'still training' if training else 'NOT training (' + events[-1]['event'] + ')'}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print(__doc__)
        return 2
    app_args = [a for i, a in enumerate(argv) if a.startswith("--") or (i and argv[i - 1].startswith("--"))]
    argv = [a for a in argv if a not in app_args]
    runs = Path(argv[0])
    runs.mkdir(parents=True, exist_ok=True)
    config = runs / "latency.yaml"
    config.write_text(yaml.safe_dump({**parse_overrides(argv[1:]), "out": str(runs)}))
    term = Terminal(["--config", str(config), "--runs", str(runs), *app_args])
    t0 = time.perf_counter()
    if term.wait_for(rb"valid config", 0, 180) is None:
        print("the app did not start:", term.text_since(0)[-2000:].decode(errors="replace"))
        return 1
    print(f"app up after {time.perf_counter() - t0:.1f} s", flush=True)
    mark = len(term.out)
    term.key(b"\x12")  # ctrl+r: start the search
    if term.wait_for(rb"updates [1-9]", mark, 600) is None:
        print("no step arrived:", term.text_since(mark)[-2000:].decode(errors="replace"))
        return 1
    print(f"first Ā update after {time.perf_counter() - t0:.1f} s", flush=True)
    latencies = []
    for i in range(int(os.environ.get("PRESSES", "30"))):
        key, effect = (b"2", rb"cell A\b") if i % 2 == 0 else (b"1", "cell Ā \\(edges".encode())
        mark = len(term.out)
        sent = time.perf_counter()
        term.key(key)
        seen = term.wait_for(effect, mark, 10)
        latencies.append(((seen or time.perf_counter()) - sent) * 1e3)
        term.idle(0.25)
    s = sorted(latencies)
    print(f"key latency while the search trained: n={len(s)} median {statistics.median(s):.1f} ms, "
          f"p90 {s[int(0.9 * len(s)) - 1]:.1f} ms, max {s[-1]:.1f} ms", flush=True)
    print("all (ms):", " ".join(f"{x:.0f}" for x in latencies))
    print(f"after the last press: {progress(runs)}")
    mark = len(term.out)
    term.key(b"x")
    term.wait_for(rb"stopped", mark, 300)
    term.key(b"\x11")  # ctrl+q
    for _ in range(1000):
        term.pump(0.01)
        if os.waitpid(term.pid, os.WNOHANG)[0]:
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())
