"""NASP, Algorithm 2: A in [0, 1]; Ā = prox_C1(A); A's gradient taken at Ā without second order."""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field

from nasp.algorithms.base import Batch, SearchAlgorithm, step_numbers
from nasp.algorithms.gradients import fast_arch_grad
from nasp.algorithms.prox import discretize, prox_box
from nasp.algorithms.registry import register_algorithm
from nasp.algorithms.regularizer import ModelSizeRegularizer
from nasp.config import AlgorithmOptions
from nasp.genotype import Genotype
from nasp.model.probe import Selection, selections_of


def selection_key(selection: dict[str, Selection]) -> tuple[Any, ...]:
    """A hashable form of a selection: what a captured weight step is specific to."""
    return tuple((ct, tuple(tuple(node) for node in selection[ct])) for ct in sorted(selection))


class ProximalOptions(AlgorithmOptions):
    """Options of NASP (and, with another default for selected_value, of the PA baselines)."""

    init: float = Field(0.5, description="initial value of every entry of A")
    eta: float = Field(0.0, ge=0, description="weight of the model-size regulariser eta*R(A), eq. (8)")
    selected_value: Literal["one", "keep"] = Field(
        "one", description="value of the kept entry of Ā: 'one' (authors' code) or 'keep' (literal Proposition 1)")
    epsilon: float = Field(0.0, ge=0, le=1, description="epsilon-greedy: chance an edge takes a random op")
    eta_cells: Literal["all", "normal"] = Field(
        "all", description="cell types the regulariser weighs: 'all' or 'normal' (the authors' code)")
    unselected: Literal["frozen", "decay"] = Field(
        "frozen", description="weights of ops Ā does not select: 'frozen' (untouched) or 'decay' (a zero gradient, "
        "so SGD's weight decay and momentum still move them, as in the authors' code)")


class ProximalSearch(SearchAlgorithm):
    """Shared by NASP and the PA baselines: a discrete Ā trains the weights, sparsely."""

    Options = ProximalOptions
    cfg: ProximalOptions

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        channels = self.net.channels  # the search network's C (SearchableNetwork)
        cells = None if self.cfg.eta_cells == "all" else ["normal"]
        self.regularizer = ModelSizeRegularizer(self.space, channels, self.device, cells)
        self._selected: tuple[tuple[tuple[int, int], ...], tuple[dict[str, torch.Tensor], dict[str, torch.Tensor],
                                                     dict[str, Selection]]] | None = None

    def init_arch(self, shape: tuple[int, int]) -> torch.Tensor:
        """``init`` everywhere; in a dense space (nb201) plus a seeded jitter below 1e-3: equal entries would all pick
        the first op, 'none', and a network of zeros gives A no gradient to leave it."""
        a = super().init_arch(shape)
        if self.space.kind == "dense":
            a = a + 1e-3 * torch.rand(shape, generator=self.generator)
        return a

    @property
    def selected_value(self) -> str:
        return self.cfg.selected_value

    def discretized(self, epsilon: float = 0.0) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """(Ā, mask) per cell type, computed on A's device: no host sync (A is tiny, but a CPU copy of it
        waited for the GPU every step)."""
        values, masks = {}, {}
        for ct, a in self.A.items():
            values[ct], masks[ct] = discretize(a, self.space.cells[ct], self.selected_value, epsilon, self.generator)
        return values, masks

    def selected(self, epsilon: float = 0.0) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor],
                                                      dict[str, Selection]]:
        """(Ā, mask, selection): the selection is read to the host once per change of A (``_version`` counts
        in-place updates), so the architecture step reuses the weight step's; epsilon > 0 draws afresh."""
        versions = tuple((id(a), a._version) for a in self.A.values())
        if epsilon == 0 and self._selected is not None and self._selected[0] == versions:
            return self._selected[1]
        values, masks = self.discretized(epsilon)
        out = values, masks, selections_of(masks, self.space.cells)
        if epsilon == 0:
            self._selected = versions, out
        return out

    def discrete(self) -> dict[str, torch.Tensor]:
        return self.selected()[0]

    def genotype(self) -> Genotype:
        return self.genotype_from_mask(self.selected()[1])

    def forward_args(self, epsilon: float = 0.0) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor] | None,
                                                          dict[str, Selection]]:
        """(Ā, sparse forward arguments): with kept entries at 1 the ops need no scaling at all."""
        values, _, selection = self.selected(epsilon)
        return values, (None if self.selected_value == "one" else values), selection

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            return self.net(x, *self.forward_args()[1:])

    def arch_gradient(self, val: Batch, train: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """∇_Ā F(w, Ā) = ∇_Ā L_val + eta ∇R(Ā), first order."""
        values, *args = self.forward_args(self.cfg.epsilon)
        with self.autocast():
            loss, grads = fast_arch_grad(self.net, *val, *args)
        return self.regularized(loss, grads, values)

    def regularized(self, loss: torch.Tensor, grads: dict[str, torch.Tensor], values: dict[str, torch.Tensor]
                    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """F = L_val + eta R(Ā) and its gradient, eq. (8)-(9); F stays on the device."""
        if self.cfg.eta <= 0:
            return loss, grads
        reg = self.regularizer.grad(values)
        return (loss.double() + self.cfg.eta * self.regularizer.value(values).double(),  # float64, as the Python sum was
                {ct: g + self.cfg.eta * reg[ct] for ct, g in grads.items()})

    def weight_step(self, train: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        values, weights, selection = self.forward_args(self.cfg.epsilon)
        key = selection_key(selection)
        if weights is None:
            return self.graph_step(key, lambda x, y: self._weight_step(x, y, None, selection), *train)
        names = sorted(values)  # 'keep': Ā's values are inputs of the graph, copied in like the batch
        return self.graph_step(key, lambda x, y, *v: self._weight_step(x, y, dict(zip(names, v, strict=True)),
                                                                       selection), *train, *(values[n] for n in names))

    def _weight_step(self, x: torch.Tensor, y: torch.Tensor, weights: dict[str, torch.Tensor] | None,
                     selection: dict[str, Selection]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        with self.autocast():
            logits = self.net(x, weights, selection)
        loss = self.loss(logits, y)
        self.sgd_step(loss, fill_unused=self.cfg.unselected == "decay")
        assert self.grad_norm is not None
        return (*step_numbers(loss, logits, y), self.grad_norm)


@register_algorithm("nasp")
class NASP(ProximalSearch):
    """NASP (Algorithm 2): A kept in [0,1], Ā = prox_C1(A), gradient at Ā, no second order."""

    def arch_step(self, val: Batch, train: Batch) -> torch.Tensor:
        f, grads = self.arch_gradient(val, train)   # steps 3-4: gradient at Ā_t
        self.arch_update(grads)
        with torch.no_grad():                       # prox_C2: clip to [0, 1]
            for a in self.A.values():
                a.copy_(prox_box(a))
        return f                                    # step 5 (Ā_{t+1}) happens in the weight step
