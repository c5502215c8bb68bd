"""Agents' appeals (申诉) against findings, and supervisors' rulings on them."""
from __future__ import annotations

import json

from qa_audio.errors import StoreError
from qa_audio.results.access import Scope
from qa_audio.results.records import Appeal
from qa_audio.results.store.backend import Row
from qa_audio.results.store.base import StoreBase, _now, scope_sql

_SELECT = ("SELECT a.*, c.call_id, c.agent_id, c.team FROM appeals a JOIN calls c ON c.id = a.call_pk")


def _appeal(row: Row) -> Appeal:
    return Appeal(row["id"], row["call_pk"], row["call_id"], row["result_id"], row["rule"], row["agent"],
                  row["reason"], row["filed_at"], row["disputed_by"], row["status"], row["ruled_by"],
                  row["ruling_reason"], row["ruled_at"], row["score_before"], row["score_after"],
                  row["agent_id"], row["team"])


class AppealsPart(StoreBase):
    """Agents' appeals (申诉) against findings, and supervisors' rulings on them."""

    def appeals(self, *, scope: Scope | None = None, status: str | None = None, call_pk: int | None = None,
                result_id: int | None = None) -> list[Appeal]:
        """Appeals on calls in ``scope``, oldest first; optionally of one status, call or result."""
        if "appeals" not in self._tables:          # a store read (read-only) before migration 6
            return []
        in_scope, args = scope_sql(scope)
        where = [in_scope]
        for condition, value in (("a.status = ?", status), ("a.call_pk = ?", call_pk), ("a.result_id = ?", result_id)):
            if value is not None:
                where.append(condition)
                args.append(value)
        rows = self.conn.execute(f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY a.filed_at, a.id", args)
        return [_appeal(r) for r in rows]

    def appeal(self, appeal_id: int) -> Appeal | None:
        row = self.conn.execute(f"{_SELECT} WHERE a.id = ?", (appeal_id,)).fetchone()
        return _appeal(row) if row else None

    def file_appeal(self, *, call_pk: int, result_id: int, rule: str, agent: str, reason: str,
                    disputed_by: str | None, score: float | None) -> int:
        """Store an open appeal and its audit line in one transaction; returns its number."""
        now = _now()
        with self._tx() as cur:
            cur.execute("INSERT INTO appeals (call_pk, result_id, rule, agent, reason, filed_at, disputed_by, status,"
                        " score_before) VALUES (?, ?, ?, ?, ?, ?, ?, 'open', ?)",
                        (call_pk, result_id, rule, agent, reason, now, disputed_by, score))
            appeal_id = cur.lastrowid
            cur.execute("INSERT INTO audit (at, actor, action, call_pk, result_id, rule, after_json, reason)"
                        " VALUES (?, ?, 'appeal:file', ?, ?, ?, ?, ?)",
                        (now, agent, call_pk, result_id, rule,
                         json.dumps({"appeal": appeal_id, "disputed_by": disputed_by or "checker"}), reason))
        return int(appeal_id)

    def rule_appeal(self, *, appeal: Appeal, status: str, ruled_by: str, reason: str, decision: str,
                    final_score: float | None, final_verdict: str, before: dict, after: dict) -> None:
        """The ruling: the appeal closed, the finding's review set to ``decision``, the call's final score,
        and the audit line, in one transaction. Refused if someone ruled on it meanwhile."""
        now = _now()
        with self._tx() as cur:
            changed = cur.execute("UPDATE appeals SET status = ?, ruled_by = ?, ruling_reason = ?, ruled_at = ?,"
                                  " score_after = ? WHERE id = ? AND status = 'open'",
                                  (status, ruled_by, reason, now, final_score, appeal.id)).rowcount
            if not changed:
                raise StoreError(f"{self.path}: appeal {appeal.id} was ruled on already")
            cur.execute("INSERT INTO reviews (result_id, rule, decision, reason, reviewer, at)"
                        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (result_id, rule) DO UPDATE SET"
                        " decision = excluded.decision, reason = excluded.reason, reviewer = excluded.reviewer,"
                        " at = excluded.at",
                        (appeal.result_id, appeal.rule, decision, f"申诉裁决 appeal ruling: {reason}", ruled_by, now))
            cur.execute("UPDATE results SET final_score = ?, final_verdict = ?, reviewed_at = ? WHERE id = ?",
                        (final_score, final_verdict, now, appeal.result_id))
            cur.execute("INSERT INTO audit (at, actor, action, call_pk, result_id, rule, before_json, after_json,"
                        " reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (now, ruled_by, f"appeal:{'uphold' if status == 'upheld' else 'overturn'}", appeal.call_pk,
                         appeal.result_id, appeal.rule, json.dumps(before, ensure_ascii=False),
                         json.dumps(dict(after, appeal=appeal.id), ensure_ascii=False), reason))

    def appeal_counts(self) -> dict[int, dict[str, int]]:
        """result_id → appeal status → how many, for the HR export."""
        if "appeals" not in self._tables:
            return {}
        out: dict[int, dict[str, int]] = {}
        for result_id, status, n in self.conn.execute("SELECT result_id, status, COUNT(*) FROM appeals"
                                                      " GROUP BY result_id, status"):
            out.setdefault(result_id, {})[status] = n
        return out
