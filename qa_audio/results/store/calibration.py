"""Calibration sessions: calls, the supervisors who judge them blind, and what each one decided."""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from qa_audio.errors import StoreError
from qa_audio.results.records import CalibrationCall, CalibrationSession
from qa_audio.results.store.base import StoreBase, _now


class CalibrationPart(StoreBase):
    """Calibration sessions: calls, the supervisors who judge them blind, and what each one decided."""

    def create_calibration(self, *, name: str, created_by: str, members: Sequence[str],
                           calls: Sequence[tuple[int, int]]) -> int:
        """A new session over (call_pk, result_id) pairs, judged by ``members``; returns its number."""
        now = _now()
        with self._tx() as cur:
            cur.execute("INSERT INTO calibration_sessions (name, created_by, created_at) VALUES (?, ?, ?)",
                        (name, created_by, now))
            sid = int(cur.lastrowid)
            cur.executemany("INSERT INTO calibration_members (session_id, reviewer) VALUES (?, ?)",
                            [(sid, m) for m in members])
            cur.executemany("INSERT INTO calibration_calls (session_id, call_pk, result_id) VALUES (?, ?, ?)",
                            [(sid, pk, rid) for pk, rid in calls])
            cur.execute("INSERT INTO audit (at, actor, action, after_json, reason) VALUES (?, ?, 'calibration:create',"
                        " ?, ?)", (now, created_by, json.dumps({"session": sid, "members": list(members),
                                                                 "calls": [pk for pk, _ in calls]}), name))
        return sid

    def calibration_sessions(self) -> list[CalibrationSession]:
        if "calibration_sessions" not in self._tables:
            return []
        ids = [r[0] for r in self.conn.execute("SELECT id FROM calibration_sessions ORDER BY id DESC")]
        return [s for s in (self.calibration(i) for i in ids) if s is not None]

    def calibration(self, session_id: int) -> CalibrationSession | None:
        if "calibration_sessions" not in self._tables:
            return None
        q = self.conn.execute
        row = q("SELECT * FROM calibration_sessions WHERE id = ?", (session_id,)).fetchone()
        if row is None:
            return None
        members = tuple(r[0] for r in q("SELECT reviewer FROM calibration_members WHERE session_id = ?"
                                        " ORDER BY reviewer", (session_id,)))
        calls = tuple(CalibrationCall(r[0], r[1], r[2]) for r in q(
            "SELECT k.call_pk, c.call_id, k.result_id FROM calibration_calls k JOIN calls c ON c.id = k.call_pk"
            " WHERE k.session_id = ? ORDER BY c.call_time, c.call_id", (session_id,)))
        labels = tuple((r[0], r[1], r[2], r[3]) for r in q(
            "SELECT call_pk, reviewer, rule, label FROM calibration_labels WHERE session_id = ?"
            " ORDER BY call_pk, reviewer, rule", (session_id,)))
        return CalibrationSession(row["id"], row["name"], row["created_by"], row["created_at"], members, calls,
                                  labels)

    def submit_calibration(self, *, session_id: int, call_pk: int, reviewer: str, labels: Mapping[str, str]) -> None:
        """One reviewer's judgement of one call (rule → pass/fail), handed in once and for good."""
        now = _now()
        with self._tx() as cur:
            if cur.execute("SELECT 1 FROM calibration_labels WHERE session_id = ? AND call_pk = ? AND reviewer = ?",
                           (session_id, call_pk, reviewer)).fetchone():
                raise StoreError(f"{self.path}: {reviewer} handed in call {call_pk} of session {session_id} already")
            cur.executemany("INSERT INTO calibration_labels (session_id, call_pk, reviewer, rule, label, submitted_at)"
                            " VALUES (?, ?, ?, ?, ?, ?)",
                            [(session_id, call_pk, reviewer, rule, label, now)
                             for rule, label in sorted(labels.items())])
            cur.execute("INSERT INTO audit (at, actor, action, call_pk, after_json) VALUES (?, ?, 'calibration:submit',"
                        " ?, ?)", (now, reviewer, call_pk, json.dumps({"session": session_id, "labels": dict(labels)})))

    def pending_calibration(self, reviewer: str) -> dict[int, int]:
        """call_pk → session: the calls ``reviewer`` is to judge blind and has not handed in (their scores
        stay hidden from them), each with the first session that holds it."""
        if "calibration_sessions" not in self._tables:
            return {}
        rows = self.conn.execute(
            "SELECT k.call_pk, MIN(k.session_id) FROM calibration_calls k JOIN calibration_members m"
            " ON m.session_id = k.session_id WHERE m.reviewer = ? AND NOT EXISTS (SELECT 1 FROM calibration_labels l"
            " WHERE l.session_id = k.session_id AND l.call_pk = k.call_pk AND l.reviewer = m.reviewer)"
            " GROUP BY k.call_pk", (reviewer,))
        return {r[0]: r[1] for r in rows}
