"""How often NASP's returned cell (Ā's) differs from the cell the authors' code prints (DARTS's rule on softmax(A)).

Over random A (uniform in [0, 1], NASP's box), the same A is handed to nasp's NASP (its genotype: the edges and ops
Ā keeps) and to nasp's DARTS (its genotype: per node the edges whose best softmax weight is largest, each with that
op, the rule the authors' ``genotype()`` uses); the fraction of A whose two genotypes differ is printed, with how
often they differ only in ops (softmax keeps each row's order, so the best op of an edge is the same) and the rate of
each cell type alone.

    python benchmarks/genotype_rules.py --samples 5000
"""

from __future__ import annotations

import argparse

import torch

from nasp.algorithms import ALGORITHMS
from nasp.config import AlgorithmConfig, OptimConfig
from nasp.model import SearchNetwork
from nasp.spaces import get_space


def edge_ops(geno: object) -> set[tuple[str, int, int, str]]:
    return {(ct, j, e.input, e.op) for ct, nodes in geno.cells.items() for j, node in enumerate(nodes) for e in node}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--space", default="cnn12")
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    space = get_space(args.space)
    net = SearchNetwork(space, 2, 3, num_classes=2, in_channels=1)
    algos = {name: ALGORITHMS.get(name)(space, net, AlgorithmConfig(name=name), OptimConfig(), 1, torch.device("cpu"))
             for name in ("nasp", "darts-1st")}
    gen = torch.Generator().manual_seed(args.seed)
    differ = same_edges_other_ops = 0
    per_cell = dict.fromkeys(net.arch_shapes, 0)
    for _ in range(args.samples):
        with torch.no_grad():
            for ct, shape in net.arch_shapes.items():
                a = torch.rand(shape, generator=gen)
                for algo in algos.values():
                    algo.A[ct].copy_(a)
        nasp_geno, darts_geno = algos["nasp"].genotype(), algos["darts-1st"].genotype()
        for ct in per_cell:
            per_cell[ct] += nasp_geno.cells[ct] != darts_geno.cells[ct]
        if nasp_geno.cells != darts_geno.cells:
            differ += 1
            picked = {(ct, j, src) for ct, j, src, _ in edge_ops(nasp_geno)}
            if picked == {(ct, j, src) for ct, j, src, _ in edge_ops(darts_geno)}:
                same_edges_other_ops += 1
    print(f"{args.space}: Ā's cell and DARTS's softmax rule differ for {differ} of {args.samples} random A "
          f"({100 * differ / args.samples:.1f}%); of those, {same_edges_other_ops} on the same edges with other ops; "
          "by cell type: " + ", ".join(f"{ct} {100 * n / args.samples:.1f}%" for ct, n in per_cell.items()))


if __name__ == "__main__":
    main()
