"""Seeing a search: the graph of a cell (networkx), its drawing (graphviz, text) and plots of a run.

Submodules import their heavy libraries themselves, so ``import nasp.viz`` stays cheap; only the
errors live here, so the CLI and callbacks can catch them without importing graphviz or matplotlib.
"""

from __future__ import annotations

from nasp.errors import NaspError

INSTALL_GRAPHVIZ = "apt-get install graphviz (Debian/Ubuntu), brew install graphviz (macOS), conda install graphviz"


class VizError(NaspError):
    """A drawing or plot cannot be made from what the user gave (bad path, format, epoch)."""


class GraphvizNotFound(VizError):
    """Graphviz's ``dot`` program is not on PATH; the ``.gv`` sources were still written."""


__all__ = ["INSTALL_GRAPHVIZ", "GraphvizNotFound", "VizError"]
