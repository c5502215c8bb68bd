"""The store's schema: numbered migrations (the version is SQLite's ``PRAGMA user_version``, or the
``qa_schema`` table on PostgreSQL), the version check made before anything is written, and opening an
SQLite store read-only. The migrations are written in SQLite's types; :mod:`.backend` translates them."""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

from qa_audio.errors import StoreError
from qa_audio.results.store.backend import Dialect, first_line

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
        "user" TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        revoked_at TEXT
    );
    CREATE INDEX sessions_user ON sessions ("user");
    """,
    # 4: the client line a call was made on (which rulebook judges it; export by client)
    """
    ALTER TABLE calls ADD COLUMN client TEXT;
    """,
    # 5: phrases re-checked against the audio (qa_audio.judge.recheck), kept with the analysis
    """
    ALTER TABLE analyses ADD COLUMN checks_json TEXT;
    """,
    # 6: roles and scope, review assignment, agents' appeals, calibration sessions (#16)
    """
    ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'supervisor';
    ALTER TABLE users ADD COLUMN teams_json TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE users ADD COLUMN agent_id TEXT;
    ALTER TABLE calls ADD COLUMN assigned_to TEXT;
    ALTER TABLE calls ADD COLUMN assigned_at TEXT;
    CREATE INDEX calls_team ON calls(team);
    CREATE TABLE appeals (
        id INTEGER PRIMARY KEY,
        call_pk INTEGER NOT NULL REFERENCES calls(id),
        result_id INTEGER NOT NULL REFERENCES results(id) ON DELETE CASCADE,
        rule TEXT NOT NULL,
        agent TEXT NOT NULL,                   -- the account that appealed
        reason TEXT NOT NULL,
        filed_at TEXT NOT NULL,
        disputed_by TEXT,                      -- who made the decision appealed against (NULL: the checker)
        status TEXT NOT NULL,                  -- open, upheld, overturned
        ruled_by TEXT, ruling_reason TEXT, ruled_at TEXT,
        score_before REAL, score_after REAL,
        UNIQUE (result_id, rule)
    );
    CREATE INDEX appeals_status ON appeals(status);
    CREATE TABLE calibration_sessions (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE calibration_members (
        session_id INTEGER NOT NULL REFERENCES calibration_sessions(id) ON DELETE CASCADE,
        reviewer TEXT NOT NULL,
        PRIMARY KEY (session_id, reviewer)
    );
    CREATE TABLE calibration_calls (
        session_id INTEGER NOT NULL REFERENCES calibration_sessions(id) ON DELETE CASCADE,
        call_pk INTEGER NOT NULL REFERENCES calls(id),
        result_id INTEGER NOT NULL REFERENCES results(id),
        PRIMARY KEY (session_id, call_pk)
    );
    CREATE TABLE calibration_labels (
        session_id INTEGER NOT NULL REFERENCES calibration_sessions(id) ON DELETE CASCADE,
        call_pk INTEGER NOT NULL,
        reviewer TEXT NOT NULL,
        rule TEXT NOT NULL,
        label TEXT NOT NULL,                   -- pass or fail: the reviewer's own judgement
        submitted_at TEXT NOT NULL,
        PRIMARY KEY (session_id, call_pk, reviewer, rule)
    );
    """,
)


READABLE_FROM = 2       # what reading needs (results' final scores); later migrations add tables reads never use


def damaged(exc: Exception) -> str:
    """A one-line cause for a database failure, with what to do when an SQLite file is damaged."""
    text = first_line(exc)
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


def check_version(conn: Any, dialect: Dialect, name: str) -> int:
    """The schema version, read before anything is written; sanity of the database as a qa-audio store."""
    version = dialect.schema_version(conn)
    if version > len(MIGRATIONS):
        raise StoreError(f"{name}: store schema {version} is newer than this qa-audio ({len(MIGRATIONS)}); "
                         f"upgrade qa-audio (the store was not modified)")
    if version and "calls" not in dialect.tables(conn):
        what = "an SQLite file" if dialect.kind == "sqlite" else "a database"
        raise StoreError(f"{name}: {what}, but not a qa-audio results store")
    return version


def migrate(conn: Any, dialect: Dialect, name: str) -> None:
    """Bring the store up to the newest schema, one migration per transaction."""
    with dialect.migration_lock(conn):
        version = check_version(conn, dialect, name)       # read again under the lock: another opener may have
        for number in range(version + 1, len(MIGRATIONS) + 1):
            dialect.begin_write(conn)
            try:
                for statement in _statements(MIGRATIONS[number - 1]):
                    conn.execute(dialect.ddl(statement))
                dialect.set_schema_version(conn, number)
                conn.execute("COMMIT")
            except Exception:
                conn.execute("ROLLBACK")
                raise


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (no semicolons inside our statements' strings)."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
