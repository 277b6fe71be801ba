"""Code the user names: plugin modules (``plugins=``) and the device to run on.

A plugin is code, exactly like an import: it runs with the user's rights. nasp imports one only when
the user names it (``plugins=`` on the command line or in a config they run); viewing a run folder never does.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
import traceback
from pathlib import Path

import torch

from nasp.errors import ConfigError, NaspError
from nasp.registry import Registry


def load_plugins(plugins: list[str]) -> None:
    """Import user modules (a module name or a .py path) so their ops, spaces and algorithms register.

    A plugin that fails in any way (an exception, ``sys.exit``, a name clash with a registered op) is a
    ConfigError naming it; what it registered before failing is taken back, so it can be loaded again."""
    for plugin in plugins:
        _load(plugin)


def plugins_loaded(plugins: list[str]) -> bool:
    """Whether every one of ``plugins`` is imported already in this process."""
    return all(_module_name(p) in sys.modules for p in plugins)


def _module_name(plugin: str) -> str:
    if not plugin.endswith(".py"):
        return plugin
    path = Path(plugin)
    resolved = path.resolve()
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:8]
    return f"nasp_plugin_{re.sub(r'[^0-9A-Za-z_]', '_', path.stem)}_{digest}"


def _load(plugin: str) -> None:
    if plugin.endswith(".py"):
        path = Path(plugin)
        if path.is_dir():
            raise ConfigError(f"plugins: '{plugin}' is a folder, not a .py file")
        if not path.is_file():
            raise ConfigError(f"plugins: file '{plugin}' does not exist")
        resolved = path.resolve()
        name = _module_name(plugin)
        if name in sys.modules:
            return
        spec = importlib.util.spec_from_file_location(name, resolved)
        if spec is None or spec.loader is None:
            raise ConfigError(f"plugins: cannot import '{plugin}'")
        loader = spec.loader
        module = importlib.util.module_from_spec(spec)

        def run() -> None:
            sys.modules[name] = module
            loader.exec_module(module)
    else:
        name = plugin
        if name in sys.modules:
            return

        def run() -> None:
            importlib.import_module(plugin)

    snapshot = Registry.snapshot()
    try:
        run()
    except BaseException as exc:
        sys.modules.pop(name, None)
        Registry.restore(snapshot)
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise ConfigError(_failure(plugin, exc)) from None


def _failure(plugin: str, exc: BaseException) -> str:
    """One line saying how ``plugin`` failed to load."""
    if isinstance(exc, SystemExit):
        return (f"plugins: '{plugin}' called sys.exit({exc.code!r}) while loading; a plugin registers ops, spaces or "
                f"algorithms and must not exit")
    if isinstance(exc, NaspError):
        return f"plugins: '{plugin}': {_one_line(str(exc))}"
    if isinstance(exc, ModuleNotFoundError) and not plugin.endswith(".py") and exc.name and \
            plugin.split(".")[0] == exc.name.split(".")[0]:
        return f"plugins: cannot import '{plugin}': {_one_line(str(exc))} (a module name or a .py file)"
    if isinstance(exc, SyntaxError):
        return f"plugins: '{plugin}' failed to load: SyntaxError: {exc.msg} (line {exc.lineno})"
    line = ""
    if plugin.endswith(".py"):
        here = str(Path(plugin).resolve())
        lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == here]
        line = f" (line {lines[-1]})" if lines else ""
    return f"plugins: '{plugin}' failed to load{line}: {type(exc).__name__}: {_one_line(str(exc))}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return resolve_device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"key 'device': '{name}' is not a device; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("key 'device': cuda was asked for but no CUDA device is available (use device=auto or cpu)")
    if device.type == "cuda":
        from nasp.distributed import cuda_device

        device = cuda_device(device)  # under torchrun: LOCAL_RANK's GPU
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("key 'device': mps was asked for but is not available (use device=auto or cpu)")
    return device
