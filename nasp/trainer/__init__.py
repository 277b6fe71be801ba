"""The one run loop (the trainer), the tasks that plug into it and its callbacks (everything that listens)."""

from nasp.trainer.callback import Callback
from nasp.trainer.console import ConsoleProgress
from nasp.trainer.events import EpochEnd, Event, Failed, Paused, Resumed, RunEnd, RunStart, StepEnd
from nasp.trainer.recorder import RunRecorder
from nasp.trainer.task import Task
from nasp.trainer.trainer import Diverged, Progress, Trainer

__all__ = ["Callback", "ConsoleProgress", "Diverged", "EpochEnd", "Event", "Failed", "Paused", "Progress", "Resumed",
           "RunEnd", "RunRecorder", "RunStart", "StepEnd", "Task", "Trainer"]
