"""What the staff console shows: plain records read from either store."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True)
class Officer:
    """The staff member logged in at the console."""

    name: str
    role: str  # reception | exam_office


@dataclass(frozen=True)
class Candidate:
    """One candidate as a search lists them: the account, and the registration if any."""

    account_id: str
    family_name: str
    given_names: str
    email: str
    account_status: str  # pending | active
    registration_id: str | None = None
    birth_date: str = ""
    status: str | None = None  # registered | withdrawn | set_aside
    specialty: str = ""
    number: str | None = None
    reference: str | None = None
    paper_status: str | None = None  # received | complete | incomplete | validated
    missing: tuple[str, ...] = ()
    saved_at: datetime | None = None


@dataclass(frozen=True)
class CandidateFile:
    """Everything the console shows about one candidate."""

    candidate: Candidate
    created_at: datetime
    activated_at: datetime | None
    activation_deadline: datetime | None
    locked_until: datetime | None
    failed_logins: int
    version: int = 0
    answers: dict[str, Any] = field(default_factory=dict)
    pieces: tuple[str, ...] = ()


@dataclass(frozen=True)
class Glance:
    """The session at a glance: registrations per day and per specialty, work waiting."""

    per_day: list[tuple[date, int]]
    per_specialty: list[tuple[str, int]]
    registered: int
    paper_pending: int
    paper_incomplete: int
    conflicts: int | None  # None: this store has none (a kiosk's)
    refused: tuple[RefusedItem, ...] = ()  # a kiosk's items the rectorat will never take
    # Address changes reported after the close, to report on their files; None: not this
    # officer's work, or not this store's (a kiosk's).
    address_changes: int | None = None


@dataclass(frozen=True)
class RefusedItem:
    """An item of this kiosk's that the rectorat refused for good, and why."""

    entity: str
    record_id: str
    reason: str
    at: datetime


@dataclass(frozen=True)
class Difference:
    """One answer of a registration changed at a kiosk and at the rectorat: the kiosk's,
    then the rectorat's. ``name`` is a form field's, or ``status``."""

    name: str
    incoming: Any
    existing: Any


@dataclass(frozen=True)
class ConflictView:
    """A pushed item the rectorat kept aside, and what it collides with; for a
    registration changed on both sides, what differs."""

    id: str
    kind: str
    entity: str
    kiosk: str
    created_at: datetime
    incoming: str
    existing: str
    differences: tuple[Difference, ...] = ()


@dataclass(frozen=True)
class AddressChangeView:
    """An address a candidate reported after the close, which the exam office reports on
    the file: the address the file has now (``old``), and the reported one (``new``)."""

    id: str
    account_id: str
    family_name: str
    given_names: str
    reference: str
    number: str | None
    reported_at: datetime
    old: dict[str, str]
    new: dict[str, str]


@dataclass(frozen=True)
class Published:
    """A document put at a candidate's disposal from the console."""

    title: str
    size: int
    family_name: str
    given_names: str
    reference: str
    number: str | None
    told: str  # how the candidate was told: mailed, mail_failed, not_mailed (no mail here)


@dataclass(frozen=True)
class AuditLine:
    """One line of the trail, as the exam office reads it."""

    at: datetime
    staff: str
    role: str
    action: str
    subject: str | None
    detail: str


def bars(pairs: list[tuple[str, int]], width: int) -> list[str]:
    """A horizontal bar chart in text: ``label ███████ 12``, the longest bar ``width`` wide."""
    if not pairs:
        return []
    label_width = max(len(label) for label, _ in pairs)
    top = max(count for _, count in pairs) or 1
    lines = []
    for label, count in pairs:
        eighths = round(count * width * 8 / top)
        bar = "█" * (eighths // 8) + ("", "▏", "▎", "▍", "▌", "▋", "▊", "▉")[eighths % 8]
        lines.append(f"{label.ljust(label_width)} {bar} {count}")
    return lines


def address_lines(address: Mapping[str, Any]) -> list[str]:
    """A postal address as it is written on an envelope, its empty lines left out."""
    town = f"{address.get('postal_code') or ''} {address.get('town') or ''}".strip()
    lines = (
        address.get("address_line1"),
        address.get("address_line2"),
        town,
        address.get("country"),
    )
    return [str(line) for line in lines if line]
