"""``nasp bench``: step times and peak memory of every algorithm against the bare child network."""

from __future__ import annotations

import argparse
import json

from rich.table import Table

from nasp.cli.common import command, console


def _setup(p: argparse.ArgumentParser) -> None:
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="space=cnn12 channels=8 layers=5 batch_size=16 steps=5 device=auto algorithms=nasp,darts-1st")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


@command("bench", "time each algorithm's steps and peak memory against the bare child network", _setup)
def cmd_bench(args: argparse.Namespace) -> int:
    from nasp.algorithms import ALGORITHMS
    from nasp.bench import BenchConfig, run_bench
    from nasp.config import build_config, parse_overrides
    from nasp.errors import ConfigError
    from nasp.plugins import resolve_device
    from nasp.registry import RegistryError
    from nasp.spaces import get_space

    cfg: BenchConfig = build_config(parse_overrides(args.overrides, BenchConfig), BenchConfig)
    try:
        get_space(cfg.space)
        for name in cfg.algorithms:
            ALGORITHMS.get(name)
    except RegistryError as exc:
        raise ConfigError(str(exc)) from None
    device = resolve_device(cfg.device)
    report = run_bench(cfg, device)
    if args.json:
        print(json.dumps(report))
        return 0
    res = report["results"]
    child = res["child"]["total_s"]
    table = Table("", "arch step s", "weight step s", "total s", "x child", "peak MB",
                  title=f"{report['space']} on {report['device']}")
    for name, r in res.items():
        table.add_row(name, _f(r.get("arch_s")), _f(r.get("weight_s")), _f(r["total_s"]), f"{r['total_s'] / child:.1f}",
                      _f(r.get("peak_mb"), 1))
    console.print(table)
    if report.get("variants"):
        variants = Table("mode", "amp", "channels-last", "arch s", "weight s", "total s", "child s", "x child",
                         "graph hits", title="NASP's step under each speed variant")
        for v in report["variants"]:
            variants.add_row(v["mode"], str(v["amp"]), str(v["channels_last"]), _f(v["arch_s"], 4), _f(v["weight_s"], 4),
                             _f(v["total_s"], 4), _f(v["child_s"], 4), f"{v['total_s'] / v['child_s']:.1f}",
                             _f(v.get("graph_hit_rate"), 2))
        console.print(variants)
    modes = report.get("eval_modes") or ([report["eval_throughput"]] if "eval_throughput" in report else [])
    for m in modes:
        console.print(f"evaluation network ({m['mode']}): {m['images_per_s']:.0f} images/s")
    return 0


def _f(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"
