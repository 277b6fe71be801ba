"""`nasp eval` of a recurrent genotype: DARTS's language-model recipe on the embedded corpus, tiny sizes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from conftest import StopAfter

from nasp.cli.main import main
from nasp.data.corpus import load_corpus
from nasp.evaluation import eval_config, resume_eval, start_eval
from nasp.evaluation.config import RNN_DEFAULTS
from nasp.evaluation.recurrent import build_rnn_network, build_text_data, score_text, should_switch_to_asgd
from nasp.evaluation.run import validate_eval
from nasp.genotypes import get_genotype
from nasp.model.recurrent import selection_of_genotype

# a few seconds on one CPU core: 8-wide model, 1,200 training tokens, 200 validation and test tokens
TINY = ["genotype=DARTS_V2_RNN", "data=embedded-text", "data.limit=1200", "data.test_limit=200", "rnn.emsize=8",
        "rnn.nhid=8", "batch_size=4", "eval_batch_size=2", "rnn.test_batch_size=2", "rnn.bptt=12", "device=cpu"]
# no dropout, 480 tokens, a high lr, nonmono 1: validation gets worse while training overfits, so ASGD takes over
# (when last measured: after epoch 3 for seed 4; epoch 4 for seeds 1, 2 and 5; epoch 5 for seed 3)
OVERFIT = ["genotype=DARTS_V2_RNN", "data=embedded-text", "data.limit=480", "data.test_limit=60", "rnn.emsize=8",
           "rnn.nhid=8", "epochs=5", "batch_size=4", "eval_batch_size=2", "rnn.test_batch_size=2", "rnn.bptt=10",
           "rnn.nonmono=1", "seed=4", "optim.lr=60", "rnn.dropout=0", "rnn.dropouth=0", "rnn.dropoutx=0", "rnn.dropouti=0",
           "rnn.dropoute=0", "device=cpu"]


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("NASP_DATA", str(tmp_path / "cache"))


def darts_params(vocab: int, emsize: int, nhid: int, nodes: int = 8) -> int:
    """DARTS's RNNModel: embedding (tied decoder), W0, one W per node, the decoder's bias."""
    return vocab * emsize + (emsize + nhid) * 2 * nhid + nodes * nhid * 2 * nhid + vocab


def test_dry_run_counts_darts_ptb_model(capsys):
    assert main(["eval", "genotype=DARTS_V2_RNN", "--dry-run"]) == 0  # ptb's 10,000 words, no data needed
    out = capsys.readouterr().out
    assert darts_params(10_000, 850, 850) == 22_960_000
    assert "22.96M parameters (22,960,000)" in out and "vocabulary 10,000" in out
    assert main(["eval", "genotype=DARTS_V1_RNN", "--dry-run", "--config", "eval-wikitext2"]) == 0
    assert f"({darts_params(33_278, 700, 700):,})" in capsys.readouterr().out  # 33.13M: the papers' 33M


def test_rnn_defaults_apply_only_to_keys_not_given():
    cfg = eval_config(["genotype=DARTS_V2_RNN", "optim.lr=5"])
    validate_eval(cfg)
    assert cfg.optim.lr == 5 and cfg.optim.grad_clip == RNN_DEFAULTS["optim.grad_clip"] == 0.25
    assert (cfg.epochs, cfg.batch_size, cfg.data.name, cfg.optim.momentum) == (8000, 64, "ptb", 0.0)
    cnn = eval_config(["genotype=DARTS_V2"])
    validate_eval(cnn)
    assert (cnn.optim.lr, cnn.epochs, cnn.data.name) == (0.025, 600, "cifar10")


@pytest.mark.parametrize("argv, expect", [
    (["model.channels=8"], "key 'model.channels': applies to image networks only"),
    (["data=embedded"], "key 'data': unknown corpus 'embedded'"),
    (["data=ptb", "data.root={tmp}/none"], "ptb: folder"),
])
def test_bad_rnn_inputs_are_one_line(tmp_path, capsys, argv, expect):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(["eval", "genotype=DARTS_V2_RNN", *argv, f"out={tmp_path}/runs"]) == 2
    err = capsys.readouterr().err
    assert expect in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_nonmono_switch_rule():
    """AWD-LSTM/DARTS: switch once the loss is worse than the best of all checks but the last ``nonmono``."""
    assert not should_switch_to_asgd([5.0, 4.0, 3.0], 3.5, 3)  # needs more than nonmono checks
    assert should_switch_to_asgd([5.0, 4.0, 3.0, 3.1], 5.5, 3)  # worse than 5.0, the only one old enough
    assert not should_switch_to_asgd([5.0, 4.0, 3.0, 3.1], 4.5, 3)  # better than 5.0: keep going
    assert should_switch_to_asgd([5.0, 4.0, 3.0, 3.1, 3.2], 4.5, 3)  # worse than min(5.0, 4.0)
    assert not should_switch_to_asgd([4.0, 5.0], 4.0, 1)  # equal is not worse
    assert should_switch_to_asgd([4.0, 5.0], 4.01, 1)


def test_eval_end_to_end_reports_perplexities(tmp_path, capsys):
    assert main(["eval", *TINY, "epochs=2", f"out={tmp_path}/runs", "name=r"]) == 0
    out = capsys.readouterr().out
    run = tmp_path / "runs" / "r"
    result = json.loads((run / "result.json").read_text())
    assert result["params"] == darts_params(10_000, 8, 8) and result["kind"] == "rnn"
    assert math.isclose(result["test_ppl"], math.exp(result["test_loss"]))
    assert result["valid_ppl"] < 10_000 and result["test_ppl"] < 10_000  # better than a uniform guess after 2 epochs
    assert f"test perplexity {result['test_ppl']:.2f}" in out and "validation perplexity" in out
    metrics = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2] and metrics[0]["test_ppl"] is None
    # best.pt holds the weights scored best on validation; scoring them again gives the reported numbers
    record = torch.load(run / "best.pt", weights_only=True)
    cfg = eval_config([*TINY, "epochs=2"])
    genotype = validate_eval(cfg)
    net = build_rnn_network(genotype, cfg, record["vocab_size"])
    net.load_state_dict(record["model"])
    data = build_text_data(cfg, torch.device("cpu"), load_corpus("embedded-text"))
    selection = selection_of_genotype(genotype.resolve_space(), genotype)
    assert math.isclose(score_text(net, selection, data.valid), result["valid_loss"], rel_tol=1e-6)
    assert math.isclose(score_text(net, selection, data.test), result["test_loss"], rel_tol=1e-6)
    # `nasp test --best` scores the same weights on the same test tokens
    assert main(["test", str(run), "--best", "--json"]) == 0
    tested = json.loads(capsys.readouterr().out)
    assert math.isclose(tested["test_loss"], result["test_loss"], rel_tol=1e-6) and tested["epoch"] == result["best_epoch"]




def _final(run_dir: Path):
    state = torch.load(run_dir / "last.pt", weights_only=True)["model"]
    metrics = [{k: v for k, v in json.loads(x).items() if not k.endswith("_s") and k != "tokens_per_s"}
               for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return state, metrics, json.loads((run_dir / "result.json").read_text())


def test_resume_after_the_asgd_switch_ends_as_an_uninterrupted_run(tmp_path):
    full = start_eval(eval_config([*OVERFIT, f"out={tmp_path}/a"]), console=False)
    full.task.log_every = 1
    assert full.fit().status == "finished"
    w_full, m_full, r_full = _final(full.run_dir)
    assert r_full["asgd_epoch"] is not None and r_full["asgd_epoch"] < 5, "the settings no longer trigger ASGD"
    before_last = sum(len(full.task.data.train.plan(e)) for e in range(4))
    stopped = start_eval(eval_config([*OVERFIT, f"out={tmp_path}/b"]), [StopAfter(before_last + 3)], console=False)
    stopped.task.log_every = 1
    assert stopped.fit().status == "stopped"
    state = torch.load(stopped.run_dir / "checkpoint.pt", weights_only=True)
    assert state["progress"] == {"epoch": 4, "step": 3} and state["task"]["asgd"]
    assert any("ax" in s for s in state["task"]["optimizer"]["state"].values())  # ASGD's averages are kept
    resumed = resume_eval(stopped.run_dir, console=False)
    assert resumed.task.asgd and isinstance(resumed.task.optimizer, torch.optim.ASGD)
    assert resumed.fit().status == "finished"
    w_res, m_res, r_res = _final(resumed.run_dir)
    assert m_full == m_res
    assert {k: v for k, v in r_full.items() if k != "elapsed_s"} == {k: v for k, v in r_res.items() if k != "elapsed_s"}
    for k in w_full:
        assert torch.equal(w_full[k], w_res[k]), k


def test_named_rnn_genotypes_are_darts_cells():
    v2 = get_genotype("DARTS_V2_RNN").as_pairs()["recurrent"]
    assert v2 == [("sigmoid", 0), ("relu", 1), ("relu", 1), ("identity", 1), ("tanh", 2), ("sigmoid", 5), ("tanh", 3),
                  ("relu", 5)]
    assert get_genotype("DARTS_V1_RNN").as_pairs()["recurrent"][5] == ("identity", 1)


def test_weights_start_as_darts_init_weights():
    """DARTS's RNNModel: embedding (= decoder weight) and the cell's matrices uniform in +-0.04, decoder bias 0."""
    cfg = eval_config(["genotype=DARTS_V2_RNN", "rnn.emsize=16", "rnn.nhid=16"])
    net = build_rnn_network(get_genotype("DARTS_V2_RNN"), cfg, 500)
    assert net.decoder.weight is net.encoder.weight
    for name, p in net.named_parameters():
        if name != "decoder.bias":
            assert 0.03 < float(p.abs().max()) <= 0.04, name
    assert not net.decoder.bias.any()
