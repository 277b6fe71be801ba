"""From an EvalConfig to a running evaluation: validation, the run folder, resume, dry run, `nasp test`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from nasp.config import build_config, merge, parse_overrides
from nasp.data import DATASETS
from nasp.errors import ConfigError, DataError, GenotypeError, RegistryError, ResumeError
from nasp.evaluation.callbacks import MODEL_FORMAT, EvalCheckpointer, EvalConsole, EvalFiles
from nasp.evaluation.config import EvalConfig
from nasp.evaluation.data import build_eval_data
from nasp.evaluation.network import EvalNetwork, count_params
from nasp.evaluation.trainer import EvalTrainer, score
from nasp.genotype import Genotype
from nasp.genotypes import resolve_genotype
from nasp.plugins import load_plugins, resolve_device
from nasp.trainer import Callback
from nasp.trainer.files import atomic_write_text, truncate_jsonl, unique_dir

# (classes, image channels) of the built-in in-memory sets, so a dry run needs no data
DATA_SHAPES = {"cifar10": (10, 3), "cifar100": (100, 3), "embedded": (10, 1), "fashion-mnist": (10, 1)}


def validate_eval(cfg: EvalConfig) -> Genotype:
    """Every check that needs the registries (plugins loaded first); returns the genotype to evaluate."""
    load_plugins(cfg.plugins)
    if not cfg.genotype:
        raise ConfigError("key 'genotype': say what to evaluate: genotype=<run folder | genotype .json file | name> "
                          "(`nasp genotypes` lists the names)")
    try:
        DATASETS.get(cfg.data.name)
    except RegistryError as exc:
        raise ConfigError(f"key 'data': {exc}") from None
    resolve_device(cfg.device)
    return resolve_genotype(cfg.genotype)


def genotype_label(spec: str) -> str:
    """A short name for run folders: the genotype's name, or its run folder / file name."""
    path = Path(spec)
    if path.exists():
        return path.parent.name if path.name == "genotype.json" else (path.name if path.is_dir() else path.stem)
    return spec


def build_network(genotype: Genotype, cfg: EvalConfig, num_classes: int, in_channels: int) -> EvalNetwork:
    m = cfg.model
    return EvalNetwork(genotype, m.channels, m.layers, num_classes, in_channels, m.network, m.auxiliary, m.stem_multiplier)


def data_shape(cfg: EvalConfig) -> tuple[int, int]:
    """(classes, channels) of the dataset, from the table for built-in sets, else by loading its training split."""
    if cfg.data.name in DATA_SHAPES and cfg.data.root is None:
        return DATA_SHAPES[cfg.data.name]
    from nasp.data.datasets import load_dataset

    data = load_dataset(cfg.data.name, cfg.data.root)
    return data.num_classes, data.channels


def dry_run(cfg: EvalConfig) -> dict[str, Any]:
    """Parameter counts of the network ``cfg`` describes (built on the meta device: no memory, no data)."""
    genotype = validate_eval(cfg)
    num_classes, in_channels = data_shape(cfg)
    with torch.device("meta"):
        net = build_network(genotype, cfg, num_classes, in_channels)
    return {"genotype": cfg.genotype, "space": genotype.space, "params": count_params(net),
            "params_with_aux": count_params(net, auxiliary=True), "num_classes": num_classes,
            "in_channels": in_channels, "network": cfg.model.network, "channels": cfg.model.channels,
            "layers": cfg.model.layers}


def build_eval_trainer(cfg: EvalConfig, genotype: Genotype, run_dir: Path,
                       callbacks: list[Callback] | None = None) -> EvalTrainer:
    device = resolve_device(cfg.device)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    channels_last = cfg.use_channels_last(device.type)
    data = build_eval_data(cfg, device, channels_last)
    torch.manual_seed(cfg.seed)
    net = build_network(genotype, cfg, data.num_classes, data.channels).to(device)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    params = (count_params(net), count_params(net, auxiliary=True))
    return EvalTrainer(cfg, net, data, run_dir, genotype.model_dump(mode="json", exclude_none=True), callbacks, params)


def new_eval_dir(cfg: EvalConfig) -> Path:
    assert cfg.genotype is not None
    name = cfg.name or f"{time.strftime('%Y%m%d-%H%M%S')}-eval-{genotype_label(cfg.genotype)}"
    return unique_dir(Path(cfg.out) / name)


def eval_callbacks(run_dir: Path, console: bool = True) -> list[Callback]:
    cbs: list[Callback] = [EvalFiles(run_dir), EvalCheckpointer(run_dir)]
    if console:
        cbs.append(EvalConsole())
    return cbs


def start_eval(cfg: EvalConfig, callbacks: list[Callback] | None = None, console: bool = True) -> EvalTrainer:
    """A new run folder (config.json, genotype.json) and a trainer ready to ``fit``."""
    genotype = validate_eval(cfg)
    run_dir = new_eval_dir(cfg)
    trainer = build_eval_trainer(cfg, genotype, run_dir, eval_callbacks(run_dir, console) + list(callbacks or []))
    run_dir.mkdir(parents=True)
    atomic_write_text(run_dir / "config.json", cfg.model_dump_json(indent=2) + "\n")
    atomic_write_text(run_dir / "genotype.json", genotype.to_json() + "\n")
    return trainer


def resume_eval(run_dir: str | Path, callbacks: list[Callback] | None = None, console: bool = True) -> EvalTrainer:
    """A trainer that continues the evaluation in ``run_dir`` from its last checkpoint."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ResumeError(f"resume: '{run_dir}' is not a folder")
    cfg_path, ckpt_path, geno_path = run_dir / "config.json", run_dir / "checkpoint.pt", run_dir / "genotype.json"
    if not cfg_path.is_file():
        raise ResumeError(f"resume: '{run_dir}' has no config.json; is it a run folder of `nasp eval`?")
    try:
        raw = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as exc:
        raise ResumeError(f"resume: '{cfg_path}' is unreadable: {exc}") from None
    if isinstance(raw, dict) and "algorithm" in raw:
        raise ResumeError(f"resume: '{run_dir}' is a search run; continue it with `nasp run resume={run_dir}`")
    try:
        cfg: EvalConfig = build_config(raw, EvalConfig)
    except ConfigError as exc:
        raise ResumeError(f"resume: '{cfg_path}' is unreadable: {exc}") from None
    if not ckpt_path.is_file():
        raise ResumeError(f"resume: '{run_dir}' has no checkpoint.pt yet (the run stopped before its first "
                          f"checkpoint); start it again instead")
    load_plugins(cfg.plugins)
    genotype = resolve_genotype(Genotype.load(geno_path))
    trainer = build_eval_trainer(cfg, genotype, run_dir, eval_callbacks(run_dir, console) + list(callbacks or []))
    try:
        state = torch.load(ckpt_path, map_location=trainer.device, weights_only=False)
        trainer.load_state_dict(state)
    except Exception as exc:
        raise ResumeError(f"resume: '{ckpt_path}' is unreadable ({type(exc).__name__}: {exc})") from None
    truncate_jsonl(run_dir / "metrics.jsonl", trainer.progress.epoch)
    return trainer


def load_model_record(path: str | Path, which: str = "last") -> tuple[Path, dict[str, Any]]:
    """A model saved by `nasp eval` (best.pt / last.pt), or the ``which`` one of a run folder."""
    path = Path(path)
    if path.is_dir():
        path = path / f"{which}.pt"
    if not path.is_file():
        raise ConfigError(f"test: '{path}' does not exist (give best.pt or last.pt of an eval run, or its folder)")
    try:
        record = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise ConfigError(f"test: '{path}' is unreadable ({type(exc).__name__}: {exc})") from None
    if not isinstance(record, dict) or record.get("format") != MODEL_FORMAT:
        raise ConfigError(f"test: '{path}' is not a model saved by `nasp eval` (its best.pt or last.pt)")
    return path, record


def test_model(path: str | Path, overrides: list[str] | None = None, which: str = "last") -> dict[str, Any]:
    """Score a saved model on the test split of its dataset (or of ``data=...`` given in ``overrides``)."""
    path, record = load_model_record(path, which)
    tree = merge(record["config"], parse_overrides(list(overrides or []), EvalConfig))
    if record.get("image_size") and "image_size" not in tree.get("data", {}):
        tree.setdefault("data", {})["image_size"] = record["image_size"]
    cfg: EvalConfig = build_config(tree, EvalConfig)
    load_plugins(cfg.plugins)
    try:
        genotype = Genotype.model_validate(record["genotype"])
    except ValueError as exc:
        raise GenotypeError(f"test: the genotype saved in '{path}' is invalid: {exc}") from None
    device = resolve_device(cfg.device)
    channels_last = cfg.use_channels_last(device.type)
    data = build_eval_data(cfg, device, channels_last, train=False)
    if (data.num_classes, data.channels) != (record["num_classes"], record["in_channels"]):
        raise DataError(f"test: the model was trained on {record['num_classes']} classes of {record['in_channels']}-channel "
                        f"images; data '{cfg.data.name}' has {data.num_classes} classes of {data.channels}-channel images")
    net = build_network(genotype, cfg, data.num_classes, data.channels)
    net.load_state_dict(record["model"])
    net = net.to(device)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    t0 = time.perf_counter()
    result = score(net, data.test_batches(), device, cfg.amp, data.num_classes)
    return {"model": str(path), "genotype": genotype.model_dump(mode="json", exclude_none=True), "epoch": record["epoch"],
            "params": count_params(net), "dataset": cfg.data.name, "images": data.test_images, **result,
            "seconds": time.perf_counter() - t0, "device": str(device)}
