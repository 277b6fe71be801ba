"""The Python face (``import nasp``): configs given every way alike, search and evaluate (a Genotype object too),
events counted one way with Ā labelled, a short ``help(nasp)``, docstrings, and docs/api.md naming only what exists."""

from __future__ import annotations

import importlib
import inspect
import json
import pydoc
import re
import subprocess
import sys
from pathlib import Path

import pytest

import nasp
from nasp.errors import ConfigError
from nasp.trainer.events import ArchMatrix, EpochEnd, Paused, RunEnd, StepEnd, event_position, next_step, run_position

ROOT = Path(__file__).resolve().parents[1]
TINY = {"data": {"limit": 32}, "batch_size": 16, "model": {"channels": 4, "layers": 2}, "threads": 1}


# --- configs --------------------------------------------------------------------------------------------------
def test_a_config_is_the_same_given_as_a_dict_words_or_keywords():
    by_words = nasp.search_config("algorithm=pa-lazy", "algorithm.eta=0.1", "space=cnn7", "data.limit=64", "epochs=1")
    by_dict = nasp.search_config({"algorithm": "pa-lazy", "algorithm.eta": 0.1, "space": "cnn7",
                                  "data": {"limit": 64}, "epochs": 1})
    by_keywords = nasp.search_config(algorithm={"name": "pa-lazy", "eta": 0.1}, space="cnn7", epochs=1,
                                     **{"data.limit": 64})
    mixed = nasp.search_config({"algorithm": "pa-lazy"}, "space=cnn7", "epochs=1", algorithm={"eta": 0.1},
                               data={"limit": 64})
    assert by_words == by_dict == by_keywords == mixed
    assert by_dict.algorithm.name == "pa-lazy" and by_dict.algorithm.given == {"eta": 0.1}
    assert nasp.search_config(by_dict, epochs=2).epochs == 2  # a config object, overridden
    from nasp.config import RunConfig, build_config

    assert build_config({"algorithm": "nasp"}).algorithm.name == "nasp"  # the lower layer takes it too
    assert isinstance(build_config({"data.limit": 8}), RunConfig)


def test_bad_keys_and_values_name_themselves():
    with pytest.raises(ConfigError, match=r"unknown config key 'epoch'\. Did you mean 'epochs'"):
        nasp.search_config(epoch=1)
    with pytest.raises(ConfigError, match=r"unknown config key 'data\.limt'"):
        nasp.search_config({"data": {"limt": 3}})
    with pytest.raises(ConfigError, match="key 'epochs'"):
        nasp.search_config(epochs=0)
    with pytest.raises(ConfigError, match=r"unknown config key 'algorithm\.temprature'"):
        nasp.search_config(algorithm="nasp", **{"algorithm.temprature": 2})
    with pytest.raises(ConfigError, match="a config is a dict"):
        nasp.search_config(42)


def test_eval_config_takes_dicts_keywords_and_a_genotype_object():
    geno = nasp.get_genotype("NASP")
    cfg = nasp.eval_config({"genotype": geno, "epochs": 1}, "data.limit=16", optim={"lr": 0.01})
    assert cfg.epochs == 1 and cfg.data.limit == 16 and cfg.optim.lr == 0.01
    assert nasp.load_genotype(cfg.genotype) == geno  # held as its JSON: config.json stays plain
    from nasp.evaluation.config import eval_config

    assert eval_config({"genotype": "NASP"}, epochs=3).epochs == 3
    assert eval_config(["genotype=NASP", "epochs=3"]).epochs == 3
    assert nasp.eval_config("eval-cpu", "genotype=NASP").epochs == eval_config(["genotype=NASP"], "eval-cpu").epochs


# --- runs -----------------------------------------------------------------------------------------------------
class Record(nasp.Callback):
    """Keeps every event."""

    def __init__(self) -> None:
        self.events: list = []

    def on_event(self, trainer, event):
        self.events.append(event)


def test_search_then_evaluate_the_genotype_object(tmp_path):
    """One epoch each, tiny: events count epochs and steps from 1 alike, Ā arrives labelled, and an in-memory
    Genotype is evaluated."""
    rec = Record()
    found = nasp.search(TINY, "space=cnn7", epochs=2, out=str(tmp_path), callbacks=[rec])
    assert found.status == "finished" and found.run_dir.is_dir() and found.error is None
    steps = [e for e in rec.events if isinstance(e, StepEnd)]
    ends = [e for e in rec.events if isinstance(e, EpochEnd)]
    spe = steps[0].steps_per_epoch
    assert [(s.epoch, s.step) for s in steps] == [(e, s) for e in (1, 2) for s in range(1, spe + 1)]
    assert [e.epoch for e in ends] == [1, 2] == [m["epoch"] for m in found.metrics()]
    run_end = rec.events[-1]
    assert isinstance(run_end, RunEnd) and (run_end.epoch, run_end.step) == (2, spe)
    bar = ends[-1].record["discrete"]["normal"]
    assert isinstance(bar, ArchMatrix) and bar.ops == list(nasp.get_space("cnn7").cells["normal"].ops)
    assert bar.edges[:3] == ["c_{k-2}→0", "c_{k-1}→0", "c_{k-2}→1"] and len(bar) == len(bar.edges) == 14
    kept = bar.selected()
    assert all(bar.value(e, op) == 1.0 for e, op in kept.items()) and kept
    assert isinstance(steps[0].values["discrete"]["reduce"], ArchMatrix)
    history = [json.loads(line) for line in (found.run_dir / "history.jsonl").read_text().splitlines()]
    assert history[-1]["discrete"]["normal"] == [list(r) for r in bar]  # plain nested lists in the files
    events = [json.loads(line) for line in (found.run_dir / "events.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in events if e["event"] == "epoch_end"] == [1, 2]
    assert events[-1]["event"] == "run_end" and events[-1]["epoch"] == 2

    genotype = found.genotype
    assert isinstance(genotype, nasp.Genotype) and genotype.space == "cnn7"
    scored = nasp.evaluate(genotype, {"data": {"name": "embedded", "limit": 32, "test_limit": 32}}, epochs=1,
                           batch_size=16, model={"channels": 4, "layers": 2}, threads=1, out=str(tmp_path))
    assert scored.status == "finished" and 0.0 <= scored.result["test_acc"] <= 1.0
    assert scored.genotype == genotype
    saved = json.loads((scored.run_dir / "config.json").read_text())
    assert nasp.load_genotype(saved["genotype"]) == genotype


def test_positions_and_event_numbers_convert_both_ways():
    spe = 8
    assert event_position(0, 0, spe) == (1, 0) and event_position(0, 5, spe) == (1, 5)
    assert event_position(1, 0, spe) == (1, 8) and event_position(1, 3, spe) == (2, 3)
    for pos in [(0, 5), (1, 0), (1, 3), (2, 0)]:
        assert run_position(*event_position(*pos, spe), spe) == pos
    assert next_step(1, 8, spe) == (2, 1) and next_step(2, 3, spe) == (2, 4)
    assert Paused(2, 3).to_dict() == {"event": "paused", "epoch": 2, "step": 3}


def test_arch_matrix_is_a_plain_list_with_labels():
    m = ArchMatrix([[0.0, 1.0], [1.0, 0.0]], ["c_{k-2}→0", "c_{k-1}→0"], ["skip", "conv"])
    assert m == [[0.0, 1.0], [1.0, 0.0]] and json.dumps(m) == "[[0.0, 1.0], [1.0, 0.0]]"
    assert m.selected() == {"c_{k-2}→0": "conv", "c_{k-1}→0": "skip"} and m.row("c_{k-1}→0") == {"skip": 1.0, "conv": 0.0}
    with pytest.raises(ValueError, match="2 rows for 3 edges"):
        ArchMatrix([[0.0], [1.0]], ["a", "b", "c"], ["x"])


def test_api_md_example_on_the_face():
    """docs/api.md's example uses the face (tests/test_interop.py runs it)."""
    code = re.search(r"```python\n(.*?)```", (ROOT / "docs" / "api.md").read_text(), re.S).group(1)
    assert "import nasp\n" in code and "nasp.search(" in code and "nasp.evaluate(genotype" in code
    assert "start_run" not in code and "build_config" not in code


# --- the face itself ------------------------------------------------------------------------------------------
def test_import_nasp_is_cheap_and_help_is_short():
    out = subprocess.run([sys.executable, "-c", "import sys, nasp; print(sorted(m for m in ('torch', 'pydantic') "
                          "if m in sys.modules))"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    text = pydoc.render_doc(nasp, renderer=pydoc.plaintext)
    assert len(text.splitlines()) < 400  # was 2,249 lines of pydantic internals
    for name in ("search(", "evaluate(", "list_ops(", "class Callback", "class Result"):
        assert name in text
    assert "model_validate" not in text


def _public_objects() -> dict[str, object]:
    seen: dict[str, object] = {}
    for name in sorted(set(nasp.__all__) | set(nasp._LAZY)):
        obj = getattr(nasp, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        seen[f"nasp.{name}"] = obj
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                fn = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
                if not attr.startswith("_") and (inspect.isfunction(fn) or inspect.isclass(fn)):
                    seen[f"nasp.{name}.{attr}"] = fn
    return seen


def test_every_public_object_has_a_docstring():
    objects = _public_objects()
    assert len(objects) > 60
    assert [k for k, v in objects.items() if not (v.__doc__ or "").strip()] == []


def test_every_name_in_all_exists():
    for name in nasp.__all__:
        assert getattr(nasp, name) is not None
    with pytest.raises(AttributeError):
        nasp.no_such_thing  # noqa: B018


def _resolve(dotted: str) -> object:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for part in parts[i:]:
            obj = getattr(obj, part)
        return obj
    raise ImportError(dotted)


def test_api_md_names_only_what_exists():
    """Every ``nasp.x.y`` the page names resolves (a function, class, module or attribute)."""
    doc = (ROOT / "docs" / "api.md").read_text()
    names = set(re.findall(r"`@?(nasp(?:\.\w+)+)", doc))
    assert len(names) > 30
    missing = []
    for name in sorted(names):
        try:
            _resolve(name)
        except (ImportError, AttributeError):
            missing.append(name)
    assert missing == []
