"""The app's analysis (issue 24, item 10): curves as tall and wide as the terminal, the replay's marks of the epochs
where the genotype changed, and the comparison of two runs and of two genotypes. Real Pilot, real run folders of
real tiny searches on the embedded data; what the screens must show is computed here from the run folders' own
files (metrics.jsonl, history.jsonl, genotype.json, events.jsonl)."""

from __future__ import annotations

import itertools
import json
import re
import shutil
from pathlib import Path

import pytest
from test_tui import NORMAL, REDUCE, fixed_run, sync, text_of, wait_for
from textual.widgets import DataTable, Input, Static

import nasp
from nasp.genotype import Genotype
from nasp.runfolder import RunFolder
from tui.app import NaspApp
from tui.curves import CURSOR, MARK, CurveChart
from tui.screens.compare import CompareScreen
from tui.screens.runs import ReplayScreen, RunsScreen
from tui.widgets import PathDialog

TINY = {"data": {"limit": 64}, "batch_size": 16, "model": {"channels": 4, "layers": 2}, "threads": 1}
# every step an architecture step, and a quick one: the genotype changes between epochs of a 4-epoch search
MOVING = ("algorithm.warmup=0", "algorithm.lr=0.05")
SIZES = [(80, 24), (200, 50)]
BRAILLE = range(0x2801, 0x2900)  # a braille character with at least one dot


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory):
    """Two finished searches: a NASP one of 4 epochs whose genotype changes, a DARTS one of 3."""
    runs = tmp_path_factory.mktemp("analysis") / "runs"
    a = nasp.search(TINY, *MOVING, epochs=4, seed=1, name="a-nasp", out=str(runs))
    b = nasp.search(TINY, "algorithm.lr=0.05", algorithm="darts-1st", epochs=3, seed=2, name="b-darts", out=str(runs))
    assert a.status == "finished" and b.status == "finished"
    return runs, Path(a.run_dir), Path(b.run_dir)


def braille_extent(lines: list[str]) -> tuple[int, int, int]:
    """(first column, last column, rows) of the chart's dots."""
    cols = [c for line in lines for c, ch in enumerate(line) if ord(ch) in BRAILLE]
    rows = sum(any(ord(ch) in BRAILLE for ch in line) for line in lines)
    return min(cols), max(cols), rows


def input_name(i: int) -> str:
    """A cnn cell's node names, as the paper's figures write them: the two cell inputs, then the nodes."""
    return ["c_{k-2}", "c_{k-1}"][i] if i < 2 else str(i - 2)


def edges(genotype: dict) -> dict[tuple[str, str], str]:
    """(cell type, 'input→node') -> op of every kept edge of a genotype dict (as genotype.json holds it)."""
    return {(ct, f"{input_name(e['input'])}→{j}"): e["op"]
            for ct, nodes in genotype["cells"].items() for j, node in enumerate(nodes) for e in node}


def select_run(screen: RunsScreen, path: Path) -> None:
    assert screen.select(path), f"{path.name} is not listed"


async def open_runs(pilot, app: NaspApp) -> RunsScreen:
    await pilot.press("f4")
    await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and len(app.screen.infos) == 2, timeout=30,
                   what="the runs screen listing both runs")
    return app.screen  # type: ignore[return-value]


# --- curves ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", SIZES)
@sync
async def test_live_curves_use_the_whole_terminal(real_runs, size):
    """Following a real run: the curves tab's charts are as wide as the terminal and many rows tall, their dots
    run from the left edge to the right one, and the y axis spans the run's own lowest and highest loss."""
    runs, run, _ = real_runs
    events = RunFolder(run).events()
    metrics = RunFolder(run).metrics()
    losses = ([float(e[k]) for e in events if e.get("event") == "step" for k in ("train_loss", "arch_loss")]
              + [float(m["val_loss"]) for m in metrics])
    width, height = size
    app = NaspApp(runs_dir=runs, attach=str(run))
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: app.state.status == "finished", timeout=30, what="the followed run's end")
        await pilot.press("4")
        await pilot.pause(0.3)
        charts = list(app.screen.query(CurveChart))
        assert len(charts) == 2
        for chart in charts:
            lines = chart.lines()
            assert chart.size.width >= width - 4 and all(len(line) == chart.size.width for line in lines)
            first, last, rows = braille_extent(lines)
            plot_rows = chart.size.height - 3  # a title line, the x axis, its labels
            assert first <= 10 and last >= chart.size.width - 2, (first, last, chart.size.width)
            assert plot_rows >= (5 if height < 30 else 12) and rows >= plot_rows // 2, (rows, plot_rows)
        loss = charts[0].lines()
        assert "train loss/step" in loss[0] and "val loss" in loss[0] and "arch loss/step" in loss[0]
        assert loss[1].split()[0] == f"{max(losses):.3f}" and loss[-3].split()[0] == f"{min(losses):.3f}"
        assert "epoch" in loss[-1] and "4" in loss[-1].split()  # the x axis runs to the run's last epoch
        assert "val acc" in charts[1].lines()[0]


# --- replay ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", SIZES)
@sync
async def test_replay_marks_the_epochs_where_the_genotype_changed(real_runs, size):
    """The replay's curves tab marks ▲ on the x axis, at their epochs, the epochs whose genotype differs from the
    epoch before (as history.jsonl holds them), lists each with its edges' old and new ops, and ] / [ go there."""
    runs, run, _ = real_runs
    history = RunFolder(run).history()
    expected: dict[int, list[str]] = {}
    for before, after in itertools.pairwise(history):
        old, new = edges(before["genotype"]), edges(after["genotype"])
        changed = []
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                ct, name = key
                a, b = old.get(key), new.get(key)
                changed.append(f"{ct} {name}: " + (f"+ {b}" if a is None else f"- {a}" if b is None else f"{a} → {b}"))
        if changed:
            expected[int(after["epoch"])] = changed
    assert expected, "the search's genotype never changed: the test would show nothing"
    last = int(history[-1]["epoch"])
    app = NaspApp(runs_dir=runs, mode="runs")
    async with app.run_test(size=size) as pilot:
        screen = await open_runs(pilot, app)
        select_run(screen, run)
        await pilot.press("enter")
        await pilot.pause()
        replay = app.screen
        assert isinstance(replay, ReplayScreen)
        await pilot.press("5")
        await pilot.pause(0.3)
        listed = text_of(replay.query_one("#rchanges", Static))
        shown = {int(m.group(1)): m.group(2) for m in re.finditer(r"epoch (\d+): (.*)", listed)}
        assert sorted(shown) == sorted(expected), listed
        for epoch, changed in expected.items():
            assert sorted(shown[epoch].split("; ")) == sorted(changed), (epoch, shown[epoch], changed)
        chart = replay.query_one("#rc-loss", CurveChart)
        lines = chart.lines()
        axis = lines[-2]
        start = axis.index("└") + 1
        plot_w = len(axis) - start
        marks = [c - start for c, ch in enumerate(axis) if ch == MARK]
        cursor = [c - start for c, ch in enumerate(axis) if ch == CURSOR]
        assert cursor == [plot_w - 1]  # the epoch shown: the last
        under_cursor = {last} & set(expected)
        assert len(marks) == len(expected) - len(under_cursor)
        for epoch, col in zip(sorted(set(expected) - under_cursor), marks, strict=True):
            assert abs(col - (epoch - 1) / (last - 1) * (plot_w - 1)) <= 1, (epoch, col, plot_w)
        charts = list(replay.query(CurveChart))  # one above the other, or side by side under 30 rows
        assert len(charts) == 2 and sum(c.size.width for c in charts if c.region.y == chart.region.y) >= size[0] - 4
        assert chart.size.height >= (10 if size[1] < 30 else 15), chart.size
        # ] from the first epoch goes to the first change, and the header says what changed
        await pilot.press("home", "right_square_bracket")
        await pilot.pause()
        first = min(expected)
        assert replay.state.history[replay.index].epoch == first
        where = text_of(replay.query_one("#where", Static))
        n = len(expected[first])
        assert f"genotype: {n} edge{'s' if n > 1 else ''} changed" in where, where
        await pilot.press("left_square_bracket")  # none before the first: stays
        await pilot.pause()
        assert replay.state.history[replay.index].epoch == first
        # d: that epoch's genotype against the last epoch's, the edges that differ marked
        await pilot.press("d")
        await pilot.pause(0.3)
        diff = app.screen
        assert isinstance(diff, CompareScreen)
        then = edges(next(h for h in history if h["epoch"] == first)["genotype"])
        final = edges(history[-1]["genotype"])
        rows = diff_rows(diff.diff_lines())
        assert set(rows) == set(then) | set(final)
        assert {k for k, (differs, _, _) in rows.items() if differs} == {k for k in rows if then.get(k) != final.get(k)}
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is replay


# --- comparison -----------------------------------------------------------------------------------------
def number_row(lines: list[str], name: str) -> list[str]:
    (row,) = [line for line in lines if line.startswith(name + "  ")]
    return row[len(name):].split()


def diff_rows(lines: list[str]) -> dict[tuple[str, str], tuple[bool, str, str]]:
    """The comparison's genotype tables read back: (cell type, edge) -> (marked ≠, op of A, op of B)."""
    out, cell = {}, None
    for line in lines:
        head = re.match(r"(\w+) cell: ", line)
        row = re.match(r"([≠ ]) (\S+→\d+)\s+(\S+)\s+(\S+)$", line)
        if head:
            cell = head.group(1)
        elif row and cell is not None:
            assert (cell, row.group(2)) not in out, line
            out[cell, row.group(2)] = (row.group(1) == "≠", row.group(3), row.group(4))
    return out


@pytest.mark.parametrize("size", SIZES)
@sync
async def test_compare_two_runs(real_runs, size):
    """c on one run then c on another: both runs' curves on the same charts, their last epoch's numbers side by side
    with the difference, and exactly the edges whose op differs between their genotype.json marked ≠."""
    runs, run_a, run_b = real_runs
    last_a, last_b = RunFolder(run_a).metrics()[-1], RunFolder(run_b).metrics()[-1]
    geno_a = json.loads((run_a / "genotype.json").read_text())
    geno_b = json.loads((run_b / "genotype.json").read_text())
    ea, eb = edges(geno_a), edges(geno_b)
    differing = {k for k in set(ea) | set(eb) if ea.get(k) != eb.get(k)}
    assert differing, "two searches found the same genotype: nothing to highlight"
    app = NaspApp(runs_dir=runs, mode="runs")
    async with app.run_test(size=size) as pilot:
        screen = await open_runs(pilot, app)
        select_run(screen, run_a)
        await pilot.press("c")
        await pilot.pause()
        table = screen.query_one(DataTable)
        assert str(table.get_cell_at((table.cursor_row, 0))).startswith("◆ a-nasp")  # marked
        select_run(screen, run_b)
        await pilot.press("c")
        await pilot.pause(0.3)
        compare = app.screen
        assert isinstance(compare, CompareScreen)
        who = text_of(compare.query_one("#who", Static))
        assert "A ━ a-nasp" in who and "B ┅ b-darts" in who and "darts-1st" in who
        numbers = text_of(compare.query_one("#numbers", Static)).split("\n")
        for key, name in (("val_acc", "val acc"), ("val_loss", "val loss"), ("train_loss", "train loss")):
            va, vb, delta = number_row(numbers, name)
            assert (va, vb) == (f"{last_a[key]:.4f}", f"{last_b[key]:.4f}")
            assert delta == f"{last_b[key] - last_a[key]:+.4f}"
        assert number_row(numbers, "epochs")[:2] == ["4/4", "3/3"]
        assert number_row(numbers, "edges differing") == [str(len(differing))]
        # the genotypes: ≠ on exactly the differing edges, each with both ops
        rows = diff_rows(compare.diff_lines())
        assert {ct for ct, _ in rows} == set(geno_a["cells"]) | set(geno_b["cells"])
        assert set(rows) == set(ea) | set(eb)  # every edge either keeps, once
        for key, (differs, a, b) in rows.items():
            assert (a, b) == (ea.get(key, "·"), eb.get(key, "·")) and differs == (key in differing), (key, a, b)
        # both runs on each chart, across the terminal's width; side by side when wide
        charts = list(compare.query(CurveChart))
        assert len(charts) == 2
        for chart in charts:
            head = chart.lines()[0]
            assert "A val loss" in head or "A val acc" in head
            assert "B val loss" in head or "B val acc" in head
            first, last, _ = braille_extent(chart.lines())
            assert last - first >= chart.size.width * 0.8
        if size[0] >= 150:
            assert charts[0].region.y == charts[1].region.y and charts[1].region.x > charts[0].region.right - 2
            assert sum(c.size.width for c in charts) >= size[0] - 8
        else:
            assert charts[1].region.y > charts[0].region.y and charts[0].size.width >= size[0] - 4
        await pilot.press("3")  # jump to the genotypes
        await pilot.pause()
        body = compare.query_one("#body")
        diff = compare.query_one("#diff")
        assert diff.region.y - body.region.y < body.size.height  # in view
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen and screen.marked is None


@sync
async def test_diff_a_runs_genotype_with_a_genotype_file(real_runs):
    """d on a run asks for another genotype (here the other run's genotype.json) and diffs the two, edge by edge."""
    runs, run_a, run_b = real_runs
    ea = edges(json.loads((run_a / "genotype.json").read_text()))
    eb = edges(json.loads((run_b / "genotype.json").read_text()))
    differing = {k for k in set(ea) | set(eb) if ea.get(k) != eb.get(k)}
    app = NaspApp(runs_dir=runs, mode="runs")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_runs(pilot, app)
        select_run(screen, run_a)
        await pilot.press("d")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, PathDialog)
        dialog.query_one(Input).value = str(run_b / "genotype.json")
        await pilot.press("enter")
        await pilot.pause(0.3)
        compare = app.screen
        assert isinstance(compare, CompareScreen)
        assert not compare.query_one("#charts").display  # genotypes: no curves
        rows = diff_rows(compare.diff_lines())
        assert {k for k, (differs, _, _) in rows.items() if differs} == differing
        assert all((a, b) == (ea.get(k, "·"), eb.get(k, "·")) for k, (_, a, b) in rows.items())
        assert number_row(text_of(compare.query_one("#numbers", Static)).split("\n"), "edges differing") == [
            str(len(differing))]


# --- a language model: perplexity -----------------------------------------------------------------------
RNN = ("space=rnn", "rnn.nhid=12", "batch_size=4", "rnn.bptt=8", "data.limit=1200", "threads=1")


@sync
async def test_a_language_models_curves_and_comparison_speak_perplexity(tmp_path):
    """Two real recurrent searches on the embedded corpus: the replay charts their validation perplexity per epoch,
    and the comparison puts both perplexities side by side."""
    runs = tmp_path / "runs"
    a = nasp.search(None, *RNN, epochs=2, seed=1, name="rnn-a", out=str(runs))
    b = nasp.search(None, *RNN, epochs=2, seed=2, name="rnn-b", out=str(runs))
    ma, mb = RunFolder(a.run_dir).metrics(), RunFolder(b.run_dir).metrics()
    app = NaspApp(runs_dir=runs, mode="runs")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_runs(pilot, app)
        select_run(screen, Path(a.run_dir))
        await pilot.press("enter", "5")
        await pilot.pause(0.3)
        score = app.screen.query_one("#rc-score", CurveChart).lines()
        assert score[0].startswith("perplexity ") and "val ppl" in score[0]
        ppl = [m["val_ppl"] for m in ma]
        assert score[1].split()[0] == f"{max(ppl):.1f}" and score[-3].split()[0] == f"{min(ppl):.1f}"
        await pilot.press("escape")
        await pilot.pause()
        select_run(screen, Path(a.run_dir))
        await pilot.press("c")
        select_run(screen, Path(b.run_dir))
        await pilot.press("c")
        await pilot.pause(0.3)
        compare = app.screen
        assert isinstance(compare, CompareScreen)
        numbers = text_of(compare.query_one("#numbers", Static)).split("\n")
        assert number_row(numbers, "val ppl")[:2] == [f"{ma[-1]['val_ppl']:.2f}", f"{mb[-1]['val_ppl']:.2f}"]
        heads = [chart.lines()[0] for chart in compare.query(CurveChart)]
        assert heads[1].startswith("perplexity ") and "A val ppl" in heads[1] and "B val ppl" in heads[1]
        assert set(diff_rows(compare.diff_lines())) == set(edges_rnn(a.run_dir)) | set(edges_rnn(b.run_dir))


def edges_rnn(run: Path) -> dict[tuple[str, str], str]:
    """A recurrent cell's kept edges (its first node reads x_t and h_(t-1) together, then the nodes), as edges()."""
    genotype = json.loads((Path(run) / "genotype.json").read_text())
    return {(ct, f"{'x_{t}/h_{t-1}' if e['input'] == 0 else e['input'] - 1}→{j}"): e["op"]
            for ct, nodes in genotype["cells"].items() for j, node in enumerate(nodes) for e in node}


# --- snapshots (fixed run folders, as tests/test_tui.py's: stable pictures) ------------------------------
@pytest.fixture
def fixed_pair(tmp_path, monkeypatch):
    """Two fixed run folders whose genotypes differ in two edges of the normal cell."""
    monkeypatch.chdir(tmp_path)
    fixed_run(Path("runs"))
    other = fixed_run(Path("runs"), name="20250102-000000-darts-1st-cnn12", status="stopped", done=2)
    normal = [("skip_connect", 0) if k == 0 else ("sep_conv_7x7", 2) if k == 5 else pair for k, pair in enumerate(NORMAL)]
    (other / "genotype.json").write_text(Genotype.from_pairs("cnn12", normal=normal, reduce=REDUCE).to_json())
    return Path("runs")


async def _compare_first_two(pilot):
    await pilot.press("c", "down", "c")
    await pilot.pause(0.3)
    pilot.app.clear_notifications()  # "marked ...": a toast over the picture
    await pilot.pause()
    assert isinstance(pilot.app.screen, CompareScreen)


def test_snapshot_compare(snap_compare, fixed_pair):
    assert snap_compare(NaspApp(runs_dir="runs", mode="runs"), terminal_size=(80, 24), run_before=_compare_first_two)


def test_snapshot_compare_wide(snap_compare, fixed_pair):
    assert snap_compare(NaspApp(runs_dir="runs", mode="runs"), terminal_size=(200, 50), run_before=_compare_first_two)


def test_snapshot_replay_curves(snap_compare, fixed_pair):
    async def curves(pilot):
        await pilot.press("enter", "5")
        await pilot.pause(0.3)
        assert isinstance(pilot.app.screen, ReplayScreen)

    assert snap_compare(NaspApp(runs_dir="runs", mode="runs"), terminal_size=(80, 24), run_before=curves)


@sync
async def test_compare_a_search_with_the_evaluation_of_its_genotype(real_runs, tmp_path):
    """A search and a real `nasp eval` of its genotype: the evaluation's test accuracy per epoch is charted and its
    last one shown (the search has none: -), and the two genotypes are the same edge for edge."""
    from nasp.evaluation import eval_config, start_eval

    _, run_a, _ = real_runs
    runs = tmp_path / "runs"
    shutil.copytree(run_a, runs / run_a.name)
    cfg = eval_config([f"genotype={runs / run_a.name}", "epochs=2", "data.limit=32", "data.test_limit=16",
                       "model.layers=2", "model.channels=4", "batch_size=16", "threads=1", f"out={runs}", "name=ev"])
    start_eval(cfg, console=False).fit()
    test_acc = [m["test_acc"] for m in RunFolder(runs / "ev").metrics()]
    app = NaspApp(runs_dir=runs, mode="runs")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_runs(pilot, app)
        select_run(screen, runs / run_a.name)
        await pilot.press("c")
        select_run(screen, runs / "ev")
        await pilot.press("c")
        await pilot.pause(0.3)
        compare = app.screen
        assert isinstance(compare, CompareScreen)
        numbers = text_of(compare.query_one("#numbers", Static)).split("\n")
        assert number_row(numbers, "test acc") == ["-", f"{test_acc[-1]:.4f}"]
        assert number_row(numbers, "edges differing") == ["0"]
        score = [chart.lines() for chart in compare.query(CurveChart)][1]
        assert "B test acc" in score[0] and "A val acc" in score[0]
        rows = diff_rows(compare.diff_lines())
        assert rows and not any(differs for differs, _, _ in rows.values())
