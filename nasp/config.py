"""The run config: pydantic models are the schema; ``key=value`` overrides and YAML files feed it.

``algorithm=nasp`` sets ``algorithm.name`` (likewise ``space=`` and ``data=``);
``algorithm.eta=0.1`` sets one option of the chosen algorithm. Every unknown key or bad value is a
ConfigError naming the key, the value, what is allowed and the closest known key.

The ``algorithm`` section holds the algorithm's name plus its options; which options exist is the
algorithm's business: each registered algorithm declares them as a pydantic model, a subclass of
:class:`AlgorithmOptions` (see ``nasp.algorithms.algorithm_options``).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol, Union, get_args, get_origin

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from nasp.errors import ConfigError
from nasp.registry import did_you_mean

SEED_MAX = 2**63 - 1  # torch.manual_seed takes seeds up to this
MAX_CONFIG_FILE = 1 << 20  # a --config file (1 MiB; the presets are under 4 KiB)
Beta = Annotated[float, Field(ge=0, lt=1)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class AlgorithmOptions(Section):
    """The options every algorithm has (the Adam optimiser of the architecture A and A's initial value).

    An algorithm declares its own options as a subclass (``Options`` on its SearchAlgorithm class);
    ``null`` for an option that does not take null means the algorithm's default."""

    lr: float = Field(3e-4, gt=0, description="Adam learning rate of the architecture A")
    betas: tuple[Beta, Beta] = Field((0.5, 0.999), description="Adam betas of the architecture A, each in [0, 1)")
    weight_decay: float = Field(1e-3, ge=0, description="Adam weight decay of the architecture A")
    init: float = Field(0.5, description="initial value of A")
    init_jitter: float = Field(0.0, ge=0, le=0.5, description="seeded jitter of A's start: every entry starts at "
                               "init + init_jitter * U(-1, 1), drawn from the run's seed, so that the seed, not float "
                               "rounding, breaks the ties of a uniform start (nasp, pa-*; darts starts at init * randn, "
                               "random draws its own); 0 is the authors' start. A cnn search's quick default: 0.01")
    warmup: float = Field(0.0, ge=0, lt=1, description="share of a search's steps, from the first, that train only the "
                          "weights (A's first update comes after them); 0 is the papers'. A cnn search's quick "
                          "default: 0.375")
    lr_schedule: Literal["constant", "cosine"] = Field("constant", description="learning rate schedule of A: constant "
                                                        "(the papers') or cosine to 0 over the epochs, stepped at each "
                                                        "epoch's end, so the cell settles before the search returns it. "
                                                        "A cnn search's quick default: cosine")

    @model_validator(mode="before")
    @classmethod
    def _lenient_input(cls, data: Any) -> Any:
        """null means the default; list keys take ``a,b``; text keys take numbers as text."""
        if not isinstance(data, dict):
            return data
        out = {}
        for key, value in data.items():
            field = cls.model_fields.get(key) if isinstance(key, str) else None
            if field is not None:
                ann = field.annotation
                if value is None and not _accepts_none(ann):
                    continue
                if isinstance(value, str) and _is_sequence(ann) and "," in value:
                    value = [_scalar(v.strip()) for v in value.split(",") if v.strip()]
                elif ann is str and isinstance(value, int | float) and not isinstance(value, bool):
                    value = str(value)
            out[key] = value
        return out


def _scalar(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


class AlgorithmConfig(BaseModel):
    """``name`` plus the chosen algorithm's options, as given (a RunConfig checks them against the
    algorithm's ``Options`` model as far as the registry knows it; ``algorithm_options`` does it fully)."""

    model_config = ConfigDict(extra="allow", validate_assignment=True, allow_inf_nan=False)

    name: str = Field("nasp", description="search algorithm (nasp list: `nasp algorithms`)")

    @property
    def model_fields_set(self) -> set[str]:  # type: ignore[override]
        """Declared fields set explicitly (the options are extras, see ``given``)."""
        return set(self.__pydantic_fields_set__) - set(self.model_extra or {})

    @property
    def given(self) -> dict[str, Any]:
        """The options set for the algorithm (``algorithm.<key>=...``), by key."""
        return dict(self.model_extra or {})


class SpaceConfig(Section):
    name: str = Field("cnn12", description="search space name or a YAML file declaring one (`nasp spaces`)")
    normal: list[str] | None = Field(None, description="replace the normal cell's ops (comma-separated op names)")
    reduce: list[str] | None = Field(None, description="replace the reduce cell's ops (comma-separated op names)")
    recurrent: list[str] | None = Field(None, description="replace the recurrent cell's ops (rnn spaces; comma-separated)")
    cell: list[str] | None = Field(None, description="replace the dense cell's ops (dense spaces such as nb201; "
                                   "comma-separated)")


class DataConfig(Section):
    name: str = Field("embedded", description="dataset (`nasp datasets`): embedded, fashion-mnist, cifar10, cifar100; "
                      "rnn spaces: a text corpus (`nasp datasets`), by default the embedded one")
    root: str | None = Field(None, description="dataset folder (default: the dataset's own, see docs/config.md)")
    limit: int | None = Field(4000, ge=2, description="use at most this many images (rnn: training tokens; the quick "
                              "default; null: all)")
    train_portion: float = Field(0.5, gt=0, lt=1, description="share of images (tokens) for weights; the rest trains A")
    augment: bool = Field(True, description="random crop and flip on weight-step batches (colour datasets)")


class ModelConfig(Section):
    channels: int = Field(8, ge=2, description="initial channels C of the search network (paper: 16)")
    layers: int = Field(3, ge=1, description="cells of the search network (paper: 8)")
    stem_multiplier: int = Field(3, ge=1, description="stem width as a multiple of C")
    sync_bn: bool = Field(False, description="under torchrun: BatchNorm statistics over the global batch, not each "
                          "rank's share (docs/distributed.md)")


class OptimConfig(Section):
    lr: float = Field(0.05, gt=0, description="SGD learning rate of the weights w (paper: 0.025)")
    lr_min: float = Field(0.001, ge=0, description="final learning rate of the cosine schedule")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum")
    weight_decay: float = Field(3e-4, ge=0, description="SGD weight decay")
    grad_clip: float = Field(5.0, gt=0, description="clip the weights' gradient norm to this")
    schedule: Literal["cosine", "constant"] = Field("cosine", description="learning rate schedule of w: cosine to "
                                                    "lr_min, or constant (DARTS's recurrent search)")


class RecurrentConfig(Section):
    """rnn spaces only: the recurrent network (DARTS's, one layer). Quick defaults; `--config search-ptb` is
    DARTS's recipe."""

    emsize: int | None = Field(None, ge=2, description="rnn: word embedding size (default: nhid, which ties the "
                               "decoder to the embedding; DARTS: 300)")
    nhid: int = Field(64, ge=2, description="rnn: hidden size of the cell (DARTS search: 300)")
    bptt: int = Field(35, ge=2, description="rnn: steps of back-propagation through time per window")
    dropout: float = Field(0.1, ge=0, lt=1, description="rnn: locked dropout on the cell's output (DARTS: 0.75)")
    dropouth: float = Field(0.1, ge=0, lt=1, description="rnn: dropout on the hidden state each node reads "
                            "(DARTS: 0.25)")
    dropoutx: float = Field(0.1, ge=0, lt=1, description="rnn: dropout on the cell's input x_t (DARTS: 0.75)")
    dropouti: float = Field(0.1, ge=0, lt=1, description="rnn: locked dropout on the embedded words (DARTS: 0.2)")
    dropoute: float = Field(0.0, ge=0, lt=1, description="rnn: dropout of whole words of the embedding (DARTS "
                            "search: 0)")
    alpha: float = Field(0.0, ge=0, description="rnn: activation regularisation of the weights' loss, alpha * mean of "
                         "the dropped output squared (DARTS search: 0)")
    beta: float = Field(1e-3, ge=0, description="rnn: temporal activation regularisation of the weights' loss, beta * "
                        "mean (h_t - h_(t-1))^2 (DARTS search: 1e-3)")


class DenseConfig(Section):
    """dense spaces only (nb201): NAS-Bench-201's network skeleton, three stages of N cells at C, 2C, 4C."""

    channels: int = Field(16, ge=1, description="dense spaces: channels C of the first stage (NAS-Bench-201: 16)")
    cells: int = Field(5, ge=1, description="dense spaces: cells N in each of the three stages (NAS-Bench-201: 5)")


class Bench201Config(Section):
    """dense spaces only (nb201): each epoch's cell looked up in NAS-Bench-201's table (docs/nb201.md)."""

    root: str | None = Field(None, description="NATS-Bench topology files (the NATS-tss-v1_0-3ffb9-simple folder, or "
                             "a folder holding it); default $NASP_BENCH201; none: no lookup")
    dataset: Literal["cifar10", "cifar100", "ImageNet16-120"] = Field(
        "cifar10", description="whose tabulated accuracies each epoch's cell gets (the benchmark's 200-epoch "
        "training): cifar10, cifar100 or ImageNet16-120")


class MLflowConfig(Section):
    """loggers=mlflow: where the run's params, metrics and artifacts go."""

    tracking_uri: str | None = Field(None, max_length=2048, description="mlflow: tracking URI (a server, "
                                     "databricks, sqlite:///f.db); default: $MLFLOW_TRACKING_URI, else the file store "
                                     "<out>/mlruns (`mlflow ui --backend-store-uri <out>/mlruns`)")
    experiment: str = Field("nasp", min_length=1, max_length=256, description="mlflow: experiment name")


class WandbConfig(Section):
    """loggers=wandb: the Weights & Biases project and mode (offline unless asked: no login prompt in a run)."""

    project: str = Field("nasp", min_length=1, max_length=128, description="wandb: project")
    entity: str | None = Field(None, max_length=128, description="wandb: team or user (default: your default)")
    mode: Literal["offline", "online", "disabled"] = Field("offline", description="wandb: offline (files in "
                                                           "<run>/wandb, `wandb sync` later), online (after `wandb "
                                                           "login`) or disabled")


def _switch_word(v: Any) -> Any:
    """YAML reads on/off (and yes/no, true/false) as booleans: they mean 'on' and 'off' here."""
    return {True: "on", False: "off"}.get(v, v) if isinstance(v, bool) else v


Switch = Annotated[Literal["auto", "on", "off"], BeforeValidator(_switch_word)]


def max_threads() -> int:
    """The most CPU threads a run may ask for: 4 a core of this machine (at least 4). More only time-slice the
    cores (``threads=1000`` made 1,493 threads and the machine unusable for minutes)."""
    return 4 * max(1, os.cpu_count() or 1)


def _threads_bound(v: int | None) -> int | None:
    if v is not None and v > max_threads():
        raise ValueError(f"{v} threads on a machine with {os.cpu_count()} CPU cores; at most {max_threads()} (4 a core)")
    return v


Threads = Annotated[int | None, Field(ge=1), AfterValidator(_threads_bound)]
# what 'auto' turns on, per device type; CUDA entries wait for the GPU check (docs/benchmarks.md, issue 13)
AUTO_SPEED: dict[str, dict[str, bool]] = {"cuda_graphs": {"cuda": False}, "compile": {"cuda": False}}
AUTO_NOTE = "off on CPU and MPS; on CUDA as measured by benchmarks/gpu_check.sh"


def keys_given(cfg: Section, patterns: tuple[str, ...]) -> list[str]:
    """The keys matching ``patterns`` (``section.key`` or ``section.*``) that ``cfg`` was given explicitly
    (pydantic's ``model_fields_set``): the keys a kind of run would otherwise ignore silently."""
    out = []
    for pattern in patterns:
        *path, leaf = pattern.split(".")
        section: Section = cfg
        for part in path:
            section = getattr(section, part)
        given = section.model_fields_set
        out += [f"{'.'.join(path)}.{k}" if path else k for k in sorted(given) if leaf in ("*", k)]
    return out


def check_cuda_only(cfg: Section, device_type: str, keys: tuple[str, ...] = ("cuda_graphs",)) -> None:
    """A CUDA-only switch set to ``on`` for a run elsewhere is an error, not silently ignored."""
    for key in keys:
        if getattr(cfg, key, None) == "on" and device_type != "cuda":
            raise ConfigError(f"key '{key}': 'on' applies to CUDA only and this run is on {device_type}; use auto "
                              f"or off")


def switch_on(key: str, value: Switch, device_type: str) -> bool:
    """Whether the speed switch ``key`` is on for a device: these apply on CUDA only (elsewhere the eager path
    runs, whatever the value); 'auto' is AUTO_SPEED's choice."""
    if device_type != "cuda" or value == "off":
        return False
    return value == "on" or AUTO_SPEED[key].get(device_type, False)


class AlgorithmCatalogue(Protocol):
    """What the config asks of the registered algorithms: the algorithm layer (``nasp.algorithms.registry``) sits
    above the config and installs itself with ``use_algorithm_catalogue`` when imported; the config imports no
    algorithm."""

    def check(self, name: str, given: dict[str, Any], complete: bool) -> dict[str, Any] | None:
        """The options ``given`` for algorithm ``name`` typed and checked (ConfigError), None if it is unknown."""
        ...

    def option_keys(self) -> list[str]:
        """``algorithm.<option>`` of every registered algorithm."""
        ...


_catalogue: AlgorithmCatalogue | None = None


def use_algorithm_catalogue(catalogue: AlgorithmCatalogue) -> None:
    """Let RunConfig check ``algorithm.*`` keys as soon as it is built (before, the run's start checks them)."""
    global _catalogue
    _catalogue = catalogue


class RunConfig(Section):
    algorithm: AlgorithmConfig = Field(default_factory=AlgorithmConfig)
    space: SpaceConfig = Field(default_factory=SpaceConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    rnn: RecurrentConfig = Field(default_factory=RecurrentConfig)
    dense: DenseConfig = Field(default_factory=DenseConfig)
    bench201: Bench201Config = Field(default_factory=Bench201Config)
    epochs: int = Field(4, ge=1, description="search epochs (paper: 50)")
    batch_size: int = Field(32, ge=2, description="images (rnn: token streams) per step, for each of the two steps "
                            "(paper: 64; DARTS rnn: 256)")
    seed: int = Field(0, ge=0, le=SEED_MAX, description="random seed; same seed on CPU gives the same genotype")
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N or mps")
    threads: Threads = Field(None, description="CPU threads of torch (default: torch's; 1 is much faster "
                                "on a CPU that other processes keep busy)")
    amp: bool = Field(True, description="bf16 autocast on CUDA")
    channels_last: bool = Field(True, description="channels-last memory format (faster convs on CPU and GPU)")
    cuda_graphs: Switch = Field("auto", description="replay the weight step from a CUDA graph per Ā (captured on "
                                "its first step; CUDA only, not under torchrun): on, off, or auto (" + AUTO_NOTE + ")")
    graph_cache_size: int = Field(8, ge=1, description="CUDA graphs kept (least recently used Ā dropped first); "
                                  "each holds a step's activations")
    out: str = Field("runs", description="folder for run folders")
    loggers: list[str] = Field(default_factory=list, description="more loggers of the metrics, comma-separated "
                               "(`nasp loggers`): csv (metrics.csv), tensorboard, mlflow, wandb (each its extra)")
    mlflow: MLflowConfig = Field(default_factory=MLflowConfig)
    wandb: WandbConfig = Field(default_factory=WandbConfig)
    plugins: list[str] = Field(default_factory=list, description="modules or .py files to import first (ops, "
                               "spaces, algorithms)")
    resume: str | None = Field(None, description="run folder to continue, or auto: continue out/name when it has a "
                               "checkpoint, else start it (needs name=; for torchrun --max-restarts and requeued jobs)")
    change_world_size: bool = Field(False, description="with resume: continue a run on another number of torchrun "
                                    "ranks than wrote its checkpoint (merges the ranks' own state; not exact)")
    name: str | None = Field(None, description="run folder name (default: <time>-<algorithm>-<space>)")

    @model_validator(mode="after")
    def _check_algorithm_options(self) -> RunConfig:
        """The ``algorithm.*`` keys against the chosen algorithm's model, as far as the registry knows it now:
        all of them once every plugin is loaded, else only the keys the algorithm declares (a plugin may
        still add an algorithm; ``nasp.algorithms.algorithm_options`` checks the rest after loading)."""
        if self.algorithm.model_extra and _catalogue is not None:
            from nasp.plugins import plugins_loaded

            checked = _catalogue.check(self.algorithm.name, self.algorithm.given, plugins_loaded(self.plugins))
            if checked is not None:
                self.algorithm.__pydantic_extra__ = checked
        return self


# sections a bare ``section=value`` sets the name of
NAMED_SECTIONS = {"algorithm", "space", "data"}
# sections whose other keys belong to what they name (checked later, against that): algorithm.<option>
OPEN_SECTIONS = {"algorithm"}
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _is_model(ann: Any) -> bool:
    return isinstance(ann, type) and issubclass(ann, BaseModel)


def _model_in(ann: Any) -> type[BaseModel] | None:
    """The model ``ann`` is, or holds as list items or an optional value (``list[StudyArm]``, ``Model | None``)."""
    if _is_model(ann):
        return ann  # type: ignore[no-any-return]
    return next((a for a in get_args(ann) if _is_model(a)), None)


def iter_keys(model: type[BaseModel] = RunConfig, prefix: str = "") -> list[tuple[str, Any, str]]:
    """(dotted key, default, description) of every declared leaf key (the algorithm's options are
    the algorithm's: ``nasp.algorithms.option_rows``)."""
    rows: list[tuple[str, Any, str]] = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if _is_model(ann):
            rows.extend(iter_keys(ann, f"{prefix}{name}."))
        else:
            default = field.get_default(call_default_factory=True)
            rows.append((f"{prefix}{name}", default, field.description or ""))
    return rows


def _field_type(dotted: str, model: type[BaseModel] = RunConfig) -> Any:
    """The annotation of a dotted key; ``Any`` for an algorithm option (its algorithm types it)."""
    parts = dotted.split(".")
    for part in parts[:-1]:
        model = model.model_fields[part].annotation  # type: ignore[assignment]
    field = model.model_fields.get(parts[-1])
    return Any if field is None else field.annotation


def _is_list(ann: Any) -> bool:
    if get_origin(ann) is list:
        return True
    return any(get_origin(a) is list for a in get_args(ann))


def _is_sequence(ann: Any) -> bool:
    if get_origin(ann) in (list, tuple):
        return True
    return any(get_origin(a) in (list, tuple) for a in get_args(ann))


def _accepts_none(ann: Any) -> bool:
    return ann is None or ann is type(None) or ann is Any or (
        get_origin(ann) in (Union, getattr(__import__("types"), "UnionType", Union)) and type(None) in get_args(ann))


def parse_value(key: str, raw: str, model: type[BaseModel] = RunConfig) -> Any:
    """A command-line string as YAML (numbers, booleans, [lists]); list keys also take a,b,c."""
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    if _is_list(_field_type(key, model)) and isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if key.endswith(".name") or key in ("out", "device", "resume", "name", "data.root", "genotype"):
        value = raw  # names and paths stay strings ("1e3" is a name, not a number)
    return value


def resolve_key(key: str, model: type[BaseModel] = RunConfig) -> str:
    """The dotted leaf key ``key`` stands for, or a ConfigError with a did-you-mean."""
    leaves = [k for k, _, _ in iter_keys(model)]
    if key in NAMED_SECTIONS and f"{key}.name" in leaves:
        return f"{key}.name"
    if key in leaves:
        return key
    section, _, rest = key.partition(".")
    if section in OPEN_SECTIONS and _is_model(model.model_fields.get(section) and model.model_fields[section].annotation) \
            and _IDENT.fullmatch(rest):
        return key
    sections = sorted({k.split(".")[0] for k in leaves if "." in k})
    if key in sections:
        raise ConfigError(f"key '{key}' is a section; set one of its keys, e.g. '{key}.{_first_leaf(key, leaves)}=...'")
    named = sorted(s for s in NAMED_SECTIONS if f"{s}.name" in leaves)
    known = leaves + named + (_algorithm_keys() if model is RunConfig else [])
    hint = "See `nasp config` for every key." if model is RunConfig else f"Known keys: {', '.join(leaves)}."
    raise ConfigError(f"unknown config key '{key}'.{did_you_mean(key, known)} {hint}")


def _algorithm_keys() -> list[str]:
    """``algorithm.<option>`` of every registered algorithm (for did-you-mean only)."""
    return [] if _catalogue is None else _catalogue.option_keys()


def _first_leaf(section: str, leaves: list[str]) -> str:
    return next(k for k in leaves if k.startswith(section + ".")).split(".", 1)[1]


def parse_overrides(args: list[str], model: type[BaseModel] = RunConfig) -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` -> nested dict, keys checked against the schema; an empty value is an error."""
    tree: dict[str, Any] = {}
    for arg in args:
        if "=" not in arg:
            raise ConfigError(f"expected key=value, got '{arg}' (e.g. algorithm=nasp epochs=1)")
        key, raw = arg.split("=", 1)
        dotted = resolve_key(key.strip(), model)
        if raw.strip() == "":
            optional = _accepts_none(_field_type(dotted, model))
            raise ConfigError(f"key '{dotted}': empty value ('{arg}'); give a value"
                              + (", or null for none" if optional else "")
                              + (" (see `nasp config`)" if model is RunConfig else ""))
        set_dotted(tree, dotted, parse_value(dotted, raw.strip(), model))
    return tree


def set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_yaml(path: str | Path, model: type[BaseModel] = RunConfig) -> dict[str, Any]:
    """A YAML config file (or a preset's name, ``nasp.presets``) as a tree, every key checked against ``model``
    (did-you-mean errors)."""
    from nasp.errors import FileRefusedError
    from nasp.presets import preset_path
    from nasp.safe_io import read_bounded

    if str(path).strip() == "":
        raise ConfigError("--config: an empty name; give a YAML file or a preset's name (`nasp presets`)")
    path = preset_path(path)
    if path.is_dir():
        raise ConfigError(f"--config: '{path}' is a folder, not a YAML file")
    if not path.exists():
        raise ConfigError(f"--config: file '{path}' does not exist")
    try:  # a config is a few kilobytes: a bound before parsing (YAML of megabytes parses for minutes)
        raw = yaml.safe_load(read_bounded(path, MAX_CONFIG_FILE, follow=True).decode("utf-8")) or {}
    except FileRefusedError as exc:
        raise ConfigError(f"--config: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--config: '{path}' is not valid YAML: {_one_line(str(exc))}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--config: cannot read '{path}': {_one_line(str(exc))}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"--config: '{path}' must hold a mapping of keys (key: value lines), not a "
                          f"{type(raw).__name__}")
    sections = {name for name, f in model.model_fields.items() if _is_model(f.annotation)}
    for section in NAMED_SECTIONS & sections:
        if isinstance(raw.get(section), str):
            raw[section] = {"name": raw[section]}
    check_keys(raw, model, f"--config '{path}': ")
    return raw


def dump_yaml(tree: dict[str, Any], usage: str, meanings: dict[str, str] | None = None) -> str:
    """A config tree as a YAML file to start from: every key in the schema's order with its meaning as a comment
    (``meanings``: dotted key -> text), headed by how to use it. ``load_yaml`` reads it back."""
    meanings = meanings or {}
    lines = [f"# {usage}"]

    def emit(node: dict[str, Any], prefix: str, indent: str) -> None:
        for key, value in node.items():
            dotted = f"{prefix}{key}"
            if isinstance(value, dict):
                lines.append(f"{indent}{key}:")
                emit(value, f"{dotted}.", indent + "  ")
                continue
            text = yaml.safe_dump([value], default_flow_style=True, width=1 << 16).strip()[1:-1]
            note = " ".join(meanings.get(dotted, "").split())
            lines.append(f"{indent}{key}: {text}" + (f"  # {note}" if note else ""))

    emit(tree, "", "")
    return "\n".join(lines) + "\n"


def _flatten(tree: dict[str, Any], sections: set[str], prefix: str = "") -> list[str]:
    keys = []
    for k, v in tree.items():
        if not prefix and k in sections and isinstance(v, dict):
            keys.extend(_flatten(v, sections, f"{k}."))
        else:
            keys.append(f"{prefix}{k}")
    return keys


def expand_tree(tree: dict[str, Any], model: type[BaseModel] = RunConfig) -> dict[str, Any]:
    """A config dict as the schema nests it: dotted keys (``{"data.limit": 128}``) nested, a named section given as
    text (``{"algorithm": "nasp"}``) as its ``name``. Keys are not checked here (``build_config`` does)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(key, str) and key in NAMED_SECTIONS and isinstance(value, str) and f"{key}.name" in _leaf_names(model):
            value = {"name": value}
        elif isinstance(value, dict) and isinstance(key, str) and _is_model(
                model.model_fields[key].annotation if key in model.model_fields else None):
            value = expand_tree(value, model.model_fields[key].annotation)  # type: ignore[arg-type]
        if isinstance(key, str) and "." in key:
            head, rest = key.split(".", 1)
            out[head] = merge(out.get(head, {}) if isinstance(out.get(head), dict) else {}, {rest: value})
            sub = model.model_fields[head].annotation if head in model.model_fields else None
            if _is_model(sub):
                out[head] = expand_tree(out[head], sub)  # type: ignore[arg-type]
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def check_keys(tree: dict[str, Any], model: type[BaseModel] = RunConfig, where: str = "") -> None:
    """Every key of a (nested) config tree against ``model``: an unknown one is a ConfigError with a did-you-mean."""
    sections = {name for name, f in model.model_fields.items() if _is_model(f.annotation)}
    for key in _flatten(tree, sections):
        try:
            resolve_key(key, model)
        except ConfigError as exc:
            raise ConfigError(f"{where}{exc}") from None


def config_tree(config: Any = None, words: Sequence[str] = (), overrides: dict[str, Any] | None = None,
                model: type[BaseModel] = RunConfig) -> dict[str, Any]:
    """One config tree from the ways a config is given, later ones winning: ``config`` (a dict, nested or with dotted
    keys; a YAML file or a preset's name; a config object), ``key=value`` ``words`` as on the command line, and
    ``overrides`` (Python values by key: ``epochs=1``, ``algorithm="nasp"``, ``data={"limit": 128}``,
    ``**{"data.limit": 128}``). Every key is checked (did-you-mean ConfigError); values are checked by
    ``build_config``."""
    if isinstance(config, str) and "=" in config and not Path(config).exists():
        config, words = None, [config, *([words] if isinstance(words, str) else words)]  # a first key=value word
    if config is None:
        tree: dict[str, Any] = {}
    elif isinstance(config, BaseModel):
        tree = config.model_dump(mode="json", exclude_unset=True)
    elif isinstance(config, str | Path):
        tree = load_yaml(config, model)
    elif isinstance(config, dict):
        tree = expand_tree(dict(config), model)
        check_keys(tree, model)
    else:
        raise ConfigError(f"a config is a dict, a YAML file or preset name, or a config object, not a "
                          f"{type(config).__name__}")
    if isinstance(words, str):
        words = [words]
    tree = merge(tree, parse_overrides(list(words), model))
    if overrides:
        extra = expand_tree(dict(overrides), model)
        check_keys(extra, model)
        tree = merge(tree, extra)
    return tree


def _leaf_names(model: type[BaseModel]) -> set[str]:
    return {k for k, _, _ in iter_keys(model)}


def build_config(tree: dict[str, Any], model: type[BaseModel] = RunConfig) -> Any:
    """``model`` from a nested dict (dotted keys and ``{"algorithm": "nasp"}`` taken too, see ``expand_tree``);
    every invalid value is a one-line ConfigError."""
    tree = expand_tree(tree, model)
    try:
        return model.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, model=model)) from None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _show(value: Any, limit: int = 80) -> str:
    text = repr(value)
    if isinstance(value, float) and not math.isfinite(value):
        text = str(value)
    return _one_line(text if len(text) <= limit else text[: limit - 3] + "...")


def _key_of(loc: tuple[Any, ...], model: type[BaseModel] | None) -> tuple[str, int | None]:
    """The dotted key of an error location (union members' tags left out) and the item index, if any.

    Without a model every text part counts as a key."""
    parts: list[str] = []
    index = None
    inside = True  # still walking models: the next text part is a key
    for p in loc:
        if isinstance(p, int):
            index = p if index is None else index
        elif inside:
            parts.append(p)
            ann = model.model_fields[p].annotation if model is not None and p in model.model_fields else None
            if model is not None:
                model = _model_in(ann)
                inside = model is not None
        # else: a union member's tag (``int``, ``list[str]``), not part of the key
    return ".".join(parts), index


def format_validation_error(exc: ValidationError, tree: dict[str, Any] | None = None, *,
                            model: type[BaseModel] | None = None, prefix: str = "") -> str:
    """The first invalid key of ``exc`` as one line: key, value, what is allowed.

    Errors of one key from a union's members are joined (``... or ...``)."""
    errors = exc.errors()
    key, index = _key_of(tuple(errors[0]["loc"]), model)
    msgs: list[str] = []
    value: Any = errors[0].get("input")
    for err in errors:
        k, i = _key_of(tuple(err["loc"]), model)
        if (k, i) != (key, index):
            continue
        msg = _one_line(str(err["msg"]).removeprefix("Value error, "))
        if err["type"] == "finite_number":
            msg = "Input should be a finite number (not inf or nan)"
        elif err["type"] == "missing" and i is not None:
            msg = "too few items"
        if msg not in msgs:
            msgs.append(msg)
    full = f"{prefix}{key}"
    if errors[0]["type"] == "extra_forbidden":
        return f"unknown config key '{full}'"
    where = f" (item {index + 1})" if index is not None else ""
    return f"key '{full}'{where}: value {_show(value)} is invalid: {'; or '.join(msgs)}"
