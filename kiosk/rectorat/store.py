"""The rectorat's store: its tables, their schema, and the change-feed sequencer.

One store is opened by URL with ``playhouse.db_url``: ``postgresql://…`` in production
(``postgresql+pool://…`` pools connections), ``sqlite:///path`` by default. The tables
mirror the kiosk's records (same ids, versions and ISO 8601 UTC instants stored as
text) plus what only the rectorat keeps: registration numbers and paper status,
conflicts, kiosk credentials and interests, and the change feed.

The model classes below are templates: :class:`RectoratStore` makes subclasses bound to
its own database, so that two stores (a SQLite and a PostgreSQL one in the same test
run, a server thread and a test) never share a binding.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from datetime import UTC
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse

import orjson
from peewee import (
    SQL,
    AutoField,
    BigAutoField,
    BigIntegerField,
    BlobField,
    CharField,
    CompositeKey,
    Database,
    IntegerField,
    Model,
    Node,
    TextField,
)

from kiosk.errors import StoreError
from kiosk.i18n import french
from kiosk.store.models import InstantField, UUIDTextField

SCHEMA_VERSION = 10
DEFAULT_FILE = "rectorat.sqlite3"

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "synchronous": "full",
    "busy_timeout": 10_000,
}
# Keys of PostgreSQL advisory locks taken inside transactions ("kiosk" in ASCII, then 1, 2).
SCHEMA_LOCK = 0x6B696F736B0001
SEQUENCER_LOCK = 0x6B696F736B0002
PRUNE_LOCK = 0x6B696F736B0003
VERSIONED_TABLES = ("rc_account", "rc_registration", "rc_address_change", "rc_conflict")


def json_text(value: object) -> str:
    """JSON as the store keeps it: compact, keys sorted, UTF-8 as is (orjson: the bulk
    push writes thousands of these a second, and must write the same text as a model)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode("utf-8")


class JSONText(TextField):
    """JSON stored as text; ``None`` is SQL NULL (not the text ``null``)."""

    def db_value(self, value: object) -> str | None:
        return None if value is None else json_text(value)

    def python_value(self, value: str | None) -> object:
        return None if value is None else orjson.loads(value)


def _references(table: str, on_delete: str = "CASCADE") -> list[Node]:
    return [SQL(f"REFERENCES {table} (id) ON DELETE {on_delete}")]


class _Template(Model):
    pass


class SchemaRow(_Template):
    version = IntegerField(primary_key=True)
    migrated_at = InstantField()

    class Meta:
        table_name = "rc_schema"


class Kiosk(_Template):
    """One kiosk's credential: only the SHA-256 of its token is kept."""

    id = AutoField()
    name = TextField(unique=True)
    token_sha256 = CharField(max_length=64)
    created_at = InstantField()
    revoked_at = InstantField(null=True)

    class Meta:
        table_name = "rc_kiosk"


class Account(_Template):
    id = UUIDTextField(primary_key=True)
    version = BigIntegerField()  # up to 2**63 - 1 (items.MAX_VERSION); INTEGER before schema 4
    created_at = InstantField()
    updated_at = InstantField()
    email = TextField()
    email_key = TextField(unique=True)
    family_name = TextField()
    given_names = TextField()
    password_hash = TextField()
    status = CharField(max_length=16)  # pending | active
    activated_at = InstantField(null=True)
    # The rectorat's own: login delays for « login elsewhere ».
    failed_logins = IntegerField(default=0)
    locked_until = InstantField(null=True)
    received_at = InstantField()
    # The kiosk that pushed it first, which holds it without an rc_interest row (schema 3;
    # NULL for an account received before, whose holders are all in rc_interest). Not a
    # foreign key since schema 5: the service writes it from the authenticated kiosk only,
    # and a kiosk is revoked, never deleted; the check cost every pushed account a lookup
    # and a lock on its kiosk's row.
    origin_kiosk_id = IntegerField(null=True)
    # The language of the account's mails, as its candidate chose at sign-up (schema 6).
    language = CharField(max_length=8, default="fr")

    class Meta:
        table_name = "rc_account"


class Registration(_Template):
    id = UUIDTextField(primary_key=True)
    version = BigIntegerField()
    created_at = InstantField()
    updated_at = InstantField()
    # Not a foreign key since schema 9 (PostgreSQL): the check cost every pushed
    # registration a probe of rc_account's primary key and a lock on the account's row.
    # Only a pending account is ever deleted, with its registrations: the batch path
    # leaves a registration of a stored pending account to the per-item path, which
    # locks the account's row as the key did (bulk.Part.PENDING_ACCOUNTS).
    account_id = UUIDTextField()
    session_id = TextField()
    answers = JSONText()
    status = CharField(max_length=16)  # registered | withdrawn | set_aside
    saved_at = InstantField()
    withdrawn_at = InstantField(null=True)
    # Family name, given names and birth date, normalised; NULL once set aside, so that
    # a registration set aside never blocks another.
    identity_key = TextField(null=True)
    # Written by the rectorat only.
    number = TextField(null=True, unique=True)
    paper_status = CharField(
        max_length=16, null=True
    )  # received | complete | incomplete | validated
    missing_pieces = JSONText(null=True)
    received_at = InstantField()
    # The highest version each kiosk wrote, ``{"kiosk id": version}`` (NULL: none since
    # schema 10): a kiosk's change sent again is known for its own, and one made on top
    # of the kiosk's own version goes on from it, whatever base the kiosk knew.
    kiosk_versions = JSONText(null=True)

    class Meta:
        table_name = "rc_registration"
        indexes = (
            (("identity_key", "session_id"), True),
            (("account_id", "session_id"), True),
        )


class AddressChange(_Template):
    id = UUIDTextField(primary_key=True)
    version = BigIntegerField()
    created_at = InstantField()
    updated_at = InstantField()
    registration_id = UUIDTextField(constraints=_references("rc_registration"), index=True)
    address = JSONText()
    received_at = InstantField()
    # The exam office applied it to the registration (schema 8): who, and when.
    applied_at = InstantField(null=True)
    applied_by = TextField(null=True)

    class Meta:
        table_name = "rc_address_change"


class Document(_Template):
    """A PDF the exam office put at a candidate's disposal (schema 8): a convocation, a
    relevé de notes… The kiosks that hold the account pull it; its bytes are kept once
    per content, in :class:`DocumentContent`."""

    id = UUIDTextField(primary_key=True, default=uuid.uuid4)
    version = BigIntegerField(default=1)
    created_at = InstantField()
    updated_at = InstantField()
    account_id = UUIDTextField(constraints=_references("rc_account"), index=True)
    registration_id = UUIDTextField(constraints=_references("rc_registration"), index=True)
    title = TextField()
    sha256 = CharField(max_length=64)
    size = IntegerField()
    published_by = TextField()

    class Meta:
        table_name = "rc_document"


class DocumentContent(_Template):
    """A published PDF's bytes, by their SHA-256: the same file published twice is kept once."""

    sha256 = CharField(max_length=64, primary_key=True)
    content = BlobField()

    class Meta:
        table_name = "rc_document_content"


class Conflict(_Template):
    """A pushed item kept aside for the exam office: never applied, never dropped."""

    id = UUIDTextField(primary_key=True, default=uuid.uuid4)
    kind = CharField(
        max_length=32
    )  # email_key | identity | account_session | account | registration | version
    entity = CharField(max_length=32)
    entity_id = UUIDTextField(index=True)
    version = BigIntegerField()
    incoming = JSONText()  # the item's data as pushed
    existing_id = TextField(null=True)  # the record (or conflict) it collides with
    kiosk_id = IntegerField(constraints=_references("rc_kiosk", "RESTRICT"))
    created_at = InstantField()
    resolved_at = InstantField(null=True)
    resolution = TextField(null=True)
    resolved_by = TextField(null=True)

    class Meta:
        table_name = "rc_conflict"


class Code(_Template):
    """A one-time code a kiosk mailed (schema 7): its hashes, so that it works at every
    kiosk, and its link too (kiosk.rectorat.codes)."""

    id = UUIDTextField(primary_key=True)
    version = BigIntegerField()
    account_id = UUIDTextField(constraints=_references("rc_account"), index=True)
    purpose = CharField(max_length=16)  # activation | reset
    code_hash = TextField()
    link_hash = CharField(max_length=64, null=True, unique=True)
    expires_at = InstantField()
    tries_left = IntegerField()
    spent_at = InstantField(null=True)
    created_at = InstantField()
    updated_at = InstantField()

    class Meta:
        table_name = "rc_code"


class Interest(_Template):
    """A kiosk holds this account: it borrowed it for a login (or, before schema 3, pushed
    it; since then the kiosk that pushes an account holds it by ``rc_account.origin_kiosk_id``)."""

    kiosk_id = IntegerField(constraints=_references("rc_kiosk", "CASCADE"))
    account_id = UUIDTextField(constraints=_references("rc_account"), index=True)
    created_at = InstantField()

    class Meta:
        table_name = "rc_interest"
        primary_key = CompositeKey("kiosk_id", "account_id")


class Change(_Template):
    """One write, for the feed; ``seq`` is given by the sequencer once committed.

    Its indexes on ``seq`` (unique), ``(account_id, seq)`` and ``(origin_kiosk_id, seq)``
    hold numbered rows only (:data:`_CHANGE_INDEXES`, :data:`_FEED_ORIGIN_INDEX`): a push
    inserts into the primary key and the small index of unnumbered rows, and the
    sequencer, which rewrites each row anyway, fills the others."""

    id = BigAutoField()
    seq = BigIntegerField(null=True)
    entity = CharField(max_length=32)
    entity_id = UUIDTextField()
    account_id = UUIDTextField()  # whose record: the feed is filtered by interests
    created_at = InstantField()
    # The kiosk that holds the account by origin (rc_account.origin_kiosk_id), written by
    # the batch push of that kiosk, or else by the sequencer with the number (schema 4): a
    # kiosk's feed reads its range of one index, plus the few accounts it borrowed.
    origin_kiosk_id = IntegerField(null=True)

    class Meta:
        table_name = "rc_change"


class Tombstone(_Template):
    """A deleted record, so that a replayed push cannot bring it back."""

    entity_id = UUIDTextField(primary_key=True)
    entity = CharField(max_length=32)
    reason = TextField()
    kiosk_id = IntegerField(null=True)
    deleted_at = InstantField()

    class Meta:
        table_name = "rc_tombstone"


class Counter(_Template):
    """The last registration number given under a prefix (year and académie)."""

    prefix = TextField(primary_key=True)
    last = BigIntegerField(default=0)

    class Meta:
        table_name = "rc_counter"


class Staff(_Template):
    """A member of the exam office or the reception who works on this store (schema 2)."""

    id = UUIDTextField(primary_key=True, default=uuid.uuid4)
    version = IntegerField(default=1)
    created_at = InstantField()
    updated_at = InstantField()
    name = TextField(unique=True)
    role = CharField(max_length=16)  # reception | exam_office
    password_hash = TextField()
    failed_logins = IntegerField(default=0)
    locked_until = InstantField(null=True)
    disabled_at = InstantField(null=True)

    class Meta:
        table_name = "rc_staff"

    def touch(self, now) -> None:
        self.version += 1
        self.updated_at = now


class Audit(_Template):
    """The staff console's trail on this store: who saw or changed what, when (schema 2).

    Its id follows the order of writing: lines made in the same instant keep their order."""

    id = BigAutoField()
    created_at = InstantField(index=True)
    staff = TextField()
    role = CharField(max_length=16)
    action = CharField(max_length=32)
    subject = TextField(null=True, index=True)
    detail = TextField(default="")

    class Meta:
        table_name = "rc_audit"


TEMPLATES: tuple[type[Model], ...] = (
    SchemaRow,
    Kiosk,
    Account,
    Registration,
    AddressChange,
    Conflict,
    Interest,
    Change,
    Tombstone,
    Counter,
    Staff,
    Audit,
    Code,
    Document,
    DocumentContent,
)
"""In creation order: a table comes after those it references."""

_CHANGE_INDEXES = (
    # The feed's, over numbered rows only (schema 3): a condition on seq (> after, <= top)
    # or ``seq IS NOT NULL`` implies the index's, so both databases use them.
    "CREATE UNIQUE INDEX IF NOT EXISTS change_seq ON rc_change (seq) WHERE seq IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS change_account_id_seq ON rc_change (account_id, seq)"
    " WHERE seq IS NOT NULL",
)
_FEED_ORIGIN_INDEX = (  # schema 4
    "CREATE INDEX IF NOT EXISTS change_origin_kiosk_id_seq ON rc_change (origin_kiosk_id, seq)"
    " WHERE seq IS NOT NULL"
)
_EXTRA_INDEXES = (
    # What the sequencer looks for, and only that: the index stays tiny.
    "CREATE INDEX IF NOT EXISTS rc_change_unsequenced ON rc_change (id) WHERE seq IS NULL",
    "CREATE INDEX IF NOT EXISTS rc_conflict_open ON rc_conflict (created_at)"
    " WHERE resolved_at IS NULL",
    "CREATE INDEX IF NOT EXISTS account_origin_kiosk_id ON rc_account (origin_kiosk_id)",
    *_CHANGE_INDEXES,
    _FEED_ORIGIN_INDEX,
)


M = TypeVar("M", bound=Model)


def _bound(template: type[M], db: Database) -> type[M]:
    """A subclass of ``template`` bound to ``db``: still a ``template`` for type hints."""
    meta = type("Meta", (), {"database": db, "table_name": template._meta.table_name})
    return type(template.__name__, (template,), {"Meta": meta, "__module__": __name__})


def sqlite_url(path: Path | str) -> str:
    return f"sqlite:///{Path(path).resolve()}"


def default_url(data_dir: Path | str) -> str:
    return sqlite_url(Path(data_dir) / DEFAULT_FILE)


class RectoratStore:
    """The rectorat's database and its models bound to it: ``store.Account`` and so on."""

    def __init__(self, db: Database, url: str) -> None:
        self.db = db
        self.url = url
        self.backend = (
            "postgresql"
            if urlparse(url).scheme.startswith(("postgres", "postgresql"))
            else "sqlite"
        )
        # SQLite has one writer: this process's threads queue here, in turn, rather
        # than poll SQLite's busy handler (which is unfair, and gives up after its timeout).
        self._write_lock = threading.RLock() if self.backend == "sqlite" else None
        self.SchemaRow = _bound(SchemaRow, db)
        self.Kiosk = _bound(Kiosk, db)
        self.Account = _bound(Account, db)
        self.Registration = _bound(Registration, db)
        self.AddressChange = _bound(AddressChange, db)
        self.Conflict = _bound(Conflict, db)
        self.Interest = _bound(Interest, db)
        self.Change = _bound(Change, db)
        self.Tombstone = _bound(Tombstone, db)
        self.Counter = _bound(Counter, db)
        self.Staff = _bound(Staff, db)
        self.Audit = _bound(Audit, db)
        self.Code = _bound(Code, db)
        self.Document = _bound(Document, db)
        self.DocumentContent = _bound(DocumentContent, db)
        self.models: tuple[type[Model], ...] = (
            self.SchemaRow, self.Kiosk, self.Account, self.Registration, self.AddressChange,
            self.Conflict, self.Interest, self.Change, self.Tombstone, self.Counter, self.Staff,
            self.Audit, self.Code, self.Document, self.DocumentContent,
        )  # fmt: skip

    @property
    def postgresql(self) -> bool:
        return self.backend == "postgresql"

    @contextlib.contextmanager
    def write(self):
        """A write transaction (a savepoint when one is open already)."""
        if self._write_lock is None:
            with self.db.atomic():
                yield
            return
        with self._write_lock, self.db.atomic():
            yield

    def close(self) -> None:
        if not self.db.is_closed():
            self.db.close()
        close_all = getattr(self.db, "close_all", None)
        if close_all is not None:  # a pool: its idle connections too
            close_all()

    # -- schema ------------------------------------------------------------------------

    def schema_version(self) -> int:
        if not self.db.table_exists("rc_schema"):
            return 0
        row = self.db.execute_sql("SELECT MAX(version) FROM rc_schema").fetchone()
        return row[0] or 0

    def migrate(self, now=None) -> int:
        """Create the schema, or bring it up to date, with the kiosk's migration runner
        (:mod:`kiosk.store.schema`): one transaction a step, under the schema lock, each
        step adding its row to rc_schema. A new store is made at once at the latest
        version (one row); an older one takes the steps it has not had."""
        from datetime import datetime

        from kiosk.store import schema

        migrated_at = now or datetime.now(UTC)

        @contextlib.contextmanager
        def locked():
            with self.write():
                if self.postgresql:
                    self.db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                yield

        def create_all() -> None:
            for model in self.models:
                model.create_table(safe=True)
            for statement in _EXTRA_INDEXES:
                self.db.execute_sql(statement)
            if self.postgresql:
                self.db.execute_sql("CREATE SEQUENCE IF NOT EXISTS rc_registration_number")

        def staff_and_audit() -> None:
            self.Staff.create_table(safe=True)
            self.Audit.create_table(safe=True)

        versioning = schema.Versioning(
            read=self.schema_version,
            write=lambda number: self.SchemaRow.create(version=number, migrated_at=migrated_at),
            transaction=locked,
        )
        steps = [
            schema.Migration(2, "staff and audit", staff_and_audit),
            schema.Migration(3, "origin kiosk, numbered feed", self._migrate_to_3),
            schema.Migration(4, "64-bit versions", self._migrate_to_4),
            schema.Migration(5, "origin kiosk without a foreign key", self._migrate_to_5),
            schema.Migration(6, "the language of an account's mails", self._migrate_to_6),
            schema.Migration(7, "one-time codes", lambda: self.Code.create_table(safe=True)),
            schema.Migration(8, "address changes applied, published documents", self._migrate_to_8),
            schema.Migration(9, "registrations' account without a foreign key", self._migrate_to_9),
            schema.Migration(10, "the versions each kiosk wrote", self._migrate_to_10),
        ]
        return schema.migrate(
            versioning,
            steps,
            baseline=schema.Migration(SCHEMA_VERSION, "the whole schema", create_all),
            what="the rectorat store",
        )

    def _migrate_to_3(self) -> None:
        """Schema 3: the kiosk that pushes an account holds it by ``origin_kiosk_id``
        (accounts received before keep their holders in rc_interest, left as they are),
        and the feed's indexes on rc_change hold numbered rows only."""
        self.db.execute_sql(
            "ALTER TABLE rc_account ADD COLUMN origin_kiosk_id INTEGER"
            " REFERENCES rc_kiosk (id) ON DELETE SET NULL"
        )
        self.db.execute_sql(
            "CREATE INDEX IF NOT EXISTS account_origin_kiosk_id ON rc_account (origin_kiosk_id)"
        )
        self.db.execute_sql("DROP INDEX IF EXISTS change_seq")
        self.db.execute_sql("DROP INDEX IF EXISTS change_account_id_seq")
        for statement in _CHANGE_INDEXES:
            self.db.execute_sql(statement)

    def _migrate_to_4(self) -> None:
        """Schema 4: versions are 64-bit (PostgreSQL's were ``integer``; SQLite's integers
        are 64-bit already): a kiosk's version up to 2**63 - 1 is stored as it came; and
        each numbered change carries its account's origin kiosk, indexed with ``seq``:
        a pull reads one index range, whatever the feed's history."""
        if self.postgresql:
            for table in VERSIONED_TABLES:
                self.db.execute_sql(f"ALTER TABLE {table} ALTER COLUMN version TYPE BIGINT")
        columns = [column.name for column in self.db.get_columns("rc_change")]
        if "origin_kiosk_id" not in columns:
            self.db.execute_sql("ALTER TABLE rc_change ADD COLUMN origin_kiosk_id INTEGER")
        self.db.execute_sql(
            "UPDATE rc_change SET origin_kiosk_id = rc_account.origin_kiosk_id FROM rc_account"
            " WHERE rc_account.id = rc_change.account_id AND rc_change.seq IS NOT NULL"
        )
        self.db.execute_sql(_FEED_ORIGIN_INDEX)

    def _migrate_to_6(self) -> None:
        """Schema 6: ``rc_account.language``; the accounts received before were all
        mailed in French."""
        if "language" not in [column.name for column in self.db.get_columns("rc_account")]:
            self.db.execute_sql(
                "ALTER TABLE rc_account ADD COLUMN language VARCHAR(8) NOT NULL DEFAULT 'fr'"
            )

    def _migrate_to_8(self) -> None:
        """Schema 8: an address change records when the exam office applied it; the
        documents published for candidates, and their contents."""
        columns = [column.name for column in self.db.get_columns("rc_address_change")]
        for name, kind in (("applied_at", "TEXT"), ("applied_by", "TEXT")):
            if name not in columns:
                self.db.execute_sql(f"ALTER TABLE rc_address_change ADD COLUMN {name} {kind}")
        self.Document.create_table(safe=True)
        self.DocumentContent.create_table(safe=True)

    def _migrate_to_5(self) -> None:
        """Schema 5: ``rc_account.origin_kiosk_id`` is no longer checked against rc_kiosk
        (see :class:`Account`). PostgreSQL drops the constraint; SQLite keeps it (dropping
        it means rebuilding the table, and there the check is one lookup in a small table)."""
        if self.postgresql:
            self.db.execute_sql(
                "ALTER TABLE rc_account DROP CONSTRAINT IF EXISTS rc_account_origin_kiosk_id_fkey"
            )

    def _migrate_to_9(self) -> None:
        """Schema 9: ``rc_registration.account_id`` is no longer checked against rc_account
        (see :class:`Registration`). PostgreSQL drops the constraint; SQLite keeps it, as
        for schema 5."""
        if self.postgresql:
            self.db.execute_sql(
                "ALTER TABLE rc_registration"
                " DROP CONSTRAINT IF EXISTS rc_registration_account_id_fkey"
            )

    def _migrate_to_10(self) -> None:
        """Schema 10: ``rc_registration.kiosk_versions``, the highest version each kiosk
        wrote; unknown (NULL) for the registrations received before."""
        columns = [column.name for column in self.db.get_columns("rc_registration")]
        if "kiosk_versions" not in columns:
            self.db.execute_sql("ALTER TABLE rc_registration ADD COLUMN kiosk_versions TEXT")

    # -- the sequencer -------------------------------------------------------------------

    def sequence(self, batch: int = 10_000, *, wait: bool = True) -> int:
        """Number the committed, unnumbered changes; returns how many were numbered.

        Each round is one transaction under a lock (PostgreSQL: an advisory lock;
        SQLite: the write lock, which ``BEGIN IMMEDIATE`` takes at once). A change whose
        transaction is still open is invisible here, so it is numbered by a later round,
        after everything numbered now: the numbers follow commit order, and a cursor
        that has passed a number never misses a change committed later.

        ``wait=False`` (before a pull): nothing is done when no change waits for its
        number (one look at a tiny index, no lock), nor, on PostgreSQL, when another
        round is under way: pulls never queue behind one another on the lock.
        """
        p = self.db.param
        if not wait and not self.unnumbered():
            return 0
        numbered = 0
        while True:
            with self.write():
                if self.postgresql:
                    if not wait:
                        taken = self.db.execute_sql(
                            f"SELECT pg_try_advisory_xact_lock({p})", (SEQUENCER_LOCK,)
                        ).fetchone()[0]
                        if not taken:
                            return numbered
                    else:
                        self.db.execute_sql(f"SELECT pg_advisory_xact_lock({p})", (SEQUENCER_LOCK,))
                top = self.last_seq()
                cursor = self.db.execute_sql(
                    "UPDATE rc_change SET seq = numbered.rn + " + p + ","
                    " origin_kiosk_id = COALESCE(rc_change.origin_kiosk_id,"
                    " (SELECT origin_kiosk_id FROM rc_account"
                    " WHERE rc_account.id = rc_change.account_id)) FROM ("
                    " SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS rn FROM rc_change"
                    " WHERE seq IS NULL ORDER BY id LIMIT " + p + ") AS numbered"
                    " WHERE rc_change.id = numbered.id",
                    (top, batch),
                )
                count = cursor.rowcount
            numbered += max(count, 0)
            if count < batch:
                return numbered

    def unnumbered(self) -> bool:
        """Whether a committed change waits for its number (read from the tiny index of
        unnumbered rows)."""
        found = self.db.execute_sql("SELECT 1 FROM rc_change WHERE seq IS NULL LIMIT 1")
        return found.fetchone() is not None

    def prune_feed(self, batch: int = 50_000) -> int:
        """Apply the feed's retention rule; returns how many change rows went.

        The feed sends a record's state when pulled, not what a change held: a numbered
        change is of no use once a newer change of the same record is numbered (a kiosk
        behind both gets the newer), nor once its record is gone (deleted since). Those
        rows are deleted, ``batch`` at a time, each batch its own transaction; rc_change
        then holds about one row per record, whatever the history. Unnumbered rows are
        never touched. PostgreSQL: one process at a time (an advisory lock; the others
        skip).
        """
        p = self.db.param
        superseded = (
            "SELECT id FROM (SELECT id, ROW_NUMBER() OVER"
            " (PARTITION BY entity, entity_id ORDER BY seq DESC) AS newer FROM rc_change"
            " WHERE seq IS NOT NULL) AS ranked WHERE newer > 1"
        )
        gone = " UNION ALL ".join(
            f"SELECT id FROM rc_change WHERE seq IS NOT NULL AND entity = '{entity}'"
            f" AND NOT EXISTS (SELECT 1 FROM {table} WHERE {table}.id = rc_change.entity_id)"
            for entity, table in (
                ("account", "rc_account"),
                ("registration", "rc_registration"),
                ("address_change", "rc_address_change"),
            )
        )
        pruned = 0
        for candidates in (superseded, gone):
            while True:
                with self.write():
                    if self.postgresql:
                        taken = self.db.execute_sql(
                            f"SELECT pg_try_advisory_xact_lock({p})", (PRUNE_LOCK,)
                        ).fetchone()[0]
                        if not taken:
                            return pruned
                    cursor = self.db.execute_sql(
                        f"DELETE FROM rc_change WHERE id IN ({candidates} LIMIT {p})", (batch,)
                    )
                    count = max(cursor.rowcount, 0)
                pruned += count
                if count < batch:
                    break
        return pruned

    def head(self) -> tuple[int, bool]:
        """:meth:`last_seq`, and :meth:`unnumbered`, in one statement: what a pull asks first."""
        top, waiting = self.db.execute_sql(
            "SELECT (SELECT COALESCE(MAX(seq), 0) FROM rc_change WHERE seq IS NOT NULL),"
            " EXISTS (SELECT 1 FROM rc_change WHERE seq IS NULL)"
        ).fetchone()
        return top, bool(waiting)

    def last_seq(self) -> int:
        # The condition lets SQLite read the maximum from the partial index on seq.
        return self.db.execute_sql(
            "SELECT COALESCE(MAX(seq), 0) FROM rc_change WHERE seq IS NOT NULL"
        ).fetchone()[0]


def open_store(url: str, *, pool: bool = False, max_connections: int = 32) -> RectoratStore:
    """Open the store at ``url`` (creating the schema when needed).

    ``pool``: for the server, a PostgreSQL URL is opened with peewee's connection pool
    (connections are taken and given back around each request).
    """
    from playhouse.db_url import connect

    try:
        parsed = urlparse(url)
        parsed.port  # noqa: B018  a port that is no number is found here, not by the driver
    except ValueError as error:
        raise StoreError(french("cli.rectorat.store_bad_url", detail=error)) from error
    scheme = parsed.scheme
    kwargs: dict[str, object] = {}
    if scheme.startswith("sqlite"):
        path = parsed.path[1:]
        if not path or path == ":memory:":
            raise StoreError(french("cli.rectorat.store_needs_file"))
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Every transaction here writes: take the write lock at BEGIN, never upgrade.
        kwargs = {"pragmas": SQLITE_PRAGMAS, "lock_type": "IMMEDIATE"}
    elif scheme in ("postgres", "postgresql"):
        # psycopg 3, even where psycopg2 is installed too (peewee would take psycopg2):
        # the bulk path's COPY is written for it.
        kwargs = {"prefer_psycopg3": True}
        if pool:
            url = url.replace(f"{scheme}://", f"{scheme}+pool://", 1)
            kwargs |= {"max_connections": max_connections, "stale_timeout": 300, "timeout": 30}
    elif not scheme.startswith(("postgres", "postgresql")):
        raise StoreError(french("cli.rectorat.store_scheme", scheme=scheme))
    try:
        db = connect(url, **kwargs)
    except (RuntimeError, ValueError) as error:
        raise StoreError(french("cli.rectorat.store_bad_url", detail=error)) from error
    store = RectoratStore(db, url)
    try:
        with db.connection_context():
            store.migrate()
        if scheme.startswith("sqlite"):
            from kiosk.private import private_if_present

            # Password hashes, codes' hashes, documents: for the service's account alone
            # (SQLite gives its journal files the store's own mode).
            for suffix in ("", "-wal", "-shm"):
                private_if_present(Path(f"{path}{suffix}"))
    except StoreError:
        store.close()
        raise
    except Exception as error:
        store.close()
        raise StoreError(
            french(
                "cli.rectorat.store_unreachable",
                detail=f"{type(error).__name__}: {_first_line(error)}",
            )
        ) from error
    return store


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""
