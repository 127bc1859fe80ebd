"""Reading and checking the items a kiosk pushes, before anything looks at the store.

Every item carries an envelope (``entity``, ``id``, ``version``, ``data``), read by
:func:`read_envelope`; its ``data`` is read by the entity's reader
(:func:`account_fields`, :func:`registration_fields`, :func:`address_change_fields`),
which checks each field's type and bounds. A reader raises :class:`Invalid` with what
is wrong; the push answers it ``refused`` (``reason``: ``invalid``) with that text as
its ``detail``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kiosk.accounts import email_key as normalise_email_key

ENTITIES = ("account", "registration", "address_change", "account_deletion")
TEXT_MAX = 1000
"""The longest free text a field may hold (names, password hash, status…)."""
EMAIL_MAX = 320
SESSION_ID_MAX = 64
ACCOUNT_STATUSES = ("pending", "active")
REGISTRATION_STATUSES = ("registered", "withdrawn", "set_aside")


class Invalid(ValueError):
    """A pushed item that cannot be read."""


@dataclass(frozen=True)
class Envelope:
    """What every pushed item carries, read and checked; its ``data`` is the entity's."""

    entity: str
    record_id: uuid.UUID
    version: int
    data: Mapping[str, Any]


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
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise Invalid("version is a positive integer")
        data = item.get("data") or {}
        if not isinstance(data, Mapping):
            raise Invalid("data is an object")
    except Invalid as problem:
        return shown_id, {"result": "refused", "reason": "invalid", "detail": str(problem)}
    return shown_id, Envelope(entity, record_id, version, data)


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
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise Invalid(f"{key} is not an ISO 8601 instant") from None
    if moment.tzinfo is None:
        raise Invalid(f"{key} has no offset")
    return moment.astimezone(UTC)


def read_text(data: Mapping[str, Any], key: str, *, maximum: int = TEXT_MAX) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value or len(value) > maximum:
        raise Invalid(f"{key} is missing or not a text")
    return value


def read_mapping(data: Mapping[str, Any], key: str) -> dict:
    value = data.get(key)
    if not isinstance(value, dict):
        raise Invalid(f"{key} is not an object")
    return value


# -- one entity ---------------------------------------------------------------------------


def account_fields(data: Mapping[str, Any], instant: Callable[..., Any] = read_instant) -> dict:
    """An account's fields, checked; ``instant`` reads its instants (the bulk path keeps
    them as text, see :mod:`kiosk.rectorat.bulk`)."""
    fields = {
        "created_at": instant(data, "created_at"),
        "updated_at": instant(data, "updated_at"),
        "email": read_text(data, "email", maximum=EMAIL_MAX),
        "email_key": normalise_email_key(read_text(data, "email_key", maximum=EMAIL_MAX)),
        "family_name": read_text(data, "family_name"),
        "given_names": read_text(data, "given_names"),
        "password_hash": read_text(data, "password_hash"),
        "status": read_text(data, "status"),
        "activated_at": instant(data, "activated_at", null=True),
    }
    if fields["status"] not in ACCOUNT_STATUSES:
        raise Invalid("status is pending or active")
    return fields


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
        "address": read_mapping(data, "address"),
    }
