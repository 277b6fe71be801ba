"""Config presets shipped with the package: ``--config eval-cpu`` names one, ``--config my.yaml`` reads a file.

A name is looked up only when no file of that name exists, so a file always wins. ``nasp presets`` lists them.
"""

from __future__ import annotations

from pathlib import Path

from nasp.errors import ConfigError
from nasp.registry import did_you_mean

PRESETS_DIR = Path(__file__).resolve().parent


def list_presets() -> list[str]:
    """The presets' names (``eval-cpu``, ``paper-cifar10``, ...)."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def preset_summary(name: str) -> str:
    """The first line of a preset's leading comment (what it is for)."""
    for line in (PRESETS_DIR / f"{name}.yaml").read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").rstrip()
    return ""


def preset_path(spec: str | Path) -> Path:
    """The file ``spec`` names: an existing file, else a preset (``eval-cpu`` or ``eval-cpu.yaml``); ConfigError
    with a did-you-mean when it is neither."""
    path = Path(spec)
    if path.exists():
        return path
    name = path.name.removesuffix(".yaml").removesuffix(".yml")
    if str(path.parent) == "." and name in list_presets():
        return PRESETS_DIR / f"{name}.yaml"
    names = list_presets()
    raise ConfigError(f"--config: '{spec}' is neither a file nor a preset.{did_you_mean(name, names)} "
                      f"Presets: {', '.join(names)}")
