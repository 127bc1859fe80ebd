"""The domain never imports Textual, and the command starts."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from screens import routes

ROOT = Path(__file__).resolve().parents[1]

IMPORT_EVERYTHING = """
import importlib, pkgutil, sys
import kiosk
# kiosk.__main__ is the command itself: importing it runs the kiosk.
names = ["kiosk"] + [
    m.name for m in pkgutil.walk_packages(kiosk.__path__, "kiosk.") if m.name != "kiosk.__main__"
]
for name in names:
    importlib.import_module(name)
print(len(names))
print(sorted(m for m in sys.modules if m == "textual" or m.startswith("textual.")))
"""


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def test_no_kiosk_module_imports_textual():
    result = run("-c", IMPORT_EVERYTHING)
    assert result.returncode == 0, result.stderr
    count, textual = result.stdout.splitlines()
    assert int(count) >= 15  # every module under kiosk/ was found and imported
    assert textual == "[]"


def test_python_m_kiosk_is_the_command():
    result = run("-m", "kiosk", "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "kiosk 0.1.0"


def test_kiosk_py_prints_its_version():
    result = run("kiosk.py", "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "kiosk 0.1.0"


# -- the screens do not know each other ------------------------------------------------------
#
# The same reading of the imports as ../shared/tools/import_cycles.py: every import, at module
# level or in a function, except those under ``if TYPE_CHECKING:``.


def _modules() -> dict[str, Path]:
    found = {}
    for package in ("kiosk", "screens"):
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _owner(name: str) -> str | None:
    """The project's module that ``name`` (a module, or a name in one) belongs to."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(name: str, path: Path) -> set[str]:
    """The project's modules that module ``name`` imports when it runs."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for statement in block.body
        for node in ast.walk(statement)
    }
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, *([base] if base else [])])
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        else:
            continue
        found |= {owner for owner in map(_owner, targets) if owner and owner != name}
    return found


IMPORTS = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in graph[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while True:
                other = stack.pop()
                component.append(other)
                if other == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return cycles


def _routed() -> set[str]:
    targets = (*routes.KIOSK.values(), *routes.CONSOLE.values())
    return {target.partition(":")[0] for target in targets}


def test_the_import_reading_finds_the_imports():
    # A guard on the reading itself: module level, in a function, and relative imports.
    assert {"screens.base", "screens.base_app", "screens.routes"} <= IMPORTS["screens.app"]
    assert "screens.fields" in IMPORTS["screens.base"]  # imported in a function
    assert "kiosk.runtime.services" in IMPORTS["screens.app"]


def test_the_screens_are_in_no_import_cycle():
    assert [c for c in _cycles(IMPORTS) if any(m.startswith("screens") for m in c)] == []


def test_no_module_imports_a_screen_it_can_open_by_name():
    # Screens import the shared building blocks (base classes, widgets, fields, form,
    # dialogs); a screen that leads to another opens it with ``app.open(route)``.
    routed = _routed()
    assert routed <= set(MODULES)
    importers = {name: sorted(IMPORTS[name] & routed) for name in MODULES if IMPORTS[name] & routed}
    assert importers == {}


@pytest.mark.parametrize("table", ["KIOSK", "CONSOLE"])
def test_every_route_names_a_screen(table):
    from textual.screen import Screen

    classes = {name: routes.load(target) for name, target in getattr(routes, table).items()}
    assert [name for name, found in classes.items() if not issubclass(found, Screen)] == []


STARTING = """
import sys
import screens.app, screens.console.app
from screens import routes
targets = [*routes.KIOSK.values(), *routes.CONSOLE.values()]
print(sorted(t for t in targets if t.partition(":")[0] in sys.modules))
"""


def test_building_the_apps_imports_no_screen_before_it_opens():
    result = run("-c", STARTING)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def _textual_widgets_imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "textual.widgets"
        for alias in node.names
    }


def test_the_screens_use_the_kiosks_button():
    # Textual's own would draw another look, and read its 7 KB style sheet again.
    screens = {name: path for name, path in MODULES.items() if name.startswith("screens")}
    using = sorted(n for n, p in screens.items() if "Button" in _textual_widgets_imported(p))
    assert using == []
    # The reading itself: the form takes Textual's inputs.
    assert "Input" in _textual_widgets_imported(MODULES["screens.registration"])
