"""Console progress with rich: a live bar in a terminal, one line an epoch otherwise."""

from __future__ import annotations

import os

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from nasp.trainer.callback import Callback
from nasp.trainer.events import EpochEnd, Event, Paused, Resumed, RunEnd, RunStart, StepEnd
from nasp.trainer.trainer import Trainer


class ConsoleProgress(Callback):
    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, soft_wrap=True)
        self.progress: Progress | None = None
        self.task = None

    def on_run_start(self, trainer: Trainer, event: RunStart) -> None:
        cfg = event.config
        what = f"{cfg.get('algorithm', {}).get('name')} on {cfg.get('space', {}).get('name')}, " \
               f"data {cfg.get('data', {}).get('name')}, device {event.device}"
        verb = "resuming" if event.start_epoch or event.start_step else "searching"
        self.console.print(f"[bold]nasp[/] {verb}: {what}; run folder {event.run_dir}")
        if self.console.is_terminal:
            self.progress = Progress(TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[info]}"), TimeRemainingColumn(), console=self.console,
                                     transient=True)
            self.progress.start()
            self.task = self.progress.add_task("search", total=event.steps_per_epoch,
                                               completed=event.start_step, epoch=event.start_epoch + 1, info="")

    def on_step(self, trainer: Trainer, event: StepEnd) -> None:
        if self.progress is not None and self.task is not None:
            info = f"loss {event.train_loss:.3f} acc {event.train_acc:.2f} arch {event.arch_s:.2f}s w {event.weight_s:.2f}s"
            self.progress.update(self.task, completed=event.step, epoch=f"{event.epoch + 1}/{trainer.epochs}", info=info)

    def on_epoch_end(self, trainer: Trainer, event: EpochEnd) -> None:
        self.console.print(
            f"epoch {event.epoch}/{event.epochs}  train loss {event.train_loss:.3f} acc {event.train_acc:.3f}  "
            f"val loss {event.val_loss:.3f} acc {event.val_acc:.3f}  params {event.param_count / 1e6:.3f}M  "
            f"arch {event.arch_s:.1f}s weight {event.weight_s:.1f}s")
        if self.progress is not None and self.task is not None:
            self.progress.reset(self.task, total=trainer.steps_per_epoch, epoch=f"{event.epoch + 1}/{event.epochs}", info="")

    def on_event(self, trainer: Trainer, event: Event) -> None:
        if isinstance(event, Paused):
            self.console.print(f"[yellow]paused[/] before step {event.step + 1} of epoch {event.epoch + 1}; "
                               f"`kill -USR2 {os.getpid()}` resumes, Ctrl-C stops")
        elif isinstance(event, Resumed):
            self.console.print("resumed")

    def on_run_end(self, trainer: Trainer, event: RunEnd) -> None:
        if self.progress is not None:
            self.progress.stop()
        if event.status == "finished":
            self.console.print(f"[bold green]done[/]: genotype in {event.genotype_path}")
        else:
            self.console.print(f"[bold yellow]stopped[/] at epoch {event.epoch + 1}, step {event.step}; continue with:\n"
                               f"  nasp run resume={event.run_dir}")
