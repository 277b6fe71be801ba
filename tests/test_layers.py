"""nasp's imports, read with ``ast`` (nothing is imported): no module imports itself back through others, and every
import between parts goes down the layer order docs/architecture.md writes out.

What counts: every ``import``/``from ... import`` of nasp's and the app's modules, at module level and inside
functions alike (a function-level import is still a dependency, only a later one). Imports under
``if TYPE_CHECKING:`` never run: they are left out of the cycle check, but they too must go down the layers.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"


def _module_name(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[0] == "tui":
        parts[0] = "nasp_tui"  # the app installs as nasp_tui
    package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if package else parts), package


def _modules() -> dict[str, tuple[Path, bool]]:
    files = [*ROOT.glob("nasp/**/*.py"), *ROOT.glob("tui/**/*.py")]
    return {name: (path, package) for path in files for name, package in [_module_name(path)]}


def _is_type_checking(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def imports(modules: dict[str, tuple[Path, bool]]) -> dict[str, dict[str, bool]]:
    """module -> {imported module: whether some import of it runs (False: only under TYPE_CHECKING)}."""

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    out: dict[str, dict[str, bool]] = {}
    for name, (path, package) in modules.items():
        found: dict[str, bool] = {}

        def add(target: str | None, runs: bool, name: str = name, found: dict[str, bool] = found) -> None:
            if target is not None and target != name:
                found[target] = found.get(target, False) or runs

        def visit(node: ast.AST, runs: bool, name: str = name, package: bool = package) -> None:
            if isinstance(node, ast.If) and _is_type_checking(node):
                for child in node.body:
                    visit(child, False)
                for child in node.orelse:
                    visit(child, runs)
                return
            if isinstance(node, ast.Import):
                for alias in node.names:
                    add(known(alias.name.replace("tui.", "nasp_tui.", 1)), runs)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    here = name.split(".") if package else name.split(".")[:-1]
                    here = here[: len(here) - (node.level - 1)]
                    base = ".".join([*here, *([base] if base else [])])
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    add(known(full) if full in modules else known(base), runs)
            for child in ast.iter_child_nodes(node):
                visit(child, runs)

        visit(ast.parse(path.read_text()), True)
        out[name] = found
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def layers() -> list[list[str]]:
    """The layer table of docs/architecture.md (``| n | `unit` `unit` ... |``), lowest first."""
    text = DOC.read_text()
    section = text[text.index("## Layers"):]
    rows = re.findall(r"^\| (\d+) \| ([^|]+) \|", section, re.M)
    assert rows, "docs/architecture.md has no layer table"
    assert [int(n) for n, _ in rows] == list(range(len(rows)))
    return [re.findall(r"`([\w.]+)`", units) for _, units in rows]


def unit_of(module: str, units: set[str]) -> str:
    """The most specific unit of the layer table that holds ``module``."""
    parts = module.split(".")
    stop = 1 if parts[0] == "nasp" and len(parts) > 1 else 0  # nasp's root package holds only itself
    for i in range(len(parts), stop, -1):
        if ".".join(parts[:i]) in units:
            return ".".join(parts[:i])
    raise AssertionError(f"{module} is in no layer of docs/architecture.md")


def test_no_import_cycles():
    graph = {m: {t for t, runs in targets.items() if runs} for m, targets in imports(_modules()).items()}
    assert cycles(graph) == []


def test_imports_go_down_the_layers():
    order = layers()
    level = {unit: n for n, units in enumerate(order) for unit in units}
    assert len(level) == sum(len(u) for u in order), "a unit is named in two layers"
    bad = []
    for module, targets in imports(_modules()).items():
        mine = unit_of(module, set(level))
        for target in targets:
            theirs = unit_of(target, set(level))
            if theirs != mine and level[theirs] >= level[mine]:
                bad.append(f"{module} (layer {level[mine]}) imports {target} (layer {level[theirs]})")
    assert bad == []


def test_the_checker_sees_cycles_and_function_level_imports(tmp_path):
    """The checker itself: a cycle through a function-level import is found; a TYPE_CHECKING one is not a cycle."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    src = ast.parse("def f():\n    from nasp.config import x\nif TYPE_CHECKING:\n    import nasp.search_run\n")
    kinds = []
    for node in ast.walk(src):
        if isinstance(node, ast.If):
            kinds.append(_is_type_checking(node))
    assert kinds == [True]
    found = imports({"nasp.errors": (ROOT / "nasp" / "errors.py", False),
                     "nasp.config": (ROOT / "nasp" / "config.py", False)})
    assert found["nasp.config"] == {"nasp.errors": True}  # nasp.registry, nasp.plugins: not in this small table
