"""A search as a task of the one run loop: the architecture step on a validation batch, the weight step on a
training batch; and from a RunConfig to a running search (validation, the run folder, resume)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from nasp.algorithms import ALGORITHMS, SearchAlgorithm, algorithm_options, with_algorithm_options
from nasp.config import RunConfig, build_config
from nasp.data import DATASETS, Batches, load_dataset
from nasp.errors import ConfigError, RegistryError
from nasp.model import create_search_network
from nasp.model.budget import available_memory, check_memory, estimate_search_memory
from nasp.plugins import resolve_device
from nasp.problems import ImageClassification
from nasp.runfolder import RunFolder, default_name
from nasp.spaces import SearchSpace, get_space
from nasp.trainer import Callback, Task, Trainer, launch


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
    algorithm_options(cfg)  # loads the plugins first; each algorithm checks its own keys
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


METRIC_KEYS = ("train_loss", "train_acc", "val_loss", "val_acc", "arch_loss", "lr", "arch_s", "weight_s", "eval_s",
               "elapsed_s", "param_count")


class SearchTask(Task):
    """One step = an architecture step on a validation batch, then a weight step on a training batch; an
    epoch ends with the searched network's validation loss and accuracy and the genotype."""

    kind = "search"
    command = "run"
    verb = "searching"

    def __init__(self, algorithm: SearchAlgorithm, problem: ImageClassification, train: Batches, val: Batches,
                 epochs: int, config: dict[str, Any], model_size: tuple[int, int, int, int]) -> None:
        self.algorithm = algorithm
        self.problem = problem
        self.train = train
        self.val = val
        self.epochs = epochs
        self.config = config
        self.model_size = model_size
        self.device = algorithm.device
        self.sums: dict[str, Any] = {}
        self.elapsed_s = 0.0
        self.last: dict[str, Any] = {}
        self._reset_sums()

    def _reset_sums(self) -> None:
        self.sums = {"arch_loss": 0.0, "train_loss": 0.0, "correct": 0, "seen": 0, "arch_s": 0.0, "weight_s": 0.0}

    @property
    def steps_per_epoch(self) -> int:
        return min(len(self.train), len(self.val))

    def start_info(self) -> dict[str, Any]:
        return {"space": self.algorithm.space.model_dump()}

    def start_epoch(self, epoch: int) -> None:
        self.algorithm.net.train()

    def batches(self, epoch: int, start_step: int) -> Iterator[tuple[Any, Any]]:
        for step, pair in enumerate(zip(self.train.epoch(epoch), self.val.epoch(epoch), strict=False)):
            if step >= start_step:  # the skipped batches are still drawn: the same random numbers follow
                yield pair

    def step(self, batch: tuple[Any, Any], epoch: int, step: int) -> dict[str, Any]:
        algo, sums = self.algorithm, self.sums
        train_batch, val_batch = batch
        t0 = time.perf_counter()
        arch_loss = algo.arch_step(val_batch, train_batch)
        t1 = time.perf_counter()
        loss, correct = algo.weight_step(train_batch)
        t2 = time.perf_counter()
        n = self.problem.batch_size(train_batch)
        sums["arch_loss"] += arch_loss
        sums["train_loss"] += loss * n
        sums["correct"] += correct
        sums["seen"] += n
        sums["arch_s"] += t1 - t0
        sums["weight_s"] += t2 - t1
        self.elapsed_s += t2 - t0
        return {"arch_loss": arch_loss, "train_loss": loss, "train_acc": correct / n, "arch_s": t1 - t0,
                "weight_s": t2 - t1, "discrete": algo.discrete_values()}

    def watched(self) -> dict[str, float]:
        algo = self.algorithm
        norm = algo.grad_norm
        return {"A": float(sum(a.detach().double().sum() for a in algo.A.values())),
                **({"grad_norm": float(norm)} if norm is not None else {})}

    def end_epoch(self, epoch: int) -> tuple[dict[str, Any], dict[str, Any]]:
        algo, sums = self.algorithm, self.sums
        t0 = time.perf_counter()
        algo.net.eval()
        scored = self.problem.score(algo.logits, self.val.epoch(0, shuffle=False))
        algo.net.train()
        algo.validated(scored["acc"])
        eval_s = time.perf_counter() - t0
        self.elapsed_s += eval_s
        lr = algo.weight_lr
        algo.end_epoch()
        genotype = algo.genotype()
        steps = max(self.steps_per_epoch, 1)
        metrics = {
            "train_loss": sums["train_loss"] / max(sums["seen"], 1), "train_acc": sums["correct"] / max(sums["seen"], 1),
            "val_loss": scored["loss"], "val_acc": scored["acc"], "arch_loss": sums["arch_loss"] / steps, "lr": lr,
            "arch_s": sums["arch_s"], "weight_s": sums["weight_s"], "eval_s": eval_s, "elapsed_s": self.elapsed_s,
            "param_count": genotype.param_count(*self.model_size)}
        record = {"A": algo.arch_values(), "discrete": algo.discrete_values(),
                  "genotype": genotype.model_dump(mode="json", exclude_none=True)}
        self.last = {"val_acc": scored["acc"], "val_loss": scored["loss"]}
        self._reset_sums()
        return metrics, record

    def result(self) -> dict[str, Any]:
        return {"val_acc": self.last.get("val_acc")}

    def state_dict(self) -> dict[str, Any]:
        return {"algorithm": self.algorithm.state_dict(), "sums": dict(self.sums), "elapsed_s": self.elapsed_s,
                "last": dict(self.last)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.algorithm.load_state_dict(state["algorithm"])
        self.sums, self.elapsed_s, self.last = dict(state["sums"]), float(state["elapsed_s"]), dict(state["last"])

    # --- console -------------------------------------------------------------------------------------
    describe_format = "{algorithm[name]} on {space[name]}, data {data[name]}, device {device}"
    step_format = "loss {train_loss:.3f} acc {train_acc:.2f} arch {arch_s:.2f}s w {weight_s:.2f}s"
    epoch_format = ("train loss {train_loss:.3f} acc {train_acc:.3f}  val loss {val_loss:.3f} acc {val_acc:.3f}  "
                    "params {params_m:.3f}M  arch {arch_s:.1f}s weight {weight_s:.1f}s")
    finished_format = "genotype in {genotype_path}"

    def fields(self, values: dict[str, Any]) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if "param_count" in values:
            extra["params_m"] = values["param_count"] / 1e6
        if "run_dir" in values:
            extra["genotype_path"] = RunFolder(values["run_dir"]).genotype_path
        return {**values, **extra}


def build_task(cfg: RunConfig) -> SearchTask:
    """The search ``cfg`` describes: data loaded and split, network and algorithm built."""
    space = validate(cfg)
    device = resolve_device(cfg.device)
    problem = ImageClassification(load_dataset(cfg.data.name, cfg.data.root))
    channels_last = cfg.channels_last and device.type != "mps"
    train, val = problem.search_batches(cfg.data.limit, cfg.data.train_portion, cfg.batch_size, device,
                                        cfg.data.augment, cfg.seed, channels_last)
    shape = problem.network_shape
    estimate = estimate_search_memory(space, cfg.model.channels, cfg.model.layers, cfg.batch_size, problem.data.size,
                                      shape["in_channels"], shape["num_classes"], cfg.model.stem_multiplier)
    check_memory(estimate, available_memory(device), "the search network", str(device))
    torch.manual_seed(cfg.seed)
    net = create_search_network(space, cfg.model.channels, cfg.model.layers, stem_multiplier=cfg.model.stem_multiplier,
                                **problem.network_shape).to(device)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    algo_cls: type[SearchAlgorithm] = ALGORITHMS.get(cfg.algorithm.name)
    algo = algo_cls(space, net, algorithm_options(cfg), cfg.optim, cfg.epochs, device, cfg.amp, cfg.seed)
    size = (cfg.model.channels, cfg.model.layers, shape["num_classes"], shape["in_channels"])
    return SearchTask(algo, problem, train, val, cfg.epochs, cfg.model_dump(mode="json"), size)


def search_callbacks(folder: RunFolder, task: Task) -> list[Callback]:
    from nasp.viz.callback import CellDrawings

    return [CellDrawings(folder.cells_dir)]


def start_run(cfg: RunConfig, callbacks: list[Callback] | None = None, console: bool = True) -> Trainer:
    """A new run folder with its resolved config, and a trainer ready to ``fit``."""
    validate(cfg)
    name = cfg.name or default_name(cfg.algorithm.name, cfg.space.name)
    return launch.start(lambda: build_task(cfg), cfg.out, name, with_algorithm_options(cfg).model_dump_json(indent=2),
                        own_callbacks=search_callbacks, callbacks=callbacks, console=console)


def resume_run(run_dir: str | Path, callbacks: list[Callback] | None = None, console: bool = True,
               plugins: list[str] | None = None) -> Trainer:
    """A trainer that continues ``run_dir`` from its last good checkpoint. Plugins the run used are imported
    only when named again in ``plugins``."""
    folder, raw = launch.open_for_resume(run_dir, "search", "run")
    try:
        launch.check_plugins_named(raw, list(plugins or []), run_dir, "run")
        raw = {**raw, "plugins": list(plugins or [])}
        cfg = build_config(raw)
        task = build_task(cfg)
        return launch.resume(folder, task, search_callbacks, callbacks, console)
    except BaseException:
        folder.unlock()
        raise
