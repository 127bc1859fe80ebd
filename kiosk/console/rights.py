"""Who may do what at the staff console: one table, read by the console services and by the
screens."""

from __future__ import annotations

from kiosk.errors import Refused

RECEPTION = frozenset({"find", "view", "resend_code", "lift_delay", "reprint", "glance"})
EXAM_OFFICE = RECEPTION | {
    "correct_identity", "receive_paper", "mark_paper", "set_aside", "resolve_conflict", "export",
    "audit", "apply_address_change", "publish",
}  # fmt: skip
RIGHTS: dict[str, frozenset[str]] = {"reception": RECEPTION, "exam_office": EXAM_OFFICE}


def may(role: str, task: str) -> bool:
    return task in RIGHTS.get(role, frozenset())


def require(role: str, task: str) -> None:
    """Refuse ``task`` to a role that does not have it (the screens hide it too; this decides)."""
    if not may(role, task):
        raise Refused.one("", "console.forbidden")
