"""The algorithm registry: ``@register_algorithm("name")`` on a SearchAlgorithm subclass, and the
checking of the ``algorithm.*`` options against the chosen algorithm's own ``Options`` model."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from nasp.config import AlgorithmConfig, AlgorithmOptions, RunConfig, format_validation_error, use_algorithm_catalogue
from nasp.errors import ConfigError, RegistryError
from nasp.registry import Registry, did_you_mean

if TYPE_CHECKING:
    from nasp.algorithms.base import SearchAlgorithm

ALGORITHMS: Registry[type[SearchAlgorithm]] = Registry("algorithm")


def register_algorithm(name: str, *, overwrite: bool = False) -> Callable[[type[SearchAlgorithm]], type[SearchAlgorithm]]:
    """Register a SearchAlgorithm subclass under ``name``; its ``Options`` (a subclass of
    AlgorithmOptions) are the ``algorithm.*`` keys it takes."""

    def decorator(cls: type[SearchAlgorithm]) -> type[SearchAlgorithm]:
        options = getattr(cls, "Options", None)
        if not (isinstance(options, type) and issubclass(options, AlgorithmOptions)):
            raise RegistryError(f"algorithm '{name}': Options must be a subclass of nasp.algorithms.AlgorithmOptions "
                                f"(got {options!r})")
        cls.name = name
        ALGORITHMS.add(name, cls, overwrite=overwrite)
        return cls

    return decorator


def list_algorithms() -> list[str]:
    """The registered algorithm names ``algorithm=`` takes."""
    return ALGORITHMS.names()


def option_rows(name: str) -> list[tuple[str, Any, str]]:
    """(``algorithm.<key>``, default, meaning) of every option of algorithm ``name``."""
    model = ALGORITHMS.get(name).Options
    return [(f"algorithm.{key}", field.get_default(call_default_factory=True), field.description or "")
            for key, field in model.model_fields.items()]


def _owners(key: str) -> list[str]:
    return sorted(n for n in ALGORITHMS.names() if key in ALGORITHMS.get(n).Options.model_fields)


def validate_options(cls: type[SearchAlgorithm], given: dict[str, Any]) -> AlgorithmOptions:
    """``cls.Options`` from the ``algorithm.*`` keys given, or a one-line ConfigError.

    A key of other algorithms is refused naming them, unless it holds their default (or null): it then
    changes nothing (config.json files of older versions list every algorithm's keys)."""
    fields = cls.Options.model_fields
    accepted: dict[str, Any] = {}
    for key, value in given.items():
        if key in fields:
            accepted[key] = value
            continue
        owners = _owners(key)
        if owners:
            defaults = [ALGORITHMS.get(n).Options.model_fields[key].get_default(call_default_factory=True)
                        for n in owners]
            if value is None or all(value == d for d in defaults):
                continue
            raise ConfigError(f"key 'algorithm.{key}' does not apply to {cls.name} (it applies to {', '.join(owners)})")
        keys = [f"algorithm.{k}" for k in fields]
        raise ConfigError(f"unknown config key 'algorithm.{key}' for algorithm {cls.name}."
                          f"{did_you_mean(f'algorithm.{key}', keys)} Its keys: {', '.join(keys)}")
    try:
        return cls.Options.model_validate(accepted)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, model=cls.Options, prefix="algorithm.")) from None


def check_given_options(name: str, given: dict[str, Any], complete: bool = True) -> dict[str, Any] | None:
    """The given options checked and typed, if algorithm ``name`` is registered (else None: a plugin's
    algorithm is checked once its plugin is loaded). ``complete=False`` (plugins not loaded yet) checks only
    the keys the algorithm declares and keeps the others as they are."""
    if name not in ALGORITHMS:
        return None
    cls = ALGORITHMS.get(name)
    if complete:
        options = validate_options(cls, given)
        return {key: getattr(options, key) for key in given if key in cls.Options.model_fields}
    declared = {k: v for k, v in given.items() if k in cls.Options.model_fields}
    options = validate_options(cls, declared)
    return {key: getattr(options, key) if key in declared else value for key, value in given.items()}


class _Catalogue:
    """The registry as the config sees it (``nasp.config.AlgorithmCatalogue``)."""

    def check(self, name: str, given: dict[str, Any], complete: bool) -> dict[str, Any] | None:
        return check_given_options(name, given, complete)

    def option_keys(self) -> list[str]:
        return sorted({f"algorithm.{k}" for n in ALGORITHMS.names() for k in ALGORITHMS.get(n).Options.model_fields})


use_algorithm_catalogue(_Catalogue())


def algorithm_class(cfg: RunConfig) -> type[SearchAlgorithm]:
    """The class of ``cfg.algorithm.name`` (plugins loaded first), or ConfigError with a did-you-mean."""
    from nasp.plugins import load_plugins

    load_plugins(cfg.plugins)
    try:
        return ALGORITHMS.get(cfg.algorithm.name)
    except RegistryError as exc:
        raise ConfigError(f"key 'algorithm': {exc}") from None


def algorithm_options(cfg: RunConfig | AlgorithmConfig) -> AlgorithmOptions:
    """The chosen algorithm's options, typed and checked: what ``SearchAlgorithm(..., options, ...)`` takes.

    Loads ``cfg.plugins`` first (a RunConfig), so a plugin's algorithm and its keys are known. Raises
    ConfigError: unknown algorithm, unknown key (did-you-mean), another algorithm's key, bad value."""
    if isinstance(cfg, RunConfig):
        cls = algorithm_class(cfg)
        section = cfg.algorithm
    else:
        section = cfg
        try:
            cls = ALGORITHMS.get(cfg.name)
        except RegistryError as exc:
            raise ConfigError(f"key 'algorithm': {exc}") from None
    return validate_options(cls, section.given)


def with_algorithm_options(cfg: RunConfig) -> RunConfig:
    """``cfg`` with every option of its algorithm spelled out (the values it runs with): what a run's
    config.json should hold. Round-trips: ``RunConfig.model_validate_json(x.model_dump_json()) == x``."""
    options = algorithm_options(cfg)
    data = cfg.model_dump()
    data["algorithm"] = {"name": cfg.algorithm.name, **options.model_dump()}
    return RunConfig.model_validate(data)


def options_markdown() -> str:
    """docs/config.md's sections on checked values and on the algorithms' own keys (one table per algorithm)."""
    lines = ["", "## Checked values", "",
             "- Every number must be finite: `.inf`, `-.inf` and `.nan` are refused for every float key (and in "
             "`nasp eval`).",
             "- `algorithm.betas` are two numbers, each in [0, 1); `seed` is in [0, 2^63 - 1].",
             "- An empty value (`epochs=`, `space.normal=`) is an error; write `null` for none where a key takes it "
             "(in the app's form a blank field of such a key means null).",
             "- An error is one line: the key, the value, what is allowed (and the closest key for a typo).", "",
             "## Algorithm options", "",
             "`algorithm.<key>=...` sets an option of the chosen algorithm; each algorithm declares its own as a "
             "pydantic model (docs/extending.md), a plugin's algorithm too: `nasp config algorithm=NAME "
             "plugins=FILE` lists them. A key of another algorithm is refused, naming the algorithms that have it "
             "(unless it holds their default: config.json files of older versions list every key). `null` for an "
             "option means its default.", ""]
    for name in ALGORITHMS.names():
        lines += [f"### `{name}`", "", ALGORITHMS.doc(name), "", "| key | default | meaning |", "|---|---|---|"]
        lines += [f"| `{key}` | `{default!r}` | {desc} |" for key, default, desc in option_rows(name)]
        lines.append("")
    return "\n".join(lines)
