"""The results table of a study, computed only from its sub-runs' files: each search's metrics.jsonl and status,
each evaluation's result.json (the paper's Table 2 columns: test accuracy mean ± std, parameters, cost)."""

from __future__ import annotations

import itertools
import math
import statistics
from pathlib import Path
from typing import Any

from nasp.config import build_config
from nasp.runfolder import RunFolder, StudyFolder, read_json
from nasp.study.config import StudyConfig


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _algorithm(tree: dict[str, Any]) -> str | None:
    """The algorithm a search config tree names (``algorithm: nasp`` or ``algorithm: {name: nasp}``)."""
    section = tree.get("algorithm")
    return str(section.get("name", "nasp")) if isinstance(section, dict) else (str(section) if section else None)


def arch_changes(history: list[dict[str, Any]]) -> float | None:
    """Edges whose discrete architecture (Ā; DARTS: its derived cell) changed from one epoch to the next, summed
    over the cell types, per epoch (the paper's Fig. 4 as one number)."""
    changes = []
    for before, after in itertools.pairwise(history):
        a, b = before.get("discrete"), after.get("discrete")
        if not (isinstance(a, dict) and isinstance(b, dict)):
            return None
        changes.append(sum(sum(1 for ra, rb in zip(a[ct], b.get(ct, []), strict=False) if ra != rb) for ct in a))
    return statistics.fmean(changes) if changes else None


def search_record(path: Path) -> dict[str, Any]:
    """What the table needs of one search run folder."""
    folder = RunFolder(path)
    metrics = folder.metrics()
    last = metrics[-1] if metrics else {}
    secs, epochs = _finite(last.get("elapsed_s")), last.get("epoch")
    return {"path": str(path), "state": folder.status().state if path.is_dir() else "new",
            "algorithm": _algorithm(read_json(folder.config_path)), "epochs": epochs, "search_s": secs,
            "epoch_s": secs / epochs if secs is not None and isinstance(epochs, int) and epochs > 0 else None,
            "val_acc": _finite(last.get("val_acc")),
            "best_val_acc": max((v for m in metrics if (v := _finite(m.get("val_acc"))) is not None), default=None),
            "search_params": _finite(last.get("param_count")), "arch_changes": arch_changes(folder.history()),
            "bench201_test": _finite(last.get("bench201_test"))}  # NAS-Bench-201's number for the last cell, if looked up


def eval_record(path: Path) -> dict[str, Any]:
    """What the table needs of one evaluation run folder."""
    folder = RunFolder(path)
    result = folder.result()
    return {"path": str(path), "state": folder.status().state if path.is_dir() else "new",
            "test_acc": _finite(result.get("test_acc")), "params": _finite(result.get("params")),
            "eval_s": _finite(result.get("elapsed_s"))}


def study_results(path: str | Path) -> dict[str, Any]:
    """Per arm its runs and their summary (mean, std, n over finished sub-runs)."""
    folder = StudyFolder(path)
    cfg: StudyConfig = build_config(folder.read_manifest().get("config", {}), StudyConfig)
    arms = []
    for arm in cfg.arms:
        runs = []
        for seed in cfg.arm_seeds(arm):
            name = f"{arm.label}-s{seed}"
            run: dict[str, Any] = {"seed": seed, "search": search_record(folder.search_dir() / name)}
            if arm.evaluate:
                run["eval"] = eval_record(folder.eval_dir() / name)
            runs.append(run)
        searched = [r["search"] for r in runs if r["search"]["state"] == "finished"]
        evaluated = [r["eval"] for r in runs if "eval" in r and r["eval"]["state"] == "finished"]

        def stat(records: list[dict[str, Any]], key: str) -> dict[str, Any]:
            values = [r[key] for r in records if r[key] is not None]
            mean, std = _mean_std(values)
            return {"mean": mean, "std": std, "n": len(values)}

        arms.append({"label": arm.label, "algorithm": searched[0]["algorithm"] if searched else _algorithm(arm.search),
                     "options": arm.search,
                     "planned": len(runs), "searched": len(searched), "evaluated": len(evaluated),
                     "test_acc": stat(evaluated, "test_acc"), "params": stat(evaluated, "params"),
                     "eval_s": stat(evaluated, "eval_s"), "search_s": stat(searched, "search_s"),
                     "epoch_s": stat(searched, "epoch_s"),
                     "val_acc": stat(searched, "val_acc"),
                     "arch_changes": stat(searched, "arch_changes"), "search_params": stat(searched, "search_params"),
                     "bench201_test": stat(searched, "bench201_test"), "runs": runs})
    return {"study": str(folder.path), "arms": arms}


def _pm(s: dict[str, Any], scale: float = 1.0, digits: int = 2) -> str:
    if s["mean"] is None:
        return "—"
    text = f"{s['mean'] * scale:.{digits}f}"
    return text + (f" ± {s['std'] * scale:.{digits}f}" if s["n"] > 1 else "")


def markdown_table(results: dict[str, Any]) -> str:
    """Table 2 of the paper for this study: one row per arm; with a column of NAS-Bench-201's tabulated test accuracy
    of each search's last cell when any search looked it up (``bench201.root``)."""
    nb201 = any(a.get("bench201_test", {}).get("n") for a in results["arms"])
    lines = ["| arm | algorithm | searches | evaluations | test acc (%) | params (M) | search (s) | search s/epoch | "
             "eval (s) | search val acc (%) | Ā changes/epoch |" + (" NB201 test acc (%) |" if nb201 else ""),
             "|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if nb201 else "")]
    for a in results["arms"]:
        lines.append(f"| {a['label']} | {a['algorithm']} | {a['searched']}/{a['planned']} | "
                     f"{a['evaluated']}/{a['planned'] if a['runs'] and 'eval' in a['runs'][0] else 0} | "
                     f"{_pm(a['test_acc'], 100)} | {_pm(a['params'], 1e-6, 4)} | {_pm(a['search_s'], 1, 0)} | "
                     f"{_pm(a['epoch_s'], 1, 1)} | {_pm(a['eval_s'], 1, 0)} | {_pm(a['val_acc'], 100)} | "
                     f"{_pm(a['arch_changes'], 1, 1)} |" + (f" {_pm(a['bench201_test'])} |" if nb201 else ""))
    return "\n".join(lines)


def write_table(path: str | Path | StudyFolder) -> tuple[Path, Path]:
    """results.md and results.json of the study folder, from its sub-runs' files."""
    folder = path if isinstance(path, StudyFolder) else StudyFolder(path)
    results = study_results(folder.path)
    text = ("# Study results\n\nMean ± standard deviation over the finished sub-runs (seeds). Test accuracy and "
            "parameters: the evaluation network of each search's genotype; search and eval seconds: each run's "
            "own clock (elapsed_s).\n\n" + markdown_table(results))
    folder.write_table(text, results)
    return folder.table_md, folder.table_json
