"""nasp: neural architecture search with proximal iterations (NASP, AAAI 2020) and its baselines.

    import nasp
    found = nasp.search(space="cnn12", epochs=1, data={"limit": 512}, threads=1)
    print(found.genotype, found.result)
    scored = nasp.evaluate(found.genotype, epochs=1, data="embedded", threads=1)
    print(scored.result["test_acc"])

A config is given as a dict, a YAML file or preset, ``key=value`` words or keyword overrides, alike.
Callbacks (``nasp.Callback``) hear the run's events; the registries take your ops, spaces, algorithms,
datasets and genotypes. Classes reached from here: ``Genotype``, ``Edge``, ``SearchSpace``, ``CellSpace``,
``SearchAlgorithm``, ``Callback``, ``Result``. Names import on first use, so ``import nasp`` is cheap.
See docs/api.md.
"""

from __future__ import annotations

import importlib
from typing import Any

from nasp.version import __version__ as __version__

# name -> module that defines it (imported on first use: `import nasp` loads neither torch nor pydantic)
_LAZY = {
    "search": "nasp.api", "evaluate": "nasp.api", "resume": "nasp.api", "search_config": "nasp.api",
    "eval_config": "nasp.api", "load_genotype": "nasp.api", "list_loggers": "nasp.api", "list_presets": "nasp.api",
    "Result": "nasp.api",
    "Callback": "nasp.trainer.callback",
    "list_ops": "nasp.ops", "register_op": "nasp.ops", "create_op": "nasp.ops", "OPS": "nasp.ops",
    "list_spaces": "nasp.spaces", "register_space": "nasp.spaces", "get_space": "nasp.spaces", "SPACES": "nasp.spaces",
    "SearchSpace": "nasp.spaces", "CellSpace": "nasp.spaces",
    "list_algorithms": "nasp.algorithms", "register_algorithm": "nasp.algorithms", "ALGORITHMS": "nasp.algorithms",
    "SearchAlgorithm": "nasp.algorithms",
    "list_datasets": "nasp.data", "register_dataset": "nasp.data", "DATASETS": "nasp.data",
    "list_genotypes": "nasp.genotypes", "register_genotype": "nasp.genotypes", "get_genotype": "nasp.genotypes",
    "Genotype": "nasp.genotype", "Edge": "nasp.genotype",
    "register_logger": "nasp.trainer.loggers",
}

# what `help(nasp)` and `from nasp import *` show: the functions and the plain classes (the pydantic models and the
# registries are reached as attributes, named in the docstring above)
__all__ = ["Callback", "Result", "create_op", "eval_config", "evaluate", "get_genotype", "get_space", "list_algorithms",
           "list_datasets", "list_genotypes", "list_loggers", "list_ops", "list_presets", "list_spaces", "load_genotype",
           "register_algorithm", "register_dataset", "register_genotype", "register_logger", "register_op",
           "register_space", "resume", "search", "search_config"]


def __getattr__(name: str) -> Any:
    """Import a public name on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nasp' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """Every public name, imported or not."""
    return sorted({*globals(), *_LAZY})
