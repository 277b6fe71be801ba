"""Viewing runs no code named in a data file: `nasp show/render/plot` and the terminal app's replay of a run
folder whose search imported a plugin never import that plugin; genotype and space files that are binary,
not JSON/YAML or malformed are one line naming the file. Real searches, real processes, real graphviz."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from pydantic import ValidationError

from nasp.genotype import Genotype
from nasp.spaces import REGISTERED_OPS, SearchSpace, get_space

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_OP = "plugin_conv_5x5"
PLUGIN_MODULE = "nasp_plugin_my_ops"  # the name load_plugins gives my_ops.py
PLUGIN = f'''"""A plugin op; importing this file leaves a marker next to it."""
from pathlib import Path

from torch import nn

from nasp import register_op

Path(__file__).with_name("MARKER").write_text("imported")


@register_op("{PLUGIN_OP}")
def plugin_conv(C, stride, affine):
    """A plain 5x5 convolution."""
    return nn.Sequential(nn.ReLU(), nn.Conv2d(C, C, 5, stride, 2, bias=False), nn.BatchNorm2d(C, affine=affine))
'''


def nasp(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m nasp ARGS`` as a user runs it (no user genotype folder, no inherited plugins)."""
    env = {**os.environ, "NASP_GENOTYPES": str(cwd / "no-user-genotypes"), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "nasp", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def one_error_line(proc: subprocess.CompletedProcess[str], command: str) -> str:
    """The single error line of a failed command (exit 2, no traceback)."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"nasp {command}: error: "), proc.stderr
    return lines[0]


def svg_texts(path: Path) -> set[str]:
    return {el.text for el in ET.parse(path).iter() if el.tag.endswith("text") and el.text}


@pytest.fixture(scope="module")
def plugin_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(run folder, marker path) of a real tiny search with a plugin op; the marker is deleted after the run."""
    work = tmp_path_factory.mktemp("plugin-run")
    plugin = work / "my_ops.py"
    plugin.write_text(PLUGIN)
    proc = nasp("run", f"plugins={plugin}", f"space.normal=skip_connect,conv_3x3,{PLUGIN_OP}", "epochs=1",
                "data.limit=64", "model.channels=4", "model.layers=2", "batch_size=16", f"out={work / 'runs'}",
                "name=plugin-run", cwd=work)
    assert proc.returncode == 0, proc.stderr
    marker = work / "MARKER"
    assert marker.is_file(), "the search imported the plugin, which leaves the marker"
    marker.unlink()
    run = work / "runs" / "plugin-run"
    geno = json.loads((run / "genotype.json").read_text())
    assert PLUGIN_OP in {e["op"] for node in geno["cells"]["normal"] for e in node}, "the search kept the plugin op"
    assert "space_def" in geno  # cnn12 with space.normal overridden: the space is stored with the genotype
    return run, marker


def test_show_render_plot_of_a_plugin_run_import_no_plugin(plugin_run):
    run, marker = plugin_run
    work = run.parent.parent
    show = nasp("show", str(run), cwd=work)
    assert show.returncode == 0, show.stderr
    assert PLUGIN_OP in show.stdout and "normal cell" in show.stdout and "reduce cell" in show.stdout

    render = nasp("render", str(run), "format=svg", f"out={work / 'drawn'}", cwd=work)
    assert render.returncode == 0, render.stderr
    assert PLUGIN_OP in svg_texts(work / "drawn" / "normal.svg")

    plot = nasp("plot", str(run), f"out={work / 'plots'}", "figures=ops,heatmap", cwd=work)
    assert plot.returncode == 0, plot.stderr
    assert {p.name for p in (work / "plots").iterdir()} == {"ops_normal.png", "ops_reduce.png",
                                                           "A_normal_epoch001.png", "A_reduce_epoch001.png"}
    assert not marker.exists(), "viewing a run folder imported the plugin its config names"


def test_viewing_without_events_still_imports_no_plugin(plugin_run, tmp_path):
    """Without events.jsonl the space comes from genotype.json's space_def; still no plugin import."""
    run, marker = plugin_run
    copy = tmp_path / "copy"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("cells", "plots", "events.jsonl"))
    plot = nasp("plot", str(copy), "figures=heatmap", cwd=tmp_path)
    assert plot.returncode == 0, plot.stderr
    assert (copy / "plots" / "A_normal_epoch001.png").is_file()
    assert not marker.exists()


def test_explicit_plugins_option_is_still_imported(plugin_run):
    """`--plugins` is the user naming code on the command line: it is imported, as before."""
    run, marker = plugin_run
    plugin = run.parent.parent / "my_ops.py"
    try:
        proc = nasp("show", str(run), "--plugins", str(plugin), cwd=run.parent.parent)
        assert proc.returncode == 0, proc.stderr
        assert marker.is_file()
    finally:
        marker.unlink(missing_ok=True)


def test_tui_replay_imports_no_plugin(plugin_run):
    from tui.runs import load_run_state, run_space

    run, marker = plugin_run
    state = load_run_state(run)
    assert state.space is not None and PLUGIN_OP in state.space.cells["normal"].ops
    assert len(state.history) == 1  # the one epoch, replayed
    # without the run_start event the space comes from the stored genotype, still without the plugin
    space = run_space(run, json.loads((run / "config.json").read_text()))
    assert space is not None and PLUGIN_OP in space["cells"]["normal"]["ops"]
    assert not marker.exists()
    assert PLUGIN_MODULE not in sys.modules
    assert not any(getattr(m, "__file__", None) == str(run.parent.parent / "my_ops.py") for m in list(sys.modules.values()))


def test_building_a_network_still_needs_the_plugin(plugin_run):
    """Evaluation builds the network: the plugin op must be registered (did-you-mean message otherwise)."""
    run, marker = plugin_run
    err = one_error_line(nasp("eval", f"genotype={run}", "epochs=1", "device=cpu", cwd=run.parent.parent), "eval")
    assert f"unknown op '{PLUGIN_OP}'" in err and "Known:" in err
    assert not marker.exists()


# --- structural validation (viewing) against registered ops (building) ---------------------------------
SPACE = {"name": "mine", "cells": {"normal": {"ops": ["skip_connect", "sep_conv_3x"]},
                                   "reduce": {"ops": ["max_pool_3x3"], "reduction": True}}}


def test_space_structure_only_unless_building():
    space = SearchSpace.model_validate(SPACE)  # viewing: op names need only be identifiers
    assert space.cells["normal"].ops == ("skip_connect", "sep_conv_3x")
    with pytest.raises(ValidationError, match="Did you mean 'sep_conv_3x3'"):
        SearchSpace.model_validate(SPACE, context=REGISTERED_OPS)
    with pytest.raises(Exception, match="Did you mean 'sep_conv_3x3'"):
        space.require_registered_ops()
    with pytest.raises(ValueError, match="Did you mean 'sep_conv_3x3'"):
        get_space("cnn12").with_ops(normal=["conv_3x3", "sep_conv_3x"])
    assert get_space("cnn12").with_ops(registered_ops=False, normal=["conv_3x3", "x9"]).cells["normal"].ops == \
        ("conv_3x3", "x9")
    for bad in ("conv-3x3", "rm -rf", "x\x1b[31m", "9conv", "", "a" * 65):
        raw = json.loads(json.dumps(SPACE))
        raw["cells"]["normal"]["ops"] = ["skip_connect", bad]
        with pytest.raises(ValidationError, match="op"):
            SearchSpace.model_validate(raw)


def genotype_with_space_def(ops: list[str]) -> dict:
    space = {"name": "mine", "cells": {"normal": {"ops": ops}, "reduce": {"ops": ["max_pool_3x3"], "reduction": True}}}
    node = [{"op": ops[0], "input": 0}, {"op": ops[-1], "input": 1}]
    return {"space": "mine", "space_def": space,
            "cells": {"normal": [node, node, node, node],
                      "reduce": [[{"op": "max_pool_3x3", "input": 0}, {"op": "max_pool_3x3", "input": 1}]] * 4}}


def test_genotype_load_registered_ops_flag(tmp_path):
    path = tmp_path / "g.json"
    path.write_text(json.dumps(genotype_with_space_def(["skip_connect", "sep_conv_3x"])))
    geno = Genotype.load(path)
    assert geno.resolve_space().cells["normal"].ops[-1] == "sep_conv_3x"
    with pytest.raises(Exception, match="Did you mean 'sep_conv_3x3'") as err:
        Genotype.load(path, registered_ops=True)
    assert str(path) in str(err.value)
    with pytest.raises(Exception, match="Did you mean 'sep_conv_3x3'"):
        geno.require_registered_ops()


def test_unregistered_space_genotype_is_drawn(tmp_path):
    """A genotype of a space that is neither registered nor stored: its structure is checked, then drawn."""
    geno = {"space": "someone-elses", "cells": {
        "normal": [[{"op": "their_op", "input": 0}, {"op": "skip_connect", "input": 1}],
                   [{"op": "their_op", "input": 2}, {"op": "other_op", "input": 0}]],
        "reduce": [[{"op": "pool_op", "input": 0}, {"op": "pool_op", "input": 1}]]}}
    path = tmp_path / "theirs.json"
    path.write_text(json.dumps(geno))
    show = nasp("show", str(path), cwd=tmp_path)
    assert show.returncode == 0, show.stderr
    assert "their_op" in show.stdout and "other_op" in show.stdout and "someone-elses" in show.stdout
    render = nasp("render", str(path), cwd=tmp_path)
    assert render.returncode == 0, render.stderr
    assert {"their_op", "other_op", "c_{k-2}", "1"} <= svg_texts(tmp_path / "theirs_normal.svg")
    err = one_error_line(nasp("eval", f"genotype={path}", cwd=tmp_path), "eval")
    assert "'someone-elses' is not registered" in err and "space_def" in err


# --- the bad-input table for viewing (same format as tests/test_bad_inputs.py) ---------------------------
BINARY = bytes(range(256)) * 4
GOOD = {"space": "cnn12", "cells": {
    "normal": [[{"op": "conv_3x3", "input": 0}, {"op": "skip_connect", "input": 1}]] * 4,
    "reduce": [[{"op": "max_pool_3x3", "input": 0}, {"op": "skip_connect", "input": 1}]] * 4}}


def _edit(change) -> str:
    raw = json.loads(json.dumps(GOOD))
    change(raw)
    return json.dumps(raw)


FILES: dict[str, str | bytes] = {
    "binary.json": BINARY,
    "latin1.json": '{"space": "cnn12é"}'.encode("latin-1"),
    "notjson.json": "{space: cnn12",
    "list.json": "[1, 2, 3]",
    "empty.json": "",
    "badop.json": _edit(lambda g: g["cells"]["normal"][0][0].update(op="conv;rm -rf ~")),
    "escape.json": _edit(lambda g: g["cells"]["normal"][0][0].update(op="conv\u001b[31m")),
    "badcell.json": _edit(lambda g: g.update(cells={"../../evil": g["cells"]["normal"]})),
    "range.json": _edit(lambda g: g["cells"]["normal"][1][0].update(input=9)),
    "negative.json": _edit(lambda g: g["cells"]["normal"][1][0].update(input=-1)),
    "notinspace.json": _edit(lambda g: g["cells"]["reduce"][0][0].update(op="conv_3x3")),
    "nocells.json": json.dumps({"space": "cnn12"}),
    "badspacedef.json": _edit(lambda g: g.update(space_def={"name": "x", "cells": {"normal": {"ops": ["skip_connect"]}}})),
    "spacename.json": _edit(lambda g: g.update(space="cnn\u001b]0;pwned\u0007")),
    "space_no_reduce.yaml": "name: my\ncells:\n  normal: {ops: [skip_connect, conv_3x3]}\n",
    "space_cells_list.yaml": "cells: [normal, reduce]\n",
    "space_ops_str.yaml": "cells:\n  normal: {ops: skip_connect}\n  reduce: {ops: [max_pool_3x3]}\n",
    "space_nodes.yaml": "cells:\n  normal: {ops: [skip_connect], n_nodes: 0}\n  reduce: {ops: [max_pool_3x3]}\n",
    "space_kind.yaml": "kind: transformer\ncells:\n  normal: {ops: [skip_connect]}\n  reduce: {ops: [max_pool_3x3]}\n",
    "space_key.yaml": "cells:\n  normal: {ops: [skip_connect], opz: 1}\n  reduce: {ops: [max_pool_3x3]}\n",
    "space_badop.yaml": "cells:\n  normal: {ops: [skip_connect, 'x-y']}\n  reduce: {ops: [max_pool_3x3]}\n",
    "space_typo.yaml": "cells:\n  normal: {ops: [skip_connect, sep_conv_3x]}\n  reduce: {ops: [max_pool_3x3]}\n",
    "space_yaml.yaml": "cells:\n  normal: {ops: [skip_connect]\n  reduce: {ops: [max_pool_3x3]}\n",
    "space_binary.yaml": BINARY,
    "space_inputs.yaml": "cells:\n  normal: {ops: [skip_connect], n_inputs: 3}\n  reduce: {ops: [max_pool_3x3]}\n",
}
RUN = ["epochs=1", "data.limit=32", "batch_size=16", "model.channels=4", "model.layers=2", "device=cpu"]

# (args, needles): each exits 2 with one stderr line `nasp <cmd>: error: ...` holding every needle, no traceback.
# {d} is the folder holding FILES; a run folder without genotype.json is {d}/nogeno.
# --- viewing: render/show/plot/eval genotype files (added by the viewing developer) ---
VIEWING_CASES: list[tuple[list[str], list[str]]] = [
    (["show", "{d}/binary.json"], ["binary.json", "not UTF-8"]),
    (["render", "{d}/binary.json"], ["binary.json", "not UTF-8"]),
    (["eval", "genotype={d}/binary.json", *RUN], ["binary.json", "not UTF-8"]),
    (["show", "{d}/latin1.json"], ["latin1.json", "not UTF-8"]),
    (["show", "{d}/notjson.json"], ["notjson.json", "not valid JSON"]),
    (["render", "{d}/notjson.json"], ["notjson.json", "not valid JSON"]),
    (["eval", "genotype={d}/notjson.json", *RUN], ["notjson.json", "not valid JSON"]),
    (["show", "{d}/list.json"], ["list.json", "JSON object"]),
    (["show", "{d}/empty.json"], ["empty.json", "not valid JSON"]),
    (["show", "{d}/badop.json"], ["badop.json", "conv;rm -rf ~", "not a plain identifier"]),
    (["render", "{d}/escape.json"], ["escape.json", "not a plain identifier"]),
    (["render", "{d}/badcell.json"], ["badcell.json", "cell type", "../../evil", "not a plain identifier"]),
    (["show", "{d}/range.json"], ["range.json", "input 9 out of range"]),
    (["show", "{d}/negative.json"], ["negative.json", "cells.normal.1.0.input", "greater than or equal to 0"]),
    (["show", "{d}/notinspace.json"], ["notinspace.json", "op 'conv_3x3' is not in the reduce ops"]),
    (["eval", "genotype={d}/notinspace.json", *RUN], ["notinspace.json", "op 'conv_3x3' is not in the reduce ops"]),
    (["show", "{d}/nocells.json"], ["nocells.json", "cells", "Field required"]),
    (["show", "{d}/badspacedef.json"], ["badspacedef.json", "space_def", "cell type 'reduce' is missing"]),
    (["show", "{d}/spacename.json"], ["spacename.json", "control characters"]),
    (["show", "{d}/missing.json"], ["missing.json", "no such genotype file"]),
    (["render", "{d}/nogeno"], ["nogeno", "without genotype.json"]),
    (["show", "{d}/nogeno"], ["nogeno", "without genotype.json"]),
    (["plot", "{d}/nogeno"], ["nogeno", "no finished epoch"]),
    (["plot", "{d}/binary.json"], ["binary.json", "is not a folder"]),
    (["show", "NASPP"], ["unknown genotype 'NASPP'", "Did you mean 'NASP'"]),
    (["run", "space={d}/space_no_reduce.yaml", *RUN], ["space_no_reduce.yaml", "cell type 'reduce' is missing"]),
    (["run", "space={d}/space_cells_list.yaml", *RUN], ["space_cells_list.yaml", "'cells' must be a mapping"]),
    (["run", "space={d}/space_ops_str.yaml", *RUN], ["space_ops_str.yaml", "cells.normal.ops", "list of op names"]),
    (["run", "space={d}/space_nodes.yaml", *RUN], ["space_nodes.yaml", "cells.normal.n_nodes", "got 0"]),
    (["run", "space={d}/space_kind.yaml", *RUN], ["space_kind.yaml", "kind", "'cnn', 'rnn' or 'dense'", "transformer"]),
    (["run", "space={d}/space_key.yaml", *RUN], ["space_key.yaml", "unknown key 'opz'", "n_nodes"]),
    (["run", "space={d}/space_badop.yaml", *RUN], ["space_badop.yaml", "'x-y' is not a plain identifier"]),
    (["run", "space={d}/space_typo.yaml", *RUN], ["space_typo.yaml", "Did you mean 'sep_conv_3x3'"]),
    (["run", "space={d}/space_yaml.yaml", *RUN], ["space_yaml.yaml", "not valid YAML", "line 3"]),
    (["run", "space={d}/space_binary.yaml", *RUN], ["space_binary.yaml", "not UTF-8"]),
    (["run", "space={d}/space_inputs.yaml", *RUN], ["space_inputs.yaml", "n_inputs 3"]),
    (["run", "space={d}/space_missing.yaml", *RUN], ["space_missing.yaml", "does not exist"]),
]


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("bad-inputs")
    for name, content in FILES.items():
        (d / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    (d / "nogeno").mkdir()
    (d / "nogeno" / "config.json").write_text(json.dumps({"algorithm": {"name": "nasp"}, "plugins": [str(d / "x.py")]}))
    return d


@pytest.mark.parametrize(("args", "needles"), VIEWING_CASES, ids=[" ".join(a[:2]) for a, _ in VIEWING_CASES])
def test_viewing_bad_input(args: list[str], needles: list[str], bad_files: Path) -> None:
    argv = [a.replace("{d}", str(bad_files)) for a in args]
    if args[0] in ("run", "eval"):
        argv.append(f"out={bad_files / 'out'}")  # were a case wrongly accepted, it would run there, briefly
    line = one_error_line(nasp(*argv, cwd=bad_files), args[0])
    for needle in needles:
        assert needle in line, (needle, line)
