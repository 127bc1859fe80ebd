"""A push body in the shape every kiosk sends, decoded and typed in one pass.

Nearly every batch holds only accounts and registrations, each field of the type and
within the bounds the readers of :mod:`kiosk.rectorat.items` check. msgspec decodes such a
body straight into the structs below and checks those types and bounds in C, where JSON
decoded into dicts would then be walked by Python, field by field (2,000 items decoded
and read: 7.7 ms against 13.2). A body of any other shape (another entity, a field of
another type, a value out of bounds, a field no kiosk sends) is not decoded here:
:func:`common_batch` answers ``None`` and the push reads it as JSON, item by item, with
the full readers. The structs check no more than those readers would: what they let
through, the bulk path still reads (an instant's calendar, an address's form), and it
answers the same either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from types import GenericAlias
from typing import Annotated, Any, Literal, overload

import msgspec
import orjson
from msgspec import Meta, Struct

from kiosk.rectorat.items import EMAIL_MAX, MAX_DEPTH, MAX_VERSION, SESSION_ID_MAX, TEXT_MAX

# A UUID as every kiosk writes it: its canonical text (no round trip through uuid.UUID).
CanonicalId = Annotated[
    str, Meta(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
]
Version = Annotated[int, Meta(ge=1, le=MAX_VERSION)]
Base = Annotated[int, Meta(ge=0, le=MAX_VERSION)]
Text = Annotated[str, Meta(min_length=1, max_length=TEXT_MAX)]
Email = Annotated[str, Meta(min_length=1, max_length=EMAIL_MAX)]
SessionId = Annotated[str, Meta(min_length=1, max_length=SESSION_ID_MAX)]
Instant = str  # read by the bulk path, which keeps the texts it checked once


def _answer_value(levels: int) -> Any:
    """What an answer may be: a scalar, or objects and arrays nested at most ``levels``
    deep. Its integers fit in 64 bits, signed (msgspec's bounds): orjson writes no larger one
    and its decoder reads them as floats, so a body that holds one is read as JSON."""
    scalar: Any = str | Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)] | float | bool | None
    value = scalar
    for _ in range(levels):
        value = scalar | GenericAlias(list, (value,)) | GenericAlias(dict, (str, value))
    return value


# The answers are the second level of ``data``, which nests at most MAX_DEPTH deep: deeper
# answers are no common shape, and the full readers refuse them with their message.
AnswerValue = _answer_value(MAX_DEPTH - 2)


class AccountData(Struct, forbid_unknown_fields=True, gc=False):
    """An account's ``data``; ``email_key`` is the kiosk's, never taken (the rectorat
    derives its own)."""

    created_at: Instant
    updated_at: Instant
    email: Email
    family_name: Text
    given_names: Text
    password_hash: Text
    status: Literal["pending", "active"]
    activated_at: Instant | None = None
    language: Literal["fr", "en"] = "fr"
    email_key: str | None = None


class RegistrationData(Struct, forbid_unknown_fields=True, gc=False):
    """A registration's ``data``; its answers are read by the bulk path (their size, their
    identity)."""

    created_at: Instant
    updated_at: Instant
    account_id: CanonicalId
    session_id: SessionId
    answers: dict[str, AnswerValue]  # type: ignore[valid-type]
    status: Literal["registered", "withdrawn", "set_aside"]
    saved_at: Instant
    withdrawn_at: Instant | None = None


class AccountItem(Struct, tag_field="entity", tag="account", forbid_unknown_fields=True, gc=False):
    id: CanonicalId
    version: Version
    data: AccountData
    base: Base | None = None


class RegistrationItem(
    Struct, tag_field="entity", tag="registration", forbid_unknown_fields=True, gc=False
):
    id: CanonicalId
    version: Version
    data: RegistrationData
    base: Base | None = None


CommonItem = AccountItem | RegistrationItem


class _Batch(Struct, forbid_unknown_fields=True, gc=False):
    items: list[CommonItem]


_DECODER = msgspec.json.Decoder(_Batch)
# JSON writes a NUL inside a string as this escape, and only so: PostgreSQL's text cannot
# hold one, and the full readers refuse it with their message.
_NUL = b"\\u0000"


def common_batch(body: bytes) -> list[CommonItem] | None:
    """The items of a body that holds only accounts and registrations of the common
    shape, with no NUL; ``None`` for any other body."""
    if _NUL in body:
        return None
    try:
        return _DECODER.decode(body).items
    except msgspec.DecodeError:  # ValidationError is one
        return None


class PushedBody(Sequence[Any]):
    """The items of a body of the common shape: typed (:attr:`typed`) for the bulk path,
    and as decoded JSON, item by item, for the per-item path, decoded only if one asks."""

    def __init__(self, body: bytes, typed: list[CommonItem]) -> None:
        self.body = body
        self.typed = typed

    @cached_property
    def escapes(self) -> bool:
        """Whether a text of the items, as it came, may hold a backslash, tab, newline or
        carriage return (or a quote, which a text's JSON writes with a backslash). Not when
        the body holds no backslash: JSON writes these characters only as escapes, which all
        begin with one. A text made from them (an e-mail key, through IDNA) may hold one."""
        return b"\\" in self.body

    @cached_property
    def _decoded(self) -> list[Any]:
        return orjson.loads(self.body)["items"]

    def __len__(self) -> int:
        return len(self.typed)

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...
    def __getitem__(self, index: int | slice) -> Any:
        return self._decoded[index]
