"""DARTS's recurrent network, for search and evaluation alike: embedding, one recurrent cell, tied decoder.

The cell (DARTS, ``rnn/``): node 0 = h_{t-1} + sigmoid(c0) * (tanh(h0) - h_{t-1}) with [c0, h0] = [x_t, h_{t-1}] W0;
intermediate node j reads an earlier node s through its own W_j: [c, h] = s W_j, value s + sigmoid(c) * (act(h) - s);
h_t is the mean of the intermediate nodes. The three forward modes of the search network (protocol.py) apply:

- ``dense``: node j = sum over all (earlier node, act) of w[e, k] * value (DARTS; the naive reference);
- ``sparse``: only the selected (node, act) pairs run (NASP's weight step; with a genotype's selection and no batch
  norm this is exactly DARTS's evaluation model);
- ``sparse`` with an :class:`ArchGradProbe`: backward through the selected ops only, through time; each node's
  gradient dL/dnode_t is kept as it arrives, and after the backward pass every candidate of that node (all its
  sources, every op) is scored at once over all time steps, <dL/dnode, s + c * (act(h) - s)>, in a few large
  matrix products.

A batch's inputs are a :class:`TokenWindow`: tokens plus where the hidden state comes from (the previous window of
the same stream) and a seed for its dropout masks, so every forward over one window (an architecture step, a weight
step, DARTS's unrolled step) starts from the same state with the same masks, and a resumed run draws the same masks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nasp.model.probe import ArchGradProbe, Selection, upcast
from nasp.model.protocol import register_network
from nasp.ops import create_op
from nasp.spaces import CellSpace, SearchSpace

INIT_RANGE = 0.04  # DARTS's uniform init of the embedding and the cell's matrices


@dataclass(frozen=True)
class RNNDropouts:
    """DARTS's dropouts: on the cell's output (``dropout``), its hidden input to every node (``dropouth``), its
    input x_t (``dropoutx``), the embedded words (``dropouti``) and whole words of the embedding (``dropoute``)."""

    dropout: float = 0.75
    dropouth: float = 0.25
    dropoutx: float = 0.75
    dropouti: float = 0.2
    dropoute: float = 0.0


class HiddenCarry:
    """The hidden state a stream of windows hands on: window i starts from what window i-1 ended with."""

    def __init__(self) -> None:
        self.states: dict[int, torch.Tensor] = {}

    def incoming(self, index: int) -> torch.Tensor | None:
        return self.states.get(index - 1)

    def store(self, index: int, hidden: torch.Tensor) -> None:
        self.states[index] = hidden.detach()
        for old in [i for i in self.states if i < index - 1]:
            del self.states[old]

    def state_dict(self) -> dict[int, torch.Tensor]:
        return {i: h.cpu() for i, h in self.states.items()}

    def load_state_dict(self, state: dict[int, torch.Tensor], device: torch.device | str = "cpu") -> None:
        self.states = {int(i): h.to(device) for i, h in state.items()}


@dataclass
class TokenWindow:
    """Inputs (T, B) of one window of a stream, with the stream's hidden carry and the seed of its masks."""

    tokens: torch.Tensor
    carry: HiddenCarry = field(default_factory=HiddenCarry)
    index: int = 0
    seed: int = 0
    # under torchrun: this rank's streams (columns) of ``streams`` in all; masks are drawn for all of them
    rows: slice | None = None
    streams: int | None = None

    def mask(self, shape: tuple[int, ...], dim: int, p: float, gen: torch.Generator, like: torch.Tensor) -> torch.Tensor:
        """A dropout mask of the global batch (its dimension ``dim`` is the streams), this rank's streams of it:
        the masks one process of every stream draws, whatever the number of ranks."""
        if self.rows is None or self.streams is None:
            return _mask(shape, p, gen, like)
        full = list(shape)
        full[dim] = self.streams
        return _mask(tuple(full), p, gen, like).narrow(dim, self.rows.start, self.rows.stop - self.rows.start)

    @property
    def shape(self) -> torch.Size:
        return self.tokens.shape

    @property
    def device(self) -> torch.device:
        return self.tokens.device

    def generator(self) -> torch.Generator:
        return torch.Generator(device=self.tokens.device).manual_seed(self.seed)


def _mask(shape: tuple[int, ...], p: float, gen: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """An inverted-dropout mask (kept entries 1/(1-p))."""
    keep = torch.empty(shape, device=like.device, dtype=like.dtype).bernoulli_(1 - p, generator=gen)
    return keep / (1 - p)


def selection_of_genotype(space: SearchSpace, genotype: Any) -> dict[str, Selection]:
    """The fixed selection of a genotype: per node, its (edge row, op column) pairs."""
    out: dict[str, Selection] = {}
    for ct, nodes in genotype.cells.items():
        cell = space.cells[ct]
        out[ct] = [[(cell.edges.index((e.input, cell.n_inputs + j)), cell.ops.index(e.op)) for e in node]
                   for j, node in enumerate(nodes)]
    return out


class _NodeProbe:
    """NASP's recurrent architecture gradient for one forward: dL/dnode_t kept per (node, t) during backward, the
    candidates scored after it (``finish``)."""

    def __init__(self, probe: ArchGradProbe, net: RecurrentNetwork, steps: int) -> None:
        self.grads = probe.grads[net.cell_type]
        self.net = net
        self.node_grads: list[list[torch.Tensor | None]] = [[None] * steps for _ in range(net.cell.n_nodes)]
        self.states: list[list[torch.Tensor]] = []  # per t: the detached nodes s_0..s_n (pre-output)
        self.h_mask: torch.Tensor | None = None
        probe.finishers.append(self.finish)

    def watch(self, nodes: torch.Tensor, which: list[int], t: int) -> None:
        """Keep dL/dnode at step t of the nodes ``which``, stacked in ``nodes`` (before their batch norm)."""
        if nodes.requires_grad:
            nodes.register_hook(lambda g: self._keep(which, t, g))

    def _keep(self, which: list[int], t: int, g: torch.Tensor) -> None:
        for i, j in enumerate(which):
            self.node_grads[j][t] = upcast(g[i])

    @torch.no_grad()
    def finish(self) -> None:
        """Per node j, every candidate (source i, op k) at once over all steps: with [c, h] = (s_i * m) W_j,
        dL/dĀ[i->j, k] = sum_t <G_t, s_i + sigmoid(c) * (op_k(h) - s_i)>, G_t = dL/dnode_j at t. One product
        through W_j for all of j's sources, one op call per op, and the sums as matrix-vector products."""
        net, cell = self.net, self.net.cell
        if not self.states:
            return
        every = torch.stack([torch.stack(st) for st in self.states], dim=1)  # (states, T, B, nhid)
        for j in range(cell.n_nodes):
            got = self.node_grads[j]
            if any(g is None for g in got):
                continue
            rows = cell.node_edges(j)
            S = every[[cell.edges[e][0] for e in rows]]  # (sources, T, B, nhid)
            c, h = net.node_inputs(S, j, self.h_mask)
            S, c, h = upcast(S), upcast(c), upcast(h)
            n = S.shape[0]
            G = torch.stack(got).reshape(-1, 1)  # type: ignore[arg-type]
            Gc = c * G.view(1, *S.shape[1:])
            flat_s = S.reshape(n, -1)
            base = (flat_s @ G).view(n) - torch.linalg.vecdot(Gc.reshape(n, -1), flat_s)
            for k, op in enumerate(net.ops):
                self.grads[rows, k] += base + torch.linalg.vecdot(Gc.reshape(n, -1), upcast(op(h)).reshape(n, -1))
        self.node_grads.clear()
        self.states.clear()


@dataclass
class _Level:
    """Nodes of a sparse cell that read only earlier levels, computed together: one product through their stacked
    W_j, one call per op, one batch norm. ``pairs`` (node, source, op column) are ordered by op, so each op reads a
    contiguous slice."""

    nodes: list[int]
    sources: list[int]
    weight: torch.Tensor  # (pairs, nhid, 2 nhid): W_j of each pair's node
    ops: list[tuple[int, int, int]]  # (op column, first pair, end)
    scale: torch.Tensor | None  # (pairs, 1, 1): Ā's kept values ('keep'), or None
    owner: torch.Tensor | None  # (pairs,): each pair's node within the level, when a node has several pairs


def _levels(net: RecurrentNetwork, sel: Selection, w: torch.Tensor | None) -> list[_Level]:
    """The selected cell in levels: a node's level is one more than its deepest source's (the input's is 0). A chain
    still takes one level per node; DARTS's V2 cell takes 4 levels for its 8 nodes."""
    cell, first = net.cell, net.cell.n_inputs
    depth = [0] * (first + cell.n_nodes)
    for j in range(cell.n_nodes):
        depth[first + j] = 1 + max((depth[cell.edges[e][0]] for e, _ in sel[j]), default=0)
    levels = []
    for d in sorted({depth[first + j] for j in range(cell.n_nodes) if sel[j]}):
        nodes = [j for j in range(cell.n_nodes) if sel[j] and depth[first + j] == d]
        pairs = sorted(((k, i, j, e) for i, j in enumerate(nodes) for e, k in sel[j]))
        ops = [(k, min(p for p, q in enumerate(pairs) if q[0] == k), 1 + max(p for p, q in enumerate(pairs) if q[0] == k))
               for k in sorted({q[0] for q in pairs})]
        single = len(pairs) == len(nodes)
        if single:  # one pair per node: the level's nodes in the pairs' order
            nodes = [nodes[i] for _, i, _, _ in pairs]
        levels.append(_Level(
            nodes=nodes, sources=[cell.edges[e][0] for _, _, _, e in pairs],
            weight=torch.stack([net.Ws[j] for _, _, j, _ in pairs]), ops=ops,
            scale=None if w is None else torch.stack([w[e, k] for k, _, _, e in pairs]).view(-1, 1, 1),
            owner=None if single else torch.tensor([i for _, i, _, _ in pairs], device=w.device if w is not None
                                                   else net.W0.device)))
    return levels


class RecurrentNetwork(nn.Module):
    """Embedding, DARTS's recurrent cell over every edge of ``space``'s recurrent cell, decoder (tied to the
    embedding when emsize = nhid). ``batch_norm``: DARTS's search model normalises every node (non-affine);
    its evaluation model does not."""

    def __init__(self, space: SearchSpace, vocab_size: int, emsize: int = 300, nhid: int = 300,
                 dropouts: RNNDropouts | None = None, batch_norm: bool = True, init_range: float = INIT_RANGE,
                 alpha: float = 0.0, beta: float = 0.0) -> None:
        super().__init__()
        if space.kind != "rnn":
            raise ValueError(f"RecurrentNetwork builds rnn spaces, not '{space.kind}'")
        self.space = space
        self.cell_type = next(iter(space.cells))
        self.cell: CellSpace = space.cells[self.cell_type]
        self.vocab_size, self.emsize, self.nhid = vocab_size, emsize, nhid
        self.channels = nhid  # the width the model-size regulariser weighs ops at (SearchableNetwork)
        self.dropouts = dropouts or RNNDropouts()
        self.alpha, self.beta = alpha, beta
        self.penalty: torch.Tensor | None = None  # the last training forward's activation regularisers
        self.encoder = nn.Embedding(vocab_size, emsize)
        self.W0 = nn.Parameter(torch.empty(emsize + nhid, 2 * nhid).uniform_(-init_range, init_range))
        self.Ws = nn.ParameterList(nn.Parameter(torch.empty(nhid, 2 * nhid).uniform_(-init_range, init_range))
                                   for _ in range(self.cell.n_nodes))
        self.ops = nn.ModuleList(create_op(name, nhid) for name in self.cell.ops)  # shared by every edge
        # DARTS's non-affine batch norm of every node, on the batch's statistics in training and scoring alike: running
        # statistics (DARTS's) mix nodes of different scales early in a search, and scoring with them can blow the
        # recurrence up through time
        self.bn = nn.BatchNorm1d(nhid, affine=False, track_running_stats=False) if batch_norm else None
        self.decoder = nn.Linear(nhid, vocab_size)
        self.encoder.weight.data.uniform_(-init_range, init_range)
        self.decoder.bias.data.zero_()
        if emsize == nhid:
            self.decoder.weight = self.encoder.weight

    @property
    def arch_shapes(self) -> dict[str, tuple[int, int]]:
        return {self.cell_type: (self.cell.n_edges, self.cell.n_ops)}

    def node_inputs(self, s: torch.Tensor, j: int, h_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(sigmoid(c), h) of node j reading ``s`` (any leading shape, last dim nhid)."""
        inp = s * h_mask if h_mask is not None else s
        c, h = torch.split(inp @ self.Ws[j], self.nhid, dim=-1)
        return torch.sigmoid(c), h

    def _norm(self, s: torch.Tensor) -> torch.Tensor:
        return self.bn(s) if self.bn is not None else s

    def _embed(self, x: TokenWindow, gen: torch.Generator | None) -> torch.Tensor:
        d = self.dropouts
        weight = self.encoder.weight
        if gen is not None and d.dropoute > 0:  # drop whole words (DARTS's embedded dropout)
            weight = weight * _mask((weight.shape[0], 1), d.dropoute, gen, weight)
        emb = F.embedding(x.tokens, weight)
        if gen is not None and d.dropouti > 0:  # the same words' dimensions dropped at every step (locked)
            emb = emb * x.mask((1, *emb.shape[1:]), 1, d.dropouti, gen, emb)
        return emb

    def forward(self, x: TokenWindow, weights: dict[str, torch.Tensor] | None = None,
                selection: dict[str, Selection] | None = None, probe: ArchGradProbe | None = None) -> torch.Tensor:
        """Logits (T*B, vocab) of the window; its last hidden state goes to the window's carry."""
        steps, batch = x.tokens.shape
        gen = x.generator() if self.training else None
        d = self.dropouts
        emb = self._embed(x, gen)
        if probe is not None:
            probe.root = emb
        hidden = x.carry.incoming(x.index)
        if hidden is None or hidden.shape != (batch, self.nhid):
            hidden = emb.new_zeros(batch, self.nhid)
        x_mask = x.mask((batch, self.emsize), 0, d.dropoutx, gen, emb) if gen is not None and d.dropoutx > 0 else None
        h_mask = x.mask((batch, self.nhid), 0, d.dropouth, gen, emb) if gen is not None and d.dropouth > 0 else None
        w = None if weights is None else weights[self.cell_type]
        sel = None if selection is None else selection[self.cell_type]
        node_probe = _NodeProbe(probe, self, steps) if probe is not None else None
        if node_probe is not None:
            node_probe.h_mask = h_mask
        # x_t's part of [x_t, h_{t-1}] W0 for every step at once (one large product instead of T small ones)
        x_proj = (emb * x_mask if x_mask is not None else emb) @ self.W0[: self.emsize]
        levels = None if sel is None else _levels(self, sel, w)
        w_h = self.W0[self.emsize:]
        outputs = []
        for t, x_t in enumerate(x_proj.unbind(0)):  # (unbind: one backward for all steps, not one per step)
            hidden = self.cell_step(x_t, hidden, h_mask, w_h, w, levels, node_probe, t)
            outputs.append(hidden)
        x.carry.store(x.index, hidden)
        raw = torch.stack(outputs)
        out = raw * x.mask((1, batch, self.nhid), 1, d.dropout, gen, raw) if gen is not None and d.dropout > 0 else raw
        self.penalty = self._activation_penalty(raw, out) if self.training else None
        return self.decoder(out.view(steps * batch, self.nhid))

    def _activation_penalty(self, raw: torch.Tensor, dropped: torch.Tensor) -> torch.Tensor | None:
        """DARTS's (AWD-LSTM's) activation regularisers of a training forward, for the weights' loss only:
        alpha * mean(dropped output^2) + beta * mean((h_t - h_{t-1})^2) over the raw output."""
        terms = []
        if self.alpha > 0:
            terms.append(self.alpha * upcast(dropped).pow(2).mean())
        if self.beta > 0 and raw.shape[0] > 1:
            terms.append(self.beta * upcast(raw[1:] - raw[:-1]).pow(2).mean())
        return sum(terms[1:], terms[0]) if terms else None

    def cell_step(self, x_proj: torch.Tensor, h_prev: torch.Tensor, h_mask: torch.Tensor | None,
                  w_h: torch.Tensor, w: torch.Tensor | None, levels: list[_Level] | None, probe: _NodeProbe | None,
                  t: int) -> torch.Tensor:
        """h_t from x_t's projection (x_t W0[:emsize]) and h_{t-1}; ``w_h`` is W0[emsize:]."""
        cell = self.cell
        h_in = h_prev * h_mask if h_mask is not None else h_prev
        c0, h0 = torch.split(torch.addmm(x_proj, h_in, w_h), self.nhid, dim=-1)
        s0 = self._norm(torch.lerp(h_prev, torch.tanh(h0), torch.sigmoid(c0)))
        states: list[torch.Tensor] = [s0]
        if levels is None:  # dense: every earlier node through every op, batched over the sources
            assert w is not None
            for j in range(cell.n_nodes):
                rows = cell.node_edges(j)
                S = torch.stack(states)
                c, h = self.node_inputs(S, j, h_mask)
                mix = 0
                for k, op in enumerate(self.ops):  # as DARTS: one op over all sources at once
                    mix = mix + (w[rows.start:rows.stop, k, None, None] * torch.lerp(S, op(h), c)).sum(0)
                states.append(self._norm(mix))  # type: ignore[arg-type]
        else:
            states += [self._norm(torch.zeros_like(s0))] * cell.n_nodes  # a node without inputs stays 0
            for level in levels:
                S = torch.stack([states[i] for i in level.sources])
                c, h = torch.split(torch.bmm(S * h_mask if h_mask is not None else S, level.weight), self.nhid, dim=-1)
                parts = h.split([hi - lo for _, lo, hi in level.ops]) if len(level.ops) > 1 else (h,)
                acts = [self.ops[k](part) for (k, _, _), part in zip(level.ops, parts, strict=True)]
                mix = torch.lerp(S, acts[0] if len(acts) == 1 else torch.cat(acts), torch.sigmoid(c))
                if level.scale is not None:
                    mix = mix * level.scale
                if level.owner is not None:  # several pairs per node: sum each node's
                    mix = mix.new_zeros(len(level.nodes), *mix.shape[1:]).index_add(0, level.owner, mix)
                if probe is not None:
                    probe.watch(mix, level.nodes, t)
                for j, s in zip(level.nodes, self._norm_level(mix), strict=True):
                    states[cell.n_inputs + j] = s
        if probe is not None:
            probe.states.append([s.detach() for s in states])
        return torch.stack(states[cell.n_inputs:]).mean(0)

    def _norm_level(self, mix: torch.Tensor) -> list[torch.Tensor]:
        """Batch norm of each of a level's nodes (n, B, nhid) on its own statistics: one call on (B, n * nhid)."""
        if self.bn is None:
            return list(mix.unbind(0))
        n, batch, nhid = mix.shape
        if n == 1:
            return [self.bn(mix[0])]
        flat = F.batch_norm(mix.transpose(0, 1).reshape(batch, n * nhid), None, None, training=True, eps=self.bn.eps)
        return list(flat.view(batch, n, nhid).unbind(1))

    def weight_parameters(self) -> list[nn.Parameter]:
        return list(self.parameters())


@register_network("rnn")
def rnn_search_network(space: SearchSpace, channels: int, layers: int, vocab_size: int = 10_000,
                       emsize: int | None = None, dropouts: RNNDropouts | None = None,
                       batch_norm: bool = True, alpha: float = 0.0, beta: float = 0.0) -> RecurrentNetwork:
    """DARTS's recurrent search network: ``channels`` is nhid (emsize too unless given); one layer; ``alpha`` and
    ``beta`` weigh its activation regularisers in the weights' loss."""
    return RecurrentNetwork(space, vocab_size, emsize or channels, channels, dropouts, batch_norm, alpha=alpha, beta=beta)
