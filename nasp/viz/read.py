"""Reading run folders and genotype files for viewing: never imports code named in them.

A run folder's config.json names the ``plugins`` its search imported. Viewing (``nasp render``, ``nasp
show``, ``nasp plot``, the terminal app) must never import them: someone else's run folder is data, and
a plugin is code. Drawing needs only op names and the shape of the space, and both are stored in the
folder: the run_start event (first line of events.jsonl) holds the resolved space, and genotype.json
stores ``space_def`` whenever the space is not the registered one. Everything read here is validated
for structure only (``SearchSpace.model_validate``, ``Genotype.load``): op names must be plain
identifiers, and need not be registered.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from nasp.genotype import Genotype
from nasp.runfolder import RunFolder, RunFolderError
from nasp.spaces import SPACES, SearchSpace, get_space
from nasp.spaces.registry import first_error
from nasp.viz import VizError

MAX_LINE = 4 << 20  # the run_start line holds the config and the space: a few kilobytes

__all__ = ["first_event", "read_genotype", "read_genotype_record", "read_run_space", "space_from_config"]


def first_event(run_dir: str | Path) -> dict[str, Any]:
    """The first record of ``<run_dir>/events.jsonl`` (the run_start event), or {} when it is not readable."""
    return RunFolder(run_dir).first_event(MAX_LINE)


def read_genotype(spec: str | Path) -> tuple[Genotype, Path | None]:
    """A genotype for viewing, from a run folder, a genotype .json file, a registered name, a DARTS-style
    ``Genotype(...)`` string or a NAS-Bench-201 string, with the path it came from (None for a name or string).
    Structure only: its ops need not be registered, and no plugin is imported; every problem is one NaspError line
    naming the file."""
    from nasp.genotypes.registry import parse_string, string_form
    from nasp.safe_io import exists

    text = str(spec)
    if string_form(text):
        return parse_string(text), None
    path = Path(spec)
    if exists(path):
        return Genotype.load(path), path
    if text.endswith(".json") or os.sep in text or (os.altsep and os.altsep in text):
        raise VizError(f"'{spec}': no such genotype file or run folder")
    from nasp.genotypes import get_genotype

    return get_genotype(text), None  # GenotypeError with a did-you-mean for unknown names


def space_from_config(config: dict[str, Any]) -> SearchSpace | None:
    """A run's space rebuilt from its config.json, when that names a registered space (overrides applied,
    structure only); None otherwise (a plugin space or a space file: their definition is not in the config)."""
    section = config.get("space")
    if not isinstance(section, dict):
        return None
    name = section.get("name")
    if not isinstance(name, str) or name not in SPACES:
        return None
    space = get_space(name, registered_ops=False)
    ops = {ct: section[ct] for ct in space.cells if isinstance(section.get(ct), list)}
    try:
        return space.with_ops(registered_ops=False, **ops) if ops else space
    except ValueError as exc:
        raise VizError(f"space of config.json: {exc}") from None


def read_run_space(run_dir: str | Path) -> SearchSpace:
    """The search space of a run folder for viewing, without importing its plugins: the run_start event's
    space, else the space its genotype stores or names, else the registered space its config names.
    VizError (one line) when none of them tells it or what is there is malformed."""
    run_dir = Path(run_dir)
    raw = first_event(run_dir).get("space")
    if raw is not None:
        try:
            return SearchSpace.model_validate(raw)
        except ValidationError as exc:
            raise VizError(f"'{run_dir}': the run_start event's space is invalid: "
                           f"{first_error(exc)}") from None
    tried = ["events.jsonl has no run_start event with a space"]
    if RunFolder(run_dir).genotype_path.is_file():
        geno = Genotype.load(run_dir)  # GenotypeError naming the file when malformed
        space = geno.resolve_space(strict=False)
        if space is not None:
            return space
        tried.append(f"genotype.json names space '{geno.space}', which is not registered, and stores no space_def")
    else:
        tried.append("there is no genotype.json")
    try:
        config = RunFolder(run_dir).read_config()
    except RunFolderError:
        config = None
    space = space_from_config(config) if isinstance(config, dict) else None
    if space is not None:
        return space
    tried.append("config.json names no registered space")
    raise VizError(f"'{run_dir}': cannot tell its search space: {'; '.join(tried)}")


def read_genotype_record(record: Any, where: str) -> Genotype:
    """A genotype stored inside a record (history.jsonl, an event), structure only; VizError naming ``where``."""
    try:
        return Genotype.model_validate(record)
    except ValidationError as exc:
        raise VizError(f"{where}: invalid genotype: {first_error(exc)}") from None
