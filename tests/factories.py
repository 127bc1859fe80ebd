"""Builders shared by the test modules: plain functions and constants, no fixtures.

- the standard candidate (:data:`CANDIDATE`), a fast argon2 hasher, the code of a mail;
- a complete, valid registration form (:func:`valid_values`) and birth dates by age;
- the items a kiosk pushes to the rectorat (accounts, registrations, address changes,
  deletions), a kiosk's credential on a rectorat service, and the results of a push.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime

from argon2 import PasswordHasher
from peewee import SQL

from kiosk.accounts import SignUp
from kiosk.clock import parse_instant
from kiosk.passwords import Hasher
from kiosk.rectorat.kiosks import KioskIdentity
from kiosk.rectorat.service import RectoratService
from kiosk.registration_form import blank_values
from kiosk.store.database import KioskStore

# -- the candidate -------------------------------------------------------------------------

PASSWORD = "cheval agrafe lumière 42"

CANDIDATE = SignUp(
    email="jean.dupont@exemple.fr",
    family_name="Dupont",
    given_names="Jean",
    password=PASSWORD,
    password_again=PASSWORD,
)

# « Votre code d'activation est : ABCD-EFGH », « Your activation code is: ABCD-EFGH ».
_CODE = re.compile(r"code\b.*?(?:est :|is:) (\w{4}-\w{4})")


def fast_hasher(**params) -> Hasher:
    """Argon2id with tiny costs, for tests only: production uses argon2-cffi's defaults
    (Hasher()), which take ~50 ms a hash and would make the suite slow."""
    costs = {"time_cost": 1, "memory_cost": 8, "parallelism": 1} | params
    return Hasher(PasswordHasher(**costs))


def sent_body(store: KioskStore, row) -> str:
    """The body of a queued mail as it is sent: a queued mail holds no code, which is
    made (its hash stored) when the mail leaves. The row then keeps the sent body, so
    that a later delivery sends that same code."""
    from kiosk.codes import code_for_mail

    payload = row.payload
    if "code_id" not in payload:
        return payload["body"]
    code = code_for_mail(store, fast_hasher(), payload["code_id"], row.created_at)
    assert code is not None, "the code of this mail is no longer valid"
    body = code.fill(payload["body"])
    payload = {k: v for k, v in payload.items() if k != "code_id"} | {"body": body}
    store.OutboxRow.update(payload=payload).where(store.OutboxRow.id == row.id).execute()
    return body


def mailed_code(store: KioskStore, email: str) -> str:
    """The code in the latest mail queued for ``email`` in ``store``'s outbox, as the
    candidate reads it once it is sent."""
    outbox = store.OutboxRow
    rows = outbox.select().where(outbox.kind == "mail").order_by(SQL("rowid"))
    mails = [row for row in rows if row.payload["to"] == email]
    assert mails, f"no mail for {email}"
    body = sent_body(store, mails[-1])
    found = _CODE.search(body)
    assert found, body
    return found.group(1)


# -- the registration form -----------------------------------------------------------------

# The reference date of the Poitiers 2020 session: ages are computed on it.
REFERENCE = date(2020, 6, 15)


def valid_values(session, **overrides):
    """A complete, valid form: a French individual candidate born in France, 18 on the
    reference date."""
    values = blank_values(session, "Dupont", "Jean")
    values.update(
        accept_rules=True,
        not_school_enrolled=True,
        sex="M",
        birth_date="05/03/2002",
        birth_town="Poitiers",
        birth_country="France",
        nationality="francaise",
        address_line1="12 rue de la Paix",
        postal_code="86000",
        town="Poitiers",
        country="France",
        phone="06 12 34 56 78",
        status="individuel",
        specialty=session.specialties[0].code,
        language="anglais",
        jdc_situation="jdc_effectuee",
    )
    values.update(overrides)
    return values


def born(on: date, years: int) -> str:
    """The birth date (JJ/MM/AAAA) of someone who turns ``years`` exactly on ``on``."""
    return f"{on.day:02d}/{on.month:02d}/{on.year - years}"


# -- what a kiosk pushes to the rectorat ---------------------------------------------------

SESSION = "bacpro-poitiers-2020"
EARLIER = parse_instant("2019-11-09T14:00:00")  # when the pushed records were made
PASSWORD_HASH = fast_hasher().hash(PASSWORD)  # the pushed accounts' password


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="microseconds")


def account_item(
    account_id=None, version=1, *, email="jean.dupont@exemple.fr", family="Dupont", given="Jean",
    status="active", when=EARLIER,
) -> dict:  # fmt: skip
    return {
        "entity": "account",
        "id": str(account_id or uuid.uuid4()),
        "version": version,
        "data": {
            "created_at": iso(when), "updated_at": iso(when), "email": email,
            "email_key": email.lower(), "family_name": family, "given_names": given,
            "password_hash": PASSWORD_HASH, "status": status,
            "activated_at": iso(when) if status == "active" else None,
        },
    }  # fmt: skip


def answers(family="Dupont", given="Jean", birth="04/05/2001") -> dict:
    return {
        "family_name": family,
        "given_names": given,
        "birth_date": birth,
        "birth_town": "Niort",
        "specialty": "x",
    }


def registration_item(
    account_id, registration_id=None, version=1, *, saved_at=EARLIER, session=SESSION,
    status="registered", who=None, **extra,
) -> dict:  # fmt: skip
    data = {
        "created_at": iso(EARLIER), "updated_at": iso(saved_at), "account_id": str(account_id),
        "session_id": session, "answers": who or answers(), "status": status,
        "saved_at": iso(saved_at), "withdrawn_at": None, **extra,
    }  # fmt: skip
    return {
        "entity": "registration",
        "id": str(registration_id or uuid.uuid4()),
        "version": version,
        "data": data,
    }


def address_item(registration_id, change_id=None, version=1) -> dict:
    data = {
        "created_at": iso(EARLIER),
        "registration_id": str(registration_id),
        "address": {"address_line1": "3 rue des Lilas", "postal_code": "79000", "town": "Niort"},
    }
    return {
        "entity": "address_change",
        "id": str(change_id or uuid.uuid4()),
        "version": version,
        "data": data,
    }


def deletion_item(account_id) -> dict:
    return {
        "entity": "account_deletion",
        "id": str(account_id),
        "version": 1,
        "data": {"reason": "not_activated"},
    }


def results(answer: list[dict]) -> list[str]:
    return [r["result"] for r in answer]


def new_kiosk(service: RectoratService, name: str) -> tuple[KioskIdentity, str]:
    """A credential issued for kiosk ``name``: the kiosk it authenticates, and its token."""
    token = service.issue_credential(name)
    kiosk = service.authenticate(name, token)
    assert kiosk is not None
    return kiosk, token
