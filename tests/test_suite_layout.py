"""The suite's own layout: a test module never imports another test module or a conftest.

Shared builders live in ``tests/factories.py``, shared harnesses and helpers in
``tests/support/``, and fixtures in a conftest (or a harness registered there with
``pytest_plugins``). Importing a test module runs its module-level code again and
collects its fixtures under two names; importing a conftest does the same to pytest's
own plugin.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _test_modules() -> list[Path]:
    return sorted(p for p in TESTS.rglob("test_*.py") if "__snapshots__" not in p.parts)


def _package_of(path: Path) -> list[str]:
    """``tests/ui/test_home.py`` -> ``["tests", "ui"]``."""
    return ["tests", *path.relative_to(TESTS).parent.parts]


def _imported(path: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports, anywhere in it (inside functions too), by full name.

    ``from package import name`` counts ``package.name`` as well: it may be a module.
    """
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = _package_of(path)
                base = package[: len(package) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def _forbidden(module: str) -> bool:
    parts = module.split(".")
    return parts[0] == "tests" and any(p == "conftest" or p.startswith("test_") for p in parts)


def test_no_test_module_imports_another_test_module_or_a_conftest():
    # The check itself: what it must catch, and what it must let through.
    assert _forbidden("tests.test_rectorat") and _forbidden("tests.ui.conftest")
    assert not _forbidden("tests.factories") and not _forbidden("tests.support.pilot")
    assert _package_of(TESTS / "ui" / "test_home.py") == ["tests", "ui"]  # .conftest there

    modules = _test_modules()
    assert len(modules) > 20, modules  # the walk found the suite
    wrong = [
        f"{path.relative_to(TESTS.parent)}:{line}: imports {module}"
        for path in modules
        for line, module in _imported(path)
        if _forbidden(module)
    ]
    assert wrong == [], "\n".join(wrong)
