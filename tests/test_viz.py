"""Cell graphs, graphviz drawings, text drawings and plots, on published cells and on real short runs."""

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import networkx as nx
import pytest
from PIL import Image
from rich.cells import cell_len

from nasp.cli.main import main
from nasp.errors import GenotypeError
from nasp.genotype import Genotype
from nasp.spaces import CellSpace, SearchSpace
from nasp.viz import GraphvizNotFound
from nasp.viz.graph import cell_graph
from nasp.viz.render import render_cell, render_genotype
from nasp.viz.text import cell_text

# the published cells (DARTS paper; the NASP authors' code), as the reference notes give them
NASP = Genotype.from_pairs(
    "cnn12",
    normal=[("conv_1x3_3x1", 0), ("conv_3x3", 1), ("dil_conv_3x3", 2), ("conv_3x3", 1),
            ("dil_conv_3x3", 2), ("conv_3x3", 0), ("skip_connect", 0), ("dil_conv_3x3", 3)],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_5x5", 1),
            ("skip_connect", 2), ("skip_connect", 3), ("skip_connect", 0), ("skip_connect", 1)])
DARTS_V2 = Genotype.from_pairs(
    "cnn7",
    normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)])
PUBLISHED = {"NASP": NASP, "DARTS_V2": DARTS_V2}

# a recurrent-shaped space (1 input, 8 nodes, 1 edge each, as DARTS's PTB cell) built from registered ops
RNN_SPACE = SearchSpace(name="rnn-shape", kind="rnn", cells={
    "recurrent": CellSpace(ops=("skip_connect", "conv_1x1", "avg_pool_3x3"), n_inputs=1, n_nodes=8, inputs_per_node=1)})
RNN = Genotype(space="rnn-shape", space_def=RNN_SPACE, cells={"recurrent": [
    [{"op": op, "input": i}] for op, i in [("conv_1x1", 0), ("skip_connect", 1), ("avg_pool_3x3", 1), ("conv_1x1", 2),
                                            ("skip_connect", 0), ("conv_1x1", 4), ("skip_connect", 3), ("avg_pool_3x3", 6)]]})


def node_names(geno: Genotype, cell_type: str) -> list[str]:
    return ["c_{k-2}", "c_{k-1}"] + [str(j) for j in range(len(geno.cells[cell_type]))]


def svg_texts(path: Path) -> list[str]:
    return [el.text for el in ET.parse(path).iter() if el.tag.endswith("text") and el.text]


@pytest.mark.parametrize("name", PUBLISHED)
def test_cell_graph_is_the_genotype(name):
    geno = PUBLISHED[name]
    for ct, nodes in geno.cells.items():
        g = cell_graph(geno, ct)
        assert nx.is_directed_acyclic_graph(g)
        kinds = {n: d["kind"] for n, d in g.nodes(data=True)}
        assert [n for n, k in kinds.items() if k == "input"] == ["c_{k-2}", "c_{k-1}"]
        assert [n for n, k in kinds.items() if k == "node"] == ["0", "1", "2", "3"]
        assert [n for n, k in kinds.items() if k == "output"] == ["c_{k}"]
        names = node_names(geno, ct)
        for j, edges in enumerate(nodes):
            assert g.in_degree(str(j)) == 2
            got = {(u, d["op"]) for u, _, d in g.in_edges(str(j), data=True)}
            assert got == {(names[e.input], e.op) for e in edges}
            assert g.edges[str(j), "c_{k}"]["op"] == "concat"
        assert g.in_degree("c_{k}") == 4 and g.out_degree("c_{k}") == 0
        assert nx.ancestors(g, "c_{k}") == set(names)  # every node reaches the output
        assert list(nx.topological_sort(g))[-1] == "c_{k}"


def test_recurrent_cell_graph_text_and_drawing(tmp_path):
    g = cell_graph(RNN, "recurrent")
    assert nx.is_directed_acyclic_graph(g)
    assert g.graph["inputs"] == ["x_{t}/h_{t-1}"] and g.graph["output"] == "h_{t}"
    assert all(g.in_degree(str(j)) == 1 for j in range(8))
    assert g.edges["7", "h_{t}"]["op"] == "mean"
    assert g.edges["5", "7"]["op"] == "avg_pool_3x3"  # node 7 reads input 6 = intermediate node 5
    text = cell_text(RNN, "recurrent")
    assert "recurrent cell" in text and "h_{t}" in text and all(cell_len(ln) <= 80 for ln in text.splitlines())
    svg = render_cell(RNN, "recurrent", tmp_path / "rnn")
    assert {"x_{t}/h_{t-1}", "h_{t}", "avg_pool_3x3", *map(str, range(8))} <= set(svg_texts(svg))


def test_unknown_cell_type_is_a_genotype_error():
    with pytest.raises(GenotypeError, match="Did you mean 'normal'"):
        cell_graph(NASP, "normall")


@pytest.mark.parametrize("fmt", ["svg", "png", "pdf"])
def test_render_published_cells_with_real_dot(fmt, tmp_path):
    for name, geno in PUBLISHED.items():
        paths = render_genotype(geno, tmp_path / name, fmt)
        assert [p.name for p in paths] == [f"normal.{fmt}", f"reduce.{fmt}"]
        for ct, p in zip(geno.cells, paths, strict=True):
            assert (tmp_path / name / f"{ct}.gv").is_file()
            data = p.read_bytes()
            if fmt == "svg":
                texts = set(svg_texts(p))
                assert {e.op for node in geno.cells[ct] for e in node} <= texts
                assert {*node_names(geno, ct), "c_{k}"} <= texts
            elif fmt == "png":
                with Image.open(p) as im:
                    im.verify()
                with Image.open(p) as im:
                    assert im.format == "PNG" and im.width > 400 and im.height > 150
            else:
                assert data.startswith(b"%PDF") and b"%%EOF" in data[-64:]


def test_missing_dot_writes_source_and_says_how_to_install(tmp_path, monkeypatch, capsys):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # a machine without Graphviz
    with pytest.raises(GraphvizNotFound) as err:
        render_genotype(NASP, tmp_path / "out", "svg")
    assert "apt-get install graphviz" in str(err.value) and "brew install graphviz" in str(err.value)
    for ct in ("normal", "reduce"):
        source = (tmp_path / "out" / f"{ct}.gv").read_text()
        assert all(e.op in source for node in NASP.cells[ct] for e in node)
        assert not (tmp_path / "out" / f"{ct}.svg").exists()
    geno_file = NASP.save(tmp_path / "nasp.json")
    assert main(["render", str(geno_file), f"out={tmp_path / 'cli'}"]) == 2
    err_text = capsys.readouterr().err
    assert "nasp render: error: Graphviz's `dot` program is not installed" in err_text
    assert "apt-get install graphviz" in err_text and "Traceback" not in err_text
    assert (tmp_path / "cli" / "normal.gv").is_file()


def test_show_fits_80_columns(tmp_path, capsys):
    for name, geno in PUBLISHED.items():
        path = geno.save(tmp_path / f"{name}.json")
        assert main(["show", str(path)]) == 0
        out = capsys.readouterr().out
        lines = out.splitlines()
        assert lines and max(cell_len(ln) for ln in lines) <= 80
        for ct, nodes in geno.cells.items():
            assert f"{ct} cell" in out
            drawing = cell_text(geno, ct)
            for j, edges in enumerate(nodes):  # each node's block names its inputs and ops
                block = [ln for ln in drawing.splitlines() if "──" in ln and "concat" not in ln][2 * j:2 * j + 2]
                assert block[-1].rstrip().endswith(f"▶ {j}")
                names = node_names(geno, ct)
                assert sorted((ln.split("──")[0].strip(), ln.split("──")[1].strip()) for ln in block) == \
                    sorted((names[e.input], e.op) for e in edges)
    narrow = cell_text(NASP, "normal", width=30)
    assert max(cell_len(ln) for ln in narrow.splitlines()) <= 30
    assert main(["show", str(tmp_path / "missing.json")]) == 2
    assert "no such genotype file" in capsys.readouterr().err


def image_ok(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        return im.size


def test_real_runs_are_drawn_and_plotted(tiny_run, tmp_path, monkeypatch, capsys):
    runs = tmp_path / "runs"
    small = [*tiny_run, "data.limit=32", "space=cnn12"]
    assert main(["run", "algorithm=nasp", *small, "epochs=2", "name=nasp"]) == 0
    assert main(["run", "algorithm=darts-1st", *small, "epochs=2", "name=darts"]) == 0
    capsys.readouterr()

    # a search on a machine without Graphviz goes on: .gv sources only, one warning for the whole run
    with monkeypatch.context() as m:
        empty = tmp_path / "empty-bin"
        empty.mkdir()
        m.setenv("PATH", str(empty))
        assert main(["run", "algorithm=nasp", "algorithm.eta=10", *small, "epochs=2", "name=nasp-eta10"]) == 0
    nodot = runs / "nasp-eta10" / "cells"
    assert {p.name for p in nodot.glob("*.gv")} >= {"epoch_001_normal.gv", "epoch_002_reduce.gv", "latest_normal.gv"}
    assert not list(nodot.glob("*.svg"))
    assert capsys.readouterr().err.count("Graphviz's `dot` program is not installed") == 1
    assert json.loads((runs / "nasp-eta10" / "status.json").read_text())["status"] == "finished"

    # the CellDrawings callback drew Ā of every epoch; the latest drawing is the run's genotype
    cells = runs / "nasp" / "cells"
    assert {"epoch_001_normal.svg", "epoch_002_reduce.svg", "latest_normal.svg", "latest_reduce.svg"} <= \
        {p.name for p in cells.iterdir()}
    geno = Genotype.load(runs / "nasp")
    assert {e.op for node in geno.cells["normal"] for e in node} <= set(svg_texts(cells / "latest_normal.svg"))
    history = [json.loads(ln) for ln in (runs / "nasp" / "history.jsonl").read_text().splitlines()]
    first = Genotype.model_validate(history[0]["genotype"])
    assert {e.op for node in first.cells["reduce"] for e in node} <= set(svg_texts(cells / "epoch_001_reduce.svg"))

    # nasp render on a run folder: every cell in every format
    assert main(["render", str(runs / "darts"), "format=svg,png,pdf"]) == 0
    written = capsys.readouterr().out.split()
    assert sorted(Path(p).name for p in written) == sorted(f"{ct}.{f}" for ct in ("normal", "reduce")
                                                          for f in ("svg", "png", "pdf"))
    assert all(Path(p).parent == runs / "darts" / "cells" for p in written)

    # nasp plot on the nasp and darts-1st runs: Fig. 4, heatmaps, GIFs and curves
    out = tmp_path / "plots"
    assert main(["plot", str(runs / "nasp"), str(runs / "darts"), f"out={out}", "epoch=1"]) == 0
    for run in ("nasp", "darts"):
        for ct in ("normal", "reduce"):
            w, h = image_ok(out / f"{run}_ops_{ct}.png")
            assert w > 600 and h > 400
            image_ok(out / f"{run}_A_{ct}_epoch001.png")
            with Image.open(out / f"{run}_A_{ct}.gif") as gif:
                assert gif.format == "GIF" and gif.n_frames == 2  # one frame per epoch
    assert image_ok(out / "curves.png")[0] > 600
    assert not (out / "size_vs_eta.png").exists()  # both runs have eta = 0

    # runs that differ in eta also get model size against eta (Fig. 2)
    assert main(["plot", str(runs / "nasp"), str(runs / "nasp-eta10"), f"out={tmp_path / 'eta'}", "figures=size"]) == 0
    assert [p.name for p in (tmp_path / "eta").iterdir()] == ["size_vs_eta.png"]
    image_ok(tmp_path / "eta" / "size_vs_eta.png")
    capsys.readouterr()

    # bad input: one message, exit 2
    assert main(["plot", str(runs / "nasp"), "epoch=7"]) == 2
    assert "epoch=7: run 'nasp' has epochs 1..2" in capsys.readouterr().err
    assert main(["plot", str(tmp_path)]) == 2
    assert "has no config.json" in capsys.readouterr().err
    assert main(["plot", str(runs / "nasp"), "figures=size"]) == 2
    assert "differ in algorithm.eta" in capsys.readouterr().err
