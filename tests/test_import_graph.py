"""The import graph of promptmill, function-local imports included, has no new cycles.

Every ``import`` and ``from ... import`` anywhere in a module counts (inside functions and
``if TYPE_CHECKING:`` blocks too): a cycle hidden in a function still ties the modules
together, and it is how the config/prompt/retrieval/context cycle grew to ten modules.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import promptmill

PACKAGE_DIR = Path(promptmill.__file__).parent

# Cycles that are known and owned by other work; each entry is the most a cycle may span.
# A cycle found must fit inside one of these, so a new module joining one fails the test.
# Remove an entry once its cycle is gone (the test below says when one is).
ALLOWED_CYCLES: list[frozenset[str]] = [
    # type-only: the lease code names Store in its annotations (under TYPE_CHECKING)
    frozenset({"promptmill.store.db", "promptmill.store.locks"}),
]

# The core modules of seam 5: none of them may be part of any cycle at all.
CORE_PREFIXES = ("promptmill.config", "promptmill.prompt", "promptmill.retrieval",
                 "promptmill.constrain", "promptmill.context", "promptmill.hashing",
                 "promptmill.yamlfile")


def module_files(package_dir: Path = PACKAGE_DIR) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    root = package_dir.parent
    found = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imported_names(module: str, path: Path) -> Iterator[str]:
    """Every dotted name an import statement anywhere in the file loads or takes a name from."""
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(package, node.level, node.module)
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _absolute(package: str, level: int, name: str | None) -> str:
    if not level:
        return name or ""
    parts = package.split(".")
    parts = parts[:len(parts) - (level - 1)]
    return ".".join([*parts, name] if name else parts)


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the package modules it imports. ``from a import b`` is an import of the
    module ``a.b`` when there is one, else of ``a`` (as import-linter counts it)."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for target in imported_names(name, path):
            known = _known_module(target, modules)
            if known is not None and known != name:
                graph[name].add(known)
    return graph


def _known_module(target: str, modules: dict[str, Path]) -> str | None:
    """The longest package module ``target`` starts with: ``a.b.name`` -> ``a.b``."""
    while target and target not in modules:
        target = target.rpartition(".")[0]
    return target or None


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[frozenset[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(frozenset(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(module_files())


def _is_core(module: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in CORE_PREFIXES)


def test_no_cycle_outside_the_allow_list(graph):
    new = [sorted(c) for c in cycles(graph) if not any(c <= allowed for allowed in ALLOWED_CYCLES)]
    assert new == [], f"new import cycles: {new}"


def test_no_core_module_is_in_any_cycle(graph):
    tangled = [sorted(c) for c in cycles(graph) if any(_is_core(m) for m in c)]
    assert tangled == []


def test_every_allowed_cycle_still_exists(graph):
    """A stale entry would let a new cycle among those modules in unnoticed: remove it."""
    found = cycles(graph)
    stale = [sorted(a) for a in ALLOWED_CYCLES if not any(c <= a for c in found)]
    assert stale == [], f"these cycles are gone: remove them from ALLOWED_CYCLES: {stale}"


def test_models_import_no_tuning_and_the_transformers_backend_no_store(graph):
    """``tuned:`` is registered by tuning (an entry point), so models need neither."""
    reached = {target for module, targets in graph.items()
               if module.startswith("promptmill.models") for target in targets}
    assert sorted(t for t in reached if t.startswith("promptmill.tune")) == []
    assert sorted(t for t in graph["promptmill.models.transformers_model"]
                  if t.startswith(("promptmill.tune", "promptmill.store"))) == []


def test_hashing_and_yaml_loading_are_leaves(graph):
    assert graph["promptmill.hashing"] == set()
    assert graph["promptmill.yamlfile"] <= {"promptmill.errors", "promptmill.task"}
    assert graph["promptmill.context.config"] == set()  # the schema builds nothing


def test_the_tuned_backend_is_registered_by_tuning():
    from promptmill.models.registry import _factories

    assert _factories()["tuned"] == "promptmill.tune.backend:tuned_model"
    assert _factories()["hf"] == "promptmill.tune.backend:hf_model"


# --- the checker itself -------------------------------------------------------------------

def _package(tmp_path: Path, files: dict[str, str]) -> dict[str, Path]:
    for name, body in files.items():
        path = tmp_path / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    return module_files(tmp_path / "pkg")


def test_the_checker_sees_function_local_and_type_checking_imports(tmp_path):
    modules = _package(tmp_path, {
        "__init__.py": "",
        "a.py": "def f():\n    from . import b\n",
        "b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .sub.c import X\n",
        "sub/__init__.py": "",
        "sub/c.py": "import pkg.a\n",
        "d.py": "from .a import f\n",
    })
    graph = import_graph(modules)
    assert graph["pkg.a"] == {"pkg.b"} and graph["pkg.sub.c"] == {"pkg.a"}
    assert graph["pkg.d"] == {"pkg.a"}
    assert cycles(graph) == [frozenset({"pkg.a", "pkg.b", "pkg.sub.c"})]


def test_the_checker_finds_no_cycle_in_a_one_way_package(tmp_path):
    modules = _package(tmp_path, {"__init__.py": "", "a.py": "from . import b\n",
                                  "b.py": "import json\n"})
    assert cycles(import_graph(modules)) == []
