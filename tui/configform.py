"""The run setup form's model: fields from the RunConfig schema, values as the CLI's ``key=value``.

The form never validates on its own: it turns its values into the same ``key=value`` strings a user
would type after ``nasp run`` and runs them through ``parse_overrides``, ``build_config`` and
``nasp.search.validate``, so the app shows exactly the CLI's messages.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml

from nasp.config import NAMED_SECTIONS, RunConfig, _field_type, build_config, iter_keys, load_yaml, parse_overrides
from nasp.errors import NaspError

# keys the form leaves out: resume continues a run with its own config (the runs screen does it)
HIDDEN_KEYS = {"resume"}
OPLIST_KEYS = {"space.normal", "space.reduce"}

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

    @property
    def section(self) -> str:
        return self.key.split(".")[0] if "." in self.key else "run"


def registry_choices(key: str) -> list[str] | None:
    """Names a ``*.name`` key can take, read from the registries (plugins' names included)."""
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


def form_fields() -> list[FieldSpec]:
    """Every settable key of RunConfig, in schema order, with the widget it needs."""
    out = []
    for key, default, desc in iter_keys(RunConfig):
        if key in HIDDEN_KEYS:
            continue
        ann = _field_type(key)
        choices = registry_choices(key)
        literal = _literal_choices(ann)
        if choices is not None:
            out.append(FieldSpec(key, default, desc, "select", choices))
        elif literal is not None:
            out.append(FieldSpec(key, default, desc, "select", literal[0], optional=literal[1]))
        elif ann is bool:
            out.append(FieldSpec(key, default, desc, "bool"))
        elif key in OPLIST_KEYS:
            out.append(FieldSpec(key, default, desc, "oplist"))
        else:
            out.append(FieldSpec(key, default, desc, "text"))
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
    """The form values that show ``cfg``."""
    return {f.key: format_value(get_dotted(cfg, f.key)) for f in form_fields()}


def default_values() -> dict[str, str | bool]:
    return values_of(RunConfig())


def to_overrides(values: dict[str, str | bool]) -> list[str]:
    """The ``key=value`` strings of the values that differ from the defaults (what ``nasp run`` needs)."""
    defaults = default_values()
    out = []
    for key, value in values.items():
        if key in defaults and value == defaults[key]:
            continue
        text = ("true" if value else "false") if isinstance(value, bool) else value.strip()
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


def check(overrides: list[str]) -> Checked:
    """Run the CLI's checks on the overrides; never raises for a user error."""
    from nasp.search import validate

    keys = [f.key for f in form_fields()]
    try:
        cfg = build_config(parse_overrides(overrides))
        validate(cfg)
    except NaspError as exc:
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
