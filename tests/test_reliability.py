"""Faults, with real processes, signals, files and a real full disk: docs/reliability.md's guarantees."""

from __future__ import annotations

import json
import os
import pickle
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
from nasp.runfolder import RunFolder, create_run_folder, iter_run_folders
from nasp.search_run import start_run
from nasp.trainer import Event

TINY = ["data.limit=96", "batch_size=16", "model.channels=4", "model.layers=2", "epochs=2"]  # 3 steps an epoch


def nasp(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nasp", *args], capture_output=True, text=True, timeout=timeout,
                          check=False)


STARTED = ("nasp searching:", "nasp evaluating:", "nasp resuming:")  # the header of a run that started


def one_line_error(proc: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.strip() and not x.startswith(STARTED)]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def only_run(out: Path) -> RunFolder:
    (folder,) = list(iter_run_folders(out))
    return folder


def without_timings(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if not k.endswith("_s") and k != "images_per_s"} for r in records]


class Evil:
    """Unpickling this would create the file ``path``: a checkpoint from someone else."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def write_evil(path: Path, marker: Path) -> None:
    torch.save({"format": "nasp-checkpoint/2", "task": Evil(marker), "progress": {"epoch": 0, "step": 0}}, path)




def stopped_search(out: Path, steps: int = 4, extra: tuple[str, ...] = ()) -> Path:
    trainer = start_run(build_config(parse_overrides([*TINY, f"out={out}", *extra])), [StopAfter(steps)], console=False)
    assert trainer.fit().status == "stopped"
    return trainer.run_dir


# --- no code from data files ------------------------------------------------------------------------------
def test_malicious_checkpoint_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    run = stopped_search(tmp_path / "runs")
    write_evil(run / "checkpoint.pt", marker)
    write_evil(run / "checkpoint.prev.pt", marker)
    line = one_line_error(nasp("run", f"resume={run}"))
    assert "checkpoint.pt" in line and "nothing in it was run" in line
    assert not marker.exists()

    ev = tmp_path / "ev"
    assert main(["eval", "genotype=NASP", "data=embedded", "epochs=1", "data.limit=32", "data.test_limit=16",
                 "model.layers=2", "model.channels=4", "batch_size=16", f"out={ev}", "name=e"]) == 0
    for name in ("checkpoint.pt", "checkpoint.prev.pt", "best.pt", "last.pt"):
        write_evil(ev / "e" / name, marker)
    line = one_line_error(nasp("eval", f"resume={ev / 'e'}"))
    assert "checkpoint" in line and str(ev / "e") in line
    line = one_line_error(nasp("test", str(ev / "e" / "best.pt")))
    assert "best.pt" in line and "nothing in it was run" in line
    assert not marker.exists()


def test_resume_of_a_plugin_run_asks_for_the_plugins_again(tmp_path):
    marker = tmp_path / "imported"
    plugin = tmp_path / "my_ops.py"
    plugin.write_text(f"from pathlib import Path\nPath({str(marker)!r}).touch()\n")
    run = stopped_search(tmp_path / "runs", extra=(f"plugins={plugin}",))
    marker.unlink()
    line = one_line_error(nasp("run", f"resume={run}"))
    assert f"plugins={plugin}" in line
    assert not marker.exists()
    done = nasp("run", f"resume={run}", f"plugins={plugin}")
    assert done.returncode == 0, done.stderr
    assert marker.exists() and RunFolder(run).status().state == "finished"


# --- divergence ---------------------------------------------------------------------------------------------
def test_divergence_fails_the_run_with_exit_3(tmp_path):
    proc = nasp("run", *TINY, "optim.lr=1e9", f"out={tmp_path}")
    line = one_line_error(proc, 3)
    assert "diverged at" in line and "epoch" in line and " is nan" in line  # where, and which quantity
    folder = only_run(tmp_path)
    status = folder.status()
    assert status.state == "failed" and "diverged" in (status.error or "")
    events = folder.events()
    assert [e["event"] for e in events][-2:] == ["failed", "run_end"]
    failed_epoch = events[-1]["epoch"]  # the epoch it failed in (events count from 1)
    if folder.genotype_path.is_file():  # only a genotype of an epoch that ended before the divergence
        assert len(folder.metrics()) == failed_epoch - 1
        assert all(v == v for m in folder.metrics() for v in m.values() if isinstance(v, float))
    else:
        assert failed_epoch == 1 and not folder.metrics()
    if folder.has_checkpoint():  # the words say what is left: a checkpoint, or none yet
        assert "the last good checkpoint is kept" in line, line
    else:
        assert "no checkpoint yet" in line and "kept" not in line, line


FAIL_THEN_SIGTERM = """
import os
import signal

import nasp.cli.common
import nasp.cli.main
from nasp.algorithms.nasp import NASP
from nasp.algorithms.registry import register_algorithm

original = nasp.cli.main.report


def report(command, message):  # what torchrun does to the ranks of a failed group: SIGTERM, as the line is due
    os.kill(os.getpid(), signal.SIGTERM)
    original(command, message)


nasp.cli.main.report = nasp.cli.common.report = report


@register_algorithm("nasp-broken")
class Broken(NASP):
    def arch_step(self, val, train):
        raise RuntimeError("broken on purpose")
"""


def test_a_stop_signal_after_a_failure_does_not_cut_off_its_line(tmp_path):
    plugin = tmp_path / "broken.py"
    plugin.write_text(FAIL_THEN_SIGTERM)
    proc = nasp("run", *TINY, "algorithm=nasp-broken", "algorithm.warmup=0", f"plugins={plugin}", f"out={tmp_path}")
    line = one_line_error(proc)  # exit 2 with its line, not killed by the signal before it
    assert "broken.py" in line and "broken on purpose" in line, line
    assert only_run(tmp_path).status().state == "failed"


# --- resume exactness after SIGKILL; a damaged latest checkpoint --------------------------------------------
def compare_runs(a: RunFolder, b: RunFolder) -> None:
    assert without_timings(a.metrics()) == without_timings(b.metrics())
    assert [h["A"] for h in a.history()] == [h["A"] for h in b.history()]
    assert a.genotype_path.read_text() == b.genotype_path.read_text()


def test_sigkill_mid_epoch_then_resume_equals_an_uninterrupted_run(tmp_path):
    args = ["data.limit=640", "batch_size=16", "model.channels=4", "model.layers=2", "epochs=2", "algorithm.epsilon=0.2"]
    full = nasp("run", *args, f"out={tmp_path / 'full'}")
    assert full.returncode == 0, full.stderr
    proc = subprocess.Popen([sys.executable, "-m", "nasp", "run", *args, f"out={tmp_path / 'killed'}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, killed = time.time() + 240, False
    while time.time() < deadline and proc.poll() is None:
        folders = list(iter_run_folders(tmp_path / "killed"))
        if folders and any(e["event"] == "step" and e["epoch"] == 2 for e in folders[0].events()):
            proc.send_signal(signal.SIGKILL)
            killed = True
            break
        time.sleep(0.05)
    proc.wait(30)
    assert killed, "the run never reached its second epoch"
    folder = only_run(tmp_path / "killed")
    assert folder.status().state == "died"
    assert len(folder.metrics()) == 1  # killed during epoch 2
    shown = nasp("show", str(folder.path))
    assert shown.returncode == 0 and f"{folder.path}: search died at epoch 1/2" in shown.stdout
    done = nasp("run", f"resume={folder.path}")
    assert done.returncode == 0, done.stderr
    compare_runs(only_run(tmp_path / "full"), folder)


def test_truncated_latest_checkpoint_resumes_from_the_previous_one(tmp_path):
    # the uninterrupted run in a process of its own too, as the resume: the two compare to the last bit
    full = nasp("run", *TINY, f"out={tmp_path}", "name=full")
    assert full.returncode == 0, full.stderr
    # the stopped search in a process of its own as well (an in-process run inherits what earlier tests changed in
    # this process, e.g. torch's thread count, and then differs in the last bits)
    stopper = tmp_path / "stop.py"
    stopper.write_text(f"""import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from conftest import StopAfter
from nasp.config import build_config, parse_overrides
from nasp.search_run import start_run
trainer = start_run(build_config(parse_overrides({[*TINY, f"out={tmp_path}", "name=stopped"]!r})), [StopAfter(5)],
                    console=False)
assert trainer.fit().status == "stopped"
""")
    stopped = subprocess.run([sys.executable, str(stopper)], capture_output=True, text=True, timeout=300, check=False)
    assert stopped.returncode == 0, stopped.stderr
    run = tmp_path / "stopped"  # epoch 1 done (checkpoint.prev.pt), stopped in epoch 2
    ckpt = run / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    done = nasp("run", f"resume={run}")
    assert done.returncode == 0, done.stderr
    assert "previous checkpoint" in done.stderr and "checkpoint.prev.pt" in done.stderr
    compare_runs(RunFolder(tmp_path / "full"), RunFolder(run))


# --- one writer per run folder --------------------------------------------------------------------------------
def test_a_second_resume_of_a_running_folder_is_refused(tmp_path):
    run = stopped_search(tmp_path, steps=2, extra=("data.limit=960",))  # 30 steps an epoch: the resume runs a while
    first = subprocess.Popen([sys.executable, "-m", "nasp", "run", f"resume={run}"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and RunFolder(run).status().state != "running":
            time.sleep(0.05)
        assert RunFolder(run).status().state == "running"
        second = nasp("run", f"resume={run}")
        line = one_line_error(second)
        assert "in use" in line and f"pid {first.pid}" in line
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(120)
    assert first.returncode == 130
    epochs = [m["epoch"] for m in RunFolder(run).metrics()]
    assert epochs == sorted(set(epochs))  # no interleaved records


def test_new_run_folders_are_race_free_and_names_stay_inside_out(tmp_path):
    code = ("import sys; from nasp.runfolder import create_run_folder; "
            "print(create_run_folder(sys.argv[1], 'same'))")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
             for _ in range(4)]
    made = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(made) == 4 and all(Path(m).parent == tmp_path for m in made)
    for name in ("../../x", "a/b", ".hidden", ""):
        with pytest.raises(Exception, match="key 'name'"):
            create_run_folder(tmp_path, name)
    line = one_line_error(nasp("run", "name=../../escape", f"out={tmp_path}"))
    assert "key 'name'" in line and not (tmp_path.parent.parent / "escape").exists()


def test_bad_out_folders_are_refused_before_any_work(tmp_path):
    afile = tmp_path / "file"
    afile.write_text("x")
    assert "is a file" in one_line_error(nasp("run", f"out={afile}"))
    assert "cannot create" in one_line_error(nasp("run", f"out={afile}/sub"))
    assert "is a file" in one_line_error(nasp("eval", "genotype=NASP", f"out={afile}"))


# --- a full disk ---------------------------------------------------------------------------------------------
@pytest.fixture
def small_tmpfs(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], check=False,
                      capture_output=True).returncode != 0:
        pytest.skip("this machine does not let us mount a tmpfs")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_mid_run_keeps_the_previous_checkpoint(small_tmpfs):
    out = small_tmpfs / "runs"
    args = ["data.limit=960", "batch_size=16", "model.channels=4", "model.layers=2", "epochs=3"]
    proc = subprocess.Popen([sys.executable, "-m", "nasp", "run", *args, f"out={out}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        folders = list(iter_run_folders(out))
        if folders and folders[0].checkpoint_path.is_file():
            break
        time.sleep(0.05)
    filler = small_tmpfs / "filler"
    with open(filler, "wb") as f:  # fill the disk while the run is in its second epoch
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 2, err
    lines = [x for x in err.splitlines() if "error" in x]  # the run's own lines (header, epochs) aside
    assert len(lines) == 1 and "No space left on device" in lines[0] and "Traceback" not in err
    folder = only_run(out)
    assert not [p for p in folder.path.rglob("*") if p.name.endswith((".tmp", ".new"))]
    state = torch.load(folder.checkpoint_path, weights_only=True)
    assert state["progress"]["epoch"] >= 1
    filler.unlink()
    done = nasp("run", f"resume={folder.path}")
    assert done.returncode == 0, done.stderr


# --- evaluation under the same loop: pause and resume with signals ---------------------------------------------
def test_eval_pauses_and_resumes_with_signals(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "nasp", "eval", "genotype=NASP", "data=embedded", "epochs=50",
                             "data.limit=2000", "data.test_limit=16", "model.layers=2", "model.channels=4",
                             "batch_size=16", f"out={tmp_path}", "name=e"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    folder = RunFolder(tmp_path / "e")

    def wait_for(what, timeout=120.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if what():
                return
            time.sleep(0.05)
        raise AssertionError("timed out")

    try:
        wait_for(lambda: any(e["event"] == "step" for e in folder.events()))
        proc.send_signal(signal.SIGUSR1)
        wait_for(lambda: folder.status().state == "paused")
        steps = len([e for e in folder.events() if e["event"] == "step"])
        time.sleep(1.5)
        assert len([e for e in folder.events() if e["event"] == "step"]) == steps  # no step while paused
        proc.send_signal(signal.SIGUSR2)
        wait_for(lambda: any(e["event"] == "resumed" for e in folder.events()))
        assert folder.status().state == "running"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "nasp eval resume=" in err
    assert folder.status().state == "stopped"


# --- the run folder's formats ----------------------------------------------------------------------------------
def test_every_event_decodes_to_its_typed_form(tmp_path):
    run = stopped_search(tmp_path)
    records = RunFolder(run).events()
    assert {r["event"] for r in records} >= {"run_start", "step", "epoch_end", "run_end"}
    for record in records:
        event = Event.from_dict(record)
        assert event.to_dict() == record
    end = Event.from_dict(records[-1])
    assert end.status == "stopped" and end.name == "run_end"


def test_only_the_run_folder_module_names_the_run_files():
    root = Path(__file__).resolve().parents[1]
    names = ["config.json", "status.json", "events.jsonl", "metrics.jsonl", "history.jsonl", "genotype.json",
             "checkpoint.pt", "checkpoint.prev.pt", "best.pt", "last.pt", "result.json"]
    offenders = []
    for path in [*root.glob("nasp/**/*.py"), *root.glob("tui/**/*.py")]:
        if path.name == "runfolder.py":
            continue
        text = path.read_text()
        offenders += [f"{path.relative_to(root)}: {n}" for n in names if f'"{n}"' in text or f"'{n}'" in text
                      or f"/ \"{n}" in text]
    assert not offenders, offenders


def test_status_json_is_what_a_reader_sees(tmp_path):
    run = stopped_search(tmp_path)
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "stopped" and status["kind"] == "search" and status["pid"] == os.getpid()
    assert RunFolder(run).status().resumable
    folder = RunFolder(run)
    folder.lock()
    try:
        folder.write_status("running", "search", 1, 2)
        assert RunFolder(run).status().state == "running"  # the lock is held: alive
    finally:
        folder.unlock()
    assert RunFolder(run).status().state == "died"  # says running, nobody holds the lock
    pickle.dumps(RunFolder(run).status())  # plain data
