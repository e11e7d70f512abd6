"""The import graph of `backplay_exp`: who imports whom, the layering it checks, and its cycles.

    python scripts/import_graph.py              # graph, upward imports, cycles; exit 1 on either
    python scripts/import_graph.py --dot g.dot  # also a Graphviz drawing, a cluster per subpackage

Every module's imports of project modules are read from its source (`ast`, nothing is imported):
at module level, inside functions (deferred: they still make the dependency, and a circle closed
by one is still a circle), and under `if TYPE_CHECKING:` (annotations only: listed apart, never
an error). Modules are grouped by subpackage (`tasks`, `report`, ...; a top-level module is its
own group) and the groups by `LAYERS`, lowest first: a module may import its own layer and the
layers below. An import that points to a higher layer is an upward import; a set of modules that
reach each other, or of subpackages that do, is a cycle.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "backplay_exp"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE
# lowest first: pure building blocks, models, the algorithms and data around them, the
# LightningModules, then the composition roots (tasks), lm-eval's adapter and the report, then
# the launchers that submit tasks to a cluster
LAYERS = [
    ("utils", "transformer", "metrics"),
    ("backbones",),
    ("heads",),
    ("diffusion", "samplers", "artifacts", "benchmarks", "data"),
    ("modules",),
    ("tasks", "harness", "report"),
    ("cluster",),
    ("__main__", "__init__"),
]


@dataclass(frozen=True)
class Edge:
    """One import of a project module by another."""

    source: str
    target: str
    kind: str  # "module" (at import time), "deferred" (inside a function), "typing"
    line: int


def module_name(path: Path, root: Path = ROOT) -> str:
    """`backplay_exp/tasks/eval.py` -> `tasks.eval`; a package's `__init__` is its own name."""
    parts = path.relative_to(root).with_suffix("").parts
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def group(module: str) -> str:
    """The subpackage a module belongs to (a top-level module is its own group)."""
    return module.split(".")[0]


def layer(module: str) -> int | None:
    """The index of the module's layer in `LAYERS` (None: in no layer)."""
    return next((i for i, names in enumerate(LAYERS) if group(module) in names), None)


def resolve(name: str, modules: set[str]) -> str | None:
    """The project module an imported dotted name refers to (its longest module prefix)."""
    if not name.startswith(PACKAGE + "."):
        return None
    parts = name[len(PACKAGE) + 1 :].split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


class Imports(ast.NodeVisitor):
    """The project imports of one module, each with where it sits (module / function / typing)."""

    def __init__(self, module: str, is_package: bool, modules: set[str]) -> None:
        self.module, self.is_package, self.modules = module, is_package, modules
        self.edges: list[Edge] = []
        self._depth, self._typing = 0, 0

    def _kind(self) -> str:
        return "typing" if self._typing else "deferred" if self._depth else "module"

    def _add(self, name: str, line: int) -> None:
        target = resolve(name, self.modules)
        edge = Edge(self.module, target or "", self._kind(), line)
        if target is not None and target != self.module and edge not in self.edges:
            self.edges.append(edge)  # once per statement: `from x import a, b` is one import

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        """Imports inside a function are deferred."""
        self._depth += 1
        self.generic_visit(node)
        self._depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef  # noqa: N815 - ast's name

    def visit_If(self, node: ast.If) -> None:
        """Imports under `if TYPE_CHECKING:` are for annotations only."""
        test = ast.unparse(node.test)
        typing = test in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
        self._typing += typing
        for child in node.body:
            self.visit(child)
        self._typing -= typing
        for child in node.orelse:
            self.visit(child)

    def visit_Import(self, node: ast.Import) -> None:
        """`import backplay_exp.x.y`."""
        for alias in node.names:
            self._add(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        """`from backplay_exp.x import y` (y a module or a name) and relative imports."""
        base = node.module or ""
        if node.level:  # relative: from the module's package, `level` packages up
            package = self.module.split(".")[: None if self.is_package else -1]
            package = package[: len(package) - node.level + 1]
            base = ".".join([PACKAGE, *package, *([base] if base else [])])
        for alias in node.names:  # `from pkg import submodule` imports the submodule
            self._add(f"{base}.{alias.name}", node.lineno)


def read_modules(root: Path = ROOT) -> set[str]:
    """Every module under `root`."""
    return {module_name(p, root) for p in root.rglob("*.py")}


def read_graph(root: Path = ROOT) -> list[Edge]:
    """Every project import of every module under `root`."""
    files = sorted(root.rglob("*.py"))
    modules = read_modules(root)
    edges = []
    for path in files:
        visitor = Imports(module_name(path, root), path.name == "__init__.py", modules)
        visitor.visit(ast.parse(path.read_text(), str(path)))
        edges += visitor.edges
    return edges


def cycles(pairs: Iterable[tuple[str, str]]) -> list[list[str]]:
    """The strongly connected sets of more than one node (Tarjan), each sorted, in order."""
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in pairs:
        graph[a].add(b)
        graph.setdefault(b, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            members = []
            while True:
                member = stack.pop()
                members.append(member)
                if member == node:
                    break
            if len(members) > 1:
                found.append(sorted(members))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def upward(edges: Iterable[Edge]) -> list[Edge]:
    """The imports that point from a lower layer to a higher one (or to or from no layer)."""
    out = []
    for e in edges:
        low, high = layer(e.source), layer(e.target)
        if low is None or high is None or high > low:
            out.append(e)
    return out


def describe(edge: Edge) -> str:
    """`tasks.eval:12 -> report.table (deferred)`, with the two layers."""
    where = f"layer {layer(edge.source)} -> {layer(edge.target)}"
    return f"{edge.source}:{edge.line} -> {edge.target} ({edge.kind}; {where})"


def report(edges: list[Edge], modules: Iterable[str] = ()) -> tuple[str, bool]:
    """The text report, and whether the graph is clean (no upward import, no cycle).

    `modules` that import no project module are listed too (`-> nothing`).
    """
    runtime = [e for e in edges if e.kind != "typing"]
    typing = [e for e in edges if e.kind == "typing"]
    lines = ["Layers (lowest first; a module may import its own layer and those below):"]
    lines += [f"  {i}  {', '.join(names)}" for i, names in enumerate(LAYERS)]
    lines += ["", "Imports (module -> the project modules it imports; * deferred, ~ typing only):"]
    by_group: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for module in modules:
        by_group[group(module)].setdefault(module, [])  # listed even without imports
    for e in sorted(edges, key=lambda e: (e.source, e.target)):
        mark = {"module": "", "deferred": "*", "typing": "~"}[e.kind]
        targets = by_group[group(e.source)][e.source]
        if e.target + mark not in targets:
            targets.append(e.target + mark)
    for name in sorted(by_group, key=lambda g: (layer(g) if layer(g) is not None else 99, g)):
        lines.append(f"  [{name}] (layer {layer(name)})")
        lines += [
            f"    {m} -> {', '.join(t) or 'nothing'}" for m, t in sorted(by_group[name].items())
        ]
    up = upward(runtime)
    module_cycles = cycles((e.source, e.target) for e in runtime)
    group_cycles = cycles(
        (group(e.source), group(e.target)) for e in runtime if group(e.source) != group(e.target)
    )
    lines += ["", f"Upward imports: {len(up)}", *(f"  {describe(e)}" for e in up)]
    lines += [f"Module cycles: {len(module_cycles)}"]
    lines += [f"  {' <-> '.join(c)}" for c in module_cycles]
    lines += [f"Subpackage cycles: {len(group_cycles)}"]
    lines += [f"  {' <-> '.join(c)}" for c in group_cycles]
    typing_up = upward(typing)
    every = cycles((e.source, e.target) for e in edges)
    typing_cycles = [c for c in every if c not in module_cycles]
    lines += ["", "TYPE_CHECKING-only (annotations; not errors):"]
    lines += [f"  upward: {describe(e)}" for e in typing_up]
    lines += [f"  closes a cycle: {' <-> '.join(c)}" for c in typing_cycles]
    if not typing_up and not typing_cycles:
        lines.append("  none upward, none closing a cycle")
    return "\n".join(lines) + "\n", not (up or module_cycles or group_cycles)


def dot(edges: list[Edge]) -> str:
    """A Graphviz drawing: a cluster per subpackage, dashed deferred imports, dotted typing."""
    nodes = sorted({e.source for e in edges} | {e.target for e in edges})
    out = ["digraph backplay_exp {", "  rankdir=BT; node [shape=box, fontsize=10];"]
    for name in sorted({group(n) for n in nodes}):
        out.append(f'  subgraph "cluster_{name}" {{ label="{name} (layer {layer(name)})";')
        out += [f'    "{n}";' for n in nodes if group(n) == name]
        out.append("  }")
    style = {"module": "solid", "deferred": "dashed", "typing": "dotted"}
    seen = set()
    for e in edges:
        if (e.source, e.target, e.kind) not in seen:
            seen.add((e.source, e.target, e.kind))
            out.append(f'  "{e.source}" -> "{e.target}" [style={style[e.kind]}];')
    return "\n".join([*out, "}"]) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Print the report; exit 1 on an upward import or a cycle."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dot", type=Path, help="also write a Graphviz file here")
    args = parser.parse_args(argv)
    edges = read_graph()
    text, clean = report(edges, read_modules())
    sys.stdout.write(text)
    if args.dot:
        args.dot.write_text(dot(edges))
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
