"""The results store: SQLite (the embedded default) or PostgreSQL (one store for several machines)
behind one facade, with numbered migrations.

Its parts, by concern: runs, calls (analyses, results), reviews (the audit trail, assignment), users
(roles, scope, sessions), search, appeals, calibration sessions.

Everything the batch computes lands here: calls (content hash, path, metadata),
analyses (acoustics and transcript, reusable under a new rulebook), results with
their findings and timing, errors, and runs. Each call is written in one
transaction, so a killed batch leaves either all of a call or none of it.

:data:`MIGRATIONS` brings any older store up to date when it is opened. Only this package speaks
SQL; :mod:`.backend` holds what the two databases do differently.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

from qa_audio.errors import StoreError
from qa_audio.results.store.appeals import AppealsPart
from qa_audio.results.store.backend import (
    Dialect,
    PgDialect,
    connect_server,
    database_errors,
    display_name,
    is_server,
)
from qa_audio.results.store.base import CALL_SORTS, StoredCall
from qa_audio.results.store.calibration import CalibrationPart
from qa_audio.results.store.calls import CallsPart
from qa_audio.results.store.reviews import ReviewsPart
from qa_audio.results.store.runs import RunsPart
from qa_audio.results.store.schema import (
    MIGRATIONS,
    READABLE_FROM,
    _connect_readonly,
    check_version,
    damaged,
    migrate,
)
from qa_audio.results.store.search import SearchPart
from qa_audio.results.store.users import UsersPart

__all__ = ["CALL_SORTS", "MIGRATIONS", "READABLE_FROM", "Store", "StoredCall", "damaged", "database_errors",
           "display_name", "is_server", "open_store"]


class Store(RunsPart, CallsPart, ReviewsPart, UsersPart, SearchPart, AppealsPart, CalibrationPart):
    """One results database, SQLite or PostgreSQL. Open with :func:`open_store`."""


def open_store(db: str | Path, *, create: bool = True, readonly: bool = False) -> Store:
    """Open (and if needed create and migrate) a results store: an SQLite file, or a PostgreSQL database
    given as ``postgresql://USER@HOST:PORT/DB`` (the database must exist; its tables are created here).

    ``readonly`` opens it for reading only (show, export, labels): nothing is written, not even
    the journal mode, so a store in a read-only folder or on a read-only mount can be read.
    A store from a newer qa-audio is refused before anything in it is touched.
    """
    if is_server(db):
        return _open_server(str(db), readonly=readonly)
    path = Path(db)
    if (not create or readonly) and not path.is_file():
        raise StoreError(f"{path}: no such results store")
    if path.exists() and path.is_dir():
        raise StoreError(f"{path}: is a directory, not a results store")
    if create and not path.parent.exists():
        raise StoreError(f"{path}: folder {path.parent} does not exist")
    conn = None
    dialect = Dialect()
    try:
        if readonly:
            conn = _connect_readonly(path)
        else:
            conn = sqlite3.connect(str(path), isolation_level=None, timeout=30.0)
        conn.row_factory = sqlite3.Row
        version = check_version(conn, dialect, str(path))
        if readonly:
            _readable(version, str(path))
        else:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            migrate(conn, dialect, str(path))
        conn.execute("PRAGMA foreign_keys = ON")
    except (sqlite3.DatabaseError, StoreError) as exc:
        if conn is not None:
            conn.close()
        if isinstance(exc, StoreError):
            raise
        raise StoreError(f"{path}: cannot open the results store: {damaged(exc)}") from None
    return Store(path, conn, dialect)


def _open_server(url: str, *, readonly: bool) -> Store:
    name = display_name(url)
    conn = connect_server(url, readonly=readonly)
    dialect = PgDialect()
    try:
        if readonly:
            _readable(check_version(conn, dialect, name), name)
        else:
            migrate(conn, dialect, name)          # it reads and checks the version under the migration lock
    except database_errors() as exc:
        conn.close()
        raise StoreError(f"{name}: cannot open the results store: {damaged(exc)}") from None
    except StoreError:
        conn.close()
        raise
    return Store(name, conn, dialect)


def _readable(version: int, name: str) -> None:
    if version < READABLE_FROM:
        what = "no qa-audio results store yet" if version == 0 else f"store schema {version} is older than this " \
               f"qa-audio ({len(MIGRATIONS)})"
        raise StoreError(f"{name}: {what}; open it once for writing (a batch) to create or upgrade it")
