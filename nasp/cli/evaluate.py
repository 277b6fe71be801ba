"""``nasp eval`` (train a genotype's network from scratch), ``nasp test`` (score a saved model) and
``nasp genotypes`` (the named genotypes)."""

from __future__ import annotations

import argparse
import json

from rich.table import Table

from nasp.cli.common import command, console, exit_code, fit, resume_args


def _eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="genotype=<run folder | genotype .json | name | \"Genotype(...)\"> and config overrides, e.g. "
                   "epochs=10; a search's run folder brings its data (and, for the embedded data, the eval-cpu preset)")
    p.add_argument("--config", "-c", metavar="FILE|PRESET", help="YAML file or preset name, e.g. eval-cifar10 "
                   "(`nasp presets`; overrides still apply on top)")
    p.add_argument("--dry-run", action="store_true", help="print the network's parameter count and exit")


@command("eval", "train a genotype's network from scratch and test it: nasp eval genotype=DARTS_V2", _eval_args)
def cmd_eval(args: argparse.Namespace) -> int:
    from nasp.config import parse_overrides
    from nasp.evaluation import EvalConfig, dry_run, eval_config, resume_eval, start_eval

    tree = parse_overrides(args.overrides, EvalConfig)
    if "resume" in tree and tree["resume"] != "auto":
        trainer = resume_eval(tree["resume"], plugins=resume_args(tree, args.config, "--dry-run" if args.dry_run else ""),
                              change_world_size=bool(tree.get("change_world_size")))
    else:
        cfg = eval_config(args.overrides, args.config)
        if args.dry_run:
            info = dry_run(cfg)
            if info.get("kind") == "rnn":
                console.print(f"{info['genotype']} ({info['space']}), recurrent language model, emsize {info['emsize']}, "
                              f"nhid {info['nhid']}, vocabulary {info['vocab_size']:,} ({info['data']}):")
                console.print(f"{info['params'] / 1e6:.2f}M parameters ({info['params']:,})")
                return 0
            console.print(f"{info['genotype']} ({info['space']}), {info['network']} network, C={info['channels']}, "
                          f"{info['layers']} cells, {info['num_classes']} classes:")
            console.print(f"{info['params'] / 1e6:.2f}M parameters ({info['params']:,}) without the auxiliary head; "
                          f"{info['params_with_aux'] / 1e6:.2f}M with it")
            return 0
        trainer = start_eval(cfg)

    end = fit(trainer)
    if end.status != "finished":
        return exit_code(end)
    if "test_ppl" in end.result:
        r = end.result
        console.print(f"{trainer.task.cfg.genotype}: {r['params'] / 1e6:.2f}M params; validation perplexity "
                      f"{r['valid_ppl']:.2f} (epoch {r['best_epoch']}), test perplexity {r['test_ppl']:.2f}; "
                      f"{r['elapsed_s']:.0f} s; run folder {end.run_dir}")
        return 0
    acc, top5 = end.result["test_acc"], end.result["test_top5"]
    assert acc is not None and top5 is not None
    console.print(f"{trainer.task.cfg.genotype}: {end.result['params'] / 1e6:.2f}M params; test accuracy {100 * acc:.2f}% "
                  f"(top-1 error {100 * (1 - acc):.2f}%, top-5 error {100 * (1 - top5):.2f}%); "
                  f"{end.result['elapsed_s']:.0f} s; run folder {end.run_dir}")
    return 0


def _test_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="best.pt or last.pt of an eval run, or the run folder (uses last.pt)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="e.g. data.root=... device=cpu eval_batch_size=256")
    p.add_argument("--best", action="store_true", help="with a run folder: score best.pt instead of last.pt")
    p.add_argument("--json", action="store_true", help="print one JSON object")


@command("test", "score a model saved by `nasp eval` on the test split: nasp test runs/<eval run>", _test_args)
def cmd_test(args: argparse.Namespace) -> int:
    from nasp.evaluation import test_model

    res = test_model(args.model, args.overrides, "best" if args.best else "last")
    if args.json:
        print(json.dumps(res))
        return 0
    if res.get("kind") == "rnn":
        console.print(f"{res['model']} (epoch {res['epoch']}, {res['params'] / 1e6:.2f}M params) on {res['tokens']:,} test "
                      f"tokens of {res['dataset']}: perplexity {res['test_ppl']:.2f} (loss {res['test_loss']:.4f}); "
                      f"{res['seconds']:.1f} s on {res['device']}")
        return 0
    console.print(f"{res['model']} (epoch {res['epoch']}, {res['params'] / 1e6:.2f}M params) on {res['images']} test images "
                  f"of {res['dataset']}: accuracy {100 * res['test_acc']:.2f}% (top-1 error "
                  f"{100 * (1 - res['test_acc']):.2f}%, top-5 error {100 * (1 - res['test_top5']):.2f}%), "
                  f"loss {res['test_loss']:.4f}; {res['seconds']:.1f} s on {res['device']}")
    return 0


def _genotypes_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", nargs="?", choices=["list", "export"], default="list",
                   help="list (default) or export one genotype: nasp genotypes export <run | file | name> --format darts")
    p.add_argument("source", nargs="?", help="export: a run folder, genotype .json file, name, \"Genotype(...)\" or "
                   "a NAS-Bench-201 string")
    p.add_argument("--format", choices=["darts", "nb201", "json"], default="darts",
                   help="export: darts (a Genotype(...) string for DARTS-style code), nb201 (a NAS-Bench-201 string "
                   "|op~0|+|op~0|op~1|+...| of a dense cell) or json")
    p.add_argument("--plugins", nargs="*", default=[], help="modules or .py files registering more genotypes")
    p.add_argument("--show", metavar="NAME", help="print one genotype as JSON")


@command("genotypes", "list the named genotypes (genotype=NAME) with their CIFAR parameter counts; export one "
         "as a DARTS string", _genotypes_args)
def cmd_genotypes(args: argparse.Namespace) -> int:
    from nasp.errors import ConfigError
    from nasp.genotypes import GENOTYPES, get_genotype, list_genotypes, read_genotype, user_genotype_dir
    from nasp.genotypes.darts import to_darts
    from nasp.plugins import load_plugins

    load_plugins(args.plugins)
    if args.action == "export":
        if not args.source:
            raise ConfigError("genotypes export: say which genotype: nasp genotypes export <run folder | file | name>")
        geno = read_genotype(args.source)
        if args.format == "nb201":
            from nasp.genotypes.nb201 import to_nb201

            print(to_nb201(geno))
        else:
            print(to_darts(geno) if args.format == "darts" else geno.to_json())
        return 0
    if args.source:
        raise ConfigError(f"genotypes: '{args.source}' given without an action; did you mean "
                          f"`nasp genotypes export {args.source}`?")
    if args.show:
        print(get_genotype(args.show).to_json())
        return 0
    table = Table("genotype", "space", "params (C=36, 20 cells)", "what", box=None, pad_edge=False,
                  caption=f"add your own: {user_genotype_dir()}/<NAME>.json, or register_genotype() in a plugin")
    for name in list_genotypes():
        geno = get_genotype(name)
        doc = GENOTYPES.doc(name) if name in GENOTYPES else "user file"
        space = geno.resolve_space(strict=False)
        if space is not None and space.kind == "rnn":  # a language model: DARTS's PTB sizes
            from nasp.evaluation.recurrent import rnn_param_count

            params = f"{rnn_param_count(geno) / 1e6:.2f}M (PTB, 850 wide)"
        else:
            from nasp.model.budget import genotype_params

            params = f"{genotype_params(geno, 36, 20) / 1e6:.2f}M"
        table.add_row(name, geno.space, params, doc)
    console.print(table)
    return 0


@command("presets", "list the config presets (--config NAME)")
def cmd_presets(args: argparse.Namespace) -> int:
    from nasp.presets import PRESETS_DIR, list_presets, preset_summary

    table = Table("preset", "what", box=None, pad_edge=False, caption=f"files in {PRESETS_DIR}")
    for name in list_presets():
        table.add_row(name, preset_summary(name))
    console.print(table)
    return 0


@command("loggers", "list the loggers (loggers=csv,tensorboard)")
def cmd_loggers(args: argparse.Namespace) -> int:
    import importlib.util

    from rich.markup import escape

    from nasp.trainer.loggers import LOGGERS, REQUIRES

    table = Table("logger", "what", "installed", box=None, pad_edge=False)
    for name in LOGGERS.names():
        module = REQUIRES.get(name, ("", ""))[0]
        ok = not module or importlib.util.find_spec(module) is not None
        table.add_row(name, LOGGERS.doc(name), "yes" if ok else escape(f"no (pip install 'nasp-search[{REQUIRES[name][1]}]')"))
    console.print(table)
    return 0
