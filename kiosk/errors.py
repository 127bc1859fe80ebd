"""The program's own exceptions: a refusal (catalogue message names, per field), a store in
trouble."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One refusal, as a catalogue message name and its parameters."""

    key: str
    params: dict[str, Any] = field(default_factory=dict)


class Refused(Exception):
    """A request the rules refuse; ``problems`` maps each field (or ``""``) to its problem.

    The screens show each problem next to its field and keep everything typed.
    """

    def __init__(self, problems: dict[str, Problem]) -> None:
        super().__init__(", ".join(f"{name or 'form'}: {p.key}" for name, p in problems.items()))
        self.problems = problems

    @classmethod
    def one(cls, field_name: str, key: str, **params: Any) -> Refused:
        return cls({field_name: Problem(key, params)})


class Unreachable(Exception):
    """The rectorat, which this answer needs, cannot be reached now: try again later."""


class StoreError(RuntimeError):
    """The store cannot be opened as it is; staff must look at it."""
