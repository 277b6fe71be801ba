"""Code the user names: plugin modules (``plugins=``) and the device to run on.

A plugin is code, exactly like an import: it runs with the user's rights. nasp imports one only when
the user names it (``plugins=`` on the command line or in a config they run); viewing a run folder never does.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

import torch

from nasp.errors import ConfigError, NaspError


def load_plugins(plugins: list[str]) -> None:
    """Import user modules (a module name or a .py path) so their ops, spaces and algorithms register."""
    for plugin in plugins:
        try:
            if plugin.endswith(".py"):
                path = Path(plugin)
                if not path.is_file():
                    raise ConfigError(f"plugins: file '{plugin}' does not exist")
                name = f"nasp_plugin_{path.stem}"
                if name in sys.modules:
                    continue
                spec = importlib.util.spec_from_file_location(name, path)
                assert spec is not None and spec.loader is not None
                module = importlib.util.module_from_spec(spec)
                sys.modules[name] = module
                spec.loader.exec_module(module)
            else:
                importlib.import_module(plugin)
        except NaspError:
            raise
        except ModuleNotFoundError as exc:
            raise ConfigError(f"plugins: cannot import '{plugin}': {exc}") from None
        except Exception as exc:
            raise ConfigError(f"plugins: '{plugin}' failed to load: {type(exc).__name__}: {exc}") from None


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"key 'device': '{name}' is not a device; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("key 'device': cuda was asked for but no CUDA device is available (use device=auto or cpu)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("key 'device': mps was asked for but is not available (use device=auto or cpu)")
    return device
