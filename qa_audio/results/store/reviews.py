"""Supervisors' reviews of findings, the review queue, and the audit trail."""
from __future__ import annotations

import json

from qa_audio.results.access import Scope
from qa_audio.results.records import Review
from qa_audio.results.store.backend import Row
from qa_audio.results.store.base import LIST_COLUMNS, StoreBase, _now, scope_sql


def _review(row: Row) -> Review:
    return Review(row["decision"], row["reason"], row["reviewer"], row["at"])


class ReviewsPart(StoreBase):
    """Supervisors' reviews of findings, the review queue, and the audit trail."""

    # ------------------------------------------------------------------ supervisor review
    def reviews_for(self, result_id: int) -> dict[str, Review]:
        """rule → the supervisor's decision, for one result."""
        return {r["rule"]: _review(r)
                for r in self.conn.execute("SELECT * FROM reviews WHERE result_id = ? ORDER BY rule", (result_id,))}

    def save_review(self, *, call_pk: int, result_id: int, rule: str, decision: str, reason: str, reviewer: str,
                    final_score: float | None, final_verdict: str, before: dict, after: dict) -> None:
        """Record one decision, the call's new final score, and the audit line, in one transaction."""
        now = _now()
        with self._tx() as cur:
            cur.execute(
                "INSERT INTO reviews (result_id, rule, decision, reason, reviewer, at) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (result_id, rule) DO UPDATE SET decision = excluded.decision,"
                " reason = excluded.reason, reviewer = excluded.reviewer, at = excluded.at",
                (result_id, rule, decision, reason, reviewer, now),
            )
            cur.execute(
                "UPDATE results SET final_score = ?, final_verdict = ?, reviewed_at = ? WHERE id = ?",
                (final_score, final_verdict, now, result_id),
            )
            cur.execute(
                "INSERT INTO audit (at, actor, action, call_pk, result_id, rule, before_json, after_json, reason)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    now,
                    reviewer,
                    f"review:{decision}",
                    call_pk,
                    result_id,
                    rule,
                    json.dumps(before, ensure_ascii=False),
                    json.dumps(after, ensure_ascii=False),
                    reason,
                ),
            )

    def all_reviews(self) -> dict[int, dict[str, Review]]:
        """result_id → rule → review, for every reviewed result."""
        out: dict[int, dict[str, Review]] = {}
        for r in self.conn.execute("SELECT * FROM reviews ORDER BY result_id, rule"):
            out.setdefault(r["result_id"], {})[r["rule"]] = _review(r)
        return out

    def audit_trail(self, *, call_pk: int | None = None) -> list[dict]:
        sql = "SELECT * FROM audit" + (" WHERE call_pk = ?" if call_pk is not None else "") + " ORDER BY id"
        return [dict(r) for r in self.conn.execute(sql, (call_pk,) if call_pk is not None else ())]

    def log_action(self, *, actor: str, action: str, reason: str | None = None, call_pk: int | None = None) -> None:
        with self._tx() as cur:
            cur.execute("INSERT INTO audit (at, actor, action, reason, call_pk) VALUES (?, ?, ?, ?, ?)",
                        (_now(), actor, action, reason, call_pk))

    def queue_rows(self, scope: Scope | None = None) -> list[dict]:
        """Every call with a current result in ``scope``: what the spot-check queue is drawn from."""
        in_scope, args = scope_sql(scope)
        rows = self.conn.execute(
            f"SELECT {LIST_COLUMNS} FROM calls c JOIN results r ON r.id = c.current_result_id"
            f" WHERE {in_scope} ORDER BY c.call_time, c.id", args
        ).fetchall()
        return [dict(r) for r in rows]

    def assign(self, *, call_pk: int, to: str | None, by: str) -> None:
        """Give a call's review to a supervisor (None: back to the shared queue), with an audit line."""
        now = _now()
        with self._tx() as cur:
            before = cur.execute("SELECT assigned_to FROM calls WHERE id = ?", (call_pk,)).fetchone()
            cur.execute("UPDATE calls SET assigned_to = ?, assigned_at = ? WHERE id = ?",
                        (to, now if to else None, call_pk))
            cur.execute("INSERT INTO audit (at, actor, action, call_pk, before_json, after_json)"
                        " VALUES (?, ?, 'assign', ?, ?, ?)",
                        (now, by, call_pk, json.dumps({"assigned_to": before[0] if before else None}),
                         json.dumps({"assigned_to": to})))

    def mark_checked(self, *, call_pk: int, result_id: int, reviewer: str, score: float | None, verdict: str) -> None:
        """A supervisor listened to the call and left its findings as they are."""
        now = _now()
        with self._tx() as cur:
            cur.execute(
                "UPDATE results SET reviewed_at = ?, final_score = COALESCE(final_score, ?),"
                " final_verdict = COALESCE(final_verdict, ?) WHERE id = ?",
                (now, score, verdict, result_id),
            )
            cur.execute(
                "INSERT INTO audit (at, actor, action, call_pk, result_id, after_json, reason)"
                " VALUES (?, ?, 'checked', ?, ?, ?, ?)",
                (
                    now,
                    reviewer,
                    call_pk,
                    result_id,
                    json.dumps({"final_score": score, "final_verdict": verdict}),
                    "listened; no change",
                ),
            )
