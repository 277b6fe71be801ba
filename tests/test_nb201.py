"""NAS-Bench-201: the dense space kind, the nb201 space and skeleton, every algorithm on it, its architecture
strings, user dense spaces by YAML."""

import pytest
import torch

from nasp.cli.main import main
from nasp.errors import ConfigError, GenotypeError
from nasp.genotype import Genotype
from nasp.genotypes import read_genotype
from nasp.genotypes.nb201 import parse_nb201, to_nb201
from nasp.model import create_search_network
from nasp.model.budget import genotype_params
from nasp.model.dense import DenseChildNetwork, DenseSearchCell, ResidualReduction
from nasp.spaces import get_space, load_space_file

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
CELL_11 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|"
ALGORITHMS = ["nasp", "pa-standard", "pa-lazy", "darts-1st", "darts-2nd", "random"]


def tiny(tmp_path):
    return ["space=nb201", "threads=1", "data.limit=96", "batch_size=16", "dense.channels=4", "dense.cells=1",
            "epochs=1", f"out={tmp_path / 'runs'}"]


def test_nb201_space_and_skeleton():
    space = get_space("nb201")
    cell = space.cells["cell"]
    assert space.kind == "dense" and cell.ops == ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3",
                                                  "avg_pool_3x3")
    assert cell.n_edges == 6 and [cell.kept_inputs(j) for j in range(3)] == [1, 2, 3]
    net = create_search_network(space, 16, 5, num_classes=10, in_channels=3)
    kinds = [type(b).__name__ for b in net.blocks]
    assert kinds == ["DenseSearchCell"] * 5 + ["ResidualReduction"] + ["DenseSearchCell"] * 5 + \
        ["ResidualReduction"] + ["DenseSearchCell"] * 5
    assert [b.edge_ops[0][3][1].out_channels for b in net.blocks if isinstance(b, DenseSearchCell)][::5] == [16, 32, 64]
    assert net(torch.randn(2, 3, 32, 32), {"cell": torch.rand(6, 5)}).shape == (2, 10)
    # NATS-Bench's cell 11 at C=16, N=5 on CIFAR-10: 0.802426 M parameters in the benchmark's own file
    geno = parse_nb201(CELL_11)
    with torch.device("meta"):
        child = DenseChildNetwork(geno, 16, 5, 10, 3)
    assert sum(p.numel() for p in child.parameters()) == 802_426
    assert genotype_params(geno, 16, 5) == 802_426
    assert isinstance(child.blocks[5], ResidualReduction)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_algorithm_runs_on_nb201_and_its_genotype_round_trips(algorithm, tmp_path, capsys):
    assert main(["run", f"algorithm={algorithm}", *tiny(tmp_path)]) == 0
    (run,) = list((tmp_path / "runs").iterdir())
    geno = Genotype.load(run / "genotype.json")
    assert geno.space == "nb201" and [len(node) for node in geno.cells["cell"]] == [1, 2, 3]
    assert list((run / "cells").iterdir())  # the cell drawn each epoch
    capsys.readouterr()
    assert main(["genotypes", "export", str(run), "--format", "nb201"]) == 0
    text = capsys.readouterr().out.strip()
    assert text.startswith("|") and text.count("+") == 2
    assert read_genotype(text) == geno and to_nb201(parse_nb201(text)) == text


def test_nasp_on_nb201_does_not_start_at_all_none(tmp_path):
    """Equal entries of A would all pick 'none' (the first op), a cell of zeros that gives A no gradient."""
    from nasp.algorithms import ALGORITHMS as REGISTRY
    from nasp.config import AlgorithmConfig, OptimConfig

    space = get_space("nb201")
    net = create_search_network(space, 2, 1, num_classes=3, in_channels=1)
    algo = REGISTRY.get("nasp")(space, net, AlgorithmConfig(name="nasp"), OptimConfig(), 1, torch.device("cpu"))
    ops = {e.op for node in algo.genotype().cells["cell"] for e in node}
    assert ops != {"none"} and len(ops) > 1


def test_nb201_strings_round_trip_and_bad_ones_are_one_line():
    for text in [BEST, "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
                 "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"]:
        geno = parse_nb201(text)
        assert geno.space == "nb201" and to_nb201(geno) == text
        assert Genotype.from_json(geno.to_json()) == geno
    # inputs may come in any order within a node; the string written is in the benchmark's order
    assert to_nb201(parse_nb201("|nor_conv_3x3~0|+|avg_pool_3x3~1|nor_conv_3x3~0|+|none~2|none~1|none~0|")) == \
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|none~1|none~2|"
    bad = {
        "|conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|": "unknown op 'conv_9x9'",
        "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|": "node 1 reads inputs [1]",
        "|none~0|+|none~0|+|none~0|none~1|none~2|": "node 2 reads inputs [0]",
        "|none~0|+|none~0|none~1|": "2 nodes after the input",
        "|none~0|+|none~0 none~1|+|x|": "is not op~input",
        "|none~0|+none~0|none~1|+|none~0|none~1|none~2|": "between bars",
        "|none~99999|+|": "is not op~input",
        "|" + "a" * 5000 + "~0|": "at most 4096",
        "|n\x00ne~0|+|none~0|none~1|+|none~0|none~1|none~2|": "not a plain identifier",
    }
    for text, words in bad.items():
        with pytest.raises(GenotypeError) as err:
            read_genotype(text)
        assert words in str(err.value) and "\n" not in str(err.value), (text[:40], str(err.value))
    cnn = read_genotype("DARTS_V2")
    with pytest.raises(GenotypeError, match="dense cells"):
        to_nb201(cnn)


def test_bad_nb201_string_at_the_cli_is_one_line_exit_2(capsys):
    assert main(["genotypes", "export", "|nor_conv_3x4~0|+|none~0|none~1|+|none~0|none~1|none~2|"]) == 2
    err = capsys.readouterr().err.strip()
    assert "Did you mean 'nor_conv_3x3'" in err and len(err.splitlines()) == 1


def test_user_dense_space_by_yaml(tmp_path):
    path = tmp_path / "mini201.yaml"
    path.write_text("name: mini201\nkind: dense\ncells:\n  cell:\n    ops: [none, skip_connect, nor_conv_3x3]\n"
                    "    n_nodes: 2\n")
    space = load_space_file(path)
    cell = space.cells["cell"]
    assert space.kind == "dense" and cell.all_inputs and cell.n_inputs == 1 and cell.n_edges == 3
    net = create_search_network(space, 2, 1, num_classes=3, in_channels=1)
    assert net(torch.randn(2, 1, 8, 8), {"cell": torch.rand(3, 3)}).shape == (2, 3)
    for body, words in [("cells:\n  normal: {ops: [none]}\n", "one cell type 'cell'"),
                        ("cells:\n  cell: {ops: [none], n_inputs: 2}\n", "reads 1 input"),
                        ("cells:\n  cell: {ops: [none], all_inputs: false}\n", "all_inputs"),
                        ("cells:\n  cell: {ops: [nor_conv_3x4]}\n", "Did you mean 'nor_conv_3x3'")]:
        path.write_text("kind: dense\n" + body)
        with pytest.raises(ConfigError, match=words):
            load_space_file(path)


def test_app_grid_and_editor_of_a_dense_cell(tmp_path):
    """The app's grid names nb201's edges and marks one op per edge; the editor changes ops ('none' among them) and
    offers no input choice (every edge of a dense cell is there)."""
    import asyncio

    from textual.widgets import Label, Select, Static

    from tui.app import NaspApp
    from tui.genoedit import GenotypeEdit
    from tui.render import discrete_grid, edge_labels, node_names

    cell = get_space("nb201").cells["cell"]
    assert node_names(cell) == ["c_{k-1}", "0", "1", "2"]
    assert edge_labels(cell) == ["c_{k-1}→0", "c_{k-1}→1", "0→1", "c_{k-1}→2", "0→2", "1→2"]
    abar = [[1.0 if k == (e % 5) else 0.0 for k in range(5)] for e in range(6)]
    grid = discrete_grid(cell, abar, "Ā").plain.splitlines()
    assert grid[1].split() == ["none", "skip", "nor1", "nor3", "avg3"]
    assert [row.count("●") for row in grid[2:]] == [1] * 6

    edit = GenotypeEdit.load(CELL_11)
    assert edit.label == "NAS-Bench-201 string" and edit.op_choices("cell")[0] == "none"
    edit.edit("cell", 2, 1, op="none")
    assert to_nb201(edit.genotype) == CELL_11.replace("nor_conv_3x3~1|avg", "none~1|avg")
    with pytest.raises(GenotypeError, match="repeated"):
        edit.edit("cell", 2, 1, input=0)

    path = tmp_path / "cell.json"
    parse_nb201(CELL_11).save(path)

    async def drive() -> None:
        app = NaspApp(genotype=str(path))
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen.query_one("#s-cell-2-1-in"), Label)  # the input is shown, not chosen
            select = screen.query_one("#s-cell-2-1-op", Select)
            select.value = "none"
            await pilot.pause()
            assert app.genotype_edit.genotype.cells["cell"][2][1].op == "none"
            drawing = str(screen.query_one("#drawing", Static).render())
            assert "none" in drawing and "last" in drawing

    asyncio.run(drive())


def test_eval_preset_trains_a_nb201_string_with_the_benchmarks_recipe(tmp_path, capsys):
    from nasp.config import build_config, load_yaml
    from nasp.evaluation.config import EvalConfig
    from nasp.presets import list_presets, preset_path

    assert "eval-nb201" in list_presets() and "study-nb201" in list_presets()
    cfg = build_config(load_yaml(preset_path("eval-nb201"), EvalConfig), EvalConfig)
    o = cfg.optim
    assert (cfg.epochs, cfg.batch_size, o.lr, o.lr_min, o.schedule, o.nesterov, o.momentum, o.weight_decay) == \
        (200, 256, 0.1, 0.0, "cosine", True, 0.9, 5e-4)
    assert (cfg.model.channels, cfg.model.layers, cfg.model.auxiliary, cfg.model.drop_path, cfg.data.cutout) == \
        (16, 5, False, 0.0, 0)
    assert main(["eval", "--config", "eval-nb201", f"genotype={CELL_11}", "--dry-run"]) == 0
    assert "(802,426)" in capsys.readouterr().out  # the benchmark's own count for this cell
    assert main(["eval", "--config", "eval-nb201", f"genotype={CELL_11}", "data.name=embedded", "data.limit=64",
                 "data.test_limit=32", "model.channels=4", "model.layers=1", "epochs=1", "batch_size=16",
                 "threads=1", f"out={tmp_path / 'ev'}"]) == 0
    (run,) = list((tmp_path / "ev").iterdir())
    assert run.name.endswith("nb201") and (run / "result.json").exists()


def test_dense_search_estimate_matches_a_real_network():
    from test_config import _kept_bytes

    from nasp.model.budget import estimate_dense_search_memory

    space = get_space("nb201")
    est = estimate_dense_search_memory(space, 4, 2, 4, 16, in_channels=1)
    net = create_search_network(space, 4, 2, num_classes=10, in_channels=1)
    assert est.params == sum(p.numel() for p in net.parameters())
    real = _kept_bytes(net, torch.randn(4, 1, 16, 16), {"cell": torch.full((6, 5), 0.1)})
    assert real / 2 <= est.activation_bytes <= real * 2, (est.activation_bytes, real)
    assert est.state_bytes == 3 * 4 * est.params
    from nasp.model.budget import DENSE_LOWER_KEYS, check_memory

    with pytest.raises(ConfigError, match=r"lower batch_size, dense\.channels, dense\.cells"):
        check_memory(est, 1000, keys=DENSE_LOWER_KEYS)


def test_dense_cell_ops_replaced_on_the_command_line(tmp_path, capsys):
    assert main(["run", "algorithm=random", "space.cell=skip_connect,nor_conv_3x3", *tiny(tmp_path)]) == 0
    (run,) = list((tmp_path / "runs").iterdir())
    geno = Genotype.load(run / "genotype.json")
    assert {e.op for node in geno.cells["cell"] for e in node} <= {"skip_connect", "nor_conv_3x3"}
    capsys.readouterr()
    assert main(["run", "space.cell=nor_conv_3x4", *tiny(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Did you mean 'nor_conv_3x3'" in err[0]
