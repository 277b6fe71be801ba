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

# DARTS's recurrent cells (rnn/genotypes.py): for nodes 1..8, (activation, input node), node 0 being the state made
# from x_t and h_(t-1); h_t is the mean of nodes 1..8. The NASP paper's own PTB cell is drawn in its Fig. 8 only (the
# text does not list it), so it is not here.
DARTS_V1_RNN = register_genotype("DARTS_V1_RNN", Genotype.from_pairs(
    "rnn",
    recurrent=[("relu", 0), ("relu", 1), ("tanh", 2), ("relu", 3), ("relu", 4), ("identity", 1), ("relu", 5),
               ("relu", 1)],
), doc="DARTS first order, PTB (NASP Table 3: 23M params, 60.2 valid / 57.6 test perplexity)")

DARTS_V2_RNN = register_genotype("DARTS_V2_RNN", Genotype.from_pairs(
    "rnn",
    recurrent=[("sigmoid", 0), ("relu", 1), ("relu", 1), ("identity", 1), ("tanh", 2), ("sigmoid", 5), ("tanh", 3),
               ("relu", 5)],
), doc="DARTS second order, PTB (NASP Table 3: 23M params, 59.7 valid / 56.4 test perplexity)")
