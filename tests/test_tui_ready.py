"""The app as a new user meets it: replay moves epochs with the arrows its header names, leaving the editor with
unsaved edits asks first, an evaluation started from the editor runs offline on the search's (embedded) data and
shows its progress, result or failure, and named genotypes open in the editor. Real Pilot, real processes."""

from __future__ import annotations

from pathlib import Path

from test_tui import choose, fixed_genotype, fixed_run, sync, text_of, wait_for
from textual.widgets import Input, Static, TabbedContent

from nasp.genotype import Genotype
from nasp.genotypes import get_genotype
from nasp.runfolder import RunFolder
from tui.app import NaspApp
from tui.screens.genotype import GenotypeScreen
from tui.screens.runs import ReplayScreen, RunsScreen, info_row
from tui.widgets import PathDialog, UnsavedDialog


@sync
async def test_replay_arrows_move_epochs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fixed_run(Path("runs"))
    app = NaspApp(runs_dir="runs", mode="runs")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ReplayScreen) and screen.index == 3
        tabs = screen.query_one("#rtabs", TabbedContent)
        await pilot.press("left", "left")
        assert screen.index == 1 and tabs.active == "r-abar"  # epochs moved, the tab stayed
        assert "epoch 2/4" in text_of(screen.query_one("#where", Static))
        await pilot.press("right")
        assert screen.index == 2 and tabs.active == "r-abar"
        await pilot.press("home")
        assert screen.index == 0
        await pilot.press("3")  # tabs by number
        assert tabs.active == "r-fig4"


@sync
async def test_leaving_the_editor_with_unsaved_edits_asks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = fixed_genotype(Path("cell.json"))
    app = NaspApp(runs_dir="runs", genotype=str(source))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await choose(pilot, app, "s-normal-0-0-op", "skip_connect")
        assert app.genotype_edit.unsaved
        await pilot.press("f4")
        assert isinstance(app.screen, UnsavedDialog) and app.current_mode == "genotype"
        await pilot.press("escape")  # stay: the edit is still there
        assert isinstance(app.screen, GenotypeScreen) and app.genotype_edit.genotype.cells["normal"][0][0].op == "skip_connect"
        await pilot.press("f4", "d")  # discard and go
        await pilot.pause()
        assert app.current_mode == "runs" and not app.genotype_edit.unsaved
        assert app.genotype_edit.genotype == Genotype.load(source)
        await pilot.press("f5")
        await pilot.pause()
        assert app.screen.query_one("#s-normal-0-0-op").value == "sep_conv_3x3"  # the editor shows the saved version
        await choose(pilot, app, "s-normal-0-0-op", "conv_1x1")
        await pilot.press("f4", "s")  # save as a new file, then go
        assert isinstance(app.screen, PathDialog)
        await pilot.press("enter")
        await pilot.pause()
        assert app.current_mode == "runs"
        saved = Genotype.load(tmp_path / "cell-edit.json")
        assert saved.cells["normal"][0][0].op == "conv_1x1" and not app.genotype_edit.unsaved
        await pilot.press("ctrl+q")  # nothing unsaved: quits without asking
        await pilot.pause()
    assert app.return_code == 0


@sync
async def test_named_genotypes_open_in_the_editor(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = NaspApp(runs_dir="runs", genotype="DARTS_V2")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, GenotypeScreen)
        assert app.genotype_edit.genotype == get_genotype("DARTS_V2") and app.genotype_edit.eval_target() == "DARTS_V2"
        assert "DARTS_V2 · space cnn7" in text_of(app.screen.query_one("#source", Static))
        await pilot.press("ctrl+t")
        assert text_of(app.screen.query_one("#cmd", Static)) == "$ nasp eval genotype=DARTS_V2 --config eval-cpu"


EVAL_TINY = "epochs=1 data.limit=64 data.test_limit=64 model.layers=2 model.channels=4 batch_size=16 threads=1"


# DARTS_V2_RNN in seconds: 8 wide, 1,200 training tokens, one epoch
RNN_TINY = ("epochs=1 data.limit=1200 data.test_limit=200 rnn.emsize=8 rnn.nhid=8 batch_size=4 eval_batch_size=2 "
            "rnn.test_batch_size=2 rnn.bptt=12 threads=1")


@sync
async def test_recurrent_evaluation_from_the_editor_shows_its_perplexity(tmp_path, monkeypatch):
    """A language model scores a perplexity, not an accuracy: the successful evaluation says it (it used to read
    "evaluation failed: `nasp eval` exited with code 0"), also when the app's runs folder is not ./runs."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    app = NaspApp(runs_dir=str(tmp_path / "elsewhere"), genotype="DARTS_V2_RNN", nice=0)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, GenotypeScreen)
        await pilot.press("ctrl+t")
        extra = app.screen.query_one("#extra", Input)
        assert extra.value == "--config eval-rnn-cpu"  # the recurrent preset, not the CNN's eval-cpu
        extra.value += " " + RNN_TINY
        await pilot.press("enter")
        await pilot.pause()
        await wait_for(pilot, lambda: screen.evaluation is None, timeout=180, what="the evaluation's end")
        text = text_of(screen.query_one("#message", Static))
        assert "finished: test perplexity" in text and "failed" not in text, text
        (ev,) = [f for f in (tmp_path / "elsewhere").iterdir() if f.is_dir() and RunFolder(f).kind() == "eval"]
        ppl = RunFolder(ev).status().values["test_ppl"]
        assert f"test perplexity {ppl:.2f}" in text and str(ev) in text
        assert not (tmp_path / "runs").exists()  # written where the app looks


@sync
async def test_evaluation_from_the_editor_runs_offline_and_shows_its_accuracy(tmp_path, monkeypatch):
    """The search's run folder (embedded data) evaluates with no extra arguments but the sizes that keep it short; the
    progress, then the test accuracy show under the cell; the run browser lists it with that accuracy. A failing
    evaluation shows why."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")  # nothing may be downloaded
    run = fixed_run(Path("runs"))
    app = NaspApp(runs_dir="runs", genotype=str(run), nice=0)  # the child at full priority: the test waits for it
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, GenotypeScreen)
        await pilot.press("ctrl+t")
        extra = app.screen.query_one("#extra", Input)
        assert extra.value == ""  # the search brings its data and the CPU preset
        extra.value = EVAL_TINY
        await pilot.press("enter")
        await pilot.pause()
        message = screen.query_one("#message", Static)
        await wait_for(pilot, lambda: "evaluating" in text_of(message) or "finished" in text_of(message), timeout=120,
                       what="the evaluation's progress")
        await wait_for(pilot, lambda: screen.evaluation is None, timeout=180, what="the evaluation's end")
        text = text_of(message)
        assert "finished: test accuracy" in text, text
        evals = [f for f in RunFolder(Path("runs")).path.iterdir() if f.is_dir() and RunFolder(f).kind() == "eval"]
        assert len(evals) == 1
        acc = RunFolder(evals[0]).status().values["test_acc"]
        assert f"{100 * acc:.2f}%" in text and screen.last_eval_acc == acc

        await pilot.press("f4")
        await pilot.pause()
        runs = app.screen
        assert isinstance(runs, RunsScreen)
        (ev,) = [i for i in runs.infos if i.kind == "eval"]
        assert info_row(ev)[3] == f"test {acc:.3f}"

        await pilot.press("f5", "ctrl+t")  # a failure: its message, not a traceback
        app.screen.query_one("#extra", Input).value = f"data=cifar100 data.root={tmp_path / 'nowhere'} epochs=1"
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.evaluation is None, timeout=120, what="the failed evaluation's end")
        text = text_of(screen.query_one("#message", Static))
        assert text.startswith("evaluation failed: ") and "nowhere" in text and "Traceback" not in text, text
        assert screen.query_one("#message", Static).has_class("-error")


@sync
async def test_both_cells_reachable_at_80x24(tmp_path, monkeypatch):
    """One header line on a short terminal, and the keys scroll the tab's content while the tab bar has the focus."""
    from test_tui import live_state
    from textual.containers import VerticalScroll

    from tui.screens.live import LiveScreen
    from tui.widgets import Drawing

    monkeypatch.chdir(tmp_path)
    fixed_run(Path("runs"), name="20250101-000000-nasp-cnn12")
    app = NaspApp(runs_dir="runs", mode="live")
    async with app.run_test(size=(80, 24)) as pilot:
        app.state = live_state()
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, LiveScreen)
        screen.redraw(force=True)
        await pilot.pause()
        assert screen.query_one("#status").size.height == 1  # compact header
        scroller = screen.query_one("#tab-abar").query_one(VerticalScroll)
        reduce = list(screen.query_one("#abar").query(Drawing))[1]

        def visible() -> bool:  # the whole reduce cell is on the screen
            return scroller.region.y <= reduce.region.y and reduce.region.bottom <= scroller.region.bottom

        assert not visible()
        for _ in range(30):
            await pilot.press("down")
            await pilot.pause()
            if visible():
                break
        assert visible() and scroller.scroll_y > 0
        await pilot.press("pagedown", "pageup", "pageup", "pageup")
        await pilot.pause()
        assert scroller.scroll_y == 0 and not visible()


@sync
async def test_command_palette_has_the_apps_actions(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fixed_run(Path("runs"))
    app = NaspApp(runs_dir="runs", mode="runs")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert {"Replay Ā", "Resume", "Edit genotype", "Setup", "Genotype", "Help"} <= set(titles)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"replay", "enter")  # the palette runs the screen's own action
        await wait_for(pilot, lambda: isinstance(app.screen, ReplayScreen), timeout=10, what="the replay")


def test_a_resume_keeps_the_curves_and_abar_history(tmp_path, monkeypatch):
    """What the app shows of a stopped search before its resume (replayed events) is what it showed live; the
    resumed run's start trims it to the checkpoint, not to nothing."""
    from test_reliability import stopped_search

    from nasp.trainer.recorder import RunRecorder

    # every step event written (the recorder thins them to one per 0.5 s, which made the count depend on the load)
    monkeypatch.setattr(RunRecorder.__init__, "__defaults__", (0.0,))

    from tui.livestate import LiveState
    from tui.runs import load_live_state

    run = stopped_search(tmp_path / "runs", steps=4)  # 3 steps an epoch: one epoch and a step
    live = LiveState()
    for event in RunFolder(run).events():
        live.apply(event, 0.0)
    state = load_live_state(run)
    assert state.status == "stopped" and [h.epoch for h in state.history] == [1]
    assert len(state.step_train_loss) == state.global_step == 4 and state.step_train_loss == live.step_train_loss
    assert state.discrete == live.discrete and state.updates >= 1
    first = list(state.step_train_loss)
    state.apply({"event": "run_start", "run_dir": str(run), "config": RunFolder(run).read_config(),
                 "space": state.space.model_dump(), "epochs": 2, "steps_per_epoch": 3, "start_epoch": 1,
                 "start_step": 0}, 1.0)  # what `nasp run resume=` sends first: from the epoch-1 checkpoint
    assert state.step_train_loss == first[:3] and [h.epoch for h in state.history] == [1]
