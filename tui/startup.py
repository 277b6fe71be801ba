"""Start-up: the app paints its first screen at once and imports torch and nasp's registries behind it.

``import nasp_tui.app`` imports neither torch nor a module that imports it (nasp.ops, nasp.spaces,
nasp.algorithms, nasp.runfolder, ...): on a busy machine torch alone took 17 s, a blank screen. The app
calls ``defer`` before its first screen is built and ``begin`` after it is drawn; one background thread
then imports ``HEAVY``. While that runs (``loading()``), the setup form is built from the config schema
alone and shows "loading" where it needs a registry (choice lists, the algorithm's options, the
check), and code that needs a heavy module first calls ``wait`` (a screen switch before the load is
done waits for it instead of importing on the UI thread). After it, every screen and the genotype
editor's parameter count find their modules imported: no first switch stalls on a cold import.

The state is the process's (modules are imported once per process). When torch is already imported
(an app started from a program that uses torch, the test suite), there is nothing slow to hide:
``defer`` does nothing and the modules are imported where they are first needed, as before.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import threading

# what the screens, the form's registries and the editor's parameter count import (torch first: the slow one)
HEAVY = ("torch", "nasp.ops", "nasp.spaces", "nasp.algorithms", "nasp.data", "nasp.search_run", "nasp.runfolder",
         "nasp.genotypes", "nasp.trainer.events", "nasp.viz.text", "nasp.viz.read", "nasp.evaluation.config",
         "nasp.evaluation.recurrent", "nasp.model.budget", ".genoedit", ".runs", ".render", ".screens.live",
         ".screens.runs", ".screens.genotype", ".screens.compare")

_lock = threading.Lock()
_done = threading.Event()
_state = "idle"  # idle (nothing deferred: import where needed), pending (deferred, thread not started), running, done
_thread: threading.Thread | None = None


def defer() -> bool:
    """Declare the heavy imports deferred (before the first screen is built); False when torch is imported
    already, so nothing is deferred."""
    global _state
    with _lock:
        if _state == "idle" and "torch" not in sys.modules:
            _state = "pending"
        return _state in ("pending", "running")


def begin() -> None:
    """Start the background import (once per process; after the first screen is drawn)."""
    global _state, _thread
    with _lock:
        if _state != "pending":
            return
        _state = "running"
        _thread = threading.Thread(target=_load, name="nasp-tui-imports", daemon=True)
        _thread.start()


def _load() -> None:
    global _state
    try:
        for name in HEAVY:
            # a module that fails fails again where it is needed, with its message there
            with contextlib.suppress(Exception):
                importlib.import_module(name, __package__)
    finally:
        with _lock:
            _state = "done"
        _done.set()


def loading() -> bool:
    """True while the heavy modules are deferred and not all imported yet: the UI thread must not import them
    (it would wait on the loader's import locks); show "loading" or call ``wait``."""
    return _state in ("pending", "running")


def wait() -> None:
    """Block until the deferred imports are done (starting them if they were not yet): for an action that cannot
    go on without them, e.g. the first switch to a screen before the load finished."""
    begin()
    if _state == "running":
        _done.wait()
