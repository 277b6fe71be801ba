"""DARTS (eq. 4-6): softmax-mixed ops, first or second order, genotype derived afterwards."""

from __future__ import annotations

import torch
from pydantic import Field

from nasp.algorithms.base import Batch, SearchAlgorithm, step_numbers
from nasp.algorithms.gradients import unrolled_arch_grad
from nasp.algorithms.registry import register_algorithm
from nasp.config import AlgorithmOptions
from nasp.genotype import Edge, Genotype


class DARTSOptions(AlgorithmOptions):
    """Options of DARTS: the shared ones, A starting at init * randn."""

    init: float = Field(1e-3, description="scale of the initial A: init * randn")


class DARTS(SearchAlgorithm):
    Options = DARTSOptions
    second_order = False
    tied_start = False  # A starts at init * randn: no tie to break

    def init_arch(self, shape: tuple[int, int]) -> torch.Tensor:
        return self.cfg.init * torch.randn(shape, generator=self.generator)

    def mixing(self, arch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {ct: torch.softmax(a, dim=-1) for ct, a in arch.items()}

    def discrete(self) -> dict[str, torch.Tensor]:
        """The derived genotype as a 0/1 matrix (what DARTS would hand to evaluation)."""
        out = {}
        geno = self.genotype()
        for ct, a in self.A.items():
            cell = self.space.cells[ct]
            m = torch.zeros_like(a.detach())
            for j, node in enumerate(geno.cells[ct]):
                for e in node:
                    row = cell.edges.index((e.input, cell.n_inputs + j))
                    m[row, cell.ops.index(e.op)] = 1.0
            out[ct] = m
        return out

    def genotype(self) -> Genotype:
        """Per node the strongest edges by their best non-'none' weight, each with that op; a dense cell keeps every
        edge with its strongest op, 'none' included (NAS-Bench-201's rule)."""
        cells = {}
        for ct, a in self.A.items():
            cell = self.space.cells[ct]
            w = torch.softmax(a.detach().float().cpu(), dim=-1)
            usable = [k for k, op in enumerate(cell.ops) if op != "none" or cell.all_inputs] or list(range(cell.n_ops))
            nodes = []
            for j in range(cell.n_nodes):
                scored = []
                for e in cell.node_edges(j):
                    k = max(usable, key=lambda k, e=e: float(w[e, k]))
                    scored.append((-float(w[e, k]), e, k))
                best = sorted(scored)[: cell.kept_inputs(j)]
                nodes.append(sorted((Edge(op=cell.ops[k], input=cell.edges[e][0]) for _, e, k in best),
                                    key=lambda ed: ed.input))
            cells[ct] = nodes
        return Genotype(space=self.space.name, cells=cells, space_def=self.space_def)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            return self.net(x, self.mixing(self.A))

    def arch_step(self, val: Batch, train: Batch) -> torch.Tensor:
        if self.second_order:
            with self.autocast():
                loss, grads = unrolled_arch_grad(self.net, self.A, self.mixing, train, val, self.weight_lr, self.w_opt,
                                                 clip=self.unrolled_clip)
        else:
            x, y = val
            with self.autocast():
                loss = self.loss(self.net(x, self.mixing(self.A)), y)
            # a cell type the network does not use (no reduce cell below 3 layers) gets a zero gradient
            got = torch.autograd.grad(loss, list(self.A.values()), allow_unused=True)
            grads = {ct: torch.zeros_like(a) if g is None else g for (ct, a), g in zip(self.A.items(), got, strict=True)}
        self.arch_update(grads)
        return loss.detach()

    @property
    def unrolled_clip(self) -> float | None:
        """The clip of DARTS's recurrent second order (``rnn/architect.py``: its training gradient, the Hessian
        direction and the Hessian term's coefficient) for a recurrent space: the weights' ``optim.grad_clip``;
        None for CNN spaces (DARTS's CNN architect clips nothing)."""
        return self.optim_cfg.grad_clip if self.space.kind == "rnn" else None

    def weight_step(self, train: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        return self.graph_step("dense", self._weight_step, *train)  # one graph: A is read inside it

    def _weight_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        weights = {ct: w.detach() for ct, w in self.mixing(self.A).items()}
        with self.autocast():
            logits = self.net(x, weights)
        loss = self.loss(logits, y)
        self.sgd_step(loss)
        assert self.grad_norm is not None
        return (*step_numbers(loss, logits, y), self.grad_norm)


@register_algorithm("darts-1st")
class DARTSFirst(DARTS):
    """DARTS, first order: ∇_A L_val(w, A) with w held fixed."""


@register_algorithm("darts-2nd")
class DARTSSecond(DARTS):
    """DARTS, second order: unrolled virtual step and finite-difference Hessian term (eq. 6).

    On recurrent spaces it is DARTS's recurrent form: the weights' gradient clip in the virtual step and in the
    Hessian term."""

    second_order = True
