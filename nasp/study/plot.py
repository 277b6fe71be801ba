"""The paper's figures from a study folder (`nasp plot STUDY`): its finished searches, drawn by ``nasp.viz.plot``.
In the study layer, above the viewers it uses."""

from __future__ import annotations

from pathlib import Path

from nasp.config import build_config
from nasp.runfolder import RunFolder, RunFolderError, StudyFolder
from nasp.study.config import StudyConfig
from nasp.viz import VizError
from nasp.viz.plot import RunData, load_run, plot_curves, plot_op_choices, plot_size_vs_eta, slug


def plot_study(path: str | Path, out: str | Path | None = None) -> list[Path]:
    """Fig. 3 (the ``figures.curves`` arms), Fig. 5 (``figures.proximal``), Fig. 2 (the nasp arms that differ only
    in eta, when there are several etas) and Fig. 4 (first finished seed of each ``figures.op_changes`` arm)
    from the finished searches of a study folder."""
    folder = StudyFolder(path)
    try:
        cfg: StudyConfig = build_config(folder.read_manifest().get("config", {}), StudyConfig)
    except RunFolderError as exc:
        raise VizError(str(exc)) from None
    runs: dict[str, list[RunData]] = {}
    for arm in cfg.arms:
        for seed in cfg.arm_seeds(arm):
            run_dir = folder.search_dir() / f"{arm.label}-s{seed}"
            if run_dir.is_dir() and RunFolder(run_dir).status().state == "finished":
                run = load_run(run_dir)
                run.label = f"{arm.label} s{seed}"
                runs.setdefault(arm.label, []).append(run)
    if not runs:
        raise VizError(f"'{path}': no search of the study has finished yet")
    target = Path(out) if out is not None else folder.plots_dir
    written: list[Path] = []
    for name, arms, title in (
            ("fig3_search_curves.png", cfg.figures.curves,
             "Validation accuracy and loss against epochs and search time (cf. NASP Fig. 3)"),
            ("fig5_proximal_curves.png", cfg.figures.proximal,
             "NASP against the proximal baselines PA-lazy and PA-standard (cf. NASP Fig. 5)")):
        chosen = [(a, r) for a in arms for r in runs.get(a, [])]
        if chosen:
            written.append(plot_curves([r for _, r in chosen], target / name, title, [a for a, _ in chosen]))
    # Fig. 2: the nasp runs that differ only in eta (the family with the most etas: not the unselected=decay or
    # eta_cells=normal variants, which would blur the line)
    families: dict[str, list[RunData]] = {}
    for r in (r for group in runs.values() for r in group if r.uses_eta and r.algorithm == "nasp"):
        options = {k: v for k, v in r.config.get("algorithm", {}).items() if k != "eta"}
        families.setdefault(repr(sorted(options.items())), []).append(r)
    sized = max(families.values(), key=lambda f: len({r.eta for r in f}), default=[])
    if len({r.eta for r in sized}) > 1:
        written.append(plot_size_vs_eta(sized, target / "fig2_size_vs_eta.png"))
    for arm in cfg.figures.op_changes:
        if runs.get(arm):
            for ct in runs[arm][0].space.cells:
                written.append(plot_op_choices(runs[arm][0], ct, target / f"fig4_ops_{slug(arm)}_{ct}.png"))
    return written
