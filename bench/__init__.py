"""Figures about the kiosk, measured and reported; never asserted.

``python -m bench`` (or ``make bench``) runs every measure, prints one table and
writes it as JSON to ``bench/results/latest.json``.

Adding a measure is adding one module to this package: a module whose name does not
start with ``_`` and that defines ``measure() -> list[Figure]`` is found and run.
It may set ``ORDER`` (an int, default 100) to place its rows in the table,
``ON_REQUEST = True`` to run only when named (or with ``--national``), and a
one-line docstring, which ``python -m bench --list`` shows. Helpers that are not
measures live in ``_``-prefixed modules.

This package imports only the standard library at load time, so that a measure's
own imports (argon2, Textual, ...) happen only when that measure runs.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Literal

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Figure:
    """One measured value, with the goal it is held against (if it has one)."""

    name: str
    value: float
    unit: str
    goal: float | None = None
    better: Literal["lower", "higher"] = "lower"
    note: str = ""

    @property
    def ok(self) -> bool | None:
        """Whether the value meets its goal; ``None`` when there is no goal."""
        if self.goal is None:
            return None
        return self.value <= self.goal if self.better == "lower" else self.value >= self.goal

    @property
    def goal_text(self) -> str:
        if self.goal is None:
            return "-"
        return f"{'≤' if self.better == 'lower' else '≥'} {self.goal:g}"

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "goal": self.goal,
            "better": self.better,
            "ok": self.ok,
            "note": self.note,
        }


@dataclass(frozen=True)
class Measure:
    name: str
    order: int
    summary: str
    run: Callable[[], list[Figure]]
    on_request: bool = False  # run only when named: it takes minutes (national size)


def discover() -> list[Measure]:
    """Every measure module of this package, in table order."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module: ModuleType = importlib.import_module(f"{__name__}.{info.name}")
        run = getattr(module, "measure", None)
        if not callable(run):
            continue
        summary = (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else ""
        found.append(
            Measure(
                info.name,
                getattr(module, "ORDER", 100),
                summary,
                run,
                getattr(module, "ON_REQUEST", False),
            )
        )
    return sorted(found, key=lambda m: (m.order, m.name))
