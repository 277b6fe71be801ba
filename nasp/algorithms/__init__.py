"""Search algorithms behind one interface: nasp, pa-standard, pa-lazy, darts-1st, darts-2nd, random.

Each declares its ``algorithm.*`` keys as its own pydantic model (``Options``, a subclass of
AlgorithmOptions); ``algorithm_options(cfg)`` checks a run config's against the chosen algorithm's."""

from nasp.algorithms import darts as _darts  # noqa: F401  (registers)
from nasp.algorithms import nasp as _nasp  # noqa: F401
from nasp.algorithms import pa as _pa  # noqa: F401
from nasp.algorithms import random_search as _random  # noqa: F401
from nasp.algorithms.base import SearchAlgorithm
from nasp.algorithms.darts import DARTSOptions
from nasp.algorithms.nasp import ProximalOptions
from nasp.algorithms.pa import PAOptions
from nasp.algorithms.registry import (
    ALGORITHMS,
    algorithm_class,
    algorithm_options,
    list_algorithms,
    option_rows,
    options_markdown,
    register_algorithm,
    validate_options,
    with_algorithm_options,
)
from nasp.config import AlgorithmOptions

__all__ = ["ALGORITHMS", "AlgorithmOptions", "DARTSOptions", "PAOptions", "ProximalOptions", "SearchAlgorithm",
           "algorithm_class", "algorithm_options", "list_algorithms", "option_rows", "options_markdown",
           "register_algorithm", "validate_options", "with_algorithm_options"]
