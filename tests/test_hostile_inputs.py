"""What someone may send a user (issue 23): study folders, planted links, endless and special files, hostile
genotype strings, absurd sizes. Each case is a real file, FIFO, link or process; a command that could hang or
run code runs as a real process with a timeout, and each asserts its exit code, one line on stderr, that nothing
ran and that nothing was written outside the folder it was given. Tests of the other classes are in this file
too, one section per class."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nasp.cli.main import main

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
TIMEOUT = 120  # a case that hangs fails here instead of stalling the suite
TINY = ["data.limit=64", "batch_size=16", "model.channels=4", "model.layers=2", "epochs=1", "threads=1"]
MARKER_PLUGIN = "from pathlib import Path\nPath({marker!r}).write_text('this plugin ran')\n"


def nasp(*args: object, env: dict[str, str] | None = None, cwd: Path | None = None) -> tuple[int, str]:
    proc = subprocess.run([sys.executable, "-m", "nasp", *map(str, args)], capture_output=True, text=True,
                          timeout=TIMEOUT, env=env or ENV, cwd=cwd, check=False)
    return proc.returncode, proc.stderr


STARTED = "nasp searching: "  # the line a run prints when it has started (its folder), before any failure


def one_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith(STARTED)]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    return lines[0]


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every entry under ``folder`` (links not followed) with its size and mtime: what a case may not change."""
    out = {}
    for p in sorted(folder.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(folder))] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished search (seconds), copied by each test that plants something in it."""
    out = tmp_path_factory.mktemp("hostile")
    threads = torch.get_num_threads()
    try:
        assert main(["run", *TINY, f"out={out}", "name=run"]) == 0
    finally:
        torch.set_num_threads(threads)
    return out / "run"


@pytest.fixture
def run_copy(finished_run: Path, tmp_path: Path) -> Path:
    shutil.copytree(finished_run, tmp_path / "run", symlinks=True)
    return tmp_path / "run"


# --- class 1: no code from a study folder ---------------------------------------------------------------------
def test_study_resume_imports_no_plugin_named_by_its_study_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    marker = tmp_path / "ran.txt"
    evil = tmp_path / "evil.py"
    evil.write_text(MARKER_PLUGIN.format(marker=str(marker)))
    study = tmp_path / "study"
    study.mkdir()
    config = {"seeds": [0], "search": {"plugins": [str(evil)], "space": "no_such_space"},
              "arms": [{"label": "a", "search": {"algorithm": "nasp"}}]}
    (study / "study.json").write_text(json.dumps({"format": "nasp-study/1", "state": "stopped", "config": config,
                                                  "runs": []}))
    before = snapshot(tmp_path)
    code, err = nasp("study", f"resume={study}")
    line = one_line(err)
    assert code == 2, err
    assert "used plugins" in line and str(evil) in line and f"nasp study resume={study} plugins=" in line, line
    assert not marker.exists()  # nothing the study folder names ran
    assert snapshot(tmp_path) == before  # nothing written, not even study.json
    # named again by the user, the plugin is theirs to run (then the study's own bad key stops it, one line)
    assert main(["study", f"resume={study}", f"plugins={evil}"]) == 2
    assert marker.read_text() == "this plugin ran"
    assert "no_such_space" in one_line(capsys.readouterr().err)
    assert main(["study", f"out={tmp_path / 'new'}", f"plugins={evil}"]) == 2  # plugins= belongs to resume=
    assert "search.plugins" in one_line(capsys.readouterr().err)
    assert not (tmp_path / "new" / "study.json").exists()


# --- class 2: writes through planted links ------------------------------------------------------------------
@pytest.mark.parametrize("name, plant, needle", [
    (".lock", "symlink", "symbolic link"),
    (".lock", "hardlink", "2 names"),
    (".lock", "text", "other than a pid"),
    ("events.jsonl", "symlink", "symbolic link"),
    ("metrics.jsonl", "symlink", "symbolic link"),
    ("cells", "dirlink", "symbolic link"),  # O_NOFOLLOW guards the last name only: the folders are checked
    ("tensorboard", "dirlink", "symbolic link"),
])
def test_resume_never_writes_through_a_planted_link(run_copy: Path, tmp_path: Path, name: str, plant: str,
                                                    needle: str) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("someone's file\n")
    if (run_copy / name).is_dir():
        shutil.rmtree(run_copy / name)
    elif (run_copy / name).exists():
        (run_copy / name).unlink()
    if plant == "dirlink":  # a folder of someone's, in place of one nasp writes into
        (tmp_path / "theirs").mkdir()
        victim = tmp_path / "theirs" / "victim.txt"
        victim.write_text("someone's file\n")
        (run_copy / name).symlink_to(tmp_path / "theirs", target_is_directory=True)
    elif plant == "symlink":
        (run_copy / name).symlink_to(victim)
    elif plant == "hardlink":
        os.link(victim, run_copy / name)
    else:  # a regular file nasp did not write: never truncated
        (run_copy / name).write_text("not a pid but someone's notes\n")
    kept = (run_copy / name).read_bytes() if plant != "dirlink" else b""
    outside = {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("run")}
    code, err = nasp("run", f"resume={run_copy}")
    assert code == 2, err
    line = one_line(err)
    assert needle in line and name in line, line
    assert victim.read_text() == "someone's file\n"
    assert {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("run")} == outside
    if plant not in ("symlink", "dirlink"):
        assert (run_copy / name).read_bytes() == kept


# --- class 3: endless and special files ------------------------------------------------------------------------
@pytest.mark.parametrize("command, name, special", [
    ("show", "status.json", "fifo"),
    ("show", "genotype.json", "fifo"),
    ("plot", "metrics.jsonl", "fifo"),
    ("plot", "events.jsonl", "fifo"),
    ("plot", "config.json", "fifo"),
    ("show", "status.json", "/dev/zero"),
    ("plot", "history.jsonl", "/dev/zero"),
])
def test_viewers_refuse_fifos_and_devices_at_once(run_copy: Path, command: str, name: str, special: str) -> None:
    (run_copy / name).unlink()
    if special == "fifo":
        os.mkfifo(run_copy / name)
    else:
        (run_copy / name).symlink_to(special)
    code, err = nasp(command, run_copy)  # a FIFO nobody writes would block a plain open() forever
    assert code == 2, err
    line = one_line(err)
    assert name in line and ("FIFO" in line if special == "fifo" else "symbolic link" in line), line


def test_bounded_reads_refuse_an_endless_file(tmp_path: Path) -> None:
    from nasp.errors import FileRefusedError
    from nasp.runfolder import read_json
    from nasp.safe_io import MAX_JSON_BYTES

    big = tmp_path / "status.json"
    with big.open("wb") as f:
        f.truncate(MAX_JSON_BYTES + 1)  # sparse: no disk used
    with pytest.raises(FileRefusedError, match="larger than 1 MiB"):
        read_json(big)
    big.unlink()
    big.symlink_to("/dev/zero")
    with pytest.raises(FileRefusedError, match="symbolic link"):
        read_json(big)


def test_the_run_browser_skips_a_folder_with_a_fifo_and_says_why(finished_run: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    shutil.copytree(finished_run, runs / "a-good")
    shutil.copytree(finished_run, runs / "b-fifo")
    (runs / "b-fifo" / "metrics.jsonl").unlink()
    os.mkfifo(runs / "b-fifo" / "metrics.jsonl")
    code = ("import json, sys; from tui.runs import list_runs; "
            "print(json.dumps([[i.name, i.status, i.error] for i in list_runs(sys.argv[1])]))")
    proc = subprocess.run([sys.executable, "-c", code, str(runs)], capture_output=True, text=True, timeout=TIMEOUT,
                          env=ENV, cwd=Path(__file__).parents[1], check=False)
    assert proc.returncode == 0, proc.stderr
    rows = {name: (status, error) for name, status, error in json.loads(proc.stdout)}
    assert rows["a-good"][0] == "finished"
    assert rows["b-fifo"][0] == "unreadable" and "FIFO" in rows["b-fifo"][1]


# --- the lock without fcntl ------------------------------------------------------------------------------------
def test_nasp_imports_and_locks_without_fcntl(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['fcntl'] = None\n"
            "import nasp\n"
            "from nasp import filelock\n"
            "from nasp.runfolder import RunFolder, RunLockedError\n"
            "assert filelock.MECHANISM != 'flock', filelock.MECHANISM\n"
            "a, b = RunFolder(sys.argv[1]), RunFolder(sys.argv[1])\n"
            "a.lock()\n"
            "try:\n"
            "    b.lock(wait_s=0.1)\n"
            "    raise SystemExit('a second lock was granted')\n"
            "except RunLockedError:\n"
            "    pass\n"
            "a.unlock()\n"
            "b.lock(wait_s=0.1)\n"
            "b.unlock()\n"
            "print('ok', filelock.MECHANISM)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                          timeout=TIMEOUT, env=ENV, check=False)
    assert proc.returncode == 0 and proc.stdout.startswith("ok"), proc.stdout + proc.stderr


# --- class 4: genotype strings ---------------------------------------------------------------------------------
@pytest.mark.parametrize("text, needle", [
    ("Genotype(normal=[('sep_conv_3x3', 0)] + [('skip_connect', 1)] * 99999999, normal_concat=range(2, 6))", "BinOp"),
    ("Genotype(normal=[" + "+".join(["1"] * 30000) + "])", "Genotype"),
    ("Genotype(normal=[('sep_conv_3x3', 0)], normal_concat=range(10**18))", "BinOp"),
    ("Genotype(normal=[('sep_conv_3x3', 0)], normal_concat=range(999999999999999999999))", "out of range"),
    ("Genotype(normal=" + "[" * 5000 + "]" * 5000 + ")", "nests brackets"),
    ("Genotype(normal=[('x', 0)], normal_concat=" + "(" * 100 + "1" + ")" * 100 + ")", "nests brackets"),
    ("Genotype(normal=[('sep_conv_3x3', 0)], normal_concat=range(2, 9" + "9" * 5000 + "))", "Genotype"),
    ("Genotype(normal=[('a', 0)]" + " " * 70000 + ")", "at most"),
])
def test_darts_string_bounds_are_one_line(text: str, needle: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["show", text]) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith("nasp show: error: DARTS genotype string") and needle in line, line


def test_the_app_opens_a_real_darts_string_before_any_path_check() -> None:
    from nasp.errors import GenotypeError
    from tui.genoedit import GenotypeEdit

    proc = subprocess.run([sys.executable, "-m", "nasp", "genotypes", "export", "DARTS_V2"], capture_output=True,
                          text=True, timeout=TIMEOUT, env=ENV, check=True)
    text = proc.stdout.strip()
    assert text.startswith("Genotype(") and len(text) > 255  # longer than a file name may be
    edit = GenotypeEdit.load(text)  # was: OSError: File name too long
    assert edit.label == "DARTS genotype string" and edit.space.name == "cnn7"
    with pytest.raises(GenotypeError):  # a name too long for a path is an unknown name, not an OSError
        GenotypeEdit.load("x" * 5000)


# --- class 5: a user genotype file does not replace a built-in name --------------------------------------------
def test_a_user_genotype_file_with_a_builtin_name_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture) -> None:
    from nasp.genotypes import get_genotype

    (tmp_path / "darts_v2.json").write_text(get_genotype("NASP").to_json())
    (tmp_path / "mine.json").write_text(get_genotype("NASP").to_json())
    monkeypatch.setenv("NASP_GENOTYPES", str(tmp_path))
    assert main(["show", "DARTS_V2"]) == 2
    line = one_line(capsys.readouterr().err)
    assert "'DARTS_V2' is registered (built in)" in line and "darts_v2.json" in line and "rename" in line, line
    assert get_genotype("mine") == get_genotype("NASP")  # other user files still work


# --- class 6: sizes (the one-line cases are in tests/test_bad_inputs.py) ---------------------------------------
def test_a_huge_config_file_is_refused_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as f:
        f.truncate(60 << 20)  # 60 MB (sparse): parsing it took 90 s
    code, err = nasp("run", "--config", big, f"out={tmp_path / 'runs'}")
    assert code == 2, err
    line = one_line(err)
    assert "--config" in line and "big.yaml" in line and "larger than 1 MiB" in line, line
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_batch_larger_than_the_data_is_estimated_by_the_rows_a_step_gets(tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    try:  # 64 images, 100,000 a batch: the steps get 32 rows each (was refused as needing 1026.9 GiB)
        assert main(["run", *TINY, "batch_size=100000", f"out={tmp_path}", "name=big-batch"]) == 0
    finally:
        torch.set_num_threads(threads)
    assert (tmp_path / "big-batch" / "genotype.json").is_file()


# --- class 7: lost stops and wrong words ------------------------------------------------------------------------
INTERRUPT_LOGGER = """import os, signal
from nasp.trainer.callback import Callback
from nasp.trainer.loggers import register_logger


class CtrlCAtTheEnd(Callback):
    def on_run_end(self, trainer, event):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C after the sub-run's last step


@register_logger("ctrl-c-at-the-end")
def make(folder, task):
    return CtrlCAtTheEnd()
"""


def test_ctrl_c_at_the_end_of_a_study_sub_run_stops_the_study(tmp_path: Path) -> None:
    plugin = tmp_path / "ctrl_c.py"
    plugin.write_text(INTERRUPT_LOGGER)
    study = tmp_path / "study"
    search = "{" + ", ".join(["epochs: 1", "batch_size: 16", "device: cpu", "data: {limit: 64}",
                              "model: {channels: 4, layers: 2}", f"plugins: [{plugin}]",
                              "loggers: [ctrl-c-at-the-end]"]) + "}"
    code, err = nasp("study", f"out={study}", "seeds=[0]", "threads=1", f"search={search}",
                     "arms=[{label: a, evaluate: false}, {label: b, evaluate: false}]")
    assert code == 130, err  # was: the study went on to b and exited 0
    assert f"nasp study resume={study}" in err and "Traceback" not in err
    manifest = json.loads((study / "study.json").read_text())
    assert manifest["state"] == "stopped"
    assert {r["arm"]: r["state"] for r in manifest["runs"]} == {"a": "finished", "b": "new"}


def test_study_refusals_name_the_arm_key_and_create_no_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["study", f"out={tmp_path / 's1'}", "arms=[{label: a, serch: {}}]"]) == 2
    assert "unknown config key 'arms.serch'" in one_line(capsys.readouterr().err)  # was: unknown key 'arms'
    assert main(["study", f"out={tmp_path / 's2'}", "arms=[{label: a, search: {epochs: 0}}]"]) == 2
    assert "arm 'a' (search): key 'epochs'" in one_line(capsys.readouterr().err)
    assert not (tmp_path / "s1").exists() and not (tmp_path / "s2").exists()  # was: out= created


@pytest.mark.parametrize("content, needle", [
    (os.urandom(4096), "not a checkpoint torch wrote"),  # was: "it holds objects"
    (pickle.dumps({"a": 1}, protocol=5), "nothing in it was run"),  # torch warned about its protocol in 2 lines
])
def test_a_checkpoint_of_random_bytes_or_another_pickle_is_one_honest_line(run_copy: Path, content: bytes,
                                                                           needle: str) -> None:
    (run_copy / "checkpoint.pt").write_bytes(content)
    code, err = nasp("run", f"resume={run_copy}")
    assert code == 2, err
    line = one_line(err)  # no UserWarning about pickle protocols before it
    assert "checkpoint.pt" in line and needle in line and "objects" not in line, line


def test_a_folder_given_as_a_file_is_called_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "ops.py").mkdir()
    assert main(["run", f"plugins={tmp_path / 'ops.py'}", f"out={tmp_path / 'runs'}"]) == 2
    assert "is a folder" in one_line(capsys.readouterr().err)


# --- class 9: failures deep inside a plugin's code -------------------------------------------------------------
PLUGINS = {
    "bad_logger.py": """from nasp.trainer.loggers import register_logger


@register_logger("broken")
def make(folder, task):
    raise RuntimeError("no server to log to")
""",
    "bad_algo.py": """from nasp.algorithms import register_algorithm
from nasp.algorithms.nasp import NASP


@register_algorithm("wrong-genotype")
class WrongGenotype(NASP):
    def genotype(self):
        return {"normal": "not a genotype"}
""",
    "bad_op.py": """from torch import nn
from nasp import register_op


class FailsLater(nn.Module):
    def __init__(self, stride):
        super().__init__()
        self.stride, self.calls = stride, 0

    def forward(self, x):
        self.calls += 1
        if self.calls > 1:  # passes nasp's check (a new op, called once), fails in the run
            raise ValueError("this op broke at run time")
        return x[:, :, ::self.stride, ::self.stride]


@register_op("fails_later")
def fails_later(C, stride, affine):
    return FailsLater(stride)
""",
}


@pytest.mark.parametrize("plugin, keys, needles", [
    ("bad_logger.py", ["loggers=broken"], ["'loggers'", "bad_logger.py", "line 6", "failed to start", "no server"]),
    ("bad_algo.py", ["algorithm=wrong-genotype"], ["'wrong-genotype'", "bad_algo.py", "genotype() returned dict"]),
    ("bad_op.py", ["algorithm=darts-1st", "space.normal=skip_connect,fails_later",
                   "space.reduce=skip_connect,fails_later"],
     ["bad_op.py", "line 13", "failed during the run", "ValueError: this op broke at run time"]),
])
def test_a_plugin_failing_in_a_run_is_one_line_naming_it_and_the_run_failed(tmp_path: Path, plugin: str,
                                                                           keys: list[str], needles: list[str]) -> None:
    (tmp_path / plugin).write_text(PLUGINS[plugin])
    code, err = nasp("run", *TINY, f"plugins={tmp_path / plugin}", *keys, f"out={tmp_path / 'runs'}", "name=r")
    assert code == 2, err
    line = one_line(err)
    assert all(n in line for n in needles), line
    status = json.loads((tmp_path / "runs" / "r" / "status.json").read_text())  # was: only config.json (logger)
    assert status["status"] == "failed" and status["error"] in line
