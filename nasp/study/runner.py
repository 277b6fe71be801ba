"""Running a study: every arm x seed a search, then an evaluation of its genotype, by an executor (nasp/study/
executor.py): one after another in this process (``executor=local``), or side by side as Ray tasks (``ray``).

Resumable: a sub-run whose status is finished (or failed: it would fail again) is not redone; a stopped or
died one continues from its checkpoint; one that never reached a checkpoint starts again. An evaluation is
submitted as soon as its search has finished. study.json (written atomically after every change) lists the
sub-runs and their states. A stop (Ctrl-C, SIGTERM) stops the sub-runs in progress after their step, with a
checkpoint, and ends the study; running it again continues."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console

from nasp.errors import ConfigError
from nasp.runfolder import ACTIVE, StudyFolder, check_out
from nasp.study.config import StudyConfig, eval_config, eval_tree, search_config, search_tree
from nasp.study.executor import Ended, LocalExecutor, StudyExecutor
from nasp.study.subrun import SubRun, sub_state

FORMAT = "nasp-study/1"
DONE = ("finished", "failed")  # states a resumed study does not run again


def make_executor(cfg: StudyConfig, folder: StudyFolder, console: bool = True) -> StudyExecutor:
    """The executor ``cfg.executor`` names (Ray's: a MissingExtraError when Ray is not installed)."""
    if cfg.executor == "ray":
        from nasp.study.ray_executor import RayExecutor

        return RayExecutor(cfg, folder.logs_dir(), console=console)
    return LocalExecutor(console=console)


def plan(cfg: StudyConfig, folder: StudyFolder) -> list[tuple[SubRun, SubRun | None]]:
    """(search, eval or None) per arm and seed, every config built and checked first."""
    from nasp.search_run import validate

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
        search = SubRun(arm.label, seed, "search", spath, search_tree(cfg, arm, seed, folder.search_dir()), cfg.threads)
        evaluation = None
        if arm.evaluate:
            eval_config(cfg, arm, seed, spath, folder.eval_dir())  # checked
            evaluation = SubRun(arm.label, seed, "eval", folder.eval_dir() / f"{arm.label}-s{seed}",
                                eval_tree(cfg, arm, seed, spath, folder.eval_dir()), cfg.threads)
        pairs.append((search, evaluation))
    return pairs


def write_manifest(folder: StudyFolder, cfg: StudyConfig, pairs: list[tuple[SubRun, SubRun | None]],
                   state: str) -> None:
    runs = [{"arm": r.arm, "seed": r.seed, "kind": r.kind, "path": str(r.path.relative_to(folder.path)),
             "state": sub_state(r.path)} for pair in pairs for r in pair if r is not None]
    folder.write_manifest({"format": FORMAT, "state": state, "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
                           "config": cfg.study_tree(), "runs": runs})


def open_study(cfg: StudyConfig) -> tuple[StudyConfig, StudyFolder]:
    """The study folder for ``cfg`` (created), or the one ``resume=`` names with its own config (and this run's
    executor keys). A folder holding a different study is refused: its sub-runs would be mixed with this one's. A
    resumed study imports only the plugins named again in ``plugins=`` (as a run's resume), never those its
    study.json names."""
    from nasp.config import build_config, merge
    from nasp.trainer.launch import check_plugins_named

    if cfg.resume:
        folder = StudyFolder(cfg.resume)
        manifest = folder.read_manifest()
        try:
            stored = build_config(merge(manifest.get("config", {}), cfg.run_time_tree()), StudyConfig)
        except ConfigError as exc:
            raise ConfigError(f"resume: '{folder.manifest_path}' does not hold a study config: {exc}") from None
        check_plugins_named({"plugins": stored.used_plugins()}, cfg.plugins, cfg.resume, "study")
        return stored.with_plugins(cfg.plugins), folder
    if cfg.plugins:
        raise ConfigError("key 'plugins': plugins= names again the plugins of a study continued with resume=; a new "
                          "study's plugins go in search.plugins (and eval.plugins)")
    folder = StudyFolder(cfg.out)  # created once every sub-run's config is checked (run_study): a refused one makes none
    if folder.is_study():
        stored = folder.read_manifest().get("config")
        if stored != cfg.study_tree():
            raise ConfigError(f"key 'out': '{cfg.out}' holds another study (its study.json config differs); continue "
                              f"it with `nasp study resume={cfg.out}` or choose another out=")
    return cfg, folder


def run_study(cfg: StudyConfig, console: bool = True) -> str:
    """Run (or continue) the study; returns its state: finished, or stopped when a signal stopped its sub-runs
    (or a sub-run's worker died more often than Ray retries it)."""
    import torch

    from nasp.study.table import write_table

    if cfg.executor == "ray":  # before any folder is made: without Ray this is one line saying how to install it
        from nasp.study.ray_executor import require_ray

        require_ray()
    cfg, folder = open_study(cfg)
    if cfg.executor == "ray":  # the sub-runs' processes may run on other machines (a shared file system)
        folder = StudyFolder(folder.path.resolve())
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    if cfg.executor == "ray" and cfg.threads is None:  # each sub-run's threads match the CPUs it asks for
        cfg = cfg.model_copy(update={"threads": max(1, int(cfg.study.cpus_per_run))})
    pairs = plan(cfg, folder)
    check_out(folder.path)
    out = Console(stderr=True, soft_wrap=True)
    write_manifest(folder, cfg, pairs, "running")
    with make_executor(cfg, folder, console) as executor:
        state = _schedule(executor, pairs, lambda: write_manifest(folder, cfg, pairs, "running"), out, console)
    write_manifest(folder, cfg, pairs, state)
    if state == "finished":
        write_table(folder)
    return state


def _schedule(executor: StudyExecutor, pairs: list[tuple[SubRun, SubRun | None]], changed: Callable[[], None], out: Console,
              console: bool) -> str:
    """Submit every sub-run not done (an evaluation once its search has finished), collect them as they end."""
    from nasp.study.progress import StudyProgress

    states: dict[str, str] = {}
    eval_of = {str(s.path): e for s, e in pairs if e is not None}
    subs = [r for pair in pairs for r in pair if r is not None]

    def offer(sub: SubRun) -> None:
        state = sub_state(sub.path)
        if state in DONE:
            states[str(sub.path)] = "kept"
            if console and not executor.parallel:
                out.print(f"study: {sub.label}: {state}, kept", highlight=False)
            return
        if state in ACTIVE:
            raise ConfigError(f"study: sub-run '{sub.path}' is in use by another process; stop it first")
        states[str(sub.path)] = "submitted"
        executor.submit(sub)

    for search, evaluation in pairs:
        offer(search)
        if evaluation is not None and sub_state(search.path) == "finished":
            offer(evaluation)
    progress = StudyProgress(subs, out) if console and executor.parallel else None
    died: list[Ended] = []
    try:
        while executor.pending():
            if progress is not None:
                progress.update(states)
            for end in executor.wait(timeout=1.0):
                states[str(end.sub.path)] = end.state
                changed()
                if end.state == "died":
                    died.append(end)
                evaluation = eval_of.get(str(end.sub.path))
                if end.state == "finished" and evaluation is not None and not executor.stopping:
                    offer(evaluation)
                if end.state == "stopped":
                    executor.stop()
    finally:
        if progress is not None:
            progress.update(states)
            progress.close()
    for end in died:
        out.print(f"study: {end.message or end.sub.label + ': died'}", highlight=False)
    return "stopped" if executor.stopping or died else "finished"
