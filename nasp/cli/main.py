"""The ``nasp`` command. User errors become one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from rich.console import Console
from rich.table import Table
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

    with stop_on_signals(trainer, err_console):
        end = trainer.fit()
    if end.status == "failed":
        err_console.print(Text.assemble((f"nasp {trainer.task.command}: error: ", "bold red"), str(end.error)),
                          soft_wrap=True)
    return end


def exit_code(end: Any) -> int:
    if end.status == "finished":
        return EXIT_OK
    if end.status == "failed":
        return EXIT_DIVERGED if end.result.get("reason") == "diverged" else EXIT_USAGE
    return EXIT_STOPPED


def resume_args(tree: dict[str, Any], config_file: str | None, *flags: str) -> list[str]:
    """The plugins a resume names; any other key is refused (a resume continues a run with its own config)."""
    others = sorted(set(tree) - {"resume", "plugins"})
    if others or config_file or any(flags):
        raise NaspError(f"resume= continues a run with its own config; drop the other keys "
                        f"({', '.join(others) or ('--config' if config_file else next(f for f in flags if f))})")
    return list(tree.get("plugins") or [])


def _overrides(p: argparse.ArgumentParser) -> None:
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. algorithm=nasp epochs=1")
    p.add_argument("--config", "-c", metavar="FILE", help="YAML config file (overrides still apply on top)")


def config_from_args(args: argparse.Namespace) -> Any:
    from nasp.config import build_config, load_yaml, merge, parse_overrides

    tree = load_yaml(args.config) if getattr(args, "config", None) else {}
    return build_config(merge(tree, parse_overrides(args.overrides)))


@command("run", "run a search: nasp run algorithm=nasp space=cnn12 epochs=1", _overrides)
def cmd_run(args: argparse.Namespace) -> int:
    from nasp.config import parse_overrides
    from nasp.search import resume_run, start_run

    tree = parse_overrides(args.overrides)
    if "resume" in tree:
        trainer = resume_run(tree["resume"], plugins=resume_args(tree, args.config))
    else:
        trainer = start_run(config_from_args(args))
    end = fit(trainer)
    if end.status == "finished":
        acc = end.result.get("val_acc")
        console.print(f"genotype: {trainer.folder.genotype_path}"
                      + (f" (validation accuracy {acc:.3f})" if acc is not None else ""))
    return exit_code(end)


@command("config", "print every config key with its default and meaning", _overrides)
def cmd_config(args: argparse.Namespace) -> int:
    from nasp.algorithms import algorithm_options, option_rows
    from nasp.config import RunConfig, iter_keys

    cfg = config_from_args(args) if args.overrides or args.config else None
    shown = cfg if cfg is not None else RunConfig()
    options = algorithm_options(shown)  # loads plugins=, checks the algorithm.* keys against the algorithm's own
    table = Table("key", "default" if cfg is None else "value", "meaning", box=None, pad_edge=False)

    def row(key: str, value: Any, desc: str) -> None:
        table.add_row(key, repr(value) if isinstance(value, str) else str(value), desc)

    for key, default, desc in iter_keys():
        value: Any = shown
        for part in key.split("."):
            value = getattr(value, part)
        row(key, default if cfg is None else value, desc)
        if key == "algorithm.name":  # the chosen algorithm's own keys
            for okey, odefault, odesc in option_rows(shown.algorithm.name):
                row(okey, odefault if cfg is None else getattr(options, okey.split(".", 1)[1]), odesc)
    console.print(table)
    return 0


def _channels(p: argparse.ArgumentParser) -> None:
    p.add_argument("--channels", "-C", type=int, default=16, help="width at which to count parameters (default 16)")
    p.add_argument("--plugins", nargs="*", default=[], help="modules or .py files registering more ops")


@command("ops", "list the registered ops with their parameter counts", _channels)
def cmd_ops(args: argparse.Namespace) -> int:
    from nasp.ops import OPS, op_param_count
    from nasp.plugins import load_plugins

    load_plugins(args.plugins)
    table = Table("op", f"params (C={args.channels})", "params, stride 2", "what", box=None, pad_edge=False)
    for name in OPS.names():
        table.add_row(name, f"{op_param_count(name, args.channels, 1):,}", f"{op_param_count(name, args.channels, 2):,}",
                      OPS.get(name).doc)
    console.print(table)
    return 0


def _plugins(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plugins", nargs="*", default=[], help="modules or .py files to import first")


@command("spaces", "list the search spaces and their ops per cell type", _plugins)
def cmd_spaces(args: argparse.Namespace) -> int:
    from nasp.plugins import load_plugins
    from nasp.spaces import get_space, list_spaces

    load_plugins(args.plugins)
    table = Table("space", "cell", "nodes", "ops", box=None, pad_edge=False)
    for name in list_spaces():
        space = get_space(name)
        for ct, cell in space.cells.items():
            table.add_row(name, ct, f"{cell.n_nodes} x {cell.inputs_per_node} in", ", ".join(cell.ops))
    console.print(table)
    return 0


@command("algorithms", "list the search algorithms", _plugins)
def cmd_algorithms(args: argparse.Namespace) -> int:
    from nasp.algorithms import ALGORITHMS
    from nasp.plugins import load_plugins

    load_plugins(args.plugins)
    table = Table("algorithm", "what", "algorithm.* keys (default)", box=None, pad_edge=False)
    for name in ALGORITHMS.names():
        fields = ALGORITHMS.get(name).Options.model_fields
        keys = ", ".join(f"{k}={f.get_default(call_default_factory=True)!r}" for k, f in fields.items())
        table.add_row(name, ALGORITHMS.doc(name), keys)
    console.print(table)
    return 0


@command("datasets", "list the datasets", _plugins)
def cmd_datasets(args: argparse.Namespace) -> int:
    from nasp.data import DATASETS
    from nasp.plugins import load_plugins

    load_plugins(args.plugins)
    table = Table("dataset", "what", box=None, pad_edge=False)
    for name in DATASETS.names():
        table.add_row(name, DATASETS.doc(name))
    console.print(table)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from nasp.cli import bench as _bench  # noqa: F401  (registers `bench`)
    from nasp.cli import evaluate as _evaluate  # noqa: F401  (registers `eval`, `test`, `genotypes`)
    from nasp.cli import study as _study  # noqa: F401  (registers `study`)
    from nasp.cli import viz as _viz  # noqa: F401  (registers `render`, `plot`, `show`)

    parser = argparse.ArgumentParser(prog="nasp", description="Neural architecture search with proximal iterations "
                                     "(NASP, AAAI 2020) and its baselines.")
    sub = parser.add_subparsers(dest="command", metavar="command")
    for name, (help, setup, fn) in COMMANDS.items():
        p = sub.add_parser(name, help=help, description=help)
        setup(p)
        p.set_defaults(handler=fn)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Every user error, argparse's included, is one line on stderr and exit code 2."""
    parser = build_parser()

    def one_line_errors(p: argparse.ArgumentParser) -> None:
        def error(message: str) -> NoReturn:
            err_console.print(Text.assemble((f"{p.prog}: error: ", "bold red"), f"{message} (see `{p.prog} --help`)"),
                              soft_wrap=True)
            sys.exit(2)

        p.error = error  # type: ignore[method-assign]
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    one_line_errors(sub)

    one_line_errors(parser)  # argparse's own errors (a missing or malformed argument) as one line, like ours
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return args.handler(args)
    except NaspError as exc:
        err_console.print(Text.assemble((f"nasp {args.command}: error: ", "bold red"), str(exc)), soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        return 130


if __name__ == "__main__":  # `python -m nasp.cli.main`: run the imported module, where every command registers
    from nasp.cli.main import main as _main

    sys.exit(_main())
