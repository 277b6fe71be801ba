"""NASP's fast architecture gradient against the naive one; the sparse weight step; DARTS's
second-order hypergradient against an exact one (torch.func) on a tiny network, and its recurrent form against
DARTS's recurrent architect written out in float64."""

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call, grad

from nasp.algorithms import ALGORITHMS
from nasp.algorithms.gradients import fast_arch_grad, naive_arch_grad, unrolled_arch_grad
from nasp.algorithms.prox import discretize
from nasp.config import AlgorithmConfig, OptimConfig
from nasp.model import SearchNetwork, selection_of
from nasp.model.loss import cross_entropy
from nasp.model.recurrent import HiddenCarry, RecurrentNetwork, RNNDropouts, TokenWindow
from nasp.spaces import CellSpace, SearchSpace, get_space


def _setup(space_name, seed=0, channels=4, layers=3, size=12, batch=6):
    torch.manual_seed(seed)
    space = get_space(space_name)
    net = SearchNetwork(space, channels, layers, num_classes=5, in_channels=3).double()
    x = torch.randn(batch, 3, size, size, dtype=torch.float64)
    y = torch.randint(0, 5, (batch,))
    A = {ct: torch.rand(shape, dtype=torch.float64) for ct, shape in net.arch_shapes.items()}
    return space, net, x, y, A


def _rel(a, b):
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("space_name", ["cnn7", "cnn12"])
@pytest.mark.parametrize("value", ["one", "keep"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_fast_arch_grad_equals_naive(space_name, value, channels_last):
    space, net, x, y, A = _setup(space_name)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    values, masks = {}, {}
    for ct, a in A.items():
        values[ct], masks[ct] = discretize(a, space.cells[ct], value)
    selection = {ct: selection_of(m, space.cells[ct]) for ct, m in masks.items()}
    loss_f, fast = fast_arch_grad(net, x, y, None if value == "one" else values, selection)
    loss_n, naive = naive_arch_grad(net, x, y, values)
    assert torch.allclose(loss_f.double(), loss_n, rtol=1e-10)
    for ct in A:
        assert naive[ct].abs().sum() > 0
        assert _rel(fast[ct].double(), naive[ct]) < 1e-6, ct


def test_fast_arch_grad_computes_no_weight_gradient():
    space, net, x, y, A = _setup("cnn12")
    masks = {ct: discretize(a, space.cells[ct])[1] for ct, a in A.items()}
    fast_arch_grad(net, x, y, None, {ct: selection_of(m, space.cells[ct]) for ct, m in masks.items()})
    assert all(p.grad is None for p in net.parameters())


@pytest.mark.parametrize("name", ["nasp", "pa-lazy"])
def test_weight_step_leaves_unselected_ops_without_gradients(name):
    space, net, x, y, _ = _setup("cnn12")
    net = net.float()
    algo = ALGORITHMS.get(name)(space, net, AlgorithmConfig(name=name), OptimConfig(), 1, torch.device("cpu"))
    with torch.no_grad():
        for a in algo.A.values():
            a.copy_(torch.rand_like(a))
    algo.weight_step((x.float(), y))
    masks = {ct: discretize(a, space.cells[ct])[1] for ct, a in algo.A.items()}
    for cell in net.cells:
        mask = masks[cell.cell_type]
        for e, ops in enumerate(cell.edge_ops):
            for k, op in enumerate(ops):
                params = list(op.parameters())
                if not params:
                    continue
                has_grad = [p.grad is not None for p in params]
                assert all(has_grad) if mask[e, k] else not any(has_grad), (cell.cell_type, e, k)
    assert all(p.grad is not None for p in cell.preprocess1.parameters())


def test_darts_second_order_hypergradient_matches_exact():
    torch.manual_seed(0)
    space = get_space("cnn7")
    net = SearchNetwork(space, channels=2, layers=3, num_classes=3, in_channels=2).double()
    algo = ALGORITHMS.get("darts-2nd")(space, net, AlgorithmConfig(name="darts-2nd"), OptimConfig(), 1,
                                       torch.device("cpu"))
    gen = torch.Generator().manual_seed(1)

    def batch():
        return torch.randn(4, 2, 6, 6, generator=gen, dtype=torch.float64), torch.randint(0, 3, (4,), generator=gen)

    algo.weight_step(batch())  # momentum buffers now exist and enter the virtual step
    train, val = batch(), batch()
    alpha = {ct: (torch.randn(s, generator=gen, dtype=torch.float64)).requires_grad_(True)
             for ct, s in net.arch_shapes.items()}
    mix = algo.mixing
    xi = algo.weight_lr
    # ReLU and max-pool kinks make a large difference step inexact; in float64 a small one is not
    _, approx = unrolled_arch_grad(net, alpha, mix, train, val, xi, algo.w_opt, r_scale=1e-6)

    group = algo.w_opt.param_groups[0]
    params = {n: p.detach().clone() for n, p in net.named_parameters()}
    bufs = {n: algo.w_opt.state[p]["momentum_buffer"] for n, p in net.named_parameters() if p in algo.w_opt.state}
    buffers = {n: b.clone() for n, b in net.named_buffers()}

    def loss(p, a, data):
        logits = functional_call(net, (p, {n: b.clone() for n, b in buffers.items()}), (data[0],), {"weights": mix(a)})
        return F.cross_entropy(logits, data[1])

    def unrolled(a):
        g = grad(loss)(params, a, train)
        moved = {n: w - xi * (g[n] + group["weight_decay"] * w + group["momentum"] * bufs.get(n, torch.zeros_like(w)))
                 for n, w in params.items()}
        return loss(moved, a, val)

    exact = grad(unrolled)({k: v.detach() for k, v in alpha.items()})
    for ct in alpha:
        assert _rel(approx[ct], exact[ct]) < 1e-4, (ct, _rel(approx[ct], exact[ct]))
    # and the second-order term matters: the first-order gradient is measurably different
    first = torch.autograd.grad(loss(params, alpha, val), list(alpha.values()))
    assert max(_rel(f, exact[ct]) for f, ct in zip(first, alpha, strict=True)) > 1e-3


def test_model_size_regulariser_measures_ops_and_differentiates_exactly():
    from nasp.algorithms.regularizer import ModelSizeRegularizer
    from nasp.ops import op_param_count

    space = get_space("cnn12")
    reg = ModelSizeRegularizer(space, channels=16)
    p = torch.tensor([float(op_param_count(op, 16)) for op in space.cells["normal"].ops])
    assert torch.allclose(reg.weights["normal"], p / p.sum())
    assert reg.weights["normal"][space.cells["normal"].ops.index("skip_connect")] == 0
    assert reg.weights["reduce"][space.cells["reduce"].ops.index("skip_connect")] > 0  # a factorized reduce at stride 2
    A = {ct: torch.rand(s, dtype=torch.float64, requires_grad=True) for ct, s in
         {"normal": (14, 8), "reduce": (14, 5)}.items()}
    auto = torch.autograd.grad(reg.value(A), list(A.values()))
    for (ct, g), a in zip(reg.grad(A).items(), auto, strict=True):
        assert torch.allclose(g.double(), a), ct


def test_eta_adds_its_gradient_at_abar():
    space, net, x, y, _ = _setup("cnn12")
    net = net.float()
    grads = {}
    for eta in (0.0, 0.5):
        algo = ALGORITHMS.get("nasp")(space, net, AlgorithmConfig(eta=eta), OptimConfig(), 1, torch.device("cpu"))
        with torch.no_grad():
            for a in algo.A.values():
                a.copy_(torch.rand(a.shape, generator=torch.Generator().manual_seed(5)))
        _f, grads[eta] = algo.arch_gradient((x.float(), y), (x.float(), y))
    abar = algo.discrete()
    for ct in grads[0.0]:
        expected = 0.5 * 2 * algo.regularizer.weights[ct] * abar[ct]
        assert torch.allclose((grads[0.5][ct] - grads[0.0][ct]).float(), expected, atol=1e-6)


def test_the_training_loss_equals_torchs_cross_entropy_in_value_and_gradient():
    """The fused loss (gradient prepared in the forward, scaled in the backward) against F.cross_entropy in float64,
    at a language model's shape, with an upstream factor, and refusing a second backward through one loss."""
    gen = torch.Generator().manual_seed(0)
    logits = (torch.randn(70, 500, generator=gen, dtype=torch.float64) * 4).requires_grad_()
    y = torch.randint(500, (70,), generator=gen)
    ours = cross_entropy(logits, y)
    ref = F.cross_entropy(logits, y)
    assert torch.allclose(ours, ref, rtol=1e-12, atol=0)
    (g_ours,) = torch.autograd.grad(ours * 0.37, logits, retain_graph=True)
    (g_ref,) = torch.autograd.grad(ref * 0.37, logits)
    assert torch.allclose(g_ours, g_ref, rtol=1e-10, atol=1e-15)
    with pytest.raises(RuntimeError, match="twice"):
        torch.autograd.grad(ours, logits)
    with torch.no_grad():  # no gradient wanted: none prepared, same value
        assert torch.allclose(cross_entropy(logits, y), ref, rtol=1e-12, atol=0)
    half = logits.detach().to(torch.bfloat16)  # autocast's logits are upcast, as F.cross_entropy(logits.float()) was
    assert cross_entropy(half, y).dtype == torch.float32
    assert torch.allclose(cross_entropy(half, y), F.cross_entropy(half.float(), y))


def _dense_setup(seed=0):
    from nasp.model.dense import DenseSearchNetwork

    torch.manual_seed(seed)
    space = get_space("nb201")
    net = DenseSearchNetwork(space, channels=3, cells=1, num_classes=5, in_channels=3).double()
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    y = torch.randint(0, 5, (4,))
    return space, net, x, y


@pytest.mark.parametrize(("value", "stacked"), [("one", False), ("keep", False), ("one", True)])
@pytest.mark.parametrize("with_none", [False, True])
def test_fast_arch_grad_equals_naive_on_nb201(value, stacked, with_none):
    """The dense cell keeps one op per edge, every edge; 'none' selected on edges is run and scored like any op."""
    space, net, x, y = _dense_setup()
    cell = space.cells["cell"]
    gen = torch.Generator().manual_seed(3)
    a = torch.rand(net.arch_shapes["cell"], generator=gen, dtype=torch.float64)
    none = cell.ops.index("none")
    a[:, none] = 0.0
    if with_none:  # 'none' on 3 of the 6 edges, among them the one into node 1 (which then adds zeros only)
        for e in (0, 3, 4):
            a[e, none] = 1.0
    values, mask = discretize(a, cell, value)
    assert mask.sum(dim=1).tolist() == [1] * cell.n_edges  # one op per edge, no top-k of inputs
    assert int(mask[:, none].sum()) == (3 if with_none else 0)
    selection = {"cell": selection_of(mask, cell)}
    loss_f, fast = fast_arch_grad(net, x, y, None if value == "one" else {"cell": values}, selection, stacked)
    loss_n, naive = naive_arch_grad(net, x, y, {"cell": values})
    assert torch.allclose(loss_f, loss_n, rtol=1e-12)
    assert naive["cell"].abs().sum() > 0
    assert (fast["cell"] - naive["cell"]).abs().max() < 1e-10
    assert _rel(fast["cell"], naive["cell"]) < 1e-10


def test_nb201_weight_step_runs_only_selected_ops():
    space, net, x, y = _dense_setup()
    algo = ALGORITHMS.get("nasp")(space, net.float(), AlgorithmConfig(name="nasp"), OptimConfig(), 1,
                                  torch.device("cpu"))
    algo.weight_step((x.float(), y))
    mask = discretize(algo.A["cell"], space.cells["cell"])[1]
    for block in net.blocks:
        if not hasattr(block, "edge_ops"):
            continue
        for e, ops in enumerate(block.edge_ops):
            for k, op in enumerate(ops):
                params = list(op.parameters())
                if params:
                    assert all(p.grad is not None for p in params) == bool(mask[e, k]), (e, k)


RNN_TINY = SearchSpace(name="rnn-tiny", kind="rnn", cells={"recurrent": CellSpace(
    ops=("tanh", "relu", "sigmoid", "identity"), n_inputs=1, n_nodes=3, inputs_per_node=1)})


def _rnn_window(gen, carry_seed, vocab=20, steps=5, batch=4, nhid=6):
    carry = HiddenCarry()
    carry.store(0, torch.randn(batch, nhid, generator=gen, dtype=torch.float64))
    x = TokenWindow(torch.randint(vocab, (steps, batch), generator=gen), carry, 1, seed=carry_seed)
    return x, torch.randint(vocab, (steps * batch,), generator=gen)


@pytest.mark.parametrize("clip", [0.25, 1e3], ids=["clipped", "coefficient-above-1"])
def test_recurrent_darts_second_order_is_dartss_recurrent_architect(clip):
    """darts-2nd on an rnn space against DARTS's rnn/architect.py, written out here in float64 (tied embedding,
    dropout masks on, a carried hidden state): the training gradient clipped to total norm ``clip`` before the
    virtual step w' = w - lr (g + wd w), the Hessian direction clipped the same way, the finite-difference
    Hessian-vector product around w with r = 0.01 / ||v||, and the Hessian term times clip / (||g|| + 1e-6) even
    when that is above 1. Equal to 1e-10; the CNN formula (no clip) is measurably different."""
    torch.manual_seed(0)
    net = RecurrentNetwork(RNN_TINY, 20, 6, 6, RNNDropouts(0.3, 0.2, 0.3, 0.1, 0.0)).double()
    assert net.decoder.weight is net.encoder.weight  # tied
    lr, wd = 20.0, 5e-7
    optim = OptimConfig(lr=lr, momentum=0.0, weight_decay=wd, grad_clip=clip, schedule="constant")
    algo = ALGORITHMS.get("darts-2nd")(RNN_TINY, net, AlgorithmConfig(name="darts-2nd"), optim, 1,
                                       torch.device("cpu"), False, 0)
    gen = torch.Generator().manual_seed(1)
    a0 = torch.randn(net.arch_shapes["recurrent"], generator=gen, dtype=torch.float64)
    algo.A = {"recurrent": a0.clone().requires_grad_(True)}
    algo.arch_opt = torch.optim.Adam(list(algo.A.values()))
    train, val = _rnn_window(gen, 5), _rnn_window(gen, 6)
    w = {n: p.detach().clone() for n, p in net.named_parameters()}  # the tied tensor once, as encoder.weight

    algo.arch_step(val, train)
    got = algo.A["recurrent"].grad

    def loss(params, a, batch):
        x, y = batch
        logits = functional_call(net, params, (x,), {"weights": {"recurrent": torch.softmax(a, dim=-1)}})
        return F.cross_entropy(logits, y)

    def total_norm(gs):
        return torch.sqrt(sum((g * g).sum() for g in gs))

    # DARTS's _compute_unrolled_model: g clipped to total norm `clip`, w' = w - lr (g + wd w) (every weight)
    leaves = {n: v.clone().requires_grad_(True) for n, v in w.items()}
    g = dict(zip(leaves, torch.autograd.grad(loss(leaves, a0, train), list(leaves.values())), strict=True))
    coef = clip / (total_norm(g.values()) + 1e-6)
    if coef < 1:
        g = {n: v * coef for n, v in g.items()}
    w1 = {n: (w[n] - lr * (g[n] + wd * w[n])).requires_grad_(True) for n in w}
    # its _backward_step_unrolled: dalpha and dtheta at w', dtheta clipped the same way
    a = a0.clone().requires_grad_(True)
    dalpha, *dtheta = torch.autograd.grad(loss(w1, a, val), [a, *w1.values()])
    coef_v = clip / (total_norm(dtheta) + 1e-6)
    v = [d * coef_v for d in dtheta] if coef_v < 1 else dtheta
    # its _hessian_vector_product around w, R = 0.01 / ||v||
    R = 0.01 / total_norm(v)

    def alpha_grad(sign):
        moved = {n: w[n] + sign * R * vn for n, vn in zip(w, v, strict=True)}
        a = a0.clone().requires_grad_(True)
        return torch.autograd.grad(loss(moved, a, train), [a])[0]

    implicit = (alpha_grad(1.0) - alpha_grad(-1.0)) / (2 * R)
    expected = dalpha - lr * coef * implicit

    assert _rel(got, expected) < 1e-10, _rel(got, expected)
    if clip < 1:
        assert coef < 1 and coef_v < 1  # both clips act here
    else:
        assert coef > 1.5  # the coefficient above 1 multiplies the Hessian term
    # the CNN form (nothing clipped) is another gradient (the step above left w as it was)
    assert all(torch.equal(p, w[n]) for n, p in net.named_parameters())
    _, plain = unrolled_arch_grad(net, {"recurrent": a0.clone().requires_grad_(True)}, algo.mixing, train, val, lr,
                                  algo.w_opt)
    assert _rel(plain["recurrent"], expected) > 1e-3


def test_cnn_darts_second_order_clips_nothing():
    space = get_space("cnn7")
    net = SearchNetwork(space, channels=2, layers=3, num_classes=3, in_channels=2)
    algo = ALGORITHMS.get("darts-2nd")(space, net, AlgorithmConfig(name="darts-2nd"), OptimConfig(), 1,
                                       torch.device("cpu"))
    assert algo.unrolled_clip is None


@pytest.mark.parametrize("space_name", ["cnn7", "cnn12"])
def test_the_probe_moves_every_batch_norms_statistics_as_a_full_pass(space_name):
    """The authors' architecture pass runs every op of every edge, so every BatchNorm's running statistics move once;
    the probe runs a pool once per source, yet each edge's own BatchNorm on it: every buffer equals a full pass's."""
    import copy

    space, net, x, y, A = _setup(space_name)
    full = copy.deepcopy(net)
    values, masks = {}, {}
    for ct, a in A.items():
        values[ct], masks[ct] = discretize(a, space.cells[ct], "one")
    fast_arch_grad(net, x, y, None, {ct: selection_of(m, space.cells[ct]) for ct, m in masks.items()})
    naive_arch_grad(full, x, y, values)  # every op of every edge run (zero-weighted ones too)
    got, want = dict(net.named_buffers()), dict(full.named_buffers())
    pools = [n for n in got if n.endswith("running_var") and ".edge_ops." in n and n.split(".")[-2] == "1"]
    assert pools  # (a pool's BatchNorm is layer 1 of its Sequential)
    for name, b in want.items():
        assert torch.allclose(got[name].double(), b.double(), rtol=1e-10, atol=1e-12), name


def test_architecture_steps_keep_no_activations_alive():
    """The probe's hooks and the cell's states formed a cycle through autograd that Python's collector cannot
    see; after a step nothing of its pass may stay alive (it leaked 350 MB an epoch in a bare run)."""
    import gc

    from nasp.model.search import CellProbe

    def alive() -> int:
        gc.collect()
        return sum(isinstance(o, CellProbe) for o in gc.get_objects())

    space = get_space("cnn12")
    torch.manual_seed(0)
    net = SearchNetwork(space, 4, 3, num_classes=3, in_channels=1)
    algo = ALGORITHMS.get("nasp")(space, net, AlgorithmConfig(name="nasp"), OptimConfig(), 1, torch.device("cpu"),
                                  False, 0)
    batch = (torch.randn(4, 1, 16, 16), torch.randint(0, 3, (4,)))
    before = alive()
    for _ in range(3):
        algo.arch_step(batch, batch)
    assert alive() == before
