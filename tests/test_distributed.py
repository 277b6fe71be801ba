"""Data-parallel runs under torchrun, with real processes and real gloo on the CPU (docs/distributed.md).

Each torchrun launch costs seconds (two Python processes importing torch), so one failed-then-resumed
2-rank search serves three checks: equality with one process, a failure on one rank stopping both with one
message, and the resume."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from nasp.config import build_config, parse_overrides
from nasp.evaluation import test_model as score_saved_model
from nasp.runfolder import RunFolder
from nasp.search_run import start_run

# two steps an epoch (32 training and 32 validation images, the global batch 16: 8 a rank); two epochs
SEARCH = ["data.limit=64", "batch_size=16", "model.channels=4", "model.layers=2", "epochs=2", "model.sync_bn=true",
          "algorithm.warmup=0", "algorithm.init_jitter=0"]  # every step an architecture step: the faults count them
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

PLUGIN = '''
"""NASP whose rank 1 sends itself SIGTERM at its $NASP_STOP_STEP-th architecture step, or raises at its
$NASP_FAIL_STEP-th (steps counted from the start of this process)."""
import os
import signal

from nasp.algorithms.nasp import NASP
from nasp.algorithms.registry import register_algorithm


@register_algorithm("nasp-faulty")
class FaultyNASP(NASP):
    """NASP with a stop or a failure on rank 1."""

    steps = 0

    def arch_step(self, val, train):
        self.steps += 1
        if os.environ.get("RANK") == "1":
            if self.steps == int(os.environ.get("NASP_STOP_STEP", 0)):
                os.kill(os.getpid(), signal.SIGTERM)
            if self.steps == int(os.environ.get("NASP_FAIL_STEP", 0)):
                raise RuntimeError("injected failure")
        return super().arch_step(val, train)
'''


def torchrun(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**ENV, **(env or {})}, check=False)


def arch(folder: Path) -> list[dict[str, torch.Tensor]]:
    return [{ct: torch.tensor(a) for ct, a in rec["A"].items()} for rec in RunFolder(folder).history()]


def max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(float((a[ct] - b[ct]).abs().max()) for ct in a)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One 2-rank search, three launches: a SIGTERM to rank 1 in epoch 2 stops it mid-epoch; the resume fails
    on rank 1 one step later; the second resume finishes. And the one-process search of the same batches."""
    tmp = tmp_path_factory.mktemp("dist")
    plugin = tmp / "faulty.py"
    plugin.write_text(PLUGIN)
    two = tmp / "two"
    out: dict = {"two": two, "plugin": plugin}
    out["stopped"] = torchrun("-m", "nasp", "run", *SEARCH, "algorithm=nasp-faulty", f"plugins={plugin}", f"out={tmp}",
                              "name=two", env={"NASP_STOP_STEP": "3"})
    out["stopped_status"], out["stopped_history"] = RunFolder(two).status(), arch(two)
    out["stopped_end"] = [e for e in RunFolder(two).events() if e["event"] == "run_end"]
    resume = ("-m", "nasp", "run", f"resume={two}", f"plugins={plugin}")
    out["failed"] = torchrun(*resume, env={"NASP_FAIL_STEP": "1"})
    out["failed_status"] = RunFolder(two).status()
    out["finished"] = torchrun(*resume)
    trainer = start_run(build_config(parse_overrides([*SEARCH, f"out={tmp}", "name=one"])), console=False)
    assert trainer.fit().status == "finished"
    out["one"] = trainer.run_dir
    return out


def test_a_signal_to_one_rank_stops_both_at_the_same_step(runs):
    status = runs["stopped_status"]
    assert status.state == "stopped", runs["stopped"].stderr
    (end,) = runs["stopped_end"]
    assert (end["status"], end["epoch"], end["step"]) == ("stopped", 2, 1)  # mid-epoch 2, after its first step
    assert runs["stopped"].stderr.count("stopped at epoch 2, step 1") == 1  # rank 0 alone prints


def test_two_ranks_of_half_batches_take_the_steps_of_one_process(runs):
    two, one = runs["stopped_history"], arch(runs["one"])
    assert len(two) == 1  # epoch 1 ended, and its A agreed on both ranks (the checksum)
    assert max_diff(two[0], one[0]) < 1e-5
    assert any(float((a - 0.5).abs().max()) > 1e-4 for a in one[0].values())  # A did move


def test_a_failing_rank_stops_both_with_one_message(runs):
    proc = runs["failed"]
    assert proc.returncode != 0  # torchrun returned: no rank is left waiting in a collective
    errors = [line for line in proc.stderr.splitlines() if line.startswith("nasp run: error:")]
    # one line, by the failing rank, naming the plugin that failed (issue 23, class 9)
    assert len(errors) == 1 and errors[0].startswith("nasp run: error: rank 1: plugin '"), proc.stderr
    assert "faulty.py' (line " in errors[0] and errors[0].endswith("RuntimeError: injected failure"), proc.stderr
    status = runs["failed_status"]
    assert status.state == "failed" and status.error == errors[0].removeprefix("nasp run: error: ")


def test_a_two_rank_run_resumes_to_the_one_process_result(runs):
    """Resumed twice (after the mid-epoch stop, then from that checkpoint again after the failure), the run
    ends where one process ends: A, and the epoch's sums over both ranks' shares."""
    proc = runs["finished"]
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("nasp resuming:") == 1  # rank 0 alone prints
    assert RunFolder(runs["two"]).status().state == "finished"
    two, one = arch(runs["two"]), arch(runs["one"])
    assert len(two) == 2 and max(max_diff(a, b) for a, b in zip(two, one, strict=True)) < 1e-5
    m2, m1 = RunFolder(runs["two"]).metrics()[-1], RunFolder(runs["one"]).metrics()[-1]
    assert m2["train_acc"] == m1["train_acc"]
    assert abs(m2["train_loss"] - m1["train_loss"]) < 1e-5 and abs(m2["arch_loss"] - m1["arch_loss"]) < 1e-5


def test_rank_0_alone_writes_the_records(runs):
    """The history of the 2-rank run has one record an epoch: no rank but 0 wrote to it."""
    records = RunFolder(runs["two"]).history()
    assert [r["epoch"] for r in records] == list(range(1, len(records) + 1))


def test_eval_on_two_ranks_scores_the_whole_test_split(tmp_path):
    # 63 test images: the last test batch splits unevenly over the ranks
    proc = torchrun("-m", "nasp", "eval", "genotype=NASP", "data=embedded", "data.limit=64", "data.test_limit=63",
                    "batch_size=16", "model.channels=4", "model.layers=3", "epochs=1", "data.cutout=8",
                    "model.drop_path=0.3", f"out={tmp_path}", "name=e")
    assert proc.returncode == 0, proc.stderr
    (metrics,) = RunFolder(tmp_path / "e").metrics()
    alone = score_saved_model(tmp_path / "e", ["data.test_limit=63", "device=cpu"])  # one process, the whole split
    assert alone["images"] == 63
    assert metrics["test_acc"] == alone["test_acc"] and metrics["test_loss"] == pytest.approx(alone["test_loss"])
    assert proc.stdout.count("test accuracy") == 1


WORKER = '''
import os
from pathlib import Path

import torch
from torch import nn

from nasp import distributed

world = distributed.init()
r = world.rank
said = []  # each rank's findings, written to its own file (two processes' prints would interleave)

# SyncBatchNorm2d on 2 ranks of 4 images = BatchNorm2d on the 8 images: output, input gradient, running stats
torch.manual_seed(0)
x, w = torch.randn(8, 3, 5, 5), torch.randn(8, 3, 5, 5)
ref_bn = nn.BatchNorm2d(3)
xx = x.clone().requires_grad_(True)
((ref_bn(xx) * w).sum() / 8).backward()
bn = distributed.sync_batch_norm(nn.Sequential(nn.BatchNorm2d(3)))[0]
part = slice(4 * r, 4 * r + 4)
xr = x[part].clone().requires_grad_(True)
y = bn(xr)
((y * w[part]).sum() / 4).backward()
assert (y - nn.functional.batch_norm(x, None, None, training=True)[part]).abs().max() < 1e-5
assert (xr.grad / 2 - xx.grad[part]).abs().max() < 1e-6
assert (bn.running_var - ref_bn.running_var).abs().max() < 1e-6 and (bn.running_mean - ref_bn.running_mean).abs().max() < 1e-6

# the replica check: equal tensors pass; one changed bit on one rank fails every rank
a = torch.linspace(0, 1, 12).view(3, 4)
distributed.check_replicas({"A": [a], "weights": [torch.ones(5, dtype=torch.float64)]}, "epoch 1")
if r == 1:
    a = a.clone()
    a.view(-1).view(torch.int32)[5] += 1
try:
    distributed.check_replicas({"A": [a], "weights": [torch.ones(5, dtype=torch.float64)]}, "epoch 2")
except distributed.DistributedError as exc:
    said.append(f"rank {r}: {exc}")

# a training batch that does not split evenly over the ranks is refused, naming the key
from nasp.data import Batches, load_dataset
from nasp.errors import ConfigError

data = load_dataset("embedded", None)
try:
    Batches(data, torch.arange(64), 15, torch.device("cpu"))
except ConfigError as exc:
    said.append(f"rank {r} refused: {exc}")
Batches(data, torch.arange(63), 15, torch.device("cpu"), key=None)  # scoring batches may split unevenly

# a fresh data folder ($NASP_DATA) is prepared once: rank 0 builds the corpus cache, the other rank reads it
import logging

from nasp.data.corpus import load_corpus

built = []
handler = logging.Handler()
handler.emit = lambda record: built.append(record.getMessage())
logging.getLogger("nasp.data.corpus").addHandler(handler)
logging.getLogger("nasp.data.corpus").setLevel(logging.INFO)
corpus = distributed.prepare_first(lambda: load_corpus("embedded-text"))
said.append(f"built {len([m for m in built if 'building the cache' in m])} {corpus.vocab_size}")
Path(os.environ["WORKER_OUT"], f"rank{r}.txt").write_text("\\n".join(said))
distributed.shutdown()
'''


def test_sync_batch_norm_the_replica_check_the_batch_check_and_the_data_preparation_on_two_ranks(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(WORKER))
    proc = torchrun(str(script), env={"WORKER_OUT": str(tmp_path), "NASP_DATA": str(tmp_path / "data")})
    assert proc.returncode == 0, proc.stderr
    built = [(tmp_path / f"rank{r}.txt").read_text().splitlines()[2] for r in (0, 1)]
    assert built == ["built 1 10000", "built 0 10000"]  # rank 0 prepared the fresh folder, rank 1 read its cache
    assert len(list((tmp_path / "data" / "corpus").iterdir())) == 1
    for r in (0, 1):
        mismatch, refused, _ = (tmp_path / f"rank{r}.txt").read_text().splitlines()
        assert mismatch.startswith(f"rank {r}: the ranks disagree on A at epoch 2 (rank 1 differs from rank 0)")
        assert refused == (f"rank {r} refused: key 'batch_size': 15 does not split evenly over the 2 processes "
                           f"torchrun started (batch_size is the global batch); use a multiple of 2")


def test_a_plain_run_joins_no_process_group(tmp_path):
    """Without torchrun's environment nothing is initialised: the helpers are the identity."""
    from nasp import distributed

    assert "WORLD_SIZE" not in os.environ and distributed.init() is None and distributed.is_main()
    g = {"normal": torch.ones(2, 3)}
    assert distributed.average(g) is g and distributed.all_sum({"n": 3}) == {"n": 3}
    assert distributed.shard(10) == slice(None)
    assert not torch.distributed.is_initialized()


def test_a_share_of_a_batch_gets_the_augmentation_its_rows_get_in_the_whole_batch():
    """Crops, flips and cutout squares are drawn for the global batch; each rank applies its rows' draws."""
    from nasp.data.batches import random_crop_flip
    from nasp.evaluation.data import cutout

    x = torch.randn(8, 3, 12, 12)
    whole = cutout(random_crop_flip(x, torch.Generator().manual_seed(4)), 6, torch.Generator().manual_seed(5))
    shares = [cutout(random_crop_flip(x[part], torch.Generator().manual_seed(4), part=part, total=8), 6,
                     torch.Generator().manual_seed(5), part, 8) for part in (slice(0, 4), slice(4, 8))]
    assert torch.equal(torch.cat(shares), whole)
    alone = random_crop_flip(x[4:], torch.Generator().manual_seed(4))  # drawn for the share alone: other crops
    assert not torch.equal(alone, whole[4:])
