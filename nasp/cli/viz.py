"""``nasp render``, ``nasp plot`` and ``nasp show``: drawings of cells and plots of searches."""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from nasp.cli.common import command, console
from nasp.config import build_config, parse_overrides
from nasp.runfolder import RunFolder
from nasp.viz import VizError

M = TypeVar("M", bound=BaseModel)

if TYPE_CHECKING:
    from nasp.genotype import Genotype

PLUGINS_HELP = ("modules or .py files to import first (code: it runs like an import); viewing never imports the "
                "plugins a run folder names")
OPTION = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*=")


class RenderOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: list[Literal["svg", "png", "pdf"]] = Field(default_factory=lambda: ["svg"],
                                                       description="svg, png or pdf; several as svg,png,pdf")
    out: str | None = Field(None, description="folder for the drawings (default: <run>/cells, or next to the file)")


class PlotOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    out: str | None = Field(None, description="folder for the figures (default: <run>/plots; ./plots for several runs)")
    epoch: int | None = Field(None, ge=1, description="epoch of the A heatmap (default: the last)")
    figures: list[Literal["ops", "heatmap", "gif", "curves", "size"]] | None = Field(
        None, description="some of ops,heatmap,gif,curves,size (default: all; size only when the runs differ in eta)")


def _split(args: list[str]) -> tuple[list[str], list[str]]:
    """Positional paths and key=value options, in any order."""
    opts = [a for a in args if OPTION.match(a) and not Path(a).exists()]
    return [a for a in args if a not in opts], opts


def load_genotype(spec: str) -> tuple[Genotype, Path | None]:
    """A genotype from a run folder, a genotype .json file or a registered name; with the path it came from.

    For viewing: structure only, and the plugins a run folder's config.json names are never imported."""
    from nasp.viz.read import read_genotype

    return read_genotype(spec)


def _paths_and_options(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("args", nargs="+", metavar="ARG", help=what)
    p.add_argument("--plugins", nargs="*", default=[], help=PLUGINS_HELP)


def _paths_and_options_of(args: argparse.Namespace, model: type[M]) -> tuple[list[str], M]:
    """Plugins loaded, then the positional paths and the key=value options built into ``model``."""
    from nasp.plugins import load_plugins

    load_plugins(args.plugins)
    paths, opts = _split(args.args)
    return paths, build_config(parse_overrides(opts, model), model)


def _render_setup(p: argparse.ArgumentParser) -> None:
    _paths_and_options(p, "a run folder or genotype file (or a registered genotype name), then format=svg|png|pdf "
                          "(several: format=svg,png,pdf) and out=DIR")


@command("render", "draw each cell of a genotype with graphviz: nasp render runs/<run> format=png", _render_setup)
def cmd_render(args: argparse.Namespace) -> int:
    from nasp.viz.render import render_genotype

    paths, options = _paths_and_options_of(args, RenderOptions)
    if len(paths) != 1:
        raise VizError(f"give one run folder or genotype file (got {len(paths)}: {' '.join(paths) or 'none'})")
    genotype, source = load_genotype(paths[0])
    if options.out is not None:
        out, prefix = Path(options.out), ""
    elif source is None:
        out, prefix = Path("."), f"{paths[0]}_"
    elif source.is_dir():
        out, prefix = source / "cells", ""
    else:
        out, prefix = source.parent, f"{source.stem}_"
    if out.exists() and not out.is_dir():
        raise VizError(f"out={out} is a file; give a folder")
    written = [p for fmt in dict.fromkeys(options.format) for p in render_genotype(genotype, out, fmt, prefix)]
    for p in written:
        console.print(str(p), highlight=False)
    return 0


def _plot_setup(p: argparse.ArgumentParser) -> None:
    _paths_and_options(p, "one or more run folders (or one study folder), then out=DIR, epoch=N (the epoch of the A heatmap) and "
                          "figures=ops,heatmap,gif,curves,size")


@command("plot", "plot searches: ops per edge (Fig. 4), A heatmaps, curves (Fig. 3), size vs eta (Fig. 2); of a study "
         "folder: Fig. 2-5", _plot_setup)
def cmd_plot(args: argparse.Namespace) -> int:
    from nasp.runfolder import StudyFolder
    from nasp.study.plot import plot_study
    from nasp.viz.plot import plot_runs

    paths, options = _paths_and_options_of(args, PlotOptions)
    if not paths:
        raise VizError("give at least one run folder")
    if len(paths) == 1 and StudyFolder(paths[0]).is_study():  # a study folder: the paper's figures
        for p in plot_study(paths[0], options.out):
            console.print(str(p), highlight=False)
        return 0
    for p in plot_runs(paths, options.out, options.epoch, options.figures):
        console.print(str(p), highlight=False)
    return 0


def _show_setup(p: argparse.ArgumentParser) -> None:
    p.add_argument("genotype", help="a run folder, a genotype .json file or a registered genotype name")
    p.add_argument("--width", type=int, default=None, help="columns to fit (default: the terminal's, at most 80)")
    p.add_argument("--plugins", nargs="*", default=[], help=PLUGINS_HELP)


@command("show", "print each cell of a genotype as a text drawing", _show_setup)
def cmd_show(args: argparse.Namespace) -> int:
    from nasp.plugins import load_plugins
    from nasp.viz.text import genotype_rich

    load_plugins(args.plugins)
    genotype, path = load_genotype(args.genotype)
    width = args.width or min(80, shutil.get_terminal_size((80, 24)).columns)
    if width < 20:
        raise VizError(f"--width {width} is too narrow to draw a cell (20 columns at least)")
    if path is not None and path.is_dir() and RunFolder(path).config_path.is_file():
        st = RunFolder(path).status()  # 'died' when it says running but its process is gone
        error = f": {st.error}" if st.error else ""
        console.print(f"{path}: {st.kind} {st.state} at epoch {st.epoch}/{st.epochs}{error}", highlight=False,
                      markup=False)
    console.print(genotype_rich(genotype, width), highlight=False)
    return 0
