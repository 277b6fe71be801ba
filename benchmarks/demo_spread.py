"""The spread of the first run: a bare `nasp run` for each seed and thread count, each in its own process.

    python benchmarks/demo_spread.py                        # seeds 0-4 x threads 1, 2: ten runs, one after another
    python benchmarks/demo_spread.py --seeds 0 1 --threads 1 -- epochs=1 data.limit=256   # a quick check

Each run is `nasp run seed=S threads=T out=OUT name=sS-tT [overrides]` with OMP_NUM_THREADS=T; the table gives
its validation accuracy (the last epoch's, of the cell the search returns), its wall time and whether its genotype
equals the other thread counts' for the same seed; then the mean, spread, minimum and maximum accuracy, the slowest
run and the runs' step counts (weight steps, architecture steps: the compute a change of the defaults must
keep). Run it on a quiet machine: the wall times are the runs' own.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def nasp_command() -> list[str]:
    """The `nasp` of this interpreter's environment (its console script, else `python -m nasp`)."""
    script = Path(sys.executable).with_name("nasp")
    return [str(script)] if script.exists() else [sys.executable, "-m", "nasp"]


def one_run(seed: int, threads: int, out: Path, overrides: list[str]) -> dict[str, Any]:
    name = f"s{seed}-t{threads}"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    cmd = [*nasp_command(), "run", f"seed={seed}", f"threads={threads}", f"out={out}", f"name={name}", *overrides]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    run = out / name
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise SystemExit(f"demo_spread: `{' '.join(cmd)}` failed (exit {proc.returncode}): {tail[0]}")
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    with (run / "events.jsonl").open() as f:
        start = json.loads(f.readline())  # run_start: epochs and steps per epoch
    warmup = json.loads((run / "config.json").read_text())["algorithm"].get("warmup", 0.0)
    steps = start["epochs"] * start["steps_per_epoch"]
    genotype = json.loads((run / "genotype.json").read_text())
    return {"seed": seed, "threads": threads, "val_acc": metrics[-1]["val_acc"], "wall_s": wall, "steps": steps,
            "arch_steps": steps - int(warmup * steps), "genotype": genotype.get("cells"), "run": str(run)}


def table(rows: list[dict[str, Any]]) -> str:
    by_seed: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        by_seed.setdefault(r["seed"], []).append(r)
    lines = ["| seed | threads | val acc | wall s | genotype equal across threads? |", "|---|---|---|---|---|"]
    for r in rows:
        same = by_seed[r["seed"]]
        equal = "-" if len(same) < 2 else ("yes" if all(o["genotype"] == r["genotype"] for o in same) else "no")
        lines.append(f"| {r['seed']} | {r['threads']} | {r['val_acc']:.3f} | {r['wall_s']:.0f} | {equal} |")
    accs = [r["val_acc"] for r in rows]
    spread = f" ± {statistics.stdev(accs):.3f}" if len(accs) > 1 else ""
    equal_seeds = sum(1 for same in by_seed.values() if len(same) > 1 and all(o["genotype"] == same[0]["genotype"]
                                                                                  for o in same))
    multi = sum(1 for same in by_seed.values() if len(same) > 1)
    lines += ["", f"{len(rows)} runs: mean val acc {statistics.mean(accs):.3f}{spread}, min {min(accs):.3f}, "
              f"max {max(accs):.3f}; slowest run {max(r['wall_s'] for r in rows):.0f} s "
              f"({sum(r['wall_s'] >= 120 for r in rows)} of {len(rows)} took 2 min or more)"
              + (f"; the same genotype at every thread count for {equal_seeds} of {multi} seeds" if multi else "") + "; "
              + "steps per run (weight, architecture): "
              + ", ".join(sorted({f"{r['steps']}, {r['arch_steps']}" for r in rows})) + "."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--out", default=None, help="folder for the run folders (default: a new temporary one)")
    ap.add_argument("--json", action="store_true", help="also print every run's record as JSON (to stderr)")
    ap.add_argument("overrides", nargs="*", help="more `nasp run` overrides after `--` (default: none, the bare run)")
    args = ap.parse_args(argv)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="demo-spread-"))
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in args.seeds:
        for threads in args.threads:
            rows.append(one_run(seed, threads, out, list(args.overrides)))
            print(f"seed {seed} threads {threads}: val acc {rows[-1]['val_acc']:.3f}, {rows[-1]['wall_s']:.0f} s",
                  file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(rows), file=sys.stderr)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
