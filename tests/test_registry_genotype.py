"""Registries (unknown names, user ops) and the genotype model (round trip, validation, size)."""

import json

import pytest
import torch
from torch import nn

from nasp import Genotype, register_op
from nasp.errors import GenotypeError, RegistryError
from nasp.model import ChildNetwork
from nasp.model.budget import genotype_params
from nasp.ops import OPS, create_op, list_ops, op_param_count
from nasp.spaces import get_space

ALL_OPS = ["none", "skip_connect", "avg_pool_3x3", "max_pool_3x3", "max_pool_5x5", "max_pool_7x7", "sep_conv_3x3",
           "sep_conv_5x5", "sep_conv_7x7", "dil_conv_3x3", "dil_conv_5x5", "conv_1x1", "conv_3x3", "conv_1x3_3x1"]


def test_every_paper_op_is_registered():
    assert set(ALL_OPS) <= set(list_ops())


@pytest.mark.parametrize("name", ALL_OPS)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [8, 7])
def test_op_shapes(name, stride, size):
    op = create_op(name, 6, stride)
    out = op(torch.randn(2, 6, size, size))
    expect = -(-size // stride)
    assert out.shape == (2, 6, expect, expect)


def test_unknown_op_lists_known_names_and_closest():
    with pytest.raises(RegistryError) as err:
        create_op("sep_conv_3x", 4)
    msg = str(err.value)
    assert "Did you mean 'sep_conv_3x3'?" in msg and "max_pool_7x7" in msg


def test_user_op_registers_and_counts():
    @register_op("test_conv_5x5_plain", overwrite=True)
    def plain(C, stride, affine):
        return nn.Sequential(nn.Conv2d(C, C, 5, stride, 2, bias=False), nn.BatchNorm2d(C, affine=affine))

    assert "test_conv_5x5_plain" in OPS
    assert op_param_count("test_conv_5x5_plain", 4) == 4 * 4 * 25
    assert get_space("cnn7").with_ops(normal=["test_conv_5x5_plain", "skip_connect"]).cells["normal"].n_ops == 2


DARTS_V2 = dict(
    normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
)


def test_genotype_json_round_trip():
    g = Genotype.from_pairs("cnn7", **DARTS_V2)
    again = Genotype.from_json(g.to_json())
    assert again == g
    assert json.loads(g.to_json())["cells"]["normal"][3][1] == {"op": "dil_conv_3x3", "input": 2}


def test_darts_v2_parameter_count_matches_the_paper():
    """DARTS's CIFAR network of DARTS_V2 (C=36, 20 cells, no auxiliary head): 3.35M parameters."""
    g = Genotype.from_pairs("cnn7", **DARTS_V2)
    assert round(genotype_params(g, channels=36, layers=20) / 1e6, 2) == 3.35


def test_param_count_is_the_child_networks():
    g = Genotype.from_pairs("cnn7", **DARTS_V2)
    net = ChildNetwork(g, 8, 5, 10, 1)
    assert genotype_params(g, 8, 5, 10, 1) == sum(p.numel() for p in net.parameters())
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize(("cell", "edit", "message"), [
    ("normal", lambda p: p.__setitem__(0, ("max_pool_5x5", 0)), "op 'max_pool_5x5' is not in the normal ops"),
    ("reduce", lambda p: p.__setitem__(0, ("conv_3x3", 0)), "op 'conv_3x3' is not in the reduce ops"),
    ("normal", lambda p: p.__setitem__(1, ("conv_3x3", 2)), "input 2 out of range"),
    ("normal", lambda p: p.append(("conv_3x3", 1)), "inputs, each node takes exactly 2"),
])
def test_genotype_validation_errors(cell, edit, message):
    nasp_cell = dict(
        normal=[("conv_1x3_3x1", 0), ("conv_3x3", 1), ("dil_conv_3x3", 2), ("conv_3x3", 1),
                ("dil_conv_3x3", 2), ("conv_3x3", 0), ("skip_connect", 0), ("dil_conv_3x3", 3)],
        reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_5x5", 1),
                ("skip_connect", 2), ("skip_connect", 3), ("skip_connect", 0), ("skip_connect", 1)],
    )
    Genotype.from_pairs("cnn12", **nasp_cell)  # the published cell is valid
    pairs = {k: list(v) for k, v in nasp_cell.items()}
    edit(pairs[cell])
    raw = {"space": "cnn12", "cells": {ct: [[{"op": o, "input": i} for o, i in ps[n:n + 2]] for n in range(0, 8, 2)]
                                      for ct, ps in pairs.items()}}
    if "exactly" in message:  # three edges on the last node
        raw["cells"][cell][3].append({"op": "conv_3x3", "input": 1})
    with pytest.raises(GenotypeError, match=message):
        Genotype.from_json(json.dumps(raw))


def test_nasp_published_cell_parameter_count():
    """The 12-op cell of the authors' code: 7.36M at C=36, 20 cells (the paper says 7.4M)."""
    g = Genotype.from_pairs(
        "cnn12",
        normal=[("conv_1x3_3x1", 0), ("conv_3x3", 1), ("dil_conv_3x3", 2), ("conv_3x3", 1),
                ("dil_conv_3x3", 2), ("conv_3x3", 0), ("skip_connect", 0), ("dil_conv_3x3", 3)],
        reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_5x5", 1),
                ("skip_connect", 2), ("skip_connect", 3), ("skip_connect", 0), ("skip_connect", 1)],
    )
    assert round(genotype_params(g, channels=36, layers=20) / 1e6, 2) == 7.36


def test_config_doc_lists_every_key():
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("config_doc", root / "benchmarks" / "config_doc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (root / "docs" / "config.md").read_text() == module.render(), "run: python benchmarks/config_doc.py"


@pytest.mark.parametrize(("cells", "message"), [
    ({"normal": {"ops": ["skip_connect"]}}, "cell type 'reduce' is missing"),
    ({"normal": {"ops": ["skip_connect"]}, "reduce": {"ops": ["skip_connect"]}}, "reduce cell has reduction true"),
    ({"normal": {"ops": ["skip_connect"]}, "reduce": {"ops": ["skip_connect"], "reduction": True},
      "extra": {"ops": ["skip_connect"]}}, "not 'extra'"),
    ({"normal": {"ops": ["skip_connect"], "n_inputs": 1}, "reduce": {"ops": ["skip_connect"], "reduction": True}},
     "inputs_per_node 2 is more than n_inputs 1"),
    ({"normal": {"ops": ["skip_connect", "skip_connect"]}, "reduce": {"ops": ["skip_connect"], "reduction": True}},
     "listed twice"),
    ({"normal": {"ops": []}, "reduce": {"ops": ["skip_connect"], "reduction": True}}, "at least one op"),
    ({"normal": {"ops": ["skip_connect"], "n_nodes": 10_000}, "reduce": {"ops": ["skip_connect"], "reduction": True}},
     "less than or equal to 64"),
])
def test_space_structure_errors(cells, message):
    from pydantic import ValidationError

    from nasp.spaces import SearchSpace

    with pytest.raises(ValidationError, match=message):
        SearchSpace.model_validate({"name": "s", "cells": cells})


def test_with_ops_is_one_line_and_needs_registered_ops():
    with pytest.raises(ValueError) as err:
        get_space("cnn12").with_ops(normal=["conv_3x3", "sep_conv_3x"])
    assert "\n" not in str(err.value) and "Did you mean 'sep_conv_3x3'" in str(err.value)
    with pytest.raises(ValueError, match="not a plain identifier"):
        get_space("cnn12").with_ops(registered_ops=False, normal=["conv_3x3", "conv 3x3"])


def test_genotype_of_an_unknown_space_is_checked_for_structure():
    raw = {"space": "elsewhere", "cells": {"normal": [[{"op": "a", "input": 0}, {"op": "b", "input": 1}],
                                                      [{"op": "a", "input": 2}]]}}
    geno = Genotype.from_json(json.dumps(raw))
    assert geno.resolve_space(strict=False) is None
    raw["cells"]["normal"][1][0]["input"] = 3  # node 1 may read inputs 0..2
    with pytest.raises(GenotypeError, match="input 3 out of range"):
        Genotype.from_json(json.dumps(raw))
    raw["cells"]["normal"][1] = []
    with pytest.raises(GenotypeError, match="no inputs"):
        Genotype.from_json(json.dumps(raw))
    with pytest.raises(GenotypeError, match="not registered"):
        Genotype.from_json(json.dumps({"space": "elsewhere", "cells": {"normal": [[{"op": "a", "input": 0}]]}}),
                           registered_ops=True)
