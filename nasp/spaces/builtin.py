"""cnn7 (DARTS's 7 ops), cnn12 (the paper's 12 ops, split by cell type as in the authors' code), rnn
(DARTS's recurrent cell) and nb201 (NAS-Bench-201's cell)."""

from __future__ import annotations

from nasp.spaces.registry import register_space
from nasp.spaces.space import CellSpace, SearchSpace

DARTS_OPS = ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
             "dil_conv_3x3", "dil_conv_5x5")
NASP_NORMAL_OPS = ("skip_connect", "conv_1x3_3x1", "dil_conv_3x3", "conv_1x1", "conv_3x3",
                   "sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7")
NASP_REDUCE_OPS = ("skip_connect", "avg_pool_3x3", "max_pool_3x3", "max_pool_5x5", "max_pool_7x7")
RNN_OPS = ("tanh", "relu", "sigmoid", "identity")
NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


@register_space("cnn7")
def cnn7() -> SearchSpace:
    """DARTS's 7 ops (without 'none') in both cells."""
    return SearchSpace(
        name="cnn7",
        cells={"normal": CellSpace(ops=DARTS_OPS), "reduce": CellSpace(ops=DARTS_OPS, reduction=True)},
        description="DARTS's 7 ops (without 'none') in both cells",
    )


@register_space("cnn12")
def cnn12() -> SearchSpace:
    """The paper's 12 ops: identity and convs in normal cells, identity and pools in reduce cells."""
    return SearchSpace(
        name="cnn12",
        cells={"normal": CellSpace(ops=NASP_NORMAL_OPS), "reduce": CellSpace(ops=NASP_REDUCE_OPS, reduction=True)},
        description="the paper's 12 ops: identity and convs (normal), identity and pools (reduce)",
    )


@register_space("rnn")
def rnn() -> SearchSpace:
    """DARTS's recurrent cell: 8 nodes, each reading one earlier node through one of 4 activations."""
    return SearchSpace(
        name="rnn", kind="rnn",
        cells={"recurrent": CellSpace(ops=RNN_OPS, n_inputs=1, n_nodes=8, inputs_per_node=1)},
        description="DARTS's recurrent cell (PTB): 8 nodes, each reading one earlier node through tanh, relu, "
                    "sigmoid or identity; h_t is the mean of the 8 nodes",
    )


@register_space("nb201")
def nb201() -> SearchSpace:
    """NAS-Bench-201's cell: 4 nodes, each the sum of all earlier ones through one of 5 ops per edge."""
    return SearchSpace(
        name="nb201", kind="dense",
        cells={"cell": CellSpace(ops=NB201_OPS, n_inputs=1, n_nodes=3, all_inputs=True)},
        description="NAS-Bench-201's cell (Dong & Yang, ICLR 2020): 4 nodes, every node the sum of all earlier "
                    "nodes, one op per edge (6 edges) of none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3",
    )
