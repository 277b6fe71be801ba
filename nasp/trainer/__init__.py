"""The trainer (the loop) and its callbacks (everything that listens to it)."""

from nasp.trainer.callback import Callback
from nasp.trainer.console import ConsoleProgress
from nasp.trainer.events import EpochEnd, Event, Paused, Resumed, RunEnd, RunStart, StepEnd
from nasp.trainer.files import Checkpointer, RunFiles
from nasp.trainer.trainer import Progress, Trainer

__all__ = ["Callback", "Checkpointer", "ConsoleProgress", "EpochEnd", "Event", "Paused", "Progress", "Resumed",
           "RunEnd", "RunFiles", "RunStart", "StepEnd", "Trainer"]
