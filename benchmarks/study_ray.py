"""Wall time of a 4-sub-run study under executor=local and under executor=ray with N Ray workers, on this machine.

The same study twice (4 searches of nasp on the embedded data, ``threads=1``, no evaluations), each in a fresh
study folder: once one sub-run after another in this process, once as Ray tasks on a Ray started here with
``--workers`` CPUs (its start-up is timed too). Prints both wall times, the ratio ray / local (the goal on 2
cores: <= 0.55) and whether the two studies' results.json agree (timings aside). Run it on a quiet machine:

    OMP_NUM_THREADS=1 python benchmarks/study_ray.py --workers 2            # the measurement in docs/study.md
    OMP_NUM_THREADS=1 python benchmarks/study_ray.py --limit 64 --epochs 1  # a quick check that it runs
    ... --json                                                              # one JSON line instead
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TIMINGS = ("_s", "per_s")


def study_args(out: Path, args: argparse.Namespace) -> list[str]:
    search = {"space": "cnn12", "device": "cpu", "epochs": args.epochs, "batch_size": 32,
              "data": {"name": "embedded", "limit": args.limit}, "model": {"channels": args.channels, "layers": 3}}
    arms = [{"label": f"nasp{i}", "search": {"algorithm": "nasp"}, "evaluate": False} for i in range(args.subruns)]
    return [f"out={out}", "seeds=[0]", "threads=1", f"search={json.dumps(search)}", f"arms={json.dumps(arms)}",
            "figures.curves=[]", "figures.proximal=[]", "figures.op_changes=[]"]


def numbers(study: Path) -> Any:
    def strip(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k not in ("path", "study") and not k.endswith(TIMINGS)}
        return [strip(v) for v in x] if isinstance(x, list) else x

    return strip(json.loads((study / "results.json").read_text()))


def timed(overrides: list[str], before: Any = None) -> float:
    from nasp.study import run_study, study_config

    t0 = time.perf_counter()
    if before is not None:
        before()
    state = run_study(study_config(overrides), console=False)
    if state != "finished":
        raise SystemExit(f"study_ray: the study ended {state}")
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=2, help="CPUs of the Ray started here (sub-runs at once)")
    p.add_argument("--subruns", type=int, default=4, help="searches in the study")
    p.add_argument("--epochs", type=int, default=8, help="epochs of each search (8: the study-cpu preset's)")
    p.add_argument("--limit", type=int, default=1000, help="embedded images each search uses (half train, half val)")
    p.add_argument("--channels", type=int, default=8, help="channels of the search network")
    p.add_argument("--json", action="store_true", help="one JSON line")
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    try:
        import ray
    except ImportError:
        print('study_ray: needs Ray: pip install "nasp-search[ray]"', file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="nasp-study-ray-") as tmp:
        local, distributed = Path(tmp) / "local", Path(tmp) / "ray"
        local_s = timed(study_args(local, args))
        start = lambda: ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)  # noqa: E731
        try:
            ray_s = timed([*study_args(distributed, args), "executor=ray"], before=start)
        finally:
            ray.shutdown()
        same = numbers(local) == numbers(distributed)
    report = {"subruns": args.subruns, "workers": args.workers, "cores": os.cpu_count(), "epochs": args.epochs,
              "limit": args.limit, "local_s": round(local_s, 2), "ray_s": round(ray_s, 2),
              "ratio": round(ray_s / local_s, 3), "goal": 0.55, "same_results": same}
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{args.subruns} sub-runs, threads=1, {os.cpu_count()} cores: local {local_s:.1f} s, ray ({args.workers} "
              f"workers, start-up included) {ray_s:.1f} s: ratio {ray_s / local_s:.3f} (goal <= 0.55); "
              f"results {'identical' if same else 'DIFFER'} (timings aside)")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
