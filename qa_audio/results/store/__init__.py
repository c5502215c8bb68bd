"""The results store: SQLite behind one facade, with numbered migrations.

Its parts, by concern: runs, calls (analyses, results), reviews (the audit trail, assignment), users
(roles, scope, sessions), search, appeals, calibration sessions.

Everything the batch computes lands here: calls (content hash, path, metadata),
analyses (acoustics and transcript, reusable under a new rulebook), results with
their findings and timing, errors, and runs. Each call is written in one
transaction, so a killed batch leaves either all of a call or none of it.

The schema version is SQLite's ``PRAGMA user_version``; :data:`MIGRATIONS` brings
any older store up to date when it is opened. Only this package speaks SQL, so a
server database can replace SQLite behind the same functions.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

from qa_audio.errors import StoreError
from qa_audio.results.store.appeals import AppealsPart
from qa_audio.results.store.base import CALL_SORTS, StoredCall
from qa_audio.results.store.calibration import CalibrationPart
from qa_audio.results.store.calls import CallsPart
from qa_audio.results.store.reviews import ReviewsPart
from qa_audio.results.store.runs import RunsPart
from qa_audio.results.store.schema import (
    MIGRATIONS,
    READABLE_FROM,
    _check_version,
    _connect_readonly,
    _migrate,
    damaged,
)
from qa_audio.results.store.search import SearchPart
from qa_audio.results.store.users import UsersPart

__all__ = ["CALL_SORTS", "MIGRATIONS", "READABLE_FROM", "Store", "StoredCall", "damaged", "open_store"]


class Store(RunsPart, CallsPart, ReviewsPart, UsersPart, SearchPart, AppealsPart, CalibrationPart):
    """One SQLite results database. Open with :func:`open_store`."""


def open_store(path: str | Path, *, create: bool = True, readonly: bool = False) -> Store:
    """Open (and if needed create and migrate) a results store.

    ``readonly`` opens it for reading only (show, export, labels): nothing is written, not even
    the journal mode, so a store in a read-only folder or on a read-only mount can be read.
    A store from a newer qa-audio is refused before anything in it is touched.
    """
    path = Path(path)
    if (not create or readonly) and not path.is_file():
        raise StoreError(f"{path}: no such results store")
    if path.exists() and path.is_dir():
        raise StoreError(f"{path}: is a directory, not a results store")
    if create and not path.parent.exists():
        raise StoreError(f"{path}: folder {path.parent} does not exist")
    conn = None
    try:
        if readonly:
            conn = _connect_readonly(path)
        else:
            conn = sqlite3.connect(str(path), isolation_level=None, timeout=30.0)
        conn.row_factory = sqlite3.Row
        version = _check_version(conn, path)
        if readonly:
            if version < READABLE_FROM:
                raise StoreError(f"{path}: store schema {version} is older than this qa-audio "
                                 f"({len(MIGRATIONS)}); open it once for writing (a batch) to upgrade it")
        else:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            _migrate(conn, path, version)
        conn.execute("PRAGMA foreign_keys = ON")
    except (sqlite3.DatabaseError, StoreError) as exc:
        if conn is not None:
            conn.close()
        if isinstance(exc, StoreError):
            raise
        raise StoreError(f"{path}: cannot open the results store: {damaged(exc)}") from None
    return Store(path, conn)
