"""Simulated kiosks for the load measures, many in one process. Not a measure.

Each has its own real kiosk store (an SQLite file, migrated, with its triggers), its
own credential at the rectorat, and the real services over them: ``AccountService``
for the sign-up and activation, ``RegistrationService`` for « Enregistrer »,
``SyncService`` and its HTTP client for the sync. A kiosk is one process in production;
here the kiosk models, which peewee binds to one database per process, are bound to
:class:`StorePerThread`: each thread works on the store of the kiosk it plays.

Passwords are hashed with cheap argon2 parameters: what these measures look at is the
registration and its sync (``bench.argon2_hash`` measures the real hash).
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peewee import DatabaseProxy

PASSWORD = "cheval agrafe lumière 42"
_CODE = re.compile(r"Votre code .*est : (\w{4}-\w{4})")


class StorePerThread(DatabaseProxy):
    """The kiosk models' database: in each thread, the store that thread chose with :meth:`use`."""

    def __init__(self) -> None:
        object.__setattr__(
            self, "_local", threading.local()
        )  # a proxy refuses attributes of its own
        super().__init__()

    @property
    def obj(self):  # what peewee's proxy forwards to
        return getattr(self._local, "db", None)

    @obj.setter
    def obj(self, db) -> None:
        self._local.db = db

    def use(self, db) -> None:
        self._local.db = db

    def bind_models(self) -> None:
        """Bind the kiosk models here (again: opening a store binds them to that store)."""
        from kiosk.store.models import MODELS

        for model in MODELS:
            model.bind(self, bind_refs=False, bind_backrefs=False)


@contextmanager
def models_per_thread() -> Iterator[StorePerThread]:
    """The kiosk models bound to a :class:`StorePerThread` for the block, then as before."""
    from kiosk.store.models import MODELS

    before = [model._meta.database for model in MODELS]
    stores = StorePerThread()
    stores.bind_models()
    try:
        yield stores
    finally:
        for model, database in zip(MODELS, before):
            model.bind(database, bind_refs=False, bind_backrefs=False)


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
    db: Any
    clock: Any
    accounts: Any
    registrations: Any
    sync: Any


def open_kiosks(folder: Path, stores: StorePerThread, credentials: list[str], base: str, clocks: list,
                session_id: str, pushes: list[float], lock: threading.Lock) -> list[Kiosk]:  # fmt: skip
    """A kiosk store for each ``NAME:TOKEN`` credential, syncing with ``base``, its models
    bound to ``stores``. The stores are copies of one migrated store (the migrations are
    not what is measured)."""
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
    for credential, clock in zip(credentials, clocks):
        name = credential.partition(":")[0]
        path = folder / name / "kiosk.sqlite3"
        path.parent.mkdir(parents=True)
        shutil.copyfile(template, path)
        db = open_store(path)
        db.close()  # opened again by each thread that plays this kiosk
        session = load_session(session_id, clock)
        client = timed_client(SyncConfig(url=base, token=credential, timeout=120), pushes, lock)
        kiosks.append(Kiosk(
            name, db, clock, AccountService(db, clock, session, hasher=hasher),
            RegistrationService(db, clock, session), SyncService(db, clock, client),
        ))  # fmt: skip
    stores.bind_models()
    return kiosks


def activation_code(email: str) -> str:
    """The code in the latest mail queued for ``email``, as the candidate reads it."""
    from peewee import SQL

    from kiosk.store.models import OutboxRow

    rows = OutboxRow.select().where(OutboxRow.kind == "mail").order_by(SQL("rowid").desc())
    for row in rows:
        if row.payload["to"] == email:
            found = _CODE.search(row.payload["body"])
            if found:
                return found.group(1)
    raise LookupError(f"no activation mail for {email}")


def candidate_values(session, family_name: str, given_names: str, birth_date: str) -> dict:
    """A complete, valid form: an individual candidate born in France."""
    from kiosk.registration_form import blank_values

    values = blank_values(session, family_name, given_names)
    values.update(
        accept_rules=True, not_school_enrolled=True, sex="F", birth_date=birth_date, birth_town="Poitiers",
        birth_country="France", nationality="francaise", address_line1="12 rue de la Paix", postal_code="86000",
        town="Poitiers", country="France", phone="06 12 34 56 78", status="individuel",
        specialty=session.specialties[0].code, language="anglais", jdc_situation="jdc_effectuee",
    )  # fmt: skip
    return values


def register(kiosk: Kiosk, email: str, family_name: str, given_names: str, birth_date: str):
    """A candidate at ``kiosk``: sign up, activate with the mailed code, fill in and save
    the form. Returns the registration and how long « Enregistrer » took, in seconds."""
    from kiosk.accounts import SignUp

    account = kiosk.accounts.sign_up(SignUp(
        email=email, family_name=family_name, given_names=given_names, password=PASSWORD, password_again=PASSWORD,
    ))  # fmt: skip
    account = kiosk.accounts.activate(account.email, activation_code(account.email))
    values = candidate_values(kiosk.registrations.session, family_name, given_names, birth_date)
    t0 = time.perf_counter()
    registration = kiosk.registrations.save(account, values)
    return registration, time.perf_counter() - t0
