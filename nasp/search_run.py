"""A search as a task of the one run loop: the architecture step on a validation batch, the weight step on a
training batch; and from a RunConfig to a running search (validation, the run folder, resume)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from nasp import distributed
from nasp.algorithms import ALGORITHMS, SearchAlgorithm, algorithm_options, with_algorithm_options
from nasp.config import RunConfig, build_config, check_cuda_only, keys_given, switch_on
from nasp.data import DATASETS, Batches, load_dataset
from nasp.data.corpus import CORPORA, load_corpus
from nasp.errors import ConfigError, DataError, RegistryError
from nasp.genotype import Genotype
from nasp.model import create_search_network
from nasp.model.budget import (
    DENSE_LOWER_KEYS,
    available_memory,
    check_memory,
    count_params,
    estimate_dense_search_memory,
    estimate_rnn_search_memory,
    estimate_search_memory,
    genotype_params,
)
from nasp.model.recurrent import RNNDropouts
from nasp.plugins import resolve_device
from nasp.problems import ImageClassification
from nasp.problems.language import LanguageModeling, TokenStream
from nasp.runfolder import RunFolder, default_name
from nasp.spaces import SearchSpace, get_space
from nasp.trainer import Callback, Task, Trainer, launch
from nasp.trainer.events import label_matrices
from nasp.viz.graph import CellShape, edge_names


def resolve_space(cfg: RunConfig) -> SearchSpace:
    try:
        space = get_space(cfg.space.name)
    except RegistryError as exc:
        raise ConfigError(f"key 'space': {exc}") from None
    for ct in ("normal", "reduce", "recurrent", "cell"):  # one at a time: the error names the key at fault
        ops = getattr(cfg.space, ct)
        if ops is not None:
            try:
                space = space.with_ops(**{ct: ops})
            except ValueError as exc:
                raise ConfigError(f"key 'space.{ct}': {str(exc).removeprefix(f'{ct} ops: ')}") from None
    return space


DEFAULT_CORPUS = "embedded-text"
# DARTS's recurrent search (rnn/train_search.py) where the image search's defaults do not fit, at quick sizes; keys
# given explicitly (on the command line, in YAML, in a resumed run's config.json) win. The learning rate is 5, not
# DARTS's 20: the quick network (nhid 64, light dropout) diverged in its fifth epoch at 20 and 10 (measured;
# docs/recurrent.md); the search-ptb preset has DARTS's 20
RNN_DEFAULTS: dict[str, Any] = {
    "data.name": DEFAULT_CORPUS, "data.limit": 120_000, "batch_size": 32, "epochs": 5,
    "optim.lr": 5.0, "optim.momentum": 0.0, "optim.weight_decay": 5e-7, "optim.grad_clip": 0.25,
    "optim.schedule": "constant", "algorithm.lr": 3e-3, "algorithm.betas": (0.9, 0.999), "algorithm.weight_decay": 1e-3,
}


# The quick cnn search (a bare `nasp run`) where the authors' start does not fit it: A = 0.5 everywhere makes every
# choice of Ā a tie that float rounding decides (a thread count changed the cell and the accuracy), and the arch step
# (about twice a weight step) is worth more once the weights are trained. A's start jittered by the seed, and the first
# 3/8 of the steps weights only, A's learning rate annealed so the cell settles before it is returned (docs/benchmarks.md,
# "The first run"); keys given explicitly win, and the paper presets give the authors' values
CNN_QUICK_DEFAULTS: dict[str, Any] = {"algorithm.init_jitter": 0.01, "algorithm.warmup": 0.375,
                                      "algorithm.lr_schedule": "cosine"}


def space_defaults(space: SearchSpace) -> dict[str, Any]:
    """The dotted keys whose default a run on ``space`` takes from its kind (rnn: RNN_DEFAULTS, cnn:
    CNN_QUICK_DEFAULTS), with those defaults; empty for another kind (a plugin's)."""
    return dict({"rnn": RNN_DEFAULTS, "cnn": CNN_QUICK_DEFAULTS}.get(space.kind, {}))


def with_space_defaults(cfg: RunConfig, space: SearchSpace) -> RunConfig:
    """``cfg`` with the defaults of ``space``'s kind (``space_defaults``) for every key not given explicitly."""
    defaults = space_defaults(space)
    if not defaults:
        return cfg
    cfg = cfg.model_copy(deep=True)
    for dotted, value in defaults.items():
        section, _, key = dotted.rpartition(".")
        if section == "algorithm":
            if key not in cfg.algorithm.given:
                cfg.algorithm.__pydantic_extra__[key] = value  # type: ignore[index]
            continue
        owner = getattr(cfg, section) if section else cfg
        if key not in owner.model_fields_set:
            setattr(owner, key, value)
    return cfg


def prepare(cfg: RunConfig) -> tuple[RunConfig, SearchSpace]:
    """Every check that needs the registries (plugins loaded first); returns the config with its space kind's
    defaults filled in, and the space."""
    algorithm_options(cfg)  # loads the plugins first; each algorithm checks its own keys
    space = resolve_space(cfg)
    cfg = with_space_defaults(cfg, space)
    algorithm_options(cfg)
    registry = CORPORA if space.kind == "rnn" else DATASETS
    if cfg.data.name not in registry:
        try:
            registry.get(cfg.data.name)
        except RegistryError as exc:
            what = "text corpus (an rnn space searches on text)" if space.kind == "rnn" else "image dataset"
            raise ConfigError(f"key 'data': {exc} ({what})") from None
    resolve_device(cfg.device)
    return cfg, space


def validate(cfg: RunConfig) -> SearchSpace:
    """Every check that needs the registries (plugins loaded first), and that no key given is one this search would
    ignore; returns the space."""
    return checked_new(cfg)[1]


def checked_new(cfg: RunConfig) -> tuple[RunConfig, SearchSpace]:
    """``prepare`` for a new run, and no key given that it would ignore (``check_given_keys``)."""
    checked, space = prepare(cfg)
    check_given_keys(cfg, space, resolve_device(checked.device).type)
    return checked, space


IMAGE_ONLY = ("model.*", "data.augment")  # keys an rnn search does not read
RNN_ONLY = ("rnn.*",)  # keys a cnn search does not read


def check_given_keys(cfg: RunConfig, space: SearchSpace, device_type: str) -> None:
    """A key given (on the command line, in a config file) that this search would not read is an error, as for
    `nasp eval`: model.* and data.augment in a recurrent search, rnn.* in an image one, cuda_graphs=on off CUDA.
    Only for a new run: a resumed run's config.json holds every key."""
    if space.kind == "rnn":
        given = keys_given(cfg, IMAGE_ONLY)
        if given:
            raise ConfigError(f"key '{given[0]}': applies to image searches only; space '{space.name}' is recurrent "
                              f"(its keys: rnn.*, see docs/recurrent.md)")
    else:
        given = keys_given(cfg, RNN_ONLY)
        if given:
            raise ConfigError(f"key '{given[0]}': applies to recurrent searches only (space=rnn); space "
                              f"'{space.name}' is a {space.kind} space")
    check_cuda_only(cfg, device_type)


METRIC_KEYS = ("train_loss", "train_acc", "val_loss", "val_acc", "arch_loss", "lr", "arch_s", "weight_s", "eval_s",
               "elapsed_s", "param_count")


SHARED_SUMS = ("arch_loss", "train_loss", "correct", "seen")  # an epoch's sums that every rank adds to


def arch_labels(space: SearchSpace) -> dict[str, tuple[list[str], list[str]]]:
    """Each cell type's (edge names, op names): the rows and columns of its A and Ā."""
    return {ct: (edge_names(CellShape(space.kind, cell.n_inputs, cell.reduction), cell.edges), list(cell.ops))
            for ct, cell in space.cells.items()}


class SearchTask(Task):
    """One step = an architecture step on a validation batch, then a weight step on a training batch; an
    epoch ends with the searched network's validation loss and accuracy and the genotype."""

    kind = "search"
    command = "run"
    verb = "searching"

    def __init__(self, algorithm: SearchAlgorithm, problem: ImageClassification | LanguageModeling,
                 train: Batches | TokenStream, val: Batches | TokenStream, epochs: int, config: dict[str, Any],
                 param_count: Callable[[Genotype], int],
                 lookup: Callable[[Genotype], dict[str, float]] | None = None) -> None:
        """``lookup``: more metrics of each epoch's genotype (a tabular benchmark's numbers for it)."""
        self.algorithm = algorithm
        self.lookup = lookup
        self.problem = problem
        self.train = train
        self.val = val
        self.epochs = epochs
        self.config = config
        self.param_count = param_count
        if isinstance(problem, LanguageModeling):
            self.epoch_format = self.epoch_format.replace("acc {val_acc:.3f}", "ppl {val_ppl:.1f}")
        if lookup is not None:
            self.epoch_format += "  NB201 test {bench201_test:.2f}%"
        self.device = algorithm.device
        self.sums: dict[str, Any] = {}
        self.elapsed_s = 0.0
        self.last: dict[str, Any] = {}
        self._watched: dict[str, float] = {}  # read with the last step's numbers
        self.labels = arch_labels(algorithm.space)
        self._reset_sums()

    def _reset_sums(self) -> None:
        self.sums = {"arch_loss": 0.0, "train_loss": 0.0, "correct": 0, "seen": 0, "arch_s": 0.0, "weight_s": 0.0}

    @property
    def steps_per_epoch(self) -> int:
        return min(len(self.train), len(self.val))

    @property
    def warmup_steps(self) -> int:
        """The search's first steps that train only the weights: ``algorithm.warmup`` of all its steps."""
        return int(getattr(self.algorithm.cfg, "warmup", 0.0) * self.epochs * self.steps_per_epoch)

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
        warming = epoch * self.steps_per_epoch + step < self.warmup_steps  # the first steps train the weights only
        arch_loss = 0.0 if warming else algo.arch_step(val_batch, train_batch)
        t1 = time.perf_counter()
        loss, correct = algo.weight_step(train_batch)
        read = self._read_step(arch_loss, loss, correct)  # the step's one transfer to the host: its wait counts here
        t2 = time.perf_counter()
        arch_loss, loss, correct = read["arch_loss"], read["train_loss"], int(read["correct"])
        n = self.problem.batch_size(train_batch)
        sums["arch_loss"] += arch_loss
        sums["train_loss"] += loss * n
        sums["correct"] += correct
        sums["seen"] += n
        sums["arch_s"] += t1 - t0
        sums["weight_s"] += t2 - t1
        self.elapsed_s += t2 - t0
        return {"arch_loss": arch_loss, "train_loss": loss, "train_acc": correct / n, "arch_s": t1 - t0,
                "weight_s": t2 - t1, "discrete": label_matrices(read["discrete"], self.labels)}

    def _read_step(self, *numbers: torch.Tensor | float) -> dict[str, Any]:
        """The step's numbers, what ``watched`` reports and Ā, read in one transfer (one host sync a step on a
        GPU, after both steps are queued, instead of one per number); the values are those read one by one."""
        algo = self.algorithm
        device = next(iter(algo.A.values())).device
        norm = algo.grad_norm
        scalars = [*numbers, sum(a.detach().double().sum() for a in algo.A.values()), *([norm] if norm is not None else [])]
        discrete = algo.discrete()
        flat = torch.cat([torch.as_tensor(v).to(device, torch.float64).reshape(1) for v in scalars]
                         + [a.detach().to(torch.float64).reshape(-1) for a in discrete.values()]).tolist()
        self._watched = {"A": flat[3], **({"grad_norm": flat[4]} if norm is not None else {})}
        out: dict[str, Any] = {"arch_loss": flat[0], "train_loss": flat[1], "correct": flat[2], "discrete": {}}
        offset = len(scalars)
        for ct, a in discrete.items():
            rows, cols = a.shape
            out["discrete"][ct] = [flat[offset + r * cols:offset + (r + 1) * cols] for r in range(rows)]
            offset += rows * cols
        return out

    def watched(self) -> dict[str, float]:
        return self._watched

    def replicated(self) -> dict[str, list[torch.Tensor]]:
        algo = self.algorithm
        return {"A": list(algo.A.values()), "Ā": list(algo.discrete().values())}

    def end_epoch(self, epoch: int) -> tuple[dict[str, Any], dict[str, Any]]:
        algo, sums = self.algorithm, self.sums
        if distributed.current() is not None:  # the epoch's numbers over the global batches
            sums = {**sums, **distributed.all_sum({k: sums[k] for k in SHARED_SUMS})}
            sums["arch_loss"] /= distributed.size()
        t0 = time.perf_counter()
        distributed.average_buffers(algo.net)
        algo.net.eval()
        scored = self.problem.score(algo.logits, self.val.epoch(0, shuffle=False))
        algo.net.train()
        algo.validated(-scored["loss"] if "ppl" in scored else scored["acc"])  # language models: lowest perplexity
        eval_s = time.perf_counter() - t0
        self.elapsed_s += eval_s
        lr = algo.weight_lr
        algo.end_epoch()
        genotype = algo.genotype()
        if not isinstance(genotype, Genotype):  # a plugin algorithm's: one line naming it, not a failure deep inside
            name = str(self.config.get("algorithm", {}).get("name", "?"))
            raise ConfigError(f"algorithm '{name}'{ALGORITHMS.origin(name)}: genotype() returned "
                              f"{type(genotype).__name__}, not a nasp.Genotype")
        steps = max(self.steps_per_epoch, 1)
        metrics = {
            "train_loss": sums["train_loss"] / max(sums["seen"], 1), "train_acc": sums["correct"] / max(sums["seen"], 1),
            "val_loss": scored["loss"], "val_acc": scored["acc"], "arch_loss": sums["arch_loss"] / steps, "lr": lr,
            "arch_s": sums["arch_s"], "weight_s": sums["weight_s"], "eval_s": eval_s, "elapsed_s": self.elapsed_s,
            "param_count": self.param_count(genotype), **algo.graphs.stats()}  # graph_hit_rate etc. when on
        if "ppl" in scored:
            metrics["val_ppl"] = scored["ppl"]
        if self.lookup is not None:
            metrics.update(self.lookup(genotype))
        record = {"A": label_matrices(algo.arch_values(), self.labels),
                  "discrete": label_matrices(algo.discrete_values(), self.labels),
                  "genotype": genotype.model_dump(mode="json", exclude_none=True)}
        self.last = {"val_acc": scored["acc"], "val_loss": scored["loss"]}
        if "ppl" in scored:
            self.last["val_ppl"] = scored["ppl"]
        self._reset_sums()
        return metrics, record

    def result(self) -> dict[str, Any]:
        return {"val_acc": self.last.get("val_acc"), **({"val_ppl": self.last["val_ppl"]} if "val_ppl" in self.last else {})}

    def state_dict(self) -> dict[str, Any]:
        state = {"algorithm": self.algorithm.state_dict(), "sums": dict(self.sums), "elapsed_s": self.elapsed_s,
                 "last": dict(self.last)}
        if isinstance(self.problem, LanguageModeling):
            state["streams"] = self.problem.state_dict()  # the hidden states carried between windows
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.algorithm.load_state_dict(state["algorithm"])
        if isinstance(self.problem, LanguageModeling):
            self.problem.load_state_dict(state["streams"])
        self.sums, self.elapsed_s, self.last = dict(state["sums"]), float(state["elapsed_s"]), dict(state["last"])

    def rank_state(self) -> dict[str, Any]:
        state = {"sums": {k: self.sums[k] for k in SHARED_SUMS}, "buffers": distributed.own_buffers(self.algorithm.net)}
        if isinstance(self.problem, LanguageModeling):
            state["streams"] = self.problem.state_dict()  # this rank's streams' carries
        return state

    def load_rank_states(self, states: list[dict[str, Any]] | None) -> None:
        if states is None:  # a checkpoint of an older nasp: rank 0 holds the sums
            states = [{"sums": {k: self.sums[k] for k in SHARED_SUMS}}] * distributed.size()
            states[1:] = [{"sums": {k: type(self.sums[k])(0) for k in SHARED_SUMS}}] * (len(states) - 1)
        self.sums.update(distributed.own_share([s["sums"] for s in states], means=("arch_loss",)))
        if "buffers" in states[0]:
            distributed.load_own_buffers(self.algorithm.net, [s["buffers"] for s in states])
        if isinstance(self.problem, LanguageModeling) and "streams" in states[0]:
            self.problem.load_rank_states([s["streams"] for s in states])

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
        if self.lookup is not None and "bench201_test" not in values:
            extra["bench201_test"] = float("nan")  # a cell the table lacks
        return {**values, **extra}


def build_task(cfg: RunConfig) -> SearchTask:
    """The search ``cfg`` describes: data loaded and split, network and algorithm built."""
    cfg, space = prepare(cfg)
    device = resolve_device(cfg.device)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    if space.kind == "rnn":
        problem, train, val, net, param_count = _text_search(cfg, space, device)
    else:
        problem, train, val, net, param_count = _image_search(cfg, space, device)
    algo_cls: type[SearchAlgorithm] = ALGORITHMS.get(cfg.algorithm.name)
    algo = algo_cls(space, net, algorithm_options(cfg), cfg.optim, cfg.epochs, device, cfg.amp, cfg.seed)
    if switch_on("cuda_graphs", cfg.cuda_graphs, device.type):
        algo.use_cuda_graphs(cfg.graph_cache_size)
    return SearchTask(algo, problem, train, val, cfg.epochs, cfg.model_dump(mode="json"), param_count,
                      bench201_lookup(cfg, space))


def bench201_lookup(cfg: RunConfig, space: SearchSpace) -> Callable[[Genotype], dict[str, float]] | None:
    """For a dense space when NAS-Bench-201's files are given (``bench201.root`` or $NASP_BENCH201): the tabulated
    test and validation accuracy (%) of each epoch's cell, ``bench201_test`` and ``bench201_valid`` (none for a
    cell the table lacks). The table is opened here, so a missing or malformed file stops the run before it starts."""
    from nasp.genotypes.nb201 import to_nb201
    from nasp.nats import Bench201, bench201_root

    root = bench201_root(cfg.bench201.root)
    if space.kind != "dense" or root is None:
        return None
    try:
        table = Bench201.open(root)
    except DataError as exc:
        raise ConfigError(f"key 'bench201.root': {exc}") from None
    dataset = cfg.bench201.dataset

    def lookup(genotype: Genotype) -> dict[str, float]:
        arch = to_nb201(genotype)
        test = table.accuracy(arch, dataset, "test")
        if test is None:
            return {}
        return {"bench201_test": test, "bench201_valid": table.accuracy(arch, dataset, "valid") or float("nan")}

    return lookup


def _image_search(cfg: RunConfig, space: SearchSpace, device: torch.device) -> tuple[Any, ...]:
    problem = ImageClassification(distributed.prepare_first(lambda: load_dataset(cfg.data.name, cfg.data.root)))
    channels_last = cfg.channels_last and device.type != "mps"
    train, val = problem.search_batches(cfg.data.limit, cfg.data.train_portion, cfg.batch_size, device,
                                        cfg.data.augment, cfg.seed, channels_last)
    shape = problem.network_shape
    # a dense space (nb201) has NAS-Bench-201's skeleton: dense.channels C, dense.cells N per stage
    channels, layers = (cfg.dense.channels, cfg.dense.cells) if space.kind == "dense" else (cfg.model.channels,
                                                                                              cfg.model.layers)
    rows = max(train.batch_size, val.batch_size)  # what a step gets: batch_size, or all the data when it is less
    if space.kind == "dense":
        estimate = estimate_dense_search_memory(space, channels, layers, rows, problem.data.size,
                                                shape["in_channels"], shape["num_classes"])
        check_memory(estimate, available_memory(device), "the search network", str(device), DENSE_LOWER_KEYS)
    else:
        estimate = estimate_search_memory(space, channels, layers, rows, problem.data.size,
                                          shape["in_channels"], shape["num_classes"], cfg.model.stem_multiplier)
        check_memory(estimate, available_memory(device), "the search network", str(device))
    torch.manual_seed(cfg.seed)
    net = create_search_network(space, channels, layers, stem_multiplier=cfg.model.stem_multiplier,
                                **problem.network_shape).to(device)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    if cfg.model.sync_bn:
        net = distributed.sync_batch_norm(net)
    size = (channels, layers, shape["num_classes"], shape["in_channels"])
    return problem, train, val, net, lambda genotype: genotype_params(genotype, *size)


def _text_search(cfg: RunConfig, space: SearchSpace, device: torch.device) -> tuple[Any, ...]:
    distributed.check_batch(cfg.batch_size)  # under torchrun each rank takes its share of the token streams
    corpus = distributed.prepare_first(lambda: load_corpus(cfg.data.name, cfg.data.root))
    problem = LanguageModeling(len(corpus.vocab), corpus.train)
    r = cfg.rnn
    train, val = problem.search_batches(cfg.data.limit, cfg.data.train_portion, cfg.batch_size, r.bptt, device, cfg.seed)
    if len(train) == 0 or len(val) == 0:
        raise ConfigError(f"key 'data.limit': {cfg.data.limit} tokens make no window of rnn.bptt={r.bptt} steps in "
                          f"{cfg.batch_size} streams for each of the two parts; raise data.limit or lower batch_size")
    emsize = r.emsize or r.nhid
    estimate = estimate_rnn_search_memory(space, len(corpus.vocab), emsize, r.nhid, cfg.batch_size, r.bptt)
    check_memory(estimate, available_memory(device), "the recurrent search network", str(device),
                 ("batch_size", "rnn.nhid", "rnn.emsize", "rnn.bptt"))
    torch.manual_seed(cfg.seed)
    dropouts = RNNDropouts(r.dropout, r.dropouth, r.dropoutx, r.dropouti, r.dropoute)
    net = create_search_network(space, r.nhid, 1, emsize=r.emsize, dropouts=dropouts, alpha=r.alpha, beta=r.beta,
                                **problem.network_shape).to(device)
    params = count_params(net)  # every node keeps its W_j whatever it reads: one size
    return problem, train, val, net, lambda genotype: params


def search_callbacks(folder: RunFolder, task: Task) -> list[Callback]:
    from nasp.viz.callback import CellDrawings

    return [CellDrawings(folder.cells_dir)]


def start_run(cfg: RunConfig, callbacks: list[Callback] | None = None, console: bool = True) -> Trainer:
    """A new run folder with its resolved config, and a trainer ready to ``fit``. With ``resume=auto`` (and a
    ``name=``): the run folder out/name continues from its checkpoint when it has one, else starts there."""
    if cfg.resume == "auto":
        found = launch.auto_folder(cfg.out, cfg.name, "run")
        if found is not None:
            return resume_run(found, callbacks, console, cfg.plugins, cfg.change_world_size)
    elif cfg.resume is not None:
        return resume_run(cfg.resume, callbacks, console, cfg.plugins, cfg.change_world_size)
    cfg, _ = checked_new(cfg)
    name = cfg.name or default_name(cfg.algorithm.name, cfg.space.name)
    written = with_algorithm_options(cfg).model_copy(update={"resume": None})
    return launch.start(lambda: build_task(cfg), cfg.out, name, written.model_dump_json(indent=2),
                        own_callbacks=search_callbacks, callbacks=callbacks, console=console, loggers=cfg.loggers,
                        reuse=cfg.resume == "auto")


def resume_run(run_dir: str | Path, callbacks: list[Callback] | None = None, console: bool = True,
               plugins: list[str] | None = None, change_world_size: bool = False) -> Trainer:
    """A trainer that continues ``run_dir`` from its last good checkpoint. Plugins the run used are imported
    only when named again in ``plugins``; a checkpoint of another number of ranks only with ``change_world_size``."""
    folder, raw = launch.open_for_resume(run_dir, "search", "run")
    try:
        launch.check_plugins_named(raw, list(plugins or []), run_dir, "run")
        raw = {**raw, "plugins": list(plugins or [])}
        cfg = build_config(raw)
        task = build_task(cfg)
        return launch.resume(folder, task, search_callbacks, callbacks, console, loggers=cfg.loggers,
                             change_world_size=change_world_size)
    except BaseException:
        folder.unlock()
        raise
