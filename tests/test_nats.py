"""NAS-Bench-201's table looked up from files in NATS-Bench's format (written here, as the benchmark writes them:
bz2-compressed pickles of OrderedDicts and NumPy scalars), and hostile files that must run nothing."""

import bz2
import collections
import itertools
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from nasp.cli.main import main
from nasp.errors import DataError
from nasp.nats import Bench201, read_table_file

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
SEEDS = (777, 888, 999)


def arch_strings() -> list[str]:
    out = []
    for ops in itertools.product(OPS, repeat=6):
        it = iter(ops)
        out.append("+".join("|" + "|".join(f"{next(it)}~{i}" for i in range(j + 1)) + "|" for j in range(3)))
    return out


def _save(obj, path):
    with bz2.open(path, "wb") as f:
        pickle.dump(obj, f, protocol=4)


def _result(dataset, seed, sets, acc):
    """One trial as NATS-Bench stores it (ResultsCount's state): per evaluation set and epoch its accuracy."""
    epochs = 200
    return {"name": dataset, "epochs": epochs, "seed": seed, "params": np.float64(0.802426),
            "flop": np.float64(113.95137), "latency": [np.float64(0.0161)], "eval_names": list(sets),
            "train_acc1es": collections.OrderedDict((e, 50.0) for e in range(epochs)),
            "eval_acc1es": {f"{s}@{e}": (acc[s] if e == epochs - 1 else 10.0) for s in sets for e in range(epochs)},
            "eval_losses": {f"{s}@{e}": 1.0 for s in sets for e in range(epochs)}, "net_state_dict": None}


def write_table(folder, cells: dict[str, dict]) -> dict[str, float]:
    """A NATS-tss folder: meta.pickle.pbz2 with every architecture string, and a file for each of ``cells``
    (arch string -> {seed offset}); returns the expected mean CIFAR-10 test accuracy of each."""
    folder.mkdir(parents=True, exist_ok=True)
    archs = arch_strings()
    _save({"meta_archs": archs, "total_archs": len(archs), "arch2infos": {}, "evaluated_indexes": set()},
          folder / "meta.pickle.pbz2")
    expected = {}
    for arch, base in cells.items():
        index = archs.index(arch)
        results, seeds = {}, {}
        for ds, sets in [("cifar10-valid", ("x-valid", "ori-test")), ("cifar10", ("ori-test",)),
                         ("cifar100", ("ori-test", "x-valid", "x-test"))]:
            seeds[ds] = list(SEEDS)
            for k, seed in enumerate(SEEDS):
                acc = {s: base + k + {"x-valid": 0.5, "x-test": -20.0, "ori-test": 0.0}[s] for s in sets}
                results[(ds, seed)] = _result(ds, seed, sets, acc)
        state = {"arch_index": index, "arch_str": arch, "all_results": results, "dataset_seed": seeds,
                 "clear_net_done": True}
        _save(collections.OrderedDict([("12", state), ("200", state)]), folder / f"{index:06d}.pickle.pbz2")
        expected[arch] = base + 1.0  # the mean over seeds of base, base + 1, base + 2
    return expected


CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|"


def test_lookup_gives_the_tabulated_numbers(tmp_path):
    folder = tmp_path / "NATS-tss-v1_0-3ffb9-simple"
    expected = write_table(folder, {CELL: 90.0})
    for root in (folder, tmp_path):  # the folder itself, or a folder holding it ($TORCH_HOME)
        table = Bench201.open(root)
        assert len(table.archs) == 15625
        assert table.accuracy(CELL) == pytest.approx(expected[CELL])  # cifar10 ori-test, mean of 3 seeds
        assert table.accuracy(CELL, "cifar10", "valid") == pytest.approx(91.5)  # cifar10-valid x-valid
        assert table.accuracy(CELL, "cifar100", "test") == pytest.approx(71.0)  # x-test
        assert table.accuracy("|none~0|+|none~0|none~1|+|none~0|none~1|none~9|") is None
    # the NumPy scalars came back as plain numbers, decoded without NumPy
    state = read_table_file(folder / f"{table.index(CELL):06d}.pickle.pbz2")["200"]
    trial = state["all_results"][("cifar10", 777)]
    assert type(trial["params"]) is float and trial["params"] == 0.802426 and trial["latency"] == [0.0161]


class Hostile:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_hostile_table_files_run_nothing(tmp_path):
    marker = tmp_path / "marker"
    folder = tmp_path / "NATS-tss-v1_0-3ffb9-simple"
    write_table(folder, {CELL: 90.0})
    index = Bench201.open(folder).index(CELL)
    hostile = {"meta_archs": [CELL], "evil": Hostile(f"touch {marker}")}
    for name, obj in [("meta", hostile), (f"{index:06d}", collections.OrderedDict([("200", hostile)]))]:
        saved = (folder / f"{name}.pickle.pbz2").read_bytes()
        _save(obj, folder / f"{name}.pickle.pbz2")
        with pytest.raises(DataError) as err:
            Bench201.open(folder).accuracy(CELL)
        assert "posix.system" in str(err.value) or "os.system" in str(err.value)
        assert "\n" not in str(err.value) and not marker.exists()
        (folder / f"{name}.pickle.pbz2").write_bytes(saved)
    # other ways a pickle calls code: builtins, a class's __setstate__, copyreg
    for obj in [eval, collections.Counter("ab"), pickle.loads, type]:
        _save({"meta_archs": [CELL], "x": obj}, folder / "meta.pickle.pbz2")
        with pytest.raises(DataError, match="a table file has no need of"):
            Bench201.open(folder)


def test_missing_and_malformed_files_are_one_line(tmp_path, capsys):
    cases = {tmp_path / "nowhere": "is not a folder", tmp_path / "empty": "holds no meta.pickle.pbz2"}
    (tmp_path / "empty").mkdir()
    bad = tmp_path / "bad"
    bad.mkdir()
    for content, words in [(b"not bz2 at all", "cannot be read as bz2"), (bz2.compress(b"\x80\x04junk"), "truncated"),
                           (bz2.compress(pickle.dumps([1, 2])), "no list of architecture strings"),
                           (bz2.compress(b"abc")[:20], "")]:
        (bad / "meta.pickle.pbz2").write_bytes(content)
        with pytest.raises(DataError) as err:
            Bench201.open(bad)
        assert words in str(err.value) and "\n" not in str(err.value)
    (bad / "meta.pickle.pbz2").unlink()
    os.mkfifo(bad / "meta.pickle.pbz2")  # a FIFO nobody writes: refused at once, no hang
    with pytest.raises(DataError, match="FIFO"):
        Bench201.open(bad)
    for root, words in cases.items():
        with pytest.raises(DataError, match=words):
            Bench201.open(root)
    # a cell file missing from the folder
    folder = tmp_path / "t"
    write_table(folder, {})
    with pytest.raises(DataError, match="does not exist"):
        Bench201.open(folder).accuracy(CELL)
    # at the command line: exit 2, one line naming the key
    assert main(["run", "space=nb201", f"bench201.root={tmp_path / 'nowhere'}", "epochs=1", "data.limit=32",
                 f"out={tmp_path / 'runs'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert "bench201.root" in err and len(err.splitlines()) == 1


def test_search_epochs_carry_the_tabulated_accuracy_and_the_study_table_shows_it(tmp_path, capsys):
    """A search's cell is looked up each epoch; the study table has a column for it."""
    args = ["space=nb201", "algorithm=random", "threads=1", "data.limit=64", "batch_size=16", "dense.channels=2",
            "dense.cells=1", "epochs=2"]
    assert main(["run", *args, f"out={tmp_path / 'plain'}"]) == 0
    (plain,) = list((tmp_path / "plain").iterdir())
    cells = [json.loads(line)["genotype"] for line in (plain / "history.jsonl").read_text().splitlines()]
    from nasp.genotype import Genotype
    from nasp.genotypes.nb201 import to_nb201

    archs = [to_nb201(Genotype.model_validate(c)) for c in cells]
    expected = write_table(tmp_path / "bench", {a: 60.0 + 10 * i for i, a in enumerate(dict.fromkeys(archs))})
    env = {**os.environ, "NASP_BENCH201": str(tmp_path / "bench"), "OMP_NUM_THREADS": "1"}
    study = tmp_path / "study.yaml"
    study.write_text("seeds: [0]\nthreads: 1\nsearch: {space: nb201, data: {limit: 64}, batch_size: 16, epochs: 2, "
                     "dense: {channels: 2, cells: 1}}\narms:\n  - {label: random, search: {algorithm: random}, "
                     "evaluate: false}\n")
    done = subprocess.run([sys.executable, "-m", "nasp.cli.main", "study", "--config", str(study),
                           f"out={tmp_path / 'st'}"], env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    (run,) = list((tmp_path / "st" / "search").iterdir())
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["bench201_test"] for m in metrics] == [pytest.approx(expected[a]) for a in archs]
    assert [m["bench201_valid"] for m in metrics] == [pytest.approx(expected[a] + 0.5)
                                                      for a in archs]
    table = (tmp_path / "st" / "results.md").read_text()
    assert "NB201 test acc (%)" in table and f"{expected[archs[-1]]:.2f}" in table
    assert "NB201 test" in done.stderr  # the epoch line
