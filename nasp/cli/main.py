"""The ``nasp`` command. User errors become one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from rich.table import Table
from rich.text import Text

from nasp.cli.common import (
    COMMANDS,
    EXIT_OK,
    EXIT_STOPPED,
    command,
    config_from_args,
    console,
    err_console,
    exit_code,
    fit,
    overrides_args,
    report,
    resume_args,
    setup_logging,
)
from nasp.errors import NaspError


@command("run", "run a search: nasp run algorithm=nasp space=cnn12 epochs=1", overrides_args)
def cmd_run(args: argparse.Namespace) -> int:
    from nasp.config import parse_overrides
    from nasp.search_run import resume_run, start_run

    tree = parse_overrides(args.overrides)
    if "resume" in tree and tree["resume"] != "auto":
        trainer = resume_run(tree["resume"], plugins=resume_args(tree, args.config),
                             change_world_size=bool(tree.get("change_world_size")))
    else:
        trainer = start_run(config_from_args(args))
    end = fit(trainer)
    if end.status == "finished":
        acc, ppl = end.result.get("val_acc"), end.result.get("val_ppl")
        score = f" (validation perplexity {ppl:.1f})" if ppl is not None else (
            f" (validation accuracy {acc:.3f})" if acc is not None else "")
        console.print(f"genotype: {trainer.folder.genotype_path}{score}")
    return exit_code(end)


def _config_args(p: argparse.ArgumentParser) -> None:
    overrides_args(p)
    p.add_argument("--format", choices=["table", "yaml"], default="table",
                   help="yaml: a full config file to start from (every key, the algorithm's options included), e.g. "
                   "`nasp config --format yaml > my.yaml; nasp run --config my.yaml`")


@command("config", "print every config key with its default and meaning (--format yaml: a config file)", _config_args)
def cmd_config(args: argparse.Namespace) -> int:
    from nasp.algorithms import algorithm_options, option_rows, with_algorithm_options
    from nasp.config import RunConfig, dump_yaml, iter_keys
    from nasp.search_run import resolve_space, with_space_defaults

    cfg = config_from_args(args) if args.overrides or args.config is not None else None
    base = cfg if cfg is not None else RunConfig()
    algorithm_options(base)  # loads plugins= (a plugin's space), checks the algorithm.* keys against the algorithm's own
    shown = with_space_defaults(base, resolve_space(base))  # the values a run uses: its space kind's defaults filled in
    if args.format == "yaml":
        full = with_algorithm_options(shown)
        meanings = {k: d for k, _, d in [*iter_keys(), *option_rows(full.algorithm.name)]}
        print(dump_yaml(full.model_dump(mode="json"), "nasp run --config FILE [key=value ...]", meanings), end="")
        return 0
    options = algorithm_options(shown)
    table = Table("key", "default" if cfg is None else "value", "meaning", box=None, pad_edge=False)

    def row(key: str, value: Any, desc: str) -> None:
        table.add_row(key, repr(value) if isinstance(value, str) else str(value), desc)

    for key, _default, desc in iter_keys():
        value: Any = shown
        for part in key.split("."):
            value = getattr(value, part)
        row(key, value, desc)
        if key == "algorithm.name":  # the chosen algorithm's own keys
            for okey, _odefault, odesc in option_rows(shown.algorithm.name):
                row(okey, getattr(options, okey.split(".", 1)[1]), odesc)
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
            shape = "every earlier node" if cell.all_inputs else f"{cell.inputs_per_node} in"
            table.add_row(name, ct, f"{cell.n_nodes} x {shape}", ", ".join(cell.ops))
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
    from nasp.data import CORPORA, DATASETS
    from nasp.plugins import load_plugins

    load_plugins(args.plugins)
    table = Table("dataset", "what", box=None, pad_edge=False)
    for name in DATASETS.names():
        table.add_row(name, DATASETS.doc(name))
    for name in CORPORA.names():  # text, for recurrent cells
        table.add_row(name, f"text corpus: {CORPORA.doc(name)}")
    console.print(table)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from pathlib import Path

    from nasp import version
    from nasp.cli import bench as _bench  # noqa: F401  (registers `bench`)
    from nasp.cli import evaluate as _evaluate  # noqa: F401  (registers `eval`, `test`, `genotypes`)
    from nasp.cli import study as _study  # noqa: F401  (registers `study`)
    from nasp.cli import viz as _viz  # noqa: F401  (registers `render`, `plot`, `show`)

    parser = argparse.ArgumentParser(prog="nasp", description="Neural architecture search with proximal iterations "
                                     "(NASP, AAAI 2020) and its baselines.")
    parser.add_argument("--version", action="version", version=f"nasp {version.__version__} from {Path(version.__file__).parent}")
    sub = parser.add_subparsers(dest="command", metavar="command")
    for name, (help, setup, fn) in COMMANDS.items():
        p = sub.add_parser(name, help=help, description=help)
        setup(p)
        p.set_defaults(handler=fn)
    return parser


def parse_anywhere(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Options anywhere on the line: ``key=value`` words that follow an option (``--dry-run epochs=1``) join
    the command's overrides, in their order; anything else left over is argparse's one-line error."""
    args, rest = parser.parse_known_args(argv)
    words = [w for w in rest if "=" in w and not w.startswith("-")]
    if words and isinstance(getattr(args, "overrides", None), list):
        args.overrides.extend(words)
        rest = [w for w in rest if w not in words]
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return args


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
    from nasp import distributed

    if not distributed.is_main():  # under torchrun rank 0 alone prints (a failure anywhere included)
        console.quiet = err_console.quiet = True
    args = parse_anywhere(parser, list(sys.argv[1:] if argv is None else argv))
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    setup_logging()
    from nasp.trainer.signals import release_held_signals

    try:
        code = args.handler(args)
    except NaspError as exc:
        return _error(args.command, str(exc))
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        return 130
    except Exception as exc:
        if distributed.current() is None:
            raise
        return _error(args.command, f"{type(exc).__name__}: {exc}")  # e.g. a collective broken by a failed rank
    finally:
        release_held_signals()  # a failed run's line is out
    if code in (EXIT_OK, EXIT_STOPPED):
        distributed.shutdown()
    return code


def _error(command: str, message: str) -> int:
    """One line on stderr, exit code 2; under torchrun the first failing rank's message, printed by rank 0."""
    from nasp import distributed

    message, _ = distributed.settle_failure(message, "error")
    report(command, message)
    return 2


if __name__ == "__main__":  # `python -m nasp.cli.main`
    from nasp.distributed import exit_process

    exit_process(main())
