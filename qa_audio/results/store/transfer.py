"""Copying a whole results store into another, empty one: how a centre that outgrows one machine moves
its SQLite store into PostgreSQL (``qa-audio store copy results.sqlite postgresql://…``), keeping every
call, analysis, result, review, appeal, account and audit line, with their numbers."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from qa_audio.errors import StoreError

if TYPE_CHECKING:
    from qa_audio.results.store import Store

# parents before children (foreign keys); calls.current_result_id is a plain number, set with the call
TABLES = ("runs", "calls", "analyses", "segments", "results", "findings", "timing", "errors", "reviews", "audit",
          "users", "sessions", "appeals", "calibration_sessions", "calibration_members", "calibration_calls",
          "calibration_labels")
_BATCH_ROWS = 500


def copy_store(source: Store, target: Store, *, on_table: Callable[[str, int], None] | None = None) -> dict:
    """Copy every row of ``source`` into ``target`` (at the same schema version, and empty), in one
    transaction: the target ends with all of it or none. Returns rows copied per table."""
    if source.schema_version != target.schema_version:
        raise StoreError(f"{target.path}: schema {target.schema_version}, the source {source.path} has "
                         f"{source.schema_version}: open both with this qa-audio first")
    if any(target.counts()[k] for k in ("calls", "results", "errors")) or target.users():
        raise StoreError(f"{target.path}: not empty; copy into a new, empty store")
    copied: dict[str, int] = {}
    with target._tx() as cur:
        for table in TABLES:
            if table not in source._tables:
                continue
            columns = sorted(source.dialect.columns(source.conn, table) & target.dialect.columns(target.conn, table))
            names = ", ".join(f'"{c}"' for c in columns)
            insert = f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})"
            rows = source.conn.execute(f"SELECT {names} FROM {table}")
            count = 0
            while batch := rows.fetchmany(_BATCH_ROWS):
                cur.executemany(insert, [tuple(r) for r in batch])
                count += len(batch)
            target.dialect.after_copy(cur, table)
            copied[table] = count
            if on_table is not None:
                on_table(table, count)
    return copied
