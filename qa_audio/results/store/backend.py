"""Where a results store lives: an SQLite file (the embedded default) or a PostgreSQL database (a team on
several machines, a Dask cluster), behind one SQL layer.

The store's queries are written once, in the SQL both databases speak, with ``?`` placeholders. What
differs is here and nowhere else:

* the connection: :class:`PgConnection` gives a psycopg connection the sqlite3 surface the store uses
  (``execute`` with ``?``, ``lastrowid``, rows readable by name and position, ``dict(row)``);
* the dialect (:class:`Dialect`): how a write transaction begins (SQLite's ``BEGIN IMMEDIATE``; on
  PostgreSQL ``BEGIN`` plus a transaction-scoped advisory lock, so writers take turns exactly as they
  do on SQLite), where the schema version is kept (``PRAGMA user_version``; a ``qa_schema`` table),
  the catalogue queries, the migrations' column types, and the string-aggregate function;
* the batch lock: one batch writes to a store at a time (a lock file beside the SQLite file; a
  session advisory lock on the server, released by the server if the batch's machine dies).

Why one SQL layer over psycopg rather than SQLAlchemy Core: the store is about 110 hand-written,
tested queries in the common subset of both dialects; the differences are five, listed above, and a
translation of the migrations' column types. An ORM or expression layer would mean rewriting every
query, and the tests that hold them, to gain nothing the store needs.
"""
from __future__ import annotations

import fcntl
import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import urlsplit, urlunsplit

from qa_audio.errors import StoreError

SERVER_SCHEMES = ("postgresql://", "postgres://")

# the tables whose rows have an ``id`` the store reads back after an INSERT (sqlite3's lastrowid)
_ID_TABLES = frozenset({"runs", "calls", "analyses", "segments", "results", "findings", "errors", "reviews", "audit",
                        "users", "appeals", "calibration_sessions"})
_INSERT = re.compile(r"^\s*INSERT\s+INTO\s+(\w+)", re.IGNORECASE)
_LOCK_WRITE = 0x71A_0001        # advisory lock keys: writers take turns; one batch at a time; one migration
_LOCK_BATCH = 0x71A_0002
_LOCK_MIGRATE = 0x71A_0003


def is_server(db: str | Path) -> bool:
    """Whether ``--db`` names a PostgreSQL server database rather than an SQLite file."""
    return isinstance(db, str) and db.lower().startswith(SERVER_SCHEMES)


def display_name(db: str | Path) -> str:
    """How a store is named in messages: the file, or the URL without its password."""
    if not is_server(db):
        return str(db)
    parts = urlsplit(str(db))
    if parts.password is None:
        return str(db)
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@lru_cache(maxsize=1)
def database_errors() -> tuple[type[Exception], ...]:
    """The exceptions a database driver raises (sqlite3's, and psycopg's when it is installed)."""
    try:
        import psycopg
    except ImportError:
        return (sqlite3.Error,)
    return (sqlite3.Error, psycopg.Error)


def first_line(exc: BaseException) -> str:
    """A driver's message, one line (PostgreSQL's carry DETAIL and HINT lines)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --------------------------------------------------------------------------- dialects
class Dialect:
    """What SQLite does its own way; :class:`PgDialect` overrides each for PostgreSQL."""

    kind = "sqlite"

    def begin_write(self, conn: Any) -> None:
        conn.execute("BEGIN IMMEDIATE")

    def schema_version(self, conn: Any) -> int:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])

    def set_schema_version(self, conn: Any, version: int) -> None:
        conn.execute(f"PRAGMA user_version = {int(version)}")

    def tables(self, conn: Any) -> set[str]:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def columns(self, conn: Any, table: str) -> set[str]:
        return {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}

    def ddl(self, statement: str) -> str:
        return statement

    def group_concat(self, expr: str, separator: str) -> str:
        return f"GROUP_CONCAT({expr}, '{separator}')"

    @contextmanager
    def migration_lock(self, conn: Any) -> Iterator[None]:
        yield          # each migration runs in BEGIN IMMEDIATE: a second opener waits, then sees it done

    def after_copy(self, cur: Any, table: str) -> None:
        """After rows were inserted with their own ids: new rows continue from the highest (SQLite does)."""

    def batch_lock(self, conn: Any, name: str) -> Any:
        """Held by a batch while it writes: a lock file beside the SQLite file (through any link to it)."""
        return FileLock(Path(name).resolve())


class PgDialect(Dialect):
    kind = "postgresql"

    def begin_write(self, conn: Any) -> None:
        conn.execute("BEGIN")
        conn.execute(f"SELECT pg_advisory_xact_lock({_LOCK_WRITE})")

    def schema_version(self, conn: Any) -> int:
        if "qa_schema" not in self.tables(conn):
            return 0
        row = conn.execute("SELECT version FROM qa_schema").fetchone()
        return int(row[0]) if row else 0

    def set_schema_version(self, conn: Any, version: int) -> None:
        conn.execute("CREATE TABLE IF NOT EXISTS qa_schema (version INTEGER NOT NULL)")
        conn.execute("DELETE FROM qa_schema")
        conn.execute("INSERT INTO qa_schema (version) VALUES (?)", (int(version),))

    def tables(self, conn: Any) -> set[str]:
        return {r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables"
                                           " WHERE table_schema = current_schema()")}

    def columns(self, conn: Any, table: str) -> set[str]:
        return {r[0] for r in conn.execute("SELECT column_name FROM information_schema.columns"
                                           " WHERE table_schema = current_schema() AND table_name = ?", (table,))}

    def ddl(self, statement: str) -> str:
        return _pg_ddl(statement)

    def group_concat(self, expr: str, separator: str) -> str:
        return f"string_agg({expr}, '{separator}')"

    def batch_lock(self, conn: Any, name: str) -> Any:
        return server_batch_lock(conn, name)

    def after_copy(self, cur: Any, table: str) -> None:
        if table in _ID_TABLES:
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 1),"
                        f" MAX(id) IS NOT NULL) FROM {table}")

    @contextmanager
    def migration_lock(self, conn: Any) -> Iterator[None]:
        conn.execute(f"SELECT pg_advisory_lock({_LOCK_MIGRATE})")     # two machines upgrading at once: one does
        try:
            yield
        finally:
            conn.execute(f"SELECT pg_advisory_unlock({_LOCK_MIGRATE})")


def _pg_ddl(statement: str) -> str:
    """A migration statement in PostgreSQL's types: identity keys, 64-bit integers, double precision."""
    out = re.sub(r"\bINTEGER PRIMARY KEY\b", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", statement)
    out = re.sub(r"\bINTEGER\b", "BIGINT", out)
    return re.sub(r"\bREAL\b", "DOUBLE PRECISION", out)


# --------------------------------------------------------------------------- PostgreSQL connection
class PgRow:
    """A row read by position or by column name, with ``keys()``: what the store reads from sqlite3.Row."""

    __slots__ = ("_index", "_values")

    def __init__(self, index: dict[str, int], values: Sequence[Any]):
        self._index, self._values = index, values

    def __getitem__(self, key: int | str) -> Any:
        return self._values[key] if isinstance(key, int) else self._values[self._index[key]]

    def keys(self) -> list[str]:
        return list(self._index)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


Row: TypeAlias = "sqlite3.Row | PgRow"      # what the store's parts read a row as


def _row_factory(cursor: Any):
    index = {col.name: i for i, col in enumerate(cursor.description or ())}
    return lambda values: PgRow(index, values)


@lru_cache(maxsize=512)
def _pg_sql(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (a literal ``%`` doubled). The store's SQL has no ``?`` in a
    string literal."""
    return sql.replace("%", "%%").replace("?", "%s")


def _values(params: Sequence[Any]) -> tuple:
    """Parameters as SQLite takes them: a bool is the integer 0 or 1 (the schema's flags are integers)."""
    return tuple(int(v) if isinstance(v, bool) else v for v in params)


class PgCursor:
    """A psycopg cursor with sqlite3's surface: ``?`` placeholders, ``lastrowid`` after an INSERT."""

    def __init__(self, cursor: Any):
        self._cur = cursor
        self.lastrowid: int | None = None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> PgCursor:
        match = _INSERT.match(sql)
        wants_id = match is not None and match.group(1).lower() in _ID_TABLES and "RETURNING" not in sql.upper()
        self._cur.execute(_pg_sql(sql + " RETURNING id" if wants_id else sql), _values(params))
        if wants_id:
            row = self._cur.fetchone()
            self.lastrowid = None if row is None else int(row[0])
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> PgCursor:
        values = [_values(r) for r in rows]
        if values:
            self._cur.executemany(_pg_sql(sql), values)
        return self

    def fetchone(self) -> PgRow | None:
        return self._cur.fetchone()

    def fetchall(self) -> list[PgRow]:
        return self._cur.fetchall()

    def fetchmany(self, size: int) -> list[PgRow]:
        return self._cur.fetchmany(size)

    def __iter__(self) -> Iterator[PgRow]:
        return iter(self._cur.fetchall() if self._cur.description else ())

    @property
    def rowcount(self) -> int:
        return int(self._cur.rowcount)


class PgConnection:
    """One psycopg connection in autocommit mode (transactions are the store's explicit BEGIN … COMMIT)."""

    def __init__(self, conn: Any):
        self._conn = conn

    def cursor(self) -> PgCursor:
        return PgCursor(self._conn.cursor())

    def execute(self, sql: str, params: Sequence[Any] = ()) -> PgCursor:
        return self.cursor().execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> PgCursor:
        return self.cursor().executemany(sql, rows)

    def close(self) -> None:
        self._conn.close()


def connect_server(url: str, *, readonly: bool) -> PgConnection:
    """A connection to the PostgreSQL database ``url``; a clear one-line error when that cannot be."""
    name = display_name(url)
    try:
        import psycopg
        from psycopg.types.numeric import FloatLoader
    except ImportError:
        raise StoreError(f"{name}: a PostgreSQL store needs psycopg: pip install 'psycopg[binary]'") from None
    options = "-c default_transaction_read_only=on" if readonly else ""
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=20, options=options,
                               cursor_factory=psycopg.ClientCursor, row_factory=_row_factory,
                               application_name="qa-audio")
    except psycopg.Error as exc:
        raise StoreError(f"{name}: cannot connect to the results store: {first_line(exc)}") from None
    except ValueError as exc:            # a malformed URL
        raise StoreError(f"{name}: not a PostgreSQL address: {exc}") from None
    conn.adapters.register_loader("numeric", FloatLoader)    # AVG and SUM read as floats, as on SQLite
    conn.execute("SET client_min_messages = warning")
    return PgConnection(conn)


# --------------------------------------------------------------------------- the batch lock
class FileLock:
    """An exclusive lock file beside an SQLite store: one batch writes to a store at a time."""

    def __init__(self, db: Path):
        self.path = db.with_name(db.name + ".lock")

    def __enter__(self) -> FileLock:
        try:
            self.fh = open(self.path, "w")
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot create the batch lock: {exc.strerror or exc}") from None
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fh.close()
            raise StoreError(f"{self.path.with_suffix('')}: another batch is writing to this store") from None
        return self

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()


@contextmanager
def server_batch_lock(conn: PgConnection, name: str) -> Iterator[None]:
    """The batch lock on a PostgreSQL store: a session advisory lock (the server frees it when the batch's
    connection ends, a dead machine included)."""
    row = conn.execute(f"SELECT pg_try_advisory_lock({_LOCK_BATCH})").fetchone()
    if row is None or not row[0]:
        raise StoreError(f"{name}: another batch is writing to this store")
    try:
        yield
    finally:
        try:
            conn.execute(f"SELECT pg_advisory_unlock({_LOCK_BATCH})")
        except database_errors():
            pass        # the connection is gone: the server has released the lock with it
