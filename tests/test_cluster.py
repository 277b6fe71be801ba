"""What a real cluster does to a torchrun run (docs/distributed.md): a rank killed and the group restarted by
torchrun --max-restarts, a stop and a resume on as many ranks, a resume on another number, a rank whose Ā drifts,
and two nodes. Real torchrun launches of 2 gloo processes on the CPU; an uninterrupted 2-rank run of each task is
the reference of the exact-resume checks.

The faults come from plugins (code nasp imports like any user's): rank 1 kills itself (SIGKILL), stops itself
(SIGTERM) or changes A outside arch_update at a given step of the first launch of its group."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from nasp.runfolder import RunFolder

# three steps an epoch (48 training and 48 validation images, the global batch 16: 8 a rank), two epochs, no SyncBN
SEARCH = ["data.limit=96", "batch_size=16", "model.channels=4", "model.layers=2", "epochs=2", "threads=1",
          "algorithm.warmup=0", "algorithm.init_jitter=0",  # every step an architecture step: the faults count them
          "algorithm=nasp-faulty"]
EVAL = ["genotype=NASP", "data=embedded", "data.limit=48", "data.test_limit=40", "batch_size=16", "model.channels=4",
        "model.layers=3", "epochs=2", "model.drop_path=0.2", "threads=1"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
TIMINGS = ("arch_s", "weight_s", "eval_s", "elapsed_s", "train_s", "test_s", "valid_s", "images_per_s", "tokens_per_s")

PLUGIN = '''
"""Faults on rank 1 in the first launch of a torchrun group, at its $NASP_*_STEP-th step (of this process)."""
import os
import signal

import torch

from nasp.algorithms.nasp import NASP
from nasp.algorithms.registry import register_algorithm
from nasp.evaluation.recurrent import RNNEvalTask
from nasp.evaluation.task import EvalTask


def first_launch_rank_1():
    return os.environ.get("RANK") == "1" and os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0"


def fault(steps):
    if not first_launch_rank_1():
        return
    if steps == int(os.environ.get("NASP_KILL_STEP", 0)):
        os.kill(os.getpid(), signal.SIGKILL)
    if steps == int(os.environ.get("NASP_STOP_STEP", 0)):
        os.kill(os.getpid(), signal.SIGTERM)


@register_algorithm("nasp-faulty")
class FaultyNASP(NASP):
    """NASP with a kill, a stop, or A changed outside arch_update, on rank 1."""

    steps = 0

    def arch_step(self, val, train):
        self.steps += 1
        fault(self.steps)
        if first_launch_rank_1() and self.steps == int(os.environ.get("NASP_DIVERGE_STEP", 0)):
            with torch.no_grad():  # what a plugin must not do: step A by itself, on one rank
                for a in self.A.values():
                    a.copy_(torch.randn(a.shape, generator=torch.Generator().manual_seed(1)))
        return super().arch_step(val, train)


def faulty(cls):
    """``cls.step`` with the faults, counted over the steps of this process."""
    original, count = cls.step, [0]

    def step(self, batch, epoch, at):
        count[0] += 1
        fault(count[0])
        return original(self, batch, epoch, at)

    cls.step = step


faulty(EvalTask)
faulty(RNNEvalTask)
'''


def torchrun(*args: str, env: dict[str, str] | None = None, launcher: tuple[str, ...] = ("--standalone",),
             timeout: float = 240) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "torch.distributed.run", *launcher, "--nproc_per_node=2", "-m", "nasp", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**ENV, **(env or {})}, check=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def without_timings(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in TIMINGS} for r in records]


def tensors(tree: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    """Every tensor in a nested state, by its path."""
    if isinstance(tree, torch.Tensor):
        return {prefix: tree}
    out: dict[str, torch.Tensor] = {}
    if isinstance(tree, dict):
        for k, v in tree.items():
            out.update(tensors(v, f"{prefix}.{k}"))
    elif isinstance(tree, list | tuple):
        for i, v in enumerate(tree):
            out.update(tensors(v, f"{prefix}.{i}"))
    return out


def nasp_errors(proc: subprocess.CompletedProcess[str], command: str) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith(f"nasp {command}: error:")]


def assert_same_search(a: Path, b: Path, batch_norm: bool = True) -> None:
    fa, fb = RunFolder(a), RunFolder(b)
    assert fa.status().state == fb.status().state == "finished"
    assert without_timings(fa.metrics()) == without_timings(fb.metrics())
    assert fa.history() == fb.history()  # A, Ā and the genotype after every epoch, to the last bit
    assert fa.genotype_path.read_text() == fb.genotype_path.read_text()
    ta = tensors(fa.load_checkpoint()[0]["task"]["algorithm"])
    tb = tensors(fb.load_checkpoint()[0]["task"]["algorithm"])
    assert ta.keys() == tb.keys() and (not batch_norm or any("running_var" in k for k in ta))
    assert [k for k in ta if not torch.equal(ta[k], tb[k])] == []  # weights, BN buffers, optimiser states


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("plugin") / "faults.py"
    path.write_text(PLUGIN)
    return path


@pytest.fixture(scope="module")
def search(tmp_path_factory, plugin):
    """The uninterrupted 2-rank search; the same search with rank 1 killed in epoch 2 under --max-restarts=1;
    the same search stopped (SIGTERM to rank 1) mid-epoch 2, a 1-rank resume of it refused, and its 2-rank resume."""
    tmp = tmp_path_factory.mktemp("search")
    base = [*SEARCH, f"plugins={plugin}", f"out={tmp}"]
    out: dict[str, Any] = {"tmp": tmp, "plugin": plugin}
    out["ref"] = torchrun("run", *base, "name=ref")
    out["killed"] = torchrun("run", *base, "name=killed", "resume=auto", env={"NASP_KILL_STEP": "5"},
                             launcher=("--standalone", "--max-restarts=1"))
    out["stopped"] = torchrun("run", *base, "name=stopped", "resume=auto", env={"NASP_STOP_STEP": "5"})
    out["stopped_status"] = RunFolder(tmp / "stopped").status()
    shutil.copytree(tmp / "stopped", tmp / "stopped-copy")
    out["one_rank"] = subprocess.run([sys.executable, "-m", "nasp", "run", f"resume={tmp / 'stopped'}",
                                      f"plugins={plugin}"], capture_output=True, text=True, timeout=120, env=ENV,
                                     check=False)
    out["resumed"] = torchrun("run", *base, "name=stopped", "resume=auto")  # the same command again
    return out


def test_a_killed_rank_restarted_by_torchrun_continues_the_same_folder_exactly(search):
    tmp, proc = search["tmp"], search["killed"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in tmp.iterdir() if p.name.startswith("killed")) == ["killed"]  # no second folder
    assert proc.stderr.count("nasp searching:") == 1 and proc.stderr.count("nasp resuming:") == 1
    errors = nasp_errors(proc, "run")  # the first group's failure, once, naming the killed rank
    assert len(errors) == 1 and "rank 1 (pid" in errors[0] and "killed" in errors[0], proc.stderr[-3000:]
    assert "Connection" not in errors[0]
    assert_same_search(tmp / "killed", tmp / "ref")


def test_a_stop_mid_epoch_resumed_on_as_many_ranks_equals_the_uninterrupted_run(search):
    tmp, stopped = search["tmp"], search["stopped"]
    status = search["stopped_status"]
    assert (status.state, status.epoch, status.values["world_size"]) == ("stopped", 1, 2), stopped.stderr[-3000:]
    end = [e for e in RunFolder(tmp / "stopped-copy").events() if e["event"] == "run_end"][-1]
    assert (end["epoch"], end["step"]) == (2, 2)  # mid-epoch 2: two of its three steps done
    hint = f"torchrun --standalone --nproc_per_node=2 -m nasp run resume={tmp / 'stopped'}"
    assert hint in stopped.stderr  # the printed resume command is a torchrun command
    assert search["resumed"].returncode == 0, search["resumed"].stderr[-3000:]
    assert_same_search(tmp / "stopped", tmp / "ref")  # BN statistics of both ranks, sums, random states kept


def test_a_resume_on_another_number_of_ranks_is_refused_then_allowed(search):
    proc = search["one_rank"]
    assert proc.returncode == 2
    (line,) = [x for x in proc.stderr.splitlines() if x.strip()]
    assert line.startswith("nasp run: error: resume:") and "ran on 2 ranks and this resume has 1 rank" in line
    assert "change_world_size=true" in line and "--nproc_per_node=2" in line
    from nasp.search_run import resume_run

    trainer = resume_run(search["tmp"] / "stopped-copy", console=False, plugins=[str(search["plugin"])],
                         change_world_size=True)
    assert trainer.fit().status == "finished"
    one, two = RunFolder(search["tmp"] / "stopped-copy").metrics()[-1], RunFolder(search["tmp"] / "ref").metrics()[-1]
    # the epoch's sums of the two ranks' first step and one process's last two steps: the numbers of one epoch
    assert abs(one["arch_loss"] - two["arch_loss"]) < 0.1 * two["arch_loss"]
    assert abs(one["train_loss"] - two["train_loss"]) < 0.1 * two["train_loss"]


def test_a_rank_stepping_a_outside_arch_update_fails_the_run_with_one_line(tmp_path, plugin):
    proc = torchrun("run", *SEARCH, "epochs=1", f"plugins={plugin}", f"out={tmp_path}", "name=d",
                    env={"NASP_DIVERGE_STEP": "2"}, timeout=120)
    assert proc.returncode != 0
    errors = nasp_errors(proc, "run")
    assert len(errors) == 1 and "disagree on Ā" in errors[0] and "arch_update" in errors[0], proc.stderr[-3000:]
    assert RunFolder(tmp_path / "d").status().state == "failed"


def test_eval_killed_and_restarted_equals_the_uninterrupted_eval_on_two_nodes(tmp_path, plugin):
    """The reference runs as two nodes of one process (two torchrun agents, c10d rendezvous): the node that does
    not host rank 0 says where the run folder is."""
    port = free_port()
    nodes = ["--nnodes=2", "--rdzv_backend=c10d", f"--rdzv_endpoint=127.0.0.1:{port}", "--rdzv_id=ref"]
    cmd = [sys.executable, "-m", "torch.distributed.run", *nodes, "--nproc_per_node=1", "-m", "nasp", "eval", *EVAL,
           f"plugins={plugin}", f"out={tmp_path}", "name=ref"]
    agents = [subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=ENV)
              for _ in range(2)]
    outs = [a.communicate(timeout=240) for a in agents]
    assert [a.returncode for a in agents] == [0, 0], outs[0][1][-2000:] + outs[1][1][-2000:]
    said = [err for _, err in outs if "the run folder is" in err]
    assert len(said) == 1 and f"the run folder is {(tmp_path / 'ref').resolve()} on {socket.gethostname()}" in said[0]
    proc = torchrun("eval", *EVAL, f"plugins={plugin}", f"out={tmp_path}", "name=killed", "resume=auto",
                    env={"NASP_KILL_STEP": "5"}, launcher=("--standalone", "--max-restarts=1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("nasp resuming:") == 1
    ref, killed = RunFolder(tmp_path / "ref"), RunFolder(tmp_path / "killed")
    assert without_timings(killed.metrics()) == without_timings(ref.metrics())
    saved = [torch.load(f.model_path("last"), weights_only=True)["model"] for f in (ref, killed)]
    assert [k for k in saved[0] if not torch.equal(saved[0][k], saved[1][k])] == []  # weights and BN buffers


# recurrent: 4 streams (2 a rank); the search has 7 windows of 8 tokens an epoch, the evaluation about 9 of variable
# length (DARTS's variable BPTT); rank 1 is killed at step 10 (search) and 12 (evaluation): in epoch 2
RNN_SEARCH = ["space=rnn", "rnn.nhid=12", "rnn.emsize=12", "batch_size=4", "rnn.bptt=8", "data.limit=400", "epochs=2",
              "threads=1", "algorithm=nasp-faulty"]
RNN_EVAL = ["genotype=DARTS_V2_RNN", "data=embedded-text", "data.limit=400", "data.test_limit=200", "rnn.emsize=8",
            "rnn.nhid=8", "batch_size=4", "eval_batch_size=2", "rnn.test_batch_size=2", "rnn.bptt=12", "epochs=2",
            "threads=1"]

RNN_WORKER = """
import json
import os
import sys

import torch

from nasp import distributed
from nasp.config import build_config, parse_overrides
from nasp.distributed import _bits
from nasp.evaluation import eval_config, start_eval
from nasp.search_run import start_run
from nasp.trainer import Callback

out, plugin = sys.argv[1], sys.argv[2]
distributed.init()


class Checksums(Callback):
    \"\"\"On every rank: an exact checksum of the weights (and A) after every step, one line a step.\"\"\"

    all_ranks = True

    def __init__(self, name):
        self.path = os.path.join(out, f"{name}-rank{distributed.rank()}.jsonl")

    def on_step(self, trainer, event):
        task = trainer.task
        net = task.algorithm.net if hasattr(task, "algorithm") else task.net
        tensors = list(net.parameters()) + (list(task.algorithm.A.values()) if hasattr(task, "algorithm") else [])
        with open(self.path, "a") as f:
            f.write(json.dumps([event.epoch, event.step, [_bits(t).tolist() for t in tensors]]) + "\\n")


search = build_config(parse_overrides(json.loads(os.environ["RNN_SEARCH"]) + [f"plugins={plugin}", f"out={out}",
                                                                              "name=search"]))
assert start_run(search, callbacks=[Checksums("search")], console=False).fit().status == "finished"
ev = eval_config(json.loads(os.environ["RNN_EVAL"]) + [f"plugins={plugin}", f"out={out}", "name=eval"])
trainer = start_eval(ev, callbacks=[Checksums("eval")], console=False)
trainer.task.log_every = 1  # a step event (and a checksum) every step
assert trainer.fit().status == "finished"
distributed.shutdown()
"""


@pytest.fixture(scope="module")
def recurrent(tmp_path_factory, plugin):
    """A recurrent search and a recurrent evaluation on 2 ranks with a checksum of every rank's weights after every
    step (one launch), and the same two runs with rank 1 killed in epoch 2 under --max-restarts=1."""
    import json

    tmp = tmp_path_factory.mktemp("rnn")
    script = tmp / "worker.py"
    script.write_text(RNN_WORKER)
    env = {"RNN_SEARCH": json.dumps(RNN_SEARCH), "RNN_EVAL": json.dumps(RNN_EVAL)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script), str(tmp),
           str(plugin)]
    out: dict[str, Any] = {"tmp": tmp}
    out["ref"] = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env={**ENV, **env}, check=False)
    restart = ("--standalone", "--max-restarts=1")
    out["search"] = torchrun("run", *RNN_SEARCH, f"plugins={plugin}", f"out={tmp}", "name=search-killed", "resume=auto",
                             env={"NASP_KILL_STEP": "10"}, launcher=restart)
    out["eval"] = torchrun("eval", *RNN_EVAL, f"plugins={plugin}", f"out={tmp}", "name=eval-killed", "resume=auto",
                           env={"NASP_KILL_STEP": "12"}, launcher=restart)
    return out


@pytest.mark.parametrize("name", ["search", "eval"])
def test_recurrent_runs_on_two_ranks_hold_equal_weights_after_every_step(recurrent, name):
    import json

    assert recurrent["ref"].returncode == 0, recurrent["ref"].stderr[-3000:]
    ranks = [[json.loads(line) for line in (recurrent["tmp"] / f"{name}-rank{r}.jsonl").read_text().splitlines()]
             for r in (0, 1)]
    assert len(ranks[0]) >= 8 and ranks[0] == ranks[1]  # every step of both epochs, bit-equal on both ranks
    assert ranks[0][0][2] != ranks[0][-1][2]  # the weights moved


def test_a_killed_recurrent_search_resumes_to_the_uninterrupted_one(recurrent):
    tmp, proc = recurrent["tmp"], recurrent["search"]
    assert proc.returncode == 0 and proc.stderr.count("nasp resuming:") == 1, proc.stderr[-3000:]
    assert_same_search(tmp / "search-killed", tmp / "search", batch_norm=False)  # (its BatchNorm keeps no statistics)


def test_a_killed_recurrent_evaluation_resumes_to_the_uninterrupted_one(recurrent):
    tmp, proc = recurrent["tmp"], recurrent["eval"]
    assert proc.returncode == 0 and proc.stderr.count("nasp resuming:") == 1, proc.stderr[-3000:]
    ref, killed = RunFolder(tmp / "eval"), RunFolder(tmp / "eval-killed")
    assert without_timings(killed.metrics()) == without_timings(ref.metrics())
    saved = [torch.load(f.model_path("last"), weights_only=True)["model"] for f in (ref, killed)]
    assert [k for k in saved[0] if not torch.equal(saved[0][k], saved[1][k])] == []


def test_resume_auto_in_one_process_starts_then_continues_the_same_folder(tmp_path, capsys):
    """Without torchrun: resume=auto needs name=; a folder left without a checkpoint is started again in place;
    a finished run's folder is continued (nothing left to do), never a second folder."""
    from nasp.cli.main import main

    tiny = ["data.limit=32", "batch_size=16", "model.channels=4", "model.layers=2", "epochs=1", "threads=1",
            f"out={tmp_path}"]
    assert main(["run", *tiny, "resume=auto"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "key 'resume': resume=auto" in err[0] and "name=" in err[0]
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "events.jsonl").write_text('{"event": "run_start"}\n')  # died before its first checkpoint
    assert main(["run", *tiny, "name=a", "resume=auto"]) == 0
    assert "nasp searching:" in capsys.readouterr().err
    assert main(["run", *tiny, "name=a", "resume=auto"]) == 0
    assert "nasp resuming:" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]
    assert [e["event"] for e in RunFolder(tmp_path / "a").events()][0:1] == ["run_start"]
    assert RunFolder(tmp_path / "a").status().values["world_size"] == 1
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "b").symlink_to(tmp_path / "elsewhere")  # a planted link is not a run folder to start in
    assert main(["run", *tiny, "name=b", "resume=auto"]) == 2
    assert "is a link, not a run folder" in capsys.readouterr().err
    assert list((tmp_path / "elsewhere").iterdir()) == []
