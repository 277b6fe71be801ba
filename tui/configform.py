"""The run setup form's model: fields from the RunConfig schema, values as the CLI's ``key=value``.

The form never validates on its own: it turns its values into the same ``key=value`` strings a user
would type after ``nasp run`` and runs them through ``parse_overrides``, ``build_config`` and
``nasp.search_run.validate``, so the app shows exactly the CLI's messages.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml

from nasp.config import (
    NAMED_SECTIONS,
    AlgorithmConfig,
    RunConfig,
    _accepts_none,
    _field_type,
    build_config,
    iter_keys,
    load_yaml,
    parse_overrides,
)
from nasp.errors import NaspError

from . import startup

# keys the form leaves out: resume continues a run with its own config (the runs screen does it)
HIDDEN_KEYS = {"resume"}
OPLIST_KEYS = {"space.normal", "space.reduce"}
REGISTRY_KEYS = ("algorithm.name", "space.name", "data.name")

Kind = Literal["select", "bool", "text", "oplist"]


@dataclass
class FieldSpec:
    """One form field: its key, default, meaning, widget kind and (for selects) its choices."""

    key: str
    default: Any
    description: str
    kind: Kind
    choices: list[str] = field(default_factory=list)
    optional: bool = False  # None is allowed: a blank select means "the default"
    nullable: bool = False  # a text field left blank means null (none)

    @property
    def section(self) -> str:
        return self.key.split(".")[0] if "." in self.key else "run"


def registry_choices(key: str) -> list[str] | None:
    """Names a ``*.name`` key can take, read from the registries (plugins' names included); None for another key,
    and while the registries are still being imported (``startup.loading()``: the form shows the value alone)."""
    if key not in REGISTRY_KEYS or startup.loading():
        return None
    if key == "algorithm.name":
        from nasp.algorithms import ALGORITHMS

        return ALGORITHMS.names()
    if key == "space.name":
        from nasp.spaces import list_spaces

        return list_spaces()
    if key == "data.name":
        from nasp.data import DATASETS

        return DATASETS.names()
    return None


def _literal_choices(ann: Any) -> tuple[list[str], bool] | None:
    args = get_args(ann)
    if get_origin(ann) is Literal:
        return [str(a) for a in args], False
    lits = [a for a in args if get_origin(a) is Literal]
    if lits:
        return [str(v) for v in get_args(lits[0])], type(None) in args
    return None


def _spec(key: str, ann: Any, default: Any, desc: str) -> FieldSpec:
    if key in REGISTRY_KEYS:
        return FieldSpec(key, default, desc, "select", registry_choices(key) or [])
    literal = _literal_choices(ann)
    if literal is not None:
        return FieldSpec(key, default, desc, "select", literal[0], optional=literal[1])
    if ann is bool:
        return FieldSpec(key, default, desc, "bool")
    kind: Kind = "oplist" if key in OPLIST_KEYS else "text"
    return FieldSpec(key, default, desc, kind, nullable=_accepts_none(ann))


def _algorithm_name(values: dict[str, str | bool] | None) -> str:
    name = (values or {}).get("algorithm.name")
    return str(name) if name else RunConfig().algorithm.name


def algorithm_fields(values: dict[str, str | bool] | None = None) -> list[FieldSpec]:
    """The fields of the chosen algorithm's own keys (a plugin's too, once loaded), then any other
    ``algorithm.*`` value the user set: a key of another algorithm stays, so its error shows under it. While the
    registry is being imported (``startup.loading()``), only the keys set, as text (their types are not known)."""
    name = _algorithm_name(values)
    if startup.loading():
        return [FieldSpec(key, None, f"option of {name}", "text") for key in (values or {})
                if is_algorithm_option(key)]
    from nasp.algorithms import ALGORITHMS

    specs: list[FieldSpec] = []
    if name in ALGORITHMS:
        for key, f in ALGORITHMS.get(name).Options.model_fields.items():
            specs.append(_spec(f"algorithm.{key}", f.annotation, f.get_default(call_default_factory=True),
                               f.description or ""))
    own = {s.key for s in specs}
    for key, value in (values or {}).items():
        if not is_algorithm_option(key) or key in own:
            continue
        owners = [n for n in ALGORITHMS.names() if key.split(".", 1)[1] in ALGORITHMS.get(n).Options.model_fields]
        if owners:
            f = ALGORITHMS.get(owners[0]).Options.model_fields[key.split(".", 1)[1]]
            spec = _spec(key, f.annotation, f.get_default(call_default_factory=True), f.description or "")
        else:  # an option of an algorithm whose plugin is not loaded yet
            spec = FieldSpec(key, None, f"option of {name}", "text")
        if value != format_value(spec.default):
            specs.append(spec)
    return specs


def is_algorithm_option(key: str) -> bool:
    """An ``algorithm.<option>`` key (the chosen algorithm's, from its registry entry), not ``algorithm.name``."""
    return key.startswith("algorithm.") and key != "algorithm.name"


def form_fields(algorithm: str | None = None, values: dict[str, str | bool] | None = None) -> list[FieldSpec]:
    """Every settable key, in schema order, with the widget it needs; after ``algorithm.name`` the keys of
    the chosen algorithm (``algorithm``, else the one ``values`` names, else the default)."""
    if algorithm is not None:
        values = {**(values or {}), "algorithm.name": algorithm}
    out = []
    for key, default, desc in iter_keys(RunConfig):
        if key in HIDDEN_KEYS:
            continue
        out.append(_spec(key, _field_type(key), default, desc))
        if key == "algorithm.name":
            out.extend(algorithm_fields(values))
    return out


def format_value(value: Any) -> str | bool:
    """A config value as the form shows it (and as ``key=value`` takes it back)."""
    if isinstance(value, bool):
        return value
    if value is None:
        return ""
    if isinstance(value, tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def get_dotted(cfg: Any, key: str) -> Any:
    for part in key.split("."):
        cfg = getattr(cfg, part)
    return cfg


def values_of(cfg: RunConfig) -> dict[str, str | bool]:
    """The form values that show ``cfg`` (its algorithm's options: the ones set, else the defaults; while the
    registry is being imported only the ones set, ``startup.loading()``)."""
    values: dict[str, str | bool] = {key: format_value(get_dotted(cfg, key)) for key, _, _ in iter_keys(RunConfig)
                                     if key not in HIDDEN_KEYS}
    if not startup.loading():
        from nasp.algorithms import ALGORITHMS

        if cfg.algorithm.name in ALGORITHMS:
            for key, f in ALGORITHMS.get(cfg.algorithm.name).Options.model_fields.items():
                values[f"algorithm.{key}"] = format_value(f.get_default(call_default_factory=True))
    for key, value in cfg.algorithm.given.items():
        values[f"algorithm.{key}"] = format_value(value)
    order = [f.key for f in form_fields(values=values)]
    return {key: values[key] for key in order if key in values}


def default_values(algorithm: str | None = None) -> dict[str, str | bool]:
    cfg = RunConfig() if algorithm is None else RunConfig(algorithm=AlgorithmConfig(name=algorithm))
    return values_of(cfg)


def switch_algorithm(values: dict[str, str | bool], algorithm: str) -> dict[str, str | bool]:
    """The values after choosing ``algorithm``: its keys at their defaults, except a shared key the user set
    (kept); keys of the old algorithm left at their defaults go."""
    old = {s.key: format_value(s.default) for s in algorithm_fields({"algorithm.name": _algorithm_name(values)})}
    new = {**values, "algorithm.name": algorithm}
    fresh = algorithm_fields({"algorithm.name": algorithm})
    for spec in fresh:
        if not (spec.key in values and spec.key in old and values[spec.key] != old[spec.key]):
            new[spec.key] = format_value(spec.default)
    keys = {s.key for s in fresh}
    for key, default in old.items():
        if key not in keys and values.get(key) == default:
            new.pop(key, None)
    return new


def to_overrides(values: dict[str, str | bool]) -> list[str]:
    """The ``key=value`` strings of the values that differ from the defaults (what ``nasp run`` needs).
    A blank text field whose key takes null says ``key=null``."""
    out = []
    for spec in form_fields(values=values):
        if spec.key not in values:
            continue
        value = values[spec.key]
        if value == format_value(spec.default):
            continue
        text = ("true" if value else "false") if isinstance(value, bool) else value.strip()
        if text == "" and spec.nullable:
            text = "null"
        key = spec.key
        short = key.removesuffix(".name") if key.endswith(".name") and key.split(".")[0] in NAMED_SECTIONS else key
        out.append(f"{short}={text}")
    return out


def command_line(overrides: list[str]) -> str:
    """The shell line that starts the same run."""
    return " ".join(["nasp", "run", *(shlex.quote(o) for o in overrides)])


@dataclass
class Checked:
    """The outcome of checking the form: a config, or the CLI's message and the key it is about."""

    config: RunConfig | None
    error: str | None = None
    key: str | None = None


_KEY_RE = re.compile(r"key '([A-Za-z_.]+)'")
_PREFIX_RE = re.compile(r"^([A-Za-z_.]+):")


def error_key(message: str, keys: list[str]) -> str | None:
    """The form key an error message is about (``key 'x'`` or a ``plugins:`` prefix), if any."""
    m = _KEY_RE.search(message) or _PREFIX_RE.search(message)
    if not m:
        return None
    key = m.group(1)
    if key in NAMED_SECTIONS:
        key = f"{key}.name"
    return key if key in keys else None


def field_message(error: str | None, key: str | None) -> str:
    """An error as shown under its field: without the ``key '<key>':`` the field's label already says."""
    text = " ".join((error or "").split())
    for prefix in (f"key '{key}': ", f"{key}: "):
        text = text.removeprefix(prefix)
    return text


def check(overrides: list[str]) -> Checked:
    """Run the CLI's checks on the overrides (``nasp run``'s: build_config, nasp.search_run.validate and the
    algorithm's own options); never raises for a user error. The form calls this on every change."""
    from nasp.algorithms import algorithm_options
    from nasp.search_run import validate

    given: dict[str, str | bool] = {}
    try:
        tree = parse_overrides(overrides)
        section = tree.get("algorithm", {})
        given = {f"algorithm.{k}": format_value(v) for k, v in section.items()}
        cfg = build_config(tree)
        validate(cfg)
        algorithm_options(cfg)
    except NaspError as exc:
        keys = [f.key for f in form_fields(values=given)]
        return Checked(None, str(exc), error_key(str(exc), keys))
    return Checked(cfg)


def load_config_file(path: str | Path) -> RunConfig:
    """A YAML config as ``nasp run --config`` reads it (ConfigError when invalid)."""
    return build_config(load_yaml(path))


def save_config_file(cfg: RunConfig, path: str | Path) -> Path:
    """The keys that differ from the defaults, as a YAML file ``nasp run --config`` takes."""
    path = Path(path)
    tree = cfg.model_dump(mode="json", exclude_defaults=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(tree, sort_keys=False) or "{}\n")
    return path
