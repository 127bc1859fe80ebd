"""The kiosks the rectorat knows: their names and credentials, and who a request is.

A kiosk's token is shown once, when issued; only its SHA-256 is kept. Every request
authenticates as a :class:`KioskIdentity`, which the push, the feed and the exam office
work with.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from kiosk.clock import Clock
from kiosk.i18n import french
from kiosk.rectorat.store import RectoratStore

KIOSK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class CredentialError(ValueError):
    """A kiosk name that cannot be added, revoked or found."""


@dataclass(frozen=True)
class KioskIdentity:
    id: int
    name: str


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Credentials:
    """The kiosks' credentials in one store."""

    def __init__(self, store: RectoratStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._by_name = (
            f"SELECT id, token_sha256, revoked_at FROM rc_kiosk WHERE name = {store.db.param}"
        )

    def issue(self, name: str, now: datetime | None = None) -> str:
        """A new kiosk's token (shown once; only its SHA-256 is kept). A revoked kiosk
        may be issued a new one under its name: it keeps its candidates."""
        if not KIOSK_NAME.fullmatch(name or ""):
            raise CredentialError(french("cli.rectorat.kiosk_name"))
        now = now or self.clock.now()
        token = secrets.token_urlsafe(32)
        Kiosk = self.store.Kiosk
        with self.store.write():
            kiosk = Kiosk.get_or_none(Kiosk.name == name)
            if kiosk is None:
                Kiosk.create(name=name, token_sha256=token_digest(token), created_at=now)
            elif kiosk.revoked_at is None:
                raise CredentialError(french("cli.rectorat.kiosk_has_credential", name=name))
            else:
                kiosk.token_sha256 = token_digest(token)
                kiosk.revoked_at = None
                kiosk.save()
        return token

    def revoke(self, name: str, now: datetime | None = None) -> None:
        now = now or self.clock.now()
        Kiosk = self.store.Kiosk
        with self.store.write():
            kiosk = Kiosk.get_or_none(Kiosk.name == name)
            if kiosk is None:
                raise CredentialError(french("cli.rectorat.no_kiosk", name=name))
            if kiosk.revoked_at is None:
                kiosk.revoked_at = now
                kiosk.save()

    def kiosks(self) -> list[tuple[str, datetime, datetime | None]]:
        """(name, created_at, revoked_at) of every kiosk, by name."""
        Kiosk = self.store.Kiosk
        return [(k.name, k.created_at, k.revoked_at) for k in Kiosk.select().order_by(Kiosk.name)]

    def authenticate(self, name: str, token: str) -> KioskIdentity | None:
        """The kiosk whose credential this is, or ``None`` (unknown, wrong or revoked)."""
        # Every request asks: plain SQL (peewee's query building cost more than the query).
        row = (
            self.store.db.execute_sql(self._by_name, (name,)).fetchone()
            if KIOSK_NAME.fullmatch(name or "")
            else None
        )
        digest = token_digest(token or "")
        if row is None:
            hmac.compare_digest(digest, digest)
            return None
        kiosk_id, token_sha256, revoked_at = row
        if not hmac.compare_digest(digest, token_sha256) or revoked_at is not None:
            return None
        return KioskIdentity(kiosk_id, name)
