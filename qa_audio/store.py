"""The results store: SQLite, behind this one module, with numbered migrations.

Everything the batch computes lands here: calls (content hash, path, metadata),
analyses (acoustics and transcript, reusable under a new rulebook), results with
their findings and timing, errors, and runs. Each call is written in one
transaction, so a killed batch leaves either all of a call or none of it.

The schema version is SQLite's ``PRAGMA user_version``; :data:`MIGRATIONS` brings
any older store up to date when it is opened. Only this module speaks SQL, so a
server database can replace SQLite behind the same functions.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable
from urllib.parse import quote

from .config import METADATA_FIELDS
from .errors import StoreError

MIGRATIONS: tuple[str, ...] = (
    # 1: calls, analyses, transcript segments, results, findings, timing, errors, runs
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL,                  -- running, done, interrupted, killed
        command TEXT NOT NULL,
        config TEXT, rulebook TEXT, model TEXT,
        workers INTEGER, scheduler TEXT,
        found INTEGER DEFAULT 0, scored INTEGER DEFAULT 0, rescored INTEGER DEFAULT 0,
        skipped INTEGER DEFAULT 0, failed INTEGER DEFAULT 0,
        audio_s REAL DEFAULT 0, wall_s REAL, peak_rss_mb REAL
    );
    CREATE TABLE calls (
        id INTEGER PRIMARY KEY,
        call_id TEXT NOT NULL UNIQUE,          -- what people type: the file stem, made unique
        audio_sha256 TEXT NOT NULL UNIQUE,     -- the call's identity: its content
        path TEXT NOT NULL,                    -- where it was last seen
        size_bytes INTEGER,
        duration_s REAL, sample_rate_hz INTEGER, channels INTEGER, codec TEXT,
        agent_id TEXT, agent_name TEXT, team TEXT, call_time TEXT, direction TEXT, hangup_side TEXT,
        metadata_source TEXT, metadata_missing TEXT,
        first_run_id INTEGER REFERENCES runs(id),
        current_result_id INTEGER
    );
    CREATE INDEX calls_agent ON calls(agent_id);
    CREATE INDEX calls_time ON calls(call_time);
    CREATE TABLE analyses (
        id INTEGER PRIMARY KEY,
        call_pk INTEGER NOT NULL REFERENCES calls(id),
        analysis_key TEXT NOT NULL,
        model TEXT NOT NULL,
        acoustics_json TEXT NOT NULL,
        audio_json TEXT NOT NULL,
        stage_json TEXT NOT NULL,
        run_id INTEGER REFERENCES runs(id),
        created_at TEXT NOT NULL,
        UNIQUE (call_pk, analysis_key)
    );
    CREATE TABLE segments (
        id INTEGER PRIMARY KEY,
        analysis_id INTEGER NOT NULL REFERENCES analyses(id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        channel TEXT NOT NULL,
        start_s REAL NOT NULL, end_s REAL NOT NULL,
        text TEXT NOT NULL,
        words_json TEXT NOT NULL
    );
    CREATE INDEX segments_analysis ON segments(analysis_id, idx);
    CREATE TABLE results (
        id INTEGER PRIMARY KEY,
        call_pk INTEGER NOT NULL REFERENCES calls(id),
        analysis_id INTEGER NOT NULL REFERENCES analyses(id),
        run_id INTEGER REFERENCES runs(id),
        rulebook TEXT NOT NULL, rulebook_name TEXT, model TEXT NOT NULL,
        score REAL, verdict TEXT NOT NULL, verdict_reason TEXT,
        result_json TEXT NOT NULL,
        created_at TEXT NOT NULL,
        UNIQUE (call_pk, rulebook, model)
    );
    CREATE TABLE findings (
        id INTEGER PRIMARY KEY,
        result_id INTEGER NOT NULL REFERENCES results(id) ON DELETE CASCADE,
        rule TEXT NOT NULL, title TEXT, severity TEXT,
        status TEXT NOT NULL, deduction REAL NOT NULL,
        redline INTEGER NOT NULL, low_confidence INTEGER NOT NULL,
        detail TEXT, evidence_json TEXT NOT NULL
    );
    CREATE INDEX findings_result ON findings(result_id);
    CREATE INDEX findings_rule ON findings(rule, status);
    CREATE TABLE timing (
        result_id INTEGER PRIMARY KEY REFERENCES results(id) ON DELETE CASCADE,
        answered INTEGER, rings INTEGER, ring_to_answer_s REAL,
        holds INTEGER, longest_hold_wait_s REAL,
        interruptions INTEGER, dead_air INTEGER, longest_dead_air_s REAL,
        timing_json TEXT NOT NULL
    );
    CREATE TABLE errors (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL,
        audio_sha256 TEXT NOT NULL,            -- '' when the file could not even be read
        error TEXT NOT NULL,
        first_run_id INTEGER, last_run_id INTEGER,
        attempts INTEGER NOT NULL DEFAULT 1,
        first_seen TEXT NOT NULL, last_seen TEXT NOT NULL,
        UNIQUE (path, audio_sha256)
    );
    """,
    # 2: supervisor review: final scores, decisions per finding, an audit trail, users
    """
    ALTER TABLE results ADD COLUMN final_score REAL;
    ALTER TABLE results ADD COLUMN final_verdict TEXT;
    ALTER TABLE results ADD COLUMN reviewed_at TEXT;
    CREATE TABLE reviews (
        id INTEGER PRIMARY KEY,
        result_id INTEGER NOT NULL REFERENCES results(id) ON DELETE CASCADE,
        rule TEXT NOT NULL,
        decision TEXT NOT NULL,                -- confirm or overturn
        reason TEXT NOT NULL,
        reviewer TEXT NOT NULL,
        at TEXT NOT NULL,
        UNIQUE (result_id, rule)
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        call_pk INTEGER, result_id INTEGER, rule TEXT,
        before_json TEXT, after_json TEXT, reason TEXT
    );
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        created_at TEXT NOT NULL,
        active INTEGER NOT NULL DEFAULT 1
    );
    """,
    # 3: server-side login sessions: a logout or an expiry revokes the cookie for good
    """
    CREATE TABLE sessions (
        token_sha256 TEXT PRIMARY KEY,         -- the cookie holds the token; the store only its hash
        user TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        revoked_at TEXT
    );
    CREATE INDEX sessions_user ON sessions (user);
    """,
    # 4: the client line a call was made on (which rulebook judges it; export by client)
    """
    ALTER TABLE calls ADD COLUMN client TEXT;
    """,
    # 5: phrases re-checked against the audio (qa_audio.recheck), kept with the analysis
    """
    ALTER TABLE analyses ADD COLUMN checks_json TEXT;
    """,
)


READABLE_FROM = 2       # what reading needs (results' final scores); later migrations add tables reads never use

FINAL_SCORE = "COALESCE(r.final_score, r.score)"
FINAL_VERDICT = "COALESCE(r.final_verdict, r.verdict)"
# the findings of result r that fail as finally decided: failed and not overturned, or passed and overturned
FINALLY_FAILING = ("FROM findings f LEFT JOIN reviews v ON v.result_id = f.result_id AND v.rule = f.rule"
                   " WHERE f.result_id = r.id AND ((f.status = 'fail' AND COALESCE(v.decision, '') != 'overturn')"
                   " OR (f.status = 'pass' AND v.decision = 'overturn'))")
# what a list of calls shows: metadata, the checker's and the final score and verdict, when it was reviewed
LIST_COLUMNS = ("c.id AS call_pk, c.call_id, c.audio_sha256, c.agent_id, c.agent_name, c.team, c.call_time,"
                f" c.duration_s, r.id AS result_id, r.score, r.verdict, {FINAL_SCORE} AS shown_score,"
                f" {FINAL_VERDICT} AS shown_verdict, r.reviewed_at")
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
    result: dict | None
    analysis: dict | None
    result_id: int | None = None
    reviews: dict = field(default_factory=dict)          # rule → {"decision", "reason", "reviewer", "at"}
    final_score: float | None = None                     # after supervisor review (None: not reviewed)
    final_verdict: str | None = None


class Store:
    """One SQLite results database. Open with :func:`open_store`."""

    def __init__(self, path: str | Path, conn: sqlite3.Connection):
        self.path = str(path)
        self.conn = conn
        columns = {r[1] for r in conn.execute("PRAGMA table_info(calls)")}
        self._client = "c.client" if "client" in columns else "NULL AS client"   # a store read before migration 4

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return self.conn.execute("PRAGMA user_version").fetchone()[0]

    def _tx(self):
        return _Transaction(self.conn, self.path)

    # ------------------------------------------------------------------ runs
    def start_run(self, *, command: str, config: str, rulebook: str, model: str | None, workers: int,
                  scheduler: str | None) -> int:
        with self._tx() as cur:
            # a batch holds the store's lock while it runs, so any run still "running" was killed
            cur.execute("UPDATE runs SET status = 'killed' WHERE status = 'running'")
            cur.execute("INSERT INTO runs (started_at, status, command, config, rulebook, model, workers, scheduler)"
                        " VALUES (?, 'running', ?, ?, ?, ?, ?, ?)",
                        (_now(), command, config, rulebook, model, workers, scheduler))
            return cur.lastrowid

    def finish_run(self, run_id: int, *, status: str, counts: dict, wall_s: float,
                   peak_rss_mb: float | None) -> None:
        with self._tx() as cur:
            cur.execute("UPDATE runs SET finished_at = ?, status = ?, found = ?, scored = ?, rescored = ?,"
                        " skipped = ?, failed = ?, audio_s = ?, wall_s = ?, peak_rss_mb = ? WHERE id = ?",
                        (_now(), status, counts.get("found", 0), counts.get("scored", 0),
                         counts.get("rescored", 0), counts.get("skipped", 0), counts.get("failed", 0),
                         counts.get("audio_s", 0.0), wall_s, peak_rss_mb, run_id))

    def runs(self) -> list[dict]:
        return [dict(r) for r in self.conn.execute("SELECT * FROM runs ORDER BY id")]

    # ------------------------------------------------------------------ lookups
    def call_pk_for_hash(self, sha256: str) -> int | None:
        row = self.conn.execute("SELECT id FROM calls WHERE audio_sha256 = ?", (sha256,)).fetchone()
        return row[0] if row else None

    def has_result(self, sha256: str, *, rulebook: str, model: str, key: str) -> bool:
        """A result for this audio with this rulebook and model, from an analysis made with these settings."""
        row = self.conn.execute(
            "SELECT 1 FROM results r JOIN calls c ON c.id = r.call_pk JOIN analyses a ON a.id = r.analysis_id"
            " WHERE c.audio_sha256 = ? AND r.rulebook = ? AND r.model = ? AND a.analysis_key = ?",
            (sha256, rulebook, model, key)).fetchone()
        return row is not None

    def known_error(self, path: str, sha256: str) -> str | None:
        row = self.conn.execute("SELECT error FROM errors WHERE path = ? AND audio_sha256 = ?",
                                (path, sha256)).fetchone()
        return row[0] if row else None

    def analysis_for(self, sha256: str, *, key: str) -> dict | None:
        """A stored analysis of this audio made with the same settings, as ``Analysis.to_dict()``."""
        row = self.conn.execute(
            "SELECT a.* FROM analyses a JOIN calls c ON c.id = a.call_pk WHERE c.audio_sha256 = ?"
            " AND a.analysis_key = ?", (sha256, key)).fetchone()
        return self._analysis_dict(row) if row else None

    def _analysis_dict(self, row: sqlite3.Row) -> dict:
        utterances = [{"channel": s["channel"], "start_s": s["start_s"], "end_s": s["end_s"], "text": s["text"],
                       "words": json.loads(s["words_json"])}
                      for s in self.conn.execute("SELECT * FROM segments WHERE analysis_id = ? ORDER BY idx",
                                                 (row["id"],))]
        return {"audio": json.loads(row["audio_json"]), "acoustics": json.loads(row["acoustics_json"]),
                "utterances": utterances, "model": row["model"], "key": row["analysis_key"],
                "stage_s": json.loads(row["stage_json"]),
                "checks": json.loads(row["checks_json"]) if "checks_json" in row.keys() and row["checks_json"] else []}

    def analysis_keys(self) -> list[str]:
        """The analysis settings digests the store holds analyses for."""
        return [row[0] for row in self.conn.execute("SELECT DISTINCT analysis_key FROM analyses ORDER BY 1")]

    def stored_analyses(self, *, key: str) -> list[tuple[str, dict]]:
        """(audio_sha256, analysis) for every call analysed with these settings."""
        rows = self.conn.execute("SELECT a.*, c.audio_sha256 AS sha FROM analyses a JOIN calls c ON c.id = a.call_pk"
                                 " WHERE a.analysis_key = ? ORDER BY c.id", (key,)).fetchall()
        return [(row["sha"], self._analysis_dict(row)) for row in rows]

    def find_call(self, ref: str) -> StoredCall:
        """A call by call_id, by a prefix (≥ 6 hex digits) of its audio hash, or by number."""
        row = self.conn.execute("SELECT * FROM calls WHERE call_id = ?", (ref,)).fetchone()
        if row is None and len(ref) >= 6 and all(ch in "0123456789abcdef" for ch in ref.lower()):
            rows = self.conn.execute("SELECT * FROM calls WHERE audio_sha256 LIKE ?", (ref.lower() + "%",)).fetchall()
            if len(rows) > 1:
                raise StoreError(f"{self.path}: {ref!r} matches {len(rows)} calls; give more of the hash")
            row = rows[0] if rows else None
        if row is None and ref.isdigit():
            row = self.conn.execute("SELECT * FROM calls WHERE id = ?", (int(ref),)).fetchone()
        if row is None:
            raise StoreError(f"{self.path}: no call {ref!r} in the store")
        return self._stored_call(row)

    def call_metadata(self, sha256: str) -> dict | None:
        """The metadata stored for this audio (None: not in the store)."""
        row = self.conn.execute("SELECT * FROM calls WHERE audio_sha256 = ?", (sha256,)).fetchone()
        return _metadata_of(row) if row else None

    def call_by_hash(self, sha256: str) -> StoredCall | None:
        row = self.conn.execute("SELECT * FROM calls WHERE audio_sha256 = ?", (sha256,)).fetchone()
        return self._stored_call(row) if row else None

    def _stored_call(self, row: sqlite3.Row) -> StoredCall:
        result = analysis = res = None
        reviews: dict = {}
        if row["current_result_id"] is not None:
            res = self.conn.execute("SELECT * FROM results WHERE id = ?", (row["current_result_id"],)).fetchone()
            result = json.loads(res["result_json"])
            arow = self.conn.execute("SELECT * FROM analyses WHERE id = ?", (res["analysis_id"],)).fetchone()
            analysis = self._analysis_dict(arow)
            reviews = self.reviews_for(res["id"])
        return StoredCall(row["id"], row["call_id"], row["audio_sha256"], row["path"], _metadata_of(row),
                          result, analysis, row["current_result_id"], reviews,
                          res["final_score"] if res else None, res["final_verdict"] if res else None)

    # ------------------------------------------------------------------ supervisor review
    def reviews_for(self, result_id: int) -> dict:
        return {r["rule"]: {"decision": r["decision"], "reason": r["reason"], "reviewer": r["reviewer"], "at": r["at"]}
                for r in self.conn.execute("SELECT * FROM reviews WHERE result_id = ? ORDER BY rule", (result_id,))}

    def save_review(self, *, call_pk: int, result_id: int, rule: str, decision: str, reason: str, reviewer: str,
                    final_score: float, final_verdict: str, before: dict, after: dict) -> None:
        """Record one decision, the call's new final score, and the audit line, in one transaction."""
        now = _now()
        with self._tx() as cur:
            cur.execute("INSERT INTO reviews (result_id, rule, decision, reason, reviewer, at) VALUES (?, ?, ?, ?, ?, ?)"
                        " ON CONFLICT (result_id, rule) DO UPDATE SET decision = excluded.decision,"
                        " reason = excluded.reason, reviewer = excluded.reviewer, at = excluded.at",
                        (result_id, rule, decision, reason, reviewer, now))
            cur.execute("UPDATE results SET final_score = ?, final_verdict = ?, reviewed_at = ? WHERE id = ?",
                        (final_score, final_verdict, now, result_id))
            cur.execute("INSERT INTO audit (at, actor, action, call_pk, result_id, rule, before_json, after_json, reason)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (now, reviewer, f"review:{decision}", call_pk, result_id, rule,
                         json.dumps(before, ensure_ascii=False), json.dumps(after, ensure_ascii=False), reason))

    def all_reviews(self) -> dict:
        """result_id → rule → review, for every reviewed result."""
        out: dict = {}
        for r in self.conn.execute("SELECT * FROM reviews ORDER BY result_id, rule"):
            out.setdefault(r["result_id"], {})[r["rule"]] = {"decision": r["decision"], "reason": r["reason"],
                                                             "reviewer": r["reviewer"], "at": r["at"]}
        return out

    def audit_trail(self, *, call_pk: int | None = None) -> list[dict]:
        sql = "SELECT * FROM audit" + (" WHERE call_pk = ?" if call_pk is not None else "") + " ORDER BY id"
        return [dict(r) for r in self.conn.execute(sql, (call_pk,) if call_pk is not None else ())]

    def log_action(self, *, actor: str, action: str, reason: str | None = None) -> None:
        with self._tx() as cur:
            cur.execute("INSERT INTO audit (at, actor, action, reason) VALUES (?, ?, ?, ?)",
                        (_now(), actor, action, reason))

    # ------------------------------------------------------------------ users
    def add_user(self, name: str, password_hash: str) -> None:
        with self._tx() as cur:
            cur.execute("INSERT INTO users (name, password_hash, created_at) VALUES (?, ?, ?)"
                        " ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash, active = 1",
                        (name, password_hash, _now()))

    def create_session(self, user: str, *, hours: float) -> str:
        """A new login session for ``user``; returns the token for the cookie (only its hash is stored)."""
        token = secrets.token_urlsafe(32)
        now = datetime.now(timezone.utc)
        with self._tx() as cur:
            cur.execute("DELETE FROM sessions WHERE expires_at < ?", (now.isoformat(),))
            cur.execute("INSERT INTO sessions (token_sha256, user, created_at, expires_at) VALUES (?, ?, ?, ?)",
                        (_token_hash(token), user, now.isoformat(), (now + timedelta(hours=hours)).isoformat()))
        return token

    def session_user(self, token: str | None) -> str | None:
        """The user of a live session (not revoked, not expired, user still active), else None."""
        if not token or not isinstance(token, str) or len(token) > 100:
            return None
        row = self.conn.execute(
            "SELECT s.user FROM sessions s JOIN users u ON u.name = s.user WHERE s.token_sha256 = ?"
            " AND s.revoked_at IS NULL AND s.expires_at > ? AND u.active = 1",
            (_token_hash(token), datetime.now(timezone.utc).isoformat())).fetchone()
        return row[0] if row else None

    def revoke_session(self, token: str | None) -> None:
        if not token or not isinstance(token, str):
            return
        with self._tx() as cur:
            cur.execute("UPDATE sessions SET revoked_at = ? WHERE token_sha256 = ? AND revoked_at IS NULL",
                        (_now(), _token_hash(token)))

    def user(self, name: str) -> dict | None:
        row = self.conn.execute("SELECT * FROM users WHERE name = ? AND active = 1", (name,)).fetchone()
        return dict(row) if row else None

    # ------------------------------------------------------------------ reporting
    def current_rows(self) -> list[dict]:
        """One row per call with a current result: metadata, score, final score, failed rules, reviewed."""
        rows = self.conn.execute(
            f"SELECT c.id AS call_pk, c.call_id, c.agent_id, c.agent_name, c.team, c.call_time, c.direction, {self._client},"
            " c.duration_s, r.id AS result_id, r.rulebook, r.rulebook_name, r.model, r.score, r.verdict,"
            " r.final_score, r.final_verdict, r.reviewed_at, r.result_json"
            " FROM calls c JOIN results r ON r.id = c.current_result_id ORDER BY c.call_time, c.call_id").fetchall()
        return [dict(r) for r in rows]

    def current_result(self, sha256: str) -> dict | None:
        row = self.conn.execute("SELECT r.result_json FROM calls c JOIN results r ON r.id = c.current_result_id"
                                " WHERE c.audio_sha256 = ?", (sha256,)).fetchone()
        return json.loads(row[0]) if row else None

    def search_calls(self, *, agent: str | None = None, team: str | None = None, date_from: str | None = None,
                     date_to: str | None = None, score_min: float | None = None, score_max: float | None = None,
                     verdict: str | None = None, failed_rule: str | None = None, text: str | None = None,
                     sort: str = "time", descending: bool = True, offset: int = 0,
                     limit: int = 50, shown: Callable[[str], str | None] | None = None) -> tuple[list[dict], int]:
        """Calls with a current result matching every filter given, one page of them, and how many match.

        Scores and verdicts are the final ones (after supervisor review); ``failed_rule``
        means failing as finally decided; ``text`` is a substring of the transcript as ``shown``
        (the masker of the pages: a masked number cannot be found, hence not recovered digit by
        digit, by searching); dates compare with ``call_time`` (``YYYY-MM-DD``, ``date_to`` inclusive).
        """
        if sort not in CALL_SORTS:
            raise StoreError(f"{self.path}: unknown sort {sort!r} (known: {', '.join(CALL_SORTS)})")
        where, args = ["1 = 1"], []
        for condition, value in (("c.agent_id = ?", agent), ("c.team = ?", team), ("c.call_time >= ?", date_from),
                                 ("c.call_time < date(?, '+1 day')", date_to), (f"{FINAL_SCORE} >= ?", score_min),
                                 (f"{FINAL_SCORE} <= ?", score_max), (f"{FINAL_VERDICT} = ?", verdict)):
            if value is not None and value != "":
                where.append(condition)
                args.append(value)
        if failed_rule:
            where.append(f"EXISTS (SELECT 1 {FINALLY_FAILING} AND f.rule = ?)")
            args.append(failed_rule)
        if text:
            escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append("EXISTS (SELECT 1 FROM segments s WHERE s.analysis_id = r.analysis_id"
                         " AND s.text LIKE ? ESCAPE '\\')")
            args.append(f"%{escaped}%")
            if shown is not None:
                hits = self.conn.execute(
                    "SELECT DISTINCT c.id, s.text FROM calls c JOIN results r ON r.id = c.current_result_id"
                    " JOIN segments s ON s.analysis_id = r.analysis_id WHERE s.text LIKE ? ESCAPE '\\'",
                    (f"%{escaped}%",)).fetchall()
                visible = sorted({pk for pk, said in hits if text in (shown(said) or "")})
                where.append("c.id IN (SELECT value FROM json_each(?))")
                args.append(json.dumps(visible))
        base = (" FROM calls c JOIN results r ON r.id = c.current_result_id WHERE " + " AND ".join(where))
        total = self.conn.execute("SELECT COUNT(*)" + base, args).fetchone()[0]
        order = f"{CALL_SORTS[sort]} {'DESC' if descending else 'ASC'} NULLS LAST, c.id"
        rows = self.conn.execute(
            f"SELECT {LIST_COLUMNS}, (SELECT GROUP_CONCAT(f.rule, ' ') {FINALLY_FAILING}) AS failed_rules"
            + base + f" ORDER BY {order} LIMIT ? OFFSET ?", [*args, limit, offset]).fetchall()
        return [dict(r) for r in rows], total

    def facets(self) -> dict:
        """The values the call filters offer: agents (id, name), teams, rules."""
        q = self.conn.execute
        return {"agents": [tuple(r) for r in q("SELECT agent_id, MAX(agent_name) FROM calls WHERE agent_id IS NOT NULL"
                                               " GROUP BY agent_id ORDER BY agent_id")],
                "teams": [r[0] for r in q("SELECT DISTINCT team FROM calls WHERE team IS NOT NULL ORDER BY team")],
                "rules": [r[0] for r in q("SELECT DISTINCT f.rule FROM findings f JOIN calls c"
                                          " ON c.current_result_id = f.result_id ORDER BY f.rule")]}

    def queue_rows(self) -> list[dict]:
        """Every call with a current result: what the spot-check queue is drawn from."""
        rows = self.conn.execute(
            f"SELECT {LIST_COLUMNS} FROM calls c JOIN results r ON r.id = c.current_result_id"
            " ORDER BY c.call_time, c.id").fetchall()
        return [dict(r) for r in rows]

    def mark_checked(self, *, call_pk: int, result_id: int, reviewer: str, score: float | None,
                     verdict: str) -> None:
        """A supervisor listened to the call and left its findings as they are."""
        now = _now()
        with self._tx() as cur:
            cur.execute("UPDATE results SET reviewed_at = ?, final_score = COALESCE(final_score, ?),"
                        " final_verdict = COALESCE(final_verdict, ?) WHERE id = ?", (now, score, verdict, result_id))
            cur.execute("INSERT INTO audit (at, actor, action, call_pk, result_id, after_json, reason)"
                        " VALUES (?, ?, 'checked', ?, ?, ?, ?)",
                        (now, reviewer, call_pk, result_id,
                         json.dumps({"final_score": score, "final_verdict": verdict}), "listened; no change"))

    def audio_source(self, call_pk: int) -> dict | None:
        """Where a stored call's recording is: path, content hash, size and codec (None: no such call)."""
        row = self.conn.execute("SELECT path, audio_sha256, size_bytes, codec FROM calls WHERE id = ?",
                                (call_pk,)).fetchone()
        return dict(row) if row else None

    def call_by_pk(self, call_pk: int) -> StoredCall | None:
        row = self.conn.execute("SELECT * FROM calls WHERE id = ?", (call_pk,)).fetchone()
        return self._stored_call(row) if row else None

    def counts(self) -> dict:
        q = self.conn.execute
        return {"calls": q("SELECT COUNT(*) FROM calls").fetchone()[0],
                "results": q("SELECT COUNT(*) FROM results").fetchone()[0],
                "current_results": q("SELECT COUNT(*) FROM calls WHERE current_result_id IS NOT NULL").fetchone()[0],
                "errors": q("SELECT COUNT(*) FROM errors").fetchone()[0],
                "analyses": q("SELECT COUNT(*) FROM analyses").fetchone()[0]}

    # ------------------------------------------------------------------ writes
    def save_call(self, *, sha256: str, path: str, size_bytes: int | None, call_id: str, metadata: dict,
                  analysis: dict, result: dict, run_id: int | None) -> str:
        """Store one scored call (analysis, result, findings, timing) in one transaction.

        Returns the call's call_id (the file stem, made unique in the store), which is
        also written into the stored result.
        """
        now = _now()
        with self._tx() as cur:
            call_pk, call_id = self._upsert_call(cur, sha256=sha256, path=path, size_bytes=size_bytes,
                                                 call_id=call_id, audio=analysis["audio"], metadata=metadata,
                                                 run_id=run_id)
            arow = cur.execute("SELECT id FROM analyses WHERE call_pk = ? AND analysis_key = ?",
                               (call_pk, analysis["key"])).fetchone()
            if arow is None:
                cur.execute("INSERT INTO analyses (call_pk, analysis_key, model, acoustics_json, audio_json,"
                            " stage_json, run_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            (call_pk, analysis["key"], analysis["model"], json.dumps(analysis["acoustics"]),
                             json.dumps(analysis["audio"], ensure_ascii=False), json.dumps(analysis["stage_s"]),
                             run_id, now))
                analysis_id = cur.lastrowid
                cur.executemany("INSERT INTO segments (analysis_id, idx, channel, start_s, end_s, text, words_json)"
                                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                                [(analysis_id, i, u["channel"], u["start_s"], u["end_s"], u["text"],
                                  json.dumps(u["words"], ensure_ascii=False))
                                 for i, u in enumerate(analysis["utterances"])])
            else:
                analysis_id = arow[0]
            cur.execute("UPDATE analyses SET checks_json = ? WHERE id = ?",
                        (json.dumps(analysis.get("checks", []), ensure_ascii=False), analysis_id))
            result = dict(result, call_id=call_id)
            versions = result["versions"]
            cur.execute("DELETE FROM results WHERE call_pk = ? AND rulebook = ? AND model = ?",
                        (call_pk, versions["rulebook"], versions["model"]))
            cur.execute("INSERT INTO results (call_pk, analysis_id, run_id, rulebook, rulebook_name, model, score,"
                        " verdict, verdict_reason, result_json, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (call_pk, analysis_id, run_id, versions["rulebook"], versions.get("rulebook_name"),
                         versions["model"], result["score"], result["verdict"], result.get("verdict_reason"),
                         json.dumps(result, ensure_ascii=False), now))
            result_id = cur.lastrowid
            cur.executemany("INSERT INTO findings (result_id, rule, title, severity, status, deduction, redline,"
                            " low_confidence, detail, evidence_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            [(result_id, f["rule"], f.get("title"), f.get("severity"), f["status"], f["deduction"],
                              int(bool(f.get("redline"))), int(bool(f.get("low_confidence"))), f.get("detail"),
                              json.dumps(f["evidence"], ensure_ascii=False)) for f in result["findings"]])
            t = result["timing"]
            holds, dead = t["holds"], t["dead_air"]
            cur.execute("INSERT INTO timing (result_id, answered, rings, ring_to_answer_s, holds, longest_hold_wait_s,"
                        " interruptions, dead_air, longest_dead_air_s, timing_json)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (result_id, t["answered"], t["rings"], t["ring_to_answer_s"], len(holds),
                         max((h["longest_wait_s"] for h in holds), default=None),
                         None if t["interruptions"] is None else len(t["interruptions"]), len(dead),
                         max((d["end_s"] - d["start_s"] for d in dead), default=None), json.dumps(t)))
            cur.execute("UPDATE calls SET current_result_id = ? WHERE id = ?", (result_id, call_pk))
            cur.execute("DELETE FROM errors WHERE path = ?", (path,))
        return call_id

    def update_metadata(self, sha256: str, *, path: str, metadata: dict) -> None:
        """A call's path and metadata as the latest batch saw them (a corrected sidecar CSV, a moved file)."""
        cols = METADATA_FIELDS
        path = _absolute(path)
        with self._tx() as cur:
            cur.execute(f"UPDATE calls SET path = ?, {', '.join(c + ' = ?' for c in cols)}, metadata_source = ?,"
                        " metadata_missing = ? WHERE audio_sha256 = ?",
                        (path, *[metadata.get(c) for c in cols], metadata.get("source"),
                         ",".join(metadata.get("missing", ())) or None, sha256))

    def _upsert_call(self, cur, *, sha256, path, size_bytes, call_id, audio, metadata, run_id) -> tuple[int, str]:
        path = _absolute(path)
        row = cur.execute("SELECT id, call_id FROM calls WHERE audio_sha256 = ?", (sha256,)).fetchone()
        meta_cols = METADATA_FIELDS
        values = [metadata.get(k) for k in meta_cols]
        missing = ",".join(metadata.get("missing", ())) or None
        if row is not None:
            cur.execute(f"UPDATE calls SET path = ?, {', '.join(c + ' = ?' for c in meta_cols)},"
                        " metadata_source = ?, metadata_missing = ? WHERE id = ?",
                        (path, *values, metadata.get("source"), missing, row[0]))
            return row[0], row[1]
        unique = call_id
        if cur.execute("SELECT 1 FROM calls WHERE call_id = ?", (unique,)).fetchone():
            unique = f"{call_id}~{sha256[:8]}"
        columns = ("call_id", "audio_sha256", "path", "size_bytes", "duration_s", "sample_rate_hz", "channels",
                   "codec", *meta_cols, "metadata_source", "metadata_missing", "first_run_id")
        cur.execute(f"INSERT INTO calls ({', '.join(columns)}) VALUES ({', '.join(['?'] * len(columns))})",
                    (unique, sha256, path, size_bytes, audio.get("duration_s"), audio.get("sample_rate_hz"),
                     audio.get("channels"), audio.get("codec"), *values, metadata.get("source"), missing, run_id))
        return cur.lastrowid, unique

    def save_error(self, *, path: str, sha256: str, error: str, run_id: int | None) -> None:
        now = _now()
        with self._tx() as cur:
            cur.execute("INSERT INTO errors (path, audio_sha256, error, first_run_id, last_run_id, first_seen, last_seen)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (path, audio_sha256) DO UPDATE SET"
                        " error = excluded.error, last_run_id = excluded.last_run_id, attempts = attempts + 1,"
                        " last_seen = excluded.last_seen", (path, sha256, error, run_id, run_id, now, now))

    def errors(self) -> list[dict]:
        return [dict(r) for r in self.conn.execute("SELECT * FROM errors ORDER BY path")]


def _absolute(path: str) -> str:
    """Where a recording is, independent of the directory the batch ran in (the review page serves it)."""
    return str(Path(path).absolute())


def _metadata_of(row: sqlite3.Row) -> dict:
    out = {k: (row[k] if k in row.keys() else None) for k in METADATA_FIELDS}
    out["source"] = row["metadata_source"]
    out["missing"] = row["metadata_missing"].split(",") if row["metadata_missing"] else []
    return out


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on any error; SQLite errors become StoreError."""

    def __init__(self, conn: sqlite3.Connection, path: str):
        self.conn, self.path = conn, path

    def __enter__(self) -> sqlite3.Cursor:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot write: {exc}") from None
        return self.conn.cursor()

    def __exit__(self, kind, exc, tb) -> bool:
        if kind is None:
            try:
                self.conn.execute("COMMIT")
                return False
            except sqlite3.Error as err:
                self.conn.execute("ROLLBACK")
                raise StoreError(f"{self.path}: cannot write: {err}") from None
        self.conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            raise StoreError(f"{self.path}: cannot write: {exc}") from None
        return False


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


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


def damaged(exc: sqlite3.DatabaseError) -> str:
    """A one-line cause for a SQLite failure, with what to do when the file is damaged."""
    text = str(exc)
    if "malformed" in text or "not a database" in text or "corrupt" in text:
        return f"{text}: the file is damaged; restore it from a backup (or try sqlite3's .recover)"
    return text


def _connect_readonly(path: Path) -> sqlite3.Connection:
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30.0)
    try:
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError:
        conn.close()
    # a WAL store in a folder we may not write to: read it as it is on disk
    if os.access(path.parent, os.W_OK):
        raise StoreError(f"{path}: cannot open the results store for reading")
    return sqlite3.connect(f"file:{quote(str(path.resolve()))}?immutable=1", uri=True, isolation_level=None)


def _check_version(conn: sqlite3.Connection, path: Path) -> int:
    """The schema version, read before anything is written; sanity of the file as an SQLite store."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise StoreError(f"{path}: store schema {version} is newer than this qa-audio ({len(MIGRATIONS)}); "
                         f"upgrade qa-audio (the store was not modified)")
    if version and not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'calls'").fetchone():
        raise StoreError(f"{path}: an SQLite file, but not a qa-audio results store")
    return version


def _migrate(conn: sqlite3.Connection, path: Path, version: int) -> None:
    for number in range(version + 1, len(MIGRATIONS) + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(MIGRATIONS[number - 1]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except Exception:
            conn.execute("ROLLBACK")
            raise


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (no semicolons inside our statements' strings)."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]

