"""nasp-tui's start-up (issue 24, app item 6): the first screen is drawn before torch is imported, keys typed
while it loads land where they were typed, and the first switch to a screen after the load imports nothing.

Each scenario runs the real app under Textual's Pilot in a fresh interpreter (this file run as a script): the
test process has imported torch already, and start-up is about the interpreter that has not. The package is
imported under its installed name, ``nasp_tui``, from this checkout. Where a scenario needs the load to last
while it looks, the loader's ``import torch`` is held (a finder that waits before the real import goes on, as a
slow machine would): what it holds is the import itself, nothing in the app is replaced.
"""

from __future__ import annotations

import asyncio
import importlib.abc
import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_scenario(name: str, tmp_path: Path, timeout: float = 300) -> dict[str, Any]:
    """Run ``name`` in a fresh interpreter; its observations come back as the last line of its output."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    env.pop("TEXTUAL_ANIMATIONS", None)
    out = subprocess.run([sys.executable, __file__, name, str(tmp_path)], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=timeout)
    assert out.returncode == 0, f"scenario {name} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}"
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- the tests ------------------------------------------------------------------------------------


def test_importing_the_app_imports_no_torch(tmp_path):
    seen = run_scenario("import", tmp_path)
    assert seen["package"] == str(REPO / "tui" / "__init__.py")
    assert seen["heavy_imported"] == []
    assert seen["torch"] is False


@pytest.fixture(scope="module")
def held(tmp_path_factory):
    """The default start (the setup form) with the load held, keys typed, the load let go, then F5 F3 F4 F2."""
    return run_scenario("held", tmp_path_factory.mktemp("held"))


def test_first_screen_drawn_before_torch_and_typed_keys_stay_in_their_field(held):
    seen = held
    # the UI thread never imported torch or a module that needs it while the load was held
    assert seen["main_thread_heavy_imports"] == []
    before, after = seen["before"], seen["after"]
    # drawn and usable while torch is still being imported
    assert before["torch"] is False and before["loading"] is True
    assert before["screen"] == "SetupScreen"
    assert before["rows"] > 20 and before["options_note"] is True and before["option_rows"] == []
    assert "loading nasp (torch)" in before["problem"]
    assert before["algorithm_choices"] == 1  # the default alone, until the registry is there
    assert before["focused"] == "f-algorithm-name"
    # keys typed then went to the field focused then, in order
    typed = before["typed_into"]
    assert typed == "f-space-normal"  # two tabs down in the form without the algorithm's options
    assert before["typed_value"] == "skip"
    # the load brings the algorithm's options (above the typed field), the choice lists and the check ...
    assert after["torch"] is True and after["loading"] is False
    assert after["options_note"] is False and len(after["option_rows"]) >= 2
    assert after["option_rows_above_typed"] is True
    assert after["algorithm_choices"] > 1
    # ... and the focus stays: keys typed after it go on in the same field
    assert after["focused"] == typed
    assert after["typed_value"] == "skip_connect"
    assert after["changed_inputs"] == [typed]
    assert after["problem"] == "✓ valid config"
    assert f"{typed[2:].replace('-', '.')}=skip_connect" in after["cmdline"]


def test_switching_after_the_load_imports_nothing(held):
    seen = held
    # the screens were imported by the load (not before it: torch was held), none by the switch
    assert seen["before"]["screens_imported"] == []
    switched = seen["switched"]
    assert switched["screens_imported_at_load"] == ["genotype", "live", "runs"]
    assert [s["screen"] for s in switched["steps"]] == ["GenotypeScreen", "LiveScreen", "RunsScreen", "SetupScreen"]
    for step in switched["steps"]:
        assert step["new_modules"] == [], step


def test_keys_typed_during_the_real_import_land_in_order(tmp_path):
    seen = run_scenario("unheld", tmp_path)
    assert seen["loading_at_first_key"] is True  # the keys were queued while torch was being imported
    # every character in one field, in order, and the focus still there
    assert seen["typed_value"] == "skip_connect"
    assert seen["changed_inputs"] == [seen["focused_after"]]
    assert seen["loading_at_end"] is False and seen["option_rows"] >= 2


def test_a_start_on_the_editor_shows_loading_then_the_genotype(tmp_path):
    seen = run_scenario("genotype", tmp_path)
    assert seen["main_thread_heavy_imports"] == []
    assert seen["before"] == {"screen": "LoadingScreen", "text": "… loading nasp (torch)", "torch": False}
    assert seen["after"]["screen"] == "GenotypeScreen"
    assert seen["after"]["label"] == "DARTS_V2"
    assert seen["after"]["modes"] == ["genotype", "live", "runs", "setup"]  # the loading screen is gone
    assert seen["after"]["params_text"].startswith("parameters: ") and "M (" in seen["after"]["params_text"]
    # the first F2 after it: the whole form at once (options, choices, the check), nothing imported for it
    f2 = seen["f2"]
    assert f2["screen"] == "SetupScreen" and f2["new_modules"] == []
    assert len(f2["option_rows"]) >= 2 and f2["algorithm_choices"] > 1 and f2["problem"] == "✓ valid config"


def test_a_config_opened_at_start_shows_before_the_load_and_its_options_after(tmp_path):
    seen = run_scenario("config", tmp_path)
    assert seen["main_thread_heavy_imports"] == []
    before, after = seen["before"], seen["after"]
    assert before["torch"] is False and before["screen"] == "SetupScreen"
    assert before["algorithm"] == "darts-1st" and before["inputs"]["f-epochs"] == "2"
    assert before["option_rows"] == [] and "algorithm.init=0.01" in before["cmdline"]
    assert "row-f-algorithm-init" in after["option_rows"] and after["inputs"]["f-algorithm-init"] == "0.01"
    assert after["inputs"]["f-epochs"] == "2" and after["problem"] == "✓ valid config"
    assert after["focused"] == before["focused"] == "f-algorithm-name"


def test_a_burst_of_keys_follows_the_focus_each_tab_moves(tmp_path):
    """Keys read together (typed during any stall, not only the start-up's) reach the field each tab led to: in this
    process (torch imported, nothing deferred), queued at once as a terminal delivers them after a stall (a field
    reached by tab has its text selected: end goes past it)."""
    from textual.widgets import Input

    from tui.app import NaspApp

    async def body() -> dict[str, str]:
        app = NaspApp(runs_dir=tmp_path / "runs")
        async with app.run_test(size=(100, 40)) as pilot:
            app.screen.query_one("#f-space-name").focus()
            await pilot.pause()
            _type_now(app, ["tab", *"skip_connect", "tab", *"max_pool_3x3", "shift+tab", "end", *",none"])
            await _until(pilot, lambda: app.screen.query_one("#f-space-normal", Input).value.endswith("none"),
                         "the keys", 30, fail=False)
            return {w.id: w.value for w in app.screen.query(Input) if w.id in ("f-space-normal", "f-space-reduce")} | {
                "focused": app.focused.id if app.focused else ""}

    seen = asyncio.run(body())
    assert seen == {"f-space-normal": "skip_connect,none", "f-space-reduce": "max_pool_3x3", "focused": "f-space-normal"}


# --- the scenarios (run in a fresh interpreter) -----------------------------------------------------


def _import_package() -> Any:
    """``nasp_tui`` from this checkout (the editable install may point at another), as the console script has it."""
    spec = importlib.util.spec_from_file_location("nasp_tui", REPO / "tui" / "__init__.py",
                                                  submodule_search_locations=[str(REPO / "tui")])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["nasp_tui"] = module
    spec.loader.exec_module(module)
    return module


def _heavy_names() -> list[str]:
    from nasp_tui import startup

    return [importlib.util.resolve_name(n, "nasp_tui") if n.startswith(".") else n for n in startup.HEAVY]


class HeldImport(importlib.abc.MetaPathFinder):
    """Holds the loader thread's ``import torch`` until ``release``; notes any heavy import the UI thread starts
    meanwhile (and lets the load go on then, so such a bug fails the test instead of hanging it)."""

    def __init__(self, heavy: list[str]) -> None:
        self.heavy = set(heavy)
        self.reached = threading.Event()
        self.released = threading.Event()
        self.on_main: list[str] = []

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if not self.released.is_set():
            if threading.current_thread() is threading.main_thread():
                if fullname in self.heavy:
                    self.on_main.append(fullname)
                    self.released.set()
            elif fullname == "torch":
                self.reached.set()
                self.released.wait(120)
        return None  # the real finders import it


async def _until(pilot: Any, condition: Any, what: str, timeout: float = 180.0, fail: bool = True) -> None:
    t0 = time.monotonic()
    while not condition():
        if time.monotonic() - t0 > timeout:
            if not fail:
                return  # (the caller reports what it sees)
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await pilot.pause(0.05)


def _form(app: Any) -> dict[str, Any]:
    """What the setup form shows."""
    from textual.widgets import Input, Select

    screen = app.screen
    rows = [r.id for r in screen.query(".row")]
    return {
        "screen": type(screen).__name__,
        "rows": len(rows),
        "option_rows": [r for r in rows if r.startswith("row-f-algorithm-") and r != "row-f-algorithm-name"],
        "options_note": bool(screen.query("#options-loading")),
        "problem": str(screen.query_one("#problem").render()),
        "cmdline": str(screen.query_one("#cmdline").render()),
        "algorithm_choices": len(screen.query_one("#f-algorithm-name", Select)._options),
        "focused": app.focused.id if app.focused is not None else None,
        "inputs": {w.id: w.value for w in screen.query(Input)},
        "torch": "torch" in sys.modules,
    }


def _new_modules(before: set[str]) -> list[str]:
    """Modules of nasp, the app and torch imported since ``before`` (a cold import on the UI thread)."""
    return sorted(m for m in set(sys.modules) - before if m.split(".")[0] in ("nasp", "nasp_tui", "torch"))


def _screens_imported() -> list[str]:
    return sorted(m for m in ("live", "runs", "genotype") if f"nasp_tui.screens.{m}" in sys.modules)


def scenario_import(tmp: Path) -> dict[str, Any]:
    package = _import_package()
    import nasp_tui.app  # noqa: F401

    return {"package": package.__file__, "torch": "torch" in sys.modules,
            "heavy_imported": [n for n in _heavy_names() if n in sys.modules]}


async def _type_then_load(app: Any, pilot: Any, release: Any) -> dict[str, Any]:
    """Tab twice and type 'skip' while nasp loads; let the load finish; type '_connect'."""
    from nasp_tui import startup

    before = _form(app)
    before["loading"] = startup.loading()
    await pilot.press("tab", "tab", *"skip")
    before["typed_into"] = app.focused.id
    before["typed_value"] = app.focused.value
    release()
    await _until(pilot, lambda: not startup.loading(), "the background imports")
    await _until(pilot, lambda: not app.screen.query("#options-loading"), "the algorithm's options")
    await pilot.pause()
    await pilot.press(*"_connect")
    await pilot.pause()
    after = _form(app)
    after["loading"] = startup.loading()
    after["typed_value"] = app.focused.value
    after["changed_inputs"] = sorted(k for k, v in after["inputs"].items() if before["inputs"].get(k, v) != v)
    ids = [w.id for w in app.screen.query(".row")]
    typed_row = "row-" + before["typed_into"]
    after["option_rows_above_typed"] = bool(after["option_rows"]) and typed_row in ids and all(
        ids.index(r) < ids.index(typed_row) for r in after["option_rows"])
    return {"before": before, "after": after}


async def scenario_held(tmp: Path) -> dict[str, Any]:
    _import_package()
    held = HeldImport(_heavy_names())
    sys.meta_path.insert(0, held)
    from nasp_tui.app import NaspApp

    app = NaspApp(runs_dir=tmp / "runs")
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        await _until(pilot, held.reached.is_set, "the loader to start importing torch")
        screens_before = _screens_imported()
        seen = await _type_then_load(app, pilot, held.released.set)
        seen["before"]["screens_imported"] = screens_before
        # every screen is imported now; switching to each imports nothing more
        switched: dict[str, Any] = {"screens_imported_at_load": _screens_imported(), "steps": []}
        for key in ("f5", "f3", "f4", "f2"):
            modules = set(sys.modules)
            await pilot.press(key)
            await pilot.pause(0.3)
            switched["steps"].append({"key": key, "screen": type(app.screen).__name__,
                                      "new_modules": _new_modules(modules)})
        seen["switched"] = switched
    seen["main_thread_heavy_imports"] = held.on_main
    return seen


def _type_now(app: Any, keys: list[str]) -> None:
    """Keys as a terminal delivers them while the app is busy: all queued at once, none waiting for the one before
    (``pilot.press`` would wait for an idle process after each)."""
    from textual import events
    from textual.keys import _character_to_key

    for key in keys:
        name = key if len(key) > 1 or key.isalnum() else _character_to_key(key)
        event = events.Key(name, "\t" if key == "tab" else key if len(key) == 1 else None)
        event.set_sender(app)
        app._driver.send_message(event)


async def scenario_unheld(tmp: Path) -> dict[str, Any]:
    _import_package()
    from nasp_tui import startup
    from nasp_tui.app import NaspApp
    from textual.widgets import Input

    app = NaspApp(runs_dir=tmp / "runs")
    async with app.run_test(size=(100, 40)) as pilot:
        defaults = {w.id: w.value for w in app.screen.query(Input)}
        loading = startup.loading()
        _type_now(app, ["tab", "tab", *"skip_connect"])
        await _until(pilot, lambda: not startup.loading(), "the background imports")
        await _until(pilot, lambda: not app.screen.query("#options-loading"), "the algorithm's options")
        await _until(pilot, lambda: getattr(app.focused, "value", "") == "skip_connect", "the typed keys", 30, fail=False)
        inputs = {w.id: w.value for w in app.screen.query(Input)}
        rows = [r.id for r in app.screen.query(".row")]
        return {"loading_at_first_key": loading, "focused_after": app.focused.id if app.focused else None,
                "changed_inputs": sorted(k for k, v in inputs.items() if defaults.get(k, v) != v),
                "typed_value": app.focused.value, "loading_at_end": startup.loading(),
                "option_rows": len([r for r in rows if r.startswith("row-f-algorithm-") and r != "row-f-algorithm-name"])}



async def scenario_genotype(tmp: Path) -> dict[str, Any]:
    _import_package()
    held = HeldImport(_heavy_names())
    sys.meta_path.insert(0, held)
    from nasp_tui.app import NaspApp

    app = NaspApp(runs_dir=tmp / "runs", genotype="DARTS_V2")
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        await _until(pilot, held.reached.is_set, "the loader to start importing torch")
        before = {"screen": type(app.screen).__name__, "text": str(app.screen.query_one("#loading").render()),
                  "torch": "torch" in sys.modules}
        held.released.set()
        await _until(pilot, lambda: type(app.screen).__name__ == "GenotypeScreen", "the genotype editor")
        params = lambda: str(app.screen.query_one("#params").render())  # noqa: E731
        await _until(pilot, lambda: params().startswith("parameters: ") and "counting" not in params(),
                     "the parameter count")
        after = {"screen": type(app.screen).__name__, "label": app.genotype_edit.label,
                 "modes": sorted(app._modes), "params_text": str(app.screen.query_one("#params").render())}
        # the first F2 builds the setup form (registries, the check): all imported by the load already
        modules = set(sys.modules)
        await pilot.press("f2")
        await pilot.pause(0.3)
        f2 = _form(app)
        f2["new_modules"] = _new_modules(modules)
    return {"before": before, "after": after, "f2": f2, "main_thread_heavy_imports": held.on_main}


async def scenario_config(tmp: Path) -> dict[str, Any]:
    _import_package()
    held = HeldImport(_heavy_names())
    sys.meta_path.insert(0, held)
    from nasp_tui.app import NaspApp

    config = tmp / "run.yaml"
    config.write_text("algorithm: {name: darts-1st, init: 0.01}\nepochs: 2\n")
    app = NaspApp(runs_dir=tmp / "runs", config=str(config))
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        await _until(pilot, held.reached.is_set, "the loader to start importing torch")
        before = _form(app)
        before["algorithm"] = app.screen.query_one("#f-algorithm-name").value
        held.released.set()
        await _until(pilot, lambda: not app.screen.query("#options-loading"), "the algorithm's options")
        await pilot.pause()
        after = _form(app)
    return {"before": before, "after": after, "main_thread_heavy_imports": held.on_main}


if __name__ == "__main__":
    name, folder = sys.argv[1], Path(sys.argv[2])
    scenario = globals()[f"scenario_{name}"]
    result = scenario(folder)
    if asyncio.iscoroutine(result):
        result = asyncio.run(result)
    print(json.dumps(result))
