"""NASP's fast architecture gradient against the naive one; the sparse weight step; DARTS's
second-order hypergradient against an exact one (torch.func) on a tiny network."""

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
from nasp.spaces import get_space


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
