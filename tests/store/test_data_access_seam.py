"""The store is the only data-access layer: checked by reading the package's source."""

import ast
import re
from pathlib import Path

import promptmill

PACKAGE = Path(promptmill.__file__).parent
ENGINE = re.compile(r"\.engine\b")


def _sources(under: Path = PACKAGE):
    return sorted(under.rglob("*.py"))


def _imported_modules(source: str, package: tuple[str, ...]) -> set[str]:
    """Every module a file of ``package`` imports, at top level or inside functions, as
    absolute names (``from .x import y`` also yields ``package.x.y``: y may be a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else ()
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _store_imports(path: Path) -> list[str]:
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
    return sorted(m for m in _imported_modules(path.read_text(encoding="utf-8"), package)
                  if m == "promptmill.store" or m.startswith("promptmill.store."))


def test_only_the_store_touches_the_engine():
    store = PACKAGE / "store"
    offenders = [f"{path.relative_to(PACKAGE.parent)}:{n}" for path in _sources()
                 if store not in path.parents
                 for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if ENGINE.search(line)]
    assert offenders == []


def test_the_metrics_package_imports_nothing_from_the_store():
    offenders = {str(path.relative_to(PACKAGE.parent)): _store_imports(path)
                 for path in _sources(PACKAGE / "metrics")}
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_import_scan_sees_relative_and_function_local_imports():
    # the scan must be able to fail: imports inside functions, relative or absolute, count
    source = """
def build():
    from ..store.db import Store
    from .. import store
    import promptmill.store.schema
"""
    found = _imported_modules(source, ("promptmill", "metrics"))
    assert {"promptmill.store.db", "promptmill.store", "promptmill.store.schema"} <= found
    assert "promptmill.metrics.human.HumanRating" in _imported_modules(
        "from .human import HumanRating", ("promptmill", "metrics"))
