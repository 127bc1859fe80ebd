"""The set-based path of a push batch at the rectorat (:meth:`RectoratService.push`).

The common items of a batch, a new account and a new registration of an account the
kiosk holds, are read and checked in Python, decided against a view of the store read
in one statement, and written with one bulk statement per table: ``COPY`` on
PostgreSQL (the rows are parsed once, not as thousands of literals), a prepared
``executemany`` on SQLite. The first item that is anything else (an update, a replay, a
conflict, a deletion, an address change, a duplicate in the batch…) ends the run: the
service sends it down the per-item path, which looks at the store again, then starts a
new run after it. Either way an item gets the same result.
"""

from __future__ import annotations

import io
import logging
import re
from datetime import datetime
from typing import Any, Callable, Mapping

import peewee
from peewee import IntegrityError

from kiosk.exam_sessions import ExamSession
from kiosk.rectorat.service import (
    FUTURE_TOLERANCE,
    Invalid,
    KioskIdentity,
    RectoratService,
    _academie_code,
    _account_fields,
    _instant,
    _registration_fields,
    _uuid,
    identity_key,
    iso,
    read_envelope,
)
from kiosk.rectorat.store import json_text

log = logging.getLogger("kiosk.rectorat.service")

# str(uuid.UUID(text)) == text exactly for these: the id needs no round trip through UUID.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_BULK = ("account", "registration")
_CHUNK = 500  # SQLite: values bound in one statement, far below its limit
# COPY's text format: a backslash, tab, newline or carriage return inside a value is escaped.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")
_NULL = "\\N"
# An instant as the store writes it (ISO 8601, UTC, microseconds): kept as it came once
# the calendar has checked it. Such texts sort as their instants do.
_STORED_INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", re.ASCII)

ACCOUNT_COLUMNS = (
    "id", "version", "created_at", "updated_at", "email", "email_key", "family_name", "given_names",
    "password_hash", "status", "activated_at", "failed_logins", "locked_until", "received_at",
)  # fmt: skip
REGISTRATION_COLUMNS = (
    "id", "version", "created_at", "updated_at", "account_id", "session_id", "answers", "status", "saved_at",
    "withdrawn_at", "identity_key", "number", "paper_status", "missing_pieces", "received_at",
)  # fmt: skip
INTEREST_COLUMNS = ("kiosk_id", "account_id", "created_at")
CHANGE_COLUMNS = ("entity", "entity_id", "account_id", "created_at")


def _plain(item: object) -> tuple[str, str, int, dict] | None:
    """``(entity, id, version, data)`` of an item in the shape every kiosk sends; ``None``
    for anything else, which :func:`read_envelope` reads (and refuses, or not)."""
    if type(item) is not dict:
        return None
    entity, raw_id, version, data = item.get("entity"), item.get("id"), item.get("version"), item.get("data")
    if (
        entity in _BULK and type(raw_id) is str and _CANONICAL_UUID.fullmatch(raw_id) is not None
        and type(version) is int and version >= 1 and type(data) is dict
    ):  # fmt: skip
        return entity, raw_id, version, data
    return None


def _instant_text(data: Mapping[str, Any], key: str, *, null: bool = False) -> str | None:
    """``_instant`` as the text the store writes: most kiosks send exactly that text,
    which then needs no round trip through ``datetime``."""
    value = data.get(key)
    if type(value) is str and _STORED_INSTANT.fullmatch(value) is not None:
        try:
            datetime.fromisoformat(value)  # no 31 November, no 24:00
        except ValueError:
            raise Invalid(f"{key} is not an ISO 8601 instant") from None
        return value
    return iso(_instant(data, key, null=null))


def _uuid_text(value: object, what: str) -> str:
    """``_uuid`` as its canonical text, which most ids already are."""
    if type(value) is str and _CANONICAL_UUID.fullmatch(value) is not None:
        return value
    return str(_uuid(value, what))


def _per_session(compute: Callable[[ExamSession], str]) -> Callable[[ExamSession], str]:
    """``compute`` once per session of a batch (a batch is mostly one session)."""
    known: dict[int, str] = {}

    def value(session: ExamSession) -> str:
        found = known.get(id(session))
        if found is None:
            found = known[id(session)] = compute(session)
        return found

    return value


def _pg_array(values) -> str:
    """A text[] literal: one value that PostgreSQL parses at once, where psycopg2 would send
    a list as ``ARRAY['…', …]``, one expression per element to analyse and fold."""
    return "{" + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in sorted(values)) + "}"


def _copy_escaped(text: str) -> str:
    return text if _COPY_SPECIAL.search(text) is None else text.translate(_COPY_ESCAPES)


def _same(text: str) -> str:
    return text


def _own_identity(answers: Mapping[str, Any]) -> str | None | bool:
    """The identity key when the answers alone give it; ``False`` when it needs the
    account's names (answers without a family name or given names)."""
    if answers.get("family_name") and answers.get("given_names"):
        return identity_key(answers)
    return False


class BatchPath:
    """The bulk path over one service's store."""

    def __init__(self, service: RectoratService) -> None:
        self.service = service
        self.db = service.db
        self.postgresql = service.store.postgresql

    # -- one run ---------------------------------------------------------------------------

    def run(self, kiosk: KioskIdentity, items, start: int, now: datetime, results: list) -> int:
        """Decide and write items from ``start`` while they are simple; returns the index
        of the first item that needs the per-item path (or ``len(items)``)."""
        parsed = self._parse(items, start)
        account_ids: set[str] = set()  # the batch's accounts
        # Accounts that registrations refer to and the batch did not push before them:
        # only those can be held, or registered already, at the rectorat.
        known: set[str] = set()
        email_keys: set[str] = set()
        registration_ids: set[str] = set()
        sessions: set[str] = set()
        identities: set[str] = set()
        for entry in parsed:
            if entry[1] == "account":
                account_ids.add(entry[2])
                email_keys.add(entry[4]["email_key"])
            elif entry[1] == "registration":
                fields = entry[4]
                registration_ids.add(entry[2])
                if fields["account_id"] not in account_ids:
                    known.add(fields["account_id"])
                sessions.add(fields["session_id"])
                if entry[5]:
                    identities.add(entry[5])
        view = self._view(
            kiosk, account_ids | registration_ids, account_ids | known, known, email_keys, registration_ids,
            sessions, identities,
        )  # fmt: skip
        names = {row[1]: (row[2], row[3]) for row in view["a"]}
        owners = {row[1]: row[2] for row in view["e"]}
        existing_registrations = {row[1] for row in view["r"]}
        tombstones = {row[1] for row in view["t"]}
        conflicted = {row[1] for row in view["c"]}
        holds = {row[1] for row in view["h"]}
        taken_accounts = {(row[1], row[3]) for row in view["s"]}  # (session, account)
        taken_identities = {(row[1], row[2]) for row in view["s"] if row[2] is not None}
        taken_identities.update((row[1], row[2]) for row in view["i"])

        new_accounts: list[tuple] = []
        new_registrations: list[tuple] = []  # (index, key, version, fields, session)
        changes: list[tuple[str, str, str]] = []  # (entity, id, account id), in the batch's order
        late: list[tuple[int, tuple[str, str]]] = []  # identities only known from the account's names
        seen: set[str] = set()
        decided: list[tuple[int, Any]] = []
        stop = start + len(parsed)
        latest = iso(now + FUTURE_TOLERANCE)  # instants here are texts that sort as instants
        closing = _per_session(lambda session: iso(session.closes))
        for entry in parsed:
            index, kind = entry[0], entry[1]
            if kind == "slow":
                stop = index
                break
            if kind == "done":
                decided.append((index, {"id": entry[2], **entry[3]}))
                continue
            if kind == "invalid":
                decided.append((index, ("invalid", entry[2], entry[3])))
                continue
            _, entity, key, version, fields, own_identity = entry
            if key in seen or key in conflicted or key in tombstones:
                stop = index
                break
            if entity == "account":
                if key in names or fields["email_key"] in owners:
                    stop = index
                    break
                seen.add(key)
                names[key] = (fields["family_name"], fields["given_names"])
                owners[fields["email_key"]] = key
                holds.add(key)
                new_accounts.append((key, version, fields))
                changes.append(("account", key, key))
                decided.append((index, {"id": key, "result": "applied"}))
                continue
            if key in existing_registrations:
                stop = index
                break
            session = self.service.session(fields["session_id"])
            result = None
            if session is None:
                result = {"result": "refused", "reason": "session"}
            else:
                acted_at = max(fields["saved_at"], fields["withdrawn_at"] or fields["saved_at"])
                if acted_at >= closing(session):
                    result = {"result": "refused", "reason": "closed"}
                elif acted_at > latest:
                    result = {"result": "refused", "reason": "future"}
            account_key = fields["account_id"]
            if result is None:
                account_names = names.get(account_key)
                if account_names is None:
                    stop = index
                    break
                if account_key not in holds:
                    result = {"result": "refused", "reason": "forbidden"}
            if result is not None:
                decided.append((index, {"id": key, **result}))
                continue
            status = fields.pop("status")
            fields["status"] = status if status != "set_aside" else "registered"
            ident = own_identity if own_identity is not False else identity_key(fields["answers"], *account_names)
            fields["identity_key"] = ident
            session_id = fields["session_id"]
            if (session_id, account_key) in taken_accounts or (
                ident is not None and (session_id, ident) in taken_identities
            ):
                stop = index
                break
            if own_identity is False and ident is not None:
                late.append((len(new_registrations), (session_id, ident)))
            seen.add(key)
            taken_accounts.add((session_id, account_key))
            if ident is not None:
                taken_identities.add((session_id, ident))
            new_registrations.append((index, key, version, fields, session))
            changes.append(("registration", key, account_key))
            decided.append((index, {"id": key, "result": "applied"}))
        if late:
            # Identities made from the account's names: looked for now, and the run
            # ends before the first one the store already holds.
            clash = {
                (row[1], row[2])
                for row in self._view(kiosk, set(), set(), set(), set(), set(), {pair[0] for _, pair in late},
                                      {pair[1] for _, pair in late})["i"]
            }  # fmt: skip
            bad = [new_registrations[n][0] for n, pair in late if pair in clash]
            if bad:
                return self._retry_before(kiosk, items, start, min(bad), now, results)
        if new_accounts or new_registrations:
            try:
                with self.db.atomic():
                    self._write(kiosk, new_accounts, new_registrations, changes, now)
            except IntegrityError:
                # Another kiosk's transaction committed the same record or key since the
                # view was read: the per-item path looks again.
                for index, _ in decided:
                    results[index] = self.service._push_item(kiosk, items[index], now)
                return stop
        for index, result in decided:
            if isinstance(result, tuple):
                _, shown_id, problem = result
                log.info("kiosk %s pushed an invalid item %s: %s", kiosk.name, shown_id, problem)
                result = {"id": shown_id, "result": "refused", "reason": "invalid", "detail": str(problem)}
            elif result["result"] == "refused":
                log.info("kiosk %s: %s %s refused (%s)", kiosk.name, items[index].get("entity"), result["id"],
                         result["reason"])  # fmt: skip
            results[index] = result
        return stop

    def _retry_before(self, kiosk, items, start: int, first_bad: int, now: datetime, results: list) -> int:
        """An identity already taken in the store at ``first_bad``: decide up to it."""
        return self.run(kiosk, items[:first_bad], start, now, results)

    def _parse(self, items, start: int) -> list[tuple]:
        """Each item from ``start``, read: ``(index, entity, key, version, fields, identity)``,
        or ``(index, "done", id, refusal)``, ``(index, "invalid", id, problem)``, and last
        ``(index, "slow")`` for an entity the bulk path leaves to the per-item path."""
        parsed: list[tuple] = []
        for index in range(start, len(items)):
            item = items[index]
            plain = _plain(item)
            if plain is None:
                shown_id, read = read_envelope(item)
                if isinstance(read, dict):
                    parsed.append((index, "done", shown_id, read))
                    continue
                if read.entity not in _BULK:
                    parsed.append((index, "slow"))
                    break
                plain = (read.entity, shown_id, read.version, read.data)
            entity, key, version, data = plain
            try:
                if entity == "account":
                    parsed.append((index, entity, key, version, _account_fields(data, _instant_text), None))
                else:
                    fields, status = _registration_fields(data, _instant_text, _uuid_text)
                    fields["status"] = status
                    parsed.append((index, entity, key, version, fields, _own_identity(fields["answers"])))
            except Invalid as problem:
                parsed.append((index, "invalid", key, problem))
        return parsed

    # -- reading the view ------------------------------------------------------------------

    def _view(
        self, kiosk, item_ids, accounts, known, email_keys, registration_ids, sessions, identities
    ) -> dict[str, list]:
        """What the store holds of these keys, by tag: ``t`` tombstones and ``c``
        conflicts of the items, ``a`` accounts (id, names), ``e`` e-mail owners, ``r``
        registrations, ``h`` the kiosk's holds among ``known`` accounts, ``s``
        registrations of ``known`` accounts in these sessions, ``i`` registrations of
        these identities in these sessions. Rows are ``(tag, …)``."""
        # (tag, select list, table and condition, [fixed values], values of the last IN)
        queries = [
            ("a", "id, family_name, given_names", "rc_account WHERE id {in}", (), accounts),
            ("e", "email_key, id, NULL", "rc_account WHERE email_key {in}", (), email_keys),
            ("r", "id, NULL, NULL", "rc_registration WHERE id {in}", (), registration_ids),
            ("t", "entity_id, NULL, NULL", "rc_tombstone WHERE entity_id {in}", (), item_ids),
            ("c", "entity_id, NULL, NULL", "rc_conflict WHERE entity_id {in}", (), item_ids),
            ("h", "account_id, NULL, NULL", "rc_interest WHERE kiosk_id = {p} AND account_id {in}", (kiosk.id,),
             known),
            ("s", "session_id, identity_key, account_id", "rc_registration WHERE session_id {fixed} AND account_id {in}",
             tuple(sorted(sessions)), known),
            ("i", "session_id, identity_key, NULL", "rc_registration WHERE session_id {fixed} AND identity_key {in}",
             tuple(sorted(sessions)), identities),
        ]  # fmt: skip
        view: dict[str, list] = {tag: [] for tag, *_ in queries}
        queries = [q for q in queries if q[4] and ("{fixed}" not in q[2] or q[3])]
        if not queries:
            return view
        p = self.db.param
        if self.postgresql:
            # One statement, one round trip: each list goes as one array literal.
            parts, params = [], []
            for tag, columns, source, fixed, values in queries:
                where = source.format(p=p, fixed=f"= ANY({p}::text[])", **{"in": f"= ANY({p}::text[])"})
                parts.append(f"SELECT '{tag}', {columns} FROM {where}")
                if "{fixed}" in source:
                    params.append(_pg_array(fixed))
                else:
                    params.extend(fixed)
                params.append(_pg_array(values))
            rows = self.db.execute_sql(" UNION ALL ".join(parts), params).fetchall()
        else:
            rows = []
            for tag, columns, source, fixed, values in queries:
                values = sorted(values)
                fixed_marks = "IN (" + ", ".join([p] * len(fixed)) + ")"
                for at in range(0, len(values), _CHUNK):
                    chunk = values[at:at + _CHUNK]
                    where = source.format(p=p, fixed=fixed_marks, **{"in": "IN (" + ", ".join([p] * len(chunk)) + ")"})
                    rows.extend(self.db.execute_sql(f"SELECT '{tag}', {columns} FROM {where}", (*fixed, *chunk)).fetchall())
        for row in rows:
            view[row[0]].append(row)
        return view

    # -- writing ---------------------------------------------------------------------------

    def _write(self, kiosk: KioskIdentity, new_accounts, new_registrations, changes, now: datetime) -> None:
        stamp = iso(now)
        numbers = self._numbers([session for *_, session in new_registrations])
        # COPY reads text: NULL is \N, free texts are escaped. The other values (ids,
        # instants, statuses, numbers, identity keys) were checked and cannot hold a
        # character COPY would read otherwise.
        null, escaped = (_NULL, _copy_escaped) if self.postgresql else (None, _same)
        accounts = [
            (key, str(version), f["created_at"], f["updated_at"], escaped(f["email"]), escaped(f["email_key"]),
             escaped(f["family_name"]), escaped(f["given_names"]), escaped(f["password_hash"]), f["status"],
             f["activated_at"] or null, "0", null, stamp)
            for key, version, f in new_accounts
        ]  # fmt: skip
        interests = [(str(kiosk.id), key, stamp) for key, _, _ in new_accounts]
        registrations = [
            (key, str(version), f["created_at"], f["updated_at"], f["account_id"], f["session_id"],
             escaped(json_text(f["answers"])), f["status"], f["saved_at"], f["withdrawn_at"] or null,
             f["identity_key"] or null, number, null, null, stamp)
            for (_, key, version, f, _), number in zip(new_registrations, numbers)
        ]  # fmt: skip
        self._insert("rc_account", ACCOUNT_COLUMNS, accounts)
        self._insert("rc_interest", INTEREST_COLUMNS, interests, ignore_existing=True)
        self._insert("rc_registration", REGISTRATION_COLUMNS, registrations)
        self._insert("rc_change", CHANGE_COLUMNS, [(*change, stamp) for change in changes])

    def _insert(self, table: str, columns: tuple[str, ...], rows: list[tuple], ignore_existing: bool = False) -> None:
        """Rows of texts into ``table`` in one statement (SQLite gives each column its
        type). ``ignore_existing``: a row already there is left as it is (SQLite; on
        PostgreSQL the rows are new by construction: their account was inserted just
        before)."""
        if not rows:
            return
        with peewee.__exception_wrapper__:  # the driver's errors as peewee's (IntegrityError…)
            cursor = self.db.cursor()
            if self.postgresql:
                text = "\n".join(["\t".join(row) for row in rows]) + "\n"
                cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", io.StringIO(text), size=len(text))
                return
            marks = ", ".join(["?"] * len(columns))
            tail = " ON CONFLICT DO NOTHING" if ignore_existing else ""
            cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}){tail}", rows)

    def _numbers(self, sessions: list[ExamSession]) -> list[str]:
        """The next registration number of each, in order (see ``RectoratService._next_number``)."""
        if not sessions:
            return []
        prefix = _per_session(lambda session: f"{session.year}-{_academie_code(session.academie)}")
        prefixes = [prefix(session) for session in sessions]
        if self.postgresql:
            values = sorted(r[0] for r in self.db.execute_sql(
                "SELECT nextval('rc_registration_number') FROM generate_series(1, %s)", (len(prefixes),)
            ).fetchall())  # fmt: skip
            return [f"{prefix}-{n:06d}" for prefix, n in zip(prefixes, values)]
        counts: dict[str, int] = {}
        for prefix in prefixes:
            counts[prefix] = counts.get(prefix, 0) + 1
        p = self.db.param
        nexts: dict[str, int] = {}
        for prefix, count in counts.items():
            last = self.db.execute_sql(
                f"INSERT INTO rc_counter (prefix, last) VALUES ({p}, {p})"
                f" ON CONFLICT (prefix) DO UPDATE SET last = rc_counter.last + {p} RETURNING last",
                (prefix, count, count),
            ).fetchone()[0]
            nexts[prefix] = last - count + 1
        out = []
        for prefix in prefixes:
            out.append(f"{prefix}-{nexts[prefix]:06d}")
            nexts[prefix] += 1
        return out
