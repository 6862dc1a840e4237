"""shop_common's public surface is what `__all__` says, and what its users import is in it.

Like encode/httpx's tests/test_exported_members.py. The public modules are every package,
the plain modules at the top (`shop_common.errors`, `.settings`, ...) and two entry points
that `shop_common.db` keeps out of its namespace so API and worker processes never load
Alembic or superuser code. Everything else (`shop_common.web.app`, `shop_common.db.pagination`,
...) is where a name is implemented, not where it is imported from.
"""

from __future__ import annotations

import ast
import importlib
import logging
import pkgutil
import types
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest

import shop_common
from tests.support import parse_python

REPO = Path(__file__).resolve().parents[3]
PACKAGES = sorted(
    m.name for m in pkgutil.walk_packages(shop_common.__path__, "shop_common.") if m.ispkg
)
PLAIN_MODULES = sorted(
    m.name
    for m in pkgutil.iter_modules(shop_common.__path__, "shop_common.")
    if not m.ispkg and not m.name.rpartition(".")[2].startswith("_")
)
ENTRY_POINTS = ["shop_common.db.migrations", "shop_common.db.provision"]
PUBLIC_MODULES = PACKAGES + PLAIN_MODULES + ENTRY_POINTS

# Code that may import only from public modules: the services, the dev tooling, shop-ops.
CONSUMERS = [*REPO.glob("services/*/src"), REPO / "libs/devtools/src", REPO / "libs/ops/src"]
# Tests may reach into implementation modules, but what they take from a public one is in
# its `__all__` all the same.
TESTS = [*REPO.glob("services/*/tests"), REPO / "tests", REPO / "libs", REPO / "conftest.py"]


def _defined_public_names(module: types.ModuleType) -> set[str]:
    """The public names a module's own source binds at top level (no imports, no loggers)."""
    assert module.__file__ is not None
    tree = parse_python(Path(module.__file__).read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {
        name
        for name in names
        if not name.startswith("_")
        and not isinstance(getattr(module, name), logging.Logger | TypeVar)
    }


def _namespace_public_names(package: types.ModuleType) -> set[str]:
    """Every public name in a package's namespace except its own submodules."""
    return {
        name
        for name, value in vars(package).items()
        if not name.startswith("_")
        and not (
            isinstance(value, types.ModuleType)
            and value.__name__.startswith(f"{package.__name__}.")
        )
    }


@pytest.mark.parametrize("name", PACKAGES)
def test_a_package_exports_exactly_its_namespace(name: str) -> None:
    package = importlib.import_module(name)
    assert len(package.__all__) == len(set(package.__all__)), "a name is listed twice"
    assert set(package.__all__) == _namespace_public_names(package)


@pytest.mark.parametrize("name", PLAIN_MODULES + ENTRY_POINTS)
def test_a_module_exports_exactly_what_it_defines(name: str) -> None:
    module = importlib.import_module(name)
    assert len(module.__all__) == len(set(module.__all__)), "a name is listed twice"
    assert set(module.__all__) == _defined_public_names(module)


def _shop_common_imports(root: Path) -> Iterator[tuple[str, int, str, list[str]]]:
    """(file, line, module, names) of every import from shop_common under `root`."""
    files = [root] if root.is_file() else sorted(root.rglob("*.py"))
    for path in files:
        if "shop_common" in path.parts:  # the library's own imports are its business
            continue
        relative = str(path.relative_to(REPO))
        for node in ast.walk(parse_python(path.read_text(), relative)):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [(node.module, [alias.name for alias in node.names])]
            elif isinstance(node, ast.Import):
                modules = [(alias.name, []) for alias in node.names]
            else:
                continue
            for module, names in modules:
                if module == "shop_common" or module.startswith("shop_common."):
                    yield relative, node.lineno, module, names


def test_services_and_dev_tooling_import_from_public_modules_only() -> None:
    offenders = [
        f"{path}:{line} imports from {module}; import from its package"
        for root in CONSUMERS
        for path, line, module, _ in _shop_common_imports(root)
        if module not in PUBLIC_MODULES
    ]
    assert not offenders, "\n".join(offenders)


def test_every_imported_name_is_exported() -> None:
    exports = {name: set(importlib.import_module(name).__all__) for name in PUBLIC_MODULES}
    missing = [
        f"{path}:{line} imports {name} from {module}, which is not in its __all__"
        for root in CONSUMERS + TESTS
        for path, line, module, names in _shop_common_imports(root)
        if module in exports
        for name in names
        if name not in exports[module]
    ]
    assert not missing, "\n".join(missing)
