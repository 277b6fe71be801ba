"""The Python face of nasp: search, evaluate, resume, and what the registries hold.

Each config is given the ways the command line and Python give one, alike and combined (later ones win): a dict
(nested or with dotted keys), a YAML file or a preset's name, a config object, ``key=value`` words, and keyword
overrides (``epochs=1``, ``algorithm="nasp"``, ``data={"limit": 128}``, ``**{"data.limit": 128}``). A bad key or
value is a ``nasp.errors.ConfigError`` naming it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nasp.config import RunConfig
    from nasp.evaluation.config import EvalConfig
    from nasp.genotype import Genotype
    from nasp.trainer import Callback, RunEnd, Trainer


@dataclass
class Result:
    """How a search or an evaluation ended: ``status`` (finished, stopped, failed), its run folder, its final
    numbers (``result``: a search's ``val_acc`` / ``val_ppl``, an evaluation's ``test_acc`` / ``test_ppl``) and
    the error of a failed run."""

    status: str
    run_dir: Path
    result: dict[str, Any]
    error: str | None = None

    @property
    def genotype(self) -> Genotype | None:
        """The run folder's genotype (a search's result, an evaluation's subject); None before it is written."""
        from nasp.genotype import Genotype
        from nasp.runfolder import RunFolder

        path = RunFolder(self.run_dir).genotype_path
        return Genotype.load(path) if path.is_file() else None

    def metrics(self) -> list[dict[str, Any]]:
        """One dict an epoch (metrics.jsonl), in order."""
        from nasp.runfolder import RunFolder

        return RunFolder(self.run_dir).metrics()


def _result(trainer: Trainer, end: RunEnd) -> Result:
    return Result(end.status, Path(trainer.run_dir), dict(end.result), end.error)


def search_config(config: Any = None, *words: str, **overrides: Any) -> RunConfig:
    """The checked config of a search (``nasp run``): from a dict, a YAML file or preset, a config object,
    ``key=value`` words and keyword overrides (see the module's docstring)."""
    import nasp.algorithms  # noqa: F401  (the registered algorithms check algorithm.* keys as the config is built)
    from nasp.config import RunConfig, build_config, config_tree

    return build_config(config_tree(config, words, overrides, RunConfig), RunConfig)


def eval_config(config: Any = None, *words: str, **overrides: Any) -> EvalConfig:
    """The checked config of an evaluation (``nasp eval``), given like ``search_config``; a search's run folder as
    ``genotype`` brings its data (and, for the embedded data without a file, the ``eval-cpu`` preset)."""
    from nasp.config import config_tree
    from nasp.evaluation.config import EvalConfig
    from nasp.evaluation.config import eval_config as build_eval

    if isinstance(config, str | Path) and "=" not in str(config):
        return build_eval(config_tree(None, words, overrides, EvalConfig), config)
    return build_eval(config_tree(config, words, overrides, EvalConfig))


def search(config: Any = None, *words: str, callbacks: Sequence[Callback] = (), console: bool = False,
           **overrides: Any) -> Result:
    """Search an architecture to the end (or a stop, or a failure) and say how it ended; ``result.genotype`` is
    what it found. The config is given like ``search_config``'s; ``callbacks`` hear every event
    (``nasp.Callback``); ``console=True`` prints what ``nasp run`` prints."""
    from nasp.search_run import start_run

    trainer = start_run(search_config(config, *words, **overrides), callbacks=list(callbacks), console=console)
    return _result(trainer, trainer.fit())


def evaluate(genotype: Any = None, config: Any = None, *words: str, callbacks: Sequence[Callback] = (),
             console: bool = False, **overrides: Any) -> Result:
    """Train ``genotype`` from scratch and test it: a ``Genotype`` object, a search's run folder, a genotype .json
    file, a name (``list_genotypes()``) or a DARTS string. The rest of the config is given like
    ``eval_config``'s; ``result.result`` holds ``test_acc`` (``test_ppl`` for a recurrent cell)."""
    from nasp.evaluation import start_eval

    if genotype is not None:
        overrides["genotype"] = genotype
    trainer = start_eval(eval_config(config, *words, **overrides), callbacks=list(callbacks), console=console)
    return _result(trainer, trainer.fit())


def resume(run_dir: str | Path, callbacks: Sequence[Callback] = (), console: bool = False,
           plugins: Sequence[str] = ()) -> Result:
    """Continue a stopped or interrupted search or evaluation from its last good checkpoint, to the end."""
    from nasp.runfolder import RunFolder

    if RunFolder(run_dir).kind() == "eval":
        from nasp.evaluation import resume_eval as go
    else:
        from nasp.search_run import resume_run as go
    trainer = go(run_dir, callbacks=list(callbacks), console=console, plugins=list(plugins))
    return _result(trainer, trainer.fit())


def load_genotype(spec: str | Path) -> Genotype:
    """A genotype from a run folder, a .json file, a name (``list_genotypes()``) or a DARTS string."""
    from nasp.genotypes import read_genotype

    return read_genotype(spec)


def list_loggers() -> list[str]:
    """The logger names ``loggers=`` takes."""
    from nasp.trainer.loggers import LOGGERS

    return LOGGERS.names()


def list_presets() -> list[str]:
    """The config presets ``--config NAME`` (and ``search_config("NAME")``) take."""
    from nasp.presets import list_presets as presets

    return presets()
