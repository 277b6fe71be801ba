"""Recurrent cells: the space, NASP's fast recurrent architecture gradient against the naive one (through time),
the network's three forward modes, and searches on the real embedded corpus with every algorithm."""

import json

import pytest
import torch
from conftest import StopAfter

from nasp.algorithms import ALGORITHMS
from nasp.algorithms.gradients import fast_arch_grad, naive_arch_grad
from nasp.algorithms.prox import discretize
from nasp.cli.main import main
from nasp.config import AlgorithmConfig, OptimConfig, build_config, parse_overrides
from nasp.errors import ConfigError
from nasp.genotype import Genotype
from nasp.model import selection_of
from nasp.model.recurrent import HiddenCarry, RecurrentNetwork, RNNDropouts, TokenWindow
from nasp.search_run import RNN_DEFAULTS, prepare, resume_run, start_run
from nasp.spaces import CellSpace, SearchSpace, get_space

VOCAB = 30


def _window(seed=0, steps=6, batch=5, nhid=8, index=1):
    gen = torch.Generator().manual_seed(seed)
    carry = HiddenCarry()
    carry.store(index - 1, torch.randn(batch, nhid, generator=gen, dtype=torch.float64))
    x = TokenWindow(torch.randint(VOCAB, (steps, batch), generator=gen), carry, index, seed=seed + 11)
    return x, torch.randint(VOCAB, (steps * batch,), generator=gen)


DROPOUTS = RNNDropouts(0.5, 0.3, 0.4, 0.2, 0.1)


def _net(space, nhid=8, emsize=8):
    torch.manual_seed(0)
    return RecurrentNetwork(space, VOCAB, emsize, nhid, DROPOUTS).double()


def _rel(a, b):
    return float((a - b).norm() / b.norm())


TWO_INPUTS = SearchSpace(name="rnn2", kind="rnn", cells={"recurrent": CellSpace(
    ops=("tanh", "relu", "sigmoid", "identity"), n_inputs=1, n_nodes=5, inputs_per_node=1)})


@pytest.mark.parametrize("space", [get_space("rnn"), TWO_INPUTS], ids=["rnn", "rnn-5-nodes"])
@pytest.mark.parametrize("value", ["one", "keep"])
@pytest.mark.parametrize("emsize", [8, 6], ids=["tied", "untied"])
def test_fast_recurrent_arch_grad_equals_naive(space, value, emsize):
    """Dropout masks on, batch norm in training mode, a hidden state carried in: dL/dĀ through time, 1e-6 relative
    in float64, with and without weights on the kept entries."""
    net = _net(space, emsize=emsize)
    x, y = _window(nhid=8)
    cell = space.cells["recurrent"]
    a = torch.rand(cell.n_edges, cell.n_ops, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    abar, mask = discretize(a, cell, value)
    selection = {"recurrent": selection_of(mask, cell)}
    loss_f, fast = fast_arch_grad(net, x, y, None if value == "one" else {"recurrent": abar}, selection)
    loss_n, naive = naive_arch_grad(net, x, y, {"recurrent": abar})
    assert torch.allclose(loss_f, loss_n, rtol=1e-12)
    assert naive["recurrent"].abs().min() > 0  # every entry has a gradient, unselected ones included
    assert _rel(fast["recurrent"], naive["recurrent"]) < 1e-6
    assert all(p.grad is None for p in net.parameters())  # the probe asks for no weight gradient


def test_sparse_dense_and_genotype_forwards_agree_and_carry_the_hidden_state():
    space = get_space("rnn")
    net = _net(space)
    cell = space.cells["recurrent"]
    abar, mask = discretize(torch.rand(cell.n_edges, cell.n_ops, dtype=torch.float64), cell, "one")
    x, _ = _window()
    dense = net(x, {"recurrent": abar})
    after_dense = x.carry.states[x.index].clone()
    sparse = net(x, None, {"recurrent": selection_of(mask, cell)})
    assert torch.allclose(dense, sparse, atol=1e-12)
    assert torch.allclose(after_dense, x.carry.states[x.index], atol=1e-12)  # same start state, same masks
    nxt = TokenWindow(x.tokens, x.carry, x.index + 1, seed=x.seed)
    assert not torch.allclose(net(nxt, None, {"recurrent": selection_of(mask, cell)}), sparse)  # carried on


def test_sparse_forward_of_a_node_with_several_inputs_and_kept_values_equals_the_dense_one():
    """The sparse cell runs nodes of one depth together; a node reading two sources (Ā's 'keep' values on them) still
    sums both, as the dense cell does."""
    space = get_space("rnn")
    net = _net(space)
    cell = space.cells["recurrent"]
    abar = torch.zeros(cell.n_edges, cell.n_ops, dtype=torch.float64)
    picks = [(0, 1), (1, 0), (2, 3), (3, 2), (4, 1), (6, 0), (9, 3), (13, 2), (20, 1), (33, 0)]  # node 3: edges 6, 9
    for e, k in picks:
        abar[e, k] = 0.3 + 0.05 * k
    mask = abar > 0
    x, _ = _window()
    sparse = net(x, {"recurrent": abar}, {"recurrent": selection_of(mask, cell)})
    dense = net(TokenWindow(x.tokens, x.carry, x.index, x.seed), {"recurrent": abar})
    assert torch.allclose(sparse, dense, atol=1e-12)


def test_activation_regularisers_of_a_training_forward():
    """alpha * mean(dropped output^2) + beta * mean((h_t - h_{t-1})^2), from what the decoder reads."""
    space = get_space("rnn")
    torch.manual_seed(0)
    net = RecurrentNetwork(space, VOCAB, 8, 8, RNNDropouts(0.0, 0.3, 0.4, 0.2, 0.1), alpha=2.0, beta=3.0).double()
    seen = []
    net.decoder.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    x, _ = _window()
    cell = space.cells["recurrent"]
    _, mask = discretize(torch.rand(cell.n_edges, cell.n_ops, dtype=torch.float64), cell, "one")
    net(x, None, {"recurrent": selection_of(mask, cell)})
    h = seen[0].view(6, 5, 8)  # no output dropout: the raw output h_1..h_T
    expected = 2.0 * h.pow(2).mean() + 3.0 * (h[1:] - h[:-1]).pow(2).mean()
    assert net.penalty is not None and torch.isclose(net.penalty, expected, rtol=1e-12)
    net.eval()
    net(x, None, {"recurrent": selection_of(mask, cell)})
    assert net.penalty is None  # scoring adds none


@pytest.mark.parametrize("algorithm", ["nasp", "darts-1st"])
def test_the_weight_step_adds_the_activation_regularisers_and_reports_the_plain_loss(algorithm):
    """With beta > 0 a weight step moves w by lr * d(penalty)/dw more than with beta = 0 (plain SGD, no clipping);
    the loss it reports is the cross-entropy alone."""
    space = get_space("rnn")
    moved, reported = {}, {}
    for beta in (0.0, 0.5):
        torch.manual_seed(0)
        net = RecurrentNetwork(space, VOCAB, 8, 8, DROPOUTS, beta=beta).double()
        algo = ALGORITHMS.get(algorithm)(space, net, AlgorithmConfig(name=algorithm),
                                         OptimConfig(lr=0.1, momentum=0.0, weight_decay=0.0, grad_clip=1e9), 1,
                                         torch.device("cpu"), False, 0)
        x, y = _window()
        before = {n: p.detach().clone() for n, p in net.named_parameters()}
        if beta:  # the penalty's own gradient, from the same forward (same incoming state, same masks)
            weights, selection = _forward_args(algo)
            net(TokenWindow(x.tokens, x.carry, x.index, x.seed), weights, selection)
            grads = torch.autograd.grad(net.penalty, list(net.parameters()), allow_unused=True)
            d_penalty = {n: torch.zeros_like(p) if g is None else g
                         for (n, p), g in zip(net.named_parameters(), grads, strict=True)}
        loss, _ = algo.weight_step((x, y))
        reported[beta] = float(loss)
        moved[beta] = {n: p.detach() - before[n] for n, p in net.named_parameters()}
    assert reported[0.0] == pytest.approx(reported[0.5], rel=1e-12)  # same weights, same batch: same plain loss
    for n, step in moved[0.5].items():
        assert torch.allclose(step - moved[0.0][n], -0.1 * d_penalty[n], atol=1e-12), n
    assert any(d.abs().max() > 1e-6 for d in d_penalty.values())


def _forward_args(algo):
    """The forward arguments the algorithm's weight step uses: Ā's selection (NASP) or softmax(A) (DARTS)."""
    if hasattr(algo, "forward_args"):
        _, weights, selection = algo.forward_args()
        return weights, selection
    return {ct: w.detach() for ct, w in algo.mixing(algo.A).items()}, None


def test_recurrent_space_and_ops_are_checked():
    space = get_space("rnn")
    assert (space.kind, space.cells["recurrent"].n_nodes, space.cells["recurrent"].n_edges) == ("rnn", 8, 36)
    with pytest.raises(ValueError, match="op 'sep_conv_3x3' is an op of cnn cells"):
        space.with_ops(recurrent=["tanh", "sep_conv_3x3"])
    with pytest.raises(ValueError, match="reads 1 input"):
        SearchSpace(name="x", kind="rnn", cells={"recurrent": CellSpace(ops=("tanh",), n_inputs=2)})


def test_rnn_defaults_apply_where_no_key_was_given(tmp_path):
    cfg, space = prepare(build_config(parse_overrides(["space=rnn", "optim.lr=5", "algorithm.lr=0.01"])))
    assert space.kind == "rnn"
    assert cfg.optim.lr == 5 and cfg.algorithm.given["lr"] == 0.01  # given: kept
    assert cfg.optim.grad_clip == RNN_DEFAULTS["optim.grad_clip"] and cfg.data.name == RNN_DEFAULTS["data.name"]
    assert cfg.optim.schedule == "constant" and cfg.optim.momentum == 0
    with pytest.raises(ConfigError, match=r"key 'data'.*text corpus"):
        prepare(build_config(parse_overrides(["space=rnn", "data=cifar10"])))
    with pytest.raises(ConfigError, match=r"key 'data'.*image dataset"):
        prepare(build_config(parse_overrides(["space=cnn7", "data=embedded-text"])))


TINY = ["space=rnn", "rnn.nhid=12", "batch_size=4", "rnn.bptt=8", "data.limit=1200", "epochs=2"]


@pytest.mark.parametrize("algorithm", ["nasp", "pa-standard", "pa-lazy", "darts-1st", "darts-2nd", "random"])
def test_every_algorithm_searches_a_recurrent_cell_on_the_embedded_corpus(algorithm, tmp_path):
    assert main(["run", f"algorithm={algorithm}", *TINY, f"out={tmp_path}", "name=r"]) == 0
    geno = Genotype.load(tmp_path / "r")
    assert geno.space == "rnn" and [len(node) for node in geno.cells["recurrent"]] == [1] * 8
    metrics = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert all(m["val_ppl"] > 1 for m in metrics)
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["optim"]["lr"] == RNN_DEFAULTS["optim.lr"] and config["data"]["name"] == "embedded-text"


def test_evaluating_a_recurrent_search_takes_its_corpus_and_the_cpu_preset(tmp_path):
    """`nasp eval genotype=<rnn search>`: the searched cell trained as a language model on the search's corpus, from
    the eval-rnn-cpu preset (explicit keys win), reporting validation and test perplexity."""
    assert main(["run", *TINY, "epochs=1", f"out={tmp_path}", "name=s"]) == 0
    args = ["eval", f"genotype={tmp_path / 's'}", "epochs=1", "data.limit=3000", "data.test_limit=600", "rnn.nhid=16",
            "rnn.emsize=16", f"out={tmp_path}", "name=e"]
    assert main(args) == 0
    config = json.loads((tmp_path / "e" / "config.json").read_text())
    assert config["data"]["name"] == "embedded-text" and config["batch_size"] == 32  # 32: the preset's, not PTB's 64
    result = json.loads((tmp_path / "e" / "result.json").read_text())
    assert 1 < result["valid_ppl"] < 10_000 and 1 < result["test_ppl"] < 10_000
    assert Genotype.load(tmp_path / "e") == Genotype.load(tmp_path / "s")


def test_default_recurrent_search_lowers_validation_perplexity(tmp_path):
    """The quick defaults at a third of the data: validation perplexity falls epoch by epoch."""
    args = ["run", "space=rnn", "rnn.nhid=24", "data.limit=20000", "batch_size=16", "epochs=3", f"out={tmp_path}", "name=r"]
    assert main(args) == 0
    ppl = [json.loads(line)["val_ppl"] for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert ppl[0] > ppl[1] > ppl[2], ppl
    # the drawing of the searched cell (real graphviz) and the curves, by the commands users run
    assert main(["render", str(tmp_path / "r"), f"out={tmp_path}/draw"]) == 0
    svg = (tmp_path / "draw" / "recurrent.svg").read_text()
    geno = Genotype.load(tmp_path / "r")
    assert "x_{t}/h_{t&#45;1}" in svg and "h_{t}" in svg
    assert all(f">{edge.op}</text>" in svg for node in geno.cells["recurrent"] for edge in node)
    assert main(["plot", str(tmp_path / "r"), f"out={tmp_path}/plots"]) == 0
    assert (tmp_path / "plots" / "curves.png").stat().st_size > 10_000




def test_recurrent_search_resumed_mid_epoch_ends_as_an_uninterrupted_one(tmp_path):
    """The hidden states carried between windows are part of the checkpoint."""
    base = [*TINY, "algorithm=nasp"]
    full = start_run(build_config(parse_overrides([*base, f"out={tmp_path}/a"])), console=False)
    assert full.fit().status == "finished"
    stopped = start_run(build_config(parse_overrides([*base, f"out={tmp_path}/b"])), [StopAfter(3)], console=False)
    assert stopped.fit().status == "stopped"
    resumed = resume_run(stopped.run_dir, console=False)
    assert resumed.progress.step == 3
    assert resumed.fit().status == "finished"
    a = torch.load(full.run_dir / "checkpoint.pt", weights_only=True)["task"]["algorithm"]["A"]
    b = torch.load(resumed.run_dir / "checkpoint.pt", weights_only=True)["task"]["algorithm"]["A"]
    assert torch.equal(a["recurrent"], b["recurrent"])


def test_darts_search_preset_for_ptb_is_a_valid_config():
    from nasp.config import load_yaml

    cfg, space = prepare(build_config(load_yaml("nasp/presets/search-ptb.yaml")))
    assert space.kind == "rnn" and cfg.data.name == "ptb" and (cfg.rnn.nhid, cfg.batch_size, cfg.optim.lr) == (300, 256, 20)


def test_user_rnn_op_from_a_plugin_and_a_recurrent_space_from_yaml(tmp_path):
    """A user's activation registered with register_op(kind='rnn') searched in a 5-node recurrent space from YAML."""
    plugin = tmp_path / "my_acts.py"
    plugin.write_text("from torch import nn\nfrom nasp import register_op\n\n"
                      "@register_op('softsign', kind='rnn')\n"
                      "def softsign(C, stride, affine):\n"
                      "    '''x / (1 + |x|).'''\n"
                      "    return nn.Softsign()\n")
    space = tmp_path / "small_rnn.yaml"
    space.write_text("name: small_rnn\nkind: rnn\ncells:\n  recurrent: {ops: [tanh, softsign], n_inputs: 1, n_nodes: 5, "
                     "inputs_per_node: 1}\n")
    args = ["run", f"plugins={plugin}", f"space={space}", "rnn.nhid=12", "batch_size=4", "rnn.bptt=8",
            "data.limit=1200", "epochs=1", f"out={tmp_path}", "name=r"]
    assert main(args) == 0
    geno = Genotype.load(tmp_path / "r")
    assert geno.space == "small_rnn" and len(geno.cells["recurrent"]) == 5
    history = json.loads((tmp_path / "r" / "history.jsonl").read_text().splitlines()[-1])
    assert len(history["A"]["recurrent"]) == 15 and len(history["A"]["recurrent"][0]) == 2  # 1+2+3+4+5 edges, 2 ops
    with pytest.raises(ConfigError, match="is an op of rnn cells, not of cnn cells"):
        prepare(build_config(parse_overrides([f"plugins={plugin}", "space.normal=skip_connect,softsign"])))
