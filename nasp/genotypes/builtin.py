"""Published cells as data (DARTS paper and the NASP authors' code)."""

from __future__ import annotations

from nasp.genotype import Genotype
from nasp.genotypes.registry import register_genotype

DARTS_V1 = register_genotype("DARTS_V1", Genotype.from_pairs(
    "cnn7",
    normal=[("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 1),
            ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2)],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("avg_pool_3x3", 0)],
), doc="DARTS first order, CIFAR-10 (DARTS paper: 3.3M params, 3.00% test error)")

DARTS_V2 = register_genotype("DARTS_V2", Genotype.from_pairs(
    "cnn7",
    normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
), doc="DARTS second order, CIFAR-10 (DARTS paper: 3.3M params, 2.76% test error)")

register_genotype("DARTS", DARTS_V2, doc="alias of DARTS_V2 (as in the DARTS code)")

NASP = register_genotype("NASP", Genotype.from_pairs(
    "cnn12",
    normal=[("conv_1x3_3x1", 0), ("conv_3x3", 1), ("dil_conv_3x3", 2), ("conv_3x3", 1),
            ("dil_conv_3x3", 2), ("conv_3x3", 0), ("skip_connect", 0), ("dil_conv_3x3", 3)],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_5x5", 1),
            ("skip_connect", 2), ("skip_connect", 3), ("skip_connect", 0), ("skip_connect", 1)],
), doc="NASP, 12-op space, the cell published with the authors' code (paper Table 2: 7.4M params)")
