"""What every subcommand shares: the consoles, the command registry (``@command``), exit codes, running a trainer
under the signal handlers, the one-line failure report, logging to the console. ``nasp.cli.main`` imports the
subcommand modules, and they import this module, never ``main``."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from typing import Any, ClassVar

from rich.console import Console
from rich.text import Text

from nasp.errors import NaspError

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

Handler = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Handler]] = {}


def command(name: str, help: str, setup: Callable[[argparse.ArgumentParser], None] | None = None
            ) -> Callable[[Handler], Handler]:
    """Register a subcommand; other modules add theirs the same way (render, eval, ...)."""

    def decorator(fn: Handler) -> Handler:
        COMMANDS[name] = (help, setup or (lambda p: None), fn)
        return fn

    return decorator


# exit codes of `nasp run` and `nasp eval` (docs/reliability.md)
EXIT_OK, EXIT_USAGE, EXIT_DIVERGED, EXIT_STOPPED = 0, 2, 3, 130


def fit(trainer: Any) -> Any:
    """Run ``trainer`` with the signal handlers of a command; a failed run's error is one line on stderr."""
    from nasp.trainer.signals import stop_on_signals

    with stop_on_signals(trainer, err_console, hold_on_failure=True):  # (main releases them after the line)
        end = trainer.fit()
        if end.status == "failed":
            report(trainer.task.command, str(end.error))
    return end


def report(command: str, message: str) -> None:
    """A failure as one line on stderr; under torchrun the first rank to report prints it (once for the run)."""
    from nasp import distributed

    if distributed.claim_report():  # (err_console is quiet on ranks other than 0)
        out = err_console if distributed.is_main() else Console(stderr=True, soft_wrap=True)
        out.print(Text.assemble((f"nasp {command}: error: ", "bold red"), message), soft_wrap=True)


def exit_code(end: Any) -> int:
    """The exit code of how a run ended (docs/reliability.md)."""
    if end.status == "finished":
        return EXIT_OK
    if end.status == "failed":
        return EXIT_DIVERGED if end.result.get("reason") == "diverged" else EXIT_USAGE
    return EXIT_STOPPED


def resume_args(tree: dict[str, Any], config_file: str | None, *flags: str) -> list[str]:
    """The plugins a resume names; any other key is refused (a resume continues a run with its own config)."""
    others = sorted(set(tree) - {"resume", "plugins", "change_world_size"})
    if others or config_file is not None or any(flags):
        raise NaspError(f"resume= continues a run with its own config; drop the other keys "
                        f"({', '.join(others) or ('--config' if config_file is not None else next(f for f in flags if f))})")
    return list(tree.get("plugins") or [])


class ConsoleLogHandler(logging.Handler):
    """Library messages (``logging.getLogger("nasp...")``) on the rich stderr console, one line each."""

    STYLES: ClassVar[dict[int, str]] = {logging.WARNING: "yellow", logging.ERROR: "bold red", logging.CRITICAL: "bold red"}

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level = record.levelname.lower()
            prefix = "nasp: " if record.levelno < logging.WARNING else f"nasp: {level}: "
            err_console.print(Text.assemble((prefix, self.STYLES.get(record.levelno, "dim")), record.getMessage()),
                              soft_wrap=True, highlight=False)
        except Exception:
            self.handleError(record)


def setup_logging(level: int = logging.INFO) -> None:
    """Route the ``nasp`` loggers to the console (once; a program embedding nasp configures logging itself)."""
    logger = logging.getLogger("nasp")
    if not any(isinstance(h, ConsoleLogHandler) for h in logger.handlers):
        logger.addHandler(ConsoleLogHandler())
    logger.setLevel(level)
    logger.propagate = False


def overrides_args(p: argparse.ArgumentParser) -> None:
    """The ``key=value`` words and ``--config`` of a command that takes a config."""
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. algorithm=nasp epochs=1")
    p.add_argument("--config", "-c", metavar="FILE|PRESET", help="YAML config file or a preset's name (`nasp presets`); "
                   "overrides still apply on top")


def config_from_args(args: argparse.Namespace) -> Any:
    """The search config of ``--config`` and the ``key=value`` words."""
    from nasp.config import build_config, load_yaml, merge, parse_overrides

    tree = load_yaml(args.config) if getattr(args, "config", None) is not None else {}
    return build_config(merge(tree, parse_overrides(args.overrides)))
