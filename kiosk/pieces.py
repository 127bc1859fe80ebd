"""Which pièces justificatives a candidate must post, computed from their answers.

The rules are data (``assets/pieces.toml``); this module only reads and applies them.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from kiosk.assets import asset
from kiosk.exam_sessions import ExamSession
from kiosk.registration_form import age_on, parse_date

CONDITIONS = ("nationality", "status", "flags", "age_from", "age_under")


class RuleError(ValueError):
    """A rules file that does not say something this module understands."""


@dataclass(frozen=True)
class PieceRule:
    """One pièce and the conditions under which it is asked."""

    id: str
    nationality: tuple[str, ...] = ()
    status: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    age_from: int | None = None
    age_under: int | None = None

    def holds(self, answers: Mapping[str, Any], age: int | None) -> bool:
        if self.nationality and answers.get("nationality") not in self.nationality:
            return False
        if self.status and answers.get("status") not in self.status:
            return False
        if any(answers.get(flag) is not True for flag in self.flags):
            return False
        if self.age_from is not None and (age is None or age < self.age_from):
            return False
        if self.age_under is not None and (age is None or age >= self.age_under):
            return False
        return True


@cache
def load_rules(path: Path | None = None) -> tuple[PieceRule, ...]:
    with open(path or asset("pieces.toml"), "rb") as handle:
        data = tomllib.load(handle)
    rules = []
    for entry in data.get("piece", []):
        unknown = set(entry) - {"id", *CONDITIONS}
        if unknown:
            raise RuleError(f"piece {entry.get('id')!r}: unknown condition(s) {sorted(unknown)}")
        rules.append(
            PieceRule(
                id=entry["id"],
                nationality=tuple(entry.get("nationality", ())),
                status=tuple(entry.get("status", ())),
                flags=tuple(entry.get("flags", ())),
                age_from=entry.get("age_from"),
                age_under=entry.get("age_under"),
            )
        )
    return tuple(rules)


def required_pieces(
    answers: Mapping[str, Any], session: ExamSession, rules: tuple[PieceRule, ...] | None = None
) -> list[str]:
    """The ids of the pièces this candidate must post, in the order of the rules."""
    birth = parse_date(answers.get("birth_date", ""))
    age = age_on(birth, session.reference_date) if birth else None
    return [rule.id for rule in (rules or load_rules()) if rule.holds(answers, age)]
