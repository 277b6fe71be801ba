"""DARTS-style genotype strings, read and written: the form DARTS's ``genotypes.py`` prints and other NAS code
copies, so a cell found elsewhere evaluates here and a cell found here goes back there.

    Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=range(2, 6), reduce=[...], reduce_concat=range(2, 6))
    Genotype(recurrent=[('sigmoid', 0), ('relu', 1), ...], concat=range(1, 9))

Reading never executes the text: it is parsed with ``ast`` and only literal lists of ``(op, input)`` pairs and
``range(a, b)`` (or a literal list of ints) are accepted. Bounds, each one line when exceeded: at most
``MAX_DARTS_STRING`` characters (64 KiB), brackets nested at most ``MAX_DEPTH`` (8) deep, no operators (only
literals, ``Genotype``, ``range``), every int in [-``MAX_INT``, ``MAX_INT``] (1,000), so a range holds at most
2,000 values. The string does not name its search space: the registered space with these cell types and the
fewest ops that the genotype fits is chosen (DARTS_V2 reads as ``cnn7``, NASP's cell as ``cnn12``; the
recurrent form as the space whose one cell type is ``recurrent``).
"""

from __future__ import annotations

import ast
from typing import Any

from pydantic import ValidationError

from nasp.errors import GenotypeError
from nasp.genotype import Genotype
from nasp.spaces import SPACES, SearchSpace, get_space

MAX_DARTS_STRING = 64 << 10  # a genotype string is a few hundred characters
MAX_DEPTH = 8  # Genotype( [ ( ... ) ] ): 3 deep; a deeper nesting is no genotype (and could exhaust the parser)
MAX_INT = 1_000  # node inputs and concat indices are small; bigger ints would build huge ranges
ALLOWED = (ast.Expression, ast.Call, ast.Name, ast.Attribute, ast.keyword, ast.List, ast.Tuple, ast.Constant,
           ast.Load, ast.UnaryOp, ast.USub)
FORM = "Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=range(2, 6), reduce=[...], reduce_concat=range(2, 6))"


def is_darts_string(text: str) -> bool:
    """Whether ``text`` is meant as a DARTS genotype string (rather than a name, file or run folder)."""
    return text.lstrip().startswith("Genotype(")


def _concat(node: ast.expr, key: str) -> list[int]:
    """``range(a, b)`` / ``range(b)`` with int literals, or a literal list of ints."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range" and not node.keywords:
        try:
            args = [ast.literal_eval(a) for a in node.args]
        except ValueError:
            args = []
        if 1 <= len(args) <= 2 and all(type(a) is int for a in args):
            return list(range(*args))  # ints within MAX_INT: at most 2 * MAX_INT values
    else:
        try:
            value = ast.literal_eval(node)
        except ValueError:
            value = None
        if isinstance(value, list | tuple) and all(type(v) is int for v in value):
            return list(value)
    raise GenotypeError(f"DARTS genotype string: {key}= must be range(a, b) or a list of ints, not '{ast.unparse(node)}'")


def _pairs(node: ast.expr, key: str) -> list[tuple[str, int]]:
    try:
        value = ast.literal_eval(node)
    except ValueError:
        value = None
    if not isinstance(value, list | tuple) or not all(
            isinstance(p, list | tuple) and len(p) == 2 and isinstance(p[0], str) and type(p[1]) is int for p in value):
        raise GenotypeError(f"DARTS genotype string: {key}= must be a list of ('op', input) pairs, e.g. "
                            f"[('sep_conv_3x3', 0), ('skip_connect', 1)]")
    return [(str(op), int(i)) for op, i in value]


def _depth(text: str) -> int:
    """How deep brackets nest in ``text`` (outside string literals)."""
    depth = deepest = 0
    quote = ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth -= 1
    return deepest


def _check_literals(tree: ast.AST) -> None:
    """Only literals, names and calls (no operators), ints within MAX_INT: what a genotype string holds."""
    for node in ast.walk(tree):
        if not isinstance(node, ALLOWED) or (isinstance(node, ast.UnaryOp) and not isinstance(node.op, ast.USub)):
            raise GenotypeError(f"DARTS genotype string holds '{type(node).__name__}'; only literal lists of "
                                f"('op', input) pairs and range(a, b) are read; expected {FORM}")
        if isinstance(node, ast.Constant) and isinstance(node.value, int) and abs(node.value) > MAX_INT:
            raise GenotypeError(f"DARTS genotype string: the int {str(node.value)[:20]} is out of range (at most "
                                f"{MAX_INT}: inputs and concat indices are small)")


def parse_darts(text: str) -> Genotype:
    """The genotype a DARTS-style string describes (see the module docstring); GenotypeError, one line, when it
    is not one, exceeds a bound or fits no registered space. Never evaluates the text."""
    if len(text) > MAX_DARTS_STRING:
        raise GenotypeError(f"DARTS genotype string is {len(text)} characters; at most {MAX_DARTS_STRING}")
    if _depth(text) > MAX_DEPTH:
        raise GenotypeError(f"DARTS genotype string nests brackets {_depth(text)} deep; at most {MAX_DEPTH}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise GenotypeError(f"DARTS genotype string is not valid Python syntax ({exc.msg}); expected {FORM}") from None
    except (RecursionError, MemoryError, ValueError) as exc:  # a long chain of operators, a huge literal
        raise GenotypeError(f"DARTS genotype string is too complex to read ({type(exc).__name__}); "
                            f"expected {FORM}") from None
    try:
        _check_literals(tree)
    except RecursionError:
        raise GenotypeError(f"DARTS genotype string is too deeply nested; expected {FORM}") from None
    call = tree.body
    if not (isinstance(call, ast.Call) and ((isinstance(call.func, ast.Name) and call.func.id == "Genotype")
                                            or (isinstance(call.func, ast.Attribute) and call.func.attr == "Genotype"))):
        raise GenotypeError(f"DARTS genotype string must be one Genotype(...) call; expected {FORM}")
    if call.args or any(k.arg is None for k in call.keywords):
        raise GenotypeError(f"DARTS genotype string: give every field by name (normal=..., normal_concat=...); "
                            f"expected {FORM}")
    fields = {k.arg: k.value for k in call.keywords if k.arg is not None}
    cells = {key: _pairs(node, key) for key, node in fields.items() if key != "concat" and not key.endswith("_concat")}
    if not cells:
        raise GenotypeError(f"DARTS genotype string has no cells; expected {FORM}")
    concats: dict[str, list[int]] = {}
    for key, node in fields.items():
        if key == "concat" or key.endswith("_concat"):
            ct = key.removesuffix("_concat") if key != "concat" else (next(iter(cells)) if len(cells) == 1 else "")
            if ct not in cells:
                raise GenotypeError(f"DARTS genotype string: {key}= names no cell (cells: {', '.join(cells)})")
            concats[ct] = _concat(node, key)
    return _fit_space(cells, concats)


def _candidates(cell_types: set[str]) -> list[SearchSpace]:
    """Registered spaces with exactly these cell types, fewest distinct ops first (then by name)."""
    spaces = [get_space(name, registered_ops=False) for name in SPACES.names()]
    spaces = [s for s in spaces if set(s.cells) == cell_types]
    return sorted(spaces, key=lambda s: (len({op for c in s.cells.values() for op in c.ops}), s.name))


def _fit_space(cells: dict[str, list[tuple[str, int]]], concats: dict[str, list[int]]) -> Genotype:
    spaces = _candidates(set(cells))
    if not spaces:
        known = "; ".join(f"{n}: {', '.join(get_space(n, registered_ops=False).cells)}" for n in SPACES.names())
        raise GenotypeError(f"DARTS genotype string has cells {', '.join(cells)}; no registered space has exactly "
                            f"those cell types ({known})")
    problems = []
    for space in spaces:
        problem = _concat_problem(space, concats)
        if problem is None:
            try:
                return Genotype.from_pairs(space, **cells)
            except ValidationError as exc:
                problem = " ".join(str(exc.errors()[0]["msg"]).split()).removeprefix("Value error, ")
        problems.append(f"{space.name}: {problem}")
    raise GenotypeError(f"DARTS genotype string fits no registered space ({'; '.join(problems)})")


def _concat_problem(space: SearchSpace, concats: dict[str, list[int]]) -> str | None:
    for ct, concat in concats.items():
        cell = space.cells[ct]
        whole = list(range(cell.n_inputs, cell.n_inputs + cell.n_nodes))
        if concat != whole:
            return (f"{ct} concat {_range_text(concat)}: nasp's {ct} cells concatenate every node, "
                    f"range({whole[0]}, {whole[-1] + 1})")
    return None


def _range_text(values: list[int]) -> str:
    if values and values == list(range(values[0], values[-1] + 1)):
        return f"range({values[0]}, {values[-1] + 1})"
    return str(values)


def to_darts(genotype: Genotype) -> str:
    """The DARTS-style string of ``genotype`` (what DARTS's ``genotypes.py`` holds); inverse of ``parse_darts``."""
    space = genotype.resolve_space()
    assert space is not None
    parts: list[str] = []
    single = len(genotype.cells) == 1
    for ct, nodes in genotype.cells.items():
        cell = space.cells[ct]
        pairs: list[Any] = [(e.op, e.input) for node in nodes for e in node]
        parts.append(f"{ct}={pairs!r}")
        parts.append(f"{'concat' if single else ct + '_concat'}=range({cell.n_inputs}, {cell.n_inputs + len(nodes)})")
    return f"Genotype({', '.join(parts)})"
