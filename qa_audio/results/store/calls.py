"""Calls, their analyses and current results: written one call per transaction, read back as records."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

from qa_audio.config import METADATA_FIELDS
from qa_audio.errors import StoreError
from qa_audio.results.access import Scope
from qa_audio.results.records import Review, StoredResult
from qa_audio.results.store.backend import Row
from qa_audio.results.store.base import StoredCall, _absolute, _metadata_of, _now, scope_sql
from qa_audio.results.store.reviews import ReviewsPart

if TYPE_CHECKING:
    from qa_audio.judge.analysis import Analysis


class CallsPart(ReviewsPart):
    """Calls, their analyses and current results: written one call per transaction, read back as records."""

    def has_result(self, sha256: str, *, rulebook: str, model: str, key: str) -> bool:
        """A result for this audio with this rulebook and model, from an analysis made with these settings."""
        row = self.conn.execute(
            "SELECT 1 FROM results r JOIN calls c ON c.id = r.call_pk JOIN analyses a ON a.id = r.analysis_id"
            " WHERE c.audio_sha256 = ? AND r.rulebook = ? AND r.model = ? AND a.analysis_key = ?",
            (sha256, rulebook, model, key)).fetchone()
        return row is not None

    def analysis_for(self, sha256: str, *, key: str) -> Analysis | None:
        """A stored analysis of this audio made with the same settings."""
        row = self.conn.execute(
            "SELECT a.* FROM analyses a JOIN calls c ON c.id = a.call_pk WHERE c.audio_sha256 = ?"
            " AND a.analysis_key = ?", (sha256, key)).fetchone()
        return self._analysis(row) if row else None

    def _analysis(self, row: Row) -> Analysis:
        from qa_audio.judge.analysis import Analysis  # jieba and pypinyin load only when one is read

        return Analysis.from_dict(self._analysis_dict(row))

    def _analysis_dict(self, row: Row) -> dict:
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

    def stored_analyses(self, *, key: str) -> list[tuple[str, Analysis]]:
        """(audio_sha256, analysis) for every call analysed with these settings."""
        rows = self.conn.execute("SELECT a.*, c.audio_sha256 AS sha FROM analyses a JOIN calls c ON c.id = a.call_pk"
                                 " WHERE a.analysis_key = ? ORDER BY c.id", (key,)).fetchall()
        return [(row["sha"], self._analysis(row)) for row in rows]

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

    def _stored_call(self, row: Row) -> StoredCall:
        result = analysis = res = None
        reviews: dict[str, Review] = {}
        if row["current_result_id"] is not None:
            res = self.conn.execute("SELECT * FROM results WHERE id = ?", (row["current_result_id"],)).fetchone()
            result = self._result(res)
            arow = self.conn.execute("SELECT * FROM analyses WHERE id = ?", (res["analysis_id"],)).fetchone()
            analysis = self._analysis(arow)
            reviews = self.reviews_for(res["id"])
        return StoredCall(row["id"], row["call_id"], row["audio_sha256"], row["path"], _metadata_of(row),
                          result, analysis, row["current_result_id"], reviews,
                          res["final_score"] if res else None, res["final_verdict"] if res else None,
                          res["created_at"] if res else None,
                          row["assigned_to"] if "assigned_to" in row.keys() else None)

    def call_by_pk(self, call_pk: int) -> StoredCall | None:
        row = self.conn.execute("SELECT * FROM calls WHERE id = ?", (call_pk,)).fetchone()
        return self._stored_call(row) if row else None

    def audio_source(self, call_pk: int) -> dict | None:
        """Where a stored call's recording is: path, content hash, size and codec (None: no such call)."""
        row = self.conn.execute("SELECT path, audio_sha256, size_bytes, codec, agent_id, team FROM calls WHERE id = ?",
                                (call_pk,)).fetchone()
        return dict(row) if row else None

    # ------------------------------------------------------------------ reporting
    def current_rows(self, scope: Scope | None = None) -> list[dict]:
        """One row per call with a current result in ``scope``: metadata, score, final score, reviewed."""
        in_scope, args = scope_sql(scope)
        rows = self.conn.execute(
            "SELECT c.id AS call_pk, c.call_id, c.agent_id, c.agent_name, c.team, c.call_time, c.direction,"
            f" {self._client},"
            " c.duration_s, r.id AS result_id, r.rulebook, r.rulebook_name, r.model, r.score, r.verdict,"
            " r.final_score, r.final_verdict, r.reviewed_at, r.result_json"
            f" FROM calls c JOIN results r ON r.id = c.current_result_id WHERE {in_scope}"
            " ORDER BY c.call_time, c.call_id", args
        ).fetchall()
        return [dict(r) for r in rows]

    def current_result(self, sha256: str) -> StoredResult | None:
        row = self.conn.execute(
            "SELECT r.result_json FROM calls c JOIN results r ON r.id = c.current_result_id WHERE c.audio_sha256 = ?",
            (sha256,),
        ).fetchone()
        return self._result(row) if row else None

    def result_by_id(self, result_id: int) -> StoredResult | None:
        """A stored result by its number, current or not (a calibration session keeps the one it was made on)."""
        row = self.conn.execute("SELECT result_json FROM results WHERE id = ?", (result_id,)).fetchone()
        return self._result(row) if row else None

    def _result(self, row: Row) -> StoredResult:
        """The stored result record; a result the store cannot read is a damaged store, named."""
        try:
            return StoredResult.from_dict(json.loads(row["result_json"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"{self.path}: a stored result cannot be read ({exc}); the store is damaged: "
                             f"restore it from a backup") from None

    def counts(self) -> dict:
        q = self.conn.execute
        return {
            "calls": q("SELECT COUNT(*) FROM calls").fetchone()[0],
            "results": q("SELECT COUNT(*) FROM results").fetchone()[0],
            "current_results": q("SELECT COUNT(*) FROM calls WHERE current_result_id IS NOT NULL").fetchone()[0],
            "errors": q("SELECT COUNT(*) FROM errors").fetchone()[0],
            "analyses": q("SELECT COUNT(*) FROM analyses").fetchone()[0],
        }

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
            analysis_id = _save_analysis(cur, call_pk, analysis, run_id=run_id, now=now)
            result_id = _save_result(cur, call_pk, analysis_id, dict(result, call_id=call_id), run_id=run_id, now=now)
            cur.execute("UPDATE calls SET current_result_id = ? WHERE id = ?", (result_id, call_pk))
            cur.execute("DELETE FROM errors WHERE path = ?", (path,))
        return call_id

    def update_metadata(self, sha256: str, *, path: str, metadata: dict) -> None:
        """A call's path and metadata as the latest batch saw them (a corrected sidecar CSV, a moved file)."""
        cols = METADATA_FIELDS
        path = _absolute(path)
        with self._tx() as cur:
            cur.execute(
                f"UPDATE calls SET path = ?, {', '.join(c + ' = ?' for c in cols)}, metadata_source = ?,"
                " metadata_missing = ? WHERE audio_sha256 = ?",
                (
                    path,
                    *[metadata.get(c) for c in cols],
                    metadata.get("source"),
                    ",".join(metadata.get("missing", ())) or None,
                    sha256,
                ),
            )

    def _upsert_call(self, cur, *, sha256, path, size_bytes, call_id, audio, metadata, run_id) -> tuple[int, str]:
        path = _absolute(path)
        row = cur.execute("SELECT id, call_id FROM calls WHERE audio_sha256 = ?", (sha256,)).fetchone()
        meta_cols = METADATA_FIELDS
        values = [metadata.get(k) for k in meta_cols]
        missing = ",".join(metadata.get("missing", ())) or None
        if row is not None:
            cur.execute(
                f"UPDATE calls SET path = ?, {', '.join(c + ' = ?' for c in meta_cols)},"
                " metadata_source = ?, metadata_missing = ? WHERE id = ?",
                (path, *values, metadata.get("source"), missing, row[0]),
            )
            return row[0], row[1]
        unique = call_id
        if cur.execute("SELECT 1 FROM calls WHERE call_id = ?", (unique,)).fetchone():
            unique = f"{call_id}~{sha256[:8]}"
        columns = (
            "call_id",
            "audio_sha256",
            "path",
            "size_bytes",
            "duration_s",
            "sample_rate_hz",
            "channels",
            "codec",
            *meta_cols,
            "metadata_source",
            "metadata_missing",
            "first_run_id",
        )
        cur.execute(
            f"INSERT INTO calls ({', '.join(columns)}) VALUES ({', '.join(['?'] * len(columns))})",
            (
                unique,
                sha256,
                path,
                size_bytes,
                audio.get("duration_s"),
                audio.get("sample_rate_hz"),
                audio.get("channels"),
                audio.get("codec"),
                *values,
                metadata.get("source"),
                missing,
                run_id,
            ),
        )
        return cur.lastrowid, unique


def _save_analysis(cur, call_pk: int, analysis: dict, *, run_id: int | None, now: str) -> int:
    """The call's analysis under its key (kept when already stored: a rescore reuses it), with its checks."""
    row = cur.execute("SELECT id FROM analyses WHERE call_pk = ? AND analysis_key = ?",
                      (call_pk, analysis["key"])).fetchone()
    if row is None:
        cur.execute("INSERT INTO analyses (call_pk, analysis_key, model, acoustics_json, audio_json,"
                    " stage_json, run_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (call_pk, analysis["key"], analysis["model"], json.dumps(analysis["acoustics"]),
                     json.dumps(analysis["audio"], ensure_ascii=False), json.dumps(analysis["stage_s"]), run_id, now))
        analysis_id = cur.lastrowid
        cur.executemany("INSERT INTO segments (analysis_id, idx, channel, start_s, end_s, text, words_json)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [(analysis_id, i, u["channel"], u["start_s"], u["end_s"], u["text"],
                          json.dumps(u["words"], ensure_ascii=False)) for i, u in enumerate(analysis["utterances"])])
    else:
        analysis_id = row[0]
    cur.execute("UPDATE analyses SET checks_json = ? WHERE id = ?",
                (json.dumps(analysis.get("checks", []), ensure_ascii=False), analysis_id))
    return analysis_id


def _save_result(cur, call_pk: int, analysis_id: int, result: dict, *, run_id: int | None, now: str) -> int:
    """The result (replacing one under the same rulebook and model), its findings and its timing."""
    versions = result["versions"]
    cur.execute("DELETE FROM results WHERE call_pk = ? AND rulebook = ? AND model = ?",
                (call_pk, versions["rulebook"], versions["model"]))
    cur.execute("INSERT INTO results (call_pk, analysis_id, run_id, rulebook, rulebook_name, model, score,"
                " verdict, verdict_reason, result_json, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (call_pk, analysis_id, run_id, versions["rulebook"], versions.get("rulebook_name"), versions["model"],
                 result["score"], result["verdict"], result.get("verdict_reason"),
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
                " interruptions, dead_air, longest_dead_air_s, timing_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (result_id, t["answered"], t["rings"], t["ring_to_answer_s"], len(holds),
                 max((h["longest_wait_s"] for h in holds), default=None),
                 None if t["interruptions"] is None else len(t["interruptions"]), len(dead),
                 max((d["end_s"] - d["start_s"] for d in dead), default=None), json.dumps(t)))
    return result_id
