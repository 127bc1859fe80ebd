"""Every input the rectorat's sync API can be sent gets an answer (issue 17): each pushed
item its own result, bounds checked where values enter (versions within 63 bits,
instants within years 1 to 9999 in UTC, nesting and sizes, no NUL in a text), the same on
both push paths, on SQLite and on PostgreSQL; never a 5xx, never a valid item lost with a
bad one. A hypothesis property test posts arbitrary JSON and arbitrary items through the
real Starlette app (httpx's ASGI transport)."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from typing import Any

import httpx
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.accounts import email_key
from kiosk.rectorat.api import make_app
from kiosk.rectorat.items import ANSWERS_MAX, MAX_DEPTH, MAX_VERSION
from kiosk.rectorat.limits import Rate, RateLimiter
from kiosk.rectorat.store import SEQUENCER_LOCK
from tests.factories import (
    PASSWORD,
    account_item,
    address_item,
    answers,
    deletion_item,
    new_kiosk,
    registration_item,
)

RESULTS = ("applied", "stale", "conflict", "refused")


class AppClient:
    """The real Starlette app, called through httpx's ASGI transport from plain tests."""

    def __init__(self, app) -> None:
        self.loop = asyncio.new_event_loop()
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://rectorat")
        self.headers: dict[str, str] = {}

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        call = self.client.request(method, url, headers=headers, **kwargs)
        return self.loop.run_until_complete(call)

    def push(self, items: Any, **kwargs: Any) -> httpx.Response:
        """``{"items": items}`` written by the standard library, which writes what orjson
        will not (integers beyond 64 bits, any depth)."""
        return self.request("POST", "/v1/push", content=json_body({"items": items}), **kwargs)

    def pull(self, after: object = 0, limit: int = 1000) -> httpx.Response:
        return self.request("GET", "/v1/changes", params={"after": str(after), "limit": limit})

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()


@pytest.fixture
def api(service, store, clock):
    """A client of the app as kiosk ``borne-a`` (``api.kiosk``)."""
    app = make_app(store, clock, service=service, sequence_interval=None, rates=None)
    client = AppClient(app)
    kiosk, token = new_kiosk(service, "borne-a")
    client.headers = {"Authorization": f"Bearer borne-a:{token}"}
    client.kiosk = kiosk  # type: ignore[attr-defined]
    client.service = service  # type: ignore[attr-defined]
    yield client
    client.close()


def json_body(value: Any) -> bytes:
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 5000))  # data nested 1,000 deep
    try:
        return json.dumps(value).encode("utf-8")
    finally:
        sys.setrecursionlimit(limit)


def answered(response: httpx.Response) -> list[dict]:
    assert response.status_code == 200, response.text
    return response.json()["results"]


def outcomes(response: httpx.Response) -> list[str]:
    return [r["result"] if r["result"] != "refused" else r["reason"] for r in answered(response)]


def person(tag: str) -> tuple[dict, dict]:
    """A new account and its registration, of a person nobody else is."""
    account = account_item(email=f"p{tag}@exemple.fr", family=f"Nom{tag}")
    who = answers(family=f"Nom{tag}", given="Jean")
    return account, registration_item(account["id"], who=who)


def nested(depth: int) -> Any:
    value: Any = "fond"
    for _ in range(depth - 1):
        value = {"x": value}
    return value


# -- the cases of the issue, each a regression test ------------------------------------------


def test_a_version_beyond_63_bits_is_refused_and_the_feed_stays_readable(api):
    first, registration = person("a")
    too_big = account_item(version=2**64 - 1, email="big@exemple.fr")
    answer = api.push([too_big, first, registration])  # the set-based path
    assert outcomes(answer) == ["invalid", "applied", "applied"]
    assert "version" in answered(answer)[0]["detail"]
    # An update (the per-item path) with 2**63, then with the highest version.
    assert outcomes(api.push([{**first, "version": 2**63}])) == ["invalid"]
    assert outcomes(api.push([{**first, "version": MAX_VERSION}])) == ["applied"]
    for version in (0, -1, 1.0, True, "2", None):
        assert outcomes(api.push([{**account_item(email="v@exemple.fr"), "version": version}])) == [
            "invalid"
        ]
    pulled = api.pull()
    assert pulled.status_code == 200
    versions = {c["id"]: c["version"] for c in pulled.json()["changes"]}
    assert versions[first["id"]] == MAX_VERSION and too_big["id"] not in versions


def test_an_item_that_is_not_an_object_is_refused_alone(api):
    account, registration = person("b")
    items = [None, account, 3, "x", [], registration, True]
    assert outcomes(api.push(items)) == [
        "invalid", "applied", "invalid", "invalid", "invalid", "applied", "invalid",
    ]  # fmt: skip
    assert outcomes(api.push([None])) == ["invalid"]


@pytest.mark.parametrize(
    "instant",
    ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0001-01-01T00:59:59.999999+01:00"],
)
def test_an_instant_outside_years_1_to_9999_in_utc_is_refused(api, instant):
    account, registration = person("c")
    late = account_item(email="late@exemple.fr")
    late["data"]["created_at"] = instant
    odd = registration_item(account["id"], who=answers(family="Autre"))
    odd["data"]["withdrawn_at"] = instant
    assert outcomes(api.push([late, account, odd, registration])) == [
        "invalid", "applied", "invalid", "applied",
    ]  # fmt: skip
    # The per-item path: an update, an address change.
    update = {**account, "version": 2, "data": {**account["data"], "updated_at": instant}}
    address = address_item(registration["id"])
    address["data"]["created_at"] = instant
    assert outcomes(api.push([update, address])) == ["invalid", "invalid"]
    assert api.pull().status_code == 200


@pytest.mark.parametrize("depth", [MAX_DEPTH, 256, 1000])
def test_nested_data_is_refused_beyond_its_depth(api, depth):
    account, registration = person("d")
    deep = registration_item(account["id"], who={**answers(family="Creux"), "x": nested(depth)})
    answer = api.push([account, deep, registration])
    assert outcomes(answer) == ["applied", "invalid", "applied"]
    assert "nested" in answered(answer)[1]["detail"]
    # Nested in data beside the fields, on the per-item path (a conflict keeps data whole).
    junk = {**account, "version": 2, "data": {**account["data"], "extra": nested(depth + 1)}}
    assert outcomes(api.push([junk])) == ["invalid"]
    fits = registration_item(account["id"], who={**answers(family="Plat"), "x": nested(6)})
    fits["data"]["session_id"] = "bacpro-poitiers-2020"
    assert outcomes(api.push([fits])) == ["conflict"]  # same account and session: kept aside
    assert api.pull().status_code == 200


def test_answers_beyond_their_size_are_refused(api):
    account, registration = person("e")
    big = registration_item(
        account["id"], who={**answers(family="Gros"), "notes": "x" * ANSWERS_MAX}
    )
    answer = api.push([account, big, registration])
    assert outcomes(answer) == ["applied", "invalid", "applied"]
    assert str(ANSWERS_MAX) in answered(answer)[1]["detail"]
    address = address_item(registration["id"])
    address["data"]["address"] = {"line1": "y" * 5000}
    assert outcomes(api.push([address])) == ["invalid"]


@pytest.mark.parametrize("field", ["family_name", "given_names", "email", "password_hash"])
def test_a_nul_in_a_text_is_refused(api, field):
    account = account_item(email="nul@exemple.fr")
    account["data"][field] = "a\x00b@exemple.fr" if field == "email" else "a\x00b"
    other, registration = person("f")
    assert outcomes(api.push([account, other, registration])) == ["invalid", "applied", "applied"]
    session = registration_item(other["id"], who=answers(family="Zero"), session="bac\x00pro")
    pending = account_item(email="pending@exemple.fr", status="pending")
    deletion = deletion_item(pending["id"])
    deletion["data"]["reason"] = "x\x00y"
    assert outcomes(api.push([session, pending, deletion])) == ["invalid", "applied", "applied"]


def test_names_of_any_length_make_an_identity_key_the_store_can_index(api):
    account = account_item(email="long@exemple.fr", family="N" * 1000, given="G" * 1000)
    long = answers(family="N" * 5000, given="G" * 2000)
    registration = registration_item(account["id"], who=long)
    assert outcomes(api.push([account, registration])) == ["applied", "applied"]
    key = api.service.store.Registration.get_by_id(registration["id"]).identity_key
    assert len(key) < 1100


def test_after_beyond_63_bits_is_a_bad_request(api):
    assert api.pull(after=2**63).status_code == 400
    assert api.pull(after=2**64 + 5).status_code == 400
    assert api.pull(after="9" * 5000).status_code == 400
    top = api.pull(after=2**63 - 1)
    assert top.status_code == 200 and top.json()["changes"] == []


def test_a_login_with_a_nul_is_a_plain_refusal(api):
    account = account_item(email="login@exemple.fr")
    assert outcomes(api.push([account])) == ["applied"]
    for body in (
        {"email_key": "login\x00@exemple.fr", "password": PASSWORD},
        {"email_key": "login@exemple.fr", "password": "a\x00" * 10},
        {"email_key": "x" * 10_000, "password": PASSWORD},
    ):
        answer = api.request("POST", "/v1/accounts/login", json=body)
        assert (answer.status_code, answer.json()) == (401, {"error": "login"})


# -- what the rectorat derives itself ----------------------------------------------------------


def test_the_email_key_is_made_from_the_email_whatever_the_kiosk_says(api):
    """A made-up ``email_key`` put one address on four live accounts: now the second and
    later are conflicts, on the set-based path (one batch) and the per-item one."""
    made_up = [account_item(email="Jean.Dupont@Exemple.fr") for _ in range(4)]
    for n, account in enumerate(made_up):
        account["data"]["email_key"] = f"made-up-{n}@nowhere.fr"
    del made_up[3]["data"]["email_key"]  # none at all is as good
    assert outcomes(api.push(made_up[:2])) == ["applied", "conflict"]
    assert outcomes(api.push(made_up[2:3])) == ["conflict"]
    assert outcomes(api.push(made_up[3:])) == ["conflict"]
    store = api.service.store
    (kept,) = list(store.Account.select())
    assert kept.email_key == email_key("Jean.Dupont@Exemple.fr") == "jean.dupont@exemple.fr"
    assert [c.kind for c in store.Conflict.select()] == ["email_key"] * 3
    accented = account_item(email="Élodie.Ünal@Exemple.fr")
    accented["data"]["email_key"] = "someone.else@exemple.fr"
    assert outcomes(api.push([accented])) == ["applied"]
    assert store.Account.get_by_id(accented["id"]).email_key == email_key("Élodie.Ünal@Exemple.fr")
    for bad in ("no-at-sign", "a b@exemple.fr", "@exemple.fr", "x@"):
        assert outcomes(api.push([account_item(email=bad)])) == ["invalid"]


# -- cheap refusals first --------------------------------------------------------------------


class Ticking:
    """A monotonic clock for the rate limiter that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _endless(pulled: list[int], pause: float = 0.0):
    async def chunks():
        while True:
            pulled.append(1)
            if pause:
                await asyncio.sleep(pause)
            yield b"{" * 1024

    return chunks()


def test_the_credential_is_checked_before_the_body_is_read(api):
    pulled: list[int] = []
    answer = api.request(
        "POST",
        "/v1/push",
        content=_endless(pulled),
        headers={"Authorization": "Bearer borne-a:made-up"},
    )
    assert (answer.status_code, answer.json()) == (401, {"error": "unauthorised"})
    assert pulled == []  # not one chunk of the body was asked for
    answer = api.request(
        "POST", "/v1/accounts/login", content=_endless(pulled), headers={"Authorization": ""}
    )
    assert answer.status_code == 401 and pulled == []


def test_a_body_has_a_time_limit_and_a_size_limit(service, store, clock):
    app = make_app(store, clock, service=service, sequence_interval=None, body_timeout=0.3)
    client = AppClient(app)
    client.headers = {"Authorization": "Bearer borne-t:" + new_kiosk(service, "borne-t")[1]}
    try:
        pulled: list[int] = []
        slow = client.request("POST", "/v1/push", content=_endless(pulled, pause=0.05))
        assert slow.status_code == 408 and "30" not in slow.json()["error"]
        assert 3 <= len(pulled) <= 20
        login = client.request("POST", "/v1/accounts/login", content=b"x" * 20_000)
        assert login.status_code == 413
    finally:
        client.close()


def test_each_kiosk_has_a_rate_of_pushes_pulls_and_logins(service, store, clock):
    ticking = Ticking()
    rates = {"push": Rate(2, 0.5), "pull": Rate(3, 1.0), "login": Rate(1, 0.1)}
    app = make_app(
        store, clock, service=service, sequence_interval=None,
        limiter=RateLimiter(rates, monotonic=ticking),
    )  # fmt: skip
    a, b = AppClient(app), AppClient(app)
    kiosk_a, token_a = new_kiosk(service, "borne-a")
    a.headers = {"Authorization": f"Bearer borne-a:{token_a}"}
    b.headers = {"Authorization": "Bearer borne-b:" + new_kiosk(service, "borne-b")[1]}
    try:
        assert [a.push([]).status_code for _ in range(2)] == [200, 200]
        pulled: list[int] = []
        limited = a.request("POST", "/v1/push", content=_endless(pulled))
        assert (limited.status_code, limited.json()) == (
            429, {"error": "rate_limited", "retry_after": 2},
        )  # fmt: skip
        assert limited.headers["retry-after"] == "2" and pulled == []
        assert b.push([]).status_code == 200  # another kiosk's own rate
        ticking.now += 2
        assert a.push([]).status_code == 200
        assert [a.pull().status_code for _ in range(4)] == [200, 200, 200, 429]
        assert a.pull().headers["retry-after"] == "1"
        # Logins: one, then the same answer whatever the address.
        service.push(kiosk_a, [account_item(email="rate@exemple.fr")])
        first = a.request(
            "POST", "/v1/accounts/login", json={"email_key": "x@y.fr", "password": "p"}
        )
        assert first.status_code == 401
        for address in ("rate@exemple.fr", "nobody@exemple.fr"):
            again = a.request(
                "POST", "/v1/accounts/login", json={"email_key": address, "password": PASSWORD}
            )
            assert (again.status_code, again.json()) == (
                429,
                {"error": "locked", "retry_after": 10},
            )
            assert again.headers["retry-after"] == "10"
    finally:
        a.close()
        b.close()


def test_failed_logins_delay_that_kiosk_only_and_any_address_alike(api):
    service = api.service
    account = account_item(email="cible@exemple.fr")
    assert outcomes(api.push([account])) == ["applied"]
    other, token = new_kiosk(service, "borne-b")

    def login(email: str, password: str, auth: dict | None = None) -> httpx.Response:
        body = {"email_key": email, "password": password}
        return api.request("POST", "/v1/accounts/login", json=body, headers=auth or {})

    answers_for = {}
    for address in ("cible@exemple.fr", "personne@exemple.fr"):
        wrong = [login(address, "wrong").status_code for _ in range(5)]
        locked = login(address, PASSWORD)
        answers_for[address] = (wrong, locked.status_code, locked.json(), locked.headers)
        assert wrong == [401] * 5
        assert (locked.status_code, locked.json()) == (429, {"error": "locked", "retry_after": 30})
    # The other kiosk is not locked out of the candidate's account.
    elsewhere = login("cible@exemple.fr", PASSWORD, {"Authorization": f"Bearer borne-b:{token}"})
    assert elsewhere.status_code == 200 and elsewhere.json()["account"]["id"] == account["id"]
    # The exam office lifts the delay at every kiosk.
    assert service.lift_login_delay(account["id"])
    assert login("cible@exemple.fr", PASSWORD).status_code == 200


# -- the property: no 5xx, no partial batch --------------------------------------------------


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([0, -1, 2**31, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 10**30])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(
        [
            "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2019-11-09T14:00:00",
            "2019-11-09T14:00:00.000000+00:00", "2019-02-31T14:00:00+00:00", "a\x00b",
            "bacpro-poitiers-2020", "registered", "withdrawn", "set_aside", "active", "pending",
            str(uuid.UUID(int=0)), "ab@cd", "  @ ", "Jean@Exemple.FR",
        ]
    )
)  # fmt: skip
JSON = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_DEEP = st.integers(min_value=MAX_DEPTH - 1, max_value=300).map(nested)
VALUES = JSON | _DEEP


@st.composite
def mangled_items(draw) -> Any:
    """An item made by changing a valid one: fields of its envelope or data replaced,
    removed or added, with arbitrary JSON."""
    anchor = str(draw(st.uuids()))
    kind = draw(st.sampled_from(["account", "registration", "address_change", "deletion"]))
    item = {
        "account": lambda: account_item(email=f"m{anchor}@exemple.fr"),
        "registration": lambda: registration_item(anchor, who=answers(family=anchor[:8])),
        "address_change": lambda: address_item(anchor),
        "deletion": lambda: deletion_item(anchor),
    }[kind]()
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        where = draw(st.sampled_from(["envelope", "data", "answers"]))
        data = item.get("data")
        target = item if where == "envelope" or not isinstance(data, dict) else data
        if where == "answers":
            target = target.get("answers") if isinstance(target.get("answers"), dict) else target
        keys = sorted(target) + ["extra"]
        key = draw(st.sampled_from(keys))
        if draw(st.integers(min_value=0, max_value=5)) == 0:
            target.pop(key, None)
        else:
            target[key] = draw(VALUES)
    return item


ITEMS = mangled_items() | JSON


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(junk=st.lists(ITEMS, min_size=1, max_size=6), data=st.data())
def test_any_items_get_one_answer_each_and_never_take_a_valid_one_with_them(api, junk, data):
    account, registration = person(uuid.uuid4().hex)
    items = list(junk)
    at = data.draw(st.integers(min_value=0, max_value=len(items)))
    items[at:at] = [account]
    later = data.draw(st.integers(min_value=at + 1, max_value=len(items)))
    items[later:later] = [registration]
    answer = api.push(items)
    results = answered(answer)
    assert len(results) == len(items)
    for result in results:
        assert result["result"] in RESULTS and isinstance(result["id"], str)
        if result["result"] == "refused":
            assert result["reason"]
    assert results[at] == {"id": account["id"], "result": "applied"}
    assert results[later] == {"id": registration["id"], "result": "applied"}
    pulled = api.pull(limit=1000)
    assert pulled.status_code == 200


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=JSON | st.fixed_dictionaries({"items": JSON}) | st.binary(max_size=40))
def test_any_body_is_answered_without_a_server_error(api, body):
    content = body if isinstance(body, bytes) else json_body(body)
    answer = api.request("POST", "/v1/push", content=content)
    assert answer.status_code in (200, 400), answer.text
    if answer.status_code == 200:
        assert len(answer.json()["results"]) == len(body["items"])  # type: ignore[index]
    login = api.request("POST", "/v1/accounts/login", content=content)
    assert login.status_code in (400, 401), login.text


# -- the feed: its cost follows what the kiosk holds ------------------------------------------


def test_the_feed_keeps_one_change_per_record_and_every_kiosk_still_gets_each_state(
    service, store, clock
):
    kiosk_a, kiosk_b = new_kiosk(service, "borne-a")[0], new_kiosk(service, "borne-b")[0]
    account, registration = person("g")
    pending = account_item(email="bientot-parti@exemple.fr", status="pending")
    service.push(kiosk_a, [account, registration, pending])
    for version in (2, 3, 4):
        service.push(
            kiosk_a, [account_item(account["id"], version, email=account["data"]["email"])]
        )
    service.set_paper_status(registration["id"], "received")
    service.push(kiosk_a, [deletion_item(pending["id"])])
    service.push(kiosk_b, [account_item(email="b@exemple.fr")])
    store.sequence()
    before = service.changes(kiosk_a, 0)
    assert (
        store.prune_feed() == 3 + 1 + 1
    )  # three older account versions, one registration's, the deleted
    after = service.changes(kiosk_a, 0)
    # The same records, each in its latest state, from the same cursor.
    latest = {c["id"]: c for c in before["changes"]}
    assert {c["id"]: c for c in after["changes"]} == latest
    assert [c["version"] for c in after["changes"] if c["id"] == account["id"]] == [4]
    assert store.Change.select().count() == 3  # account, registration, borne-b's account
    assert store.prune_feed() == 0
    # A new kiosk holds nothing: it starts at the head, whatever the history.
    newcomer = new_kiosk(service, "borne-neuve")[0]
    assert service.changes(newcomer, 0) == {"changes": [], "last": store.last_seq()}


def test_a_pull_numbers_what_waits_without_waiting_for_another_round(service, store):
    kiosk = new_kiosk(service, "borne-a")[0]
    account = account_item()
    service.push(kiosk, [account])
    assert store.unnumbered()
    assert [c["id"] for c in service.changes(kiosk, 0)["changes"]] == [account["id"]]
    assert not store.unnumbered()
    assert store.sequence(wait=False) == 0  # nothing waits: no lock taken
    if store.postgresql:
        # Another round holds the sequencer's lock: a pull neither waits nor fails.
        other = account_item(email="autre@exemple.fr")
        service.push(kiosk, [other])
        holder = psycopg.connect(store.url, autocommit=True)
        try:
            holder.cursor().execute("SELECT pg_advisory_lock(%s)", (SEQUENCER_LOCK,))
            page = service.changes(kiosk, 0)
            assert [c["id"] for c in page["changes"]] == [account["id"]]  # the other: later
        finally:
            holder.close()
        assert [c["id"] for c in service.changes(kiosk, 0)["changes"]] == [
            account["id"], other["id"],
        ]  # fmt: skip
