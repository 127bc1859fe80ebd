"""Simulated kiosks for the load measures, many in one process. Not a measure.

Each has its own real kiosk store (an SQLite file, migrated, with its triggers), its
own credential at the rectorat, and the real services over them: ``AccountService``
for the sign-up and activation, ``RegistrationService`` for « Enregistrer »,
``SyncService`` and its HTTP client for the sync. A kiosk is one process in production;
here each simulated kiosk's services work on its own :class:`~kiosk.store.database.KioskStore`
(the kiosk models bound to that store's database), so that many live in one process and
each thread works on the store of the kiosk it plays, with its own connection.

Passwords are hashed with cheap argon2 parameters: what these measures look at is the
registration and its sync (``bench.argon2_hash`` measures the real hash).
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PASSWORD = "cheval agrafe lumière 42"
_CODE = re.compile(r"Votre code .*est : (\w{4}-\w{4})")


def cheap_hasher():
    from argon2 import PasswordHasher

    from kiosk.passwords import Hasher

    return Hasher(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


def timed_client(config, pushes: list[float], lock: threading.Lock):
    """The kiosk's sync client, with the time of each of its pushes added to ``pushes``."""
    from kiosk.sync.client import SyncClient

    client = SyncClient(config)
    send = client.push_body

    def push_body(body: bytes) -> list[dict[str, Any]]:
        t0 = time.perf_counter()
        try:
            return send(body)
        finally:
            with lock:
                pushes.append(time.perf_counter() - t0)

    client.push_body = push_body
    return client


@dataclass
class Kiosk:
    """One simulated kiosk: its store and the real services over it."""

    name: str
    store: Any
    clock: Any
    accounts: Any
    registrations: Any
    sync: Any


def open_kiosks(folder: Path, credentials: list[str], base: str, clocks: list, session_id: str,
                pushes: list[float], lock: threading.Lock) -> list[Kiosk]:  # fmt: skip
    """A kiosk store for each ``NAME:TOKEN`` credential, syncing with ``base``. The stores
    are copies of one migrated store (the migrations are not what is measured)."""
    from kiosk.accounts import AccountService
    from kiosk.exam_sessions import load_session
    from kiosk.registrations import RegistrationService
    from kiosk.runtime.config import SyncConfig
    from kiosk.store.database import open_store
    from kiosk.sync.client import SyncService

    template = folder / "template.sqlite3"
    open_store(template).close()
    hasher = cheap_hasher()
    kiosks = []
    for credential, clock in zip(credentials, clocks, strict=True):
        name = credential.partition(":")[0]
        path = folder / name / "kiosk.sqlite3"
        path.parent.mkdir(parents=True)
        shutil.copyfile(template, path)
        store = open_store(path)
        store.close()  # opened again by each thread that plays this kiosk
        session = load_session(session_id, clock)
        client = timed_client(SyncConfig(url=base, token=credential, timeout=120), pushes, lock)
        kiosks.append(Kiosk(
            name, store, clock, AccountService(store, clock, session, hasher=hasher),
            RegistrationService(store, clock, session), SyncService(store, clock, client),
        ))  # fmt: skip
    return kiosks


def activation_code(store, hasher, email: str, now) -> str:
    """The code in the latest mail queued for ``email`` in ``store``, as the candidate reads
    it: a queued mail holds no code, which is made when the mail leaves, as here."""
    from peewee import SQL

    from kiosk.codes import code_for_mail

    outbox = store.OutboxRow
    rows = list(outbox.select().where(outbox.kind == "mail").order_by(SQL("rowid").desc()))
    for row in rows:
        if row.payload["to"] == email and "code_id" in row.payload:
            mailed = code_for_mail(store, hasher, row.payload["code_id"], now)
            if mailed is not None:
                return mailed.code
    raise LookupError(f"no activation mail for {email}")


def candidate_values(session, family_name: str, given_names: str, birth_date: str) -> dict:
    """A complete, valid form: an individual candidate born in France."""
    from kiosk.registration_form import blank_values

    values = blank_values(session, family_name, given_names)
    values.update(
        accept_rules=True, not_school_enrolled=True, sex="F", birth_date=birth_date,
        birth_town="Poitiers", birth_country="France", nationality="francaise",
        address_line1="12 rue de la Paix", postal_code="86000", town="Poitiers", country="France",
        phone="06 12 34 56 78", status="individuel",
        specialty=session.specialties[0].code, language="anglais", jdc_situation="jdc_effectuee",
    )  # fmt: skip
    return values


def register(kiosk: Kiosk, email: str, family_name: str, given_names: str, birth_date: str):
    """A candidate at ``kiosk``: sign up, activate with the mailed code, fill in and save
    the form. Returns the registration and how long « Enregistrer » took, in seconds."""
    from kiosk.accounts import SignUp

    account = kiosk.accounts.sign_up(SignUp(
        email=email, family_name=family_name, given_names=given_names, password=PASSWORD,
        password_again=PASSWORD,
    ))  # fmt: skip
    account = kiosk.accounts.activate(
        account.email,
        activation_code(kiosk.store, kiosk.accounts.hasher, account.email, kiosk.clock.now()),
    )
    values = candidate_values(kiosk.registrations.session, family_name, given_names, birth_date)
    t0 = time.perf_counter()
    registration = kiosk.registrations.save(account, values)
    return registration, time.perf_counter() - t0
