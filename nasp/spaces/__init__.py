"""Search spaces: which ops each cell type may use and the shape of its DAG."""

from nasp.spaces import builtin as _builtin  # noqa: F401  (registers cnn7, cnn12)
from nasp.spaces.registry import SPACES, get_space, list_spaces, load_space_file, register_space
from nasp.spaces.space import REGISTERED_OPS, CellSpace, SearchSpace

__all__ = ["REGISTERED_OPS", "SPACES", "CellSpace", "SearchSpace", "get_space", "list_spaces", "load_space_file",
           "register_space"]
