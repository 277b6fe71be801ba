"""What an evaluation keeps besides the run loop's own records: the model at its best and last epoch
(for `nasp test`) and the final result."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nasp.runfolder import RunFolder
from nasp.trainer.callback import Callback
from nasp.trainer.events import EpochEnd, RunEnd

if TYPE_CHECKING:
    from nasp.evaluation.task import EvalTask
    from nasp.trainer.trainer import Trainer

MODEL_FORMAT = "nasp-eval-model/1"


def model_record(task: EvalTask, epoch: int, result: dict[str, Any]) -> dict[str, Any]:
    """What ``nasp test`` needs to rebuild and score the network: weights, genotype, config, data shape."""
    state = {k: v.detach().cpu() for k, v in task.net.state_dict().items()}
    return {"format": MODEL_FORMAT, "genotype": task.genotype, "config": task.cfg.model_dump(mode="json"),
            "num_classes": task.data.num_classes, "in_channels": task.data.channels,
            "image_size": task.data.image_size, "epoch": epoch, "params": task.params, **result, "model": state}


def result_record(task: EvalTask, event: RunEnd) -> dict[str, Any]:
    acc, top5 = event.result.get("test_acc"), event.result.get("test_top5")
    return {"genotype": task.genotype, "params": task.params, "params_m": round(task.params / 1e6, 2),
            "params_with_aux": task.params_with_aux, "epochs": task.epochs, "test_acc": acc, "test_top5": top5,
            "test_error": None if acc is None else 1 - acc, "test_top5_error": None if top5 is None else 1 - top5,
            "best_acc": task.best_acc, "best_epoch": task.best_epoch, "elapsed_s": task.elapsed_s,
            "device": str(task.device), "dataset": task.cfg.data.name}


class EvalModels(Callback):
    """last.pt after every epoch, best.pt when the test accuracy improves, result.json at the end."""

    def __init__(self, folder: RunFolder, task: EvalTask) -> None:
        self.folder = folder
        self.task = task

    def on_epoch_end(self, trainer: Trainer, event: EpochEnd) -> None:
        m = event.metrics
        result = {"test_acc": m["test_acc"], "test_top5": m["test_top5"]}
        self.folder.save_model("last", model_record(self.task, event.epoch, result))
        if m["test_acc"] is not None and m["best_epoch"] == event.epoch:
            self.folder.save_model("best", model_record(self.task, event.epoch, result))

    def on_run_end(self, trainer: Trainer, event: RunEnd) -> None:
        if event.status == "finished":
            self.folder.write_result(result_record(self.task, event))
