"""The exam office's work on the rectorat's records: what no kiosk may change.

It sets a registration's paper status, sets a registration aside, corrects a locked
identity, applies an address change reported after the close, publishes a document for
a candidate, lifts an account's login delay, and settles the conflicts the push kept
aside. Each change is a row of the change feed, so the kiosks that hold the account
pull it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime

from peewee import fn

from kiosk.clock import Clock
from kiosk.pdf_check import pdf_problem, sha256_of
from kiosk.rectorat.identity import identity_key
from kiosk.rectorat.items import read_uuid
from kiosk.rectorat.kiosks import KioskIdentity
from kiosk.rectorat.rules import PushRules
from kiosk.rectorat.store import AddressChange, Conflict, Document, RectoratStore, Registration
from kiosk.registrations import ADDRESS_FIELDS
from kiosk.store.models import id_bits, id_prefix, reference_bits

PAPER_STATUSES = ("received", "complete", "incomplete", "validated")
RESOLUTIONS = ("keep_existing", "apply_incoming")


class ConflictNotApplied(ValueError):
    """``apply_incoming`` on a conflict whose item is still blocked (its e-mail is another
    account's, its account is missing…): nothing was changed."""


class NotPublished(ValueError):
    """A document refused for publication; ``reason``: ``empty``, ``too_large``,
    ``not_pdf`` (see :func:`kiosk.pdf_check.pdf_problem`), ``no_title`` or ``unknown_file``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


TITLE_MAX = 120


class ExamOffice:
    """The exam office's setters over one store; ``rules`` apply a conflict's item."""

    def __init__(self, store: RectoratStore, clock: Clock, rules: PushRules) -> None:
        self.store = store
        self.clock = clock
        self.rules = rules

    # -- registrations --------------------------------------------------------------------

    def set_paper_status(
        self,
        registration_id: uuid.UUID | str,
        status: str | None,
        missing: list[str] | None = None,
        now: datetime | None = None,
    ) -> None:
        """What the exam office made of the paper file; the kiosk shows it."""
        if status is not None and status not in PAPER_STATUSES:
            raise ValueError(f"paper status is one of {', '.join(PAPER_STATUSES)}")
        if missing is not None and (
            not isinstance(missing, list) or not all(isinstance(p, str) for p in missing)
        ):
            raise ValueError("missing pieces are a list of texts")
        self._set_registration(
            registration_id, {"paper_status": status, "missing_pieces": missing}, now
        )

    def set_aside(self, registration_id: uuid.UUID | str, now: datetime | None = None) -> None:
        """Set a registration aside: it no longer counts, and no kiosk can lift it."""
        self._set_registration(registration_id, {"status": "set_aside", "identity_key": None}, now)

    def _set_registration(
        self, registration_id: uuid.UUID | str, fields: dict, now: datetime | None
    ) -> None:
        m = self.store
        now = now or self.clock.now()
        key = read_uuid(registration_id, "registration_id")
        with self.store.write():
            registration = m.Registration.get_or_none(m.Registration.id == key)
            if registration is None:
                raise LookupError(f"no registration {key}")
            m.Registration.update(**fields).where(m.Registration.id == key).execute()
            self.rules.changed("registration", key, registration.account_id, now)

    def correct_identity(
        self,
        registration_id: uuid.UUID | str,
        identity: Mapping[str, str],
        now: datetime | None = None,
    ) -> None:
        """The exam office corrects a registration's locked identity: a new version, which
        the kiosks pull; refused (``IntegrityError``) when it would make one person twice."""
        m = self.store
        now = now or self.clock.now()
        key = read_uuid(registration_id, "registration_id")
        with self.store.write():
            registration = m.Registration.get_or_none(m.Registration.id == key)
            if registration is None:
                raise LookupError(f"no registration {key}")
            answers = {**registration.answers, **identity}
            fields = {"answers": answers, "version": registration.version + 1, "updated_at": now}
            if registration.status != "set_aside":
                fields["identity_key"] = identity_key(answers)
            m.Registration.update(**fields).where(m.Registration.id == key).execute()
            m.Account.update(
                family_name=identity["family_name"],
                given_names=identity["given_names"],
                version=m.Account.version + 1,
                updated_at=now,
            ).where(m.Account.id == registration.account_id).execute()
            self.rules.changed("registration", key, registration.account_id, now)
            self.rules.changed("account", registration.account_id, registration.account_id, now)

    def registration_by_code(self, code: str) -> Registration | None:
        """The registration with this number, or this reference (as typed or scanned)."""
        m = self.store
        code = code.strip()
        registration = m.Registration.get_or_none(m.Registration.number == code.upper())
        bits = reference_bits(code) if registration is None else None
        if bits is not None:
            # The column holds UUID text: its first 13 characters are the reference's top 48 bits.
            near = m.Registration.select().where(
                fn.SUBSTR(m.Registration.id, 1, 13) == id_prefix(bits)
            )
            registration = next((r for r in near if id_bits(r.id) == bits), None)
        return registration

    # -- address changes ------------------------------------------------------------------

    def address_changes(self, *, pending_only: bool = True) -> list[AddressChange]:
        """The address changes reported after the close, oldest first: the exam office's
        task list (those reported while the window was open changed the registration)."""
        m = self.store
        query = m.AddressChange.select().order_by(m.AddressChange.created_at)
        if pending_only:
            query = query.where(m.AddressChange.applied_at.is_null())
        return list(query)

    def apply_address_change(
        self, change_id: uuid.UUID | str, by: str, now: datetime | None = None
    ) -> Registration:
        """The registration takes the reported address: a new version, which the kiosks
        that hold the account pull, as they pull the change marked applied."""
        m = self.store
        now = now or self.clock.now()
        key = read_uuid(change_id, "address_change")
        with self.store.write():
            change = m.AddressChange.get_or_none(m.AddressChange.id == key)
            if change is None:
                raise LookupError(f"no address change {key}")
            if change.applied_at is not None:
                raise ValueError(f"address change {key} was applied already")
            registration = m.Registration.get_by_id(change.registration_id)
            # The address fields only, whatever else a kiosk's item carried.
            address = change.address if isinstance(change.address, dict) else {}
            answers = {
                **registration.answers,
                **{name: str(address.get(name) or "") for name in ADDRESS_FIELDS},
            }
            m.Registration.update(
                answers=answers, version=registration.version + 1, updated_at=now
            ).where(m.Registration.id == registration.id).execute()
            m.AddressChange.update(
                applied_at=now, applied_by=by, version=change.version + 1, updated_at=now
            ).where(m.AddressChange.id == key).execute()
            self.rules.changed("registration", registration.id, registration.account_id, now)
            self.rules.changed("address_change", key, registration.account_id, now)
            return m.Registration.get_by_id(registration.id)

    # -- documents for candidates ---------------------------------------------------------

    def publish(
        self, code: str, content: bytes, title: str, by: str, now: datetime | None = None
    ) -> Document:
        """Put a PDF at the disposal of the candidate whose file has this reference (or
        number); the kiosks that hold the account pull it. Raises :class:`NotPublished`."""
        m = self.store
        title = " ".join(title.split())[:TITLE_MAX]
        if not title:
            raise NotPublished("no_title")
        problem = pdf_problem(content)
        if problem is not None:
            raise NotPublished(problem)
        registration = self.registration_by_code(code)
        if registration is None:
            raise NotPublished("unknown_file")
        now = now or self.clock.now()
        digest = sha256_of(content)
        with self.store.write():
            m.DocumentContent.insert(sha256=digest, content=content).on_conflict_ignore().execute()
            document = m.Document.create(
                created_at=now,
                updated_at=now,
                account_id=registration.account_id,
                registration_id=registration.id,
                title=title,
                sha256=digest,
                size=len(content),
                published_by=by,
            )
            self.rules.changed("document", document.id, registration.account_id, now)
        return document

    def document_content(self, kiosk: KioskIdentity, sha256: str) -> bytes | None:
        """A published PDF's bytes, for a kiosk that holds one of the accounts it was
        published for (pushed first there, or borrowed); ``None`` otherwise."""
        m = self.store
        holders = (
            m.Document.select(m.Document.id)
            .join(m.Account, on=(m.Account.id == m.Document.account_id))
            .where(
                (m.Document.sha256 == sha256)
                & (
                    (m.Account.origin_kiosk_id == kiosk.id)
                    | m.Account.id.in_(
                        m.Interest.select(m.Interest.account_id).where(
                            m.Interest.kiosk_id == kiosk.id
                        )
                    )
                )
            )
        )
        if not holders.exists():
            return None
        row = m.DocumentContent.get_or_none(m.DocumentContent.sha256 == sha256)
        return None if row is None else bytes(row.content)

    # -- accounts -------------------------------------------------------------------------

    def lift_login_delay(self, account_id: uuid.UUID | str) -> bool:
        """Forget an account's failed logins elsewhere; whether there was anything to lift."""
        m = self.store
        with self.store.write():
            return bool(
                m.Account.update(failed_logins=0, locked_until=None)
                .where(
                    (m.Account.id == read_uuid(account_id, "account_id"))
                    & (m.Account.failed_logins > 0)
                )
                .execute()
            )

    # -- conflicts ------------------------------------------------------------------------

    def conflicts(self, *, open_only: bool = True) -> list[Conflict]:
        m = self.store
        query = m.Conflict.select().order_by(m.Conflict.created_at)
        if open_only:
            query = query.where(m.Conflict.resolved_at.is_null())
        return list(query)

    def resolve_conflict(
        self,
        conflict_id: uuid.UUID | str,
        resolution: str,
        *,
        by: str = "",
        now: datetime | None = None,
    ) -> dict:
        """Settle a conflict: ``keep_existing`` (the incoming item stays in the conflict,
        unapplied) or ``apply_incoming``. Applying a registration held for the same
        person sets the existing one aside first; an account held for its e-mail is
        applied only once that e-mail is free; a registration changed on both sides takes
        the kiosk's change as its newest version. Returns the push result of the apply."""
        m = self.store
        if resolution not in RESOLUTIONS:
            raise ValueError(f"a resolution is one of {', '.join(RESOLUTIONS)}")
        now = now or self.clock.now()
        key = read_uuid(conflict_id, "conflict")
        with self.store.write():
            conflict = m.Conflict.get_or_none(m.Conflict.id == key)
            if conflict is None:
                raise LookupError(f"no conflict {key}")
            if conflict.resolved_at is not None:
                raise ValueError(f"conflict {key} was resolved already ({conflict.resolution})")
            who = by or "exam_office"
            if resolution == "keep_existing":
                self.rules.close_conflict(conflict, resolution, who, now)
                return {"result": "kept"}
            if (
                conflict.entity == "registration"
                and conflict.kind == "identity"
                and conflict.existing_id
            ):
                self._set_aside_for(read_uuid(conflict.existing_id), now)
            kiosk_row = m.Kiosk.get_by_id(conflict.kiosk_id)
            kiosk = KioskIdentity(kiosk_row.id, kiosk_row.name)
            version = applied_as = conflict.version
            base = None
            here = m.Registration.get_or_none(m.Registration.id == conflict.entity_id)
            if conflict.kind == "version" and here is not None:
                # The kiosk's change goes on top of the version here, as a newer one.
                base = here.version
                applied_as = max(version, base + 1)
            # Set the conflict apart while its item is applied as if the kiosk pushed it
            # again (same checks, same rights); any failure below undoes all of this.
            conflict.version = 0
            conflict.save()
            outcome = self.rules.apply(
                kiosk,
                conflict.entity,
                conflict.entity_id,
                applied_as,
                conflict.incoming,
                now,
                base=base,
            )
            if outcome["result"] != "applied":
                raise ConflictNotApplied(f"conflict {key} cannot be applied yet: {outcome}")
            if base is not None and here is not None:
                # The exam office's version, not the kiosk's: a change the kiosk makes from
                # its own copy meanwhile is kept aside in turn.
                m.Registration.update(kiosk_versions=here.kiosk_versions).where(
                    m.Registration.id == here.id
                ).execute()
            conflict = m.Conflict.get_by_id(key)
            conflict.version = version
            self.rules.close_conflict(conflict, resolution, who, now)
        return outcome

    def _set_aside_for(self, registration_id: uuid.UUID, now: datetime) -> None:
        """The registration an identity conflict collides with, set aside (if it counts
        still), so that the incoming one can be applied."""
        m = self.store
        existing = m.Registration.get_or_none(m.Registration.id == registration_id)
        if existing is not None and existing.status != "set_aside":
            m.Registration.update(status="set_aside", identity_key=None).where(
                m.Registration.id == existing.id
            ).execute()
            self.rules.changed("registration", existing.id, existing.account_id, now)
