"""From an EvalConfig to a running evaluation: validation, the run folder, resume, dry run, `nasp test`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from nasp import distributed
from nasp.config import build_config, check_cuda_only, merge, parse_overrides
from nasp.data import CORPORA, DATASETS
from nasp.errors import ConfigError, DataError, GenotypeError, RegistryError, ResumeError
from nasp.evaluation.callbacks import MODEL_FORMAT, EvalModels
from nasp.evaluation.config import EvalConfig, apply_rnn_defaults
from nasp.evaluation.data import build_eval_data
from nasp.evaluation.network import DenseEvalNetwork, EvalNetwork
from nasp.evaluation.task import EvalTask, score
from nasp.genotype import Genotype
from nasp.genotypes import read_genotype, resolve_genotype
from nasp.model.budget import available_memory, check_memory, count_params, estimate_eval_memory
from nasp.plugins import load_plugins, resolve_device
from nasp.runfolder import GENOTYPE, RunFolder, RunFolderError, default_name, load_torch
from nasp.trainer import Callback, Task, Trainer, launch

# (classes, image channels) of the built-in in-memory sets, so a dry run needs no data
DATA_SHAPES = {"cifar10": (10, 3), "cifar100": (100, 3), "embedded": (10, 1), "fashion-mnist": (10, 1)}


def validate_eval(cfg: EvalConfig) -> Genotype:
    """Every check that needs the registries (plugins loaded first); returns the genotype to evaluate. A recurrent
    genotype's config takes DARTS's recurrent recipe for the shared keys it was not given (in place)."""
    load_plugins(cfg.plugins)
    if not cfg.genotype:
        raise ConfigError("key 'genotype': say what to evaluate: genotype=<run folder | genotype .json file | name> "
                          "(`nasp genotypes` lists the names)")
    genotype = resolve_genotype(cfg.genotype, ("cnn", "rnn", "dense"))
    if is_recurrent(genotype):
        from nasp.evaluation.recurrent import check_rnn_config

        apply_rnn_defaults(cfg)
        check_rnn_config(cfg)
    try:
        (CORPORA if is_recurrent(genotype) else DATASETS).get(cfg.data.name)
    except RegistryError as exc:
        raise ConfigError(f"key 'data': {exc}") from None
    check_cuda_only(cfg, resolve_device(cfg.device).type)
    return genotype


def is_recurrent(genotype: Genotype) -> bool:
    space = genotype.resolve_space()
    return space is not None and space.kind == "rnn"


def genotype_label(spec: str) -> str:
    """A short name for run folders: the genotype's name, or its run folder / file name ("darts" or "nb201" for a
    string)."""
    from nasp.genotypes.registry import string_form
    from nasp.safe_io import exists

    form = string_form(spec)
    if form:
        return form
    if spec.lstrip().startswith("{"):  # a genotype's JSON: its space's name
        return str(read_genotype(spec).space)
    path = Path(spec)
    if exists(path):
        return path.parent.name if path.name == GENOTYPE else (path.name if path.is_dir() else path.stem)
    return spec


def is_dense(genotype: Genotype) -> bool:
    space = genotype.resolve_space()
    return space is not None and space.kind == "dense"


def build_network(genotype: Genotype, cfg: EvalConfig, num_classes: int, in_channels: int
                  ) -> EvalNetwork | DenseEvalNetwork:
    """DARTS's evaluation network of a cnn genotype; NAS-Bench-201's of a dense one (model.layers cells per stage)."""
    m = cfg.model
    if is_dense(genotype):
        return DenseEvalNetwork(genotype, m.channels, m.layers, num_classes, in_channels)
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
    if is_recurrent(genotype):
        from nasp.evaluation.recurrent import rnn_dry_run

        return rnn_dry_run(cfg, genotype)
    num_classes, in_channels = data_shape(cfg)
    with torch.device("meta"):
        net = build_network(genotype, cfg, num_classes, in_channels)
    return {"genotype": cfg.genotype, "space": genotype.space, "params": count_params(net),
            "params_with_aux": count_params(net, auxiliary=True), "num_classes": num_classes,
            "in_channels": in_channels, "network": cfg.model.network, "channels": cfg.model.channels,
            "layers": cfg.model.layers}


def build_eval_task(cfg: EvalConfig, genotype: Genotype) -> Task:
    device = resolve_device(cfg.device)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    if is_recurrent(genotype):
        from nasp.evaluation.recurrent import build_rnn_task

        return build_rnn_task(cfg, genotype, device)
    channels_last = cfg.use_channels_last(device.type)
    data = build_eval_data(cfg, device, channels_last)
    m = cfg.model
    if not is_dense(genotype):  # the estimate follows DARTS's layout
        rows = min(cfg.batch_size, data.train_images)  # a step's rows: all the data when batch_size is more
        estimate = estimate_eval_memory(genotype, m.channels, m.layers, rows, data.image_size, data.channels,
                                        data.num_classes, m.stem_multiplier, 8 if m.network == "imagenet" else 1)
        check_memory(estimate, available_memory(device), "the evaluation network", str(device))
    torch.manual_seed(cfg.seed)
    net = build_network(genotype, cfg, data.num_classes, data.channels).to(device)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    if cfg.model.sync_bn:
        net = distributed.sync_batch_norm(net)
    params = (count_params(net), count_params(net, auxiliary=True))
    return EvalTask(cfg, net, data, genotype.model_dump(mode="json", exclude_none=True), params)


def eval_callbacks(folder: RunFolder, task: Task) -> list[Callback]:
    if isinstance(task, EvalTask):
        return [EvalModels(folder, task)]
    from nasp.evaluation.recurrent import RNNEvalModels, RNNEvalTask

    assert isinstance(task, RNNEvalTask)
    return [RNNEvalModels(folder, task)]


def start_eval(cfg: EvalConfig, callbacks: list[Callback] | None = None, console: bool = True) -> Trainer:
    """A new run folder (config.json, genotype.json) and a trainer ready to ``fit``. With ``resume=auto`` (and
    a ``name=``): the run folder out/name continues from its checkpoint when it has one, else starts there."""
    if cfg.resume == "auto":
        found = launch.auto_folder(cfg.out, cfg.name, "eval")
        if found is not None:
            return resume_eval(found, callbacks, console, cfg.plugins, cfg.change_world_size)
    genotype = validate_eval(cfg)
    assert cfg.genotype is not None
    name = cfg.name or default_name("eval", genotype_label(cfg.genotype))
    written = cfg.model_copy(update={"resume": None})
    return launch.start(lambda: build_eval_task(cfg, genotype), cfg.out, name, written.model_dump_json(indent=2),
                        lambda folder: folder.write_genotype(genotype.to_json()), eval_callbacks, callbacks, console,
                        loggers=cfg.loggers, reuse=cfg.resume == "auto")


def resume_eval(run_dir: str | Path, callbacks: list[Callback] | None = None, console: bool = True,
                plugins: list[str] | None = None, change_world_size: bool = False) -> Trainer:
    """A trainer that continues the evaluation in ``run_dir`` from its last good checkpoint."""
    folder, raw = launch.open_for_resume(run_dir, "eval", "eval")
    try:
        launch.check_plugins_named(raw, list(plugins or []), run_dir, "eval")
        try:
            cfg: EvalConfig = build_config({**raw, "plugins": list(plugins or [])}, EvalConfig)
        except ConfigError as exc:
            raise ResumeError(f"resume: '{folder.config_path}' is unreadable: {exc}") from None
        load_plugins(cfg.plugins)
        genotype = resolve_genotype(distributed.on_main(lambda: Genotype.load(folder.genotype_path)),
                                    ("cnn", "rnn", "dense"))
        return launch.resume(folder, build_eval_task(cfg, genotype), eval_callbacks, callbacks, console,
                             loggers=cfg.loggers, change_world_size=change_world_size)
    except BaseException:
        folder.unlock()
        raise


def load_model_record(path: str | Path, which: str = "last") -> tuple[Path, dict[str, Any]]:
    """A model saved by `nasp eval` (best.pt / last.pt), or the ``which`` one of a run folder."""
    path, named = Path(path), True
    if path.is_dir():
        path, named = RunFolder(path).model_path(which), False
    if not path.exists():
        raise ConfigError(f"test: '{path}' does not exist (give best.pt or last.pt of an eval run, or its folder)")
    try:
        record = load_torch(path, follow=named)  # a file the user names may be a link; one in a run folder not
    except RunFolderError as exc:
        raise ConfigError(f"test: {exc}") from None
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
    if record.get("kind") == "rnn":
        from nasp.evaluation.recurrent import test_rnn_model

        return test_rnn_model(path, record, cfg, genotype)
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
