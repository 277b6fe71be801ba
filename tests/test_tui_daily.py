"""The app's rough edges in daily use (issue 24): resuming asks first and brings a plugin run's plugins, quitting
while following a paused run says so, the editor follows a search that rewrote its genotype, errors point at the
field at fault and fit the screen, one way of counting epochs, a died run is announced. Real Pilot, real runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from test_tui import REDUCE, fill, fixed_genotype, fixed_run, sync, text_of, wait_for
from textual.widgets import DataTable, Select, Static
from textual.widgets._select import SelectCurrent

import nasp
from nasp.genotype import Genotype
from nasp.runfolder import RunFolder
from tui.app import NaspApp
from tui.screens.runs import RunsScreen, changed_entries
from tui.widgets import ChoiceDialog

TINY = {"data": {"limit": 64}, "batch_size": 16, "model": {"channels": 4, "layers": 2}, "threads": 1}
PLUGIN = '''
from nasp.algorithms.nasp import NASP
from nasp.algorithms import register_algorithm


@register_algorithm("nasp-copy")
class Copy(NASP):
    """NASP under another name, from a plugin file."""
'''


class StopAfterFirstStep(nasp.Callback):
    """Asks the run to stop after its first step (as Ctrl-C would): it leaves a checkpoint."""

    def on_step(self, trainer, event):
        trainer.request_stop()


def wait_until(condition, timeout: float = 120.0, what: str = "condition") -> None:
    t0 = time.monotonic()
    while not condition():
        assert time.monotonic() - t0 < timeout, f"timed out waiting for {what}"
        time.sleep(0.1)


@sync
async def test_resume_asks_first_and_brings_the_plugins_of_a_plugin_run(tmp_path):
    """r on the runs screen says what resuming does (the checkpoint, the plugins it imports again) and resumes the
    selected run only when answered; a run of a plugin's algorithm resumes (it named no plugins before: refused)."""
    plugin = tmp_path / "copy_plugin.py"
    plugin.write_text(PLUGIN)
    runs = tmp_path / "runs"
    stopped = nasp.search(TINY, algorithm="nasp-copy", plugins=[str(plugin)], epochs=1, out=str(runs),
                          callbacks=[StopAfterFirstStep()])
    assert stopped.status == "stopped"
    fixed_run(runs, name="29990101-000000-nasp-cnn12")  # a newer, finished run: listed first
    app = NaspApp(runs_dir=runs, nice=0)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f4")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RunsScreen) and screen.selected().name == "29990101-000000-nasp-cnn12"
        await pilot.press("r")  # the finished one: not resumable, says why
        await pilot.pause()
        assert not isinstance(app.screen, ChoiceDialog) and app.process is None
        await pilot.press("down")
        assert screen.selected().path == stopped.run_dir
        await pilot.press("r")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ChoiceDialog)
        details = text_of(dialog.query_one("#details", Static))
        assert "checkpoint at epoch 1 step 1" in details and str(plugin) in details, details
        await pilot.press("escape")  # nothing happens
        await pilot.pause()
        assert app.screen is screen and app.process is None
        await pilot.press("r")
        await pilot.pause()
        await pilot.press("y")
        assert app.current_mode == "live"
        await wait_for(pilot, lambda: app.process is None and app.state.status == "finished", timeout=180,
                       what="the resumed run's end")
    assert RunFolder(stopped.run_dir).status().state == "finished"


@sync
async def test_quitting_while_following_a_paused_run_asks_and_can_resume_it(tmp_path):
    """A run of another process, paused (SIGUSR1): quitting the app that follows it warns that it stays paused, and
    "resume it, then quit" lets it go on."""
    runs = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "nasp", "run", "data.limit=64", "batch_size=16", "model.channels=4",
                             "model.layers=2", "epochs=50", "threads=1", f"out={runs}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        wait_until(lambda: any(RunFolder(p.parent).has_events() and '"step"' in (p.parent / "events.jsonl").read_text()
                               for p in runs.glob("*/config.json")), what="the run's first step")
        (run,) = [p.parent for p in runs.glob("*/config.json")]
        proc.send_signal(signal.SIGUSR1)
        wait_until(lambda: RunFolder(run).status().state == "paused", what="the pause")
        app = NaspApp(runs_dir=runs, attach=str(run))
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: app.state.status == "paused", timeout=30, what="the followed pause")
            await pilot.press("ctrl+q")
            await pilot.pause()
            dialog = app.screen
            assert isinstance(dialog, ChoiceDialog) and "is paused" in str(dialog.query_one("#question").render())
            await pilot.press("r")
        assert not app.is_running
        wait_until(lambda: RunFolder(run).status().state == "running", timeout=60, what="the run going on")
        assert json.loads((run / "events.jsonl").read_text().splitlines()[-1])["event"] in ("resumed", "step",
                                                                                         "epoch_end")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


@sync
async def test_the_editor_follows_a_search_that_rewrote_its_genotype(tmp_path):
    """The run folder's genotype.json is rewritten every epoch: the editor shows the new one ("unchanged" is then
    true), or, under unsaved edits, keeps them and says the file moved on."""
    run = fixed_run(tmp_path / "runs", status="running", done=2)
    first = Genotype.load(run / "genotype.json")
    newer = Genotype.from_pairs("cnn12", normal=[("conv_1x1", i % 2) for i in range(8)], reduce=REDUCE)
    app = NaspApp(runs_dir=tmp_path / "runs", genotype=str(run))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert app.genotype_edit.genotype == first
        newer.save(run / "genotype.json.tmp")
        (run / "genotype.json.tmp").replace(run / "genotype.json")  # as the recorder writes it
        await wait_for(pilot, lambda: app.genotype_edit.genotype == newer, timeout=10, what="the new genotype")
        await pilot.pause()
        assert "changed on disk" in text_of(screen.query_one("#message", Static))
        assert text_of(screen.query_one("#source", Static)).endswith("· unchanged")
        assert screen.query_one("#s-normal-0-0-op", Select).value == "conv_1x1"

        screen.query_one("#s-normal-0-0-op", Select).value = "sep_conv_3x3"  # an edit, unsaved
        await pilot.pause()
        edited = app.genotype_edit.genotype
        first.save(run / "genotype.json.tmp")
        (run / "genotype.json.tmp").replace(run / "genotype.json")
        await wait_for(pilot, lambda: app.genotype_edit.source_moved_on, timeout=10, what="the file moving on")
        await pilot.pause()
        assert app.genotype_edit.genotype == edited  # the edits stay
        assert "changed on disk since" in text_of(screen.query_one("#source", Static))


@sync
async def test_errors_point_at_their_field_and_fit_the_screen(tmp_path):
    """An unknown op in space.normal marks space.normal (it marked space.name), its whole message shows at 80
    columns; the editor names a refused input as its rows do (c_{k-2}, not "input [0, 0]")."""
    app = NaspApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        await fill(pilot, app, {"space.normal": "conv_3x3,bogus_op"})
        await pilot.pause()
        screen = app.screen
        assert screen.checked.key == "space.normal"
        assert screen.query_one("#row-f-space-normal").has_class("-bad")
        assert not screen.query_one("#row-f-space-name").has_class("-bad")
        err = screen.query_one("#field-error", Static)
        assert "unknown op 'bogus_op'" in text_of(err) and err.size.height >= 2  # wrapped, not cut
        problem = screen.query_one("#problem", Static)
        assert problem.size.height >= 2 and text_of(problem).endswith("skip_connect")

    fixed_genotype(tmp_path / "cell.json")
    app = NaspApp(runs_dir=tmp_path / "runs", genotype=str(tmp_path / "cell.json"))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        screen = app.screen
        before = app.genotype_edit.genotype
        screen.query_one("#s-normal-0-1-in", Select).value = 0  # node 0 reads c_{k-2} already
        await pilot.pause()
        message = text_of(screen.query_one("#message", Static))
        assert "c_{k-2} already feeds this node" in message and "[0, 0]" not in message, message
        assert app.genotype_edit.genotype == before and screen.query_one("#s-normal-0-1-in", Select).value == 1


@sync
async def test_a_died_run_is_announced_and_a_screenshot_saves_without_downloads(tmp_path, monkeypatch):
    """Following a run whose process is gone (status running, no lock): a notification says it died and the runs
    screen comes with it selected. A screenshot lands in the current folder when ~/Downloads does not exist."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_DOWNLOAD_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    run = fixed_run(tmp_path / "runs", status="running", done=2)
    fixed_run(tmp_path / "runs", name="29990101-000000-nasp-cnn12")
    app = NaspApp(runs_dir=tmp_path / "runs", attach=str(run))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.state.status == "died", timeout=10, what="the died run")
        assert any("died" in n.message for n in app._notifications)
        assert "resume it from the runs screen (F4, r)" in app.state.message
        await pilot.press("f4")
        await pilot.pause()
        assert app.screen.selected().path == run
        app.action_screenshot()
        await wait_for(pilot, lambda: list(tmp_path.glob("*.svg")), timeout=10, what="the screenshot")
    assert not (tmp_path / "home" / "Downloads").exists()


@sync
async def test_runs_table_sorts_filters_and_keeps_the_score_in_view(tmp_path):
    """At 80 columns a long run name leaves the score and params on screen; s sorts (newest, score, params,
    status), / filters by any part of a row."""
    runs = tmp_path / "runs"
    fixed_run(runs, name="20250101-000000-nasp-cnn12", done=4)  # val acc 0.32
    fixed_run(runs, name="20250102-000000-darts-1st-cnn12", status="stopped", done=2)  # 0.16
    fixed_run(runs, name="20250103-000000-nasp-cnn12-with-a-very-long-name-from-a-genotype-path", done=3)  # 0.24
    app = NaspApp(runs_dir=runs)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f4")
        await pilot.pause()
        screen = app.screen
        table = screen.query_one(DataTable)
        names = lambda: [i.name for i in screen.infos]  # noqa: E731
        assert names()[0].startswith("20250103")  # newest first
        widths = [c.get_render_width(table) for c in table.columns.values()]
        assert sum(widths[:5]) <= 80, widths  # run, status, epochs, score, params: in view; algorithm, space after
        assert table.get_row_at(0)[3] == "val 0.240"
        await pilot.press("s")
        await pilot.pause()
        assert screen.sort_by == "score" and [i.val_acc for i in screen.infos] == [0.32, 0.24, 0.16]
        await pilot.press("s")
        await pilot.pause()
        assert screen.sort_by == "params" and [i.param_count for i in screen.infos] == [3200, 3300, 3400]
        await pilot.press("slash")
        await pilot.press(*"darts")
        await pilot.pause()
        assert names() == ["20250102-000000-darts-1st-cnn12"]
        assert "1 of 3 runs" in text_of(screen.query_one("#folder", Static))
        await pilot.press("enter")  # done filtering: back in the table, the filter stays
        assert table.has_focus and names() == ["20250102-000000-darts-1st-cnn12"]
        await pilot.press("slash", "escape")
        await pilot.pause()
        assert len(names()) == 3


@sync
async def test_editor_focus_is_visible_and_recurrent_inputs_are_whole(tmp_path):
    """The focused choice stands out (the accent colour, bold); a recurrent cell's input column shows x_{t}/h_{t-1}
    whole (it showed "x_{t}/h_")."""
    app = NaspApp(runs_dir=tmp_path / "runs", genotype="DARTS_V2_RNN")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        first, other = screen.query_one("#s-recurrent-0-0-in", Select), screen.query_one("#s-recurrent-1-0-in", Select)
        first.focus()
        await pilot.pause()
        focused, plain = first.query_one(SelectCurrent), other.query_one(SelectCurrent)
        assert focused.styles.background != plain.styles.background and focused.styles.text_style.bold
        assert first.size.width >= len("x_{t}/h_{t-1}") + 3  # the name, a space and the ▼ (the snapshot shows it)


@sync
async def test_replay_marks_what_changed_since_the_previous_epoch(tmp_path):
    """Replay says how many Ā entries changed since the previous recorded epoch and highlights them in the grid."""
    run = fixed_run(tmp_path / "runs")
    hist = [json.loads(x) for x in (run / "history.jsonl").read_text().splitlines()]
    app = NaspApp(runs_dir=tmp_path / "runs", mode="runs")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        screen = app.screen
        assert screen.index == 3
        want = sum(len(changed_entries(hist[2]["discrete"][ct], hist[3]["discrete"][ct])) for ct in ("normal", "reduce"))
        assert want > 0
        assert f"{want} Ā entries changed since epoch 3" in text_of(screen.query_one("#where", Static))
        await pilot.press("home")
        assert "changed since" not in text_of(screen.query_one("#where", Static))  # the first epoch: nothing before it
