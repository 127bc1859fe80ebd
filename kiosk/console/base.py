"""The staff console's service: the rights, the audit trail and the export, whatever the store.

Each task is a public method that checks the role, does the work through the store's
own hooks (``_…`` methods of :class:`~kiosk.console.on_kiosk.KioskConsole` and
:class:`~kiosk.console.on_rectorat.RectoratConsole`), and records what it did in the same
transaction. A task the store cannot do (the rectorat holds no activation codes, a
kiosk writes no paper status) is refused with a message that says where to do it.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import os
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiosk.clock import Clock
from kiosk.console import rights
from kiosk.console.views import (
    AddressChangeView,
    AuditLine,
    Candidate,
    CandidateFile,
    ConflictView,
    Glance,
    Officer,
    Published,
    RefusedItem,
)
from kiosk.errors import Refused
from kiosk.exam_sessions import ExamSession
from kiosk.pieces import required_pieces
from kiosk.registration_form import LOCKED_FIELDS, check, plain
from kiosk.staff import StaffService, staff_name
from kiosk.store.models import reference_of

if TYPE_CHECKING:
    from kiosk.delivery.printing import PrintJob

CHART_DAYS = 14
SEARCH_LIMIT = 50
PAPER_STATUSES = ("received", "complete", "incomplete")
CSV_COLUMNS = (
    "numero", "reference", "statut", "dossier_papier", "pieces_manquantes", "nom", "prenoms",
    "date_naissance", "commune_naissance", "pays_naissance", "courriel", "code_specialite",
    "specialite", "enregistre_le", "version",
)  # fmt: skip
# A cell that starts so is a formula to a spreadsheet: a name is never one. Compared after
# NFKC, which reads the full-width (＝＋－＠) and small (﹦﹢﹣﹫) signs as these; « − » too.
_FORMULA_START = ("=", "+", "-", "@", "\u2212")
# Line and column breaks, read as a space in a cell; every other control or invisible
# formatting character (bidi, zero width, BOM…) is removed; a lone surrogate is shown « � ».
_BREAKS = dict.fromkeys(map(ord, "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\x85\u2028\u2029"), " ")


class ConsoleService:
    """What staff may do on one store; the only way in for the console's screens."""

    where = ""  # kiosk | rectorat
    tasks: frozenset[str] = frozenset()  # what this store can do, whoever asks

    def __init__(
        self, db, clock: Clock, session: ExamSession, staff: StaffService, exports_dir: Path
    ) -> None:
        self.db = db
        self.clock = clock
        self.session = session
        self.staff = staff
        self.exports_dir = exports_dir

    # -- who is at the console ------------------------------------------------------------

    def log_in(self, name: str, password: str) -> Officer:
        try:
            account = self.staff.authenticate(name, password)
        except Refused:
            # Each refused login is in the trail, under the name as typed.
            with self._write():
                self._record(Officer(staff_name(name)[:64], ""), "login_refused")
            raise
        officer = Officer(account.name, account.role)
        with self._write():
            self._record(officer, "login")
        return officer

    def log_out(self, officer: Officer, reason: str = "") -> None:
        with self._write():
            self._record(officer, "logout", detail=reason)

    def can(self, officer: Officer, task: str) -> bool:
        """Whether the console offers ``task`` to this officer, here."""
        return rights.may(officer.role, task) and task in self.tasks

    def _allow(self, officer: Officer, task: str) -> None:
        rights.require(officer.role, task)
        if task not in self.tasks:
            raise Refused.one("", f"console.not_here.{self.where}")

    # -- reading ------------------------------------------------------------------------

    def find(self, officer: Officer, query: str) -> list[Candidate]:
        """Candidates whose name, e-mail, registration number or reference matches ``query``."""
        self._allow(officer, "find")
        query = query.strip()
        if len(plain(query)) < 2:
            raise Refused.one("query", "console.query_short")
        found = self._find(query)[:SEARCH_LIMIT]
        with self._write():
            self._record(officer, "find", detail=f"{len(found)} résultat(s)")
        return found

    def open_file(self, officer: Officer, account_id: str) -> CandidateFile:
        self._allow(officer, "view")
        with self._write():
            found = self._file(account_id)
            self._record(officer, "view", account_id)
        return found

    def glance(self, officer: Officer) -> Glance:
        self._allow(officer, "glance")
        per_day: Counter[date] = Counter()
        per_specialty: Counter[str] = Counter()
        registered = pending = incomplete = 0
        for saved_at, specialty, status, paper_status in self._registrations_at_a_glance():
            if status != "registered":
                continue
            registered += 1
            per_day[self.session.local(saved_at).date()] += 1
            per_specialty[specialty] += 1
            pending += paper_status is None
            incomplete += paper_status == "incomplete"
        days = sorted(per_day)[-CHART_DAYS:]
        labels = {s.code: s.label for s in self.session.specialties}
        return Glance(
            per_day=[(day, per_day[day]) for day in days],
            per_specialty=[
                (labels.get(code, code), n) for code, n in per_specialty.most_common(10)
            ],
            registered=registered,
            paper_pending=pending,
            paper_incomplete=incomplete,
            conflicts=self._open_conflicts(),
            refused=self._refused_items(),
            address_changes=self._pending_address_changes()
            if self.can(officer, "apply_address_change")
            else None,
        )

    def audit_trail(
        self, officer: Officer, subject: str | None = None, limit: int = 200
    ) -> list[AuditLine]:
        self._allow(officer, "audit")
        return self._trail(subject, limit)

    # -- reception ------------------------------------------------------------------------

    def resend_code(self, officer: Officer, account_id: str) -> None:
        self._allow(officer, "resend_code")
        self._resend_code(account_id)
        with self._write():
            self._record(officer, "resend_code", account_id)

    def lift_delay(self, officer: Officer, account_id: str) -> None:
        self._allow(officer, "lift_delay")
        with self._write():
            self._lift_delay(account_id)
            self._record(officer, "lift_delay", account_id)

    def reprint(self, officer: Officer, account_id: str) -> PrintJob:
        """Print the candidate's current confirmation again; returns the printer's job."""
        self._allow(officer, "reprint")
        job = self._reprint(account_id)
        with self._write():
            self._record(officer, "reprint", account_id)
        return job

    # -- the exam office ----------------------------------------------------------------

    def correct_identity(
        self, officer: Officer, account_id: str, values: Mapping[str, Any]
    ) -> CandidateFile:
        """Correct the identity the candidate can no longer change (names, birth)."""
        self._allow(officer, "correct_identity")
        with self._write():
            current = self._file(account_id)
            if current.candidate.registration_id is None:
                raise Refused.one("", "console.no_registration")
            answers = dict(current.answers)
            typed = {name: values[name] for name in LOCKED_FIELDS if name in values}
            checked = check({**answers, **typed}, self.session)
            # Compared as the store keeps them: a date shown as 15/03/2002 and left so is
            # the stored 2002-03-15, unchanged.
            changed = [
                name
                for name, value in typed.items()
                if (value if name in checked.problems else checked.answers.get(name, value))
                != answers.get(name, "")
            ]
            # Only what is being corrected is checked: a kiosk's older record is not refused
            # for the rest.
            problems = {
                name: checked.problems[name] for name in changed if name in checked.problems
            }
            if problems:
                raise Refused(problems)
            if not changed:
                raise Refused.one("", "console.nothing_changed")
            identity = {
                name: checked.answers.get(name, "") if name in changed else answers.get(name, "")
                for name in LOCKED_FIELDS
            }
            self._correct_identity(current, identity)
            self._record(officer, "correct_identity", account_id, ", ".join(changed))
            return self._file(account_id)

    def receive_paper(self, officer: Officer, code: str) -> tuple[Candidate, bool]:
        """The paper file with this number or reference (scanned or typed) has arrived;
        also says whether it is news (a file scanned twice is recorded once)."""
        self._allow(officer, "receive_paper")
        with self._write():
            candidate = self._by_code(code)
            if candidate is None:
                raise Refused.one("code", "console.unknown_code")
            if candidate.status != "registered" or candidate.registration_id is None:
                raise Refused.one("code", "console.not_registered")
            news = candidate.paper_status is None
            if news:
                self._set_paper(candidate.registration_id, "received", None)
                self._record(officer, "receive_paper", candidate.account_id, code.strip())
                candidate = self._by_code(code) or candidate
            return candidate, news

    def mark_paper(
        self, officer: Officer, account_id: str, complete: bool, missing: Iterable[str] = ()
    ) -> None:
        """The paper file is complete, or incomplete with these pièces missing."""
        self._allow(officer, "mark_paper")
        missing = list(missing)
        with self._write():
            current = self._file(account_id)
            registration_id = current.candidate.registration_id
            if current.candidate.status != "registered" or registration_id is None:
                raise Refused.one("", "console.not_registered")
            if complete and missing:
                raise Refused.one("missing", "console.complete_with_missing")
            if not complete and not missing:
                raise Refused.one("missing", "console.missing_required")
            unknown = [piece for piece in missing if piece not in current.pieces]
            if unknown:
                raise Refused.one("missing", "console.unknown_piece", piece=", ".join(unknown))
            status = "complete" if complete else "incomplete"
            self._set_paper(registration_id, status, None if complete else missing)
            self._record(
                officer,
                "mark_paper",
                account_id,
                status + (f" : {', '.join(missing)}" if missing else ""),
            )

    def set_aside(self, officer: Officer, account_id: str) -> None:
        self._allow(officer, "set_aside")
        with self._write():
            current = self._file(account_id)
            registration_id = current.candidate.registration_id
            if current.candidate.status != "registered" or registration_id is None:
                raise Refused.one("", "console.not_registered")
            self._set_aside(registration_id)
            self._record(officer, "set_aside", account_id)

    def conflicts(self, officer: Officer) -> list[ConflictView]:
        self._allow(officer, "resolve_conflict")
        found = self._conflicts()
        with self._write():
            self._record(officer, "view_conflicts", detail=f"{len(found)}")
        return found

    def resolve_conflict(self, officer: Officer, conflict_id: str, keep_existing: bool) -> None:
        self._allow(officer, "resolve_conflict")
        resolution = "keep_existing" if keep_existing else "apply_incoming"
        self._resolve(conflict_id, resolution, officer)
        with self._write():
            self._record(officer, "resolve_conflict", conflict_id, resolution)

    def address_changes(self, officer: Officer) -> list[AddressChangeView]:
        """The address changes reported after the close and not yet on their files, oldest
        first."""
        self._allow(officer, "apply_address_change")
        found = self._address_changes()
        with self._write():
            self._record(officer, "view_address_changes", detail=f"{len(found)}")
        return found

    def apply_address_change(self, officer: Officer, change_id: str) -> CandidateFile:
        """Report this address change on the candidate's file: a new version of the
        registration, which the kiosks pull."""
        self._allow(officer, "apply_address_change")
        with self._write():
            account_id = self._apply_address_change(change_id, officer)
            self._record(officer, "apply_address_change", account_id, change_id)
            return self._file(account_id)

    def publish(self, officer: Officer, code: str, title: str, path: str) -> Published:
        """Put the PDF at ``path`` (on this host) at the disposal of the candidate whose file
        has this reference or number; the candidate is told by mail."""
        self._allow(officer, "publish")
        published, account_id, file_name = self._publish(code, title, path, officer)
        with self._write():
            self._record(
                officer,
                "publish",
                account_id,
                f"« {published.title} » · {file_name} · {published.size} octet(s)",
            )
        return published

    def export_csv(self, officer: Officer) -> Path:
        """The session's registrations as a CSV file (UTF-8, « ; »), readable by the exam office
        only."""
        self._allow(officer, "export")
        now = self.clock.now()
        self.exports_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        rows = self._export_rows()
        path, descriptor = _new_file(
            self.exports_dir,
            f"inscriptions-{self.session.id}-{self.session.local(now):%Y%m%d-%H%M%S}",
        )
        with open(descriptor, "w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle, delimiter=";")
            writer.writerow(CSV_COLUMNS)
            count = 0
            for row in rows:
                writer.writerow([_cell(row.get(column)) for column in CSV_COLUMNS])
                count += 1
        with self._write():
            self._record(officer, "export", detail=f"{path.name} : {count} inscription(s)")
        return path

    # -- shared by the stores -----------------------------------------------------------

    def candidate(self, account, registration) -> Candidate:
        """A candidate from either store's account and registration rows (same columns)."""
        if registration is None:
            return Candidate(
                str(account.id),
                account.family_name,
                account.given_names,
                account.email,
                account.status,
            )
        answers = registration.answers
        return Candidate(
            account_id=str(account.id),
            family_name=answers.get("family_name", account.family_name),
            given_names=answers.get("given_names", account.given_names),
            email=account.email,
            account_status=account.status,
            registration_id=str(registration.id),
            birth_date=answers.get("birth_date", ""),
            status=registration.status,
            specialty=answers.get("specialty", ""),
            number=registration.number,
            reference=reference_of(registration.id),
            paper_status=registration.paper_status,
            missing=tuple(registration.missing_pieces or ()),
            saved_at=registration.saved_at,
        )

    def candidate_file(self, account, registration) -> CandidateFile:
        from kiosk.accounts import ACTIVATION_DEADLINE

        answers = registration.answers if registration is not None else {}
        return CandidateFile(
            candidate=self.candidate(account, registration),
            created_at=account.created_at,
            activated_at=account.activated_at,
            activation_deadline=account.created_at + ACTIVATION_DEADLINE
            if account.status == "pending"
            else None,
            locked_until=account.locked_until,
            failed_logins=account.failed_logins,
            version=registration.version if registration is not None else 0,
            answers=answers,
            pieces=tuple(required_pieces(answers, self.session))
            if registration is not None
            else (),
        )

    def export_row(
        self, candidate: Candidate, answers: Mapping[str, Any], version: int
    ) -> dict[str, Any]:
        specialty = self.session.specialty(str(answers.get("specialty", "")))
        return {
            "numero": candidate.number or "",
            "reference": candidate.reference or "",
            "statut": candidate.status or "",
            "dossier_papier": candidate.paper_status or "",
            "pieces_manquantes": ", ".join(candidate.missing),
            "nom": answers.get("family_name", ""),
            "prenoms": answers.get("given_names", ""),
            "date_naissance": answers.get("birth_date", ""),
            "commune_naissance": answers.get("birth_town", ""),
            "pays_naissance": answers.get("birth_country", ""),
            "courriel": candidate.email,
            "code_specialite": answers.get("specialty", ""),
            "specialite": specialty.label if specialty else "",
            "enregistre_le": self.session.local(candidate.saved_at).isoformat(
                sep=" ", timespec="minutes"
            )
            if candidate.saved_at
            else "",
            "version": version,
        }

    def matches(self, query: str, *texts: str) -> bool:
        """Whether ``query`` (accents and case aside) is in one of ``texts``."""
        wanted = plain(query)
        return any(wanted in plain(text or "") for text in texts)

    def close(self) -> None:
        pass

    # -- hooks for the stores -----------------------------------------------------------

    def _write(self) -> contextlib.AbstractContextManager:
        return self.db.atomic()

    def _record(
        self, officer: Officer, action: str, subject: str | None = None, detail: str = ""
    ) -> None:
        raise NotImplementedError

    def _trail(self, subject: str | None, limit: int) -> list[AuditLine]:
        raise NotImplementedError

    def _find(self, query: str) -> list[Candidate]:
        raise NotImplementedError

    def _file(self, account_id: str) -> CandidateFile:
        raise NotImplementedError

    def _by_code(self, code: str) -> Candidate | None:
        raise NotImplementedError

    def _registrations_at_a_glance(self) -> Iterator[tuple[datetime, str, str, str | None]]:
        raise NotImplementedError

    def _export_rows(self) -> Iterator[dict[str, Any]]:
        raise NotImplementedError

    def _open_conflicts(self) -> int | None:
        return None

    def _refused_items(self) -> tuple[RefusedItem, ...]:
        return ()

    def _resend_code(self, account_id: str) -> None:
        raise NotImplementedError

    def _lift_delay(self, account_id: str) -> None:
        raise NotImplementedError

    def _reprint(self, account_id: str) -> PrintJob:
        raise NotImplementedError

    def _correct_identity(self, current: CandidateFile, identity: dict[str, str]) -> None:
        raise NotImplementedError

    def _set_paper(self, registration_id: str, status: str, missing: list[str] | None) -> None:
        raise NotImplementedError

    def _set_aside(self, registration_id: str) -> None:
        raise NotImplementedError

    def _conflicts(self) -> list[ConflictView]:
        raise NotImplementedError

    def _resolve(self, conflict_id: str, resolution: str, officer: Officer) -> None:
        raise NotImplementedError

    def _pending_address_changes(self) -> int | None:
        return None

    def _address_changes(self) -> list[AddressChangeView]:
        raise NotImplementedError

    def _apply_address_change(self, change_id: str, officer: Officer) -> str:
        """Apply it; the account id of its candidate."""
        raise NotImplementedError

    def _publish(
        self, code: str, title: str, path: str, officer: Officer
    ) -> tuple[Published, str, str]:
        """Publish it; what was published, for which account id, from which file name."""
        raise NotImplementedError


def _cell(value: Any) -> str:
    """``value`` as a CSV cell that cannot hurt: no control character, and never a formula.

    A spreadsheet trims spaces (any Unicode one) and line breaks before it reads « = », « + »,
    « - » or « @ », full-width or not, as the start of a formula: such a cell begins with
    « ' », which makes it text."""
    text = "" if value is None else str(value)
    text = "".join(_clean(c) for c in text.translate(_BREAKS))
    start = text.lstrip()[:1]
    if start and unicodedata.normalize("NFKC", start)[:1] in _FORMULA_START:
        return "'" + text
    return text


def _clean(character: str) -> str:
    category = unicodedata.category(character)
    if category in ("Cc", "Cf"):
        return ""
    if category == "Cs":
        return "\ufffd"
    return character


def _new_file(folder: Path, stem: str) -> tuple[Path, int]:
    """A file made now in ``folder`` (0600), never one that was there: two exports in
    the same second get two files, and a link planted under the name (the exports may
    be a share) is neither followed nor overwritten."""
    for n in range(1, 100):
        path = folder / (f"{stem}.csv" if n == 1 else f"{stem}-{n}.csv")
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
            return path, os.open(path, flags, 0o600)
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "too many exports in one second", str(folder / stem))
