"""benchmarks/bit_identity.py: a search's first steps digested with pinned threads; the same run is identical to its
reference, a deliberate perturbation (a learning rate changed in its 8th digit) is caught at the step it acts."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = ["data.limit=128", "batch_size=16", "model.channels=4", "model.layers=3", "epochs=1", "algorithm.warmup=0"]


@pytest.fixture(scope="module")
def bit_identity():
    spec = importlib.util.spec_from_file_location("bit_identity", ROOT / "benchmarks" / "bit_identity.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_same_run_is_identical_and_a_perturbation_is_caught(bit_identity, tmp_path, capsys):
    ref = tmp_path / "ref.json"
    assert bit_identity.main(["--write", "--steps", "3", str(ref), *TINY]) == 0
    saved = json.loads(ref.read_text())
    assert saved["steps"] == 3 and saved["threads"] == 1 and len({d["weights"] for d in saved["trail"]}) == 3
    assert bit_identity.main([str(ref)]) == 0
    assert "identical" in capsys.readouterr().out
    assert bit_identity.main([str(ref), "optim.lr=0.05000001"]) == 1  # the weights' step: step 1's weights
    assert "NOT identical: step 1: weights differ" in capsys.readouterr().out
    assert bit_identity.main([str(ref), "algorithm.lr=0.00030001"]) == 1  # A's step; Ā may still agree
    assert "NOT identical: step 1: A" in capsys.readouterr().out


def test_bad_reference_is_one_line_and_exit_2(bit_identity, tmp_path, capsys):
    assert bit_identity.main([str(tmp_path / "missing.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot read the reference" in err
