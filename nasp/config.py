"""The run config: pydantic models are the schema; ``key=value`` overrides and YAML files feed it.

``algorithm=nasp`` sets ``algorithm.name`` (likewise ``space=`` and ``data=``);
``algorithm.eta=0.1`` sets one field. Every unknown key or bad value is a ConfigError naming the
key, what is allowed and the closest known key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nasp.errors import ConfigError
from nasp.registry import did_you_mean


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class AlgorithmConfig(Section):
    name: str = Field("nasp", description="search algorithm (nasp list: `nasp algorithms`)")
    eta: float = Field(0.0, ge=0, description="weight of the model-size regulariser eta*R(A), eq. (8)")
    lr: float = Field(3e-4, gt=0, description="Adam learning rate of the architecture A")
    betas: tuple[float, float] = Field((0.5, 0.999), description="Adam betas of the architecture A")
    weight_decay: float = Field(1e-3, ge=0, description="Adam weight decay of the architecture A")
    init: float | None = Field(None, description="initial value of A (nasp/pa: 0.5; darts: scale of 1e-3*randn)")
    selected_value: Literal["one", "keep"] | None = Field(
        None, description="value of the kept entry of Ā: 'one' (authors' code, nasp default) or 'keep' "
        "(literal Proposition 1, pa-* default)")
    epsilon: float = Field(0.0, ge=0, le=1, description="epsilon-greedy: chance an edge takes a random op (nasp, pa-*)")
    second_order: bool = Field(False, description="DARTS's second-order approximation (pa-standard, pa-lazy)")


class SpaceConfig(Section):
    name: str = Field("cnn12", description="search space name or a YAML file declaring one (`nasp spaces`)")
    normal: list[str] | None = Field(None, description="replace the normal cell's ops (comma-separated op names)")
    reduce: list[str] | None = Field(None, description="replace the reduce cell's ops (comma-separated op names)")


class DataConfig(Section):
    name: str = Field("embedded", description="dataset (`nasp datasets`): embedded, fashion-mnist, cifar10, cifar100")
    root: str | None = Field(None, description="dataset folder (default: the dataset's own, see docs/config.md)")
    limit: int | None = Field(4000, ge=2, description="use at most this many images (the quick default; null: all)")
    train_portion: float = Field(0.5, gt=0, lt=1, description="share of images for weights; the rest trains A")
    augment: bool = Field(True, description="random crop and flip on weight-step batches (colour datasets)")


class ModelConfig(Section):
    channels: int = Field(8, ge=2, description="initial channels C of the search network (paper: 16)")
    layers: int = Field(3, ge=1, description="cells of the search network (paper: 8)")
    stem_multiplier: int = Field(3, ge=1, description="stem width as a multiple of C")


class OptimConfig(Section):
    lr: float = Field(0.05, gt=0, description="SGD learning rate of the weights w (paper: 0.025)")
    lr_min: float = Field(0.001, ge=0, description="final learning rate of the cosine schedule")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum")
    weight_decay: float = Field(3e-4, ge=0, description="SGD weight decay")
    grad_clip: float = Field(5.0, gt=0, description="clip the weights' gradient norm to this")


class RunConfig(Section):
    algorithm: AlgorithmConfig = Field(default_factory=AlgorithmConfig)
    space: SpaceConfig = Field(default_factory=SpaceConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    epochs: int = Field(3, ge=1, description="search epochs (paper: 50)")
    batch_size: int = Field(32, ge=2, description="images per step, for each of the two steps (paper: 64)")
    seed: int = Field(0, ge=0, description="random seed; same seed on CPU gives the same genotype")
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N or mps")
    amp: bool = Field(True, description="bf16 autocast on CUDA")
    channels_last: bool = Field(True, description="channels-last memory format (faster convs on CPU and GPU)")
    out: str = Field("runs", description="folder for run folders")
    plugins: list[str] = Field(default_factory=list, description="modules or .py files to import first (custom ops)")
    resume: str | None = Field(None, description="run folder to continue")
    name: str | None = Field(None, description="run folder name (default: <time>-<algorithm>-<space>)")


# sections a bare ``section=value`` sets the name of
NAMED_SECTIONS = {"algorithm", "space", "data"}


def iter_keys(model: type[BaseModel] = RunConfig, prefix: str = "") -> list[tuple[str, Any, str]]:
    """(dotted key, default, description) of every leaf key."""
    rows: list[tuple[str, Any, str]] = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            rows.extend(iter_keys(ann, f"{prefix}{name}."))
        else:
            default = field.get_default(call_default_factory=True)
            rows.append((f"{prefix}{name}", default, field.description or ""))
    return rows


def _field_type(dotted: str, model: type[BaseModel] = RunConfig) -> Any:
    parts = dotted.split(".")
    for part in parts[:-1]:
        model = model.model_fields[part].annotation  # type: ignore[assignment]
    return model.model_fields[parts[-1]].annotation


def _is_list(ann: Any) -> bool:
    if get_origin(ann) is list:
        return True
    return any(get_origin(a) is list for a in get_args(ann))


def parse_value(key: str, raw: str, model: type[BaseModel] = RunConfig) -> Any:
    """A command-line string as YAML (numbers, booleans, [lists]); list keys also take a,b,c."""
    try:
        value = yaml.safe_load(raw) if raw != "" else None
    except yaml.YAMLError:
        value = raw
    if _is_list(_field_type(key, model)) and isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if key.endswith(".name") or key in ("out", "device", "resume", "name", "data.root"):
        value = raw  # names and paths stay strings ("1e3" is a name, not a number)
    return value


def resolve_key(key: str, model: type[BaseModel] = RunConfig) -> str:
    """The dotted leaf key ``key`` stands for, or a ConfigError with a did-you-mean."""
    leaves = [k for k, _, _ in iter_keys(model)]
    if key in NAMED_SECTIONS and f"{key}.name" in leaves:
        return f"{key}.name"
    if key in leaves:
        return key
    sections = sorted({k.split(".")[0] for k in leaves if "." in k})
    if key in sections:
        raise ConfigError(f"key '{key}' is a section; set one of its keys, e.g. '{key}.{_first_leaf(key, leaves)}=...'")
    named = sorted(s for s in NAMED_SECTIONS if f"{s}.name" in leaves)
    hint = "See `nasp config` for every key." if model is RunConfig else f"Known keys: {', '.join(leaves)}."
    raise ConfigError(f"unknown config key '{key}'.{did_you_mean(key, leaves + named)} {hint}")


def _first_leaf(section: str, leaves: list[str]) -> str:
    return next(k for k in leaves if k.startswith(section + ".")).split(".", 1)[1]


def parse_overrides(args: list[str], model: type[BaseModel] = RunConfig) -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` -> nested dict, keys checked against the schema."""
    tree: dict[str, Any] = {}
    for arg in args:
        if "=" not in arg:
            raise ConfigError(f"expected key=value, got '{arg}' (e.g. algorithm=nasp epochs=1)")
        key, raw = arg.split("=", 1)
        dotted = resolve_key(key.strip(), model)
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
    """A YAML config file as a tree, every key checked against ``model`` (did-you-mean errors)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--config: file '{path}' does not exist")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"--config: '{path}' is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"--config: '{path}' must hold a mapping of keys")
    sections = {name for name, f in model.model_fields.items()
                if isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel)}
    for section in NAMED_SECTIONS & sections:
        if isinstance(raw.get(section), str):
            raw[section] = {"name": raw[section]}
    for key in _flatten(raw, sections):
        try:
            resolve_key(key, model)
        except ConfigError as exc:
            raise ConfigError(f"--config '{path}': {exc}") from None
    return raw


def _flatten(tree: dict[str, Any], sections: set[str], prefix: str = "") -> list[str]:
    keys = []
    for k, v in tree.items():
        if not prefix and k in sections and isinstance(v, dict):
            keys.extend(_flatten(v, sections, f"{k}."))
        else:
            keys.append(f"{prefix}{k}")
    return keys


def build_config(tree: dict[str, Any], model: type[BaseModel] = RunConfig) -> Any:
    try:
        return model.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, tree)) from None


def format_validation_error(exc: ValidationError, tree: dict[str, Any] | None = None) -> str:
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"] if not isinstance(p, int))
    value = err.get("input")
    msg = err["msg"].removeprefix("Value error, ")
    return f"key '{key}': value {value!r} is invalid: {msg}"
