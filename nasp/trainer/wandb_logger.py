"""loggers=wandb: the run in Weights & Biases (config, per-epoch metrics, Ā pictures, genotype and drawings).

Offline by default (``wandb.mode``): files in ``<run>/wandb``, uploaded later with ``wandb sync``, so a run
never stops at a login prompt. A resumed run folder continues its W&B run (id in ``<run>/.wandb_run_id``).
"""

from __future__ import annotations

import os
import secrets
from typing import TYPE_CHECKING, Any

from nasp.runfolder import WANDB, RunFolder
from nasp.trainer.callback import Callback
from nasp.trainer.events import EpochEnd, RunEnd, RunStart
from nasp.trainer.tracking import artifacts, discrete_images, end_state, genotype_text, numbers, remember_id, remembered_id

if TYPE_CHECKING:
    from nasp.trainer.trainer import Trainer


# W&B keeps logs, artifact staging and settings under the home folder; nasp points them into the run folder
# unless the user set them (a variable nasp set for an earlier run in this process is set again)
HOME_DIRS = {"WANDB_CACHE_DIR": "cache", "WANDB_DATA_DIR": "data", "WANDB_CONFIG_DIR": "config"}
_SET_BY_NASP: set[str] = set()


def _inside(folder: RunFolder) -> None:
    for var, sub in HOME_DIRS.items():
        if var not in os.environ or var in _SET_BY_NASP:
            os.environ[var] = str(folder.path.resolve() / WANDB / sub)
            _SET_BY_NASP.add(var)


class WandbLogger(Callback):
    def __init__(self, folder: RunFolder, config: dict[str, Any]) -> None:
        self.folder = folder
        self.options = dict(config.get("wandb") or {})
        self.run: Any = None

    def on_run_start(self, trainer: Trainer, event: RunStart) -> None:
        _inside(self.folder)
        import wandb

        run_id = remembered_id(self.folder, "wandb") or secrets.token_hex(4)  # W&B ids: [a-z0-9]
        remember_id(self.folder, "wandb", run_id)
        self.run = wandb.init(project=self.options.get("project") or "nasp", entity=self.options.get("entity"),
                              mode=self.options.get("mode") or "offline", dir=str(self.folder.path), id=run_id,
                              resume="allow", name=self.folder.path.name, config=event.config,
                              job_type=event.kind, reinit="create_new",
                              settings=wandb.Settings(console="off", silent=True, x_disable_stats=True,
                                                      save_code=False, x_save_requirements=False))
        self.run.define_metric("*", step_metric="epoch")
        if "genotype" in event.info:
            self.run.summary["genotype"] = genotype_text(event.info["genotype"])

    def on_epoch_end(self, trainer: Trainer, event: EpochEnd) -> None:
        if self.run is None:
            return
        import wandb

        row: dict[str, Any] = {"epoch": event.epoch, **numbers(event.metrics)}
        for tag, pixels in discrete_images(event.record, event.epoch).items():
            row[tag] = wandb.Image(pixels, caption=f"{tag}, epoch {event.epoch}")
        self.run.log(row)
        if "genotype" in event.record:
            self.run.summary["genotype"] = genotype_text(event.record["genotype"])

    def on_run_end(self, trainer: Trainer, event: RunEnd) -> None:
        if self.run is None:
            return
        import wandb

        files = artifacts(self.folder)
        if files:
            artifact = wandb.Artifact(self.folder.path.name.replace("+", "-") + "-files", type="nasp-run")
            for path in files:
                artifact.add_file(str(path), name=f"cells/{path.name}" if path.parent.name == "cells" else path.name)
            self.run.log_artifact(artifact)
        self.run.summary["status"] = end_state(event.status)
        self.run.finish(exit_code=0 if event.status != "failed" else 1)
        self.run = None
