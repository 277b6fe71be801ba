"""Run folders as the runs screen sees them: a summary per run (searches and evaluations), and a run's
history to replay. Every file is read through ``nasp.runfolder``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasp.runfolder import EventTail, RunFolder, iter_run_folders, read_json

from .livestate import LiveState

__all__ = ["EventTail", "RunInfo", "list_runs", "load_live_state", "load_run_state", "run_info"]


@dataclass
class RunInfo:
    """One run folder's status and latest results (from its status, config and metrics)."""

    path: Path
    kind: str  # search | eval
    status: str  # running | paused | stopped | finished | failed | died | new
    epoch: int
    epochs: int
    algorithm: str
    space: str
    data: str
    val_acc: float | None
    param_count: int | None
    pid: int | None
    error: str | None = None
    has_checkpoint: bool = False
    has_genotype: bool = False
    perplexity: float | None = None  # language models: the score shown instead of accuracy
    perplexity_of: str | None = None  # which split it is on (test, val)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def resumable(self) -> bool:
        """A search the app can continue (`nasp run resume=`): stopped, died or failed, with a checkpoint."""
        return self.kind == "search" and self.status in ("stopped", "died", "failed") and self.has_checkpoint

    @property
    def followable(self) -> bool:
        return self.status in ("running", "paused")


UNREADABLE = "unreadable"  # the status of a folder the browser skips (a planted link, a FIFO, an endless file)


def run_info(path: str | Path) -> RunInfo | None:
    """The summary of a run folder, or None when ``path`` is not one (no config.json). A folder whose files cannot
    be read safely is skipped: status ``unreadable``, the reason as its error, nothing else read."""
    from nasp.errors import NaspError

    try:
        return _run_info(RunFolder(path))
    except NaspError as exc:
        return RunInfo(path=Path(path), kind="?", status=UNREADABLE, epoch=0, epochs=0, algorithm="?", space="?",
                       data="?", val_acc=None, param_count=None, pid=None, error=str(exc))


def _run_info(folder: RunFolder) -> RunInfo | None:
    cfg = read_json(folder.config_path)
    if not cfg:
        return None
    st = folder.status()
    metrics = folder.metrics()
    last = metrics[-1] if metrics else {}
    if st.kind == "eval":
        start = folder.first_event()
        space = str((start.get("genotype") or read_json(folder.genotype_path)).get("space", "?"))
        algorithm, acc, params = f"eval {cfg.get('genotype', '?')}", last.get("test_acc"), start.get("params")
        acc = st.values.get("test_acc", acc)
        values = {**last, **st.values}
        ppl, ppl_of = ((values["test_ppl"], "test") if values.get("test_ppl") is not None else
                       (values.get("best_valid_ppl", values.get("valid_ppl")), "val"))
    else:
        algorithm, space = str(cfg.get("algorithm", {}).get("name", "?")), str(cfg.get("space", {}).get("name", "?"))
        acc, params = st.values.get("val_acc", last.get("val_acc")), last.get("param_count")
        ppl, ppl_of = st.values.get("val_ppl", last.get("val_ppl")), "val"
    return RunInfo(path=folder.path, kind=st.kind, status=st.state, epoch=st.epoch or int(last.get("epoch", 0) or 0),
                   epochs=st.epochs or int(cfg.get("epochs", 0) or 0), algorithm=algorithm, space=space,
                   data=str(cfg.get("data", {}).get("name", "?")), val_acc=acc if isinstance(acc, int | float) else None,
                   param_count=params if isinstance(params, int) else None, pid=st.pid, error=st.error,
                   has_checkpoint=folder.has_checkpoint(), has_genotype=folder.genotype_path.is_file(),
                   perplexity=ppl if isinstance(ppl, int | float) else None, perplexity_of=ppl_of)


def list_runs(folder: str | Path) -> list[RunInfo]:
    """Run folders under ``folder``, newest name first."""
    infos = [run_info(f.path) for f in iter_run_folders(folder)]
    return [i for i in infos if i is not None]


def run_space(path: Path, config: dict[str, Any]) -> dict[str, Any] | None:
    """The run's search space as a dict, read from its files (run_start event, genotype, config) and checked
    for structure; None when they do not tell it. Never imports the plugins its config names (viewing runs
    no code named in a run folder)."""
    from nasp.errors import NaspError
    from nasp.viz.read import read_run_space

    try:
        return read_run_space(path).model_dump()
    except NaspError:
        return None


def load_run_state(path: str | Path) -> LiveState:
    """A LiveState holding a finished (or stopped) search's epochs, from its metrics and history."""
    folder = RunFolder(path)
    config = read_json(folder.config_path)
    state = LiveState()
    state.apply({"event": "run_start", "run_dir": str(folder.path), "config": config,
                 "space": run_space(folder.path, config), "epochs": config.get("epochs", 0), "steps_per_epoch": 0}, 0.0)
    metrics = {int(m["epoch"]): m for m in folder.metrics() if "epoch" in m}
    for rec in folder.history():
        e = int(rec.get("epoch", 0))
        state.apply({"event": "epoch_end", **metrics.get(e, {}), "epoch": e, "epochs": state.epochs, "A": rec.get("A"),
                     "discrete": rec.get("discrete"), "genotype": rec.get("genotype")}, 0.0)
    state.status = folder.status().state
    return state


def load_live_state(path: str | Path) -> LiveState:
    """A stopped search as the live screen showed it: every event it wrote, replayed (per-step curves, Ā and its
    updates, the epochs), so a resume started here goes on drawing the same curves. Falls back to the epochs
    (``load_run_state``) for a folder without events."""
    folder = RunFolder(path)
    if not folder.has_events():
        return load_run_state(path)
    state = LiveState()
    for event in folder.events():
        state.apply(event, 0.0)
    state.status = folder.status().state
    return state


def resume_plugins(path: str | Path) -> list[str]:
    """The plugins a run imported (its config.json): a resume must name them again to import them."""
    plugins = read_json(RunFolder(path).config_path).get("plugins") or []
    return [str(p) for p in plugins] if isinstance(plugins, list) else []


def resume_details(info: RunInfo, plugins: list[str]) -> str:
    """What resuming ``info`` does: where its checkpoint is, the steps done after it that are trained again, the
    plugins it imports again."""
    events = RunFolder(info.path).events()
    saved: tuple[int, int | None] = (0, None)  # (epoch, step) of the latest checkpoint, as events count them
    for e in events:  # in order: an epoch's end writes one, and so does a stop (where it stopped)
        if e.get("event") == "epoch_end":
            saved = (int(e.get("epoch", 0)), None)
        elif e.get("event") == "run_end" and e.get("status") == "stopped":
            saved = (int(e.get("epoch", 0)), int(e.get("step", 0)))
    steps = [e for e in events if e.get("event") == "step"]
    seen = (int(steps[-1]["epoch"]), int(steps[-1]["step"])) if steps else (0, 0)
    where = (f"epoch {saved[0]} step {saved[1]}" if saved[1] is not None
             else f"the end of epoch {saved[0]}" if saved[0] else "the start")
    lines = [f"{info.algorithm} on {info.space}, {info.status}; {info.epoch}/{info.epochs} epochs done.",
             f"It continues from its checkpoint at {where}."]
    spe = int(steps[-1].get("steps_per_epoch", 0)) if steps else 0
    done_at_checkpoint = (saved[0] - (1 if saved[1] is not None else 0)) * spe + (saved[1] if saved[1] is not None else 0)
    done_seen = (seen[0] - 1) * spe + seen[1] if steps else 0
    if spe and done_seen > done_at_checkpoint:
        lines.append(f"The {done_seen - done_at_checkpoint} steps after it (up to epoch {seen[0]} step {seen[1]}) were "
                     f"not saved: they are trained again, to the same result.")
    if plugins:
        lines.append(f"It imports its plugins again (their code runs): {', '.join(plugins)}.")
    return "\n".join(lines)
