"""No import cycles among siedob's modules: each module's imports, read with ``ast``, form a DAG.

Counted: ``import siedob.x``, ``from siedob.x import y`` (an edge to ``siedob.x.y`` when that is a
module), relative imports, imports inside functions (a deferred import hides a cycle, it does not
remove it) and the packages a target lives in (importing ``siedob.a.b`` runs ``siedob/a/__init__``).
Imports under ``if TYPE_CHECKING:`` never run and are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Optional, Set

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "siedob"


def module_files(package_dir: Path) -> Dict[str, Path]:
    """Dotted module name → file, for every ``.py`` file under ``package_dir``."""
    root = package_dir.parent
    out = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST):
    """Import nodes of a module, skipping ``if TYPE_CHECKING:`` bodies."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _ancestors(name: str) -> List[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph(package_dir: Path) -> Dict[str, Set[str]]:
    """Module → the package's modules it imports (directly, plus the packages those live in)."""
    files = module_files(package_dir)
    graph: Dict[str, Set[str]] = {}
    for name, path in files.items():
        is_pkg = path.name == "__init__.py"
        targets: Set[str] = set()
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    targets.add(alias.name)
                continue
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                targets.add(sub if sub in files else module)
        edges: Set[str] = set()
        own = set(_ancestors(name)) | {name}
        for target in targets:
            while target and target not in files:  # ``import siedob.a.b.C``-style or outside names
                target = target.rpartition(".")[0]
            if not target:
                continue
            edges.update(t for t in _ancestors(target) + [target] if t not in own)
        graph[name] = edges
    return graph


def find_cycle(graph: Dict[str, Set[str]]) -> Optional[List[str]]:
    """One cycle as ``[a, b, ..., a]``, or None when the graph is acyclic."""
    state: Dict[str, int] = {}  # 1 on the current path, 2 done
    path: List[str] = []

    def visit(node: str) -> Optional[List[str]]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def _write(root: Path, files: Dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return root / "pkg"


def test_finder_sees_relative_from_and_deferred_imports(tmp_path):
    pkg = _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/sub/__init__.py": "from .a import thing\n",
            "pkg/sub/a.py": "def f():\n    from ..b import g\n",
            "pkg/b.py": "from pkg.sub import c\n",
            "pkg/sub/c.py": "import pkg.sub.a as a\n",
            "pkg/d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import b\n",
        },
    )
    graph = import_graph(pkg)
    assert graph["pkg.sub.a"] == {"pkg.b"}
    assert graph["pkg.b"] == {"pkg.sub", "pkg.sub.c"}
    assert graph["pkg.sub.c"] == {"pkg.sub.a"}
    assert graph["pkg.d"] == set()
    cycle = find_cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1]
    assert {"pkg.sub.a", "pkg.b"} <= set(cycle)


def test_finder_accepts_a_dag(tmp_path):
    pkg = _write(tmp_path, {"pkg/__init__.py": "from . import a\n", "pkg/a.py": "from . import b\n", "pkg/b.py": ""})
    assert import_graph(pkg) == {"pkg": {"pkg.a"}, "pkg.a": {"pkg.b"}, "pkg.b": set()}
    assert find_cycle(import_graph(pkg)) is None


def test_siedob_has_no_import_cycle():
    graph = import_graph(PACKAGE_DIR)
    assert "siedob.data.synthetic" in graph and "siedob.data.io" in graph["siedob.data.synthetic"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_test_module_imports_another_or_conftest():
    """Shared test helpers live in tests/support/; test modules and conftest are never imported."""
    bad = []
    for path in sorted(PACKAGE_DIR.parent.joinpath("tests").rglob("*.py")):
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if isinstance(node, ast.ImportFrom) and node.level and not node.module:
                names = [a.name for a in node.names]
            for name in names:
                last = name.rpartition(".")[2]
                if last.startswith("test_") or last == "conftest":
                    bad.append(f"{path.name}: imports {name}")
    assert not bad, "\n".join(bad)
