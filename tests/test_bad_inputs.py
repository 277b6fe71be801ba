"""Every bad input is ONE line on stderr naming the key or file, exit code 2, no traceback.

One table of cases across `nasp run`, `config`, `eval`, `test`, `render`, `show`, `plot` and the terminal
app's run form (``tui.configform.check``, the function the form calls on every change). Cases marked
``SUB`` run as real processes (``python -m nasp ...``); the others call the real ``main()`` in this process.
``{tmp}`` in an argument is the test's temporary folder, which holds the files of ``FILES``.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from nasp.cli.main import main

FILES = {
    "bad.yaml": "epochs: [unclosed\n",
    "list.yaml": "- epochs\n- 3\n",
    "typo.yaml": "epoch: 3\n",
    "inf.yaml": "optim:\n  lr: .inf\n",
    "algo.yaml": "algorithm:\n  name: darts-1st\n  eta: 0.5\n",
    "betas.yaml": "algorithm:\n  betas: [0.5, 0.999, 0.1]\n",
    "section.yaml": "model: 3\n",
    "eval-typo.yaml": "optim:\n  lrr: 0.1\n",
    "exit.py": "import sys\nsys.exit(3)\n",
    "base_exit.py": "raise GeneratorExit('not an Exception')\n",
    "boom.py": "x = 1\nraise RuntimeError('boom\\nsecond line')\n",
    "syntax.py": "def f(:\n",
    "dup.py": ("from torch import nn\nfrom nasp import register_op\n\n@register_op('sep_conv_3x3')\n"
               "def f(C, stride, affine):\n    return nn.Identity()\n"),
    "shape.py": ("from torch import nn\nfrom nasp import register_op\n\n@register_op('bad_shape_op')\n"
                 "def f(C, stride, affine):\n    return nn.Conv2d(C, C, 3, stride)\n"),
    "notmodule.py": ("from nasp import register_op\n\n@register_op('not_a_module_op')\n"
                     "def f(C, stride, affine):\n    return lambda x: x\n"),
    "noalgo.py": ("from nasp.algorithms import register_algorithm\nfrom nasp.algorithms.nasp import NASP\n\n"
                  "@register_algorithm('no-options')\nclass Bad(NASP):\n    Options = dict\n"),
}


@dataclass
class Case:
    id: str
    argv: list[str]  # the command line after `nasp` ("form" first: the app's form check)
    needles: list[str]  # text the one line must hold: the key or file, the value
    sub: bool = False  # run as a real process


SUB = True
CASES: list[Case] = [
    # --- nasp run: keys and values ---
    Case("typo-key", ["run", "algoritm=nasp"], ["algoritm", "Did you mean 'algorithm'"], SUB),
    Case("unknown-algorithm", ["run", "algorithm=naps"], ["'algorithm'", "naps", "Did you mean 'nasp'"]),
    Case("unknown-space", ["run", "space=cnn13"], ["'space'", "cnn13", "cnn12"]),
    Case("unknown-dataset", ["run", "data=cifar11"], ["'data'", "cifar11", "cifar10"]),
    Case("epochs-text", ["run", "epochs=abc"], ["'epochs'", "abc", "integer"]),
    Case("epochs-zero", ["run", "epochs=0"], ["'epochs'", "greater than or equal to 1"]),
    Case("epochs-fraction", ["run", "epochs=1.5"], ["'epochs'", "1.5"]),
    Case("epochs-empty", ["run", "epochs="], ["'epochs'", "empty value"]),
    Case("oplist-empty", ["run", "space.normal="], ["'space.normal'", "empty value", "null"]),
    Case("algorithm-empty", ["run", "algorithm="], ["'algorithm.name'", "empty value"]),
    Case("batch-one", ["run", "batch_size=1"], ["'batch_size'", "greater than or equal to 2"]),
    Case("seed-negative", ["run", "seed=-1"], ["'seed'", "-1"]),
    Case("seed-huge", ["run", f"seed={2**63}"], ["'seed'", "less than or equal to 9223372036854775807"]),
    Case("lr-inf", ["run", "optim.lr=.inf"], ["'optim.lr'", "inf", "finite"]),
    Case("lr-nan", ["run", "optim.lr=.nan"], ["'optim.lr'", "nan", "finite"]),
    Case("lr-zero", ["run", "optim.lr=0"], ["'optim.lr'", "greater than 0"]),
    Case("momentum-one", ["run", "optim.momentum=1"], ["'optim.momentum'", "less than 1"]),
    Case("grad-clip-negative", ["run", "optim.grad_clip=-1"], ["'optim.grad_clip'", "-1"]),
    Case("weight-decay-inf", ["run", "optim.weight_decay=.inf"], ["'optim.weight_decay'", "finite"]),
    Case("portion-one", ["run", "data.train_portion=1"], ["'data.train_portion'", "less than 1"]),
    Case("limit-one", ["run", "data.limit=1"], ["'data.limit'", "greater than or equal to 2"]),
    Case("augment-text", ["run", "data.augment=maybe"], ["'data.augment'", "maybe", "boolean"]),
    Case("channels-one", ["run", "model.channels=1"], ["'model.channels'", "1"]),
    Case("layers-zero", ["run", "model.layers=0"], ["'model.layers'", "0"]),
    Case("amp-text", ["run", "amp=maybe"], ["'amp'", "maybe"]),
    Case("plugins-mapping", ["run", "plugins={a: 1}"], ["'plugins'", "list"]),
    # --- sizes: every size key has a bound or a memory estimate (issue 23) ---
    Case("threads-too-many", ["run", "threads=1000"], ["'threads'", "1000", "at most", "4 a core"]),
    Case("threads-huge", ["run", "threads=99999999999"], ["'threads'", "99999999999", "at most"]),
    Case("eval-threads-huge", ["eval", "threads=99999999999"], ["'threads'", "at most"]),
    Case("channels-huge", ["run", "model.channels=100000", "data.limit=64"], ["search network needs about", "GiB",
                                                                             "model.channels"]),
    Case("rnn-nhid-huge", ["run", "space=rnn", "rnn.nhid=100000000"], ["recurrent search network needs about",
                                                                       "rnn.nhid"]),
    Case("config-empty-name", ["run", "--config", ""], ["--config", "empty name"]),
    Case("config-folder", ["run", "--config", "{tmp}"], ["--config", "is a folder"]),
    # --- keys a search would ignore are refused, as nasp eval refuses image keys for a language model ---
    Case("rnn-search-model-key", ["run", "space=rnn", "model.channels=8"], ["'model.channels'", "image searches only"]),
    Case("rnn-search-augment", ["run", "space=rnn", "data.augment=false"], ["'data.augment'", "image searches only"]),
    Case("cnn-search-rnn-key", ["run", "rnn.nhid=8"], ["'rnn.nhid'", "recurrent searches only"]),
    Case("cuda-graphs-on-cpu", ["run", "cuda_graphs=on", "device=cpu"], ["'cuda_graphs'", "CUDA only", "cpu"]),
    Case("eval-cuda-graphs-on-cpu", ["eval", "genotype=NASP", "cuda_graphs=on", "device=cpu"], ["'cuda_graphs'", "CUDA only"]),
    Case("eval-config-empty-name", ["eval", "--config", ""], ["--config", "empty name"]),
    # --- nasp run: the algorithm's own keys ---
    Case("init-nan", ["run", "algorithm.init=.nan"], ["'algorithm.init'", "finite"]),
    Case("arch-lr-minus-inf", ["run", "algorithm.lr=-.inf"], ["'algorithm.lr'", "finite"]),
    Case("arch-lr-zero", ["run", "algorithm.lr=0"], ["'algorithm.lr'", "greater than 0"]),
    Case("beta-one", ["run", "algorithm.betas=[0.9, 1.0]"], ["'algorithm.betas' (item 2)", "less than 1"]),
    Case("beta-negative", ["run", "algorithm.betas=-0.1,0.9"], ["'algorithm.betas' (item 1)", "greater than or equal"]),
    Case("betas-one-item", ["run", "algorithm.betas=[0.9]"], ["'algorithm.betas'", "too few items"]),
    Case("betas-text", ["run", "algorithm.betas=abc"], ["'algorithm.betas'", "abc"]),
    Case("eta-negative", ["run", "algorithm.eta=-1"], ["'algorithm.eta'", "-1"]),
    Case("epsilon-two", ["run", "algorithm.epsilon=2"], ["'algorithm.epsilon'", "less than or equal to 1"]),
    Case("selected-value", ["run", "algorithm.selected_value=half"], ["'algorithm.selected_value'", "'one' or 'keep'"]),
    Case("eta-for-darts", ["run", "algorithm=darts-1st", "algorithm.eta=0.1"],
         ["'algorithm.eta'", "does not apply to darts-1st", "nasp"]),
    Case("second-order-for-nasp", ["run", "algorithm.second_order=true"],
         ["'algorithm.second_order'", "does not apply to nasp", "pa-lazy"]),
    Case("algorithm-key-typo", ["run", "algorithm.etaa=1"], ["'algorithm.etaa'", "Did you mean 'algorithm.eta'"]),
    Case("algorithm-key-nested", ["run", "algorithm.x.y=1"], ["'algorithm.x.y'"]),
    # --- nasp run: the command line's shape ---
    Case("no-equals", ["run", "model"], ["expected key=value", "'model'"]),
    Case("section-value", ["run", "model=3"], ["'model' is a section"]),
    Case("unknown-flag", ["run", "--bogus"], ["--bogus"]),
    Case("device", ["run", "device=tpu"], ["'device'", "tpu"]),
    Case("op-typo", ["run", "space.normal=conv_3x3,sep_conv_3x"], ["sep_conv_3x", "Did you mean 'sep_conv_3x3'"]),
    Case("missing-data", ["run", "data=fashion-mnist", "data.root=/nonexistent/fmnist"], ["/nonexistent/fmnist"]),
    Case("resume-missing", ["run", "resume=/nonexistent/run"], ["resume", "/nonexistent/run"]),
    Case("resume-and-keys", ["run", "resume=/nonexistent/run", "epochs=2"], ["resume=", "epochs"]),
    # --- nasp run: config files ---
    Case("config-missing", ["run", "--config", "/nonexistent.yaml"], ["--config", "/nonexistent.yaml"]),
    Case("config-bad-yaml", ["run", "--config", "{tmp}/bad.yaml"], ["bad.yaml", "not valid YAML"]),
    Case("config-list", ["run", "--config", "{tmp}/list.yaml"], ["list.yaml", "mapping"]),
    Case("config-typo", ["run", "--config", "{tmp}/typo.yaml"], ["typo.yaml", "'epoch'", "Did you mean 'epochs'"]),
    Case("config-inf", ["run", "--config", "{tmp}/inf.yaml"], ["'optim.lr'", "finite"]),
    Case("config-algorithm-key", ["run", "--config", "{tmp}/algo.yaml"], ["'algorithm.eta'", "darts-1st"]),
    Case("config-betas", ["run", "--config", "{tmp}/betas.yaml"], ["'algorithm.betas'", "2 items"]),
    Case("config-section-scalar", ["run", "--config", "{tmp}/section.yaml"], ["'model'"]),
    # --- nasp run: plugins (code the user names) ---
    Case("plugin-module", ["run", "plugins=no_such_module_xyz"], ["plugins", "no_such_module_xyz"]),
    Case("plugin-file-missing", ["run", "plugins={tmp}/missing.py"], ["plugins", "missing.py", "does not exist"]),
    Case("plugin-exits", ["run", "plugins={tmp}/exit.py"], ["plugins", "exit.py", "sys.exit(3)"], SUB),
    Case("plugin-base-exception", ["run", "plugins={tmp}/base_exit.py"], ["plugins", "base_exit.py", "GeneratorExit"]),
    Case("plugin-raises", ["run", "plugins={tmp}/boom.py"], ["boom.py", "line 2", "RuntimeError: boom second line"],
         SUB),
    Case("plugin-syntax", ["run", "plugins={tmp}/syntax.py"], ["syntax.py", "SyntaxError", "line 1"]),
    Case("plugin-replaces-builtin-op", ["run", "plugins={tmp}/dup.py"],
         ["dup.py", "'sep_conv_3x3'", "built in", "overwrite=True"], SUB),
    Case("plugin-op-wrong-shape", ["run", "plugins={tmp}/shape.py", "space.normal=skip_connect,bad_shape_op",
                                   "data.limit=64"], ["'bad_shape_op'", "shape.py", "6, 6); expected", "8, 8) (C channels"], SUB),
    Case("plugin-op-not-module", ["run", "plugins={tmp}/notmodule.py", "space.normal=skip_connect,not_a_module_op",
                                  "data.limit=64"], ["'not_a_module_op'", "nn.Module"], SUB),
    Case("plugin-algorithm-without-options", ["run", "plugins={tmp}/noalgo.py"], ["noalgo.py", "'no-options'", "Options"]),
    # --- nasp config ---
    Case("config-cmd-bad-value", ["config", "algorithm.lr=abc"], ["'algorithm.lr'", "abc"]),
    Case("config-cmd-key-for-other", ["config", "algorithm=darts-2nd", "algorithm.epsilon=0.1"],
         ["'algorithm.epsilon'", "darts-2nd"]),
    # --- nasp eval ---
    Case("eval-epochs-text", ["eval", "epochs=abc"], ["'epochs'", "abc"], SUB),
    Case("eval-lr-inf", ["eval", "optim.lr=.inf"], ["'optim.lr'", "finite"]),
    Case("eval-aux-weight-inf", ["eval", "model.auxiliary_weight=.inf"], ["'model.auxiliary_weight'", "finite"]),
    Case("eval-drop-path-nan", ["eval", "model.drop_path=.nan"], ["'model.drop_path'", "finite"]),
    Case("eval-seed", ["eval", "seed=-1"], ["'seed'", "-1"]),
    Case("eval-seed-huge", ["eval", f"seed={2**63}"], ["'seed'"]),
    Case("eval-unknown-genotype", ["eval", "genotype=NOPE"], ["NOPE"]),
    Case("eval-empty", ["eval", "epochs="], ["'epochs'", "empty value"]),
    Case("eval-network", ["eval", "model.network=x"], ["'model.network'", "'cifar' or 'imagenet'"]),
    Case("eval-augment", ["eval", "data.augment=x"], ["'data.augment'", "crop_flip"]),
    Case("eval-smoothing", ["eval", "optim.label_smoothing=1"], ["'optim.label_smoothing'", "less than 1"]),
    Case("eval-unknown-key", ["eval", "optim.lrr=0.1"], ["'optim.lrr'", "Did you mean 'optim.lr'"]),
    Case("eval-config-missing", ["eval", "--config", "/nonexistent.yaml"], ["--config", "/nonexistent.yaml"]),
    Case("eval-config-typo", ["eval", "--config", "{tmp}/eval-typo.yaml"], ["eval-typo.yaml", "'optim.lrr'"]),
    # --- nasp test, render, show, plot: the command line ---
    Case("test-missing", ["test", "/nonexistent"], ["/nonexistent"], SUB),
    Case("test-no-argument", ["test"], ["nasp test", "model"]),
    Case("render-missing", ["render", "/nonexistent"], ["/nonexistent"], SUB),
    Case("render-no-argument", ["render"], ["nasp render", "ARG"]),
    Case("show-missing", ["show", "/nonexistent"], ["/nonexistent"]),
    Case("show-narrow", ["show", "DARTS_V2", "--width", "5"], ["--width", "5"]),
    Case("show-width-text", ["show", "--width", "abc", "DARTS_V2"], ["--width", "abc"]),
    Case("show-unknown-name", ["show", "DARTS_V3"], ["DARTS_V3", "DARTS_V2"]),
    Case("plot-missing", ["plot", "/nonexistent"], ["/nonexistent"], SUB),
    Case("unknown-command", ["bogus"], ["bogus", "run"]),
    # --- the terminal app's run form (tui.configform.check): needles[0] is the field the error goes under ---
    Case("form-epochs-zero", ["form", "epochs=0"], ["epochs", "greater than or equal to 1"]),
    Case("form-lr-inf", ["form", "optim.lr=.inf"], ["optim.lr", "finite"]),
    Case("form-eta-for-darts", ["form", "algorithm=darts-1st", "algorithm.eta=0.1"], ["algorithm.eta", "darts-1st"]),
    Case("form-betas", ["form", "algorithm.betas=[1, 1]"], ["algorithm.betas", "less than 1"]),
    Case("form-space", ["form", "space=cnn13"], ["space.name", "cnn13"]),
    Case("form-empty", ["form", "epochs="], ["epochs", "empty value"]),
    Case("form-seed", ["form", "seed=-5"], ["seed", "-5"]),
    Case("form-plugin-exits", ["form", "plugins={tmp}/exit.py"], ["plugins", "sys.exit(3)"]),
    Case("form-init-nan", ["form", "algorithm.init=.nan"], ["algorithm.init", "finite"]),
    # --- viewing: render/show/plot/eval genotype files (added by the viewing developer) ---
    # a binary file: the embedded labels (gzip); cases that need JSON/YAML content of their own are in
    # tests/test_view_safety.py (VIEWING_CASES), since FILES above is not this section's
    Case("show-genotype-binary", ["show", str(Path(__file__).parents[1] / "nasp/data/embedded/t10k-labels-idx1-ubyte.gz")],
         ["t10k-labels-idx1-ubyte.gz", "not UTF-8"], SUB),
    Case("render-genotype-binary", ["render", str(Path(__file__).parents[1] / "nasp/data/embedded/t10k-labels-idx1-ubyte.gz")],
         ["t10k-labels-idx1-ubyte.gz", "not UTF-8"]),
    Case("eval-genotype-binary", ["eval", f"genotype={Path(__file__).parents[1] / 'nasp/data/embedded/t10k-labels-idx1-ubyte.gz'}"],
         ["t10k-labels-idx1-ubyte.gz", "not UTF-8"], SUB),
    Case("show-genotype-yaml", ["show", "{tmp}/bad.yaml"], ["bad.yaml", "not valid JSON"]),
    Case("render-genotype-python", ["render", "{tmp}/exit.py"], ["exit.py", "not valid JSON"]),
    Case("eval-genotype-not-json", ["eval", "genotype={tmp}/list.yaml"], ["list.yaml", "not valid JSON"]),
    Case("show-folder-without-genotype", ["show", str(Path(__file__).parents[1] / "nasp/data/embedded")],
         ["embedded", "without genotype.json"]),
    Case("render-folder-without-genotype", ["render", "{tmp}"], ["without genotype.json"]),
    Case("eval-folder-without-genotype", ["eval", "genotype={tmp}"], ["without genotype.json"]),
    Case("plot-genotype-file", ["plot", "{tmp}/bad.yaml"], ["bad.yaml", "is not a folder"]),
    Case("plot-folder-without-config", ["plot", str(Path(__file__).parents[1] / "nasp/data/embedded")],
         ["embedded", "no config.json"]),
    Case("show-genotype-missing", ["show", "{tmp}/missing.json"], ["missing.json", "no such genotype file"]),
    Case("eval-genotype-missing", ["eval", "genotype={tmp}/missing.json"], ["missing.json", "no such file"]),
    Case("space-file-list", ["run", "space={tmp}/list.yaml"], ["list.yaml", "must hold a mapping"]),
    Case("space-file-bad-yaml", ["run", "space={tmp}/bad.yaml"], ["bad.yaml", "not valid YAML", "line 2"]),
    Case("space-file-no-cells", ["run", "space={tmp}/typo.yaml"], ["typo.yaml", "'cells' is missing"]),
    Case("space-file-missing", ["run", "space={tmp}/nope.yaml"], ["nope.yaml", "does not exist"]),
    Case("space-file-is-config", ["run", f"space={Path(__file__).parents[1] / 'nasp/presets/eval-cpu.yaml'}"],
         ["eval-cpu.yaml", "'cells' is missing"], SUB),
]


def _argv(case: Case, tmp: Path) -> list[str]:
    return [a.replace("{tmp}", str(tmp)) for a in case.argv]


def _with_out(argv: list[str], tmp: Path) -> list[str]:
    """Runs write under the test's folder, whatever happens."""
    takes = argv[0] in ("run", "eval") and not any(a.startswith(("resume=", "--bogus")) for a in argv)
    return [*argv, f"out={tmp / 'runs'}"] if takes else argv


def _one_line(err: str, case: Case) -> str:
    assert "Traceback" not in err, err
    # a first run on a fresh machine says once that it builds a corpus cache: progress, not part of the refusal
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("nasp: building the cache")]
    assert len(lines) == 1, f"{case.id}: expected one line on stderr, got:\n{err}"
    return lines[0]


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES)
    commands = {c.argv[0] for c in CASES}
    assert {"run", "eval", "test", "render", "show", "plot", "form"} <= commands


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
    argv = _argv(case, tmp_path)
    if argv[0] == "form":
        from tui import configform

        checked = configform.check(argv[1:])
        assert checked.config is None and checked.error is not None
        line = _one_line(checked.error, case)
        assert checked.key == case.needles[0], (checked.key, line)
    else:
        argv = _with_out(argv, tmp_path)
        if case.sub:
            proc = subprocess.run([sys.executable, "-m", "nasp", *argv], capture_output=True, text=True,
                                  timeout=300, check=False)
            code, err = proc.returncode, proc.stderr
        else:
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse's errors
                code = exc.code
            err = capsys.readouterr().err
        assert code == 2, (code, err)
        line = _one_line(err, case)
        assert line.startswith((f"nasp {argv[0]}: error: ", "nasp: error: ")), line
    for needle in case.needles[1:] if argv[0] == "form" else case.needles:
        assert needle in line, (needle, line)
    runs = tmp_path / "runs"
    assert not runs.exists() or not any(runs.iterdir()), "a run folder was made for a config that cannot run"

