"""The kiosk's records, as peewee models over the local SQLite store.

The tables themselves are made by the SQL migrations beside this module; a test checks
that models and migrated schema agree. These classes are templates, bound to no
database: each store works with its own subclasses of them
(:class:`kiosk.store.database.KioskStore`), which are still instances of these for
``isinstance`` and type hints.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from peewee import (
    CharField,
    Field,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

from kiosk.clock import instant_from_text, instant_text
from kiosk.ids import new_id


class InstantField(Field):
    """A timezone-aware instant, stored as ISO 8601 text in UTC so that it sorts."""

    field_type = "TEXT"

    def db_value(self, value: datetime | None) -> str | None:
        return instant_text(value)

    def python_value(self, value: str | None) -> datetime | None:
        return instant_from_text(value)


class UUIDTextField(Field):
    """A UUID stored as its canonical text, readable in any SQL tool."""

    field_type = "TEXT"

    def db_value(self, value: uuid.UUID | str | None) -> str | None:
        return None if value is None else str(uuid.UUID(str(value)))

    def python_value(self, value: str | None) -> uuid.UUID | None:
        return None if value is None else uuid.UUID(value)


class JSONField(TextField):
    def db_value(self, value: object) -> str:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)

    def python_value(self, value: str | None) -> object:
        return None if value is None else json.loads(value)


class Record(Model):
    """Every record has a UUID made here, a version raised on each change, and timestamps."""

    id = UUIDTextField(primary_key=True, default=uuid.uuid4)
    version = IntegerField(default=1)
    created_at = InstantField()
    updated_at = InstantField()

    def touch(self, now: datetime) -> None:
        """Mark a change: the version goes up by one."""
        self.version += 1
        self.updated_at = now


class Account(Record):
    """A candidate's account: an e-mail address, a password, and whether it is active."""

    # Time-ordered (kiosk/ids.py): the rectorat's indexes by account take a push's
    # accounts side by side. A registration's id stays random: its reference, printed and
    # typed, is spelled from the id's first bits (reference_of).
    id = UUIDTextField(primary_key=True, default=new_id)
    email = TextField()
    email_key = TextField(unique=True)
    family_name = TextField()
    given_names = TextField()
    password_hash = TextField()
    status = CharField(default="pending")  # pending | active
    activated_at = InstantField(null=True)
    failed_logins = IntegerField(default=0)
    locked_until = InstantField(null=True)
    # « kiosk »: made here; « rectorat »: borrowed from the rectorat for a login.
    origin = CharField(default="kiosk")
    # The language of every mail to the account (kiosk.i18n.LANGUAGES), chosen at sign-up.
    language = CharField(default="fr")
    # Signed up here offline, its address found taken at the rectorat by another account.
    taken_elsewhere_at = InstantField(null=True)

    class Meta:
        table_name = "account"

    @property
    def display_name(self) -> str:
        return f"{self.given_names} {self.family_name}"


class OneTimeCode(Record):
    """A code sent by e-mail, to activate an account or reset its password; kept hashed."""

    account = ForeignKeyField(Account, backref="codes", on_delete="CASCADE")
    account_id: uuid.UUID  # the key itself, without reading the account (for type checkers)
    purpose = CharField()  # activation | reset
    code_hash = TextField()
    expires_at = InstantField()
    tries_left = IntegerField()
    spent_at = InstantField(null=True)
    link_hash = TextField(null=True)  # SHA-256 of the activation link's token, once mailed

    class Meta:
        table_name = "one_time_code"


class LoginFailure(Record):
    """One failed login at this kiosk, whatever the address, for the kiosk-wide cap."""

    class Meta:
        table_name = "login_failure"


class OutboxRow(Record):
    """Something to deliver outside the kiosk, written with the change that causes it."""

    kind = CharField()  # mail
    payload = JSONField()
    attempts = IntegerField(default=0)
    next_attempt_at = InstantField()
    delivered_at = InstantField(null=True)
    failed_at = InstantField(null=True)
    last_error = TextField(null=True)

    class Meta:
        table_name = "outbox"


# Crockford's base 32: a reference read aloud or typed from paper has no 0/O or 1/I/L.
_REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class Registration(Record):
    """A candidate's saved registration for one exam session; each saved change adds a version."""

    account = ForeignKeyField(Account, backref="registrations", on_delete="CASCADE")
    account_id: uuid.UUID
    session_id = CharField()
    answers = JSONField()
    status = CharField(default="registered")  # registered | withdrawn | set_aside
    saved_at = InstantField()
    withdrawn_at = InstantField(null=True)
    # Written by the rectorat only: its number, and what it made of the paper file.
    number = CharField(null=True)
    paper_status = CharField(null=True)  # received | complete | incomplete | validated
    missing_pieces = JSONField(null=True)
    origin = CharField(default="kiosk")
    # The version the rectorat was last known to hold, the base of the next change (0: it
    # has none yet; -1: not known, from a store of before it was kept).
    synced_version = IntegerField(default=0)

    class Meta:
        table_name = "registration"
        indexes = ((("account", "session_id"), True),)

    @property
    def reference(self) -> str:
        """The file's reference, printed and scanned on paper: ten characters from its UUID."""
        return reference_of(self.id)


def reference_of(record_id: uuid.UUID) -> str:
    """``ABCDE-FGHJK``: the top 50 bits of a registration's UUID, in Crockford's base 32."""
    bits = id_bits(record_id)
    chars = "".join(_REFERENCE_ALPHABET[(bits >> shift) & 31] for shift in range(45, -1, -5))
    return f"{chars[:5]}-{chars[5:]}"


# Typed from paper, O is a zero and I or L a one; a scanner sends the exact characters.
_READ_AS = str.maketrans("OIL", "011")


def reference_bits(text: str) -> int | None:
    """The 50 bits a typed or scanned reference stands for; ``None`` if it is not one."""
    chars = text.strip().upper().replace("-", "").replace(" ", "").translate(_READ_AS)
    if len(chars) != 10 or any(c not in _REFERENCE_ALPHABET for c in chars):
        return None
    bits = 0
    for char in chars:
        bits = bits << 5 | _REFERENCE_ALPHABET.index(char)
    return bits


def id_bits(record_id: uuid.UUID) -> int:
    """The 50 bits of a registration's UUID that its reference spells."""
    return record_id.int >> 78


def id_prefix(bits: int) -> str:
    """The start of the UUID text that a reference's 50 bits fix: its first 48 bits."""
    hexa = f"{bits >> 2:012x}"
    return f"{hexa[:8]}-{hexa[8:]}"


class Draft(Record):
    """What a candidate typed in the form and has not saved; theirs alone."""

    account = ForeignKeyField(Account, backref="drafts", on_delete="CASCADE")
    account_id: uuid.UUID
    session_id = CharField()
    values = JSONField()

    class Meta:
        table_name = "draft"
        indexes = ((("account", "session_id"), True),)


class AddressChange(Record):
    """A new postal address reported to the rectorat, also after the window has closed."""

    registration = ForeignKeyField(Registration, backref="address_changes", on_delete="CASCADE")
    registration_id: uuid.UUID
    address = JSONField()
    # When the exam office applied it (a change reported after the close), as pulled.
    applied_at = InstantField(null=True)

    class Meta:
        table_name = "address_change"


class Document(Record):
    """A PDF of « Mes documents »: the confirmation made for one version of a registration
    (a newer version supersedes it), the notice of an address change reported after the
    close, or a document the exam office published (listed once ``stored_at``)."""

    registration = ForeignKeyField(Registration, backref="documents", on_delete="CASCADE")
    registration_id: uuid.UUID
    registration_version = IntegerField()
    kind = CharField(default="confirmation")  # confirmation | address_notice | published
    # The address change a notice is of, the rectorat's id of a published document.
    source_id = TextField(default="")
    title = TextField(default="")  # a published document's, as the exam office gave it
    file_name = TextField()
    sha256 = TextField()
    size = IntegerField()
    superseded_at = InstantField(null=True)
    stored_at = InstantField(null=True)

    class Meta:
        table_name = "document"
        indexes = ((("registration", "registration_version", "kind", "source_id"), True),)


class StaffAccount(Record):
    """A member of the reception or the exam office; the kiosk's own, never a candidate's."""

    name = TextField(unique=True)
    role = CharField()  # reception | exam_office
    password_hash = TextField()
    failed_logins = IntegerField(default=0)
    locked_until = InstantField(null=True)
    disabled_at = InstantField(null=True)

    class Meta:
        table_name = "staff_account"


class StaffAudit(Record):
    """One line of the staff console's trail: who (``staff``, ``role``) did ``action`` on
    ``subject`` (an account or registration id), at ``created_at``; never a secret."""

    staff = TextField()
    role = CharField()
    action = CharField()
    subject = TextField(null=True)
    detail = TextField(default="")

    class Meta:
        table_name = "staff_audit"


class SyncState(Record):
    """What the kiosk remembers of its sync: the pull cursor, the last contact."""

    name = TextField(unique=True)
    value = TextField()

    class Meta:
        table_name = "sync_state"


MODELS: tuple[type[Record], ...] = (
    Account,
    OneTimeCode,
    LoginFailure,
    OutboxRow,
    Registration,
    Draft,
    AddressChange,
    Document,
    StaffAccount,
    StaffAudit,
    SyncState,
)
