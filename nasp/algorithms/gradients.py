"""Architecture gradients: NASP's fast one, the naive one it must equal, and DARTS's unrolled one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from nasp.model import ArchGradProbe, SearchableNetwork
from nasp.model.loss import cross_entropy
from nasp.model.probe import Selection

Weights = dict[str, torch.Tensor]


def fast_arch_grad(net: SearchableNetwork, x: torch.Tensor, y: torch.Tensor, weights: Weights | None,
                   selection: dict[str, Selection], stacked: bool | None = None) -> tuple[torch.Tensor, Weights]:
    """dL/dĀ for every entry, running only the child network with autograd.

    The backward pass asks for no weight gradient (only the path to the stem output), and the
    probe turns each node's gradient into <dL/dnode, op(x)> for all candidate ops as it arrives. ``stacked``:
    a node's same-shape convolutions in one grouped convolution; None (auto) stacks on a GPU only, where
    launches dominate (on the CPU it measured 2% slower at the bench's size, cnn12)."""
    probe = ArchGradProbe(net.arch_shapes, x.device, x.device.type == "cuda" if stacked is None else stacked)
    logits = net(x, weights, selection, probe)
    loss = cross_entropy(logits, y)
    torch.autograd.grad(loss, [probe.root])
    return loss.detach(), probe.finish()


def naive_arch_grad(net: SearchableNetwork, x: torch.Tensor, y: torch.Tensor, abar: Weights) -> tuple[torch.Tensor, Weights]:
    """The reference: every op run and backpropagated, weighted by Ā (zeros included)."""
    leaves = {ct: a.detach().clone().requires_grad_(True) for ct, a in abar.items()}
    loss = cross_entropy(net(x, leaves), y)
    grads = torch.autograd.grad(loss, list(leaves.values()))
    return loss.detach(), dict(zip(leaves, grads, strict=True))


@contextmanager
def _swapped(params: list[torch.Tensor], values: list[torch.Tensor]) -> Iterator[None]:
    saved = [p.detach().clone() for p in params]
    with torch.no_grad():
        for p, v in zip(params, values, strict=True):
            p.copy_(v)
    try:
        yield
    finally:
        with torch.no_grad():
            for p, s in zip(params, saved, strict=True):
                p.copy_(s)


def clip_coefficient(grads: list[torch.Tensor], max_norm: float) -> torch.Tensor:
    """DARTS's recurrent ``_clip``'s coefficient max_norm / (||grads|| + 1e-6), not capped at 1."""
    return max_norm / (torch.cat([g.flatten() for g in grads]).norm() + 1e-6)


def _clipped(grads: list[torch.Tensor], coef: torch.Tensor) -> list[torch.Tensor]:
    """``grads`` clipped to the total norm of the coefficient ``coef``: scaled by min(coef, 1) (a product by 1.0 is
    exact, and no host sync decides it)."""
    scale = coef.clamp(max=1.0)
    return [g * scale for g in grads]


def unrolled_arch_grad(net: SearchableNetwork, arch: Weights, to_weights: Callable[[Weights], Weights],
                       train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor],
                       xi: float, w_opt: torch.optim.SGD, r_scale: float = 0.01,
                       clip: float | None = None) -> tuple[torch.Tensor, Weights]:
    """DARTS's second-order gradient, eq. (6): grad_A L_val(w', A) - xi * Hessian-vector term.

    w' = w - xi (grad_w L_train + momentum buffer + wd w), as DARTS's virtual step; the
    Hessian-vector product is a central finite difference around w with r = r_scale / ||v||, v = grad_w' L_val.

    ``clip`` (DARTS's recurrent architect, ``rnn/architect.py``; None: its CNN one): grad_w L_train is clipped to
    total norm ``clip`` before the virtual step, v is clipped the same way, and the Hessian term is multiplied by
    the clip coefficient clip / (||grad_w L_train|| + 1e-6), also where that is above 1 (DARTS's ``_clip`` returns it
    uncapped). Every weight moves to w', a tied embedding and decoder together (DARTS's virtual model reloads the
    decoder from the old state dict, so its tied tensor keeps the old embedding: a slip not copied here)."""
    params = [p for p in net.parameters()]
    group = w_opt.param_groups[0]
    momentum, wd = group["momentum"], group["weight_decay"]
    xt, yt = train
    xv, yv = val

    loss_t = cross_entropy(net(xt, {k: v.detach() for k, v in to_weights(arch).items()}), yt)
    g_train = [g if g is not None else torch.zeros_like(p)
               for g, p in zip(torch.autograd.grad(loss_t, params, allow_unused=True), params, strict=True)]
    coef = None
    if clip is not None:
        coef = clip_coefficient(g_train, clip)
        g_train = _clipped(g_train, coef)
    virtual = []
    for p, g in zip(params, g_train, strict=True):
        buf = w_opt.state.get(p, {}).get("momentum_buffer")
        step = g + wd * p.detach()
        if buf is not None:
            step = step + momentum * buf
        virtual.append(p.detach() - xi * step)

    leaves = list(arch.values())
    with _swapped(params, virtual):
        loss_v = cross_entropy(net(xv, to_weights(arch)), yv)
        grads = torch.autograd.grad(loss_v, leaves + params, allow_unused=True)
    d_arch = [g if g is not None else torch.zeros_like(a) for g, a in zip(grads[: len(leaves)], leaves, strict=True)]
    d_w = [g if g is not None else torch.zeros_like(p) for g, p in zip(grads[len(leaves):], params, strict=True)]
    if clip is not None:
        d_w = _clipped(d_w, clip_coefficient(d_w, clip))

    norm = torch.cat([g.flatten() for g in d_w]).norm()
    r = r_scale / (norm + 1e-12)

    def arch_grad_at(sign: float) -> list[torch.Tensor]:
        moved = [p.detach() + sign * r * g for p, g in zip(params, d_w, strict=True)]
        with _swapped(params, moved):
            loss = cross_entropy(net(xt, to_weights(arch)), yt)
            gs = torch.autograd.grad(loss, leaves, allow_unused=True)
        return [g if g is not None else torch.zeros_like(a) for g, a in zip(gs, leaves, strict=True)]

    g_pos, g_neg = arch_grad_at(1.0), arch_grad_at(-1.0)
    scale = xi if coef is None else xi * coef
    out = {k: da - scale * (gp - gn) / (2 * r) for k, da, gp, gn in zip(arch, d_arch, g_pos, g_neg, strict=True)}
    return loss_v.detach(), out
