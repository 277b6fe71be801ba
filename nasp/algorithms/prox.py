"""Proximal steps of the paper (Proposition 1) and the discrete architecture they give.

C2 = {a : 0 <= a_k <= 1} (a box), C1 = {a : ||a||_0 = 1} (one op per edge), C = C1 ∩ C2.
The exact prox onto C picks, per edge, the op i that maximises a_i^2 - (a_i - clip(a_i))^2 and
keeps clip(a_i) there. On [0, 1] that is the largest entry, which is Proposition 1:
prox_C(a) = prox_C1(prox_C2(a)). The cell constraint adds the authors' rule that each node keeps
only its ``inputs_per_node`` incoming edges of largest kept value; with the kept values that is
again the exact prox (keeping an edge saves its gain, dropping it saves nothing). A dense cell
(``all_inputs``, NAS-Bench-201's) keeps every edge: C1 alone, one op per edge, 'none' as any other op.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nasp.spaces import CellSpace


def prox_box(a: torch.Tensor) -> torch.Tensor:
    """prox_C2: clip every entry to [0, 1]."""
    return a.clamp(0.0, 1.0)


def prox_one_hot(a: torch.Tensor) -> torch.Tensor:
    """prox_C1 on each row: keep the entry of largest magnitude (first on ties), zero the rest."""
    idx = a.abs().argmax(dim=-1, keepdim=True)
    return torch.zeros_like(a).scatter(-1, idx, a.gather(-1, idx))


def _gain(a: torch.Tensor) -> torch.Tensor:
    """How much keeping entry i (at value clip(a_i)) lowers 1/2||a - b||^2 below b = 0."""
    return a.square() - (a - prox_box(a)).square()


def prox_c(a: torch.Tensor) -> torch.Tensor:
    """The exact prox onto C = C1 ∩ C2, row by row."""
    idx = _gain(a).argmax(dim=-1, keepdim=True)
    return torch.zeros_like(a).scatter(-1, idx, prox_box(a).gather(-1, idx))


def discretize(a: torch.Tensor, cell: CellSpace, selected_value: str = "one", epsilon: float = 0.0,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(Ā, mask) from A for one cell type: one op per edge, ``inputs_per_node`` edges per node (every edge in
    a dense cell).

    ``selected_value='keep'`` is the exact prox (the literal Proposition 1); ``'one'`` sets each
    kept entry to 1, as the authors' code does. ``epsilon`` > 0 replaces each edge's op by a
    random one with that probability (epsilon-greedy). ``mask`` marks the kept entries (a kept
    entry can hold 0 under 'keep', and is still the edge's op)."""
    a = a.detach()
    gain = _gain(a)
    op = gain.argmax(dim=-1)
    if epsilon > 0:  # drawn on the CPU generator (a resumed run draws the same); host to device, no sync
        flip = torch.rand(op.shape, generator=generator, device="cpu").to(a.device) < epsilon
        rand = torch.randint(a.shape[-1], op.shape, generator=generator, device="cpu").to(a.device)
        op = torch.where(flip, rand, op)
    strength = gain.gather(-1, op[:, None]).squeeze(-1)
    keep = torch.ones(a.shape[0], dtype=torch.bool, device=a.device)
    # a node's edges are a contiguous range of rows: slices, no index tensors; a dense cell keeps them all
    for j in range(0 if cell.all_inputs else cell.n_nodes):
        rows = cell.node_edges(j)
        order = torch.argsort(-strength[rows.start:rows.stop], stable=True)[: cell.inputs_per_node]
        keep[rows.start:rows.stop] = torch.zeros_like(keep[rows.start:rows.stop]).index_fill(0, order, True)
    value = torch.ones_like(strength) if selected_value == "one" else prox_box(a).gather(-1, op[:, None]).squeeze(-1)
    # no boolean indexing: it would read the mask back to the host (a sync on a GPU)
    mask = F.one_hot(op, a.shape[-1]).bool() & keep[:, None]
    out = torch.where(mask, value[:, None], torch.zeros((), dtype=a.dtype, device=a.device))
    return out, mask
