"""Runs `nasp bench` (in-process) and prints its JSON and a markdown table with the ratios the
project tracks: NASP against DARTS, and NASP's weight step against the bare child's training step.

    python benchmarks/bench_table.py space=cnn12 device=cpu > out.md
"""

from __future__ import annotations

import json
import sys
from typing import Any

from nasp.bench import BenchConfig, run_bench
from nasp.config import build_config, parse_overrides
from nasp.plugins import resolve_device

# how much faster than DARTS nasp's recurrent step must be (issue 20; the decoder bound in docs/benchmarks.md)
RNN_TARGET = {"darts-1st": 2.2, "darts-2nd": 6.0}


def table(report: dict[str, Any]) -> str:
    res = report["results"]
    child = res["child"]["total_s"]
    keys = (("nhid", "bptt", "vocab_size", "batch_size", "steps") if report["settings"].get("recurrent")
            else ("channels", "layers", "batch_size", "image_size", "steps"))
    lines = [f"**{report['space']}** on {report['device']}; settings: "
             + ", ".join(f"{k}={report['settings'][k]}" for k in keys),
             "", "| | arch step s | weight step s | total s | total / child | peak MB |", "|---|---|---|---|---|---|"]
    for name, r in res.items():
        def f(key: str, digits: int = 3, r: dict[str, float] = r) -> str:
            return f"{r[key]:.{digits}f}" if key in r else "-"
        ratio = r["total_s"] / child
        lines.append(f"| {name} | {f('arch_s')} | {f('weight_s')} | {f('total_s')} | {ratio:.1f} | {f('peak_mb', 1)} |")
    n = res.get("nasp")
    if n:
        lines.append("")
        ratios = []
        for other in ("darts-2nd", "darts-1st"):
            if other in res:
                ratios.append(f"nasp total is {res[other]['total_s'] / n['total_s']:.1f}x faster than {other}")
        ratios.append(f"nasp weight step / child step = {n['weight_s'] / child:.2f}")
        if "peak_mb" in n and "darts-1st" in res and "peak_mb" in res["darts-1st"]:
            ratios.append(f"nasp peak memory / darts-1st = {n['peak_mb'] / max(res['darts-1st']['peak_mb'], 1e-9):.2f}")
        lines.append("Ratios from this run: " + "; ".join(ratios) + ".")
        if report["settings"].get("recurrent") and all(k in res for k in RNN_TARGET):
            met = {k: res[k]["total_s"] / n["total_s"] >= x for k, x in RNN_TARGET.items()}
            lines.append("Recurrent target (docs/benchmarks.md: " + ", ".join(f">= {x:g}x {k}" for k, x in RNN_TARGET.items())
                         + "): " + ", ".join(f"{k} {'met' if ok else 'NOT met'}" for k, ok in met.items()) + ".")
    if report.get("variants"):
        lines += ["", "Speed variants of NASP's step and the child's training step (side by side, this run):", "",
                  "| mode | amp | channels-last | arch s | weight s | total s | child s | total / child | graph hit rate |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for v in report["variants"]:
            hit = f"{v['graph_hit_rate']:.2f}" if "graph_hit_rate" in v else "-"
            lines.append(f"| {v['mode']} | {v['amp']} | {v['channels_last']} | {v['arch_s']:.4f} | {v['weight_s']:.4f} | "
                         f"{v['total_s']:.4f} | {v['child_s']:.4f} | {v['total_s'] / v['child_s']:.1f} | {hit} |")
    if report.get("eval_modes"):
        lines += ["", "| evaluation network | step s | images/s |", "|---|---|---|"]
        lines += [f"| {m['mode']} | {m['step_s']:.4f} | {m['images_per_s']:.0f} |" for m in report["eval_modes"]]
    if "eval_throughput" in report:
        lines.append("")
        lines.append(f"Evaluation network training throughput: `{json.dumps(report['eval_throughput'])}`")
    return "\n".join(lines)


if __name__ == "__main__":
    cfg: BenchConfig = build_config(parse_overrides(sys.argv[1:], BenchConfig), BenchConfig)
    report = run_bench(cfg, resolve_device(cfg.device))
    print(json.dumps(report), file=sys.stderr)
    print(table(report))
