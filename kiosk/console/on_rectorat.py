"""The staff console on the rectorat's store: the exam office's work on every kiosk's records.

Activation codes and printers belong to the kiosks, so resending a code and reprinting
are done on a kiosk's store; everything else is done here, by URL (PostgreSQL in
production, a SQLite file for a test). Here only: the address changes reported after
the close are reported on their files, and documents are published for candidates.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from peewee import IntegrityError, fn

from kiosk.clock import Clock
from kiosk.console.base import SEARCH_LIMIT, ConsoleService
from kiosk.console.views import (
    AddressChangeView,
    AuditLine,
    Candidate,
    CandidateFile,
    ConflictView,
    Difference,
    Officer,
    Published,
)
from kiosk.errors import Problem, Refused
from kiosk.exam_sessions import ExamSession
from kiosk.pdf_check import MAX_PDF_BYTES, NotReadable, pdf_problem, read_document
from kiosk.rectorat.exam_office import ConflictNotApplied, NotPublished
from kiosk.rectorat.items import pushed_status
from kiosk.rectorat.service import RectoratService
from kiosk.rectorat.store import Conflict, RectoratStore
from kiosk.registration_form import FIELDS, plain
from kiosk.registrations import ADDRESS_FIELDS
from kiosk.staff import StaffService

if TYPE_CHECKING:
    from kiosk.rectorat.mail import RectoratMail

_NOT_ALNUM = re.compile(r"[^0-9a-z@.]+")
# The field of the publishing form that each refusal of the exam office is about.
_PUBLISH_FIELDS = {
    "empty": "path", "too_large": "path", "not_pdf": "path", "no_title": "document_title",
    "unknown_file": "code",
}  # fmt: skip
_MAX_MB = MAX_PDF_BYTES // (1024 * 1024)


class RectoratConsole(ConsoleService):
    """The console's tasks over the rectorat's store."""

    where = "rectorat"
    tasks = frozenset(
        {
            "find", "view", "lift_delay", "glance", "correct_identity", "receive_paper",
            "mark_paper", "set_aside", "resolve_conflict", "export", "audit",
            "apply_address_change", "publish",
        }
    )  # fmt: skip

    def __init__(
        self,
        store: RectoratStore,
        clock: Clock,
        session: ExamSession,
        exports_dir: Path,
        mail: RectoratMail | None = None,
    ) -> None:
        # The rectorat's staff table has the columns of the kiosk's: the same service works on it.
        staff = StaffService(store.db, clock, model=store.Staff)  # type: ignore[arg-type]
        super().__init__(store.db, clock, session, staff, exports_dir)
        self.store = store
        # ``mail`` tells a candidate that a document waits for them; without it, nobody is told.
        self.service = RectoratService(store, clock, mail=mail)

    def close(self) -> None:
        self.store.close()

    def _write(self) -> contextlib.AbstractContextManager:
        return self.store.write()

    # -- the trail ------------------------------------------------------------------------

    def _record(
        self, officer: Officer, action: str, subject: str | None = None, detail: str = ""
    ) -> None:
        self.store.Audit.create(
            created_at=self.clock.now(), staff=officer.name, role=officer.role, action=action,
            subject=subject, detail=detail,
        )  # fmt: skip

    def _trail(self, subject: str | None, limit: int) -> list[AuditLine]:
        a = self.store.Audit
        query = a.select().order_by(a.id.desc()).limit(limit)
        if subject:
            query = query.where(a.subject == subject)
        return [
            AuditLine(r.created_at, r.staff, r.role, r.action, r.subject, r.detail) for r in query
        ]

    # -- reading ------------------------------------------------------------------------

    def _candidates(self, account_ids: list) -> list[Candidate]:
        m = self.store
        if not account_ids:
            return []
        accounts = m.Account.select().where(m.Account.id.in_(account_ids))
        registrations = {
            r.account_id: r
            for r in m.Registration.select().where(
                m.Registration.account_id.in_(account_ids),
                m.Registration.session_id == self.session.id,
            )
        }
        found = [self.candidate(a, registrations.get(a.id)) for a in accounts]
        return sorted(found, key=lambda c: (c.family_name.casefold(), c.given_names.casefold()))

    def _find(self, query: str) -> list[Candidate]:
        m = self.store
        by_code = self._by_code(query)
        if by_code is not None:
            return [by_code]
        words = _NOT_ALNUM.sub(" ", plain(query)).strip()
        like = f"%{words}%"
        by_identity = (
            m.Registration.select(m.Registration.account_id)
            .where(m.Registration.identity_key**like, m.Registration.session_id == self.session.id)
            .limit(SEARCH_LIMIT)
        )
        by_account = (
            m.Account.select(m.Account.id)
            .where(
                (fn.LOWER(m.Account.email) ** f"%{query.strip().casefold()}%")
                | (fn.LOWER(m.Account.family_name) ** f"%{query.strip().casefold()}%")
            )
            .limit(SEARCH_LIMIT)
        )
        ids = {row.account_id for row in by_identity} | {row.id for row in by_account}
        return self._candidates(sorted(ids, key=str)[:SEARCH_LIMIT])

    def _by_code(self, code: str) -> Candidate | None:
        """The candidate whose registration has this number, or this reference."""
        registration = self.service.exam_office.registration_by_code(code)
        if registration is None:
            return None
        account = self.store.Account.get_by_id(registration.account_id)
        return self.candidate(account, registration)

    def _file(self, account_id: str) -> CandidateFile:
        m = self.store
        try:
            account = m.Account.get_or_none(m.Account.id == uuid.UUID(str(account_id)))
        except ValueError:
            account = None
        if account is None:
            raise Refused.one("", "console.unknown_candidate")
        registration = m.Registration.get_or_none(
            m.Registration.account_id == account.id, m.Registration.session_id == self.session.id
        )
        return self.candidate_file(account, registration)

    def _registrations_at_a_glance(self) -> Iterator[tuple[datetime, str, str, str | None]]:
        r = self.store.Registration
        rows = r.select(r.saved_at, r.answers, r.status, r.paper_status).where(
            r.session_id == self.session.id
        )
        for row in rows:
            yield row.saved_at, row.answers.get("specialty", ""), row.status, row.paper_status

    def _export_rows(self) -> Iterator[dict[str, Any]]:
        m = self.store
        registrations = m.Registration.select().where(m.Registration.session_id == self.session.id)
        accounts = {a.id: a for a in m.Account.select()}
        for registration in registrations.order_by(m.Registration.number):
            account = accounts[registration.account_id]
            yield self.export_row(
                self.candidate(account, registration), registration.answers, registration.version
            )

    def _open_conflicts(self) -> int:
        c = self.store.Conflict
        return c.select().where(c.resolved_at.is_null()).count()

    # -- changes ------------------------------------------------------------------------

    def _lift_delay(self, account_id: str) -> None:
        if not self.service.lift_login_delay(account_id):
            raise Refused.one("", "console.not_locked")

    def _correct_identity(self, current: CandidateFile, identity: dict[str, str]) -> None:
        registration_id = current.candidate.registration_id
        if registration_id is None:  # checked by the console service already
            raise Refused.one("", "console.no_registration")
        try:
            with self.store.write():
                self.service.correct_identity(registration_id, identity)
        except IntegrityError:
            raise Refused.one("", "console.identity_taken") from None

    def _set_paper(self, registration_id: str, status: str, missing: list[str] | None) -> None:
        self.service.set_paper_status(registration_id, status, missing)

    def _set_aside(self, registration_id: str) -> None:
        self.service.set_aside(registration_id)

    def _conflicts(self) -> list[ConflictView]:
        m = self.store
        kiosks = {k.id: k.name for k in m.Kiosk.select()}
        views = []
        for conflict in self.service.conflicts():
            incoming = conflict.incoming or {}
            views.append(
                ConflictView(
                    id=str(conflict.id),
                    kind=conflict.kind,
                    entity=conflict.entity,
                    kiosk=kiosks.get(conflict.kiosk_id, "?"),
                    created_at=conflict.created_at,
                    incoming=self._describe(incoming),
                    existing=self._describe_existing(conflict.existing_id),
                    differences=self._differences(conflict) if conflict.kind == "version" else (),
                )
            )
        return views

    def _differences(self, conflict: Conflict) -> tuple[Difference, ...]:
        """What the kiosk's change holds that the rectorat's registration does not."""
        m = self.store
        here = m.Registration.get_or_none(m.Registration.id == conflict.entity_id)
        if here is None:
            return ()
        theirs, ours = conflict.incoming.get("answers") or {}, here.answers or {}
        found = [
            Difference(f.name, theirs.get(f.name), ours.get(f.name))
            for f in FIELDS
            if theirs.get(f.name) != ours.get(f.name)
        ]
        status = conflict.incoming.get("status")
        if status != pushed_status(here.status):
            found.append(Difference("status", status, here.status))
        return tuple(found)

    def _describe(self, data: dict) -> str:
        answers = data.get("answers") or data
        name = f"{answers.get('family_name', '')} {answers.get('given_names', '')}".strip()
        birth = answers.get("birth_date", "")
        return " · ".join(part for part in (name, birth, data.get("email", "")) if part)

    def _describe_existing(self, existing_id: str | None) -> str:
        m = self.store
        if not existing_id:
            return ""
        try:
            key = uuid.UUID(existing_id)
        except ValueError:
            return existing_id
        registration = m.Registration.get_or_none(m.Registration.id == key)
        if registration is not None:
            candidate = self.candidate(m.Account.get_by_id(registration.account_id), registration)
            parts = (
                f"{candidate.family_name} {candidate.given_names}",
                candidate.birth_date,
                candidate.number or "",
            )
            return " · ".join(p for p in parts if p)
        account = m.Account.get_or_none(m.Account.id == key)
        return (
            f"{account.family_name} {account.given_names} · {account.email}"
            if account
            else existing_id
        )

    def _resolve(self, conflict_id: str, resolution: str, officer: Officer) -> None:
        try:
            self.service.resolve_conflict(conflict_id, resolution, by=officer.name)
        except ConflictNotApplied:
            raise Refused.one("", "console.conflict_not_yet") from None
        except (LookupError, ValueError):
            raise Refused.one("", "console.conflict_gone") from None

    # -- address changes reported after the close ---------------------------------------

    def _pending_address_changes(self) -> int:
        a, r = self.store.AddressChange, self.store.Registration
        return (
            a.select()
            .join(r, on=(a.registration_id == r.id))
            .where(a.applied_at.is_null(), r.session_id == self.session.id)
            .count()
        )

    def _address_changes(self) -> list[AddressChangeView]:
        """This session's, as the console's other lists: a desk works on one session."""
        m = self.store
        changes = self.service.address_changes()
        if not changes:
            return []
        registrations = {
            r.id: r
            for r in m.Registration.select().where(
                m.Registration.id.in_({c.registration_id for c in changes}),
                m.Registration.session_id == self.session.id,
            )
        }
        changes = [c for c in changes if c.registration_id in registrations]
        accounts = {
            a.id: a
            for a in m.Account.select().where(
                m.Account.id.in_({r.account_id for r in registrations.values()})
            )
        }
        views = []
        for change in changes:
            registration = registrations[change.registration_id]  # a foreign key: it is there
            candidate = self.candidate(accounts[registration.account_id], registration)
            views.append(
                AddressChangeView(
                    id=str(change.id),
                    account_id=candidate.account_id,
                    family_name=candidate.family_name,
                    given_names=candidate.given_names,
                    reference=candidate.reference or "",
                    number=candidate.number,
                    reported_at=change.created_at,
                    old=_address(registration.answers),
                    new=_address(change.address or {}),
                )
            )
        return views

    def _apply_address_change(self, change_id: str, officer: Officer) -> str:
        try:
            registration = self.service.apply_address_change(change_id, by=officer.name)
        except LookupError:
            raise Refused.one("", "console.address_gone") from None
        except ValueError:  # applied already, or an id that names none (Invalid)
            change = self._address_change(change_id)
            if change is None or change.applied_at is None:
                raise Refused.one("", "console.address_gone") from None
            raise Refused.one("", "console.address_applied", by=change.applied_by or "?") from None
        return str(registration.account_id)

    def _address_change(self, change_id: str):
        a = self.store.AddressChange
        try:
            key = uuid.UUID(str(change_id))
        except ValueError:
            return None
        return a.get_or_none(a.id == key)

    # -- documents for candidates -------------------------------------------------------

    def _publish(
        self, code: str, title: str, path: str, officer: Officer
    ) -> tuple[Published, str, str]:
        # Every field is checked before anything is published, so that each problem is
        # said at once; the exam office's own checks decide (the file may change meanwhile).
        problems: dict[str, Problem] = {}
        if not title.split():
            problems["document_title"] = Problem("console.publish_refused.no_title")
        if not code.strip():
            problems["code"] = Problem("console.publish_refused.no_code")
        elif self._by_code(code) is None:
            problems["code"] = Problem("console.publish_refused.unknown_file")
        content = b""
        try:
            content = _read_pdf(path)
        except Refused as refused:
            problems.update(refused.problems)
        else:
            reason = pdf_problem(content)
            if reason is not None:
                problems["path"] = _not_published(reason).problems["path"]
        if problems:
            raise Refused(problems)
        try:
            document, told = self.service.publish(code, content, title, by=officer.name)
        except NotPublished as refused:
            raise _not_published(refused.reason) from None
        registration = self.store.Registration.get_by_id(document.registration_id)
        candidate = self.candidate(
            self.store.Account.get_by_id(registration.account_id), registration
        )
        published = Published(
            title=document.title,
            size=document.size,
            family_name=candidate.family_name,
            given_names=candidate.given_names,
            reference=candidate.reference or "",
            number=candidate.number,
            told=told,
        )
        return published, candidate.account_id, Path(path.strip()).name


def _address(values: Mapping[str, Any]) -> dict[str, str]:
    return {name: str(values.get(name) or "") for name in ADDRESS_FIELDS}


def _not_published(reason: str) -> Refused:
    """A refusal of the exam office's, said at its field of the publishing form."""
    field = _PUBLISH_FIELDS.get(reason, "")
    return Refused.one(field, f"console.publish_refused.{reason}", maximum=_MAX_MB)


def _read_pdf(typed: str) -> bytes:
    """The bytes of the file at this path on the rectorat's host, if it is a file that can
    be read and no larger than a document may be; else refused at the path's field."""
    typed = typed.strip()
    if not typed:
        raise Refused.one("path", "console.publish_refused.no_path")
    path = os.path.abspath(os.path.expanduser(typed))
    try:
        return read_document(path)
    except NotReadable as refused:
        if refused.reason == "too_large":
            raise _not_published("too_large") from None
        raise Refused.one(
            "path", f"console.publish_refused.{refused.reason}", path=path, error=refused.detail
        ) from None
