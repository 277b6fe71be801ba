"""DARTS's evaluation networks (NetworkCIFAR, NetworkImageNet) built from a genotype's ChildCells,
with drop-path on every non-identity op and an auxiliary head at 2/3 depth.

The cells are ``nasp.model.child.ChildCell`` (the ops come from ``create_op``), placed by the layout the
search and child networks share (``nasp.model.layout.cell_slots``); this module only wraps their ops in
DropPath and adds the stems and the auxiliary head. Without the auxiliary head the CIFAR network has
exactly the parameters of ``ChildNetwork`` (``Genotype.param_count``), which is how DARTS counts them.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from nasp.genotype import Genotype
from nasp.model.child import ChildCell
from nasp.model.dense import DenseChildNetwork
from nasp.model.layout import cell_slots
from nasp.ops.layers import Identity

Stem = Literal["cifar", "imagenet"]


class DropControl:
    """What every DropPath of a network reads: the drop probability and the generator of its masks."""

    def __init__(self) -> None:
        self.prob = 0.0
        self.generator: torch.Generator | None = None


class DropPathSetting:
    """The drop-path knob of an evaluation network whose ops share one DropControl (``self.drop``)."""

    drop: DropControl

    @property
    def drop_path(self) -> float:
        return self.drop.prob

    def set_drop_path(self, prob: float, generator: torch.Generator | None = None) -> None:
        """Drop probability of every non-identity op, and the generator its masks come from."""
        self.drop.prob = float(prob)
        self.drop.generator = generator


class DropPath(nn.Module):
    """Zeroes an op's output for a random subset of the batch (scaled by 1/keep), in training only."""

    def __init__(self, op: nn.Module, control: DropControl) -> None:
        super().__init__()
        self.op = op
        self.control = control

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.op(x)
        prob = self.control.prob
        if not self.training or prob <= 0.0:
            return y
        keep = 1.0 - prob
        mask = torch.empty((y.shape[0], 1, 1, 1), device=y.device, dtype=torch.float32)
        mask.bernoulli_(keep, generator=self.control.generator)
        return y * (mask / keep).to(y.dtype)


class EvalCell(ChildCell):
    """A ChildCell whose non-identity ops drop their path (DARTS: identities are never dropped)."""

    def __init__(self, *args: object, control: DropControl, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        for ops in self.ops:
            for k, op in enumerate(ops):
                if not isinstance(op, Identity | nn.Identity):
                    ops[k] = DropPath(op, control)


class AuxiliaryHead(nn.Module):
    """DARTS's auxiliary classifier. At the sizes DARTS uses (8x8 CIFAR, 7x7 ImageNet) it pools exactly as
    DARTS does (5x5 average, stride 3 or 2, to 2x2); at other sizes it pools adaptively to 2x2."""

    def __init__(self, C: int, num_classes: int, stride: int, final_bn: bool = True) -> None:
        super().__init__()
        self.stride = stride
        self.features = nn.Sequential(
            nn.Conv2d(C, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False), *([nn.BatchNorm2d(768)] if final_bn else []), nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        h, w = x.shape[-2:]
        if min(h, w) >= 5 and ((h - 5) // self.stride + 1, (w - 5) // self.stride + 1) == (2, 2):
            x = F.avg_pool2d(x, 5, self.stride, count_include_pad=False)
        else:
            x = F.adaptive_avg_pool2d(x, 2)
        return self.classifier(self.features(x).flatten(1))


def _imagenet_stem(in_channels: int, C: int) -> tuple[nn.Module, nn.Module]:
    stem0 = nn.Sequential(
        nn.Conv2d(in_channels, C // 2, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(C // 2), nn.ReLU(inplace=True),
        nn.Conv2d(C // 2, C, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(C),
    )
    stem1 = nn.Sequential(nn.ReLU(inplace=True), nn.Conv2d(C, C, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(C))
    return stem0, stem1


class EvalNetwork(DropPathSetting, nn.Module):
    """The network a genotype is evaluated with. ``stem="cifar"``: DARTS's NetworkCIFAR (3x3 stem to
    stem_multiplier*C); ``stem="imagenet"``: NetworkImageNet (three stride-2 convs, 224 -> 28).
    Reductions at layers//3 and 2*layers//3; the auxiliary head reads the second reduction's output.
    In training ``forward`` returns (logits, aux_logits or None); in eval mode the logits only."""

    def __init__(self, genotype: Genotype, channels: int = 36, layers: int = 20, num_classes: int = 10,
                 in_channels: int = 3, stem: Stem = "cifar", auxiliary: bool = True, stem_multiplier: int = 3) -> None:
        super().__init__()
        space = genotype.resolve_space()
        assert space is not None
        self.drop = DropControl()
        self.stem_kind = stem
        self.layers = layers
        if stem == "cifar":
            C_stem = stem_multiplier * channels
            self.stem = nn.Sequential(nn.Conv2d(in_channels, C_stem, 3, padding=1, bias=False), nn.BatchNorm2d(C_stem))
        else:
            self.stem0, self.stem1 = _imagenet_stem(in_channels, channels)
            C_stem = channels
        nodes = {ct: len(cell) for ct, cell in genotype.cells.items()}
        slots, C_p = cell_slots(channels, layers, C_stem, nodes, reduction_prev=stem == "imagenet")
        self.cells = nn.ModuleList(
            EvalCell(genotype.cells[s.cell_type], space.cells[s.cell_type].n_inputs, s.C_pp, s.C_p, s.C, s.reduction,
                     s.reduction_prev, control=self.drop)
            for s in slots
        )
        self.aux_index = 2 * layers // 3
        aux_slot = slots[min(self.aux_index, layers - 1)]
        C_aux = nodes[aux_slot.cell_type] * aux_slot.C
        self.auxiliary = AuxiliaryHead(C_aux, num_classes, 3 if stem == "cifar" else 2, stem == "cifar") if auxiliary else None
        self.classifier = nn.Linear(C_p, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]:
        if self.stem_kind == "cifar":
            s0 = s1 = self.stem(x)
        else:
            s0 = self.stem0(x)
            s1 = self.stem1(s0)
        aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1)
            if i == self.aux_index and self.auxiliary is not None and self.training:
                aux = self.auxiliary(s1)
        logits = self.classifier(F.adaptive_avg_pool2d(s1, 1).flatten(1))
        return (logits, aux) if self.training else logits



class DenseEvalNetwork(DropPathSetting, DenseChildNetwork):
    """NAS-Bench-201's network of a dense genotype (stem, three stages of ``cells`` cells, residual reductions), as
    the benchmark trains it: no auxiliary head; drop path on non-identity ops only when asked (the benchmark: none).
    In training ``forward`` returns (logits, None); in eval mode the logits only."""

    def __init__(self, genotype: Genotype, channels: int = 16, cells: int = 5, num_classes: int = 10,
                 in_channels: int = 3) -> None:
        super().__init__(genotype, channels, cells, num_classes, in_channels)
        self.drop = DropControl()
        self.auxiliary = None
        for block in self.blocks:
            for ops in getattr(block, "ops", []):
                for k, op in enumerate(ops):
                    if not isinstance(op, Identity | nn.Identity):
                        ops[k] = DropPath(op, self.drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]:  # type: ignore[override]
        logits = super().forward(x)
        return (logits, None) if self.training else logits
