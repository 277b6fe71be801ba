"""``nasp study``: compare algorithms over seeds (search, then evaluation), resumable; its results table."""

from __future__ import annotations

import argparse

from nasp.cli.common import EXIT_OK, EXIT_STOPPED, command, console, overrides_args


@command("study", "algorithms x seeds, each searched and evaluated: nasp study --config study-cpu "
         "out=DIR (again, or resume=DIR, continues; table=DIR writes the table again)", overrides_args)
def cmd_study(args: argparse.Namespace) -> int:
    from nasp.errors import ConfigError
    from nasp.study import run_study, study_config, write_table

    cfg = study_config(args.overrides, args.config)
    if cfg.table:
        if cfg.resume or args.config is not None or len(args.overrides) > 1:
            raise ConfigError("key 'table': table=DIR writes the table of a study folder and runs nothing; give no "
                              "other keys")
        for p in write_table(cfg.table):  # RunFolderError (one line) when it is not a study folder
            console.print(str(p), highlight=False)
        return EXIT_OK
    if cfg.resume:  # its own config; plugins= only (named again: study.json never makes nasp import code), and how
        from nasp.cli.common import resume_args  # it runs (executor=, study.*, ray.*)
        from nasp.config import parse_overrides
        from nasp.study import StudyConfig
        from nasp.study.config import RUN_TIME_KEYS

        tree = parse_overrides(args.overrides, StudyConfig)
        resume_args({k: v for k, v in tree.items() if k not in RUN_TIME_KEYS}, args.config)
    state = run_study(cfg)
    if state == "finished":
        from nasp.runfolder import StudyFolder

        folder = StudyFolder(cfg.resume or cfg.out)
        console.print(f"study finished: table in {folder.table_md}; figures: nasp plot {folder.path}", highlight=False)
        return EXIT_OK
    from nasp.cli.common import err_console

    err_console.print(f"study stopped; continue it with: nasp study resume={cfg.resume or cfg.out}", highlight=False)
    return EXIT_STOPPED
