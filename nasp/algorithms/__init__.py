"""Search algorithms behind one interface: nasp, pa-standard, pa-lazy, darts-1st, darts-2nd."""

from nasp.algorithms import darts as _darts  # noqa: F401  (registers)
from nasp.algorithms import nasp as _nasp  # noqa: F401
from nasp.algorithms import pa as _pa  # noqa: F401
from nasp.algorithms.base import SearchAlgorithm
from nasp.algorithms.registry import ALGORITHMS, list_algorithms, register_algorithm

__all__ = ["ALGORITHMS", "SearchAlgorithm", "list_algorithms", "register_algorithm"]
