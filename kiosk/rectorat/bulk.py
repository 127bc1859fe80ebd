"""The set-based path of a push batch at the rectorat (:meth:`RectoratService.push`).

The common items of a batch, a new account and a new registration of an account the kiosk
holds, are read and checked in Python (from the typed structs of :mod:`kiosk.rectorat.wire`
when the whole body has the common shape, from decoded JSON otherwise: the same reading
either way), decided against a view of the store (one statement;
on PostgreSQL it is sent before the items are read, for the keys they show at a glance,
and a second reads the keys the reading found besides), and written with one bulk
statement per table: ``COPY`` on PostgreSQL (the rows are parsed once, not as thousands of
literals), a prepared ``executemany`` on SQLite. A record the store has already, sent
again at no newer version by a kiosk that holds its active account (a batch whose answer
was lost), is answered « stale » there too, its versions read by one more statement. The
first item that is anything else (an update, any other replay, a conflict, a deletion, an
address change, a duplicate in the batch…) ends the run: the service sends it down the
per-item path (:mod:`kiosk.rectorat.rules`), which looks at the store again, then starts a
new run after it. Either way an item gets the same result.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence, Set
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, NamedTuple, TypeGuard, cast

import msgspec
import peewee
from peewee import IntegrityError

from kiosk.clock import instant_text
from kiosk.exam_sessions import ExamSession
from kiosk.rectorat.identity import identity_key
from kiosk.rectorat.items import (
    ANSWERS_MAX,
    EMAIL_MAX,
    MAX_VERSION,
    REGISTRATION_STATUSES,
    SESSION_ID_MAX,
    TEXT_MAX,
    Invalid,
    account_fields,
    check_depth,
    read_envelope,
    read_instant,
    read_uuid,
    registration_fields,
    valid_base,
)
from kiosk.rectorat.kiosks import KioskIdentity
from kiosk.rectorat.rules import CANNOT_HOLD, FUTURE_TOLERANCE, PushRules
from kiosk.rectorat.store import json_text
from kiosk.rectorat.wire import AccountData, AccountItem, CommonItem, PushedBody, RegistrationData

log = logging.getLogger(__name__)

# str(uuid.UUID(text)) == text exactly for these: the id needs no round trip through UUID.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_BULK = ("account", "registration")
_CHUNK = 500  # SQLite: values bound in one statement, far below its limit
# How the view's statements are planned, for this push's transaction only (one statement,
# as pipeline mode asks). Each part is a few thousand index probes: on a large store the
# planner would run them in parallel workers, whose start costs more than the probes (43 ms
# against 10 on 200,000 accounts). And each is planned for its own keys: once the driver
# has prepared a statement, PostgreSQL may plan it once for any keys, and while the
# statistics lag behind the store's growth that plan scans whole tables, comparing each
# row with every key (1,000 items after small pushes: 165 ms rather than 29).
_VIEW_PLANNING = (
    "SELECT set_config('max_parallel_workers_per_gather', '0', true),"
    " set_config('plan_cache_mode', 'force_custom_plan', true)"
)
# COPY's text format: a backslash, tab, newline or carriage return inside a value is escaped.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")
_NULL = "\\N"
# An instant as the store writes it (ISO 8601, UTC, microseconds): kept as it came once
# the calendar has checked it. Such texts sort as their instants do.
_STORED_INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", re.ASCII)
# An ASCII address with one @, no space or control character: its key is it, lowered.
_PLAIN_EMAIL = re.compile(r"[^@\s\x00-\x1f]+@[^@\s\x00-\x1f]+", re.ASCII)

ACCOUNT_COLUMNS = (
    "id", "version", "created_at", "updated_at", "email", "email_key", "family_name", "given_names",
    "password_hash", "status", "activated_at", "failed_logins", "locked_until", "received_at",
    "origin_kiosk_id", "language",
)  # fmt: skip
REGISTRATION_COLUMNS = (
    "id", "version", "created_at", "updated_at", "account_id", "session_id", "answers", "status",
    "saved_at", "withdrawn_at", "identity_key", "number", "paper_status", "missing_pieces",
    "received_at", "kiosk_versions",
)  # fmt: skip
CHANGE_COLUMNS = ("entity", "entity_id", "account_id", "origin_kiosk_id", "created_at")
# A run's write that fails with these is decided again by the per-item path, item by item.
_PER_ITEM_AGAIN: tuple[type[Exception], ...] = (IntegrityError, *CANNOT_HOLD)


# -- an item, read (``position``: its index in the batch) ---------------------------------


class PlainItem(NamedTuple):
    """The envelope of an item in the shape every kiosk sends, its id kept as text."""

    entity: str
    key: str
    version: int
    data: Mapping[str, Any]
    base: int | None


class NewAccount(NamedTuple):
    """An account item, read: its fields as the store writes them (instants as text)."""

    position: int
    key: str
    version: int
    fields: dict


class NewRegistration(NamedTuple):
    """A registration item, read (its ``status`` in ``fields``, as pushed)."""

    position: int
    key: str
    version: int
    fields: dict
    identity: str | None  # its identity key, when the answers alone give it
    needs_names: bool  # the answers hold no names: the key is made with the account's
    base: int | None  # the version the kiosk changed (Envelope.base)


class Answered(NamedTuple):
    """An item whose envelope refuses it: ``result`` is its answer."""

    position: int
    shown_id: str
    result: dict


class Unreadable(NamedTuple):
    """An item of the bulk path whose data cannot be read."""

    position: int
    shown_id: str
    problem: Invalid


class PerItem(NamedTuple):
    """An entity the bulk path leaves to the per-item path: the run ends before it."""

    position: int


Parsed = NewAccount | NewRegistration | Answered | Unreadable | PerItem


# -- what a run decides ------------------------------------------------------------------


class Taken(NamedTuple):
    """A registration the run writes, in the session it names."""

    position: int
    key: str
    version: int
    fields: dict
    session: ExamSession


class FeedRow(NamedTuple):
    """A row of the change feed, without its instant. ``by_origin``: the pushing kiosk
    holds the account by origin, so the row carries its origin and the sequencer need not
    look the account up."""

    entity: str
    entity_id: str
    account_id: str
    by_origin: bool


class LateIdentity(NamedTuple):
    """An identity key made from the account's names, looked for once the run is decided."""

    position: int
    session_id: str
    identity: str


class Decision(NamedTuple):
    """An item's answer, and what the log says of it (``log.info``'s arguments) once the
    run is written."""

    position: int
    result: dict
    note: tuple[Any, ...] = ()


@dataclass
class Plan:
    """What a run writes and answers; ``stop`` is the index of the first item it leaves."""

    stop: int
    accounts: list[NewAccount] = field(default_factory=list)
    registrations: list[Taken] = field(default_factory=list)
    feed: list[FeedRow] = field(default_factory=list)  # in the batch's order
    late: list[LateIdentity] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)


# -- what the store holds ------------------------------------------------------------------


class Part(Enum):
    """A part of the view, and the tag its rows carry in the one statement that reads it."""

    ACCOUNTS = "a"  # id, family_name, given_names
    HELD_ACCOUNTS = "A"  # the same, of an account the kiosk holds by origin
    PENDING_ACCOUNTS = "p"  # the same, of a pending account: left to the per-item path
    EMAIL_OWNERS = "e"  # email_key, account id
    REGISTRATIONS = "r"  # id
    TOMBSTONES = "t"  # entity_id
    CONFLICTS = "c"  # entity_id
    HOLDS = "h"  # account id
    SESSION_ACCOUNTS = "s"  # session_id, identity_key, account_id
    SESSION_IDENTITIES = "i"  # session_id, identity_key
    # Of the records sent again, of accounts the kiosk holds; asked only for such a run:
    STORED_ACCOUNTS = "v"  # id, version
    STORED_REGISTRATIONS = "V"  # id, version, account id
    STORED_SESSIONS = "S"  # registration id, session_id


class ViewQuery(NamedTuple):
    """``SELECT tag, columns FROM table WHERE condition AND column IN values``; ``condition``
    holds ``{p}`` for each of ``fixed``, or ``{fixed}`` for all of them as one list; ``tag``
    is the part's tag, or an SQL expression that gives it per row."""

    part: Part
    columns: str  # three: NULL for those the part has not
    table: str
    condition: str
    fixed: tuple
    column: str
    values: Collection[str]
    tag: str = ""


@dataclass(frozen=True)
class ViewKeys:
    """The keys a view is read for. ``known``: the accounts whose holds and registrations
    matter, those that registrations refer to and the batch did not push before them."""

    item_ids: Set[str] = frozenset()
    accounts: Set[str] = frozenset()
    known: Set[str] = frozenset()
    email_keys: Set[str] = frozenset()
    registration_ids: Set[str] = frozenset()
    sessions: Set[str] = frozenset()
    stored_accounts: Set[str] = frozenset()  # accounts of the batch the store holds
    stored_registrations: Set[str] = frozenset()  # registrations of the batch it holds

    @classmethod
    def of_run(
        cls,
        account_ids: Set[str],
        known: Set[str],
        email_keys: Set[str],
        registration_ids: Set[str],
        sessions: Set[str],
    ) -> ViewKeys:
        """The keys of a run's accounts and registrations."""
        return cls(
            item_ids=account_ids | registration_ids,
            accounts=account_ids | known,
            known=known,
            email_keys=email_keys,
            registration_ids=registration_ids,
            sessions=sessions,
        )

    def beyond(self, asked: ViewKeys) -> ViewKeys:
        """These keys but those ``asked`` already, in all these sessions; every known
        account again when a session is new (its registrations there were not asked)."""
        return ViewKeys(
            item_ids=self.item_ids - asked.item_ids,
            accounts=self.accounts - asked.accounts,
            known=self.known if self.sessions - asked.sessions else self.known - asked.known,
            email_keys=self.email_keys - asked.email_keys,
            registration_ids=self.registration_ids - asked.registration_ids,
            sessions=self.sessions,
        )


class EarlyView(NamedTuple):
    """The view of ``keys``, asked before the items were read: its rows come on ``cursor``
    (psycopg's)."""

    keys: ViewKeys
    cursor: Any


@dataclass
class StoreView:
    """What the store holds of a run's keys; the run adds to it what it decides."""

    names: dict[str, tuple[str, str]] = field(default_factory=dict)  # account id: names
    email_owners: dict[str, str] = field(default_factory=dict)  # email key: account id
    registrations: set[str] = field(default_factory=set)
    tombstones: set[str] = field(default_factory=set)
    conflicted: set[str] = field(default_factory=set)  # items with a conflict, open or not
    holds: set[str] = field(default_factory=set)  # accounts the kiosk holds
    origins: set[str] = field(default_factory=set)  # those it holds by origin
    pending: set[str] = field(default_factory=set)  # stored accounts not activated yet
    taken_accounts: set[tuple[str, str]] = field(default_factory=set)  # (session, account)
    taken_identities: set[tuple[str, str]] = field(default_factory=set)  # (session, identity)
    # Of the records the batch sends again: their stored versions, and the account and
    # session of each registration.
    account_versions: dict[str, int] = field(default_factory=dict)
    registration_versions: dict[str, int] = field(default_factory=dict)
    account_of: dict[str, str] = field(default_factory=dict)
    session_of: dict[str, str] = field(default_factory=dict)

    def add(self, part: Part, first: Any, second: Any, third: Any) -> None:
        """One row of ``part``."""
        if part is Part.ACCOUNTS:
            self.names[first] = (second, third)
        elif part is Part.HELD_ACCOUNTS:
            self.names[first] = (second, third)
            self.holds.add(first)
            self.origins.add(first)
        elif part is Part.PENDING_ACCOUNTS:
            self.names[first] = (second, third)
            self.pending.add(first)
        elif part is Part.EMAIL_OWNERS:
            self.email_owners[first] = second
        elif part is Part.REGISTRATIONS:
            self.registrations.add(first)
        elif part is Part.TOMBSTONES:
            self.tombstones.add(first)
        elif part is Part.CONFLICTS:
            self.conflicted.add(first)
        elif part is Part.HOLDS:
            self.holds.add(first)
        elif part is Part.SESSION_ACCOUNTS:
            session_id, identity, account_id = first, second, third
            self.taken_accounts.add((session_id, account_id))
            if identity is not None:
                self.taken_identities.add((session_id, identity))
        elif part is Part.STORED_ACCOUNTS:
            self.account_versions[first] = int(second)
        elif part is Part.STORED_REGISTRATIONS:
            self.registration_versions[first] = int(second)
            self.account_of[first] = third
        elif part is Part.STORED_SESSIONS:
            self.session_of[first] = second
        else:
            self.taken_identities.add((first, second))


# -- the fast readers ----------------------------------------------------------------------


def _plain(item: object) -> PlainItem | None:
    """The envelope of an item in the shape every kiosk sends; ``None`` for anything
    else, which :func:`read_envelope` reads (and refuses, or not)."""
    if type(item) is not dict:
        return None
    entity, raw_id, version, data, base = (
        item.get("entity"),
        item.get("id"),
        item.get("version"),
        item.get("data"),
        item.get("base"),
    )
    if (
        entity in _BULK and type(raw_id) is str and _CANONICAL_UUID.fullmatch(raw_id) is not None
        and type(version) is int and 1 <= version <= MAX_VERSION and type(data) is dict
        and valid_base(base)
    ):  # fmt: skip
        return PlainItem(entity, raw_id, version, data, base)
    return None


def _instant_text(data: Mapping[str, Any], key: str, *, null: bool = False) -> str | None:
    """:func:`read_instant` as the text the store writes: most kiosks send exactly that
    text, which then needs no round trip through ``datetime``."""
    value = data.get(key)
    if type(value) is str and _STORED_INSTANT.fullmatch(value) is not None:
        try:
            datetime.fromisoformat(value)  # no 31 November, no 24:00
        except ValueError:
            raise Invalid(f"{key} is not an ISO 8601 instant") from None
        return value
    return instant_text(read_instant(data, key, null=null))


def _stored(moment: datetime) -> str:
    """An instant that is there, as the store writes it."""
    return cast(str, instant_text(moment))


def _fast_account(data: dict) -> dict | None:
    """:func:`account_fields` for the account every kiosk sends (texts in bounds, an ASCII
    e-mail), its instants checked already (:func:`_checked_instants`); ``None`` for
    anything else, which the full reader then reads (and refuses with its message, or not)."""
    get = data.get
    email, family, given, password_hash = (
        get("email"),
        get("family_name"),
        get("given_names"),
        get("password_hash"),
    )
    status, created, updated, activated = (
        get("status"),
        get("created_at"),
        get("updated_at"),
        get("activated_at"),
    )
    language = get("language", "fr")
    if not (
        type(email) is str and 0 < len(email) <= EMAIL_MAX and email.isascii()
        and _PLAIN_EMAIL.fullmatch(email) is not None
        and type(family) is str and 0 < len(family) <= TEXT_MAX and "\x00" not in family
        and type(given) is str and 0 < len(given) <= TEXT_MAX and "\x00" not in given
        and type(password_hash) is str and 0 < len(password_hash) <= TEXT_MAX
        and "\x00" not in password_hash
        and (status == "active" or status == "pending")
        and (language == "fr" or language == "en")
        and created is not None and updated is not None
    ):  # fmt: skip
        return None
    return _plain_account(
        created, updated, email, family, given, password_hash, status, activated, language
    )


def _plain_account(
    created: str, updated: str, email: str, family: str, given: str, password_hash: str,
    status: str, activated: str | None, language: str,
) -> dict:  # fmt: skip
    """An account's fields as a fast reader gives them, its values checked already."""
    # The key is the rectorat's (items.derived_email_key): an ASCII address, only lowered.
    return {
        "created_at": created, "updated_at": updated, "email": email, "email_key": email.lower(),
        "family_name": family, "given_names": given, "password_hash": password_hash,
        "status": status, "activated_at": activated, "language": language,
    }  # fmt: skip


_STATUSES = frozenset(REGISTRATION_STATUSES)
ANSWERS_TEXT = "answers_text"
"""The key of a registration's answers as the store writes them, when read already."""


def _fast_registration(data: dict) -> dict | None:
    """:func:`registration_fields` (its status in ``status``) for the registration every
    kiosk sends; ``None`` for anything else (see :func:`_fast_account`)."""
    read = _fast_registration_read(data)
    return None if read is None else read[0]


def _fast_registration_read(data: dict) -> tuple[dict, str] | None:
    """:func:`_fast_registration`, and the answers as the store writes them (made once:
    their size is checked on that text)."""
    get = data.get
    account_id, session_id, answers, status = (
        get("account_id"),
        get("session_id"),
        get("answers"),
        get("status"),
    )
    created, updated, saved, withdrawn = (
        get("created_at"),
        get("updated_at"),
        get("saved_at"),
        get("withdrawn_at"),
    )
    if not (
        type(account_id) is str and _CANONICAL_UUID.fullmatch(account_id) is not None
        and type(session_id) is str and 0 < len(session_id) <= SESSION_ID_MAX
        and "\x00" not in session_id
        and type(answers) is dict and type(status) is str and status in _STATUSES
        and created is not None and updated is not None and saved is not None
    ):  # fmt: skip
        return None
    answers_text = json_text(answers)  # nesting: checked on the whole data
    if len(answers_text) > ANSWERS_MAX:
        return None
    fields = _plain_registration(
        created, updated, account_id, session_id, answers, saved, withdrawn, status
    )
    return fields, answers_text


def _plain_registration(
    created: str, updated: str, account_id: str, session_id: str, answers: dict, saved: str,
    withdrawn: str | None, status: str,
) -> dict:  # fmt: skip
    """A registration's fields as a fast reader gives them (its status in ``status``), its
    values checked already."""
    return {
        "created_at": created, "updated_at": updated, "account_id": account_id,
        "session_id": session_id, "answers": answers, "saved_at": saved,
        "withdrawn_at": withdrawn, "status": status,
    }  # fmt: skip


def _checked_instants(data: dict, keys: tuple[str, ...], instants: set[str]) -> bool:
    """Whether each value under ``keys`` is ``None`` or an instant as the store writes it,
    a real date; ``instants`` holds the texts checked already (a batch repeats many)."""
    for key in keys:
        value = data.get(key)
        if value is not None and (type(value) is not str or not _stored_instant(value, instants)):
            return False
    return True


def _stored_instant(value: str, instants: set[str]) -> bool:
    """Whether ``value`` is an instant as the store writes it, a real date (see
    :func:`_checked_instants`)."""
    if value not in instants:
        if _STORED_INSTANT.fullmatch(value) is None:
            return False
        try:
            datetime.fromisoformat(value)  # no 31 November, no 24:00
        except ValueError:
            return False
        instants.add(value)
    return True


_ACCOUNT_INSTANTS = ("created_at", "updated_at", "activated_at")
_REGISTRATION_INSTANTS = ("created_at", "updated_at", "saved_at", "withdrawn_at")


def _uuid_text(value: object, what: str) -> str:
    """:func:`read_uuid` as its canonical text, which most ids already are."""
    if type(value) is str and _CANONICAL_UUID.fullmatch(value) is not None:
        return value
    return str(read_uuid(value, what))


def _read_account(data: Mapping[str, Any], instants: set[str]) -> dict:
    fast = type(data) is dict and _checked_instants(data, _ACCOUNT_INSTANTS, instants)
    fields = _fast_account(cast(dict, data)) if fast else None
    return fields if fields is not None else account_fields(data, _instant_text)


def _read_registration(data: Mapping[str, Any], instants: set[str]) -> dict:
    fast = type(data) is dict and _checked_instants(data, _REGISTRATION_INSTANTS, instants)
    read = _fast_registration_read(cast(dict, data)) if fast else None
    if read is None:
        fields, status = registration_fields(data, _instant_text, _uuid_text)
        fields["status"] = status
        return fields
    fields, fields[ANSWERS_TEXT] = read[0], read[1]
    return fields


def _typed_account(data: AccountData, instants: set[str]) -> dict:
    """:func:`_read_account` of a typed account (:mod:`kiosk.rectorat.wire`), its types
    and bounds checked already, and no NUL in its body."""
    email, created, updated, activated = (
        data.email,
        data.created_at,
        data.updated_at,
        data.activated_at,
    )
    if not (
        email.isascii() and _PLAIN_EMAIL.fullmatch(email) is not None
        and _stored_instant(created, instants) and _stored_instant(updated, instants)
        and (activated is None or _stored_instant(activated, instants))
    ):  # fmt: skip
        return account_fields(msgspec.structs.asdict(data), _instant_text)
    return _plain_account(
        created, updated, email, data.family_name, data.given_names, data.password_hash,
        data.status, activated, data.language,
    )  # fmt: skip


def _typed_registration(data: RegistrationData, instants: set[str]) -> dict:
    """:func:`_read_registration` of a typed registration (see :func:`_typed_account`)."""
    answers = data.answers  # of a bounded depth (AnswerValue)
    created, updated, saved, withdrawn = (
        data.created_at,
        data.updated_at,
        data.saved_at,
        data.withdrawn_at,
    )
    if (
        _stored_instant(created, instants) and _stored_instant(updated, instants)
        and _stored_instant(saved, instants)
        and (withdrawn is None or _stored_instant(withdrawn, instants))
    ):  # fmt: skip
        answers_text = json_text(answers)
        if len(answers_text) <= ANSWERS_MAX:
            fields = _plain_registration(
                created, updated, data.account_id, data.session_id, answers, saved, withdrawn,
                data.status,
            )  # fmt: skip
            fields[ANSWERS_TEXT] = answers_text
            return fields
    fields, fields["status"] = registration_fields(
        msgspec.structs.asdict(data), _instant_text, _uuid_text
    )
    return fields


def _new_registration(
    index: int, key: str, version: int, base: int | None, fields: dict
) -> NewRegistration:
    """A registration, read: its identity key from the answers alone, or later with the
    account's names."""
    answers = fields["answers"]
    needs_names = not (answers.get("family_name") and answers.get("given_names"))
    identity = None if needs_names else identity_key(answers)
    return NewRegistration(index, key, version, fields, identity, needs_names, base)


@dataclass
class _Glance:
    """The keys of the items seen so far, at a glance (see :func:`_keys_at_a_glance`)."""

    accounts: set[str] = field(default_factory=set)
    known: set[str] = field(default_factory=set)
    email_keys: set[str] = field(default_factory=set)
    registrations: set[str] = field(default_factory=set)
    sessions: set[str] = field(default_factory=set)

    def account(self, key: str, email: str | None) -> None:
        self.accounts.add(key)
        if email is not None:
            self.email_keys.add(email.lower())

    def registration(self, key: str, account_id: str | None, session_id: str | None) -> None:
        self.registrations.add(key)
        if account_id is not None and account_id not in self.accounts:
            self.known.add(account_id)
        if session_id is not None:
            self.sessions.add(session_id)

    def keys(self) -> ViewKeys:
        return ViewKeys.of_run(
            self.accounts, self.known, self.email_keys, self.registrations, self.sessions
        )


def _typed_keys_at_a_glance(items: Sequence[CommonItem], start: int) -> ViewKeys:
    """:func:`_keys_at_a_glance` of typed items."""
    glance = _Glance()
    for index in range(start, len(items)):
        item = items[index]
        if type(item) is AccountItem:
            glance.account(item.id, item.data.email)
        else:
            data = cast(RegistrationData, item.data)
            glance.registration(item.id, data.account_id, data.session_id)
    return glance.keys()


def _keys_at_a_glance(items: Sequence[Any], start: int) -> ViewKeys:
    """The keys that the items from ``start`` show before they are read, up to the first
    one that is neither an account nor a registration (where the run ends). The reading may
    find keys besides (an address written otherwise): those are read after it. A text the
    store cannot hold (a NUL) is no key: its item is refused."""
    glance = _Glance()
    for index in range(start, len(items)):
        item = items[index]
        if type(item) is not dict:
            continue
        entity, key, data = item.get("entity"), item.get("id"), item.get("data")
        if entity not in _BULK:
            break
        if not _storable(key) or type(data) is not dict:
            continue
        if entity == "account":
            glance.account(key, _storable_or_none(data.get("email")))
        else:
            glance.registration(
                key,
                _storable_or_none(data.get("account_id")),
                _storable_or_none(data.get("session_id")),
            )
    return glance.keys()


def _storable_or_none(value: object) -> str | None:
    return value if _storable(value) else None


def _storable(value: object) -> TypeGuard[str]:
    return type(value) is str and "\x00" not in value


def _per_session(compute: Callable[[ExamSession], str]) -> Callable[[ExamSession], str]:
    """``compute`` once per session of a batch (a batch is mostly one session)."""
    known: dict[int, str] = {}

    def value(session: ExamSession) -> str:
        found = known.get(id(session))
        if found is None:
            found = known[id(session)] = compute(session)
        return found

    return value


def _pg_array(values: Collection[str]) -> str:
    """A text[] literal: one value that PostgreSQL parses at once, where psycopg2 would send
    a list as ``ARRAY['…', …]``, one expression per element to analyse and fold. Ids and
    keys seldom hold a quote or a backslash: then only the separators are written (the
    order is PostgreSQL's business: it sorts the keys of an index scan itself)."""
    if not values:
        return "{}"
    if '"' in (joined := "\x00".join(values)) or "\\" in joined:
        values = [v.replace("\\", "\\\\").replace('"', '\\"') for v in values]
    return '{"' + '","'.join(values) + '"}'


def _copy_escaped(text: str) -> str:
    return text if _COPY_SPECIAL.search(text) is None else text.translate(_COPY_ESCAPES)


def _same(text: str) -> str:
    return text


class BatchPath:
    """The bulk path over the store of one set of push rules."""

    def __init__(self, rules: PushRules) -> None:
        self.rules = rules
        self.db = rules.db
        self.postgresql = rules.store.postgresql

    # -- one run ---------------------------------------------------------------------------

    def run(
        self,
        kiosk: KioskIdentity,
        items: Sequence[Any],
        start: int,
        now: datetime,
        results: list[dict | None],
    ) -> int:
        """Decide and write items from ``start`` while they are simple; returns the index
        of the first item that needs the per-item path (or ``len(items)``)."""
        typed = items.typed if isinstance(items, PushedBody) else None
        with self._asked_early(kiosk, items, start) as early:
            parsed = self._parse(items, start) if typed is None else self._parse_typed(typed, start)
        view = self._look_up(kiosk, parsed, early)
        plan = self._decide(kiosk, parsed, view, now, stop=start + len(parsed))
        if plan.late:
            # Identities made from the account's names: looked for now, and the run
            # ends before the first one the store already holds.
            clash = self._view(
                kiosk,
                ViewKeys(sessions={late.session_id for late in plan.late}),
                {late.identity for late in plan.late},
            ).taken_identities
            bad = [late.position for late in plan.late if (late.session_id, late.identity) in clash]
            if bad:
                return self._retry_before(kiosk, items, start, min(bad), now, results)
        if plan.accounts or plan.registrations:
            try:
                with self.db.atomic():
                    escapes = not isinstance(items, PushedBody) or items.escapes
                    self._write(kiosk, plan, now, escapes=escapes)
            except _PER_ITEM_AGAIN:
                # Another kiosk's transaction committed the same record or key since the
                # view was read, or a value the store cannot hold slipped through the
                # readers: the per-item path looks again, item by item.
                for decision in plan.decisions:
                    results[decision.position] = self.rules.push_item(
                        kiosk, items[decision.position], now
                    )
                return plan.stop
        for decision in plan.decisions:
            if decision.note:
                log.info(*decision.note)
            results[decision.position] = decision.result
        return plan.stop

    def _retry_before(
        self,
        kiosk: KioskIdentity,
        items: Sequence[Any],
        start: int,
        first_bad: int,
        now: datetime,
        results: list[dict | None],
    ) -> int:
        """An identity already taken in the store at ``first_bad``: decide up to it."""
        return self.run(kiosk, items[:first_bad], start, now, results)

    def _parse(self, items: Sequence[Any], start: int) -> list[Parsed]:
        """Each item from ``start``, read, up to the first :class:`PerItem` one."""
        parsed: list[Parsed] = []
        instants: set[str] = set()  # instant texts checked already
        for index in range(start, len(items)):
            item = items[index]
            plain = _plain(item)
            if plain is None:
                shown_id, read = read_envelope(item)
                if isinstance(read, dict):
                    parsed.append(Answered(index, shown_id, read))
                    continue
                if read.entity not in _BULK:
                    parsed.append(PerItem(index))
                    break
                plain = PlainItem(read.entity, shown_id, read.version, read.data, read.base)
            else:
                try:
                    check_depth(plain.data)  # read_envelope's, for the items it did not read
                except Invalid as problem:
                    parsed.append(Unreadable(index, plain.key, problem))
                    continue
            try:
                if plain.entity == "account":
                    fields = _read_account(plain.data, instants)
                    parsed.append(NewAccount(index, plain.key, plain.version, fields))
                else:
                    fields = _read_registration(plain.data, instants)
                    parsed.append(
                        _new_registration(index, plain.key, plain.version, plain.base, fields)
                    )
            except Invalid as problem:
                parsed.append(Unreadable(index, plain.key, problem))
        return parsed

    @staticmethod
    def _parse_typed(items: Sequence[CommonItem], start: int) -> list[Parsed]:
        """:meth:`_parse` of typed items (:mod:`kiosk.rectorat.wire`): all of them."""
        parsed: list[Parsed] = []
        instants: set[str] = set()
        for index in range(start, len(items)):
            item = items[index]
            try:
                if type(item) is AccountItem:
                    fields = _typed_account(item.data, instants)
                    parsed.append(NewAccount(index, item.id, item.version, fields))
                else:
                    fields = _typed_registration(cast(RegistrationData, item.data), instants)
                    parsed.append(
                        _new_registration(index, item.id, item.version, item.base, fields)
                    )
            except Invalid as problem:
                parsed.append(Unreadable(index, item.id, problem))
        return parsed

    def _look_up(
        self, kiosk: KioskIdentity, parsed: list[Parsed], early: EarlyView | None = None
    ) -> StoreView:
        """The view of the store that the run's items need: what ``early`` asked for
        already, and the rest."""
        account_ids: set[str] = set()  # the batch's accounts
        # Accounts that registrations refer to and the batch did not push before them:
        # only those can be held, or registered already, at the rectorat.
        known: set[str] = set()
        email_keys: set[str] = set()
        registration_ids: set[str] = set()
        registration_accounts: dict[str, str] = {}  # registration id: its account
        sessions: set[str] = set()
        identities: set[str] = set()
        for entry in parsed:
            if isinstance(entry, NewAccount):
                account_ids.add(entry.key)
                email_keys.add(entry.fields["email_key"])
            elif isinstance(entry, NewRegistration):
                registration_ids.add(entry.key)
                registration_accounts[entry.key] = entry.fields["account_id"]
                if entry.fields["account_id"] not in account_ids:
                    known.add(entry.fields["account_id"])
                sessions.add(entry.fields["session_id"])
                if entry.identity:
                    identities.add(entry.identity)
        needed = ViewKeys.of_run(account_ids, known, email_keys, registration_ids, sessions)
        if early is None:
            view = self._view(kiosk, needed, identities)
        else:
            # The early statement read the keys seen at a glance; those the items turned
            # out to have besides (an address written otherwise, a session more) are read now.
            with peewee.__exception_wrapper__:  # type: ignore[attr-defined]
                rows = early.cursor.fetchall()
            view = self._view(kiosk, needed.beyond(early.keys), identities)
            for tag, first, second, third in rows:
                view.add(Part(tag), first, second, third)
        # Records the store has already, of accounts the kiosk holds: a batch sent again,
        # its answer lost on the way. Their versions are read (one more statement, for a
        # run that holds such records only), so that what is no newer is answered here too.
        again = ViewKeys(
            stored_accounts={key for key in account_ids & view.names.keys() if key in view.holds},
            stored_registrations={
                key
                for key in registration_ids & view.registrations
                if registration_accounts[key] in view.holds
            },
        )
        if again.stored_accounts or again.stored_registrations:
            self._view(kiosk, again, into=view)
        return view

    @contextmanager
    def _asked_early(
        self, kiosk: KioskIdentity, items: Sequence[Any], start: int
    ) -> Iterator[EarlyView | None]:
        """PostgreSQL: the view of the keys the items show at a glance, sent before the
        block reads them (psycopg's pipeline mode): the server reads the store while the
        items are read here. Its rows are there once the block is over."""
        if not self.postgresql:
            keys = ViewKeys()
        elif isinstance(items, PushedBody):
            keys = _typed_keys_at_a_glance(items.typed, start)
        else:
            keys = _keys_at_a_glance(items, start)
        queries = self._queries(kiosk, keys)
        if not queries:  # SQLite, or nothing to look for
            yield None
            return
        connection = self.db.connection()
        # The driver's errors as peewee's, the pipeline's sync at the end of the block included.
        with peewee.__exception_wrapper__, connection.pipeline():  # type: ignore[attr-defined]
            connection.execute(_VIEW_PLANNING)
            cursor = connection.execute(*self._statement(queries))
            yield EarlyView(keys, cursor)

    def _decide(
        self,
        kiosk: KioskIdentity,
        parsed: list[Parsed],
        view: StoreView,
        now: datetime,
        stop: int,
    ) -> Plan:
        """The answer of each item as the per-item path would give it, until the first
        one that path must decide; ``view`` takes in what the run writes."""
        plan = Plan(stop)
        seen: set[str] = set()  # the run's records
        latest = _stored(now + FUTURE_TOLERANCE)  # instants here are texts that sort as instants
        closing = _per_session(lambda session: _stored(session.closes))
        sessions: dict[str, ExamSession | None] = {}  # a batch is mostly one session
        # Accounts sent again in this run: the view has not read their registrations in
        # the sessions, nor their holds by interest (only ``known`` accounts'), so any other
        # registration of theirs is left to the per-item path.
        sent_again: set[str] = set()
        for entry in parsed:
            if isinstance(entry, PerItem):
                plan.stop = entry.position
                break
            if isinstance(entry, Answered):
                result = {"id": entry.shown_id, **entry.result}
                why = entry.result.get("detail", entry.result["reason"])
                note: tuple[Any, ...] = (
                    "kiosk %s: item %s refused (%s)",
                    kiosk.name,
                    entry.shown_id,
                    why,
                )
                plan.decisions.append(Decision(entry.position, result, note))
                continue
            if isinstance(entry, Unreadable):
                result = {
                    "id": entry.shown_id,
                    "result": "refused",
                    "reason": "invalid",
                    "detail": str(entry.problem),
                }
                note = (
                    "kiosk %s pushed an invalid item %s: %s",
                    kiosk.name,
                    entry.shown_id,
                    entry.problem,
                )
                plan.decisions.append(Decision(entry.position, result, note))
                continue
            key, fields = entry.key, entry.fields
            if key in seen or key in view.conflicted or key in view.tombstones:
                plan.stop = entry.position
                break
            if isinstance(entry, NewAccount):
                # Versions were read for stored accounts the kiosk holds only (_look_up).
                stored = view.account_versions.get(key)
                if stored is not None and entry.version <= stored:
                    seen.add(key)  # sent again: what the per-item path answers
                    sent_again.add(key)
                    plan.decisions.append(Decision(entry.position, {"id": key, "result": "stale"}))
                    continue
                if key in view.names or fields["email_key"] in view.email_owners:
                    plan.stop = entry.position
                    break
                seen.add(key)
                view.names[key] = (fields["family_name"], fields["given_names"])
                view.email_owners[fields["email_key"]] = key
                view.holds.add(key)
                view.origins.add(key)
                plan.accounts.append(entry)
                plan.feed.append(FeedRow("account", key, key, True))
                plan.decisions.append(Decision(entry.position, {"id": key, "result": "applied"}))
                continue
            account_id, session_id = fields["account_id"], fields["session_id"]
            if key in view.registrations:
                stored = view.registration_versions.get(key)
                if (
                    stored is not None and entry.version <= stored
                    and entry.base in (None, stored)  # else the per-item rules look closer
                    and view.account_of.get(key) == account_id
                    and account_id in view.holds
                    and view.session_of.get(key) == session_id
                ):  # fmt: skip
                    seen.add(key)  # sent again, to the same account and session: stale
                    plan.decisions.append(Decision(entry.position, {"id": key, "result": "stale"}))
                    continue
                plan.stop = entry.position
                break
            if account_id in sent_again:
                plan.stop = entry.position
                break
            if session_id in sessions:
                session = sessions[session_id]
            else:
                session = sessions[session_id] = self.rules.session(session_id)
            refusal = None
            account_names = None
            if session is None:
                refusal = "session"
            else:
                acted_at = max(fields["saved_at"], fields["withdrawn_at"] or fields["saved_at"])
                if acted_at >= closing(session):
                    refusal = "closed"
                elif acted_at > latest:
                    refusal = "future"
            if refusal is None:
                account_names = view.names.get(account_id)
                if account_names is None or account_id in view.pending:
                    plan.stop = entry.position
                    break
                if account_id not in view.holds:
                    refusal = "forbidden"
            if refusal is not None or session is None or account_names is None:
                note = ("kiosk %s: %s %s refused (%s)", kiosk.name, "registration", key, refusal)
                result = {"id": key, "result": "refused", "reason": refusal}
                plan.decisions.append(Decision(entry.position, result, note))
                continue
            # The status set_aside is the rectorat's: never taken from a kiosk.
            if fields["status"] == "set_aside":
                fields["status"] = "registered"
            identity = (
                identity_key(fields["answers"], *account_names)
                if entry.needs_names
                else entry.identity
            )
            fields["identity_key"] = identity
            if (session_id, account_id) in view.taken_accounts or (
                identity is not None and (session_id, identity) in view.taken_identities
            ):
                plan.stop = entry.position
                break
            if entry.needs_names and identity is not None:
                plan.late.append(LateIdentity(entry.position, session_id, identity))
            seen.add(key)
            view.taken_accounts.add((session_id, account_id))
            if identity is not None:
                view.taken_identities.add((session_id, identity))
            plan.registrations.append(Taken(entry.position, key, entry.version, fields, session))
            plan.feed.append(FeedRow("registration", key, account_id, account_id in view.origins))
            plan.decisions.append(Decision(entry.position, {"id": key, "result": "applied"}))
        return plan

    # -- reading the view ------------------------------------------------------------------

    def _view(
        self,
        kiosk: KioskIdentity,
        keys: ViewKeys,
        identities: Collection[str] = (),
        *,
        into: StoreView | None = None,
    ) -> StoreView:
        """What the store holds of ``keys`` (:class:`ViewKeys`), and the registrations of
        these ``identities`` in the keys' sessions: a new view, or added to ``into``."""
        view = StoreView() if into is None else into
        queries = self._queries(kiosk, keys, identities)
        if not queries:
            return view
        if self.postgresql:
            self.db.execute_sql(_VIEW_PLANNING)
            rows = self.db.execute_sql(*self._statement(queries)).fetchall()
        else:
            rows = []
            p = self.db.param
            for query in queries:
                values = sorted(query.values)
                marks = ", ".join([p] * len(query.fixed))
                where = query.condition.format(p=p, fixed=f"IN ({marks})")
                for at in range(0, len(values), _CHUNK):
                    chunk = values[at : at + _CHUNK]
                    among = f"{query.column} IN ({', '.join([p] * len(chunk))})"
                    condition = f"{where} AND {among}" if where else among
                    sql = (
                        f"SELECT {query.tag or repr(query.part.value)}, {query.columns}"
                        f" FROM {query.table}"
                        f" WHERE {condition}"
                    )
                    rows.extend(self.db.execute_sql(sql, (*query.fixed, *chunk)).fetchall())
        for tag, first, second, third in rows:
            view.add(Part(tag), first, second, third)
        return view

    def _queries(
        self, kiosk: KioskIdentity, keys: ViewKeys, identities: Collection[str] = ()
    ) -> list[ViewQuery]:
        """The parts of the view that these keys need: tombstones and conflicts of the
        items, the accounts (id, names, and whether the kiosk holds them by origin), owners
        of the e-mail keys, the registrations, the kiosk's holds by interest among ``known``
        accounts, registrations of ``known`` accounts in the sessions, registrations of
        these ``identities`` in the sessions."""
        in_sessions = tuple(sorted(keys.sessions))
        by_kiosk = (kiosk.id,)
        # The accounts the kiosk holds by origin come with their names: one probe each.
        held_by_origin = (
            f"CASE WHEN status = 'pending' THEN '{Part.PENDING_ACCOUNTS.value}'"
            f" WHEN origin_kiosk_id = {int(kiosk.id)} THEN '{Part.HELD_ACCOUNTS.value}'"
            f" ELSE '{Part.ACCOUNTS.value}' END"
        )
        known = keys.known
        # part, its three columns, table, condition, its fixed values, column, values it may hold
        queries = [
            ViewQuery(Part.ACCOUNTS, "id, family_name, given_names", "rc_account",
                      "", (), "id", keys.accounts, held_by_origin),
            ViewQuery(Part.EMAIL_OWNERS, "email_key, id, NULL", "rc_account",
                      "", (), "email_key", keys.email_keys),
            ViewQuery(Part.REGISTRATIONS, "id, NULL, NULL", "rc_registration",
                      "", (), "id", keys.registration_ids),
            ViewQuery(Part.TOMBSTONES, "entity_id, NULL, NULL", "rc_tombstone",
                      "", (), "entity_id", keys.item_ids),
            ViewQuery(Part.CONFLICTS, "entity_id, NULL, NULL", "rc_conflict",
                      "", (), "entity_id", keys.item_ids),
            ViewQuery(Part.HOLDS, "account_id, NULL, NULL", "rc_interest",
                      "kiosk_id = {p}", by_kiosk, "account_id", known),
            ViewQuery(Part.SESSION_ACCOUNTS, "session_id, identity_key, account_id",
                      "rc_registration", "session_id {fixed}", in_sessions, "account_id", known),
            ViewQuery(Part.SESSION_IDENTITIES, "session_id, identity_key, NULL",
                      "rc_registration", "session_id {fixed}", in_sessions, "identity_key",
                      identities),
            ViewQuery(Part.STORED_ACCOUNTS, "id, CAST(version AS TEXT), NULL", "rc_account",
                      "", (), "id", keys.stored_accounts),
            ViewQuery(Part.STORED_REGISTRATIONS, "id, CAST(version AS TEXT), account_id",
                      "rc_registration", "", (), "id", keys.stored_registrations),
            ViewQuery(Part.STORED_SESSIONS, "id, session_id, NULL", "rc_registration",
                      "", (), "id", keys.stored_registrations),
        ]  # fmt: skip
        return [q for q in queries if q.values and ("{fixed}" not in q.condition or q.fixed)]

    @staticmethod
    def _statement(queries: list[ViewQuery]) -> tuple[str, dict[str, object]]:
        """PostgreSQL: the queries as one statement, one round trip. Each list goes as one
        array literal, and once (named parameters: the items' ids serve two parts, the
        sessions two more, and so do the ids of registrations sent again)."""
        parts, params = [], {}
        names: dict[int, str] = {}

        def named(value: object) -> str:
            name = names.get(id(value))
            if name is None:
                name = names[id(value)] = f"v{len(names)}"
                listed = isinstance(value, (set, frozenset, tuple, list))
                params[name] = _pg_array(cast(Collection[str], value)) if listed else value
            return f"%({name})s"

        for query in queries:
            if "{fixed}" in query.condition:
                where = query.condition.format(fixed=f"= ANY({named(query.fixed)}::text[])")
            elif query.fixed:
                where = query.condition.format(p=named(query.fixed[0]))
            else:
                where = query.condition
            among = f"{query.column} = ANY({named(query.values)}::text[])"
            parts.append(
                f"SELECT {query.tag or repr(query.part.value)}, {query.columns}"
                f" FROM {query.table}"
                f" WHERE {where + ' AND ' if where else ''}{among}"
            )
        return " UNION ALL ".join(parts), params

    # -- writing ---------------------------------------------------------------------------

    def _write(self, kiosk: KioskIdentity, plan: Plan, now: datetime, *, escapes: bool) -> None:
        """Write ``plan``; ``escapes``: whether a text of the items, as they came, may hold
        a character that COPY's text format escapes (see :attr:`PushedBody.escapes`)."""
        stamp, origin = _stored(now), str(kiosk.id)  # the kiosk that pushes an account holds it
        numbers = self.rules.numbering.take([taken.session for taken in plan.registrations])
        # COPY reads text: NULL is \N, free texts are escaped. The other values (ids,
        # instants, statuses, numbers, identity keys) were checked and cannot hold a
        # character COPY would read otherwise.
        null, escaped = (
            (_NULL, _copy_escaped if escapes else _same) if self.postgresql else (None, _same)
        )
        # The e-mail key is made here, not sent: IDNA's NFKC makes a backslash of « ＼ »
        # (U+FF3C) in a domain, whatever the body held.
        derived = _copy_escaped if self.postgresql else _same

        def account_row(account: NewAccount) -> tuple:  # in ACCOUNT_COLUMNS' order
            f = account.fields
            return (
                account.key, str(account.version), f["created_at"], f["updated_at"],
                escaped(f["email"]), derived(f["email_key"]), escaped(f["family_name"]),
                escaped(f["given_names"]), escaped(f["password_hash"]), f["status"],
                f["activated_at"] or null, "0", null, stamp, origin, f["language"],
            )  # fmt: skip

        def registration_row(taken: Taken, number: str) -> tuple:  # REGISTRATION_COLUMNS'
            f = taken.fields
            return (
                taken.key, str(taken.version), f["created_at"], f["updated_at"], f["account_id"],
                f["session_id"], escaped(f.get(ANSWERS_TEXT) or json_text(f["answers"])),
                f["status"], f["saved_at"],
                f["withdrawn_at"] or null, f["identity_key"] or null, number, null, null, stamp,
                json_text({origin: taken.version}),
            )  # fmt: skip

        def accounts() -> list[tuple]:
            return [account_row(account) for account in plan.accounts]

        def registrations() -> list[tuple]:
            return [
                registration_row(taken, number)
                for taken, number in zip(plan.registrations, numbers, strict=True)
            ]

        def feed() -> list[tuple]:  # CHANGE_COLUMNS'
            return [
                (row.entity, row.entity_id, row.account_id, origin if row.by_origin else null,
                 stamp)
                for row in plan.feed
            ]  # fmt: skip

        self._insert(
            [
                ("rc_account", ACCOUNT_COLUMNS, accounts),
                ("rc_registration", REGISTRATION_COLUMNS, registrations),
                ("rc_change", CHANGE_COLUMNS, feed),
            ]
        )

    def _insert(self, tables: list[tuple[str, tuple[str, ...], Callable[[], list[tuple]]]]) -> None:
        """Rows of texts into each table in turn, one statement a table (SQLite gives each
        column its type); each table's rows are made by its function, when needed.

        PostgreSQL: psycopg 3's COPY, the rows already in COPY's text format, in one write.
        The rows of the next table are made while the server takes those of the one before:
        a batch's Python work and the server's index updates run on two cores at once."""
        # The driver's errors as peewee's (IntegrityError…); the wrapper is not in peewee's stubs.
        with peewee.__exception_wrapper__:  # type: ignore[attr-defined]
            cursor = self.db.cursor()
            if not self.postgresql:
                for table, columns, make in tables:
                    rows = make()
                    if rows:
                        marks = ", ".join(["?"] * len(columns))
                        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
                        cursor.executemany(sql, rows)
                return
            from psycopg.copy import LibpqWriter

            rows = tables[0][2]()
            for at, (table, columns, _) in enumerate(tables):
                following = tables[at + 1][2] if at + 1 < len(tables) else list
                if not rows:
                    rows = following()
                    continue
                text = "\n".join(["\t".join(row) for row in rows]) + "\n"
                # Flushed as written (no threshold): the server has it all while the next
                # rows are made.
                writer = LibpqWriter(cursor, flush_threshold=0)
                statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
                with cursor.copy(statement, writer=writer) as copy:
                    copy.write(text)
                    rows = following()
