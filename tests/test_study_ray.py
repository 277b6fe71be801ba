"""`nasp study executor=ray` on a real local Ray (2 CPUs, started once for this module; each study joins it by
address): the same results as executor=local, a killed worker's sub-run continued from its checkpoint, a study
stopped by SIGINT and continued without redoing what had finished."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from nasp.cli.main import main
from nasp.runfolder import RunFolder

ray = pytest.importorskip("ray", reason="the ray extra (pip install 'nasp-search[ray]'); scripts/setup.sh installs it")

TIMEOUT = 300
# 4 sub-runs: arm a's search is the long one (4 epochs of 8 steps: a kill after its first leaves 24 steps to
# land in), b's search and both evaluations are short
STUDY = {
    "seeds": [0], "threads": 1,
    "search": {"batch_size": 16, "device": "cpu", "data": {"limit": 64}, "model": {"channels": 4, "layers": 2},
               "epochs": 1},
    "eval": {"device": "cpu", "epochs": 1, "batch_size": 16, "data": {"name": "embedded", "limit": 32, "test_limit": 32},
             "model": {"channels": 4, "layers": 2, "auxiliary": False}},
    "arms": [{"label": "a", "search": {"algorithm": "nasp", "epochs": 4, "data": {"limit": 256}}},
             {"label": "b", "search": {"algorithm": "darts-1st"}}],
    "figures": {"curves": ["a"], "proximal": [], "op_changes": ["a"]},
}
TIMINGS = ("_s", "per_s")


@pytest.fixture(scope="module")
def cluster():
    """A local Ray with 2 CPUs, started in this process; its address for the studies' processes to join."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "study.yaml"
    path.write_text(yaml.safe_dump(STUDY))
    return path


@pytest.fixture(scope="module")
def local(config, tmp_path_factory) -> Path:
    """The study run by executor=local (in this process), the reference of every test here."""
    study = tmp_path_factory.mktemp("local") / "study"
    assert main(["study", "--config", str(config), f"out={study}"]) == 0
    return study


def _numbers(study: Path) -> dict:
    """results.json without timings and paths, and every sub-run's metrics without timings."""
    def strip(x):
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k not in ("path", "study") and not k.endswith(TIMINGS)}
        return [strip(v) for v in x] if isinstance(x, list) else x

    runs = {f"{kind}/{p.name}": strip(RunFolder(p).metrics()) for kind in ("search", "eval")
            for p in sorted((study / kind).iterdir())}
    return {"results": strip(json.loads((study / "results.json").read_text())), "metrics": runs}


def _env() -> dict[str, str]:
    """This process's environment after ray.init: it holds RAY_AUTH_MODE=token, which a process joining this Ray
    needs (its token is in ~/.ray/auth_token)."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _study(config: Path, out: Path, address: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nasp.cli.main", "study", "--config", str(config), f"out={out}",
                             "executor=ray", f"ray.address={address}", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())


def _wait_for(condition, what: str, proc: subprocess.Popen) -> None:
    deadline = time.time() + TIMEOUT
    while time.time() < deadline:
        if condition():
            return
        if proc.poll() is not None:
            pytest.fail(f"the study ended before {what}: {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"timed out waiting for {what}")


def _epoch_ended(run: Path, epoch: int) -> bool:
    events = run / "events.jsonl"
    return events.is_file() and f'"event": "epoch_end", "epoch": {epoch},' in events.read_text()


def test_ray_study_ends_with_the_numbers_of_a_local_one(cluster, config, local, tmp_path):
    study = tmp_path / "study"
    proc = _study(config, study, cluster)
    _out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert _numbers(study) == _numbers(local)
    manifest = json.loads((study / "study.json").read_text())
    assert manifest["state"] == "finished" and {r["state"] for r in manifest["runs"]} == {"finished"}
    # one line per change when not a terminal: each sub-run was seen finished, with its score
    assert "study: search a seed 0: finished, epoch 4/4, val_acc" in err
    assert "study: eval b seed 0: finished, epoch 1/1, test_acc" in err
    # each sub-run ran in the process of the Ray worker its log names, and the 2 workers ran the 4 one after another
    pids = set()
    for kind in ("search", "eval"):
        for run in (study / kind).iterdir():
            log = (study / "logs" / f"{kind}-{run.name}.log").read_text()
            pid = RunFolder(run).status().pid
            assert f"(worker pid {pid})" in log, (run, log)
            pids.add(pid)
    assert len(pids) <= 2, pids
    # the study folder's config is the local one's (out= aside): a study may continue under either executor
    local_config = json.loads((local / "study.json").read_text())["config"]
    assert {**manifest["config"], "out": None} == {**local_config, "out": None}


def test_a_killed_worker_is_retried_and_its_subrun_continues_from_its_checkpoint(cluster, config, local, tmp_path):
    study = tmp_path / "study"
    run = study / "search" / "a-s0"
    proc = _study(config, study, cluster)
    # its first epoch's checkpoint written (after the epoch's event): a kill from then on loses less than an epoch
    _wait_for(lambda: _epoch_ended(run, 1) and RunFolder(run).has_checkpoint(), "search a's first checkpoint", proc)
    worker = RunFolder(run).status().pid  # the sub-run runs in the Ray worker's process
    assert worker is not None and worker != os.getpid() and worker != proc.pid
    assert "ray" in Path(f"/proc/{worker}/cmdline").read_bytes().decode(errors="replace").lower()
    os.kill(worker, signal.SIGKILL)
    _out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, err
    starts = [e for e in RunFolder(run).events() if e["event"] == "run_start"]
    assert len(starts) == 2, starts  # Ray ran the task again, which continued the run folder
    assert (starts[1]["start_epoch"], starts[1]["start_step"]) > (0, 0)
    assert [m["epoch"] for m in RunFolder(run).metrics()] == [1, 2, 3, 4]
    assert _numbers(study) == _numbers(local)  # as if it had never been interrupted
    assert f"(worker pid {worker})" in (study / "logs" / "search-a-s0.log").read_text()


def test_sigint_stops_a_ray_study_and_a_rerun_redoes_nothing_finished(cluster, config, local, tmp_path):
    study = tmp_path / "study"
    proc = _study(config, study, cluster)
    done = study / "search" / "b-s0"
    _wait_for(lambda: done.is_dir() and RunFolder(done).status().state == "finished"
              and _epoch_ended(study / "search" / "a-s0", 1), "search b to finish while a runs", proc)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 130, err
    assert f"nasp study resume={study}" in err and "Traceback" not in err
    manifest = json.loads((study / "study.json").read_text())
    assert manifest["state"] == "stopped"
    states = {(r["arm"], r["kind"]): r["state"] for r in manifest["runs"]}
    assert states[("b", "search")] == "finished"
    assert "running" not in states.values()  # every sub-run stopped (checkpointed) before the study ended
    finished = [study / r["path"] for r in manifest["runs"] if r["state"] == "finished"]
    snapshot = {p: {f.name: f.read_bytes() for f in p.iterdir() if f.is_file()} for p in finished}

    again = subprocess.run([sys.executable, "-m", "nasp.cli.main", "study", f"resume={study}", "executor=ray",
                            f"ray.address={cluster}"], capture_output=True, text=True, timeout=TIMEOUT, env=_env(),
                           check=False)
    assert again.returncode == 0, again.stderr
    for p in finished:  # not redone: every file as it was
        assert {f.name: f.read_bytes() for f in p.iterdir() if f.is_file()} == snapshot[p]
    assert _numbers(study) == _numbers(local)
