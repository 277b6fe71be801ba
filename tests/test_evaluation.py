"""`nasp eval` / `nasp test`: evaluation networks, named genotypes, data splits, resume, every bad input."""

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import StopAfter

from nasp.cli.main import main
from nasp.data.datasets import EMBEDDED_TRAIN, ImageFolderSet, load_dataset, register_dataset
from nasp.errors import DataError, GenotypeError
from nasp.evaluation import EvalNetwork, count_params, eval_config, resume_eval, start_eval
from nasp.evaluation.config import EvalConfig
from nasp.evaluation.data import build_eval_data, cutout
from nasp.evaluation.network import DropPath
from nasp.evaluation.task import EvalTask, learning_rate
from nasp.genotype import Genotype
from nasp.genotypes import get_genotype, list_genotypes, register_genotype, resolve_genotype
from nasp.model.budget import genotype_params
from nasp.ops import list_ops
from nasp.spaces import CellSpace, SearchSpace

# a seconds-long evaluation on the real embedded data
TINY = ["data=embedded", "data.limit=64", "data.test_limit=64", "batch_size=16", "model.channels=4", "model.layers=3",
        "epochs=1", "data.cutout=8", "model.drop_path=0.3", "device=cpu"]


# the `nasp` command in a fresh process (`python -m nasp.cli.main` would not see commands other modules register)
NASP = [sys.executable, "-c", "import sys; from nasp.cli.main import main; sys.exit(main())"]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The networks here are tiny: one thread is as fast as two, and far faster while other processes load the CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def only_dir(folder: Path) -> Path:
    (run,) = [p for p in folder.iterdir() if p.is_dir()]
    return run


# --- networks --------------------------------------------------------------------------------------------------
def test_published_parameter_counts():
    """DARTS_V2 at C=36, 20 cells: 3.35M without the auxiliary head (DARTS: 3.3M); the NASP cell: 7.36M (paper 7.4M)."""
    for name, millions in [("DARTS_V2", 3.35), ("NASP", 7.36)]:
        geno = get_genotype(name)
        with torch.device("meta"):
            net = EvalNetwork(geno, 36, 20, 10, 3)
        assert round(count_params(net) / 1e6, 2) == millions
        assert count_params(net) == genotype_params(geno, 36, 20)  # the child network, as the search counts it
        assert count_params(net, auxiliary=True) > count_params(net) + 400_000  # 128- and 768-channel convs
    with torch.device("meta"):
        imagenet = EvalNetwork(get_genotype("DARTS_V2"), 48, 14, 1000, 3, stem="imagenet")
    assert round(count_params(imagenet) / 1e6, 1) == 4.7  # DARTS paper, ImageNet mobile setting


def test_dry_run_prints_millions(capsys):
    assert main(["eval", "genotype=DARTS_V2", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "3.35M" in out and "DARTS_V2" in out
    assert main(["eval", "--config", "eval-cifar10", "genotype=NASP", "--dry-run"]) == 0
    assert "7.36M" in capsys.readouterr().out


def _one_op_genotype(op: str) -> Genotype:
    space = SearchSpace(name=f"only-{op}", kind="cnn",
                        cells={"normal": CellSpace(ops=(op,)), "reduce": CellSpace(ops=(op,), reduction=True)})
    pairs = [(op, 0), (op, 1), (op, 2), (op, 0), (op, 3), (op, 1), (op, 4), (op, 2)]
    return Genotype.from_pairs(space, normal=pairs, reduce=pairs)


@pytest.mark.parametrize("op", [o for o in list_ops("cnn") if not o.startswith("test_")])
def test_network_shapes_for_every_op_and_both_reductions(op):
    geno = _one_op_genotype(op)
    torch.manual_seed(0)
    for stem, shape in [("cifar", (2, 1, 28, 28)), ("cifar", (2, 3, 32, 32)), ("imagenet", (2, 3, 64, 64))]:
        net = EvalNetwork(geno, 4, 3, 7, shape[1], stem=stem)  # 3 cells: normal, reduce, reduce
        assert [c.reduction for c in net.cells] == [False, True, True]
        logits, aux = net(torch.randn(shape))
        assert logits.shape == (2, 7) and aux is not None and aux.shape == (2, 7)
        net.eval()
        assert net(torch.randn(shape)).shape == (2, 7)


def test_drop_path_only_in_training_and_never_on_identities():
    geno = get_genotype("DARTS_V2")
    torch.manual_seed(0)
    net = EvalNetwork(geno, 4, 3, 10, 1, auxiliary=False)
    wrapped = sum(isinstance(m, DropPath) for m in net.modules())
    ops = sum(1 for ct in ("normal", "reduce") for node in geno.cells[ct] for e in node
              for c in net.cells if c.reduction == (ct == "reduce")
              if not (e.op == "skip_connect" and (ct == "normal" or e.input >= 2)))
    assert wrapped == ops  # every op but the stride-1 identities
    x = torch.randn(8, 1, 28, 28)

    def train_out(prob, seed):
        net.set_drop_path(prob, torch.Generator().manual_seed(seed))
        return net(x)[0]

    net.train()
    assert torch.equal(train_out(0.5, 1), train_out(0.5, 1))  # masks come from the generator
    assert not torch.allclose(train_out(0.5, 1), train_out(0.5, 2))
    net.eval()
    net.set_drop_path(0.0)
    plain = net(x)
    net.set_drop_path(0.9, torch.Generator().manual_seed(3))
    assert torch.equal(net(x), plain)  # no drop-path at test time

    conv = DropPath(torch.nn.Identity(), net.drop)
    net.set_drop_path(0.5, torch.Generator().manual_seed(0))
    conv.train()
    y = conv(torch.ones(64, 2, 3, 3))
    per_sample = y.flatten(1)
    assert set(per_sample.unique().tolist()) == {0.0, 2.0}  # whole samples dropped, the rest scaled by 1/keep
    assert bool((per_sample == per_sample[:, :1]).all())


def test_auxiliary_head_only_in_training():
    torch.manual_seed(0)
    net = EvalNetwork(get_genotype("NASP"), 4, 6, 10, 3)
    net.train()
    logits, aux = net(torch.randn(2, 3, 32, 32))
    assert aux is not None and aux.shape == logits.shape
    net.eval()
    out = net(torch.randn(2, 3, 32, 32))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 10)
    no_aux = EvalNetwork(get_genotype("NASP"), 4, 6, 10, 3, auxiliary=False)
    assert no_aux(torch.randn(2, 3, 32, 32))[1] is None
    assert not any(n.startswith("auxiliary.") for n, _ in no_aux.named_parameters())


def test_cutout_zeroes_one_clipped_square_per_image():
    x = torch.ones(64, 3, 32, 32)
    out = cutout(x, 16, torch.Generator().manual_seed(0))
    holes = (out == 0).all(1)  # (n, h, w): zero in every channel
    assert torch.equal(out == 0, holes[:, None].expand_as(out))
    for hole in holes:
        rows, cols = hole.any(1).nonzero().flatten(), hole.any(0).nonzero().flatten()
        assert 1 <= len(rows) <= 16 and 1 <= len(cols) <= 16
        assert int(hole.sum()) == len(rows) * len(cols)  # a rectangle (a square clipped by the border)
    assert max(int(h.sum()) for h in holes) == 256
    assert torch.equal(out, cutout(x, 16, torch.Generator().manual_seed(0)))
    assert not torch.equal(out, cutout(x, 16, torch.Generator().manual_seed(1)))
    assert torch.equal(cutout(x, 0, torch.Generator()), x)


def test_learning_rate_schedules():
    cfg = eval_config(["epochs=10", "optim.lr=0.1"])
    assert learning_rate(cfg, 0) == pytest.approx(0.1)
    assert learning_rate(cfg, 5) == pytest.approx(0.05)
    assert learning_rate(cfg, 9) == pytest.approx(0.1 * (1 + math.cos(math.pi * 0.9)) / 2)
    step = eval_config(["epochs=10", "optim.lr=0.1", "optim.schedule=step", "optim.gamma=0.5", "optim.warmup_epochs=2"])
    assert [round(learning_rate(step, e), 4) for e in range(5)] == [0.05, 0.1, 0.1, 0.05, 0.025]


# --- genotypes and data ------------------------------------------------------------------------------------------
def test_named_genotypes_user_files_and_plugins(tmp_path, monkeypatch):
    assert {"DARTS_V1", "DARTS_V2", "NASP"} <= set(list_genotypes())
    assert get_genotype("darts_v2") == get_genotype("DARTS_V2")
    monkeypatch.setenv("NASP_GENOTYPES", str(tmp_path))
    get_genotype("NASP").save(tmp_path / "MINE.json")
    assert "MINE" in list_genotypes() and resolve_genotype("MINE") == get_genotype("NASP")
    assert resolve_genotype(tmp_path / "MINE.json") == get_genotype("NASP")
    register_genotype("TEST_V1_ALIAS", get_genotype("DARTS_V1"), overwrite=True)
    assert resolve_genotype("TEST_V1_ALIAS").space == "cnn7"


def test_embedded_splits_are_disjoint_and_search_uses_train():
    train, test = load_dataset("embedded"), load_dataset("embedded", split="test")
    assert (len(train), len(test)) == (EMBEDDED_TRAIN, 10_000 - EMBEDDED_TRAIN)
    full = torch.cat([train.images, test.images]).flatten(1)
    assert len(torch.unique(full, dim=0)) > 9_990  # (Fashion-MNIST has a few duplicate images)
    assert torch.bincount(test.labels, minlength=10).min() >= 150  # every class is tested
    with pytest.raises(DataError, match="split 'val'"):
        load_dataset("embedded", split="val")

    @register_dataset("test-train-only")
    def _train_only(root=None):
        return load_dataset("embedded")

    with pytest.raises(DataError, match="no test split"):
        load_dataset("test-train-only", split="test")


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").exists(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_has_both_splits():
    assert len(load_dataset("fashion-mnist", split="test")) == 10_000
    assert len(load_dataset("fashion-mnist")) == 60_000


def _write_folder(root: Path, classes=("ant", "bee", "cat"), per_class=6, size=12, val="val") -> Path:
    from torchvision.io import write_png

    gen = torch.Generator().manual_seed(0)
    for split, n in [("train", per_class), (val, 2)]:
        for k, c in enumerate(classes):
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                img = (torch.rand(3, size, size, generator=gen) * 60 + 80 * k).to(torch.uint8)
                write_png(img, str(root / split / c / f"{i}.png"))
    return root


def test_imagefolder_evaluation_is_reproducible(tmp_path):
    root = _write_folder(tmp_path / "folder")
    data = load_dataset("imagefolder", root)
    assert isinstance(data, ImageFolderSet) and data.classes == ("ant", "bee", "cat") and len(data) == 18
    assert data.images.shape == (18, 3, 12, 12)  # in memory, for a search
    cfg = eval_config(["genotype=DARTS_V2", "data=imagefolder", f"data.root={root}", "batch_size=4", "data.workers=0",
                       "data.cutout=4"])
    ev = build_eval_data(cfg, torch.device("cpu"), False)
    assert (ev.num_classes, ev.image_size, ev.train_images, ev.test_images, ev.steps_per_epoch) == (3, 12, 18, 6, 4)
    first = list(ev.train_epoch(3))
    again = list(ev.train_epoch(3))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again, strict=True))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first[2:], ev.train_epoch(3, 2), strict=True))  # resumable
    assert not torch.equal(first[0][0], next(iter(ev.train_epoch(4)))[0])
    assert sum(int(y.shape[0]) for _, y in ev.test_batches()) == 6
    # the whole evaluation through the command, with a loader process
    assert main(["eval", "genotype=DARTS_V2", "data=imagefolder", f"data.root={root}", "batch_size=6", "data.workers=1",
                 "model.channels=4", "model.layers=3", "epochs=1", "device=cpu", f"out={tmp_path / 'runs'}"]) == 0
    result = json.loads((only_dir(tmp_path / "runs") / "result.json").read_text())
    assert 0.0 <= result["test_acc"] <= 1.0


def test_tiny_imagenet_val_annotations(tmp_path):
    from torchvision.io import write_png

    root = _write_folder(tmp_path / "tiny", classes=("n01", "n02"), per_class=2, size=8)
    val = root / "val"
    for c in ("n01", "n02"):  # Tiny ImageNet's layout: val/images/*.JPEG + val/val_annotations.txt
        for f in (val / c).iterdir():
            f.unlink()
        (val / c).rmdir()
    (val / "images").mkdir()
    lines = []
    for i, c in enumerate(["n02", "n01", "n02"]):
        write_png(torch.zeros(3, 8, 8, dtype=torch.uint8), str(val / "images" / f"val_{i}.png"))
        lines.append(f"val_{i}.png\t{c}\t0\t0\t8\t8")
    (val / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    test = load_dataset("imagefolder", root, split="test")
    assert sorted(test.labels.tolist()) == [0, 1, 1] and test.classes == ("n01", "n02")


# --- end to end ----------------------------------------------------------------------------------------------------
def test_eval_a_search_run_end_to_end_and_test_it(tiny_run, tmp_path, capsys):
    assert main(["run", "algorithm=nasp", "space=cnn12", *tiny_run, "data.limit=64"]) == 0
    search = only_dir(tmp_path / "runs")
    capsys.readouterr()
    assert main(["eval", f"genotype={search}", *TINY, "epochs=2", f"out={tmp_path / 'evals'}"]) == 0
    out = capsys.readouterr().out
    run = only_dir(tmp_path / "evals")
    assert {"config.json", "genotype.json", "metrics.jsonl", "events.jsonl", "status.json", "checkpoint.pt", "best.pt",
            "last.pt", "result.json"} <= {p.name for p in run.iterdir()}
    assert Genotype.load(run) == Genotype.load(search)
    metrics = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2]
    assert metrics[0]["drop_path"] == 0.0 and metrics[1]["drop_path"] == pytest.approx(0.15)  # rises linearly
    result = json.loads((run / "result.json").read_text())
    assert result["test_acc"] == metrics[-1]["test_acc"] and 0.0 <= result["test_acc"] <= 1.0
    assert result["params"] == genotype_params(Genotype.load(search), 4, 3, 10, 1)
    assert f"{100 * result['test_acc']:.2f}%" in out and str(run) in out
    assert json.loads((run / "status.json").read_text())["status"] == "finished"
    assert main(["test", str(run), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["test_acc"] == pytest.approx(result["test_acc"]) and scored["images"] == 64
    assert main(["test", str(run / "best.pt"), "data.test_limit=32"]) == 0
    assert "on 32 test images" in capsys.readouterr().out




def _final(run_dir: Path):
    state = torch.load(run_dir / "last.pt", weights_only=True)
    metrics = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return state["model"], [{k: v for k, v in m.items() if not k.endswith("_s") and k != "images_per_s"}
                            for m in metrics]


def test_resume_ends_where_an_uninterrupted_run_ends(tmp_path):
    base = [*TINY, "genotype=NASP", "epochs=2", "data.limit=48", "data.test_limit=32", "seed=5"]  # 3 steps an epoch
    full = start_eval(eval_config([*base, f"out={tmp_path}/a"]), console=False)
    full.task.log_every = 1
    assert full.fit().status == "finished"
    stopped = start_eval(eval_config([*base, f"out={tmp_path}/b"]), [StopAfter(4)], console=False)
    stopped.task.log_every = 1
    assert stopped.fit().status == "stopped"  # mid-way through epoch 2
    resumed = resume_eval(stopped.run_dir, console=False)
    assert (resumed.progress.epoch, resumed.progress.step) == (1, 1)
    assert resumed.fit().status == "finished"
    (w_full, m_full), (w_res, m_res) = _final(full.run_dir), _final(resumed.run_dir)
    assert m_full == m_res
    for k in w_full:
        assert torch.equal(w_full[k], w_res[k]), k


def test_ctrl_c_leaves_a_checkpoint_and_resume_finishes(tmp_path, monkeypatch, capsys):
    """A real SIGINT, sent to this process after the third step, reaches the handler `nasp eval` installs."""
    real_step, steps = EvalTask.step, []

    def step_then_interrupt(self, *args):
        values = real_step(self, *args)
        steps.append(1)
        if len(steps) == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return values

    monkeypatch.setattr(EvalTask, "step", step_then_interrupt)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    assert main(["eval", "genotype=DARTS_V2", *TINY, f"out={tmp_path}"]) == 130  # 4 steps an epoch
    err = capsys.readouterr().err
    assert "Traceback" not in err and "nasp eval resume=" in err
    run = only_dir(tmp_path)
    assert len(steps) == 3 and (run / "checkpoint.pt").is_file() and not (run / "result.json").exists()
    assert torch.load(run / "checkpoint.pt", weights_only=True)["progress"]["step"] == 3
    assert json.loads((run / "status.json").read_text())["status"] == "stopped"
    assert main(["eval", f"resume={run}", "epochs=3"]) == 2
    assert "drop the other keys" in capsys.readouterr().err
    assert main(["eval", f"resume={run}"]) == 0
    assert len(steps) == 4  # only the step left
    assert json.loads((run / "status.json").read_text())["status"] == "finished"
    assert "test accuracy" in capsys.readouterr().out and (run / "result.json").is_file()
    # `nasp eval` put back the handlers it found
    assert {sig: signal.getsignal(sig) for sig in handlers} == handlers


def test_the_console_script_registers_eval():
    proc = subprocess.run([*NASP, "eval", "genotype=DARTS_V3", "--dry-run"], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 2 and "Did you mean 'DARTS_V2'" in proc.stderr and "Traceback" not in proc.stderr


# --- bad input -----------------------------------------------------------------------------------------------------
def _bad_genotype_files(tmp_path: Path) -> dict[str, Path]:
    other = json.loads(get_genotype("NASP").to_json())
    other["cells"]["reduce"][0][0]["op"] = "sep_conv_3x3"  # a cnn7 op in cnn12's reduce cell
    files = {"other_space": tmp_path / "other.json", "unknown_space": tmp_path / "unknown.json",
             "broken": tmp_path / "broken.json"}
    files["other_space"].write_text(json.dumps(other))
    files["unknown_space"].write_text(json.dumps({**json.loads(get_genotype("NASP").to_json()), "space": "cnn13"}))
    files["broken"].write_text("{not json")
    return files


BAD = [
    (["genotype=DARTS_V3"], ["unknown genotype 'DARTS_V3'", "Did you mean 'DARTS_V2'"]),
    ([], ["'genotype'", "run folder"]),
    (["genotype=runs/no/such/run"], ["runs/no/such/run", "no such file"]),
    (["genotype={other_space}"], ["reduce cell", "sep_conv_3x3", "not in the reduce ops of 'cnn12'"]),
    (["genotype={unknown_space}"], ["cnn13", "not registered"]),
    (["genotype={broken}"], ["invalid genotype"]),
    (["genotype=DARTS_V2", "genotyp=NASP"], ["genotyp", "Did you mean 'genotype'"]),
    (["genotype=DARTS_V2", "model.drop_path=1.5"], ["'model.drop_path'", "1.5"]),
    (["genotype=DARTS_V2", "data=cifar11"], ["'data'", "cifar11", "Did you mean 'cifar10'"]),
    (["genotype=DARTS_V2", "data=imagefolder", "data.root=/nonexistent/imagenet"], ["/nonexistent/imagenet", "train/"]),
    (["genotype=DARTS_V2", "data=imagefolder"], ["data.root"]),
    (["genotype=DARTS_V2", "data=fashion-mnist", "data.root=/nonexistent/fmnist"], ["/nonexistent/fmnist", "missing"]),
    (["genotype=DARTS_V2", "data=embedded", "data.augment=imagenet"], ["data.augment", "image folder"]),
    (["genotype=DARTS_V2", "data=embedded", "data.limit=8", "batch_size=16"], ["batch_size", "8 training images"]),
    (["genotype=DARTS_V2", "device=tpu"], ["'device'", "tpu"]),
    (["resume=/nonexistent/run"], ["resume", "not a folder"]),
    (["--config", "/nonexistent.yaml", "genotype=DARTS_V2"], ["--config", "/nonexistent.yaml"]),
]


@pytest.mark.parametrize(("args", "needles"), BAD, ids=[" ".join(a) or "no-genotype" for a, _ in BAD])
def test_bad_input_is_one_clear_message_and_exit_2(args, needles, tmp_path, capsys):
    files = _bad_genotype_files(tmp_path)
    args = [a.format(**files) for a in args]
    keys = {a.split("=")[0] for a in args}
    safe = ["data=embedded", "epochs=1", "data.limit=64", "batch_size=16", "model.channels=4", "model.layers=3",
            "device=cpu", f"out={tmp_path}"]  # what runs if a case were (wrongly) accepted: seconds, not hours
    if "resume" not in keys:
        args += [s for s in safe if s.split("=")[0] not in keys]
    assert main(["eval", *args]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, (needle, err)


def test_bad_folders_and_files(tmp_path, capsys):
    root = _write_folder(tmp_path / "ok")
    cases = []
    no_train = tmp_path / "no_train"
    (no_train / "val").mkdir(parents=True)
    cases.append((no_train, "has no train/ folder"))
    empty_class = _write_folder(tmp_path / "empty")
    (empty_class / "train" / "dog").mkdir()
    cases.append((empty_class, "dog' has no images"))
    stray = _write_folder(tmp_path / "stray")
    (stray / "val" / "eel").mkdir()
    (stray / "train" / "ant" / "0.png").rename(stray / "val" / "eel" / "0.png")
    cases.append((stray, "classes that train/ lacks: eel"))
    no_val = _write_folder(tmp_path / "no_val", val="other")
    cases.append((no_val, "no val/ or test/"))
    broken = _write_folder(tmp_path / "broken")
    (broken / "val" / "ant" / "0.png").write_bytes(b"not a png")
    for folder, needle in cases:
        assert main(["eval", "genotype=DARTS_V2", "data=imagefolder", f"data.root={folder}", "batch_size=4",
                     "data.workers=0", "model.channels=4", "model.layers=3", "epochs=1", f"out={tmp_path}/r"]) == 2
        err = capsys.readouterr().err
        assert needle in err and "Traceback" not in err, (needle, err)
    assert main(["eval", "genotype=DARTS_V2", "data=imagefolder", f"data.root={broken}", "batch_size=6", "data.workers=1",
                 "model.channels=4", "model.layers=3", "epochs=1", f"out={tmp_path}/r"]) == 2
    err = capsys.readouterr().err
    assert "cannot decode" in err and "0.png" in err and "Traceback" not in err
    # nasp test on things that are not models; resume of a search run
    assert main(["test", str(root)]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "junk.pt").write_bytes(b"junk")
    assert main(["test", str(tmp_path / "junk.pt")]) == 2
    assert "unreadable" in capsys.readouterr().err
    search = tmp_path / "search"
    search.mkdir()
    (search / "config.json").write_text(json.dumps({"algorithm": {"name": "nasp"}}))
    assert main(["eval", f"resume={search}"]) == 2
    assert "nasp run resume=" in capsys.readouterr().err


def test_genotypes_listing(capsys):
    assert main(["genotypes"]) == 0
    out = capsys.readouterr().out
    assert "DARTS_V2" in out and "3.35M" in out and "NASP" in out and "7.36M" in out
    assert main(["genotypes", "--show", "NASP"]) == 0
    assert Genotype.from_json(capsys.readouterr().out) == get_genotype("NASP")
    with pytest.raises(GenotypeError):
        resolve_genotype("NOPE")


def test_bench_reports_evaluation_throughput():
    from nasp.bench import BenchConfig, run_bench

    cfg = BenchConfig(algorithms=["nasp"], channels=2, layers=1, batch_size=2, image_size=8, steps=1, memory=False,
                      device="cpu")
    report = run_bench(cfg, torch.device("cpu"))
    row = report["eval_throughput"]
    assert row["genotype"] == "DARTS_V2" and row["images_per_s"] > 0 and row["params"] > 0
    assert set(report) >= {"space", "device", "settings", "results"}


def test_config_presets_load():
    for preset in ("eval-cifar10", "eval-imagenet", "eval-tiny-imagenet", "eval-cpu"):
        cfg = eval_config(["genotype=DARTS_V2"], preset)
        assert isinstance(cfg, EvalConfig)
    paper = eval_config([], "eval-cifar10")
    assert (paper.model.layers, paper.model.channels, paper.epochs, paper.batch_size, paper.data.cutout) == (20, 36, 600, 96, 16)
    imagenet = eval_config([], "eval-imagenet")
    assert (imagenet.model.layers, imagenet.model.channels, imagenet.optim.label_smoothing, imagenet.epochs) == (14, 48, 0.1, 250)
