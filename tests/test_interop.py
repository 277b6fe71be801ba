"""What people expect of a PyTorch tool: DARTS genotype strings, loggers (CSV, TensorBoard), evaluating what one
searched with the search's data, presets by name, a YAML config to start from, options anywhere on the line."""

from __future__ import annotations

import csv
import importlib.util
import json
import logging
from pathlib import Path

import pytest
import torch

from nasp.cli.main import main
from nasp.config import RunConfig, build_config, load_yaml, parse_overrides
from nasp.errors import ConfigError, GenotypeError
from nasp.evaluation.config import eval_config
from nasp.genotype import Genotype
from nasp.genotypes import get_genotype, read_genotype
from nasp.genotypes.darts import parse_darts, to_darts
from nasp.runfolder import RunFolder
from nasp.search_run import start_run

# DARTS_V2 as DARTS's genotypes.py writes it (concat as a list)
DARTS_V2_FROM_DARTS = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")
HAS_TENSORBOARD = importlib.util.find_spec("tensorboard") is not None


# --- DARTS genotype strings --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,space", [("DARTS_V2", "cnn7"), ("NASP", "cnn12")])
def test_darts_string_round_trip(name, space):
    geno = get_genotype(name)
    text = to_darts(geno)
    assert text.startswith("Genotype(normal=[(") and "normal_concat=range(2, 6)" in text and "reduce_concat=range(2, 6)" in text
    back = parse_darts(text)
    assert back == geno and back.space == space
    assert to_darts(back) == text


def test_darts_code_string_evaluates_to_darts_v2(capsys):
    assert parse_darts(DARTS_V2_FROM_DARTS) == get_genotype("DARTS_V2")
    assert read_genotype(DARTS_V2_FROM_DARTS) == get_genotype("DARTS_V2")
    assert main(["eval", f"genotype={DARTS_V2_FROM_DARTS}", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "3.35M parameters" in out and "(cnn7)" in out


def test_darts_string_is_parsed_never_executed(tmp_path, capsys):
    marker = tmp_path / "executed"
    for text in [f"Genotype(normal=open({str(marker)!r}, 'w'), normal_concat=range(2, 6))",
                 f"Genotype(normal=[('skip_connect', 0)] * 8, normal_concat=__import__('os').system('touch {marker}'))",
                 f"__import__('os').system('touch {marker}')"]:
        with pytest.raises(GenotypeError):
            parse_darts(text)
        assert main(["eval", f"genotype={text}", "--dry-run"]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not marker.exists()


def test_darts_string_errors_name_the_problem():
    bad_concat = to_darts(get_genotype("NASP")).replace("normal_concat=range(2, 6)", "normal_concat=range(2, 5)")
    with pytest.raises(GenotypeError, match=r"concatenate every node, range\(2, 6\)"):
        parse_darts(bad_concat)
    with pytest.raises(GenotypeError, match="no registered space has exactly those cell types"):
        parse_darts("Genotype(recurrentx=[('relu', 0)], concat=range(1, 2))")
    with pytest.raises(GenotypeError, match="'conv_9x9' is not in the normal ops"):
        parse_darts(to_darts(get_genotype("DARTS_V2")).replace("dil_conv_3x3", "conv_9x9"))


# --- a search with loggers, then what comes after it -----------------------------------------------------------------
@pytest.fixture(scope="module")
def search_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    loggers = "csv,tensorboard" if HAS_TENSORBOARD else "csv"
    cfg = build_config(parse_overrides(["data.limit=64", "batch_size=16", "model.channels=4", "model.layers=2",
                                        "epochs=2", "threads=1", f"out={out}", "name=s", f"loggers={loggers}"]))
    trainer = start_run(cfg, console=False)
    assert trainer.fit().status == "finished"
    assert torch.get_num_threads() == 1  # threads= took effect
    return trainer.folder.path


def test_csv_logger_matches_metrics(search_run):
    metrics = RunFolder(search_run).metrics()
    with open(RunFolder(search_run).metrics_csv_path) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    for row, m in zip(rows, metrics, strict=True):
        assert float(row["val_acc"]) == pytest.approx(m["val_acc"]) and float(row["train_loss"]) == pytest.approx(m["train_loss"])


@pytest.mark.skipif(not HAS_TENSORBOARD, reason="the tensorboard extra is not installed (CI installs it)")
def test_tensorboard_events_are_readable(search_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(RunFolder(search_run).tensorboard_dir))
    acc.Reload()
    metrics = RunFolder(search_run).metrics()
    assert {"val_acc", "train_loss", "param_count"} <= set(acc.Tags()["scalars"])
    vals = acc.Scalars("val_acc")
    assert [v.step for v in vals] == [1, 2]
    assert [v.value for v in vals] == pytest.approx([m["val_acc"] for m in metrics])


def test_unknown_or_missing_logger_is_one_line(tmp_path, capsys):
    assert main(["run", "loggers=csv,tensorbored", f"out={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "key 'loggers': unknown logger 'tensorbored'. Did you mean 'tensorboard'?" in err
    assert not any(tmp_path.iterdir())  # refused before any run folder


def test_eval_of_a_search_defaults_to_its_data_and_the_cpu_preset(search_run, tmp_path):
    cfg = eval_config([f"genotype={search_run}"])
    assert (cfg.data.name, cfg.model.channels, cfg.model.layers, cfg.device) == ("embedded", 8, 5, "cpu")  # eval-cpu
    assert eval_config([f"genotype={search_run}", "model.channels=6", "epochs=1"]).model.channels == 6  # explicit wins
    assert eval_config([f"genotype={search_run}", "data=cifar10"]).model.channels == 36  # not embedded: no preset
    paper = eval_config([f"genotype={search_run}"], "eval-cifar10")  # a --config's keys win too
    assert (paper.data.name, paper.model.channels) == ("cifar10", 36)
    edited = get_genotype("NASP").save(search_run / "edited.json")  # an edit saved next to the search
    assert eval_config([f"genotype={edited}"]).data.name == "embedded"
    assert eval_config(["genotype=NASP"]).data.name == "cifar10"  # a name brings no data


def test_export_darts_of_a_run(search_run, capsys):
    assert main(["genotypes", "export", str(search_run), "--format", "darts"]) == 0
    text = capsys.readouterr().out.strip()
    assert parse_darts(text) == Genotype.load(search_run)
    assert main(["genotypes", "export", str(search_run), "--format", "json"]) == 0
    assert Genotype.from_json(capsys.readouterr().out) == Genotype.load(search_run)


# --- the command line ---------------------------------------------------------------------------------------------
def test_options_anywhere_on_the_line(capsys):
    assert main(["eval", "genotype=NASP", "--dry-run", "model.channels=16", "model.layers=8"]) == 0
    assert "C=16, 8 cells" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["eval", "genotype=NASP", "--dry-run", "--bogus"])
    assert exc.value.code == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_presets_by_name_and_yaml_config_to_start_from(tmp_path, capsys):
    assert main(["eval", "--config", "eval-cpu", "genotype=NASP", "--dry-run"]) == 0
    assert "C=8, 5 cells" in capsys.readouterr().out
    assert main(["eval", "--config", "eval-cpux", "genotype=NASP", "--dry-run"]) == 2
    assert "Did you mean 'eval-cpu'?" in capsys.readouterr().err
    assert main(["config", "--format", "yaml", "algorithm=darts-2nd", "epochs=7"]) == 0
    path = tmp_path / "my.yaml"
    path.write_text(capsys.readouterr().out)
    loaded = build_config(load_yaml(path))
    assert loaded.epochs == 7 and loaded.algorithm.name == "darts-2nd" and loaded.algorithm.given  # its options too
    assert loaded.model_dump() == build_config(load_yaml(path)).model_dump()
    assert loaded.data == RunConfig().data
    with pytest.raises(ConfigError):
        build_config(parse_overrides(["threads=0"]))


def test_library_messages_go_through_logging(capsys):
    from nasp.cli.main import setup_logging

    setup_logging()
    logging.getLogger("nasp.trainer.launch").warning("the latest checkpoint is damaged")
    err = capsys.readouterr().err
    assert err.strip() == "nasp: warning: the latest checkpoint is damaged"
    assert json.dumps(err)  # plain text, one line


def test_api_example_runs(tmp_path):
    """docs/api.md's example, run as a user would run it (its own process, outside the checkout)."""
    import re
    import subprocess
    import sys

    doc = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text()
    code = re.search(r"```python\n(.*?)```", doc, re.S).group(1)
    script = tmp_path / "search.py"
    script.write_text(code)
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "epoch 1/2: val acc" in out and "epoch 2/2: val acc" in out and "finished -> run folder" in out
    assert re.search(r"edge c_\{k-2\}→0 keeps (skip_connect|conv_3x3|conv_5x5)", out), out  # Ā labelled
    assert re.search(r"Genotype\(normal=\[\('(skip_connect|conv_3x3|conv_5x5)', \d\)", out), out
    assert re.search(r"test accuracy 0\.\d{3}", out), out


def test_recurrent_darts_strings_round_trip_to_the_rnn_space():
    """DARTS's published RNN cells, as its genotypes.py writes them, read into the built-in `rnn` space and equal the
    named genotypes; nasp writes them back character for character."""
    from nasp.genotypes import get_genotype

    darts_v2_rnn = ("Genotype(recurrent=[('sigmoid', 0), ('relu', 1), ('relu', 1), ('identity', 1), ('tanh', 2), "
                    "('sigmoid', 5), ('tanh', 3), ('relu', 5)], concat=range(1, 9))")
    geno = parse_darts(darts_v2_rnn)
    assert geno.space == "rnn" and geno.resolve_space().kind == "rnn"
    assert geno == get_genotype("DARTS_V2_RNN")
    assert to_darts(geno) == darts_v2_rnn
    v1 = get_genotype("DARTS_V1_RNN")
    assert parse_darts(to_darts(v1)) == v1
    with pytest.raises(GenotypeError, match="range\\(1, 9\\)"):
        parse_darts(darts_v2_rnn.replace("range(1, 9)", "range(1, 8)"))
