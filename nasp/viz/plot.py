"""Plots of searches from their run folders, after the NASP paper's figures.

- ``plot_op_choices``: Fig. 4, the op each edge selects at each epoch (Ā for NASP/PA, the argmax of
  softmax(α) for DARTS), one small panel per edge;
- ``plot_heatmap`` / ``animate_heatmap``: A (edges x ops) at one epoch, and as a GIF over the search;
- ``plot_curves``: Fig. 3, validation accuracy and loss against epochs and wall-clock seconds, runs overlaid;
- ``plot_size_vs_eta``: Fig. 2, the derived network's size against the regulariser weight eta.

Matplotlib is used through its object API (``Figure`` + Agg canvas): no pyplot, no global backend.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from nasp.runfolder import HISTORY, RunFolder, RunFolderError
from nasp.spaces import SearchSpace
from nasp.viz import VizError
from nasp.viz.graph import CellShape, edge_names
from nasp.viz.read import read_genotype_record, read_run_space

DPI = 130
MAX_GIF_FRAMES = 120


@dataclass
class RunData:
    """What the plots need of one run folder (read once)."""

    path: Path
    config: dict[str, Any]
    metrics: list[dict[str, Any]]
    history: list[dict[str, Any]]
    space: SearchSpace
    softmax: bool  # A holds DARTS's α: plot softmax(α)
    label: str = ""
    epochs: list[int] = field(default_factory=list)

    @property
    def algorithm(self) -> str:
        section = self.config.get("algorithm")
        return str(section.get("name", "?")) if isinstance(section, dict) else "?"

    @property
    def eta(self) -> float:
        section = self.config.get("algorithm")
        value = section.get("eta", 0.0) if isinstance(section, dict) else 0.0
        return float(value) if isinstance(value, int | float) else 0.0

    @property
    def uses_eta(self) -> bool:
        return _uses_eta(self.algorithm)

    def arch(self, cell_type: str, index: int) -> np.ndarray:
        """A of a cell type at history record ``index`` as plotted (softmax(α) for DARTS)."""
        a = np.asarray(self.history[index]["A"][cell_type], dtype=float)
        if self.softmax:
            a = np.exp(a - a.max(axis=1, keepdims=True))
            a = a / a.sum(axis=1, keepdims=True)
        return a

    def discrete(self, cell_type: str, index: int) -> np.ndarray:
        return np.asarray(self.history[index]["discrete"][cell_type], dtype=float)

    def choices(self, cell_type: str) -> tuple[np.ndarray, np.ndarray]:
        """Per epoch and edge: the selected op's column, and whether the edge is kept in Ā (the genotype).

        A kept edge's op is the non-zero entry of Ā; a dropped edge shows the op it would carry (the
        argmax of A, which is also the argmax of softmax(α) for DARTS)."""
        ops, kept = [], []
        for i in range(len(self.history)):
            d, a = self.discrete(cell_type, i), self.arch(cell_type, i)
            on = np.abs(d).sum(axis=1) > 0
            ops.append(np.where(on, np.abs(d).argmax(axis=1), a.argmax(axis=1)))
            kept.append(on)
        return np.array(ops), np.array(kept)


def _uses_eta(name: str) -> bool:
    """Whether the algorithm reads ``algorithm.eta`` (the model-size regulariser); DARTS does not."""
    from nasp.algorithms import ALGORITHMS

    return name not in ALGORITHMS or "eta" in ALGORITHMS.get(name).options


def _algorithm_softmax(name: str) -> bool:
    """Whether A holds DARTS's α (plots show softmax(α)): the algorithm is DARTS or a subclass of it."""
    from nasp.algorithms import ALGORITHMS
    from nasp.algorithms.darts import DARTS

    return name in ALGORITHMS and issubclass(ALGORITHMS.get(name), DARTS)


def load_run(path: str | Path) -> RunData:
    """Read a run folder written by ``nasp run``; VizError when it is not one or has no finished epoch."""
    path = Path(path)
    if not path.is_dir():
        raise VizError(f"'{path}' is not a folder; give run folders written by `nasp run` (e.g. runs/<name>)")
    folder = RunFolder(path)
    try:
        config = folder.read_config()
    except RunFolderError as exc:
        raise VizError(str(exc)) from None
    history = [r for r in folder.history() if isinstance(r.get("A"), dict) and isinstance(r.get("discrete"), dict)]
    if not history:
        raise VizError(f"'{path}' has no finished epoch yet (history.jsonl is empty); plot it after its first epoch")
    metrics = folder.metrics()
    space = run_space(path, history)
    for rec in history:
        for ct, cell in space.cells.items():
            shape = _matrix_shape(rec["A"].get(ct)), _matrix_shape(rec["discrete"].get(ct))
            if shape != ((cell.n_edges, cell.n_ops),) * 2:
                raise VizError(f"'{path}': epoch {rec.get('epoch')} has A and Ā of shapes {shape} for the {ct} cell; "
                               f"space '{space.name}' needs {(cell.n_edges, cell.n_ops)}")
    run = RunData(path, config, metrics, history, space, False)
    run.softmax = _algorithm_softmax(run.algorithm)
    epochs = [r.get("epoch", i + 1) for i, r in enumerate(history)]
    if not all(isinstance(e, int) for e in epochs):
        raise VizError(f"'{RunFolder(path).file(HISTORY)}': epochs must be whole numbers, got {epochs!r:.80}")
    run.epochs = epochs
    return run


def run_space(path: Path, history: list[dict[str, Any]]) -> SearchSpace:
    """The run's space for plotting, read from its files; its plugins are never imported (viewing runs no code
    named in a run folder): the run_start event's space, else genotype.json's, else the last epoch's genotype's."""
    try:
        return read_run_space(path)
    except VizError as first:
        genotype = history[-1].get("genotype")
        if genotype is None:
            raise
        space = read_genotype_record(genotype, f"'{RunFolder(path).file(HISTORY)}'").resolve_space(strict=False)
        if space is None:
            raise VizError(f"{first}; nor does history.jsonl's genotype") from None
        return space


def _matrix_shape(value: Any) -> tuple[int, ...]:
    """The shape of a numeric matrix read from a file, () when it is not a rectangular number matrix."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return ()
    return tuple(arr.shape) if arr.ndim == 2 else ()


def label_runs(runs: list[RunData]) -> None:
    """Short legend labels: the algorithm, plus space and eta where runs differ, plus the folder if still ambiguous."""
    spaces = {r.space.name for r in runs}
    etas = {r.eta for r in runs if r.uses_eta}
    for r in runs:
        parts = [r.algorithm]
        if len(spaces) > 1:
            parts.append(r.space.name)
        if len(etas) > 1 and r.uses_eta:
            parts.append(f"η={r.eta:g}")
        r.label = " ".join(parts)
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.label] = counts.get(r.label, 0) + 1
    for r in runs:
        if counts[r.label] > 1:
            r.label = f"{r.label} ({r.path.name})"


def _shape(space: SearchSpace, cell_type: str) -> CellShape:
    cell = space.cells[cell_type]
    return CellShape(space.kind, cell.n_inputs, cell.reduction)


def _tex(name: str) -> str:
    """Node names as matplotlib mathtext (c_{k-2} -> subscripted), arrows and node numbers as text."""
    return re.sub(r"([A-Za-z]_\{[^}]*\})", r"$\1$", name)


def _what(run: RunData) -> str:
    return "argmax of softmax(α)" if run.softmax else "Ā"


def _panels(rows: int, cols: int, w: float, h: float, left: float, right: float, top: float, bottom: float,
            wgap: float, hgap: float, **kw: Any) -> tuple[Figure, Any]:
    """A figure of rows x cols panels of w x h inches with margins in inches (cheaper than constrained layout)."""
    width = left + cols * w + (cols - 1) * wgap + right
    height = top + rows * h + (rows - 1) * hgap + bottom
    fig = Figure(figsize=(width, height))
    axes = fig.subplots(rows, cols, squeeze=False, gridspec_kw={
        "left": left / width, "right": 1 - right / width, "top": 1 - top / height, "bottom": bottom / height,
        "wspace": wgap / w, "hspace": hgap / h}, **kw)
    return fig, axes


def _save(fig: Figure, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=DPI)
    return out


# --- Fig. 4: the op each edge selects, epoch by epoch -----------------------------------------------
def plot_op_choices(run: RunData, cell_type: str, out: Path) -> Path:
    """One panel per edge (rows: the node it enters; columns: its source), y = op, x = epoch."""
    cell = run.space.cells[cell_type]
    names = edge_names(_shape(run.space, cell_type), cell.edges)
    ops, kept = run.choices(cell_type)
    x = np.array(run.epochs)
    cols = cell.n_inputs + cell.n_nodes - 1
    rows = cell.n_nodes
    label_w = max(len(o) for o in cell.ops) * 0.065 + 0.25
    fig, axes = _panels(rows, cols, 1.55, 0.17 * cell.n_ops + 0.2, left=label_w, right=0.15, top=0.85, bottom=0.5,
                        wgap=0.12, hgap=0.38, sharex=True, sharey=True)
    for e, (src, dst) in enumerate(cell.edges):
        ax = axes[dst - cell.n_inputs][src]
        ax.plot(x, ops[:, e], drawstyle="steps-mid", color="0.55", lw=1.0, zorder=1)
        k = kept[:, e]
        ax.scatter(x[k], ops[k, e], s=18, color="C0", zorder=2, label="edge kept")
        ax.scatter(x[~k], ops[~k, e], s=18, facecolors="white", edgecolors="C0", zorder=2, label="edge dropped")
        ax.set_title(_tex(names[e]), fontsize=9, pad=3)
        ax.grid(True, axis="y", lw=0.4, alpha=0.5)
    for r in range(rows):
        for c in range(cols):
            ax = axes[r][c]
            if c >= cell.n_inputs + r:
                ax.axis("off")
            ax.tick_params(labelsize=7, length=2)
    axes[0][0].set_yticks(range(cell.n_ops), cell.ops)
    axes[0][0].set_ylim(-0.6, cell.n_ops - 0.4)
    axes[0][0].xaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
    for ax in axes[-1]:  # the last node reads every source, so the bottom row is complete
        ax.set_xlabel("epoch", fontsize=8)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", bbox_to_anchor=(1, 1 - 0.3 / fig.get_figheight()), fontsize=8,
               frameon=False, ncols=2)
    changes = int((np.diff(ops, axis=0) != 0).sum())
    steady = int((np.diff(ops, axis=0) == 0).all(axis=0).sum())
    fig.suptitle(f"{run.label or run.algorithm}: op selected on each edge of the {cell_type} cell per epoch "
                 f"({_what(run)}; cf. NASP Fig. 4)\n{changes} op changes over {len(x)} epochs; "
                 f"{steady} of {cell.n_edges} edges never change", fontsize=11, x=0.01,
                 y=1 - 0.06 / fig.get_figheight(), ha="left", va="top")
    return _save(fig, out)


# --- A as a heatmap ----------------------------------------------------------------------------------
def _heatmap_figure(run: RunData, cell_type: str) -> tuple[Figure, Any]:
    """A figure with an empty heatmap of the cell's A and a function drawing history record ``i`` into it."""
    cell = run.space.cells[cell_type]
    names = [_tex(n) for n in edge_names(_shape(run.space, cell_type), cell.edges)]
    frames = [run.arch(cell_type, i) for i in range(len(run.history))]
    lo, hi = min(float(f.min()) for f in frames), max(float(f.max()) for f in frames)
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    digits = min(4, max(2, math.ceil(-math.log10(hi - lo)) + 1))  # enough to tell DARTS's near-uniform weights apart
    left = 0.3 + 0.065 * max(len(n) for n in edge_names(_shape(run.space, cell_type), cell.edges)) + 0.35
    bottom = 0.35 + 0.05 * max(len(o) for o in cell.ops) + 0.3
    w, h = 0.66 * cell.n_ops, 0.3 * cell.n_edges
    fig, axes = _panels(1, 2, w, h, left=left, right=1.15, top=0.75, bottom=bottom, wgap=0.2, hgap=0,
                        width_ratios=[w, 0.18])
    ax, cax = axes[0]
    im = ax.imshow(frames[0], cmap="viridis", vmin=lo, vmax=hi, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(cell.n_ops), cell.ops, rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(cell.n_edges), names, fontsize=8)
    ax.set_xlabel("op")
    ax.set_ylabel("edge (source → node)")
    for j in range(1, cell.n_nodes):  # separate the nodes' blocks of rows
        ax.axhline(cell.node_edges(j).start - 0.5, color="white", lw=1.5)
    bar = fig.colorbar(im, cax=cax)
    bar.set_label("softmax(α)" if run.softmax else "A")
    annotate = cell.n_edges * cell.n_ops <= 240
    texts = [[ax.text(k, e, "", ha="center", va="center", fontsize=6) for k in range(cell.n_ops)]
             for e in range(cell.n_edges)] if annotate else []
    boxes: list[Rectangle] = []
    kept = "the genotype's edges and ops" if run.softmax else "Ā, the edges and ops the weights were trained with"
    total = run.config.get("epochs", run.epochs[-1])

    def draw(i: int) -> None:
        a = frames[i]
        im.set_data(a)
        for b in boxes:
            b.remove()
        boxes.clear()
        for e, k in zip(*np.nonzero(run.discrete(cell_type, i)), strict=True):
            boxes.append(ax.add_patch(Rectangle((k - 0.5, e - 0.5), 1, 1, fill=False, ec="red", lw=1.8)))
        mid = (lo + hi) / 2
        for e, row in enumerate(texts):
            for k, t in enumerate(row):
                t.set_text(f"{a[e, k]:.{digits}f}")
                t.set_color("black" if a[e, k] > mid else "white")
        ax.set_title(f"{run.label or run.algorithm}: {'softmax(α)' if run.softmax else 'A'} of the {cell_type} cell, "
                     f"epoch {run.epochs[i]}/{total}\nred boxes: {kept}", fontsize=10)

    return fig, draw


def _index_of_epoch(run: RunData, epoch: int | None) -> int:
    if epoch is None:
        return len(run.history) - 1
    if epoch not in run.epochs:
        raise VizError(f"epoch={epoch}: run '{run.path.name}' has epochs {run.epochs[0]}..{run.epochs[-1]}")
    return run.epochs.index(epoch)


def plot_heatmap(run: RunData, cell_type: str, out: Path, epoch: int | None = None) -> Path:
    """A (softmax(α) for DARTS) of one cell type at ``epoch`` (default: the last), Ā's entries boxed."""
    fig, draw = _heatmap_figure(run, cell_type)
    draw(_index_of_epoch(run, epoch))
    return _save(fig, out)


def animate_heatmap(run: RunData, cell_type: str, out: Path, frame_ms: int = 600) -> Path:
    """The heatmap over the whole search as a looping GIF (at most MAX_GIF_FRAMES frames)."""
    from PIL import Image

    fig, draw = _heatmap_figure(run, cell_type)
    n = len(run.history)
    picks = sorted({round(i * (n - 1) / (MAX_GIF_FRAMES - 1)) for i in range(MAX_GIF_FRAMES)}) if n > MAX_GIF_FRAMES \
        else list(range(n))
    frames = []
    for i in picks:
        draw(i)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        frames.append(Image.open(buf).convert("RGB").quantize(colors=255, method=Image.Quantize.MEDIANCUT))
    out.parent.mkdir(parents=True, exist_ok=True)
    durations = [frame_ms] * (len(frames) - 1) + [frame_ms * 3]  # linger on the final A
    frames[0].save(out, save_all=True, append_images=frames[1:], duration=durations, loop=0, optimize=False)
    return out


# --- Fig. 3: search curves ---------------------------------------------------------------------------
def plot_curves(runs: list[RunData], out: Path, title: str | None = None, groups: list[str] | None = None) -> Path:
    """Validation accuracy (language models: perplexity) and loss against epochs and against wall-clock seconds; one
    line per run. ``groups`` (one name per run, e.g. the algorithm of each seed's run) colours the runs of a group
    alike."""
    fig = Figure(figsize=(11, 7.2), layout="constrained")
    axes = fig.subplots(2, 2, sharey="row")
    names = list(dict.fromkeys(groups)) if groups else []
    recurrent = any("val_ppl" in r for run in runs for r in run.metrics)
    top, top_name = ("val_ppl", "validation perplexity") if recurrent else ("val_acc", "validation accuracy")
    for n, run in enumerate(runs):
        m = [r for r in run.metrics if top in r]
        if not m:
            continue
        ep = [r["epoch"] for r in m]
        secs = [r.get("elapsed_s", math.nan) for r in m]
        color = names.index(groups[n]) if groups else n
        nth = groups[:n].count(groups[n]) if groups else n
        style = {"color": f"C{color % 10}", "marker": "osD^v<>ph*"[nth % 10] if len(m) <= 30 else None, "ms": 5,
                 "lw": 1.6, "alpha": 0.9}
        label = f"{run.label} ({secs[-1]:.0f} s)" if not math.isnan(secs[-1]) else run.label
        for row, key in enumerate((top, "val_loss")):
            y = [r.get(key, math.nan) for r in m]
            axes[row][0].plot(ep, y, label=label, **style)
            axes[row][1].plot(secs, y, label=label, **style)
    for row, name in enumerate((top_name, "validation loss")):
        axes[row][0].set_ylabel(name)
        for col, xname in enumerate(("epoch", "wall-clock time (s)")):
            ax = axes[row][col]
            ax.set_xlabel(xname)
            ax.grid(True, lw=0.4, alpha=0.6)
            if col == 0:
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            else:
                ax.set_xlim(left=0)  # the search starts at 0 s
    axes[0][0].legend(fontsize=9, title="run (search time)", title_fontsize=9)
    fig.suptitle(title or f"Search curves: {top_name} and loss per epoch and against time (cf. NASP Fig. 3)",
                 fontsize=12)
    return _save(fig, out)


# --- Fig. 2: model size against eta ------------------------------------------------------------------
def plot_size_vs_eta(runs: list[RunData], out: Path) -> Path:
    """Final parameter count (and validation accuracy) of the derived network against eta, one line per
    algorithm (the mean of its runs at each eta); runs of algorithms without the regulariser (DARTS) are left out."""
    runs = [r for r in runs if r.uses_eta and r.metrics]
    fig = Figure(figsize=(10, 4.4), layout="constrained")
    ax_size, ax_acc = fig.subplots(1, 2, sharex=True)
    groups: dict[str, list[RunData]] = {}
    spaces = {r.space.name for r in runs}
    for r in runs:
        groups.setdefault(r.algorithm + (f" ({r.space.name})" if len(spaces) > 1 else ""), []).append(r)
    for n, (name, group) in enumerate(sorted(groups.items())):
        etas = sorted({r.eta for r in group})  # runs at the same eta (seeds): their mean
        size = [float(np.mean([r.metrics[-1].get("param_count", math.nan) / 1e3 for r in group if r.eta == e]))
                for e in etas]
        acc = [float(np.mean([r.metrics[-1].get("val_acc", math.nan) for r in group if r.eta == e])) for e in etas]
        ax_size.plot(etas, size, "o-", color=f"C{n % 10}", label=name)
        ax_acc.plot(etas, acc, "o-", color=f"C{n % 10}", label=name)
    etas = sorted({r.eta for r in runs})
    positive = [e for e in etas if e > 0]
    if positive and etas[-1] / positive[0] > 50:
        for ax in (ax_size, ax_acc):
            ax.set_xscale("symlog", linthresh=positive[0])
    sizes = {(r.config.get("model", {}).get("channels"), r.config.get("model", {}).get("layers")) for r in runs}
    at = f"\nderived network at the search's size (C={next(iter(sizes))[0]}, {next(iter(sizes))[1]} cells)" \
        if len(sizes) == 1 else ""
    ax_size.set_ylabel("parameters (thousands)")
    ax_acc.set_ylabel("final validation accuracy")
    for ax in (ax_size, ax_acc):
        ax.set_xlabel("η (weight of the model-size regulariser)")
        ax.grid(True, lw=0.4, alpha=0.6)
    ax_size.set_title("model size", fontsize=10)
    ax_acc.set_title("validation accuracy", fontsize=10)
    ax_size.legend(fontsize=9)
    fig.suptitle(f"Model size against the regulariser weight η (cf. NASP Fig. 2){at}", fontsize=12)
    return _save(fig, out)


# --- everything for `nasp plot` ----------------------------------------------------------------------
def slug(name: str) -> str:
    """A name as a file name part."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "run"


FIGURES = ("ops", "heatmap", "gif", "curves", "size")


def plot_runs(paths: list[str | Path], out: str | Path | None = None, epoch: int | None = None,
              figures: list[str] | None = None) -> list[Path]:
    """The figures for the runs in ``paths``: per run and cell type Fig. 4 (``ops``), the A heatmap (``heatmap``)
    and its GIF (``gif``); across runs the search curves (``curves``), and model size against eta (``size``) when
    the runs differ in eta. ``figures`` picks some of them (default: all)."""
    if not paths:
        raise VizError("give at least one run folder")
    wanted = set(figures or FIGURES)
    unknown = sorted(wanted - set(FIGURES))
    if unknown:
        raise VizError(f"figures: unknown figure '{unknown[0]}'; choose from {', '.join(FIGURES)}")
    runs = [load_run(p) for p in paths]
    if epoch is not None:
        for r in runs:
            _index_of_epoch(r, epoch)
    differ = len({r.eta for r in runs if r.uses_eta}) > 1
    if figures and "size" in wanted and not differ:
        raise VizError("figures=size needs runs of an algorithm with a model-size regulariser (nasp) that differ in "
                       "algorithm.eta, e.g. nasp runs with eta=0, 0.1, 1")
    label_runs(runs)
    if out is None:
        out = runs[0].path / "plots" if len(runs) == 1 else Path("plots")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise VizError(f"out={out} is a file; give a folder")
    written: list[Path] = []
    for r in runs:
        prefix = "" if len(runs) == 1 else f"{slug(r.path.name)}_"
        for ct in r.space.cells:
            if "ops" in wanted:
                written.append(plot_op_choices(r, ct, out / f"{prefix}ops_{ct}.png"))
            if "heatmap" in wanted:
                at = epoch if epoch is not None else r.epochs[-1]
                written.append(plot_heatmap(r, ct, out / f"{prefix}A_{ct}_epoch{at:03d}.png", epoch))
            if "gif" in wanted:
                written.append(animate_heatmap(r, ct, out / f"{prefix}A_{ct}.gif"))
    if "curves" in wanted:
        written.append(plot_curves(runs, out / "curves.png"))
    if "size" in wanted and differ:
        written.append(plot_size_vs_eta(runs, out / "size_vs_eta.png"))
    return written
