"""StudyConfig: algorithms (arms) x seeds, each a search and an evaluation of its genotype (``nasp study``).

An arm is a label plus the search keys that make it (``algorithm.name`` and its options); ``search`` and
``eval`` hold the keys every arm shares (a RunConfig tree, an EvalConfig tree). Every sub-run's config is
built and checked before the first one starts, so a bad key costs no run."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from nasp.config import NAMED_SECTIONS, RunConfig, Section, Threads, build_config, load_yaml, merge, parse_overrides
from nasp.errors import ConfigError
from nasp.evaluation.config import EvalConfig
from nasp.runfolder import check_name


class StudyArm(Section):
    label: str = Field(description="name of the arm in the table and its sub-runs' folders (e.g. nasp, darts-1st)")
    search: dict[str, Any] = Field(default_factory=dict, description="search keys of this arm (over the shared ones), "
                                   "e.g. {algorithm: {name: nasp, eta: 0.1}}")
    seeds: list[int] | None = Field(None, description="seeds of this arm (default: the study's)")
    evaluate: bool = Field(True, description="evaluate the arm's genotypes (false: search only, e.g. for a figure)")

    @field_validator("label")
    @classmethod
    def _plain(cls, v: str) -> str:
        try:
            return check_name(v)
        except ConfigError:
            raise ValueError(f"'{v}' is not a plain name (letters, digits, '.', '_', '+', '-')") from None


class StudyFigures(Section):
    curves: list[str] = Field(["nasp", "darts-1st", "darts-2nd"], description="arms of Fig. 3 (validation accuracy "
                              "against search time)")
    proximal: list[str] = Field(["nasp", "pa-lazy", "pa-standard"], description="arms of Fig. 5 (NASP against PA)")
    op_changes: list[str] = Field(["nasp", "darts-1st"], description="arms of Fig. 4 (op per edge per epoch, first seed)")


class StudyResources(Section):
    """What each sub-run asks of the executor (``executor=ray``; the local executor runs one at a time)."""

    gpus_per_run: float | None = Field(None, ge=0, description="GPUs a sub-run asks of Ray (default: 1 when the cluster "
                                       "has GPUs and the sub-run's device is not cpu, else 0; 0.5 shares a GPU)")
    cpus_per_run: float = Field(1.0, gt=0, description="CPUs a sub-run asks of Ray; its torch threads match (unless "
                                "threads= is given)")
    max_retries: int = Field(3, ge=0, description="times Ray runs a sub-run again whose worker died (it continues from "
                             "its checkpoint)")


_ADDRESS = re.compile(r"^(auto|ray://[^\s:/]+:\d+|[^\s:/]+:\d+)$")


class RayOptions(Section):
    address: str | None = Field(None, description="Ray cluster to join: auto (the one `ray start` runs here), "
                                "ray://HOST:PORT (Ray Client) or HOST:PORT (its head); none: start Ray in this process")

    @field_validator("address")
    @classmethod
    def _address(cls, v: str | None) -> str | None:
        if v is not None and not _ADDRESS.match(v):
            raise ValueError(f"'{v}' is not a Ray address: auto, ray://HOST:PORT or HOST:PORT (or null: start Ray here)")
        return v


RUN_TIME_KEYS = ("executor", "study", "ray")  # how a study runs, not what: not kept in study.json, free on a resume


class StudyConfig(Section):
    out: str = Field("studies/study", description="the study folder (sub-runs, study.json, the table, plots)")
    seeds: list[int] = Field([0, 1, 2], min_length=1, description="seeds of every arm (unless the arm names its own)")
    threads: Threads = Field(None, description="CPU threads of torch (1 is fastest on a shared CPU)")
    search: dict[str, Any] = Field(default_factory=dict, description="search keys shared by every arm (a run config)")
    eval: dict[str, Any] = Field(default_factory=dict, description="evaluation keys of every genotype (an eval config)")
    arms: list[StudyArm] = Field(default_factory=list, description="the algorithms compared, each a label and keys")
    figures: StudyFigures = Field(default_factory=StudyFigures)
    resume: str | None = Field(None, description="study folder to continue (its own study.json config)")
    plugins: list[str] = Field(default_factory=list, description="with resume=: the plugins the study used, named "
                               "again (code is imported only when the user names it, never because study.json does)")
    table: str | None = Field(None, description="study folder whose table to write again from its sub-runs' files")
    executor: Literal["local", "ray"] = Field("local", description="local: one sub-run after another in this process; "
                                              "ray: side by side as Ray tasks (pip install \"nasp-search[ray]\")")
    study: StudyResources = Field(default_factory=StudyResources)
    ray: RayOptions = Field(default_factory=RayOptions)

    @field_validator("arms")
    @classmethod
    def _unique(cls, arms: list[StudyArm]) -> list[StudyArm]:
        labels = [a.label for a in arms]
        twice = sorted({x for x in labels if labels.count(x) > 1})
        if twice:
            raise ValueError(f"arm label '{twice[0]}' is used twice; labels name folders and must differ")
        return arms

    def arm_seeds(self, arm: StudyArm) -> list[int]:
        return list(arm.seeds if arm.seeds is not None else self.seeds)

    def study_tree(self) -> dict[str, Any]:
        """What study.json keeps: the config without the one-off keys (resume, table, plugins) and those of how it
        runs (executor, study, ray): a study continues under another executor."""
        return self.model_dump(mode="json", exclude={"resume", "table", "plugins", *RUN_TIME_KEYS})

    def run_time_tree(self) -> dict[str, Any]:
        """The keys of how the study runs (executor, study.*, ray.*), to carry over to a resumed study's config."""
        return self.model_dump(mode="json", include=set(RUN_TIME_KEYS))

    def used_plugins(self) -> list[str]:
        """Every plugin a sub-run of this study imports: search.plugins, eval.plugins and the arms' own."""
        trees = [self.search, self.eval, *(a.search for a in self.arms)]
        return list(dict.fromkeys(str(p) for t in trees for p in (t.get("plugins") or [])))

    def with_plugins(self, plugins: list[str]) -> StudyConfig:
        """This study with ``plugins`` as every sub-run's plugins (a resume: the ones the user named again)."""
        def put(tree: dict[str, Any]) -> dict[str, Any]:
            return {**tree, "plugins": list(plugins)} if "plugins" in tree or plugins else tree

        arms = [a.model_copy(update={"search": {k: v for k, v in a.search.items() if k != "plugins"}})
                for a in self.arms]
        return self.model_copy(update={"search": put(self.search), "eval": put(self.eval), "arms": arms,
                                       "plugins": list(plugins)})


SHARED_FIXED = ("out", "name", "seed", "resume")  # set by the study for each sub-run


def _named(tree: dict[str, Any]) -> dict[str, Any]:
    """``algorithm: nasp`` as ``algorithm: {name: nasp}`` (likewise space, data), as in a run's YAML file."""
    return {k: {"name": v} if k in NAMED_SECTIONS and isinstance(v, str) else v for k, v in tree.items()}


def search_tree(cfg: StudyConfig, arm: StudyArm, seed: int, out: Path) -> dict[str, Any]:
    """The config tree of arm ``arm``'s search with ``seed``, its folder ``out/<label>-s<seed>`` (what a sub-run
    builds its RunConfig from, in this process or another)."""
    for section, name in ((cfg.search, "search"), (arm.search, f"arms[{arm.label}].search")):
        fixed = [k for k in SHARED_FIXED if k in section]
        if fixed:
            raise ConfigError(f"key '{name}.{fixed[0]}': the study sets it for each sub-run; leave it out")
    return merge(merge(_named(cfg.search), _named(arm.search)), {"seed": seed, "out": str(out), "name": f"{arm.label}-s{seed}"})


def search_config(cfg: StudyConfig, arm: StudyArm, seed: int, out: Path) -> RunConfig:
    """The RunConfig of that search (``search_tree``, checked)."""
    tree = search_tree(cfg, arm, seed, out)
    try:
        return build_config(tree, RunConfig)
    except ConfigError as exc:
        raise ConfigError(f"arm '{arm.label}' (search): {exc}") from None


def eval_tree(cfg: StudyConfig, arm: StudyArm, seed: int, genotype: Path, out: Path) -> dict[str, Any]:
    """The config tree of the evaluation of that search's genotype (its run folder ``genotype``)."""
    fixed = [k for k in (*SHARED_FIXED, "genotype") if k in cfg.eval]
    if fixed:
        raise ConfigError(f"key 'eval.{fixed[0]}': the study sets it for each sub-run; leave it out")
    extra: dict[str, Any] = {"genotype": str(genotype), "seed": seed, "out": str(out), "name": f"{arm.label}-s{seed}"}
    if cfg.threads is not None and "threads" not in cfg.eval:
        extra["threads"] = cfg.threads
    return merge(cfg.eval, extra)


def eval_config(cfg: StudyConfig, arm: StudyArm, seed: int, genotype: Path, out: Path) -> EvalConfig:
    """The EvalConfig of that evaluation (``eval_tree``, checked)."""
    tree = eval_tree(cfg, arm, seed, genotype, out)
    try:
        return build_config(tree, EvalConfig)
    except ConfigError as exc:
        raise ConfigError(f"arm '{arm.label}' (eval): {exc}") from None


def study_config(overrides: list[str], config_file: str | None = None) -> StudyConfig:
    """A YAML study preset (optional) with top-level ``key=value`` overrides (out=, seeds=, threads=...)."""
    tree = load_yaml(config_file, StudyConfig) if config_file is not None else {}
    return build_config(merge(tree, parse_overrides(overrides, StudyConfig)), StudyConfig)
