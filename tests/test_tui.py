"""nasp-tui driven as a user drives it: the real app through Textual's Pilot, real searches on the
embedded data, real files. Snapshots (pytest-textual-snapshot) use fixed data so they are stable."""

from __future__ import annotations

import asyncio
import functools
import json
import time
from pathlib import Path

import pytest
import torch
from textual import events
from textual.widgets import Input, Select, Static, TabbedContent

from nasp.config import build_config, load_yaml, parse_overrides
from nasp.errors import ConfigError, GenotypeError
from nasp.genotype import Genotype
from nasp.model.budget import genotype_params
from nasp.spaces import get_space
from tui.app import NaspApp
from tui.livestate import LiveState
from tui.runs import load_run_state
from tui.screens.genotype import GenotypeScreen
from tui.screens.runs import ReplayScreen, RunsScreen
from tui.screens.setup import SetupScreen
from tui.widgets import ChoiceDialog, NavBar

# 1,024 images: 32 steps an epoch, enough that the run is still going while the test presses keys, pauses and
# stops it
TINY = {"data.limit": "1024", "batch_size": "16", "model.channels": "4", "model.layers": "3", "epochs": "1"}

NORMAL = [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("skip_connect", 0), ("conv_3x3", 1),
          ("sep_conv_5x5", 0), ("skip_connect", 2), ("dil_conv_3x3", 1), ("conv_1x1", 3)]
REDUCE = [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("avg_pool_3x3", 0),
          ("max_pool_5x5", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_7x7", 1)]


def sync(test):
    """Run an async test body in its own event loop (no pytest plugin needed)."""

    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        asyncio.run(test(*args, **kwargs))

    return wrapper


def text_of(widget: Static) -> str:
    return str(widget.render())


async def wait_for(pilot, condition, timeout: float = 120.0, what: str = "condition") -> None:
    """Let the app run until ``condition()`` holds (a real search takes seconds on a busy CPU)."""
    t0 = time.monotonic()
    while not condition():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await pilot.pause(0.05)


async def press_while_training(pilot, key: str) -> None:
    """A key press as the terminal driver delivers it (pilot.press waits for an idle process, never the case
    while a search trains in it)."""
    pilot.app.post_message(events.Key(key, key if len(key) == 1 else None))
    await pilot.pause(0.05)


async def fill(pilot, app: NaspApp, values: dict[str, str], typed: bool = False) -> None:
    """Put values in the setup form's inputs: typed key by key, or set as a paste would."""
    for key, value in values.items():
        widget = app.screen.query_one("#f-" + key.replace(".", "-"), Input)
        widget.focus()
        if typed:
            widget.value = ""
            await pilot.press(*value)
        else:
            widget.value = value
    await pilot.pause()


def fixed_genotype(path: Path) -> Path:
    Genotype.from_pairs("cnn12", normal=NORMAL, reduce=REDUCE).save(path)
    return path


def fixed_run(runs: Path, name: str = "20250101-000000-nasp-cnn12", epochs: int = 4, done: int = 4,
              status: str = "finished") -> Path:
    """A run folder with fixed, made-up contents (stable snapshots; the real runs are tested separately)."""
    run = runs / name
    run.mkdir(parents=True)
    space = get_space("cnn12")
    cfg = build_config(parse_overrides([f"epochs={epochs}", "data.limit=64", "model.channels=4", "model.layers=3"]))
    (run / "config.json").write_text(cfg.model_dump_json(indent=2))
    geno = Genotype.from_pairs("cnn12", normal=NORMAL, reduce=REDUCE)
    (run / "genotype.json").write_text(geno.to_json())
    with open(run / "events.jsonl", "w") as f:
        f.write(json.dumps({"event": "run_start", "run_dir": str(run), "config": cfg.model_dump(mode="json"),
                            "space": space.model_dump(), "epochs": epochs, "steps_per_epoch": 2}) + "\n")
    with open(run / "metrics.jsonl", "w") as m, open(run / "history.jsonl", "w") as h:
        for e in range(1, done + 1):
            m.write(json.dumps({"epoch": e, "epochs": epochs, "train_loss": 2.3 - 0.1 * e, "train_acc": 0.1 * e,
                                "val_loss": 2.4 - 0.1 * e, "val_acc": 0.08 * e, "arch_loss": 2.3, "lr": 0.05,
                                "arch_s": 1.0, "weight_s": 0.5, "eval_s": 0.2, "elapsed_s": 1.7 * e,
                                "param_count": 3000 + 100 * e}) + "\n")
            A, disc = {}, {}
            for ct, cell in space.cells.items():
                A[ct] = [[round(((r * 7 + c * 3 + e) % 10) / 10, 2) for c in range(cell.n_ops)] for r in range(cell.n_edges)]
                disc[ct] = [[1.0 if c == (r + e * (r % 3)) % cell.n_ops else 0.0 for c in range(cell.n_ops)]
                            for r in range(cell.n_edges)]
            h.write(json.dumps({"epoch": e, "A": A, "discrete": disc, "genotype": geno.model_dump(mode="json",
                                                                                                 exclude_none=True)}) + "\n")
    (run / "status.json").write_text(json.dumps({"status": status, "epoch": done, "epochs": epochs, "pid": 0,
                                                 "val_acc": 0.08 * done}))
    return run


# --- setup form ---------------------------------------------------------------------------------

@sync
async def test_form_rejects_bad_value_with_cli_message(tmp_path):
    with pytest.raises(ConfigError) as cli:
        build_config(parse_overrides(["epochs=0"]))
    app = NaspApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        await fill(pilot, app, {"epochs": "0"}, typed=True)
        screen = app.screen
        assert isinstance(screen, SetupScreen)
        err = screen.query_one("#field-error", Static)
        assert text_of(err) == str(cli.value).removeprefix("key 'epochs': ")  # one line under the field: its label is beside it
        assert str(cli.value).startswith("key 'epochs': value 0 is invalid")
        form = list(screen.query_one("#form").children)
        assert form.index(err) == form.index(screen.query_one("#row-f-epochs")) + 1  # shown under the field
        assert screen.query_one("#row-f-epochs").has_class("-bad")
        assert str(cli.value) in text_of(screen.query_one("#problem", Static))
        assert text_of(screen.query_one("#cmdline", Static)) == "$ nasp run epochs=0"
        await pilot.press("ctrl+r")
        assert app.process is None  # nothing started
        # a key that needs the registries: the CLI's own check (nasp.search_run.validate)
        await fill(pilot, app, {"epochs": "2", "algorithm.eta": "0.1"})
        screen.query_one("#f-algorithm-name", Select).value = "darts-1st"
        await pilot.pause()
        assert text_of(err) == "key 'algorithm.eta' does not apply to darts-1st (it applies to nasp, pa-lazy, pa-standard)"
        form = list(screen.query_one("#form").children)
        assert form.index(err) == form.index(screen.query_one("#row-f-algorithm-eta")) + 1
        assert not screen.query_one("#row-f-epochs").has_class("-bad")


@sync
async def test_form_saves_and_loads_a_config_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = NaspApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await fill(pilot, app, {"epochs": "5", "model.channels": "6"})
        app.screen.query_one("#f-space-name", Select).value = "cnn7"
        await pilot.pause()
        await pilot.press("ctrl+s")
        dialog = app.screen.query_one("#path", Input)
        dialog.value = "my.yaml"
        await pilot.press("enter")
        await pilot.pause()
    saved = build_config(load_yaml(tmp_path / "my.yaml"))
    assert (saved.epochs, saved.model.channels, saved.space.name) == (5, 6, "cnn7")

    app = NaspApp(config=str(tmp_path / "my.yaml"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert screen.query_one("#f-epochs", Input).value == "5"
        assert screen.query_one("#f-space-name", Select).value == "cnn7"
        assert text_of(screen.query_one("#cmdline", Static)) == "$ nasp run space=cnn7 model.channels=6 epochs=5"


# --- a real search: live updates, key latency, stop, resume ---------------------------------------

@sync
async def test_tiny_search_live_stop_and_resume(tmp_path):
    """Start from the form, see Ā updates arrive, answer keys while training, stop (checkpoint), resume."""
    runs = tmp_path / "runs"
    app = NaspApp(runs_dir=runs)
    async with app.run_test(size=(100, 32)) as pilot:
        await fill(pilot, app, {**TINY, "out": str(runs)})
        await pilot.press("ctrl+r")
        assert app.current_mode == "live"
        await wait_for(pilot, lambda: app.state.updates >= 1, what="the first Ā update")
        state = app.state
        assert state.status == "running" and state.space is not None and state.steps_per_epoch == 32
        assert len(state.discrete["normal"]) == 14 and len(state.discrete["reduce"][0]) == 5
        await pilot.pause(0.2)
        grid = str(app.screen.query_one("#abar").query(Static).first().render())
        assert "normal cell Ā" in grid and "c_{k-2}→0" in grid and "●" in grid

        # keys are answered while the search process trains: each press switches the tab and the tab is redrawn
        # while the run goes on (how fast is measured by benchmarks/tui_latency.py, not asserted here)
        tabs = app.screen.query_one("#tabs", TabbedContent)
        answered = 0
        for i in range(6):
            if not app.running_here or state.step >= state.steps_per_epoch - 6:
                break
            key, want = ("2", "tab-a") if i % 2 == 0 else ("1", "tab-abar")
            app.post_message(events.Key(key, key))
            await wait_for(pilot, lambda want=want: tabs.active == want and app.screen.drawn_tab == want, timeout=10,
                           what=f"the key {key!r} to switch the tab")
            answered += 1
        assert answered >= 3 and app.running_here and state.status == "running"

        # pause: the run holds before its next step (its process gets SIGUSR1), then goes on (SIGUSR2)
        await press_while_training(pilot, "p")
        await wait_for(pilot, lambda: app.state.status == "paused", what="the pause")
        (run,) = [p.parent for p in runs.glob("*/config.json")]
        assert json.loads((run / "status.json").read_text())["status"] == "paused"
        held = app.state.global_step
        await pilot.pause(1.5)  # several steps' time
        assert app.state.global_step == held and app.running_here
        await press_while_training(pilot, "p")
        await wait_for(pilot, lambda: app.state.status == "running" and app.state.global_step > held,
                       what="steps after the resume")

        await press_while_training(pilot, "x")
        await wait_for(pilot, lambda: app.state.status == "stopped" and app.process is None, what="the stop")
        assert not list((runs / ".logs").iterdir())  # a clean stop leaves no log behind
        (run,) = [p.parent for p in runs.glob("*/config.json")]
        assert json.loads((run / "status.json").read_text())["status"] == "stopped"
        stopped = torch.load(run / "checkpoint.pt", weights_only=True)["progress"]
        assert stopped["epoch"] == 0 and 1 <= stopped["step"] < 32

        # resume it from the runs screen (the stopped run comes selected; r asks first): it continues from the
        # checkpoint's step
        await pilot.press("f4")
        assert isinstance(app.screen, RunsScreen) and app.screen.selected().path == run
        await pilot.press("r")
        assert isinstance(app.screen, ChoiceDialog)
        assert f"checkpoint at epoch 1 step {stopped['step']}" in text_of(app.screen.query_one("#details", Static))
        await pilot.press("y")
        before = app.state.updates  # the stopped run's updates, replayed: its curves and Ā go on
        assert before >= 1 and 1 <= len(app.state.step_train_loss) <= stopped["step"]  # (step events are thinned)
        await wait_for(pilot, lambda: app.state.updates > before, what="a step of the resumed run")
        starts = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines() if '"run_start"' in x]
        assert len(starts) == 2 and (starts[1]["start_epoch"], starts[1]["start_step"]) == (0, stopped["step"])
        await press_while_training(pilot, "ctrl+q")  # quitting stops the search first, with a checkpoint
        await wait_for(pilot, lambda: app.state.status == "stopped" and not app.running_here, what="the stop on quit")
        again = torch.load(run / "checkpoint.pt", weights_only=True)["progress"]
        assert again["step"] > stopped["step"]


@sync
async def test_search_failing_in_its_process_shows_why(tmp_path):
    """A config the form accepts but the run cannot use (missing dataset files): the `nasp run` process
    exits with its error, and the live screen shows that message."""
    runs = tmp_path / "runs"
    app = NaspApp(runs_dir=runs)
    async with app.run_test(size=(100, 32)) as pilot:
        await fill(pilot, app, {"out": str(runs), "data.root": str(tmp_path / "no-such-data")})
        app.screen.query_one("#f-data-name", Select).value = "fashion-mnist"
        await pilot.pause()
        await pilot.press("ctrl+r")
        assert app.current_mode == "live" and app.state.status == "starting"
        await wait_for(pilot, lambda: app.state.status == "failed", what="the failure")
        assert "no-such-data" in app.state.message and "Traceback" not in app.state.message
        assert app.process is None and "no-such-data" in text_of(app.screen.query_one("#status", Static))
        (log,) = list((runs / ".logs").iterdir())  # the process's whole output is kept, and named
        assert str(log) in app.state.message and "nasp run: error:" in log.read_text()


@sync
async def test_follow_a_run_of_another_process(tmp_path):
    run = fixed_run(tmp_path / "runs", status="running", done=2)
    app = NaspApp(runs_dir=tmp_path / "runs", attach=str(run))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.current_mode == "live" and len(app.state.history) == 0
        with open(run / "history.jsonl") as f:
            recs = [json.loads(x) for x in f]
        with open(run / "events.jsonl", "a") as f:  # what `nasp run` appends
            f.write(json.dumps({"event": "step", "epoch": 1, "step": 1, "steps_per_epoch": 2, "arch_loss": 2.3,
                                "train_loss": 2.2, "train_acc": 0.1, "arch_s": 1.0, "weight_s": 0.5,
                                "discrete": recs[0]["discrete"]}) + "\n")
            f.write('{"event": "step", "epoch": 1, "st')  # a line still being written
        await wait_for(pilot, lambda: app.state.updates == 1, timeout=10, what="the followed step")
        assert app.state.discrete["normal"] == recs[0]["discrete"]["normal"]


@sync
async def test_evaluation_runs_appear_in_the_run_browser(tmp_path):
    """A real `nasp eval` run folder is listed with its genotype, status and test accuracy; a search is resumable
    from the browser, an evaluation says how to continue it instead."""
    from nasp.evaluation import eval_config, start_eval

    runs = tmp_path / "runs"
    cfg = eval_config(["genotype=NASP", "data=embedded", "epochs=1", "data.limit=32", "data.test_limit=16",
                       "model.layers=2", "model.channels=4", "batch_size=16", f"out={runs}", "name=ev"])
    end = start_eval(cfg, console=False).fit()
    app = NaspApp(runs_dir=runs, mode="runs")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        (info,) = screen.infos
        assert (info.name, info.kind, info.algorithm, info.status) == ("ev", "eval", "eval NASP", "finished")
        assert info.space == "cnn12" and info.val_acc == end.result["test_acc"]
        table = screen.query_one("#runs")
        assert table.row_count == 1 and "eval NASP" in [str(c) for c in table.get_row_at(0)]
        assert not info.resumable
        await pilot.press("enter")  # no architecture history: the browser says so instead of an empty replay
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)


# --- genotype editor ---------------------------------------------------------------------------------

async def choose(pilot, app: NaspApp, select_id: str, value) -> None:
    """Pick ``value`` in a Select with the keyboard (enter opens it, arrows move, enter picks)."""
    select = app.screen.query_one(f"#{select_id}", Select)
    select.focus()
    await pilot.press("enter")
    options = [v for _, v in select._options]
    steps = options.index(value) - options.index(select.value)
    await pilot.press(*(["down"] * steps if steps > 0 else ["up"] * -steps), "enter")
    await pilot.pause()


@sync
async def test_genotype_edit_saved_as_new_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = fixed_genotype(Path("cell.json"))
    before = source.read_bytes()
    app = NaspApp(genotype=str(source))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, GenotypeScreen)
        params_before = await params_counted(pilot, screen)
        drawing_before = text_of(screen.query_one("#drawing", Static))
        await choose(pilot, app, "s-normal-0-0-op", "skip_connect")
        assert app.genotype_edit.genotype.cells["normal"][0][0].op == "skip_connect"
        drawing = text_of(screen.query_one("#drawing", Static))
        assert drawing != drawing_before and drawing.count("skip_connect") == drawing_before.count("skip_connect") + 1
        await wait_for(pilot, lambda: text_of(screen.query_one("#params", Static)) != params_before, timeout=60,
                       what="the new count")
        expected = genotype_params(app.genotype_edit.genotype, 36, 20, 10, 3)
        assert f"({expected:,})" in await params_counted(pilot, screen)
        await pilot.press("ctrl+s")
        assert app.screen.query_one("#path", Input).value == "cell-edit.json"
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("ctrl+t")  # the evaluation command of the saved file
        assert text_of(app.screen.query_one("#cmd", Static)).startswith("$ nasp eval genotype=cell-edit.json")
        await pilot.press("escape")
    assert source.read_bytes() == before
    saved = Genotype.load(tmp_path / "cell-edit.json")
    original = Genotype.load(source)
    assert saved.cells["normal"][0][0].op == "skip_connect" and original.cells["normal"][0][0].op == "sep_conv_3x3"
    assert saved.cells["reduce"] == original.cells["reduce"] and saved.cells["normal"][1:] == original.cells["normal"][1:]


async def params_counted(pilot, screen) -> str:
    """Wait for the editor's parameter count (built in a worker thread) and return its line."""
    def done() -> bool:
        text = text_of(screen.query_one("#params", Static))
        return "(" in text and "counting" not in text

    await wait_for(pilot, done, timeout=60, what="the parameter count")
    return text_of(screen.query_one("#params", Static))


@sync
async def test_invalid_edit_is_refused_with_reason(tmp_path):
    source = fixed_genotype(tmp_path / "cell.json")
    before = source.read_bytes()
    bad = json.loads(source.read_text())
    bad["cells"]["normal"][0][1]["input"] = 0
    with pytest.raises(GenotypeError) as why:
        Genotype.from_json(json.dumps(bad))
    app = NaspApp(genotype=str(source))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await params_counted(pilot, screen)
        await choose(pilot, app, "s-normal-0-1-in", 0)  # node 0 already reads input 0 through its first edge
        message = text_of(screen.query_one("#message", Static))
        assert "repeated" in str(why.value)  # the genotype's own check; the editor says it with the rows' names
        assert message == "refused: normal cell node 0: c_{k-2} already feeds this node (its edge 1); each input feeds a node once"
        assert screen.query_one("#s-normal-0-1-in", Select).value == 1  # the choice went back
        assert app.genotype_edit.genotype == Genotype.load(source) and not app.genotype_edit.modified
        # saving over the original is refused too
        await pilot.press("ctrl+s")
        app.screen.query_one("#path", Input).value = str(source)
        await pilot.press("enter")
        assert "is the genotype being edited" in text_of(screen.query_one("#message", Static))
    assert source.read_bytes() == before


# --- snapshots of every screen (fixed data) ----------------------------------------------------

def live_state() -> LiveState:
    """A LiveState fed with fixed events, as a run on the embedded data would send them."""
    run = Path("runs/20250101-000000-nasp-cnn12")
    space = get_space("cnn12")
    cfg = build_config(parse_overrides(["epochs=4", "data.limit=64", "model.channels=4", "model.layers=3"]))
    state = LiveState()
    state.apply({"event": "run_start", "run_dir": str(run), "config": cfg.model_dump(mode="json"),
                 "space": space.model_dump(), "epochs": 4, "steps_per_epoch": 2, "device": "cpu"}, 0.0)
    hist = [json.loads(x) for x in (run / "history.jsonl").read_text().splitlines()]
    metrics = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    t = 0.0
    for e in range(2):
        for s in (1, 2):
            t += 1.5
            state.apply({"event": "step", "epoch": e + 1, "step": s, "steps_per_epoch": 2, "arch_loss": 2.3 - 0.1 * s,
                         "train_loss": 2.2 - 0.05 * (2 * e + s), "train_acc": 0.05 * (2 * e + s), "arch_s": 1.0,
                         "weight_s": 0.5, "discrete": hist[e]["discrete"] if s == 1 else hist[e + 1]["discrete"]}, t)
        state.apply({"event": "epoch_end", **metrics[e], "A": hist[e]["A"], "discrete": hist[e]["discrete"],
                     "genotype": hist[e]["genotype"]}, t)
    state.apply({"event": "step", "epoch": 3, "step": 1, "steps_per_epoch": 2, "arch_loss": 2.0, "train_loss": 1.9,
                 "train_acc": 0.4, "arch_s": 1.0, "weight_s": 0.5, "discrete": hist[3]["discrete"]}, t + 1.5)
    return state


@pytest.fixture
def fixed_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fixed_run(Path("runs"))
    fixed_run(Path("runs"), name="20250102-000000-darts-1st-cnn12", status="stopped", done=2)
    fixed_genotype(Path("cell.json"))
    return Path("runs")


def test_snapshot_setup(snap_compare, fixed_runs):
    assert snap_compare(NaspApp(runs_dir="runs"), terminal_size=(80, 24))


def test_snapshot_setup_error(snap_compare, fixed_runs):
    async def bad(pilot):
        await fill(pilot, pilot.app, {"batch_size": "1"})
        for widget in pilot.app.screen.query(Input):
            widget.cursor_blink = False  # a blinking cursor would make the picture depend on timing
        await pilot.pause()

    assert snap_compare(NaspApp(runs_dir="runs"), terminal_size=(80, 24), run_before=bad)


@pytest.mark.parametrize("tab", ["1", "3", "4"])
def test_snapshot_live(snap_compare, fixed_runs, tab):
    async def feed(pilot):
        pilot.app.state = live_state()
        await pilot.press(tab)
        await pilot.pause(0.2)

    assert snap_compare(NaspApp(runs_dir="runs", mode="live"), terminal_size=(100, 34) if tab == "3" else (80, 24), run_before=feed)


def test_snapshot_runs(snap_compare, fixed_runs):
    assert snap_compare(NaspApp(runs_dir="runs", mode="runs"), terminal_size=(80, 24))


def test_snapshot_replay(snap_compare, fixed_runs):
    async def check(pilot):
        await pilot.press("enter", "left", "1")
        await pilot.pause()
        assert isinstance(pilot.app.screen, ReplayScreen)

    assert snap_compare(NaspApp(runs_dir="runs", mode="runs"), terminal_size=(80, 24), run_before=check)


def test_snapshot_genotype_editor(snap_compare, fixed_runs):
    async def counted(pilot):
        await params_counted(pilot, pilot.app.screen)

    assert snap_compare(NaspApp(runs_dir="runs", genotype="cell.json"), terminal_size=(80, 24), run_before=counted)


def test_snapshot_help(snap_compare, fixed_runs):
    assert snap_compare(NaspApp(runs_dir="runs", mode="runs"), terminal_size=(80, 24), press=["f1"])


@sync
async def test_mouse_switches_screens_and_tabs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fixed_run(Path("runs"))
    app = NaspApp(runs_dir="runs", mode="live")
    async with app.run_test(size=(80, 24)) as pilot:
        app.state = load_run_state(Path("runs/20250101-000000-nasp-cnn12"))
        nav = app.screen.query_one(NavBar)
        await pilot.click(nav, offset=(len(" nasp  F2 setup  F3 live ") + 2, 0))  # "F4 runs" in the top bar
        assert app.current_mode == "runs"
        await pilot.click("#runs", offset=(2, 1))  # the run's row: opens its replay
        await pilot.pause()
        assert isinstance(app.screen, ReplayScreen)
        await pilot.click("#rtabs Tab#--content-tab-r-a")  # the A heatmap tab
        assert app.screen.query_one("#rtabs", TabbedContent).active == "r-a"


@pytest.mark.parametrize(("args", "message"), [(["--nice", "-3"], "-3 is out of range"),
                                               (["--nice", "x"], "invalid int value: 'x'")])
def test_bad_command_line_is_one_message_exit_2(args, message, capsys):
    from tui.app import main

    with pytest.raises(SystemExit) as exit_:
        main(args)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err and "Traceback" not in err


# --- recurrent cells -----------------------------------------------------------------------------

RNN_CELL = [("sigmoid", 0), ("relu", 1), ("relu", 1), ("identity", 1), ("tanh", 2), ("sigmoid", 5), ("tanh", 3),
            ("relu", 5)]


def fixed_rnn_run(runs: Path, name: str = "20250103-000000-nasp-rnn", epochs: int = 3) -> Path:
    """A recurrent search's run folder with fixed, made-up contents: perplexities, A and Ā of the 36 x 4 cell."""
    run = runs / name
    run.mkdir(parents=True)
    space = get_space("rnn")
    cell = space.cells["recurrent"]
    cfg = build_config(parse_overrides([f"epochs={epochs}", "space=rnn", "data=embedded-text", "rnn.nhid=16"]))
    (run / "config.json").write_text(cfg.model_dump_json(indent=2))
    geno = Genotype.from_pairs("rnn", recurrent=RNN_CELL)
    (run / "genotype.json").write_text(geno.to_json())
    with open(run / "events.jsonl", "w") as f:
        f.write(json.dumps({"event": "run_start", "run_dir": str(run), "config": cfg.model_dump(mode="json"),
                            "space": space.model_dump(), "epochs": epochs, "steps_per_epoch": 2}) + "\n")
    with open(run / "metrics.jsonl", "w") as m, open(run / "history.jsonl", "w") as h:
        for e in range(1, epochs + 1):
            m.write(json.dumps({"epoch": e, "epochs": epochs, "train_loss": 7.0 - 0.3 * e, "train_acc": 0.05 * e,
                                "val_loss": 7.1 - 0.3 * e, "val_acc": 0.04 * e, "val_ppl": round(2000.0 / e, 1),
                                "arch_loss": 7.0, "lr": 20.0, "arch_s": 1.0, "weight_s": 0.5, "eval_s": 0.2,
                                "elapsed_s": 1.7 * e, "param_count": 16000}) + "\n")
            A = [[round(((r * 5 + c * 3 + e) % 10) / 10, 2) for c in range(cell.n_ops)] for r in range(cell.n_edges)]
            disc = [[0.0] * cell.n_ops for _ in range(cell.n_edges)]
            for j, (op, src) in enumerate(RNN_CELL):
                disc[cell.edges.index((src, j + 1))][cell.ops.index(op)] = 1.0
            h.write(json.dumps({"epoch": e, "A": {"recurrent": A}, "discrete": {"recurrent": disc},
                                "genotype": geno.model_dump(mode="json", exclude_none=True)}) + "\n")
    (run / "status.json").write_text(json.dumps({"status": "finished", "epoch": epochs, "epochs": epochs, "pid": 0,
                                                 "val_acc": 0.04 * epochs, "val_ppl": round(2000.0 / epochs, 1)}))
    return run


@pytest.fixture
def rnn_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fixed_rnn_run(Path("runs"))
    return Path("runs")


def test_snapshot_runs_with_a_recurrent_search(snap_compare, rnn_runs):
    """The run browser gives a language model's perplexity; its details name the nodes as the drawing does."""
    assert snap_compare(NaspApp(runs_dir="runs", mode="runs"), terminal_size=(80, 24))


def test_snapshot_replay_of_a_recurrent_search(snap_compare, rnn_runs):
    async def check(pilot):
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(pilot.app.screen, ReplayScreen)

    assert snap_compare(NaspApp(runs_dir="runs", mode="runs"), terminal_size=(80, 24), run_before=check)


def test_snapshot_recurrent_genotype_editor(snap_compare, rnn_runs):
    async def counted(pilot):
        await params_counted(pilot, pilot.app.screen)

    assert snap_compare(NaspApp(runs_dir="runs", genotype="DARTS_V2_RNN"), terminal_size=(80, 24), run_before=counted)


@sync
async def test_recurrent_run_in_the_app_speaks_perplexity_and_one_input_per_node(rnn_runs):
    """Replay, live view and editor of a recurrent cell: x_t/h_(t-1) rows, perplexity, one input select a node."""
    run = Path("runs/20250103-000000-nasp-rnn")
    app = NaspApp(runs_dir="runs", mode="runs")
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press("enter")
        await pilot.pause()
        replay = app.screen
        assert isinstance(replay, ReplayScreen)
        shown = " ".join(text_of(w) for w in replay.query(Static))
        assert "x_{t}/h_{t-1}→0" in shown and "val ppl 666.7" in shown and "c_{k-1}" not in shown
        app.state = load_run_state(run)
        await pilot.press("escape", "f3")
        await pilot.pause()
        live = " ".join(text_of(w) for w in app.screen.query(Static))
        assert "ppl 666.7" in live and "x_{t}/h_{t-1}" in live
    editor = NaspApp(runs_dir="runs", genotype=str(run))
    async with editor.run_test(size=(100, 32)) as pilot:
        screen = editor.screen
        assert isinstance(screen, GenotypeScreen)
        selects = [s.id for s in screen.query(Select) if s.id and s.id.startswith("s-recurrent-")]
        assert len([i for i in selects if i.endswith("-in")]) == 8 and len([i for i in selects if i.endswith("-op")]) == 8
        assert "22.960M" in await params_counted(pilot, screen)
        assert not screen.query_one("#sizes").display and screen.query_one("#rnn-sizes").display
        screen.query_one("#rnn-nhid", Input).value = "300"  # 10k x 300 tied + 10k bias + 600 x 600 + 8 x 300 x 600
        await wait_for(pilot, lambda: "4.810M" in text_of(screen.query_one("#params", Static)), timeout=60,
                       what="the count at 300 wide")
