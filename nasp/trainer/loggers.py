"""Loggers: callbacks that copy a run's metrics somewhere else as it trains, chosen with ``loggers=csv,tensorboard,mlflow,wandb``.

Registered like everything else (``@register_logger("name")`` on a factory ``(folder, task) -> Callback``), so a
plugin adds its own (Weights & Biases, MLflow, ...) without touching nasp. The run folder's own files
(metrics.jsonl, events.jsonl) are always written; loggers are extra copies for other tools.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nasp.errors import ConfigError, RegistryError
from nasp.registry import Registry
from nasp.runfolder import RunFolder
from nasp.trainer.callback import Callback
from nasp.trainer.events import EpochEnd, RunEnd, RunStart
from nasp.trainer.task import Task
from nasp.trainer.tracking import discrete_images, flat_params, genotype_text, numbers

if TYPE_CHECKING:
    from nasp.trainer.trainer import Trainer

log = logging.getLogger(__name__)

LoggerFactory = Callable[[RunFolder, Task], Callback]
LOGGERS: Registry[LoggerFactory] = Registry("logger")
# what a logger needs installed: (module, pip extra)
REQUIRES: dict[str, tuple[str, str]] = {}


def register_logger(name: str, *, requires: tuple[str, str] | None = None) -> Callable[[LoggerFactory], LoggerFactory]:
    """Make a factory ``(folder, task) -> Callback`` available as ``loggers=<name>``; ``requires``: the (module,
    pip extra) it needs, checked before a run starts."""
    if requires:
        REQUIRES[name] = requires
    return LOGGERS.register(name)


def check_loggers(names: list[str]) -> None:
    """ConfigError (one line) for an unknown logger or one whose package is not installed."""
    for name in names:
        try:
            LOGGERS.get(name)
        except RegistryError as exc:
            raise ConfigError(f"key 'loggers': {exc}") from None
        module, extra = REQUIRES.get(name, ("", ""))
        if module and importlib.util.find_spec(module) is None:
            raise ConfigError(f"key 'loggers': logger '{name}' needs the '{module}' package, which is not installed "
                              f"(pip install 'nasp-search[{extra}]')")


def create_loggers(names: list[str], folder: RunFolder, task: Task) -> list[Callback]:
    check_loggers(names)
    return [LOGGERS.get(name)(folder, task) for name in dict.fromkeys(names)]


class CSVLogger(Callback):
    """metrics.csv in the run folder, one row an epoch (for spreadsheets and pandas)."""

    def __init__(self, folder: RunFolder) -> None:
        self.folder = folder

    def on_epoch_end(self, trainer: Trainer, event: EpochEnd) -> None:
        self.folder.write_metrics_csv()  # after the recorder appended the epoch to metrics.jsonl


class TensorBoardLogger(Callback):
    """TensorBoard event files in ``<run>/tensorboard``: every scalar metric of each epoch, at that epoch, the
    config as hparams (the HPARAMS tab, against val_acc/val_ppl), the genotype as text and a search's Ā as a
    picture per cell type; ``tensorboard --logdir runs`` shows all runs side by side."""

    def __init__(self, folder: RunFolder) -> None:
        self.folder = folder
        self.writer: Any = None

    def on_run_start(self, trainer: Trainer, event: RunStart) -> None:
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams

        # a resume drops what was logged after its checkpoint, as it does for metrics.jsonl
        resumed = bool(event.start_epoch or event.start_step)
        self.writer = SummaryWriter(str(self.folder.tensorboard_dir), purge_step=event.start_epoch + 1 if resumed else None)
        if not resumed:  # the hparams of the run, once, in the run's own event files (add_hparams would make a subrun)
            scores = {"val_acc": 0.0, "val_loss": 0.0} if event.kind == "search" else {"test_acc": 0.0}
            for summary in hparams(flat_params(event.config), scores):
                self.writer.file_writer.add_summary(summary)
        if "genotype" in event.info:
            self.writer.add_text("genotype", _markdown_code(genotype_text(event.info["genotype"])), 0)

    def on_epoch_end(self, trainer: Trainer, event: EpochEnd) -> None:
        if self.writer is None:
            return
        for key, value in numbers(event.metrics).items():
            self.writer.add_scalar(key, value, event.epoch)
        if "genotype" in event.record:
            self.writer.add_text("genotype", _markdown_code(genotype_text(event.record["genotype"])), event.epoch)
        for tag, pixels in discrete_images(event.record, event.epoch).items():
            self.writer.add_image(tag, pixels, event.epoch, dataformats="HWC")
        self.writer.flush()

    def on_run_end(self, trainer: Trainer, event: RunEnd) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _markdown_code(text: str) -> str:
    """TensorBoard renders text as markdown: indent it as a code block so JSON keeps its lines."""
    return "\n".join("    " + line for line in text.splitlines())


@register_logger("csv")
def csv_logger(folder: RunFolder, task: Task) -> Callback:
    """metrics.csv in the run folder, one row an epoch."""
    return CSVLogger(folder)


@register_logger("tensorboard", requires=("tensorboard", "tensorboard"))
def tensorboard_logger(folder: RunFolder, task: Task) -> Callback:
    """TensorBoard event files in <run>/tensorboard (needs the tensorboard extra)."""
    return TensorBoardLogger(folder)


@register_logger("mlflow", requires=("mlflow", "mlflow"))
def mlflow_logger(folder: RunFolder, task: Task) -> Callback:
    """MLflow: params, metrics, Ā pictures, genotype and drawings; mlflow.tracking_uri (default <out>/mlruns)."""
    from nasp.trainer.mlflow_logger import MLflowLogger

    return MLflowLogger(folder, task.config)


@register_logger("wandb", requires=("wandb", "wandb"))
def wandb_logger(folder: RunFolder, task: Task) -> Callback:
    """Weights & Biases: config, metrics, Ā pictures, genotype and drawings (offline unless wandb.mode=online)."""
    from nasp.trainer.wandb_logger import WandbLogger

    return WandbLogger(folder, task.config)
