"""One sub-run of a study (a search or an evaluation), the same way under every executor: started from its config
tree, or continued from its checkpoint; a folder that died before its first checkpoint is started again. A
sub-run crosses processes and machines as JSON (``SubRun.to_json``: the Ray executor's tasks)."""

from __future__ import annotations

import json
import shutil
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nasp.runfolder import RunFolder


@dataclass
class SubRun:
    """A sub-run as data (it crosses processes and machines): its config tree builds its RunConfig or EvalConfig."""

    arm: str
    seed: int
    kind: str  # search | eval
    path: Path
    tree: dict[str, Any] = field(default_factory=dict)
    threads: int | None = None  # torch threads of the process that runs it (the study's threads=)

    @property
    def label(self) -> str:
        return f"{self.kind} {self.arm} seed {self.seed}"

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "path": str(self.path)})

    @classmethod
    def from_json(cls, text: str) -> SubRun:
        raw = json.loads(text)
        return cls(**{**raw, "path": Path(raw["path"])})


def sub_state(path: Path) -> str:
    """A sub-run's state from its run folder: new (no folder), or its status (finished, stopped, died...)."""
    if not path.is_dir():
        return "new"
    return RunFolder(path).status().state


def trainer_for(sub: SubRun, console: bool = True) -> Any:
    """A trainer that starts the sub-run, or continues it from its checkpoint (a folder without one is started
    again: it holds no finished epoch, and it is inside the study folder)."""
    from nasp.config import RunConfig, build_config
    from nasp.evaluation.config import EvalConfig
    from nasp.evaluation.run import resume_eval, start_eval
    from nasp.search_run import resume_run, start_run

    cfg = build_config(sub.tree, RunConfig if sub.kind == "search" else EvalConfig)
    if sub.path.is_dir() and RunFolder(sub.path).has_checkpoint():  # the plugins its config names (the user's own)
        resume = resume_run if sub.kind == "search" else resume_eval
        return resume(sub.path, console=console, plugins=cfg.plugins)
    if sub.path.is_dir():
        shutil.rmtree(sub.path)
    return start_run(cfg, console=console) if sub.kind == "search" else start_eval(cfg, console=console)


def run_subrun(sub: SubRun, console: bool = True, out: Any = None, stop: threading.Event | None = None) -> str:
    """Run the sub-run to its end in this process (Ctrl-C or SIGTERM: a stop after the step, with a checkpoint);
    returns how it ended: finished, stopped or failed. ``stop``: a stop asked before the trainer was ready."""
    import torch

    from nasp.trainer.signals import stop_on_signals

    if sub.threads is not None:
        torch.set_num_threads(sub.threads)
    trainer = trainer_for(sub, console)
    with stop_on_signals(trainer, out):
        if stop is not None and stop.is_set():
            trainer.request_stop()  # it stops before its first step, with a checkpoint
        end = trainer.fit()
    if end.status == "finished" and trainer.stop_requested:  # a stop after its last step: the study stops too
        return "stopped"
    return str(end.status)
