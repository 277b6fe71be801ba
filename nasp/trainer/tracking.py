"""What every experiment-tracking logger (TensorBoard, MLflow, W&B) sends, computed once.

A run's config becomes flat ``a.b`` parameters; an epoch's plain numbers become metrics; a search's Ā
becomes a labelled picture (rows: its edges, columns: the space's ops); the run folder's genotype
and cell drawings become artifacts. The loggers only translate these to their tool's calls.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nasp.errors import NaspError
from nasp.runfolder import RESULT, RunFolder, atomic_write_text
from nasp.safe_io import read_bounded

MAX_PARAM_TEXT = 500  # MLflow's limit for a parameter's value was 500 characters for years; W&B and TB have none


def flat_params(config: dict[str, Any], prefix: str = "") -> dict[str, str | int | float | bool]:
    """``{"optim": {"lr": 0.1}}`` -> ``{"optim.lr": 0.1}``; lists and None become text."""
    out: dict[str, str | int | float | bool] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat_params(value, name + "."))
        elif isinstance(value, bool | int | float | str):
            out[name] = value if not isinstance(value, str) else value[:MAX_PARAM_TEXT]
        else:
            out[name] = json.dumps(value, default=str)[:MAX_PARAM_TEXT]
    return out


def numbers(metrics: dict[str, Any]) -> dict[str, float]:
    """The plain numbers of an epoch's metrics (no flags, no text)."""
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def genotype_text(genotype: dict[str, Any]) -> str:
    """The genotype as its JSON file holds it (``nasp eval genotype=...`` reads this text back)."""
    return json.dumps(genotype, indent=2)


def discrete_labels(matrix: list[list[float]]) -> tuple[list[str], list[str]]:
    """(edge labels, op names) of one cell type's Ā: a search's events carry them (ArchMatrix); plain indices
    for a bare list of rows."""
    edges, ops = getattr(matrix, "edges", None), getattr(matrix, "ops", None)
    if edges is None or ops is None:
        return [str(r) for r in range(len(matrix))], [str(c) for c in range(len(matrix[0]) if matrix else 0)]
    return list(edges), list(ops)


def discrete_figure(matrix: list[list[float]], edges: list[str], ops: list[str], title: str) -> Any:
    """A matplotlib figure of one cell type's Ā (or A): a cell per (edge, op), dark = selected."""
    from matplotlib.figure import Figure  # drawn on its own Agg canvas: no pyplot, no GUI backend

    fig = Figure(figsize=(1.2 + 0.45 * len(ops), 0.8 + 0.28 * len(edges)), dpi=80)
    ax = fig.add_subplot()
    ax.imshow(matrix, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(ops)), ops, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(edges)), edges, fontsize=7)
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return fig


def figure_pixels(fig: Any) -> Any:
    """The figure as an RGB uint8 array (height, width, 3): what TensorBoard, MLflow and W&B all take as an image."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def discrete_images(record: dict[str, Any], epoch: int) -> dict[str, Any]:
    """``{"discrete/<cell type>": pixels}`` of an epoch record's Ā (empty for an evaluation, which has none)."""
    out: dict[str, Any] = {}
    for ct, matrix in (record.get("discrete") or {}).items():
        if not matrix or not isinstance(matrix, list):
            continue
        edges, ops = discrete_labels(matrix)
        out[f"discrete/{ct}"] = figure_pixels(discrete_figure(matrix, edges, ops, f"{ct} cell, epoch {epoch}"))
    return out


def artifacts(folder: RunFolder) -> list[Path]:
    """The run folder's files worth keeping next to its metrics: genotype, result and the latest cell drawings."""
    names = [folder.genotype_path, folder.file(RESULT)]
    cells = folder.cells_dir
    drawings = sorted(cells.glob("latest_*.svg")) + sorted(cells.glob("latest_*.png")) if cells.is_dir() else []
    return [p for p in [*names, *drawings] if p.is_file() and not p.is_symlink()]


def remembered_id(folder: RunFolder, tool: str) -> str | None:
    """The tracking run id a logger of ``tool`` stored in this run folder (a resumed run continues it); None when
    there is none or the file is not a plain id."""
    try:
        text = read_bounded(folder.file(f".{tool}_run_id"), 256).decode("ascii", "replace").strip()
    except (OSError, NaspError):
        return None
    return text if text and text.replace("-", "").isalnum() else None


def remember_id(folder: RunFolder, tool: str, run_id: str) -> None:
    atomic_write_text(folder.file(f".{tool}_run_id"), run_id + "\n")


def end_state(status: str) -> str:
    """finished | stopped | failed, as the trainer's run_end says it."""
    return status if status in ("finished", "stopped", "failed") else "failed"
