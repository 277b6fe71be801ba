"""Named genotypes: the published cells (DARTS_V1, DARTS_V2, NASP) and the user's own.

``genotype=`` anywhere in nasp takes a run folder, a genotype JSON file, a DARTS-style ``Genotype(...)`` string
(``nasp.genotypes.darts``) or a name. Names come from
this registry (``register_genotype``, e.g. in a ``plugins=`` file) and from ``<NAME>.json`` files in
the user folder ($NASP_GENOTYPES, default ~/.config/nasp/genotypes).
"""

from nasp.genotypes import builtin as _builtin  # noqa: F401  (registers the published cells)
from nasp.genotypes.registry import (
    GENOTYPES,
    get_genotype,
    list_genotypes,
    read_genotype,
    register_genotype,
    resolve_genotype,
    user_genotype_dir,
)

__all__ = ["GENOTYPES", "get_genotype", "list_genotypes", "read_genotype",
           "register_genotype", "resolve_genotype", "user_genotype_dir"]
