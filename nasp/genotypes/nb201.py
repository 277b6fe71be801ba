"""NAS-Bench-201 architecture strings, read and written: the form the benchmark indexes its 15,625 cells by.

    |nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|

Node by node (``+`` between nodes), each edge ``op~input`` between bars; node j reads every earlier node 0..j
once. Parsing is bounded (length, nodes, names) and every problem is one GenotypeError line. The string does not
name its space: the registered dense space with that many nodes and the fewest ops that holds every op is chosen
(``nb201`` for the benchmark's strings).
"""

from __future__ import annotations

import re

from nasp.errors import GenotypeError
from nasp.genotype import Edge, Genotype
from nasp.registry import did_you_mean
from nasp.spaces import SPACES, SearchSpace, get_space
from nasp.spaces.space import MAX_NAME, MAX_NODES, identifier_problem

MAX_NB201_STRING = 4096  # the benchmark's strings are at most about 110 characters
FORM = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"
_EDGE = re.compile(r"([^~|]*)~([0-9]{1,3})\Z")


def is_nb201_string(text: str) -> bool:
    """Whether ``text`` is meant as a NAS-Bench-201 architecture string (rather than a name, file or run folder)."""
    return text.strip().startswith("|")


def _problem(what: str) -> GenotypeError:
    return GenotypeError(f"NAS-Bench-201 string: {what}; expected the form {FORM}")


def parse_nodes(text: str) -> list[list[tuple[str, int]]]:
    """The (op, input) pairs of each node of an architecture string, checked for form only."""
    if len(text) > MAX_NB201_STRING:
        raise GenotypeError(f"NAS-Bench-201 string is {len(text)} characters; at most {MAX_NB201_STRING}")
    text = text.strip()
    parts = text.split("+")
    if len(parts) > MAX_NODES:
        raise _problem(f"{len(parts)} nodes; at most {MAX_NODES}")
    nodes: list[list[tuple[str, int]]] = []
    for j, part in enumerate(parts):
        if len(part) < 2 or not (part.startswith("|") and part.endswith("|")):
            raise _problem(f"node {j + 1} {part[:40]!r} is not |op~input|...| (its edges between bars)")
        edges: list[tuple[str, int]] = []
        for item in part[1:-1].split("|"):
            m = _EDGE.match(item)
            if m is None:
                raise _problem(f"node {j + 1}: {item[:40]!r} is not op~input")
            op, src = m.group(1), int(m.group(2))
            problem = identifier_problem("op", op[:MAX_NAME + 1])
            if problem:
                raise _problem(f"node {j + 1}: {problem}")
            edges.append((op, src))
        inputs = sorted(src for _, src in edges)
        if inputs != list(range(j + 1)):
            raise _problem(f"node {j + 1} reads inputs {inputs}; node {j + 1} reads each of 0..{j} once")
        nodes.append(sorted(edges, key=lambda e: e[1]))
    return nodes


def _candidates(n_nodes: int) -> list[SearchSpace]:
    spaces = [get_space(name, registered_ops=False) for name in SPACES.names()]
    spaces = [s for s in spaces if s.kind == "dense" and s.cells["cell"].n_nodes == n_nodes]
    return sorted(spaces, key=lambda s: (s.cells["cell"].n_ops, s.name))


def parse_nb201(text: str) -> Genotype:
    """The genotype a NAS-Bench-201 string describes (see the module docstring); GenotypeError, one line, when it is
    not one or fits no registered dense space."""
    nodes = parse_nodes(text)
    spaces = _candidates(len(nodes))
    if not spaces:
        raise GenotypeError(f"NAS-Bench-201 string has {len(nodes)} nodes after the input; no registered dense space "
                            f"has that many (nb201 has 3)")
    ops = {op for node in nodes for op, _ in node}
    for space in spaces:
        if ops <= set(space.cells["cell"].ops):
            cells = {"cell": [[Edge(op=op, input=src) for op, src in node] for node in nodes]}
            return Genotype(space=space.name, cells=cells, space_def=None if space.name in SPACES else space)
    allowed = spaces[0].cells["cell"].ops
    bad = sorted(ops - set(allowed))[0]
    raise GenotypeError(f"NAS-Bench-201 string: unknown op '{bad}'.{did_you_mean(bad, list(allowed))} Allowed: "
                        f"{', '.join(allowed)}")


def to_nb201(genotype: Genotype) -> str:
    """The NAS-Bench-201 string of a dense genotype; inverse of ``parse_nb201``."""
    space = genotype.resolve_space()
    assert space is not None
    if space.kind != "dense":
        raise GenotypeError(f"genotype of space '{space.name}' is a {space.kind} cell; NAS-Bench-201 strings describe "
                            f"dense cells (space nb201); use --format darts")
    nodes = genotype.cells["cell"]
    return "+".join("|" + "|".join(f"{e.op}~{e.input}" for e in sorted(node, key=lambda e: e.input)) + "|"
                    for node in nodes)
