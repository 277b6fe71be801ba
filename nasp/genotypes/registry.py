"""The genotype registry and the one function that turns ``genotype=<run folder | file | name>`` into a Genotype."""

from __future__ import annotations

import os
from pathlib import Path

from nasp.errors import GenotypeError
from nasp.genotype import Genotype
from nasp.registry import Registry, did_you_mean

GENOTYPES: Registry[Genotype] = Registry("genotype")


def register_genotype(name: str, genotype: Genotype, *, doc: str = "", overwrite: bool = False) -> Genotype:
    """Make ``genotype`` available as ``genotype=<name>``."""
    GENOTYPES.add(name, genotype, doc=doc, overwrite=overwrite)
    return genotype


def user_genotype_dir() -> Path:
    """Where ``<NAME>.json`` files become named genotypes: $NASP_GENOTYPES or ~/.config/nasp/genotypes."""
    return Path(os.environ.get("NASP_GENOTYPES", Path.home() / ".config" / "nasp" / "genotypes"))


def _user_files() -> dict[str, Path]:
    folder = user_genotype_dir()
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.glob("*.json"))}


def list_genotypes() -> list[str]:
    """Registered names and the user folder's, sorted."""
    return sorted(set(GENOTYPES.names()) | set(_user_files()))


def get_genotype(name: str) -> Genotype:
    """A named genotype (registered, or a file of the user folder); case-insensitive; GenotypeError with a
    did-you-mean. A user file with a registered genotype's name is refused (as a plugin's op with a registered op's
    name is): it never silently replaces DARTS_V2 or NASP."""
    user = _user_files()
    registered = {n.lower(): n for n in GENOTYPES.names()}
    files = {n.lower(): n for n in user}
    if name.lower() in registered and name.lower() in files:
        key = registered[name.lower()]
        raise GenotypeError(f"genotype '{key}' is registered{GENOTYPES.origin(key)} and the file "
                            f"'{user[files[name.lower()]]}' has its name; a file does not replace a registered "
                            f"genotype: rename the file (or give its path)")
    key = registered.get(name.lower(), files.get(name.lower()))
    if key is None:
        names = list_genotypes()
        raise GenotypeError(f"unknown genotype '{name}'.{did_you_mean(name, names)} Known: {', '.join(names)}; "
                            f"or give a run folder or a genotype .json file")
    if key in GENOTYPES:
        return GENOTYPES.get(key)
    try:
        return Genotype.load(user[key])
    except GenotypeError as exc:
        raise GenotypeError(f"genotype '{key}' ({user[key]}): {exc}") from None


def string_form(text: str) -> str | None:
    """Which genotype string ``text`` is meant as: "darts" (``Genotype(...)``), "nb201" (``|op~0|+...|``) or None
    (a name, file or run folder)."""
    from nasp.genotypes.darts import is_darts_string
    from nasp.genotypes.nb201 import is_nb201_string

    return "darts" if is_darts_string(text) else "nb201" if is_nb201_string(text) else None


def parse_string(text: str) -> Genotype:
    """The genotype of a DARTS or NAS-Bench-201 string (``string_form``); never executes it, one GenotypeError line
    when it is not one."""
    from nasp.genotypes.darts import parse_darts
    from nasp.genotypes.nb201 import parse_nb201

    return parse_nb201(text) if string_form(text) == "nb201" else parse_darts(text)


def read_genotype(spec: str | Path | Genotype) -> Genotype:
    """A run folder (its genotype.json), a genotype .json file, a DARTS-style ``Genotype(...)`` string, a
    NAS-Bench-201 string (``|op~0|+|op~0|op~1|+...|``), a genotype's JSON text or a name, checked for structure only
    (viewing and editing need no more; see ``resolve_genotype`` for building)."""
    if isinstance(spec, Genotype):
        return spec
    from nasp.safe_io import exists

    if string_form(str(spec)):
        return parse_string(str(spec))
    if isinstance(spec, str) and spec.lstrip().startswith("{"):  # a genotype's JSON (an in-memory Genotype's config)
        return Genotype.from_json(spec, source="genotype")
    path = Path(spec)
    if exists(path):
        return Genotype.load(path)
    if str(spec).endswith(".json") or os.sep in str(spec):
        raise GenotypeError(f"genotype '{spec}': no such file or run folder")
    return get_genotype(str(spec))


def resolve_genotype(spec: str | Path | Genotype, kinds: tuple[str, ...] = ("cnn",)) -> Genotype:
    """What ``read_genotype`` reads, for building a network: the result fits a space of one of ``kinds`` that is
    registered or stored with it, and every op of that space is registered (GenotypeError, one line, otherwise)."""
    geno = read_genotype(spec)
    space = geno.resolve_space()  # GenotypeError when its space is not registered
    if space.kind not in kinds:
        need = "image networks need a cnn space" if kinds == ("cnn",) else f"this needs a space of kind {' or '.join(kinds)}"
        raise GenotypeError(f"genotype of space '{space.name}' is a {space.kind} cell; {need}")
    geno.check(space)
    space.require_registered_ops(GenotypeError, "genotype of ")
    return geno
