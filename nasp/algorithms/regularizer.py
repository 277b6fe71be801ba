"""The model-size regulariser R(A) = sum_k p_k / p̄ ||A[:, k]||^2 of eq. (8), on every cell type."""

from __future__ import annotations

import torch

from nasp.ops import op_param_count
from nasp.spaces import SearchSpace


class ModelSizeRegularizer:
    """p_k is measured from the registered ops at the search network's width C (stride 2 in
    reduce cells), so user ops are weighed by their real size."""

    def __init__(self, space: SearchSpace, channels: int, device: torch.device | str = "cpu") -> None:
        self.weights: dict[str, torch.Tensor] = {}
        for ct, cell in space.cells.items():
            stride = 2 if cell.reduction else 1
            p = torch.tensor([float(op_param_count(op, channels, stride)) for op in cell.ops], device=device)
            self.weights[ct] = p / p.sum() if p.sum() > 0 else p

    def value(self, A: dict[str, torch.Tensor]) -> torch.Tensor:
        return sum((self.weights[ct] * a.float().square()).sum() for ct, a in A.items())  # type: ignore[return-value]

    def grad(self, A: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """dR/dA, evaluated wherever the caller says (NASP: at Ā)."""
        return {ct: 2.0 * self.weights[ct] * a.detach().float() for ct, a in A.items()}
