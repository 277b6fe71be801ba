"""The space registry: ``@register_space("name")`` on a function returning a SearchSpace."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from nasp.errors import ConfigError, FileRefusedError
from nasp.registry import Registry
from nasp.safe_io import read_bounded
from nasp.spaces.space import REGISTERED_OPS, CellSpace, SearchSpace

SpaceFactory = Callable[[], SearchSpace]
SPACES: Registry[SpaceFactory] = Registry("space")
MAX_SPACE_FILE = 1 << 20  # a space file is a few hundred bytes


def register_space(name: str, *, overwrite: bool = False) -> Callable[[SpaceFactory], SpaceFactory]:
    """Decorator: make a factory ``() -> SearchSpace`` available as ``space=<name>``."""
    return SPACES.register(name, overwrite=overwrite)


def list_spaces() -> list[str]:
    """The registered space names ``space=`` takes."""
    return SPACES.names()


def get_space(name: str, registered_ops: bool = True) -> SearchSpace:
    """A registered space by name, or one declared in a YAML file (``space=my_space.yaml``).

    Its ops must be registered (code that builds networks needs them) unless ``registered_ops`` is False."""
    if name.endswith((".yaml", ".yml", ".json")):
        return load_space_file(Path(name), registered_ops=registered_ops)
    try:
        space = SPACES.get(name)()
    except ValidationError as exc:  # a plugin's factory built an invalid space
        raise ConfigError(f"space '{name}': {first_error(exc)}") from None
    return space.require_registered_ops() if registered_ops else space


def load_space_file(path: Path, registered_ops: bool = True) -> SearchSpace:
    """A space declared from op names: ``name``, ``kind`` and ``cells: {type: {ops: [...]}}``.

    Every problem is one ConfigError line naming the file; ops must be registered unless ``registered_ops``
    is False. In a cnn space the reduce cell's ``reduction`` defaults to true; in a dense space the cell has
    ``n_inputs`` 1, ``n_nodes`` 3 and ``all_inputs`` true by default (NAS-Bench-201's)."""
    path = Path(path)
    where = f"space file '{path}'"
    if not path.exists():
        raise ConfigError(f"space: file '{path}' does not exist")
    try:
        text = read_bounded(path, MAX_SPACE_FILE, follow=True).decode("utf-8")  # the user names it: a link is theirs
    except FileRefusedError as exc:
        raise ConfigError(f"space file {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where} is not UTF-8 text (a binary file?); a space file is YAML") from None
    except OSError as exc:
        raise ConfigError(f"{where} cannot be read: {exc.strerror or exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where} is not valid YAML: {_yaml_problem(exc)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must hold a mapping with 'name' and 'cells' (it holds {type(raw).__name__})")
    raw.setdefault("name", path.stem)
    if "cells" not in raw:
        raise ConfigError(f"{where}: 'cells' is missing; declare cells: {{normal: {{ops: [...]}}, reduce: {{...}}}}")
    cells = raw["cells"]
    if not isinstance(cells, dict):
        raise ConfigError(f"{where}: 'cells' must be a mapping of cell type to {{ops: [...]}}, "
                          f"not a {type(cells).__name__}")
    for ct, cell in cells.items():
        if not isinstance(cell, dict):
            raise ConfigError(f"{where}: cells.{ct} must be a mapping like {{ops: [a, b]}}, not a {type(cell).__name__}")
        if ct == "reduce" and raw.get("kind", "cnn") == "cnn":
            cell.setdefault("reduction", True)
        if raw.get("kind") == "dense":  # NAS-Bench-201's cell: 1 input, every edge kept
            cell.setdefault("n_inputs", 1)
            cell.setdefault("inputs_per_node", 1)
            cell.setdefault("n_nodes", 3)
            cell.setdefault("all_inputs", True)
    try:
        return SearchSpace.model_validate(raw, context=REGISTERED_OPS if registered_ops else None)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {first_error(exc)}") from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error on one line: the problem and where."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else str(problem)


FIELDS: dict[tuple[str, ...], type] = {(): SearchSpace, ("cells", "*"): CellSpace}


def first_error(exc: ValidationError) -> str:
    """The first problem of a ValidationError on one line: ``where: what`` (unknown keys name the allowed ones)."""
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden" and loc:
        parent = tuple("*" if i == 1 and loc[0] == "cells" else p for i, p in enumerate(loc[:-1]))
        model: Any = FIELDS.get(parent)
        if model is not None:
            msg = f"unknown key '{loc[-1]}'; allowed: {', '.join(model.model_fields)}"
    elif err["type"] in ("int_parsing", "int_type", "bool_parsing", "bool_type", "string_type", "literal_error",
                         "greater_than_equal", "less_than_equal", "dict_type", "tuple_type", "list_type"):
        msg = f"{msg} (got {err.get('input')!r:.60})"
    msg = " ".join(msg.split())
    return f"{'.'.join(loc)}: {msg}" if loc else msg
