"""The proximal steps against brute force (Proposition 1 and the two-inputs rule)."""

import itertools

import pytest
import torch

from nasp.algorithms.prox import discretize, prox_box, prox_c, prox_one_hot
from nasp.spaces import CellSpace

GRID = torch.linspace(0, 1, 2001, dtype=torch.float64)


def brute_prox_c(a: torch.Tensor) -> float:
    """min over b in C of 1/2||a - b||^2, searching every position and a fine grid of values."""
    best = float("inf")
    for i in range(a.numel()):
        rest = a.square().sum() - a[i] ** 2
        cost = 0.5 * (rest + (a[i] - GRID) ** 2)
        best = min(best, float(cost.min()))
    return best


def objective(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(0.5 * (a - b).square().sum())


@pytest.mark.parametrize("seed", range(40))
def test_prox_c_is_the_argmin_over_c(seed):
    gen = torch.Generator().manual_seed(seed)
    a = (torch.rand(7, generator=gen, dtype=torch.float64) * 3 - 1)  # entries in [-1, 2]
    b = prox_c(a[None])[0]
    assert (b != 0).sum() <= 1 and b.min() >= 0 and b.max() <= 1  # b is in C
    assert objective(a, b) <= brute_prox_c(a) + 1e-6
    assert objective(a, b) >= brute_prox_c(a) - 1e-3  # the grid is fine enough to be tight


@pytest.mark.parametrize("seed", range(20))
def test_proposition_1_on_the_box(seed):
    """prox_C = prox_C1(prox_C2(a)) whenever no two entries exceed 1 (then ties cannot differ)."""
    gen = torch.Generator().manual_seed(seed)
    a = torch.rand(5, 8, generator=gen, dtype=torch.float64) * 1.5 - 0.25
    a[:, 1:] = a[:, 1:].clamp(max=1.0)
    assert torch.equal(prox_c(a), prox_one_hot(prox_box(a)))


def test_proposition_1_ties_above_one_are_broken_by_the_exact_prox():
    a = torch.tensor([[1.5, 2.0, 0.1]], dtype=torch.float64)
    assert prox_c(a)[0].tolist() == [0.0, 1.0, 0.0]  # ||a - e_2|| < ||a - e_1||
    assert objective(a[0], prox_c(a)[0]) < objective(a[0], prox_one_hot(prox_box(a))[0])


def brute_cell_prox(a: torch.Tensor, cell: CellSpace) -> float:
    """min of 1/2||A - B||^2 over B with one op per edge and inputs_per_node edges per node."""
    total = 0.0
    for j in range(cell.n_nodes):
        rows = list(cell.node_edges(j))
        best = float("inf")
        for kept in itertools.combinations(rows, cell.inputs_per_node):
            cost = sum(0.5 * float(a[r].square().sum()) for r in rows if r not in kept)
            cost += sum(brute_prox_c(a[r]) for r in kept)
            best = min(best, cost)
        total += best
    return total


@pytest.mark.parametrize("seed", range(6))
def test_discretize_keep_is_the_exact_prox_of_the_cell_constraint(seed):
    cell = CellSpace(ops=("skip_connect", "conv_1x1", "conv_3x3", "max_pool_3x3"), n_nodes=3)
    gen = torch.Generator().manual_seed(seed)
    a = torch.rand(cell.n_edges, cell.n_ops, generator=gen, dtype=torch.float64) * 1.4 - 0.2
    b, mask = discretize(a, cell, "keep")
    for j in range(cell.n_nodes):
        rows = list(cell.node_edges(j))
        assert int(mask[rows].sum()) == cell.inputs_per_node
        assert all(int(mask[r].sum()) <= 1 for r in rows)
    assert objective(a, b) <= brute_cell_prox(a, cell) + 1e-6


def test_discretize_one_sets_kept_entries_to_one_on_the_same_support():
    cell = CellSpace(ops=("skip_connect", "conv_1x1", "conv_3x3"))
    a = torch.rand(cell.n_edges, cell.n_ops, generator=torch.Generator().manual_seed(3))
    one, mask_one = discretize(a, cell, "one")
    keep, mask_keep = discretize(a, cell, "keep")
    assert torch.equal(mask_one, mask_keep)
    assert torch.equal(one, mask_one.to(one.dtype))
    assert torch.equal(keep[mask_keep], a[mask_keep])


def test_ties_go_to_the_first_op_and_the_first_edges():
    """A starts at 0.5 everywhere (authors' code): every edge takes op 0, every node inputs 0 and 1."""
    cell = CellSpace(ops=("skip_connect", "conv_1x1", "conv_3x3"))
    _, mask = discretize(torch.full((cell.n_edges, cell.n_ops), 0.5), cell)
    kept = [cell.edges[e] for e, k in mask.nonzero().tolist()]
    assert all(k == 0 for _, k in mask.nonzero().tolist())
    assert [src for src, _ in kept] == [0, 1] * cell.n_nodes


def test_epsilon_greedy_changes_ops_reproducibly():
    cell = CellSpace(ops=("skip_connect", "conv_1x1", "conv_3x3", "sep_conv_3x3"))
    a = torch.full((cell.n_edges, cell.n_ops), 0.5)
    _, greedy = discretize(a, cell)
    _, m1 = discretize(a, cell, epsilon=1.0, generator=torch.Generator().manual_seed(0))
    _, m2 = discretize(a, cell, epsilon=1.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(m1, m2)
    assert not torch.equal(m1, greedy)
