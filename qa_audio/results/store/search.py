"""Searching and listing calls with their final scores (after review)."""
from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

from qa_audio.errors import StoreError
from qa_audio.results.access import Scope
from qa_audio.results.store.base import (
    CALL_SORTS,
    FINAL_SCORE,
    FINAL_VERDICT,
    FINALLY_FAILING,
    LIST_COLUMNS,
    StoreBase,
    scope_sql,
)


class SearchPart(StoreBase):
    """Searching and listing calls with their final scores (after review)."""

    def search_calls(self, *, agent: str | None = None, team: str | None = None, date_from: str | None = None,
                     date_to: str | None = None, score_min: float | None = None, score_max: float | None = None,
                     verdict: str | None = None, failed_rule: str | None = None, text: str | None = None,
                     sort: str = "time", descending: bool = True, offset: int = 0,
                     limit: int = 50, shown: Callable[[str], str | None] | None = None,
                     scope: Scope | None = None) -> tuple[list[dict], int]:
        """Calls with a current result matching every filter given, one page of them, and how many match.

        Scores and verdicts are the final ones (after supervisor review); ``failed_rule``
        means failing as finally decided; ``text`` is a substring of the transcript as ``shown``
        (the masker of the pages: a masked number cannot be found, hence not recovered digit by
        digit, by searching); dates compare with ``call_time`` (``YYYY-MM-DD``, ``date_to`` inclusive).
        """
        if sort not in CALL_SORTS:
            raise StoreError(f"{self.path}: unknown sort {sort!r} (known: {', '.join(CALL_SORTS)})")
        in_scope, scope_args = scope_sql(scope)
        where, args = [in_scope], list(scope_args)
        for condition, value in (("c.agent_id = ?", agent), ("c.team = ?", team), ("c.call_time >= ?", date_from),
                                 ("c.call_time < ?", _day_after(date_to)), (f"{FINAL_SCORE} >= ?", score_min),
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
                    f" JOIN segments s ON s.analysis_id = r.analysis_id WHERE s.text LIKE ? ESCAPE '\\' AND {in_scope}",
                    (f"%{escaped}%", *scope_args)).fetchall()
                visible = sorted({pk for pk, said in hits if text in (shown(said) or "")})
                where.append(f"c.id IN ({', '.join('?' * len(visible))})" if visible else "0 = 1")
                args.extend(visible)
        base = (" FROM calls c JOIN results r ON r.id = c.current_result_id WHERE " + " AND ".join(where))
        total = self.conn.execute("SELECT COUNT(*)" + base, args).fetchone()[0]
        order = f"{CALL_SORTS[sort]} {'DESC' if descending else 'ASC'} NULLS LAST, c.id"
        rows = self.conn.execute(
            f"SELECT {LIST_COLUMNS}, (SELECT {self.dialect.group_concat('f.rule', ' ')} {FINALLY_FAILING})"
            " AS failed_rules"
            + base + f" ORDER BY {order} LIMIT ? OFFSET ?", [*args, limit, offset]).fetchall()
        return [dict(r) for r in rows], total

    def facets(self, scope: Scope | None = None) -> dict:
        """The values the call filters offer within ``scope``: agents (id, name), teams, rules."""
        in_scope, args = scope_sql(scope)
        q = self.conn.execute
        return {"agents": [tuple(r) for r in q("SELECT agent_id, MAX(agent_name) FROM calls c WHERE agent_id IS NOT"
                                               f" NULL AND {in_scope} GROUP BY agent_id ORDER BY agent_id", args)],
                "teams": [r[0] for r in q(f"SELECT DISTINCT team FROM calls c WHERE team IS NOT NULL AND {in_scope}"
                                          " ORDER BY team", args)],
                "rules": [r[0] for r in q("SELECT DISTINCT f.rule FROM findings f JOIN calls c"
                                          f" ON c.current_result_id = f.result_id WHERE {in_scope} ORDER BY f.rule",
                                          args)]}


def _day_after(day: str | None) -> str | None:
    """The day after ``YYYY-MM-DD`` (``date_to`` is inclusive; call times are ISO text)."""
    if not day:
        return day
    try:
        return (date.fromisoformat(day[:10]) + timedelta(days=1)).isoformat()
    except ValueError:
        raise StoreError(f"date_to: {day!r} is not a date (YYYY-MM-DD)") from None
