"""nasp: neural architecture search with proximal iterations (NASP, AAAI 2020) and its baselines."""

from nasp.algorithms import ALGORITHMS, SearchAlgorithm, list_algorithms, register_algorithm
from nasp.data import DATASETS, list_datasets, register_dataset
from nasp.genotype import Edge, Genotype
from nasp.ops import OPS, create_op, list_ops, register_op
from nasp.spaces import SPACES, CellSpace, SearchSpace, get_space, list_spaces, register_space

__version__ = "0.1.0"

__all__ = ["ALGORITHMS", "DATASETS", "OPS", "SPACES", "CellSpace", "Edge", "Genotype", "SearchAlgorithm",
           "SearchSpace", "create_op", "get_space", "list_algorithms", "list_datasets", "list_ops", "list_spaces",
           "register_algorithm", "register_dataset", "register_op", "register_space"]
