"""The paper's proximal baselines: PA-standard (eq. 10) and PA-lazy (eq. 11)."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from nasp.algorithms.base import Batch
from nasp.algorithms.gradients import unrolled_arch_grad
from nasp.algorithms.nasp import ProximalOptions, ProximalSearch
from nasp.algorithms.prox import discretize
from nasp.algorithms.registry import register_algorithm


class PAOptions(ProximalOptions):
    """Options of PA-standard and PA-lazy: NASP's, 'keep' by default, and an optional second order."""

    selected_value: Literal["one", "keep"] = Field(
        "keep", description="value of the kept entry of Ā: 'keep' (literal Proposition 1) or 'one' (authors' code)")
    second_order: bool = Field(False, description="DARTS's second-order approximation of the architecture gradient")


class ProximalBaseline(ProximalSearch):
    Options = PAOptions
    cfg: PAOptions

    def arch_gradient(self, val: Batch, train: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if not self.cfg.second_order:
            return super().arch_gradient(val, train)
        values, _ = self.discretized(self.cfg.epsilon)
        with self.autocast():
            loss, grads = unrolled_arch_grad(self.net, values, lambda a: a, train, val, self.weight_lr, self.w_opt)
        return self.regularized(loss, grads, values)


@register_algorithm("pa-standard")
class PAStandard(ProximalBaseline):
    """PA, eq. (10): A_{t+1} = prox_C(A_t - eps ∇F(A_t)); A itself stays discrete."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self._project()

    def _project(self) -> None:
        with torch.no_grad():
            for ct, a in self.A.items():
                a.copy_(discretize(a, self.space.cells[ct], "keep")[0])

    def arch_step(self, val: Batch, train: Batch) -> torch.Tensor:
        f, grads = self.arch_gradient(val, train)
        self.arch_update(grads)
        self._project()
        return f


@register_algorithm("pa-lazy")
class PALazy(ProximalBaseline):
    """PA with a lazy proximal step, eq. (11): Ā = prox_C(A); A moves freely (no clip)."""

    def arch_step(self, val: Batch, train: Batch) -> torch.Tensor:
        f, grads = self.arch_gradient(val, train)
        self.arch_update(grads)
        return f
