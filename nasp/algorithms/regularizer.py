"""The model-size regulariser R(A) = sum_k p_k / p̄ ||A[:, k]||^2 of eq. (8), on every cell type."""

from __future__ import annotations

import torch

from nasp.ops import op_param_count
from nasp.spaces import SearchSpace


class ModelSizeRegularizer:
    """p_k is measured from the registered ops at the search network's width C (stride 2 in
    reduce cells), so user ops are weighed by their real size."""

    def __init__(self, space: SearchSpace, channels: int, device: torch.device | str = "cpu",
                 cells: list[str] | None = None) -> None:
        """``cells``: the cell types regularised (default all; the authors' code: the normal cell only)."""
        self.weights: dict[str, torch.Tensor] = {}
        for ct, cell in space.cells.items():
            if cells is not None and ct not in cells:
                continue
            stride = 2 if cell.reduction else 1
            p = torch.tensor([float(op_param_count(op, channels, stride)) for op in cell.ops], device=device)
            self.weights[ct] = p / p.sum() if p.sum() > 0 else p

    def value(self, A: dict[str, torch.Tensor]) -> torch.Tensor:
        return sum((self.weights[ct] * a.float().square()).sum()  # type: ignore[return-value]
                   for ct, a in A.items() if ct in self.weights)

    def grad(self, A: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """dR/dA, evaluated wherever the caller says (NASP: at Ā)."""
        return {ct: 2.0 * self.weights[ct] * a.detach().float() if ct in self.weights else torch.zeros_like(a.float())
                for ct, a in A.items()}
