"""The macro layout every CNN here shares (DARTS's): cells after a stem, reductions at 1/3 and 2/3 of
the depth doubling the width, each cell reading the outputs of the two cells before it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CellSlot:
    index: int
    cell_type: str  # "normal" or "reduce"
    reduction: bool
    reduction_prev: bool  # the cell two back has twice the resolution: preprocess it with a factorized reduce
    C_pp: int  # channels of the input from two cells back
    C_p: int  # channels of the input from the previous cell
    C: int  # channels of each node of this cell


def is_reduction(index: int, layers: int) -> bool:
    return layers >= 3 and index in (layers // 3, 2 * layers // 3)


def cell_slots(channels: int, layers: int, C_stem: int, nodes: dict[str, int],
               reduction_prev: bool = False) -> tuple[list[CellSlot], int]:
    """The cells of a network of ``layers`` cells and base width ``channels`` after a stem of
    ``C_stem`` channels; ``nodes`` gives each cell type's node count (its output is their concat).
    Returns the slots and the channels of the last cell's output."""
    slots = []
    C_pp = C_p = C_stem
    C = channels
    for i in range(layers):
        reduction = is_reduction(i, layers)
        if reduction:
            C *= 2
        cell_type = "reduce" if reduction else "normal"
        slots.append(CellSlot(i, cell_type, reduction, reduction_prev, C_pp, C_p, C))
        reduction_prev = reduction
        C_pp, C_p = C_p, nodes[cell_type] * C
    return slots, C_p
