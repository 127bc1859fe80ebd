"""Reading and checking the items a kiosk pushes, before anything looks at the store.

Every item carries an envelope (``entity``, ``id``, ``version``, ``data``, and for a
change made at a kiosk its optional ``base``), read by :func:`read_envelope`; its
``data`` is read by the entity's reader (:func:`account_fields`,
:func:`registration_fields`, :func:`address_change_fields`), which checks each field's
type and bounds. A reader raises :class:`Invalid` with what is wrong; the push answers
it ``refused`` (``reason``: ``invalid``) with that text as its ``detail``.

The bounds are those of the store, checked here, where the values enter, so that the
store never meets a value it cannot hold: a version within 63 bits
(:data:`MAX_VERSION`), an instant within years 1 to 9999 in UTC, texts without NUL
(PostgreSQL's text cannot hold one) and within their lengths, ``data`` nested at most
:data:`MAX_DEPTH` deep, a registration's answers and an address within
:data:`ANSWERS_MAX` and :data:`ADDRESS_MAX` characters of JSON. The rectorat derives
what it can: an account's ``email_key`` is made from its ``email`` (a kiosk's
``email_key`` is ignored).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from kiosk.accounts import email_key as normalise_email_key
from kiosk.i18n import DEFAULT_LANGUAGE, LANGUAGES
from kiosk.rectorat.store import json_text

ENTITIES = ("account", "registration", "address_change", "account_deletion", "code")
TEXT_MAX = 1000
"""The longest free text a field may hold (names, password hash, status…)."""
EMAIL_MAX = 320
SESSION_ID_MAX = 64
MAX_VERSION = 2**63 - 1
"""The highest version: the store's integers are 64-bit, signed."""
MAX_DEPTH = 8
"""How deep an item's ``data`` may nest objects and arrays (``data`` itself is 1; a
registration's answers are 2, a list among them 3)."""
ANSWERS_MAX = 8192
"""A registration's answers as compact JSON, in characters: the form's 38 fields of at
most 100 characters take under 5,000. With :data:`ADDRESS_MAX` and the envelope, a
full batch of the largest items stays within the body limit (20 MB)."""
ADDRESS_MAX = 2048
ACCOUNT_STATUSES = ("pending", "active")
REGISTRATION_STATUSES = ("registered", "withdrawn", "set_aside")


def pushed_status(status: str) -> str:
    """A registration's status as a kiosk pushes it: ``set_aside`` is the rectorat's, and
    a kiosk sends it as ``registered``."""
    return "registered" if status == "set_aside" else status


class Invalid(ValueError):
    """A pushed item that cannot be read."""


@dataclass(frozen=True)
class Envelope:
    """What every pushed item carries, read and checked; its ``data`` is the entity's."""

    entity: str
    record_id: uuid.UUID
    version: int
    data: Mapping[str, Any]
    base: int | None = None
    """The version of the record that the kiosk changed, as it last knew the rectorat's
    (0: none, the kiosk made the record; ``None``: the kiosk does not know, or is of an
    earlier version and does not say)."""


def read_envelope(item: object) -> tuple[str, Envelope | dict]:
    """The item's id as answered, and its envelope, or the result that refuses it."""
    raw_id = item.get("id") if isinstance(item, Mapping) else None
    shown_id = raw_id if isinstance(raw_id, str) else str(raw_id)
    try:
        if not isinstance(item, Mapping):
            raise Invalid("an item is an object")
        entity = item.get("entity")
        record_id = read_uuid(raw_id)
        shown_id = str(record_id)
        if entity not in ENTITIES:
            return shown_id, {"result": "refused", "reason": "entity"}
        version = item.get("version", 1 if entity == "account_deletion" else None)
        if not valid_version(version):
            raise Invalid(f"version is an integer from 1 to {MAX_VERSION}")
        base = item.get("base")
        if not valid_base(base):
            raise Invalid(f"base is null or an integer from 0 to {MAX_VERSION}")
        data = item.get("data") or {}
        if not isinstance(data, Mapping):
            raise Invalid("data is an object")
        check_depth(data)
    except Invalid as problem:
        return shown_id, {"result": "refused", "reason": "invalid", "detail": str(problem)}
    return shown_id, Envelope(entity, record_id, version, data, base)


def valid_version(version: object) -> bool:
    """A version the store can hold: an integer from 1 to :data:`MAX_VERSION`."""
    return type(version) is int and 1 <= version <= MAX_VERSION


def valid_base(base: object) -> bool:
    """A base the store can compare: none said, 0 (no version before) or a version."""
    return base is None or (type(base) is int and 0 <= base <= MAX_VERSION)


def check_depth(value: object, limit: int = MAX_DEPTH) -> None:
    """Raise :class:`Invalid` when ``value`` nests objects and arrays deeper than ``limit``
    (``value`` itself counts one). Only containers are walked: flat answers cost a loop."""
    if limit < 1:
        raise Invalid(f"data is nested more than {MAX_DEPTH} deep")
    kind = type(value)
    if kind is dict or (kind is not list and isinstance(value, Mapping)):
        children: Iterable[object] = cast(Mapping, value).values()
    elif kind is list:
        children = cast(list, value)
    else:
        return
    for child in children:
        # Decoded JSON holds only these: their types are compared, never walked through
        # the Mapping ABC (a batch checks about 50,000 values).
        kind = type(child)
        if kind in _FLAT:
            continue
        if kind is dict or kind is list or isinstance(child, Mapping):
            check_depth(child, limit - 1)


_FLAT = frozenset({str, int, float, bool, type(None)})


# -- one field ----------------------------------------------------------------------------


def read_uuid(value: object, what: str = "id") -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        raise Invalid(f"{what} is not a UUID") from None


def read_instant(data: Mapping[str, Any], key: str, *, null: bool = False) -> datetime | None:
    """An ISO 8601 instant with its offset, in UTC; ``None`` only when ``null`` allows it."""
    value = data.get(key)
    if value is None:
        if null:
            return None
        raise Invalid(f"{key} is missing")
    if not isinstance(value, str) or len(value) > 64:
        raise Invalid(f"{key} is not an ISO 8601 instant")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise Invalid(f"{key} is not an ISO 8601 instant") from None
    if moment.tzinfo is None:
        raise Invalid(f"{key} has no offset")
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:30+01:00, 9999-12-31T23:30-01:00
        raise Invalid(f"{key} is outside years 1 to 9999 in UTC") from None


def read_text(data: Mapping[str, Any], key: str, *, maximum: int = TEXT_MAX) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value or len(value) > maximum:
        raise Invalid(f"{key} is missing or not a text of at most {maximum} characters")
    if "\x00" in value:
        raise Invalid(f"{key} holds a NUL character")
    return value


def read_mapping(data: Mapping[str, Any], key: str, *, maximum: int = ANSWERS_MAX) -> dict:
    """An object of at most ``maximum`` characters as compact JSON (nesting is bounded
    by :func:`check_depth` on the whole ``data``)."""
    value = data.get(key)
    if not isinstance(value, dict):
        raise Invalid(f"{key} is not an object")
    check_json_size(value, key, maximum)
    return value


def check_json_size(value: dict, key: str, maximum: int) -> None:
    try:
        size = len(json_text(value))
    except TypeError:  # nested beyond what JSON is written to (bounded before, by depth)
        raise Invalid(f"{key} is nested too deep") from None
    if size > maximum:
        raise Invalid(f"{key} is more than {maximum} characters of JSON")


def derived_email_key(email: str) -> str:
    """The account's ``email_key``, made from its e-mail as the kiosk makes it
    (:func:`kiosk.accounts.email_key`); the kiosk's own is never taken."""
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain or any(c.isspace() or ord(c) < 32 for c in email):
        raise Invalid("email is not an address")
    if email.isascii():  # NFC and IDNA leave it as it is: only lowered
        return email.lower()
    key = normalise_email_key(email)
    if len(key) > EMAIL_MAX:
        raise Invalid("email is too long")
    return key


# -- one entity ---------------------------------------------------------------------------


def account_fields(data: Mapping[str, Any], instant: Callable[..., Any] = read_instant) -> dict:
    """An account's fields, checked; ``instant`` reads its instants (the bulk path keeps
    them as text, see :mod:`kiosk.rectorat.bulk`)."""
    email = read_text(data, "email", maximum=EMAIL_MAX)
    fields = {
        "created_at": instant(data, "created_at"),
        "updated_at": instant(data, "updated_at"),
        "email": email,
        "email_key": derived_email_key(email),
        "family_name": read_text(data, "family_name"),
        "given_names": read_text(data, "given_names"),
        "password_hash": read_text(data, "password_hash"),
        "status": read_text(data, "status"),
        "activated_at": instant(data, "activated_at", null=True),
        "language": read_language(data),
    }
    if fields["status"] not in ACCOUNT_STATUSES:
        raise Invalid("status is pending or active")
    return fields


def read_language(data: Mapping[str, Any]) -> str:
    """The language of the account's mails; French when a kiosk of an earlier version
    does not send it."""
    language = data.get("language", DEFAULT_LANGUAGE)
    if language not in LANGUAGES:
        raise Invalid(f"language is one of {', '.join(LANGUAGES)}")
    return str(language)


def registration_fields(
    data: Mapping[str, Any],
    instant: Callable[..., Any] = read_instant,
    identifier: Callable[..., Any] = read_uuid,
) -> tuple[dict, str]:
    """A registration's fields, checked, and its status; ``instant`` and ``identifier``
    read instants and the account id (the bulk path keeps them as text)."""
    account_id = identifier(data.get("account_id"), "account_id")
    session_id = read_text(data, "session_id", maximum=SESSION_ID_MAX)
    answers = read_mapping(data, "answers")
    status = read_text(data, "status")
    if status not in REGISTRATION_STATUSES:
        raise Invalid("status is registered or withdrawn")
    fields = {
        "created_at": instant(data, "created_at"),
        "updated_at": instant(data, "updated_at"),
        "account_id": account_id,
        "session_id": session_id,
        "answers": answers,
        "saved_at": instant(data, "saved_at"),
        "withdrawn_at": instant(data, "withdrawn_at", null=True),
    }
    return fields, status


def address_change_fields(data: Mapping[str, Any]) -> dict:
    """An address change's fields, checked (``updated_at`` defaults to ``created_at``)."""
    registration_id = read_uuid(data.get("registration_id"), "registration_id")
    created_at = read_instant(data, "created_at")
    return {
        "created_at": created_at,
        "updated_at": read_instant(data, "updated_at", null=True) or created_at,
        "registration_id": registration_id,
        "address": read_mapping(data, "address", maximum=ADDRESS_MAX),
    }
