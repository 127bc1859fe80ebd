"""The staff console on a kiosk's own store: the reception's work at the kiosk's side.

Paper files, setting aside and conflicts are the rectorat's fields and are done on its
store; a kiosk keeps the activation codes and the printer, so the reception's work
happens here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from peewee import SQL

from kiosk import formatting
from kiosk.accounts import RESEND_INTERVAL
from kiosk.console.base import ConsoleService
from kiosk.console.views import AuditLine, Candidate, CandidateFile, Officer, RefusedItem
from kiosk.delivery.printing import PrintJob
from kiosk.errors import Refused
from kiosk.store.models import Account, Registration, id_bits, reference_bits
from kiosk.sync.client import refusal_reason


class KioskConsole(ConsoleService):
    """The console's tasks over the kiosk's SQLite store and its services."""

    where = "kiosk"
    tasks = frozenset(
        {
            "find",
            "view",
            "resend_code",
            "lift_delay",
            "reprint",
            "glance",
            "correct_identity",
            "export",
            "audit",
        }
    )

    def __init__(self, services) -> None:
        super().__init__(
            services.store.db,
            services.clock,
            services.session,
            services.staff,
            services.config.exports_dir,
        )
        self.services = services
        self.store = services.store

    # -- the trail ------------------------------------------------------------------------

    def _record(
        self, officer: Officer, action: str, subject: str | None = None, detail: str = ""
    ) -> None:
        now = self.clock.now()
        self.store.StaffAudit.create(
            staff=officer.name, role=officer.role, action=action, subject=subject, detail=detail,
            created_at=now, updated_at=now,
        )  # fmt: skip

    def _trail(self, subject: str | None, limit: int) -> list[AuditLine]:
        # The order of writing (SQLite's rowid): lines made in the same instant keep their order.
        audit = self.store.StaffAudit
        query = audit.select().order_by(audit.created_at.desc(), SQL("rowid").desc()).limit(limit)
        if subject:
            query = query.where(audit.subject == subject)
        return [
            AuditLine(r.created_at, r.staff, r.role, r.action, r.subject, r.detail) for r in query
        ]

    # -- reading ------------------------------------------------------------------------

    def _registrations(self) -> dict[uuid.UUID, Registration]:
        registrations = self.store.Registration
        rows = registrations.select().where(registrations.session_id == self.session.id)
        return {row.account_id: row for row in rows}

    def _find(self, query: str) -> list[Candidate]:
        bits = reference_bits(query)  # a reference, typed or scanned, in any of its spellings
        registrations = self._registrations()
        found = []
        accounts = self.store.Account
        for account in accounts.select().order_by(accounts.family_name, accounts.given_names):
            registration = registrations.get(account.id)
            candidate = self.candidate(account, registration)
            if (registration is not None and id_bits(registration.id) == bits) or self.matches(
                query,
                candidate.family_name,
                candidate.given_names,
                account.email,
                candidate.number or "",
            ):
                found.append(candidate)
        return found

    def _account(self, account_id: str) -> Account:
        try:
            accounts = self.store.Account
            account = accounts.get_or_none(accounts.id == uuid.UUID(str(account_id)))
        except ValueError:
            account = None
        if account is None:
            raise Refused.one("", "console.unknown_candidate")
        return account

    def _file(self, account_id: str) -> CandidateFile:
        account = self._account(account_id)
        registrations = self.store.Registration
        registration = registrations.get_or_none(
            registrations.account == account.id, registrations.session_id == self.session.id
        )
        return self.candidate_file(account, registration)

    def _registrations_at_a_glance(self) -> Iterator[tuple[datetime, str, str, str | None]]:
        registrations = self.store.Registration
        for row in registrations.select().where(registrations.session_id == self.session.id):
            yield row.saved_at, row.answers.get("specialty", ""), row.status, row.paper_status

    def _refused_items(self) -> tuple[RefusedItem, ...]:
        rows = self.store.OutboxRow
        refused = (
            rows.select()
            .where(rows.kind == "sync", rows.failed_at.is_null(False))
            .order_by(rows.failed_at.desc())
        )
        return tuple(
            RefusedItem(
                entity=str(row.payload.get("entity", "")),
                record_id=str(row.payload.get("id", "")),
                reason=refusal_reason(row.last_error),
                at=row.failed_at,
            )
            for row in refused
        )

    def _export_rows(self) -> Iterator[dict[str, Any]]:
        accounts = {a.id: a for a in self.store.Account.select()}
        for registration in self._registrations().values():
            account = accounts[registration.account_id]
            yield self.export_row(
                self.candidate(account, registration), registration.answers, registration.version
            )

    # -- the reception ------------------------------------------------------------------

    def _resend_code(self, account_id: str) -> None:
        account = self._account(account_id)
        if account.status != "pending":
            raise Refused.one("", "console.already_active")
        if account.origin != "kiosk":
            raise Refused.one("", "console.code_elsewhere")
        # Staff are told what the public screen keeps to itself: a code that still holds
        # was sent less than a minute ago, and no other goes before that minute is over.
        codes = self.store.OneTimeCode
        latest = (
            codes.select()
            .where(codes.account == account.id, codes.purpose == "activation")
            .order_by(codes.created_at.desc())
            .first()
        )
        now = self.clock.now()
        if latest is not None and latest.spent_at is None and latest.expires_at > now:
            wait = RESEND_INTERVAL - (now - latest.created_at)
            if wait > timedelta(0):
                raise Refused.one("", "code.resend_wait", wait=formatting.duration(wait))
        self.services.accounts.resend_activation(account.email)

    def _lift_delay(self, account_id: str) -> None:
        account = self._account(account_id)
        if not account.failed_logins and account.locked_until is None:
            raise Refused.one("", "console.not_locked")
        accounts = self.store.Account
        accounts.update(failed_logins=0, locked_until=None).where(
            accounts.id == account.id
        ).execute()

    def _reprint(self, account_id: str) -> PrintJob:
        account = self._account(account_id)
        documents = self.services.documents.documents(account)
        current = next((d for d in documents if not d.superseded), None)
        if current is None:
            raise Refused.one("", "console.nothing_to_print")
        return self.services.documents.print(account, current.id)

    # -- the exam office ----------------------------------------------------------------

    def _correct_identity(self, current: CandidateFile, identity: dict[str, str]) -> None:
        now = self.clock.now()
        registration = self.store.Registration.get_by_id(
            uuid.UUID(current.candidate.registration_id)
        )
        registration.answers = {**registration.answers, **identity}
        registration.touch(now)
        registration.save()
        account = self._account(current.candidate.account_id)
        account.family_name = identity["family_name"]
        account.given_names = identity["given_names"]
        account.touch(now)
        account.save()
