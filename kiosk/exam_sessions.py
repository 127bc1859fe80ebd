"""Exam sessions as data: the exam, its académie, its window and its specialties."""

from __future__ import annotations

import csv
import re
import tomllib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import Enum
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from kiosk.assets import asset
from kiosk.clock import Clock, parse_instant
from kiosk.i18n import Messages, french


class SessionError(ValueError):
    """An exam session that cannot be found or read."""


class WindowState(Enum):
    """Where an instant stands against the registration window."""

    NOT_YET_OPEN = "not_yet_open"
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True)
class Specialty:
    """One spécialité of the baccalauréat professionnel, from the national list."""

    code: str
    title: str
    option: str
    first_session: int
    last_session: int | None

    @property
    def label(self) -> str:
        return f"{self.title} — option {self.option}" if self.option else self.title

    def offered_in(self, year: int) -> bool:
        return self.first_session <= year and (
            self.last_session is None or self.last_session >= year
        )


@dataclass(frozen=True)
class Contact:
    """Who receives the paper files, as printed on the documents and signed in the mails.

    Only the rectorat's name is required: an item the session's file does not give is
    empty, and is left out wherever it would have been printed, never guessed.
    """

    name: str
    bureau: str = ""
    address: tuple[str, ...] = ()
    email: str = ""
    phone: str = ""

    def postal_lines(self) -> tuple[str, ...]:
        """Where the paper file goes: the rectorat, its bureau, its address."""
        return tuple(line for line in (self.name, self.bureau, *self.address) if line)

    def reach_lines(self, messages: Messages = french) -> tuple[str, ...]:
        """« E-mail : … », « Téléphone : … », for those the session gives."""
        lines = []
        if self.email:
            lines.append(messages("contact.email", email=self.email))
        if self.phone:
            lines.append(messages("contact.phone", phone=self.phone))
        return tuple(lines)

    def signature(self, messages: Messages = french) -> str:
        """The end of every mail to a candidate: who writes, and how to reach them."""
        return "\n".join(
            line for line in (self.name, self.bureau, *self.reach_lines(messages)) if line
        )


@dataclass(frozen=True)
class ExamSession:
    """One exam session: the window during which candidates register, and what it offers."""

    id: str
    exam: str
    title: str
    # In full, as a sentence writes it: « académie de Poitiers », « académie d'Orléans-Tours ».
    academie: str
    year: int
    opens: datetime
    closes: datetime
    zone: ZoneInfo
    reference_date: date
    # None when the session's file gives no date: the documents then name none.
    paper_deadline: date | None
    contact: Contact
    specialties: tuple[Specialty, ...]
    optional_tests: tuple[str, ...]

    @property
    def academie_heading(self) -> str:
        """The académie at the start of a line: « Académie de Poitiers »."""
        return self.academie[:1].upper() + self.academie[1:]

    @property
    def academie_place(self) -> str:
        """The académie without « académie de »: « Poitiers », « Orléans-Tours »."""
        return _ACADEMIE_PREFIX.sub("", self.academie, count=1)

    def window_state(self, now: datetime) -> WindowState:
        """Open from ``opens`` included to ``closes`` excluded."""
        if now < self.opens:
            return WindowState.NOT_YET_OPEN
        if now < self.closes:
            return WindowState.OPEN
        return WindowState.CLOSED

    def local(self, instant: datetime) -> datetime:
        return instant.astimezone(self.zone)

    def specialty(self, code: str) -> Specialty | None:
        return next((s for s in self.specialties if s.code == code), None)


@cache
def national_specialties(path: Path | None = None) -> tuple[Specialty, ...]:
    """Every spécialité of the national list, offered or not."""
    with open(path or asset("specialites-bacpro.csv"), newline="", encoding="utf-8") as handle:
        return tuple(
            Specialty(
                code=row["code"].strip(),
                title=row["intitule"].strip(),
                option=row["option"].strip(),
                first_session=int(row["premiere_session"]),
                last_session=int(row["derniere_session"])
                if row["derniere_session"].strip()
                else None,
            )
            for row in csv.DictReader(handle)
        )


_ACADEMIE_PREFIX = re.compile(r"^\s*acad[ée]mie\s+(?:de\s+(?:la\s+)?|d['’]\s*)", re.IGNORECASE)


def _text(table: dict, key: str) -> str:
    """An optional text of the session's file: empty when not given."""
    value = table.get(key, "")
    if not isinstance(value, str):
        raise TypeError(f"{key} is not a text")
    return value.strip()


def shipped_sessions() -> list[str]:
    return sorted(p.stem for p in asset("sessions").glob("*.toml"))


def _instant(data: dict, key: str, zone: ZoneInfo, now: datetime) -> datetime:
    """A fixed instant (``opens``), or one relative to now in days (``opens_days_from_now``)."""
    if key in data:
        return parse_instant(str(data[key]), zone)
    relative = f"{key}_days_from_now"
    if relative in data:
        start_of_today = now.astimezone(zone).replace(hour=9, minute=0, second=0, microsecond=0)
        return start_of_today + timedelta(days=int(data[relative]))
    raise SessionError(f"the session gives neither {key} nor {relative}")


def load_session(name_or_path: str, clock: Clock) -> ExamSession:
    """A shipped session by name, or a session file by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = asset("sessions", f"{name_or_path}.toml")
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError as error:
        known = ", ".join(shipped_sessions())
        raise SessionError(
            french("cli.session.unknown", name=name_or_path, shipped=known)
            if not Path(name_or_path).suffix
            else french("cli.session.missing", path=path)
        ) from error
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise SessionError(french("cli.session.unreadable", path=path, detail=error)) from error
    try:
        zone = ZoneInfo(data.get("timezone", "Europe/Paris"))
        now = clock.now()
        opens = _instant(data, "opens", zone, now)
        closes = _instant(data, "closes", zone, now)
        reference = _instant(data, "reference", zone, now).astimezone(zone).date()
        paper_deadline = (
            _instant(data, "paper_deadline", zone, now).astimezone(zone).date()
            if "paper_deadline" in data or "paper_deadline_days_from_now" in data
            else None
        )
        year = int(data.get("year", reference.year))
        contact = data["contact"]
        address = contact.get("address", [])
        if not isinstance(address, list) or not all(isinstance(line, str) for line in address):
            raise TypeError("contact.address is not a list of texts")
        academie = _text(data, "academie")
        if not academie or not contact.get("name"):
            raise KeyError("academie" if not academie else "[contact] name")
        return ExamSession(
            id=str(data.get("id", path.stem)),
            exam=data["exam"],
            title=data["title"],
            academie=academie,
            year=year,
            opens=opens,
            closes=closes,
            zone=zone,
            reference_date=reference,
            paper_deadline=paper_deadline,
            contact=Contact(
                name=_text(contact, "name"),
                bureau=_text(contact, "bureau"),
                address=tuple(line.strip() for line in address if line.strip()),
                email=_text(contact, "email"),
                phone=_text(contact, "phone"),
            ),
            specialties=tuple(s for s in national_specialties() if s.offered_in(year)),
            optional_tests=tuple(data.get("optional_tests", ())),
        )
    except (KeyError, TypeError, ValueError, OverflowError) as error:
        raise SessionError(french("cli.session.invalid", path=path, detail=error)) from error
