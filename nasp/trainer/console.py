"""Console progress with rich: a live bar in a terminal, one line an epoch otherwise. The task says what
its numbers read like; this callback only places them."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from nasp import distributed
from nasp.trainer.callback import Callback
from nasp.trainer.events import EpochEnd, Event, Paused, Resumed, RunEnd, RunStart, StepEnd, next_step

if TYPE_CHECKING:
    from nasp.trainer.trainer import Trainer


class ConsoleProgress(Callback):
    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, soft_wrap=True)
        self.progress: Progress | None = None
        self.bar: TaskID | None = None

    def on_run_start(self, trainer: Trainer, event: RunStart) -> None:
        task = trainer.task
        verb = "resuming" if event.start_epoch or event.start_step else task.verb
        where = f"{distributed.host()}:{event.run_dir}" if distributed.current() is not None else event.run_dir
        self.console.print(f"[bold]nasp[/] {verb}: {escape(task.describe(event))}; run folder {escape(where)}")
        if self.console.is_terminal:
            self.progress = Progress(TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[info]}"), TimeRemainingColumn(), console=self.console,
                                     transient=True)
            self.progress.start()
            self.bar = self.progress.add_task(task.kind, total=event.steps_per_epoch, completed=event.start_step,
                                              epoch=f"{event.start_epoch + 1}/{event.epochs}", info="")

    def on_step(self, trainer: Trainer, event: StepEnd) -> None:
        if self.progress is not None and self.bar is not None:
            self.progress.update(self.bar, completed=event.step, epoch=f"{event.epoch}/{trainer.epochs}",
                                 info=trainer.task.step_line(event))

    def on_epoch_end(self, trainer: Trainer, event: EpochEnd) -> None:
        self.console.print(trainer.task.epoch_line(event), highlight=False, markup=False)
        if self.progress is not None and self.bar is not None:
            self.progress.reset(self.bar, total=trainer.steps_per_epoch, epoch=f"{event.epoch + 1}/{event.epochs}", info="")

    def on_event(self, trainer: Trainer, event: Event) -> None:
        if isinstance(event, Paused):
            epoch, step = next_step(event.epoch, event.step, trainer.steps_per_epoch)
            self.console.print(f"[yellow]paused[/] before step {step} of epoch {epoch}; "
                               f"`kill -USR2 {os.getpid()}` resumes, Ctrl-C stops")
        elif isinstance(event, Resumed):
            self.console.print("resumed")

    def on_run_end(self, trainer: Trainer, event: RunEnd) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        if event.status == "finished":
            self.console.print(f"[bold green]done[/]: {escape(trainer.task.finished_line(event))}")
        elif event.status == "stopped":
            again = distributed.relaunch(f"{trainer.task.command} resume={event.run_dir}")
            self.console.print(f"[bold yellow]stopped[/] at epoch {event.epoch}, step {event.step}; continue with:\n"
                               f"  {escape(again)}")
        # a failure is reported once, by the command's error line
