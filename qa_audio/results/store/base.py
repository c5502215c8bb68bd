"""What every part of the store shares: the connection, transactions, and the stored-call record."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from qa_audio.config import METADATA_FIELDS
from qa_audio.errors import StoreError
from qa_audio.results.access import Scope
from qa_audio.results.records import Review, StoredResult
from qa_audio.results.store.backend import Dialect, database_errors, first_line

if TYPE_CHECKING:       # imported only when an analysis is read (jieba, pypinyin)
    from qa_audio.judge.analysis import Analysis

FINAL_SCORE = "COALESCE(r.final_score, r.score)"


FINAL_VERDICT = "COALESCE(r.final_verdict, r.verdict)"


# the findings of result r that fail as finally decided: failed and not overturned, or passed and overturned
FINALLY_FAILING = ("FROM findings f LEFT JOIN reviews v ON v.result_id = f.result_id AND v.rule = f.rule"
                   " WHERE f.result_id = r.id AND ((f.status = 'fail' AND COALESCE(v.decision, '') != 'overturn')"
                   " OR (f.status = 'pass' AND v.decision = 'overturn'))")


# what a list of calls shows: metadata, the checker's and the final score and verdict, when it was reviewed
LIST_COLUMNS = ("c.id AS call_pk, c.call_id, c.audio_sha256, c.agent_id, c.agent_name, c.team, c.call_time,"
                f" c.duration_s, r.id AS result_id, r.score, r.verdict, {FINAL_SCORE} AS shown_score,"
                f" {FINAL_VERDICT} AS shown_verdict, r.reviewed_at, c.assigned_to")


CALL_SORTS = {"time": "c.call_time", "score": FINAL_SCORE, "agent": "c.agent_id", "duration": "c.duration_s",
              "call": "c.call_id"}


def _now() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


@dataclass(frozen=True)
class StoredCall:
    """A call as the store knows it, with its current result (if any)."""

    pk: int
    call_id: str
    audio_sha256: str
    path: str
    metadata: dict
    result: StoredResult | None
    analysis: Analysis | None
    result_id: int | None = None
    reviews: dict[str, Review] = field(default_factory=dict)      # rule → the supervisor's decision
    final_score: float | None = None                     # after supervisor review (None: not reviewed)
    final_verdict: str | None = None
    scored_at: str | None = None                         # when the current result was stored (the appeal window)
    assigned_to: str | None = None                       # the supervisor its review is assigned to


def _absolute(path: str) -> str:
    """Where a recording is, independent of the directory the batch ran in (the review page serves it)."""
    return str(Path(path).absolute())


def _metadata_of(row: Any) -> dict:
    out = {k: (row[k] if k in row.keys() else None) for k in METADATA_FIELDS}
    out["source"] = row["metadata_source"]
    out["missing"] = row["metadata_missing"].split(",") if row["metadata_missing"] else []
    return out


class _Transaction:
    """A write transaction (writers take turns), rolled back on any error; driver errors become StoreError."""

    def __init__(self, conn: Any, dialect: Dialect, path: str):
        self.conn, self.dialect, self.path = conn, dialect, path

    def __enter__(self) -> Any:
        try:
            self.dialect.begin_write(self.conn)
        except database_errors() as exc:
            self._rollback()
            raise StoreError(f"{self.path}: cannot write: {first_line(exc)}") from None
        return self.conn.cursor()

    def __exit__(self, kind, exc, tb) -> Literal[False]:
        if kind is None:
            try:
                self.conn.execute("COMMIT")
                return False
            except database_errors() as err:
                self._rollback()
                raise StoreError(f"{self.path}: cannot write: {first_line(err)}") from None
        self._rollback()
        if isinstance(exc, database_errors()):
            raise StoreError(f"{self.path}: cannot write: {first_line(exc)}") from None
        return False

    def _rollback(self) -> None:
        try:
            self.conn.execute("ROLLBACK")
        except database_errors():
            pass          # no transaction open (BEGIN failed) or the connection is gone


def scope_sql(scope: Scope | None, alias: str = "c") -> tuple[str, list]:
    """A WHERE condition (and its arguments) keeping the calls ``alias`` that ``scope`` covers."""
    if scope is None or scope.everything:
        return "1 = 1", []
    if scope.nothing:
        return "0 = 1", []
    if scope.agent_id is not None:
        return f"{alias}.agent_id = ?", [scope.agent_id]
    teams = list(scope.teams or ())
    return f"{alias}.team IN ({', '.join('?' * len(teams))})", teams


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


_S = TypeVar("_S", bound="StoreBase")


class StoreBase:
    """The connection and transactions every part of the store works through."""

    def __init__(self, path: str | Path, conn: Any, dialect: Dialect | None = None):
        self.path = str(path)          # the file, or the server URL without its password: for messages
        self.conn = conn
        self.dialect = dialect or Dialect()
        columns = self.dialect.columns(conn, "calls")
        self._client = "c.client" if "client" in columns else "NULL AS client"   # a store read before migration 4
        self._tables = self.dialect.tables(conn)

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        self.conn.close()

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def name(self) -> str:
        """The store as a report names it: the file's name, or the server database's address."""
        return self.path if self.dialect.kind != "sqlite" else Path(self.path).name

    @property
    def schema_version(self) -> int:
        return self.dialect.schema_version(self.conn)

    def batch_lock(self):
        """Held by a batch while it writes: a second batch on the same store is refused, on any machine
        that reaches it."""
        return self.dialect.batch_lock(self.conn, self.path)

    def _tx(self):
        return _Transaction(self.conn, self.dialect, self.path)
