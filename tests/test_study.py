"""The random-search baseline, the `unselected` option, and `nasp study`: a real study stopped by a signal and
resumed, its table computed from the sub-runs' files."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from nasp.algorithms import ALGORITHMS
from nasp.cli.main import main
from nasp.config import OptimConfig
from nasp.genotype import Genotype
from nasp.model import SearchNetwork
from nasp.runfolder import RunFolder
from nasp.spaces import get_space

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _cells_of(matrix_by_cell: dict, space_name: str) -> dict:
    """{cell type: sorted (node, input, op)} of a 0/1 matrix per cell type."""
    space = get_space(space_name)
    out = {}
    for ct, m in matrix_by_cell.items():
        cell = space.cells[ct]
        rows = torch.tensor(m).nonzero().tolist()
        out[ct] = sorted((cell.edges[e][1] - cell.n_inputs, cell.edges[e][0], cell.ops[k]) for e, k in rows)
    return out


def _genotype_cells(geno: Genotype) -> dict:
    return {ct: sorted((j, e.input, e.op) for j, node in enumerate(nodes) for e in node)
            for ct, nodes in geno.cells.items()}


def test_random_search_through_the_cli_keeps_its_best_trial(tmp_path, capsys):
    args = ["run", "algorithm=random", "epochs=3", "data.limit=64", "batch_size=16", "model.channels=4",
            "model.layers=2", "seed=5", f"out={tmp_path}", "name=rnd"]
    assert main(args) == 0
    run = RunFolder(tmp_path / "rnd")
    assert run.status().state == "finished"
    metrics, history = run.metrics(), run.history()
    trials = [_cells_of(h["discrete"], "cnn12") for h in history]
    assert len({json.dumps(t) for t in trials}) > 1  # a new architecture each trial (epoch)
    for t in trials:  # every trial is a valid cell: inputs_per_node edges per node, one op each, no 'none'
        for ct, edges in t.items():
            nodes = [j for j, _, _ in edges]
            assert all(nodes.count(j) == 2 for j in range(4)), (ct, edges)
    accs = [m["val_acc"] for m in metrics]
    best = accs.index(max(accs))
    assert _genotype_cells(Genotype.load(run.path)) == trials[best]
    # the same seed draws the same trials
    assert main([*args[:-1], "name=rnd2"]) == 0
    assert [h["discrete"] for h in RunFolder(tmp_path / "rnd2").history()] == [h["discrete"] for h in history]


@pytest.mark.parametrize("unselected", ["frozen", "decay"])
def test_unselected_ops_frozen_or_decayed(unselected):
    torch.manual_seed(0)
    space = get_space("cnn12")
    net = SearchNetwork(space, 4, 2, num_classes=5, in_channels=3)
    cls = ALGORITHMS.get("nasp")
    algo = cls(space, net, cls.Options(unselected=unselected), OptimConfig(), 2, torch.device("cpu"))
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    x, y = torch.randn(4, 3, 8, 8), torch.randint(0, 5, (4,))
    algo.weight_step((x, y))
    changed = {n for n, p in net.named_parameters() if not torch.equal(p, before[n])}
    used = {n for n, p in net.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    weights = {n for n, p in net.named_parameters() if p.abs().sum() > 0}
    assert used <= changed
    if unselected == "frozen":
        assert changed == used and len(changed) < len(weights)
    else:  # weight decay moves every non-zero weight
        assert changed >= weights and len(changed) > len(used)


def _study_yaml(path: Path) -> Path:
    cfg = {
        "seeds": [0], "threads": 1,
        "search": {"batch_size": 16, "device": "cpu", "data": {"limit": 64}, "model": {"channels": 4, "layers": 2},
                   "epochs": 1},
        "eval": {"device": "cpu", "epochs": 1, "batch_size": 16, "data": {"name": "embedded", "limit": 32,
                 "test_limit": 32}, "model": {"channels": 4, "layers": 2, "auxiliary": False}},
        "arms": [{"label": "fast", "search": {"algorithm": "nasp"}},
                 {"label": "long", "search": {"algorithm": "random", "epochs": 8}, "evaluate": False}],
        "figures": {"curves": ["fast", "long"], "proximal": [], "op_changes": ["fast"]},
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "nasp.cli.main", *args], capture_output=True, text=True,
                          timeout=600, check=False, env=ENV)


def test_study_stopped_and_resumed_keeps_finished_subruns_and_tables_their_files(tmp_path):
    study = tmp_path / "study"
    cfg = _study_yaml(tmp_path / "study.yaml")
    proc = subprocess.Popen([sys.executable, "-m", "nasp.cli.main", "study", "--config", str(cfg), f"out={study}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    long_events = study / "search" / "long-s0" / "events.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline:
        if long_events.is_file() and '"event": "epoch_end"' in long_events.read_text():
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert f"nasp study resume={study}" in err and "Traceback" not in err
    manifest = json.loads((study / "study.json").read_text())
    states = {(r["arm"], r["kind"]): r["state"] for r in manifest["runs"]}
    assert manifest["state"] == "stopped"
    assert states == {("fast", "search"): "finished", ("fast", "eval"): "finished", ("long", "search"): "stopped"}
    finished = [study / "search" / "fast-s0", study / "eval" / "fast-s0"]
    snapshot = {p: {f.name: f.read_bytes() for f in p.iterdir() if f.is_file()} for p in finished}
    stopped_at = RunFolder(study / "search" / "long-s0").status().epoch
    assert 1 <= stopped_at < 8

    done = _cli("study", f"resume={study}")
    assert done.returncode == 0, done.stderr
    for p in finished:  # not redone: every file as it was
        assert {f.name: f.read_bytes() for f in p.iterdir() if f.is_file()} == snapshot[p]
    long = RunFolder(study / "search" / "long-s0")
    assert long.status().state == "finished"
    starts = [e for e in long.events() if e["event"] == "run_start"]
    assert len(starts) == 2 and starts[1]["start_epoch"] == stopped_at  # continued from its checkpoint
    assert [m["epoch"] for m in long.metrics()] == list(range(1, 9))
    assert json.loads((study / "study.json").read_text())["state"] == "finished"

    # the table holds the sub-runs' own numbers, and follows their files when written again
    table = json.loads((study / "results.json").read_text())
    fast = next(a for a in table["arms"] if a["label"] == "fast")
    result = RunFolder(study / "eval" / "fast-s0").result()
    assert fast["test_acc"]["mean"] == result["test_acc"] and fast["params"]["mean"] == result["params"]
    assert fast["search_s"]["mean"] == RunFolder(finished[0]).metrics()[-1]["elapsed_s"]
    RunFolder(study / "eval" / "fast-s0").write_result({**result, "test_acc": 0.4321})
    assert main(["study", f"table={study}"]) == 0
    assert "43.21" in (study / "results.md").read_text()
    assert json.loads((study / "results.json").read_text())["arms"][0]["test_acc"]["mean"] == 0.4321

    # the figures of a study folder
    assert main(["plot", str(study)]) == 0
    assert (study / "plots" / "fig3_search_curves.png").is_file()
    assert (study / "plots" / "fig4_ops_fast_normal.png").is_file()
    assert not (study / "plots" / "fig5_proximal_curves.png").exists()  # no arm for it


@pytest.mark.parametrize("args, needles", [
    (["arms=[{label: a, search: {epochs: 0}}]"], ["arm 'a' (search)", "epochs"]),
    (["arms=[{label: a/b}]"], ["arms", "a/b"]),
    (["arms=[{label: a}, {label: a}]"], ["'a' is used twice"]),
    (["arms=[{label: a, search: {seed: 3}}]"], ["arms[a].search.seed", "the study sets it"]),
    (["seeds="], ["seeds", "empty value"]),
    (["bogus=1"], ["unknown config key 'bogus'"]),
])
def test_bad_study_input_is_one_line(args, needles, tmp_path, capsys):
    assert main(["study", f"out={tmp_path}/s", *args]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert all(n in err for n in needles), err
    assert not (tmp_path / "s" / "study.json").exists()


def test_a_folder_holding_another_study_is_refused(tmp_path, capsys):
    cfg = _study_yaml(tmp_path / "study.yaml")
    study = tmp_path / "study"
    study.mkdir()
    (study / "study.json").write_text(json.dumps({"format": "nasp-study/1", "config": {"seeds": [9]}}))
    assert main(["study", "--config", str(cfg), f"out={study}"]) == 2
    assert "holds another study" in capsys.readouterr().err
    assert main(["study", f"table={tmp_path}"]) == 2
    assert "not a study folder" in capsys.readouterr().err


@pytest.mark.parametrize("cells", ["all", "normal"])
def test_eta_cells_picks_the_regularised_cell_types(cells):
    torch.manual_seed(0)
    space = get_space("cnn12")
    net = SearchNetwork(space, 4, 3, num_classes=5, in_channels=3)
    cls = ALGORITHMS.get("nasp")
    plain = cls(space, net, cls.Options(), OptimConfig(), 1, torch.device("cpu"))
    reg = cls(space, net, cls.Options(eta=1.0, eta_cells=cells), OptimConfig(), 1, torch.device("cpu"))
    with torch.no_grad():  # away from the tie at init (which selects skip_connect, of size 0, everywhere)
        for ct, a in plain.A.items():
            a.copy_(torch.rand(a.shape))
            reg.A[ct].copy_(a)
    batch = (torch.randn(4, 3, 8, 8), torch.randint(0, 5, (4,)))
    _, g0 = plain.arch_gradient(batch, batch)
    _, g1 = reg.arch_gradient(batch, batch)
    assert not torch.equal(g0["normal"], g1["normal"])  # the normal cell is always regularised
    assert torch.equal(g0["reduce"], g1["reduce"]) == (cells == "normal")


def test_executor_ray_without_ray_installed_is_one_line_saying_how_to_install(tmp_path):
    """`import ray` fails for real (sys.modules['ray'] = None) before nasp's CLI runs."""
    cfg = _study_yaml(tmp_path / "study.yaml")
    code = ("import sys; sys.modules['ray'] = None; from nasp.cli.main import main; "
            f"sys.exit(main(['study', '--config', {str(cfg)!r}, 'out={tmp_path / 's'}', 'executor=ray']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=ENV, check=False)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and 'pip install "nasp-search[ray]"' in lines[0], proc.stderr
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("args, needles", [
    (["executor=dask"], ["executor", "local", "ray"]),
    (["ray.address=somewhere"], ["ray.address", "auto, ray://HOST:PORT or HOST:PORT"]),
    (["study.cpus_per_run=0"], ["study.cpus_per_run"]),
])
def test_bad_executor_keys_are_one_line(args, needles, tmp_path, capsys):
    assert main(["study", f"out={tmp_path}/s", "arms=[{label: a}]", *args]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert all(n in err for n in needles), err


def test_study_progress_is_a_table_on_a_terminal_and_a_line_per_change_otherwise(tmp_path):
    import io

    from rich.console import Console

    from nasp.study.progress import StudyProgress
    from nasp.study.subrun import SubRun

    running, done = RunFolder(tmp_path / "run"), RunFolder(tmp_path / "done")
    for folder in (running, done):
        folder.path.mkdir()
    running.lock()  # a live process holds it: running, not died
    running.write_status("running", "search", 1, 4, val_acc=0.5, elapsed_s=30.0)
    done.write_status("finished", "eval", 2, 2, test_acc=0.75, elapsed_s=8.0)
    subs = [SubRun("a", 0, "search", running.path), SubRun("b", 1, "eval", done.path),
            SubRun("c", 2, "search", tmp_path / "new")]
    states = {str(running.path): "submitted", str(done.path): "finished", str(tmp_path / "new"): "submitted"}
    try:
        tty = io.StringIO()
        progress = StudyProgress(subs, Console(file=tty, force_terminal=True, width=120))
        progress.update(states)
        progress.close()
        text = tty.getvalue()
        for needle in ("search a seed 0", "running", "1/4", "val_acc 0.5", "1m30s", "eval b seed 1", "finished",
                       "test_acc 0.75", "search c seed 2", "queued"):
            assert needle in text, (needle, text)
        log = io.StringIO()
        progress = StudyProgress(subs, Console(file=log, force_terminal=False, width=200))
        progress.update(states)
        progress.update(states)  # nothing changed: no new line
        lines = log.getvalue().splitlines()
        assert lines == ["study: search a seed 0: running, epoch 1/4, val_acc 0.5, ETA 1m30s",
                         "study: eval b seed 1: finished, epoch 2/2, test_acc 0.75", "study: search c seed 2: queued"]
    finally:
        running.unlock()


def test_a_stop_between_local_subruns_is_kept(tmp_path):
    """Ctrl-C while no sub-run runs (the study between two) stops the study: the queued sub-runs do not start."""
    from nasp.study.executor import LocalExecutor
    from nasp.study.subrun import SubRun

    subs = [SubRun("a", 0, "search", tmp_path / "a"), SubRun("a", 0, "eval", tmp_path / "e")]
    before = signal.getsignal(signal.SIGINT)
    with LocalExecutor(console=False) as executor:
        for sub in subs:
            executor.submit(sub)
        signal.raise_signal(signal.SIGINT)
        assert executor.stopping
        ended = [e for _ in range(2) for e in executor.wait()]
    assert [(e.sub.kind, e.state) for e in ended] == [("eval", "stopped"), ("search", "stopped")]
    assert not any(s.path.exists() for s in subs)
    assert signal.getsignal(signal.SIGINT) is before  # handed back
