"""Draw the current cell into the run folder after every epoch, so one can watch Ā change.

``cells/epoch_003_normal.svg`` (plus its ``.gv``) for each epoch and cell type, and
``cells/latest_normal.svg`` replaced atomically (the terminal app and browsers can reload it). A
drawing costs one ``dot`` call per cell type (tens of milliseconds). Drawing must never stop a
search: without ``dot`` only the ``.gv`` sources are written and one warning is printed.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from nasp.genotype import Genotype
from nasp.runfolder import atomic_write_bytes
from nasp.trainer.callback import Callback
from nasp.trainer.events import EpochEnd
from nasp.trainer.trainer import Trainer
from nasp.viz import GraphvizNotFound
from nasp.viz.render import graphviz_missing, render_source, write_source

log = logging.getLogger(__name__)


class CellDrawings(Callback):
    """Writes the drawing of the epoch's genotype (the cell of Ā) for every cell type into ``<run>/cells``."""

    def __init__(self, cells_dir: Path, fmt: str = "svg") -> None:
        self.dir = Path(cells_dir)  # a run folder's cells/ (RunFolder.cells_dir)
        self.fmt = fmt
        self.warned = False

    def _warn(self, message: str) -> None:
        if not self.warned:
            self.warned = True
            log.warning("cell drawings: %s", message)

    def on_epoch_end(self, trainer: Trainer, event: EpochEnd) -> None:
        try:
            self.draw(Genotype.model_validate(event.record["genotype"]), event.epoch)
        except GraphvizNotFound as exc:
            self._warn(f"{exc} (this warning is shown once; the search goes on)")
        except Exception as exc:  # a drawing is never worth a crashed search
            self._warn(f"skipped ({type(exc).__name__}: {exc}); the search goes on")

    def draw(self, genotype: Genotype, epoch: int) -> list[Path]:
        """The drawings of one epoch (``.gv`` only when dot is missing, then GraphvizNotFound)."""
        sources = [write_source(genotype, ct, self.dir / f"epoch_{epoch:03d}_{ct}") for ct in genotype.cells]
        for ct, gv in zip(genotype.cells, sources, strict=True):
            atomic_write_bytes(self.dir / f"latest_{ct}.gv", gv.read_bytes())
        if shutil.which("dot") is None:
            raise graphviz_missing(sources)
        out = []
        for ct, gv in zip(genotype.cells, sources, strict=True):
            drawing = render_source(gv, gv.with_suffix(f".{self.fmt}"), self.fmt)
            atomic_write_bytes(self.dir / f"latest_{ct}.{self.fmt}", drawing.read_bytes())
            out.append(drawing)
        return out
