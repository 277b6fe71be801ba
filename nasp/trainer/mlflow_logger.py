"""loggers=mlflow: the run in MLflow (params, per-epoch metrics, Ā pictures, genotype and cell drawings).

It talks to MLflow through an ``MlflowClient`` of its own (no global ``mlflow.set_tracking_uri``), so a user's
script that also uses MLflow keeps its settings. A resumed run folder continues its MLflow run (the id is kept
in ``<run>/.mlflow_run_id``).
"""

from __future__ import annotations

import os
import time
import warnings
from typing import TYPE_CHECKING, Any

from nasp.runfolder import GENOTYPE, RunFolder
from nasp.trainer.callback import Callback
from nasp.trainer.events import EpochEnd, RunEnd, RunStart
from nasp.trainer.tracking import (
    artifacts,
    discrete_images,
    end_state,
    flat_params,
    genotype_text,
    numbers,
    remember_id,
    remembered_id,
)

if TYPE_CHECKING:
    from nasp.trainer.trainer import Trainer

BATCH = 100  # MLflow's log_batch takes at most 100 params a call
STATUS = {"finished": "FINISHED", "stopped": "KILLED", "failed": "FAILED"}


def tracking_uri(config: dict[str, Any], folder: RunFolder) -> tuple[str, bool]:
    """(URI, whether it is nasp's default): mlflow.tracking_uri, else $MLFLOW_TRACKING_URI, else a file store next
    to the run folders, <out>/mlruns (no database to install; MLflow 3.7+ itself defaults to sqlite)."""
    given = (config.get("mlflow") or {}).get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI")
    return (str(given), False) if given else ((folder.path.resolve().parent / "mlruns").as_uri(), True)


class MLflowLogger(Callback):
    def __init__(self, folder: RunFolder, config: dict[str, Any]) -> None:
        self.folder = folder
        self.config = config
        self.uri, self.default_store = tracking_uri(config, folder)
        self.experiment = str((config.get("mlflow") or {}).get("experiment") or "nasp")
        self.client: Any = None
        self.run_id: str | None = None

    def on_run_start(self, trainer: Trainer, event: RunStart) -> None:
        with warnings.catch_warnings():  # MLflow 3 warns that its file store is in maintenance mode
            warnings.simplefilter("ignore")
            from mlflow.tracking import MlflowClient

            if self.default_store:  # MLflow 3.18 refuses file stores unless this opt-out is set
                os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")

            self.client = MlflowClient(tracking_uri=self.uri)
            found = self.client.get_experiment_by_name(self.experiment)
            experiment_id = found.experiment_id if found else self.client.create_experiment(self.experiment)
        self.run_id = remembered_id(self.folder, "mlflow")
        if self.run_id is not None:
            self.client.update_run(self.run_id, status="RUNNING")
            return
        run = self.client.create_run(experiment_id, run_name=self.folder.path.name,
                                     tags={"nasp.kind": event.kind, "nasp.run_dir": str(self.folder.path.resolve())})
        self.run_id = run.info.run_id
        remember_id(self.folder, "mlflow", self.run_id)
        from mlflow.entities import Param

        params = [Param(k, str(v)) for k, v in flat_params(event.config).items()]
        for i in range(0, len(params), BATCH):
            self.client.log_batch(self.run_id, params=params[i:i + BATCH])
        if "genotype" in event.info:  # an evaluation: what it trains
            self.client.log_text(self.run_id, genotype_text(event.info["genotype"]), GENOTYPE)

    def on_epoch_end(self, trainer: Trainer, event: EpochEnd) -> None:
        if self.run_id is None:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, event.epoch)
                                                    for k, v in numbers(event.metrics).items()])
        if "genotype" in event.record:
            self.client.log_text(self.run_id, genotype_text(event.record["genotype"]),
                                 f"genotypes/epoch_{event.epoch:03d}.json")
        for tag, pixels in discrete_images(event.record, event.epoch).items():
            self.client.log_image(self.run_id, pixels, f"{tag}_epoch_{event.epoch:03d}.png")

    def on_run_end(self, trainer: Trainer, event: RunEnd) -> None:
        if self.run_id is None:
            return
        for path in artifacts(self.folder):
            self.client.log_artifact(self.run_id, str(path), "cells" if path.parent.name == "cells" else None)
        self.client.set_terminated(self.run_id, status=STATUS[end_state(event.status)])
        self.run_id = None
