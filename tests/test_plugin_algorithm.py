"""A user's own algorithm in a plugin file, with its own option, through the real `nasp` command."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nasp.algorithms import algorithm_options
from nasp.config import RunConfig
from nasp.genotype import Genotype

PLUGIN = '''
from pathlib import Path

from pydantic import Field

from nasp.algorithms import ProximalOptions, register_algorithm
from nasp.algorithms.nasp import NASP


class TemperatureOptions(ProximalOptions):
    temperature: float = Field(1.0, gt=0, description="divides the architecture gradient")


@register_algorithm("nasp-temp")
class NASPTemperature(NASP):
    """NASP whose architecture gradient is divided by a temperature."""

    Options = TemperatureOptions

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # what the algorithm received, where the test can read it
        Path(__file__).with_name("seen.txt").write_text(f"{type(self.cfg).__name__} {self.cfg.temperature!r}")

    def arch_update(self, grads):
        super().arch_update({ct: g / self.cfg.temperature for ct, g in grads.items()})
'''

SMALL = ["epochs=1", "data.limit=64", "model.channels=4", "model.layers=2", "batch_size=16"]


def nasp(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nasp", *args], capture_output=True, text=True, timeout=600,
                          check=False)


@pytest.fixture(scope="module")
def plugin_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # one file for the whole module: a process (this one, for the in-process checks) imports a plugin once
    path = tmp_path_factory.mktemp("plugin") / "temperature.py"
    path.write_text(PLUGIN)
    return path


@pytest.fixture
def plugin(plugin_file: Path) -> Path:
    (plugin_file.parent / "seen.txt").unlink(missing_ok=True)
    return plugin_file


def test_plugin_algorithm_runs_with_its_own_option(plugin: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    proc = nasp("run", f"plugins={plugin}", "algorithm=nasp-temp", "algorithm.temperature=2.5", *SMALL, f"out={out}")
    assert proc.returncode == 0, proc.stderr
    (run,) = list(out.iterdir())
    geno = Genotype.load(run / "genotype.json")
    assert geno.space == "cnn12" and len(geno.cells["normal"]) == 4
    # the value reached the algorithm, typed by the plugin's own model
    assert (plugin.parent / "seen.txt").read_text() == "TemperatureOptions 2.5"
    # the run's config.json keeps it and reads back as a RunConfig whose options check against the plugin's model
    data = json.loads((run / "config.json").read_text())
    assert data["algorithm"]["name"] == "nasp-temp" and data["algorithm"]["temperature"] == 2.5
    cfg = RunConfig.model_validate(data)
    assert RunConfig.model_validate_json(cfg.model_dump_json()) == cfg
    options = algorithm_options(cfg)  # loads the plugin named in the config
    assert type(options).__name__ == "TemperatureOptions" and options.temperature == 2.5 and options.eta == 0.0


def test_plugin_algorithm_default_reaches_it(plugin: Path, tmp_path: Path) -> None:
    proc = nasp("run", f"plugins={plugin}", "algorithm=nasp-temp", *SMALL, f"out={tmp_path / 'runs'}")
    assert proc.returncode == 0, proc.stderr
    assert (plugin.parent / "seen.txt").read_text() == "TemperatureOptions 1.0"


@pytest.mark.parametrize(("args", "needles"), [
    (["algorithm.temperature=-1"], ["'algorithm.temperature'", "-1", "greater than 0"]),
    (["algorithm.temperature=hot"], ["'algorithm.temperature'", "'hot'", "valid number"]),
    (["algorithm.temperature=.inf"], ["'algorithm.temperature'", "inf", "finite"]),
    (["algorithm.temperatur=2"], ["'algorithm.temperatur'", "Did you mean 'algorithm.temperature'"]),
    (["algorithm.second_order=true"], ["'algorithm.second_order'", "does not apply to nasp-temp", "pa-lazy"]),
], ids=["negative", "text", "inf", "typo", "other-algorithm"])
def test_bad_value_of_a_plugin_option_is_one_line(plugin: Path, tmp_path: Path, args: list[str],
                                                   needles: list[str]) -> None:
    out = tmp_path / "runs"
    proc = nasp("run", f"plugins={plugin}", "algorithm=nasp-temp", *args, *SMALL, f"out={out}")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nasp run: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert not out.exists() or not any(out.iterdir())  # no run folder for a config that cannot run
    assert not (plugin.parent / "seen.txt").exists()


def test_a_builtin_algorithm_refuses_the_plugin_option(plugin: Path, tmp_path: Path) -> None:
    proc = nasp("run", f"plugins={plugin}", "algorithm=nasp", "algorithm.temperature=2", *SMALL,
                f"out={tmp_path / 'runs'}")
    assert proc.returncode == 2
    assert "key 'algorithm.temperature' does not apply to nasp (it applies to nasp-temp)" in proc.stderr


def test_listings_show_the_plugin_algorithm_keys(plugin: Path) -> None:
    proc = nasp("config", f"plugins={plugin}", "algorithm=nasp-temp", "algorithm.temperature=3")
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line.split()[1] for line in proc.stdout.splitlines() if line.startswith("algorithm.")}
    assert rows["algorithm.temperature"] == "3.0" and rows["algorithm.eta"] == "0.0"
    assert "algorithm.second_order" not in rows
    listing = nasp("algorithms", "--plugins", str(plugin))
    assert listing.returncode == 0, listing.stderr
    assert "nasp-temp" in listing.stdout and "temperature=1.0" in listing.stdout


def test_the_form_checks_the_plugin_algorithm_keys(plugin: Path) -> None:
    from tui import configform

    ok = configform.check([f"plugins={plugin}", "algorithm=nasp-temp", "algorithm.temperature=2"])
    assert ok.error is None and ok.config is not None
    keys = [f.key for f in configform.form_fields("nasp-temp")]
    assert "algorithm.temperature" in keys and "algorithm.second_order" not in keys
    bad = configform.check([f"plugins={plugin}", "algorithm=nasp-temp", "algorithm.temperature=0"])
    assert bad.config is None and bad.key == "algorithm.temperature" and "greater than 0" in (bad.error or "")


def test_the_setup_screen_shows_the_chosen_algorithm_keys(plugin: Path, tmp_path: Path) -> None:
    import asyncio

    from textual.widgets import Input, Select

    from tui.app import NaspApp

    async def body() -> None:
        app = NaspApp(runs_dir=tmp_path / "runs")
        async with app.run_test(size=(80, 40)) as pilot:
            screen = app.screen
            assert screen.query_one("#f-algorithm-init", Input).value == "0.5"
            assert not screen.query("#row-f-algorithm-second_order")
            screen.query_one("#f-algorithm-name", Select).value = "darts-1st"
            await pilot.pause()
            assert screen.query_one("#f-algorithm-init", Input).value == "0.001"  # darts's own default
            assert not screen.query("#row-f-algorithm-eta")
            screen.query_one("#f-algorithm-name", Select).value = "pa-lazy"
            await pilot.pause()
            assert screen.query_one("#row-f-algorithm-second_order")
            assert screen.query_one("#f-algorithm-selected_value", Select).value == "keep"
            # a plugin named in the form brings its algorithm and, once chosen, that algorithm's own key
            screen.query_one("#f-plugins", Input).value = str(plugin)
            await pilot.pause()
            screen.query_one("#f-algorithm-name", Select).value = "nasp-temp"
            await pilot.pause()
            temperature = screen.query_one("#f-algorithm-temperature", Input)
            assert temperature.value == "1.0" and not screen.query("#row-f-algorithm-second_order")
            temperature.value = "-2"
            await pilot.pause()
            assert screen.checked.key == "algorithm.temperature"
            assert screen.query_one("#row-f-algorithm-temperature").has_class("-bad")

    asyncio.run(body())
