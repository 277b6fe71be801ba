"""`nasp` as a user runs it: real runs on the embedded data, resume, every bad input."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import StopAfter

from nasp.cli.main import main
from nasp.config import build_config, parse_overrides
from nasp.genotype import Genotype
from nasp.search_run import resume_run, start_run


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "nasp.cli.main", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600, check=False)


def only_run(runs: Path) -> Path:
    (run,) = list(runs.iterdir())
    return run


def test_run_end_to_end_on_embedded_data(tiny_run, tmp_path, capsys):
    assert main(["run", "algorithm=nasp", "space=cnn12", *tiny_run]) == 0
    run = only_run(tmp_path / "runs")
    assert {"config.json", "metrics.jsonl", "history.jsonl", "genotype.json", "checkpoint.pt", "status.json",
            "events.jsonl"} <= {p.name for p in run.iterdir()}
    geno = Genotype.load(run / "genotype.json")
    assert geno.space == "cnn12" and len(geno.cells["normal"]) == 4
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["epoch"] == 1 and 0.0 <= metrics[-1]["val_acc"] <= 1.0
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert len(history[0]["A"]["normal"]) == 14 and len(history[0]["discrete"]["reduce"][0]) == 5
    assert json.loads((run / "status.json").read_text())["status"] == "finished"
    assert str(run / "genotype.json") in capsys.readouterr().out


@pytest.mark.parametrize("algorithm", ["nasp", "pa-standard", "pa-lazy", "darts-1st", "darts-2nd", "random"])
@pytest.mark.parametrize("space", ["cnn7", "cnn12"])
def test_every_algorithm_on_every_space(algorithm, space, tiny_run, tmp_path):
    overrides = [o for o in tiny_run if not o.startswith("data.limit")] + ["data.limit=64"]
    assert main(["run", f"algorithm={algorithm}", f"space={space}", *overrides]) == 0
    geno = Genotype.load(only_run(tmp_path / "runs"))
    assert geno.space == space
    assert all(len(node) == 2 for nodes in geno.cells.values() for node in nodes)




def _final_state(run: Path):
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    return state["task"]["algorithm"]["A"], Genotype.load(run).to_json()


@pytest.mark.parametrize("algorithm", ["nasp", "darts-1st", "random"])
def test_resume_ends_where_an_uninterrupted_run_ends(algorithm, tmp_path):
    base = ["data.limit=192", "batch_size=16", "model.channels=4", "model.layers=3", "epochs=2",
            f"algorithm={algorithm}", "algorithm.epsilon=0.2" if algorithm == "nasp" else "seed=3",
            "space=cnn7" if algorithm == "darts-1st" else "space=cnn12"]  # (darts runs every op: 7 keep it quick)
    full = start_run(build_config(parse_overrides([*base, f"out={tmp_path}/a"])), console=False)
    assert full.fit().status == "finished"
    stopped = start_run(build_config(parse_overrides([*base, f"out={tmp_path}/b"])), [StopAfter(8)], console=False)
    assert stopped.fit().status == "stopped"  # 6 steps an epoch: stopped mid-way through epoch 2
    resumed = resume_run(stopped.run_dir, console=False)
    assert (resumed.progress.epoch, resumed.progress.step) == (1, 2)
    assert resumed.fit().status == "finished"
    a_full, g_full = _final_state(full.run_dir)
    a_res, g_res = _final_state(resumed.run_dir)
    assert g_full == g_res
    for ct in a_full:
        assert torch.equal(a_full[ct], a_res[ct])
    metrics = [json.loads(x) for x in (resumed.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2]


def test_ctrl_c_leaves_a_checkpoint_and_resume_finishes(tmp_path):
    args = ["run", "data.limit=600", "batch_size=16", "model.channels=4", "model.layers=3", "epochs=1",
            f"out={tmp_path}"]
    proc = subprocess.Popen([sys.executable, "-m", "nasp.cli.main", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    events = None
    while time.time() < deadline:
        found = list(tmp_path.glob("*/events.jsonl"))
        if found and '"event": "step"' in found[0].read_text():
            events = found[0]
            break
        time.sleep(0.2)
    assert events is not None, "the run never reached a step"
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "resume=" in err
    run = events.parent
    assert (run / "checkpoint.pt").is_file()
    assert json.loads((run / "status.json").read_text())["status"] == "stopped"
    done = run_cli("run", f"resume={run}")
    assert done.returncode == 0, done.stderr
    assert json.loads((run / "status.json").read_text())["status"] == "finished"



def _wait(condition, what: str, timeout: float = 120.0) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_signals_pause_resume_and_hangup_stop(tmp_path):
    """SIGUSR1 holds a run before its next step, SIGUSR2 lets it go on, SIGHUP (a closed terminal) stops it
    with a checkpoint: what nasp-tui sends to the `nasp run` it starts."""
    args = ["run", "data.limit=600", "batch_size=16", "model.channels=4", "model.layers=3", "epochs=1",
            f"out={tmp_path}"]
    proc = subprocess.Popen([sys.executable, "-m", "nasp", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        _wait(lambda: any('"event": "step"' in p.read_text() for p in tmp_path.glob("*/events.jsonl")), "a step")
        (run,) = list(tmp_path.iterdir())

        def status() -> str:
            return json.loads((run / "status.json").read_text())["status"]

        def events() -> list[dict]:
            return [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines()]

        proc.send_signal(signal.SIGUSR1)
        _wait(lambda: status() == "paused", "status paused")
        paused = [e for e in events() if e["event"] == "paused"]
        assert len(paused) == 1
        count = len(events())
        time.sleep(1.5)  # several steps' time: nothing happens while paused
        assert len(events()) == count and proc.poll() is None
        proc.send_signal(signal.SIGUSR2)
        _wait(lambda: status() == "running" and any(e["event"] == "step" and e["step"] > paused[0]["step"]
                                                    for e in events()), "steps after the resume")
        assert [e["event"] for e in events()][count] == "resumed"
        proc.send_signal(signal.SIGHUP)
        _out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "paused" in err and "kill -USR2" in err
    assert status() == "stopped" and (run / "checkpoint.pt").is_file()
    stopped = torch.load(run / "checkpoint.pt", weights_only=True)["progress"]
    assert stopped["step"] > paused[0]["step"]


BAD_INPUTS = [
    (["algoritm=nasp"], ["algoritm", "Did you mean 'algorithm'"]),
    (["algorithm=naps"], ["'algorithm'", "naps", "Did you mean 'nasp'"]),
    (["space=cnn13"], ["'space'", "cnn13", "Did you mean 'cnn12'"]),
    (["data=cifar11"], ["'data'", "cifar11", "cifar10"]),
    (["epochs=abc"], ["'epochs'", "abc", "integer"]),
    (["epochs=0"], ["'epochs'", "greater than or equal to 1"]),
    (["algorithm.eta=-1"], ["'algorithm.eta'", "-1"]),
    (["algorithm=darts-1st", "algorithm.eta=0.1"], ["algorithm.eta", "does not apply to darts-1st", "nasp"]),
    (["algorithm.selected_value=half"], ["algorithm.selected_value", "'one' or 'keep'"]),
    (["model"], ["expected key=value"]),
    (["model=3"], ["'model' is a section"]),
    (["data=fashion-mnist", "data.root=/nonexistent/fmnist"], ["/nonexistent/fmnist", "missing"]),
    (["resume=/nonexistent/run"], ["resume", "/nonexistent/run", "not a folder"]),
    (["plugins=no_such_module_xyz"], ["plugins", "no_such_module_xyz"]),
    (["space.normal=conv_3x3,sep_conv_3x"], ["sep_conv_3x", "Did you mean 'sep_conv_3x3'"]),
    (["device=tpu"], ["'device'", "tpu"]),
    (["--config", "/nonexistent.yaml"], ["--config", "/nonexistent.yaml"]),
]


@pytest.mark.parametrize(("args", "needles"), BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_is_one_clear_message_and_exit_2(args, needles, capsys, tmp_path):
    takes_out = "=" in " ".join(args) and not args[0].startswith("resume")
    assert main(["run", *args, f"out={tmp_path}"] if takes_out else ["run", *args]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, (needle, err)


def test_bad_input_through_the_real_command():
    proc = run_cli("run", "algoritm=nasp")
    assert proc.returncode == 2
    assert "algoritm" in proc.stderr and "algorithm" in proc.stderr and "Traceback" not in proc.stderr


def test_unreadable_resume_folder(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{not json")
    (run / "checkpoint.pt").write_bytes(b"garbage")
    assert main(["run", f"resume={run}"]) == 2
    assert "unreadable" in capsys.readouterr().err
    (run / "config.json").write_text(json.dumps({"epochs": 1}))
    assert main(["run", f"resume={run}"]) == 2
    assert "checkpoint.pt" in capsys.readouterr().err


def test_plugin_op_and_space_file(tmp_path):
    plugin = tmp_path / "my_ops.py"
    plugin.write_text(
        "from torch import nn\nfrom nasp import register_op\n\n"
        "@register_op('plugin_conv_5x5')\n"
        "def plugin_conv(C, stride, affine):\n"
        "    '''A plain 5x5 convolution.'''\n"
        "    return nn.Sequential(nn.ReLU(), nn.Conv2d(C, C, 5, stride, 2, bias=False), nn.BatchNorm2d(C, affine=affine))\n"
    )
    space = tmp_path / "my_space.yaml"
    space.write_text("name: mine\ncells:\n  normal: {ops: [skip_connect, plugin_conv_5x5]}\n"
                     "  reduce: {ops: [skip_connect, max_pool_3x3], reduction: true}\n")
    proc = run_cli("run", f"plugins={plugin}", f"space={space}", "data.limit=64", "batch_size=16",
                   "model.channels=4", "model.layers=3", "epochs=1", f"out={tmp_path}/runs")
    assert proc.returncode == 0, proc.stderr
    geno = json.loads((only_run(tmp_path / "runs") / "genotype.json").read_text())
    assert geno["space"] == "mine"
    assert {e["op"] for node in geno["cells"]["normal"] for e in node} <= {"skip_connect", "plugin_conv_5x5"}
    listing = run_cli("ops", "--plugins", str(plugin))
    assert "plugin_conv_5x5" in listing.stdout and "A plain 5x5 convolution." in listing.stdout


def test_listings(capsys):
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert "algorithm.eta" in out and "data.limit" in out and "model.channels" in out
    assert main(["algorithms"]) == 0
    out = capsys.readouterr().out
    assert all(n in out for n in ["nasp", "pa-standard", "pa-lazy", "darts-1st", "darts-2nd"])
    assert main(["spaces"]) == 0
    assert "sep_conv_7x7" in capsys.readouterr().out
    assert main(["ops", "--channels", "16"]) == 0
    out = capsys.readouterr().out
    assert "conv_1x3_3x1" in out and "1,536" in out  # two 1x3/3x1 convs of 16x16 channels


def test_config_file(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("algorithm: darts-1st\nmodel: {channels: 12}\nepochs: 3\n")
    assert main(["config", "--config", str(cfg), "epochs=4"]) == 0
    out = capsys.readouterr().out
    assert "darts-1st" in out and "12" in out
    assert os.path.exists(cfg)


def test_console_progress_in_a_real_terminal(tmp_path):
    """The live progress bar (only drawn in a terminal) survives epoch ends and the run's end."""
    import io

    from rich.console import Console

    from nasp.trainer import ConsoleProgress

    buf = io.StringIO()
    progress = ConsoleProgress(Console(file=buf, force_terminal=True, width=100))
    cfg = build_config(parse_overrides(["data.limit=64", "batch_size=16", "model.channels=4", "model.layers=3",
                                        "epochs=2", f"out={tmp_path}"]))
    assert start_run(cfg, [progress], console=False).fit().status == "finished"
    out = buf.getvalue()
    assert "epoch 1/2" in out and "epoch 2/2" in out and "done" in out
