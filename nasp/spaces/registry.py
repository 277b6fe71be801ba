"""The space registry: ``@register_space("name")`` on a function returning a SearchSpace."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml
from pydantic import ValidationError

from nasp.errors import ConfigError
from nasp.registry import Registry
from nasp.spaces.space import SearchSpace

SpaceFactory = Callable[[], SearchSpace]
SPACES: Registry[SpaceFactory] = Registry("space")


def register_space(name: str, *, overwrite: bool = False) -> Callable[[SpaceFactory], SpaceFactory]:
    return SPACES.register(name, overwrite=overwrite)


def list_spaces() -> list[str]:
    return SPACES.names()


def get_space(name: str) -> SearchSpace:
    """A registered space by name, or one declared in a YAML file (``space=my_space.yaml``)."""
    if name.endswith((".yaml", ".yml", ".json")):
        return load_space_file(Path(name))
    return SPACES.get(name)()


def load_space_file(path: Path) -> SearchSpace:
    """A space declared from op names: ``name``, ``kind`` and ``cells: {type: {ops: [...]}}``."""
    if not path.is_file():
        raise ConfigError(f"space: file '{path}' does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"space: '{path}' is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"space: '{path}' must hold a mapping with 'name' and 'cells'")
    raw.setdefault("name", path.stem)
    try:
        return SearchSpace.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"space file '{path}': {_first_error(exc)}") from None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    return f"{loc}: {err['msg'].removeprefix('Value error, ')}"
