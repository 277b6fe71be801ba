"""Run folders as the runs screen sees them: a summary per run, and a run's history to replay."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasp.trainer.files import read_jsonl
from tui.livestate import LiveState


@dataclass
class RunInfo:
    """One run folder's status and latest results (from status.json, config.json, metrics.jsonl)."""

    path: Path
    status: str
    epoch: int
    epochs: int
    algorithm: str
    space: str
    data: str
    val_acc: float | None
    param_count: int | None
    pid: int | None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def resumable(self) -> bool:
        return self.status in ("stopped", "interrupted") and (self.path / "checkpoint.pt").is_file()

    @property
    def followable(self) -> bool:
        return self.status in ("running", "paused")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_info(path: Path) -> RunInfo | None:
    """The summary of a run folder, or None when ``path`` is not one (no config.json)."""
    cfg = _read_json(path / "config.json")
    if not cfg:
        return None
    status = _read_json(path / "status.json")
    metrics = read_jsonl(path / "metrics.jsonl")
    last = metrics[-1] if metrics else {}
    state = str(status.get("status", "new"))
    pid = status.get("pid")
    if state in ("running", "paused") and not pid_alive(pid):
        state = "interrupted"  # killed without a clean stop: resumable from its last epoch checkpoint
    return RunInfo(
        path=path, status=state, epoch=int(status.get("epoch", last.get("epoch", 0)) or 0),
        epochs=int(status.get("epochs", cfg.get("epochs", 0)) or 0),
        algorithm=str(cfg.get("algorithm", {}).get("name", "?")), space=str(cfg.get("space", {}).get("name", "?")),
        data=str(cfg.get("data", {}).get("name", "?")),
        val_acc=status.get("val_acc", last.get("val_acc")), param_count=last.get("param_count"), pid=pid)


def list_runs(folder: str | Path) -> list[RunInfo]:
    """Run folders under ``folder``, newest name first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    infos = [run_info(p) for p in sorted(folder.iterdir(), reverse=True) if p.is_dir()]
    return [i for i in infos if i is not None]


def first_event(path: Path) -> dict[str, Any]:
    """The run_start event of a run folder (it carries the resolved search space)."""
    try:
        with open(path / "events.jsonl") as f:
            return json.loads(f.readline())
    except (OSError, json.JSONDecodeError):
        return {}


def run_space(path: Path, config: dict[str, Any]) -> dict[str, Any] | None:
    """The run's search space as a dict: from its run_start event, else rebuilt from its config."""
    start = first_event(path)
    if start.get("space"):
        return start["space"]
    from nasp.config import build_config
    from nasp.errors import NaspError
    from nasp.plugins import load_plugins
    from nasp.search import resolve_space

    try:
        cfg = build_config(config)
        load_plugins(cfg.plugins)
        return resolve_space(cfg).model_dump()
    except NaspError:
        return None


def load_run_state(path: str | Path) -> LiveState:
    """A LiveState holding a finished (or stopped) run's epochs, from metrics.jsonl and history.jsonl."""
    path = Path(path)
    config = _read_json(path / "config.json")
    status = _read_json(path / "status.json")
    state = LiveState()
    state.apply({"event": "run_start", "run_dir": str(path), "config": config, "space": run_space(path, config),
                 "epochs": config.get("epochs", 0), "steps_per_epoch": 0}, 0.0)
    metrics = {int(m["epoch"]): m for m in read_jsonl(path / "metrics.jsonl") if "epoch" in m}
    for rec in read_jsonl(path / "history.jsonl"):
        e = int(rec.get("epoch", 0))
        state.apply({"event": "epoch_end", **metrics.get(e, {}), "epoch": e, "epochs": state.epochs, "A": rec.get("A"),
                     "discrete": rec.get("discrete"), "genotype": rec.get("genotype")}, 0.0)
    state.status = str(status.get("status", "finished"))
    return state


class EventTail:
    """Follows a run folder's events.jsonl written by another process: new complete lines on each poll."""

    def __init__(self, run_dir: str | Path, from_end: bool = False) -> None:
        """``from_end``: only what is appended from now on (a resumed run's earlier sessions are known)."""
        self.path = Path(run_dir) / "events.jsonl"
        self.offset = self.path.stat().st_size if from_end and self.path.is_file() else 0
        self.partial = b""

    def poll(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()  # an unterminated last line is still being written
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out
