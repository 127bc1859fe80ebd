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
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import peewee
from peewee import IntegrityError

from kiosk.clock import instant_text
from kiosk.exam_sessions import ExamSession
from kiosk.rectorat.service import (
    _TEXT_MAX,
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
    "password_hash", "status", "activated_at", "failed_logins", "locked_until", "received_at", "origin_kiosk_id",
)  # fmt: skip
REGISTRATION_COLUMNS = (
    "id", "version", "created_at", "updated_at", "account_id", "session_id", "answers", "status", "saved_at",
    "withdrawn_at", "identity_key", "number", "paper_status", "missing_pieces", "received_at",
)  # fmt: skip
CHANGE_COLUMNS = ("entity", "entity_id", "account_id", "created_at")


def _plain(item: object) -> tuple[str, str, int, dict] | None:
    """``(entity, id, version, data)`` of an item in the shape every kiosk sends; ``None``
    for anything else, which :func:`read_envelope` reads (and refuses, or not)."""
    if type(item) is not dict:
        return None
    entity, raw_id, version, data = (
        item.get("entity"),
        item.get("id"),
        item.get("version"),
        item.get("data"),
    )
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
    return instant_text(_instant(data, key, null=null))


def _fast_account(data: dict) -> dict | None:
    """:func:`_account_fields` for the account every kiosk sends (texts in bounds, an ASCII
    e-mail key), its instants checked already (:func:`_checked_instants`); ``None`` for
    anything else, which the full reader then reads (and refuses with its message, or not)."""
    get = data.get
    email, key, family, given, password_hash = (
        get("email"),
        get("email_key"),
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
    if not (
        type(email) is str and 0 < len(email) <= 320 and type(key) is str and 0 < len(key) <= 320
        and type(family) is str and 0 < len(family) <= _TEXT_MAX and type(given) is str
        and 0 < len(given) <= _TEXT_MAX and type(password_hash) is str and 0 < len(password_hash) <= _TEXT_MAX
        and (status == "active" or status == "pending") and key.isascii() and "@" in key
        and created is not None and updated is not None
    ):  # fmt: skip
        return None
    # An ASCII key: NFC and IDNA leave it as it is, email_key only lowers it.
    return {
        "created_at": created, "updated_at": updated, "email": email, "email_key": key.lower(),
        "family_name": family, "given_names": given, "password_hash": password_hash, "status": status,
        "activated_at": activated,
    }  # fmt: skip


_STATUSES = frozenset(("registered", "withdrawn", "set_aside"))


def _fast_registration(data: dict) -> dict | None:
    """:func:`_registration_fields` (its status in ``status``) for the registration every
    kiosk sends; ``None`` for anything else (see :func:`_fast_account`)."""
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
        type(account_id) is str and _CANONICAL_UUID.fullmatch(account_id) is not None and type(session_id) is str
        and 0 < len(session_id) <= 64 and type(answers) is dict and type(status) is str and status in _STATUSES
        and created is not None and updated is not None and saved is not None
    ):  # fmt: skip
        return None
    return {
        "created_at": created, "updated_at": updated, "account_id": account_id, "session_id": session_id,
        "answers": answers, "saved_at": saved, "withdrawn_at": withdrawn, "status": status,
    }  # fmt: skip


def _checked_instants(data: dict, keys: tuple[str, ...], instants: set[str]) -> bool:
    """Whether each value under ``keys`` is ``None`` or an instant as the store writes it,
    a real date; ``instants`` holds the texts checked already (a batch repeats many)."""
    for key in keys:
        value = data.get(key)
        if value is None:
            continue
        if type(value) is not str:
            return False
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
    return (
        "{"
        + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in sorted(values))
        + "}"
    )


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
        late: list[
            tuple[int, tuple[str, str]]
        ] = []  # identities only known from the account's names
        seen: set[str] = set()
        decided: list[tuple[int, Any]] = []
        stop = start + len(parsed)
        latest = instant_text(now + FUTURE_TOLERANCE)  # instants here are texts that sort as instants
        closing = _per_session(lambda session: instant_text(session.closes))
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
            ident = (
                own_identity
                if own_identity is not False
                else identity_key(fields["answers"], *account_names)
            )
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
                result = {
                    "id": shown_id,
                    "result": "refused",
                    "reason": "invalid",
                    "detail": str(problem),
                }
            elif result["result"] == "refused":
                log.info("kiosk %s: %s %s refused (%s)", kiosk.name, items[index].get("entity"), result["id"],
                         result["reason"])  # fmt: skip
            results[index] = result
        return stop

    def _retry_before(
        self, kiosk, items, start: int, first_bad: int, now: datetime, results: list
    ) -> int:
        """An identity already taken in the store at ``first_bad``: decide up to it."""
        return self.run(kiosk, items[:first_bad], start, now, results)

    def _parse(self, items, start: int) -> list[tuple]:
        """Each item from ``start``, read: ``(index, entity, key, version, fields, identity)``,
        or ``(index, "done", id, refusal)``, ``(index, "invalid", id, problem)``, and last
        ``(index, "slow")`` for an entity the bulk path leaves to the per-item path."""
        parsed: list[tuple] = []
        instants: set[str] = set()  # instant texts checked already
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
                    fast = type(data) is dict and _checked_instants(
                        data, _ACCOUNT_INSTANTS, instants
                    )
                    fields = _fast_account(data) if fast else None
                    if fields is None:
                        fields = _account_fields(data, _instant_text)
                    parsed.append((index, entity, key, version, fields, None))
                else:
                    fast = type(data) is dict and _checked_instants(
                        data, _REGISTRATION_INSTANTS, instants
                    )
                    fields = _fast_registration(data) if fast else None
                    if fields is None:
                        fields, status = _registration_fields(data, _instant_text, _uuid_text)
                        fields["status"] = status
                    parsed.append(
                        (index, entity, key, version, fields, _own_identity(fields["answers"]))
                    )
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
        # (tag, select list, table, condition on fixed values, [fixed values], column, values it may hold)
        queries = [
            ("a", "id, family_name, given_names", "rc_account", "", (), "id", accounts),
            ("e", "email_key, id, NULL", "rc_account", "", (), "email_key", email_keys),
            ("r", "id, NULL, NULL", "rc_registration", "", (), "id", registration_ids),
            ("t", "entity_id, NULL, NULL", "rc_tombstone", "", (), "entity_id", item_ids),
            ("c", "entity_id, NULL, NULL", "rc_conflict", "", (), "entity_id", item_ids),
            ("h", "id, NULL, NULL", "rc_account", "origin_kiosk_id = {p}", (kiosk.id,), "id", known),
            ("h", "account_id, NULL, NULL", "rc_interest", "kiosk_id = {p}", (kiosk.id,), "account_id", known),
            ("s", "session_id, identity_key, account_id", "rc_registration", "session_id {fixed}",
             tuple(sorted(sessions)), "account_id", known),
            ("i", "session_id, identity_key, NULL", "rc_registration", "session_id {fixed}",
             tuple(sorted(sessions)), "identity_key", identities),
        ]  # fmt: skip
        view: dict[str, list] = {tag: [] for tag, *_ in queries}
        queries = [q for q in queries if q[6] and ("{fixed}" not in q[3] or q[4])]
        if not queries:
            return view
        p = self.db.param
        if self.postgresql:
            # One statement, one round trip: each list goes as one array literal.
            parts, params = [], []
            for tag, columns, table, condition, fixed, column, values in queries:
                where = condition.format(p=p, fixed=f"= ANY({p}::text[])")
                parts.append(f"SELECT '{tag}', {columns} FROM {table} WHERE {where + ' AND ' if where else ''}"
                             f"{column} = ANY({p}::text[])")  # fmt: skip
                if "{fixed}" in condition:
                    params.append(_pg_array(fixed))
                else:
                    params.extend(fixed)
                params.append(_pg_array(values))
            rows = self.db.execute_sql(" UNION ALL ".join(parts), params).fetchall()
        else:
            rows = []
            for tag, columns, table, condition, fixed, column, values in queries:
                values = sorted(values)
                where = condition.format(p=p, fixed="IN (" + ", ".join([p] * len(fixed)) + ")")
                for at in range(0, len(values), _CHUNK):
                    chunk = values[at : at + _CHUNK]
                    marks = ", ".join([p] * len(chunk))
                    condition = (
                        f"{where} AND {column} IN ({marks})" if where else f"{column} IN ({marks})"
                    )
                    sql = f"SELECT '{tag}', {columns} FROM {table} WHERE {condition}"
                    rows.extend(self.db.execute_sql(sql, (*fixed, *chunk)).fetchall())
        for row in rows:
            view[row[0]].append(row)
        return view

    # -- writing ---------------------------------------------------------------------------

    def _write(
        self, kiosk: KioskIdentity, new_accounts, new_registrations, changes, now: datetime
    ) -> None:
        stamp, origin = instant_text(now), str(kiosk.id)  # the kiosk that pushes an account holds it
        numbers = self._numbers([session for *_, session in new_registrations])
        # COPY reads text: NULL is \N, free texts are escaped. The other values (ids,
        # instants, statuses, numbers, identity keys) were checked and cannot hold a
        # character COPY would read otherwise.
        null, escaped = (_NULL, _copy_escaped) if self.postgresql else (None, _same)
        accounts = [
            (key, str(version), f["created_at"], f["updated_at"], escaped(f["email"]), escaped(f["email_key"]),
             escaped(f["family_name"]), escaped(f["given_names"]), escaped(f["password_hash"]), f["status"],
             f["activated_at"] or null, "0", null, stamp, origin)
            for key, version, f in new_accounts
        ]  # fmt: skip
        registrations = [
            (key, str(version), f["created_at"], f["updated_at"], f["account_id"], f["session_id"],
             escaped(json_text(f["answers"])), f["status"], f["saved_at"], f["withdrawn_at"] or null,
             f["identity_key"] or null, number, null, null, stamp)
            for (_, key, version, f, _), number in zip(new_registrations, numbers)
        ]  # fmt: skip
        self._insert("rc_account", ACCOUNT_COLUMNS, accounts)
        self._insert("rc_registration", REGISTRATION_COLUMNS, registrations)
        self._insert("rc_change", CHANGE_COLUMNS, [(*change, stamp) for change in changes])

    def _insert(self, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        """Rows of texts into ``table`` in one statement (SQLite gives each column its type)."""
        if not rows:
            return
        with peewee.__exception_wrapper__:  # the driver's errors as peewee's (IntegrityError…)
            cursor = self.db.cursor()
            if self.postgresql:
                text = "\n".join(["\t".join(row) for row in rows]) + "\n"
                cursor.copy_expert(
                    f"COPY {table} ({', '.join(columns)}) FROM STDIN",
                    io.StringIO(text),
                    size=len(text),
                )
                return
            marks = ", ".join(["?"] * len(columns))
            cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)

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
