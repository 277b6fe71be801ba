"""Live progress of a study whose sub-runs run side by side: every sub-run's state, epoch, score and ETA, read from
its run folder's status.json (written by whichever process or machine runs it). On a terminal a table redrawn in
place (rich); otherwise one line per change, for logs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from nasp.runfolder import ACTIVE, RunFolder
from nasp.study.subrun import SubRun

SCORES = ("test_acc", "val_acc", "val_ppl", "test_ppl")  # the first a status holds is the sub-run's score


@dataclass(frozen=True)
class Row:
    label: str
    state: str
    epoch: int
    epochs: int
    score: str
    eta: str

    def line(self) -> str:
        epochs = f", epoch {self.epoch}/{self.epochs}" if self.epochs else ""
        score = f", {self.score}" if self.score != "—" else ""
        eta = f", ETA {self.eta}" if self.eta != "—" else ""
        return f"study: {self.label}: {self.state}{epochs}{score}{eta}"


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def row_of(sub: SubRun, state: str) -> Row:
    """A sub-run's row from its run folder; ``state`` is the study's word for it (submitted: running once its
    folder says so, else queued; kept, finished, stopped...)."""
    epoch = epochs = 0
    score, eta = "—", "—"
    if state == "submitted":
        state = "queued"
    if sub.path.is_dir():
        status = RunFolder(sub.path).status()
        if state == "queued" and (status.state in ACTIVE or status.state in ("finished", "failed")):  # (ending)
            state = "running"
        epoch, epochs = status.epoch, status.epochs
        values: dict[str, Any] = status.values
        for key in SCORES:
            if isinstance(values.get(key), int | float):
                score = f"{key} {values[key]:.4g}"
                break
        elapsed = values.get("elapsed_s")
        if state == "running" and isinstance(elapsed, int | float) and 0 < epoch < epochs:
            eta = _duration(elapsed / epoch * (epochs - epoch))
    return Row(sub.label, state, epoch, epochs, score, eta)


class StudyProgress:
    """``update(states)`` with the study's state of every sub-run; ``close`` at the end."""

    def __init__(self, subs: list[SubRun], console: Console) -> None:
        self.subs = subs
        self.console = console
        self._last: dict[str, Row] = {}
        self._live: Live | None = None
        if console.is_terminal:
            self._live = Live(console=console, auto_refresh=False, transient=False)
            self._live.start()

    def update(self, states: dict[str, str]) -> None:
        rows = [row_of(s, states.get(str(s.path), "waiting")) for s in self.subs]
        if self._live is not None:
            self._live.update(self._table(rows), refresh=True)
            return
        for row in rows:
            if self._last.get(row.label) != row:
                self.console.print(row.line(), highlight=False)
                self._last[row.label] = row

    @staticmethod
    def _table(rows: list[Row]) -> Table:
        table = Table(title="nasp study", title_justify="left", box=None, pad_edge=False)
        for col in ("sub-run", "state", "epoch", "score", "ETA"):
            table.add_column(col)
        for r in rows:
            style = {"finished": "green", "kept": "green", "running": "cyan", "failed": "red", "died": "red",
                     "stopped": "yellow"}.get(r.state, "dim")
            table.add_row(r.label, f"[{style}]{r.state}[/]", f"{r.epoch}/{r.epochs}" if r.epochs else "—", r.score, r.eta)
        return table

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
