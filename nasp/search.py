"""From a RunConfig to a running search: plugins, validation, the run folder, resume."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from nasp.algorithms import ALGORITHMS, SearchAlgorithm
from nasp.config import RunConfig, build_config
from nasp.data import DATASETS, Batches, load_dataset, split_indices
from nasp.errors import ConfigError, RegistryError, ResumeError
from nasp.model import SearchNetwork
from nasp.plugins import load_plugins, resolve_device
from nasp.spaces import SearchSpace, get_space
from nasp.trainer import Callback, Checkpointer, ConsoleProgress, RunFiles, Trainer
from nasp.trainer.files import atomic_write_text, truncate_jsonl, unique_dir
from nasp.viz.callback import CellDrawings


def resolve_space(cfg: RunConfig) -> SearchSpace:
    try:
        space = get_space(cfg.space.name)
    except RegistryError as exc:
        raise ConfigError(f"key 'space': {exc}") from None
    ops = {ct: getattr(cfg.space, ct) for ct in ("normal", "reduce") if getattr(cfg.space, ct) is not None}
    if ops:
        try:
            space = space.with_ops(**ops)
        except ValueError as exc:
            raise ConfigError(f"key 'space': {exc}") from None
    return space


def validate(cfg: RunConfig) -> SearchSpace:
    """Every check that needs the registries (plugins loaded first); returns the space."""
    load_plugins(cfg.plugins)
    try:
        algo_cls = ALGORITHMS.get(cfg.algorithm.name)
    except RegistryError as exc:
        raise ConfigError(f"key 'algorithm': {exc}") from None
    fields = type(cfg.algorithm).model_fields
    stray = sorted(k for k in cfg.algorithm.model_fields_set - algo_cls.options - {"name"}
                   if getattr(cfg.algorithm, k) != fields[k].get_default(call_default_factory=True))
    if stray:
        users = sorted(n for n in ALGORITHMS.names() if stray[0] in ALGORITHMS.get(n).options)
        raise ConfigError(f"key 'algorithm.{stray[0]}' does not apply to {cfg.algorithm.name}"
                          + (f" (it applies to {', '.join(users)})" if users else ""))
    if cfg.data.name not in DATASETS:
        try:
            DATASETS.get(cfg.data.name)
        except RegistryError as exc:
            raise ConfigError(f"key 'data': {exc}") from None
    space = resolve_space(cfg)
    if space.kind != "cnn":
        raise ConfigError(f"key 'space': '{space.name}' is a {space.kind} space; image search needs a cnn space")
    resolve_device(cfg.device)
    return space


def build_trainer(cfg: RunConfig, run_dir: Path, callbacks: list[Callback] | None = None) -> Trainer:
    space = validate(cfg)
    device = resolve_device(cfg.device)
    data = load_dataset(cfg.data.name, cfg.data.root)
    train_idx, val_idx = split_indices(len(data), cfg.data.limit, cfg.data.train_portion, cfg.seed)
    channels_last = cfg.channels_last and device.type != "mps"
    augment = cfg.data.augment and data.channels == 3
    train = Batches(data, train_idx, cfg.batch_size, device, augment, cfg.seed, channels_last)
    val = Batches(data, val_idx, cfg.batch_size, device, False, cfg.seed + 1, channels_last)
    torch.manual_seed(cfg.seed)
    net = SearchNetwork(space, cfg.model.channels, cfg.model.layers, data.num_classes, data.channels,
                        cfg.model.stem_multiplier).to(device)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    algo_cls: type[SearchAlgorithm] = ALGORITHMS.get(cfg.algorithm.name)
    algo = algo_cls(space, net, cfg.algorithm, cfg.optim, cfg.epochs, device, cfg.amp, cfg.seed)
    size = (cfg.model.channels, cfg.model.layers, data.num_classes, data.channels)
    return Trainer(algo, train, val, cfg.epochs, run_dir, callbacks, cfg.model_dump(mode="json"), size)


def new_run_dir(cfg: RunConfig) -> Path:
    name = cfg.name or f"{time.strftime('%Y%m%d-%H%M%S')}-{cfg.algorithm.name}-{Path(cfg.space.name).stem}"
    return unique_dir(Path(cfg.out) / name)


def standard_callbacks(run_dir: Path, console: bool = True) -> list[Callback]:
    cbs: list[Callback] = [RunFiles(run_dir), Checkpointer(run_dir), CellDrawings(run_dir)]
    if console:
        cbs.append(ConsoleProgress())
    return cbs


def start_run(cfg: RunConfig, callbacks: list[Callback] | None = None, console: bool = True) -> Trainer:
    """A new run folder with its resolved config, and a trainer ready to ``fit``."""
    validate(cfg)
    run_dir = new_run_dir(cfg)
    trainer = build_trainer(cfg, run_dir, standard_callbacks(run_dir, console) + list(callbacks or []))
    run_dir.mkdir(parents=True)
    atomic_write_text(run_dir / "config.json", cfg.model_dump_json(indent=2) + "\n")
    return trainer


def resume_run(run_dir: str | Path, callbacks: list[Callback] | None = None, console: bool = True) -> Trainer:
    """A trainer that continues ``run_dir`` from its last checkpoint."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ResumeError(f"resume: '{run_dir}' is not a folder")
    cfg_path, ckpt_path = run_dir / "config.json", run_dir / "checkpoint.pt"
    if not cfg_path.is_file():
        raise ResumeError(f"resume: '{run_dir}' has no config.json; is it a run folder of `nasp run`?")
    if not ckpt_path.is_file():
        raise ResumeError(f"resume: '{run_dir}' has no checkpoint.pt yet (the run stopped before its first "
                          f"checkpoint); start it again instead")
    try:
        cfg = build_config(json.loads(cfg_path.read_text()))
    except (json.JSONDecodeError, ConfigError) as exc:
        raise ResumeError(f"resume: '{cfg_path}' is unreadable: {exc}") from None
    trainer = build_trainer(cfg, run_dir, standard_callbacks(run_dir, console) + list(callbacks or []))
    try:
        state = torch.load(ckpt_path, map_location=trainer.algorithm.device, weights_only=False)
        trainer.load_state_dict(state)
    except Exception as exc:
        raise ResumeError(f"resume: '{ckpt_path}' is unreadable ({type(exc).__name__}: {exc})") from None
    done = trainer.progress.epoch
    for name in ("metrics.jsonl", "history.jsonl"):
        truncate_jsonl(run_dir / name, done)
    return trainer
