"""The prepared GPU check of issue 13, one process (benchmarks/gpu_check.sh runs it on the device machine):

1. graphs are right: NASP's steps replayed from CUDA graphs give the eager steps' losses and A (fp32);
2. no host sync in a step but the selection read: torch.cuda.set_sync_debug_mode counts the syncing calls;
3. `nasp bench` at the paper's search size (cnn12, C=16, 8 cells, batch 64): every algorithm, every speed
   variant (eager/graphs x amp x channels-last) and the graph-captured child (acceptance 1);
4. the evaluation network at the paper's size (C=36, 20 cells, batch 96): eager, compile, graphs (acceptance 2);
5. the graph cache's hit rate over a short real search (embedded data, cuda_graphs=on);
6. the architecture step's probe stacked (grouped convolutions, the CUDA default) against op by op.

Each part is written to OUT/gpu_check.json as soon as it is done, so a run stopped at its limit keeps the rest.
    python benchmarks/gpu_check.py OUT [parts]     (parts: comma-separated numbers, default all)
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import torch

from nasp.algorithms.gradients import fast_arch_grad
from nasp.bench import BenchConfig, _algorithm, _batches, run_bench
from nasp.config import build_config, parse_overrides
from nasp.evaluation.task import SPEED_MODES
from nasp.evaluation.throughput import eval_throughput
from nasp.search_run import build_task

DEVICE = torch.device("cuda")
SEARCH = ["algorithm=nasp", "data=embedded", "epochs=4", "batch_size=64", "device=cuda", "cuda_graphs=on",
          "model.channels=16", "model.layers=8"]
PAPER = {"space": "cnn12", "channels": 16, "layers": 8, "batch_size": 64, "device": "cuda", "memory": False,
         "eval_throughput": False}


def graphs_match_eager() -> dict[str, Any]:
    cfg = BenchConfig(**{**PAPER, "amp": False, "steps": 6})
    batches = _batches(cfg, DEVICE)
    out = {}
    for graphs in (False, True):
        algo = _algorithm("nasp", cfg, DEVICE)
        if graphs:
            algo.use_cuda_graphs(8)
        losses = []
        for i in range(len(batches) // 2):
            algo.arch_step(batches[2 * i + 1], batches[2 * i])
            losses.append(float(algo.weight_step(batches[2 * i])[0]))
        out[graphs] = (losses, torch.cat([a.detach().flatten() for a in algo.A.values()]),
                       {**algo.graphs.stats(), "error": algo.graphs.error})
    (le, ae, _), (lg, ag, stats) = out[False], out[True]
    return {"eager_losses": le, "graph_losses": lg, "max_loss_diff": max(abs(a - b) for a, b in zip(le, lg, strict=True)),
            "max_A_diff": float((ae - ag).abs().max()), "graph_stats": stats,
            "ok": stats.get("graph_hits", 0) > 0 and not stats["error"]  # graphs did replay, and gave eager's numbers
            and all(abs(a - b) <= 1e-3 * max(abs(a), 1) for a, b in zip(le, lg, strict=True))}


def host_syncs() -> dict[str, Any]:
    """Syncing calls in one NASP step after two warm-up steps (expected: the selection's read only)."""
    out = {}
    for graphs in (False, True):
        cfg = BenchConfig(**{**PAPER, "steps": 3})
        batches = _batches(cfg, DEVICE)
        algo = _algorithm("nasp", cfg, DEVICE)
        if graphs:
            algo.use_cuda_graphs(8)
        for i in range(2):
            algo.arch_step(batches[2 * i + 1], batches[2 * i])
            algo.weight_step(batches[2 * i])
        torch.cuda.synchronize()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                algo.arch_step(batches[5], batches[4])
                algo.weight_step(batches[4])
            finally:
                torch.cuda.set_sync_debug_mode("default")
        out["graphs" if graphs else "eager"] = [str(w.message).splitlines()[0][:200] for w in caught]
    return out


def bench_paper() -> dict[str, Any]:
    report = run_bench(BenchConfig(**{**PAPER, "steps": 10, "algorithms": ["nasp", "darts-1st"]}), DEVICE)
    res, variants = report["results"], report["variants"]
    best = min(variants, key=lambda v: v["total_s"])
    graph_child = min(v["child_s"] for v in variants if v["mode"] == "graphs")
    report["acceptance_1"] = {
        "nasp_default_s": res["nasp"]["total_s"], "nasp_best_s": best["total_s"], "best_variant": best,
        "graph_child_s": graph_child, "nasp_best_over_graph_child": best["total_s"] / graph_child,
        "darts_1st_over_nasp_best": res["darts-1st"]["total_s"] / best["total_s"],
        "ok": best["total_s"] <= 0.10 and best["total_s"] <= 4 * graph_child
        and res["darts-1st"]["total_s"] >= 8 * best["total_s"]}
    return report


def eval_paper() -> dict[str, Any]:
    rows = [eval_throughput(DEVICE, "DARTS_V2", 36, 20, 96, steps=10, mode=mode, warmup=1 if mode == "eager" else 4)
            for mode in SPEED_MODES]
    best = max(rows, key=lambda r: r["images_per_s"])
    return {"modes": rows, "fastest": best["mode"],
            "epoch_600_hours": 600 * 50_000 / best["images_per_s"] / 3600}


def hit_rate() -> dict[str, Any]:
    cfg = build_config(parse_overrides(SEARCH))
    task = build_task(cfg)
    epochs = []
    t0 = time.perf_counter()
    for epoch in range(cfg.epochs):
        before = task.algorithm.graphs.stats()
        task.start_epoch(epoch)
        for step, batch in enumerate(task.batches(epoch, 0)):
            if step >= task.steps_per_epoch:
                break
            task.step(batch, epoch, step)
        metrics, _ = task.end_epoch(epoch + 1)
        hits = metrics.get("graph_hits", 0) - before.get("graph_hits", 0)
        misses = metrics.get("graph_misses", 0) - before.get("graph_misses", 0)
        epochs.append({"epoch": epoch + 1, "hits": hits, "misses": misses, "hit_rate": hits / max(hits + misses, 1),
                       "weight_s": metrics["weight_s"], "arch_s": metrics["arch_s"], "val_acc": metrics["val_acc"]})
    return {"epochs": epochs, "steps_per_epoch": task.steps_per_epoch, "seconds": time.perf_counter() - t0,
            "final": task.algorithm.graphs.stats(), "error": task.algorithm.graphs.error}


def stacked_probe() -> dict[str, Any]:
    """NASP's architecture step with the stacked probe (the CUDA default) and op by op, paper size, bf16."""
    cfg = BenchConfig(**{**PAPER, "steps": 10})
    batches = _batches(cfg, DEVICE)
    algo = _algorithm("nasp", cfg, DEVICE)
    _, *args = algo.forward_args()
    out = {}
    for stacked in (True, False, True, False):
        times = []
        for i in range(len(batches) // 2):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            with algo.autocast():
                fast_arch_grad(algo.net, *batches[2 * i + 1], *args, stacked=stacked)
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        out["stacked" if stacked else "op_by_op"] = statistics.median(times[1:])
    return out


PARTS = {1: graphs_match_eager, 2: host_syncs, 3: bench_paper, 4: eval_paper, 5: hit_rate, 6: stacked_probe}


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/gpu_out")
    out.mkdir(parents=True, exist_ok=True)
    parts = [int(p) for p in sys.argv[2].split(",")] if len(sys.argv) > 2 else list(PARTS)
    results: dict[str, Any] = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__}
    for n in parts:
        fn = PARTS[n]
        t0 = time.perf_counter()
        try:
            results[fn.__name__] = fn()
        except Exception:  # one part failing must not cost the others' figures
            results[fn.__name__] = {"error": traceback.format_exc()[-3000:]}
        results[fn.__name__ + "_s"] = round(time.perf_counter() - t0, 1)
        print(fn.__name__, json.dumps(results[fn.__name__], default=str)[:1500], flush=True)
        (out / "gpu_check.json").write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
