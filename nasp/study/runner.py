"""Running a study: every arm x seed a search, then an evaluation of its genotype, in this process.

Resumable: a sub-run whose status is finished (or failed: it would fail again) is not redone; a stopped or
died one continues from its checkpoint; one that never reached a checkpoint starts again. study.json (written
atomically after every change) lists the sub-runs and their states. A stop (Ctrl-C, SIGTERM) stops the
sub-run in progress after its step, with a checkpoint, and ends the study; running it again continues."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from nasp.errors import ConfigError
from nasp.runfolder import ACTIVE, RunFolder, StudyFolder, check_out
from nasp.study.config import StudyConfig, eval_config, search_config
from nasp.trainer import Trainer

FORMAT = "nasp-study/1"
DONE = ("finished", "failed")  # states a resumed study does not run again


@dataclass
class SubRun:
    arm: str
    seed: int
    kind: str  # search | eval
    path: Path
    start: Callable[[], Trainer]
    resume: Callable[[], Trainer]


def plan(cfg: StudyConfig, folder: StudyFolder, console: bool = True) -> list[tuple[SubRun, SubRun | None]]:
    """(search, eval or None) per arm and seed, every config built and checked first."""
    from nasp.evaluation.run import resume_eval, start_eval
    from nasp.search_run import resume_run, start_run, validate

    if not cfg.arms:
        raise ConfigError("key 'arms': a study needs at least one arm (a label and its algorithm), see "
                          "the preset study-cpu (nasp presets)")
    pairs: list[tuple[SubRun, SubRun | None]] = []
    # seed by seed, every arm that runs the study's seeds (a study stopped part-way has comparable arms, not all
    # seeds of the first), then the arms with their own seeds (a figure's extra runs)
    common = [a for a in cfg.arms if a.seeds is None]
    order = [(a, seed) for seed in cfg.seeds for a in common]
    order += [(a, seed) for a in cfg.arms if a.seeds is not None for seed in a.seeds]
    for arm, seed in order:
        scfg = search_config(cfg, arm, seed, folder.search_dir())
        try:
            validate(scfg)
        except ConfigError as exc:
            raise ConfigError(f"arm '{arm.label}' (search): {exc}") from None
        spath = folder.search_dir() / f"{arm.label}-s{seed}"
        search = SubRun(arm.label, seed, "search", spath, lambda c=scfg: start_run(c, console=console),
                        lambda p=spath, c=scfg: resume_run(p, console=console, plugins=c.plugins))
        evaluation = None
        if arm.evaluate:
            ecfg = eval_config(cfg, arm, seed, spath, folder.eval_dir())
            epath = folder.eval_dir() / f"{arm.label}-s{seed}"
            evaluation = SubRun(arm.label, seed, "eval", epath, lambda c=ecfg: start_eval(c, console=console),
                                lambda p=epath, c=ecfg: resume_eval(p, console=console, plugins=c.plugins))
        pairs.append((search, evaluation))
    return pairs


def sub_state(path: Path) -> str:
    """A sub-run's state from its run folder: new (no folder), or its status (finished, stopped, died...)."""
    if not path.is_dir():
        return "new"
    return RunFolder(path).status().state


def write_manifest(folder: StudyFolder, cfg: StudyConfig, pairs: list[tuple[SubRun, SubRun | None]],
                   state: str) -> None:
    runs = [{"arm": r.arm, "seed": r.seed, "kind": r.kind, "path": str(r.path.relative_to(folder.path)),
             "state": sub_state(r.path)} for pair in pairs for r in pair if r is not None]
    folder.write_manifest({"format": FORMAT, "state": state, "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
                           "config": cfg.study_tree(), "runs": runs})


def open_study(cfg: StudyConfig) -> tuple[StudyConfig, StudyFolder]:
    """The study folder for ``cfg`` (created), or the one ``resume=`` names with its own config. A folder holding
    a different study is refused: its sub-runs would be mixed with this one's. A resumed study imports only the
    plugins named again in ``plugins=`` (as a run's resume), never those its study.json names."""
    from nasp.config import build_config
    from nasp.trainer.launch import check_plugins_named

    if cfg.resume:
        folder = StudyFolder(cfg.resume)
        manifest = folder.read_manifest()
        try:
            stored = build_config(manifest.get("config", {}), StudyConfig)
        except ConfigError as exc:
            raise ConfigError(f"resume: '{folder.manifest_path}' does not hold a study config: {exc}") from None
        check_plugins_named({"plugins": stored.used_plugins()}, cfg.plugins, cfg.resume, "study")
        return stored.with_plugins(cfg.plugins), folder
    if cfg.plugins:
        raise ConfigError("key 'plugins': plugins= names again the plugins of a study continued with resume=; a new "
                          "study's plugins go in search.plugins (and eval.plugins)")
    folder = StudyFolder(check_out(cfg.out))
    if folder.is_study():
        stored = folder.read_manifest().get("config")
        if stored != cfg.study_tree():
            raise ConfigError(f"key 'out': '{cfg.out}' holds another study (its study.json config differs); continue "
                              f"it with `nasp study resume={cfg.out}` or choose another out=")
    return cfg, folder


def run_study(cfg: StudyConfig, console: bool = True) -> str:
    """Run (or continue) the study; returns its state: finished, or stopped when a signal stopped a sub-run."""
    import torch

    from nasp.study.table import write_table
    from nasp.trainer.signals import stop_on_signals

    cfg, folder = open_study(cfg)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    pairs = plan(cfg, folder, console)
    out = Console(stderr=True, soft_wrap=True)
    write_manifest(folder, cfg, pairs, "running")
    total = sum(1 for pair in pairs for r in pair if r is not None)
    n = 0
    for search, evaluation in pairs:
        for sub in (search, evaluation):
            if sub is None:
                continue
            n += 1
            state = sub_state(sub.path)
            if state in DONE:
                if console:
                    out.print(f"study: [{n}/{total}] {sub.kind} {sub.arm} seed {sub.seed}: {state}, kept", highlight=False)
                continue
            if sub.kind == "eval" and sub_state(search.path) != "finished":
                continue  # its search failed: nothing to evaluate
            if state in ACTIVE:
                raise ConfigError(f"study: sub-run '{sub.path}' is in use by another process; stop it first")
            if console:
                out.print(f"study: [{n}/{total}] {sub.kind} {sub.arm} seed {sub.seed}", highlight=False)
            trainer = _trainer(sub, state)
            with stop_on_signals(trainer, out):
                end = trainer.fit()
            write_manifest(folder, cfg, pairs, "running")
            if end.status == "stopped":
                write_manifest(folder, cfg, pairs, "stopped")
                return "stopped"
    write_manifest(folder, cfg, pairs, "finished")
    write_table(folder)
    return "finished"


def _trainer(sub: SubRun, state: str) -> Trainer:
    """Start the sub-run, or continue it from its checkpoint; a folder without one is started again."""
    if state == "new":
        return sub.start()
    if RunFolder(sub.path).has_checkpoint():
        return sub.resume()
    shutil.rmtree(sub.path)  # inside the study folder, and it holds no finished epoch
    return sub.start()
