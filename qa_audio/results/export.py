"""Scores for HR: per agent (or team, or client line) and period, per scorecard section and in total, plus
one row per call.

Final scores are those after supervisor review and appeals. The export is a pure function of the store
and the period; it records the rulebook versions, models and the time range it covers. Its files are
written by :mod:`qa_audio.results.sheets`, with the human headings named here.
"""
from __future__ import annotations

import json
import re
import statistics
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from qa_audio.errors import QAError
from qa_audio.i18n import DEFAULT_LANGUAGE, N_, gettext, title_in
from qa_audio.results.access import Scope
from qa_audio.results.records import StoredResult
from qa_audio.results.store import Store


@dataclass(frozen=True)
class Period:
    label: str
    start: date        # inclusive
    end: date          # exclusive

    @property
    def last(self) -> date:
        """Its last day (inclusive)."""
        return self.end - timedelta(days=1)

    def contains(self, iso_time: str) -> bool:
        day = datetime.fromisoformat(iso_time).date()
        return self.start <= day < self.end


def final_of(row: dict) -> tuple[float | None, str, bool]:
    """A stored call's score and verdict as HR sees them: after review and appeals where a supervisor
    decided, else as scored; and whether one did (``current_rows``' fields)."""
    reviewed = row["final_score"] is not None
    if reviewed:
        return row["final_score"], row["final_verdict"], True
    return row["score"], row["verdict"], False


def parse_period(text: str) -> Period:
    """``2026-11`` (a month), ``2026`` (a year), ``2026-11-03`` (a day), ``2026-W45`` (an ISO week),
    or ``2026-11-01..2026-11-15`` (both days included)."""
    t = text.strip()
    try:
        if ".." in t:
            a, b = (date.fromisoformat(x.strip()) for x in t.split("..", 1))
            if b < a:
                raise QAError(f"period {text!r}: the end is before the start")
            return Period(t, a, b + timedelta(days=1))
        if re.fullmatch(r"\d{4}", t):
            return Period(t, date(int(t), 1, 1), date(int(t) + 1, 1, 1))
        if re.fullmatch(r"\d{4}-\d{2}", t):
            y, m = map(int, t.split("-"))
            start = date(y, m, 1)
            return Period(t, start, date(y + (m == 12), m % 12 + 1, 1))
        week = re.fullmatch(r"(\d{4})-W(\d{2})", t)
        if week:
            start = date.fromisocalendar(int(week.group(1)), int(week.group(2)), 1)
            return Period(t, start, start + timedelta(days=7))
        day = date.fromisoformat(t)
        return Period(t, day, day + timedelta(days=1))
    except ValueError:
        raise QAError(f"period {text!r}: expected YYYY, YYYY-MM, YYYY-MM-DD, YYYY-Www or DAY..DAY") from None


# the human headings of the spreadsheet and CSV columns (the JSON keeps the keys), from the catalogue
HEADINGS = {
    "agent_id": N_("Agent ID"), "agent_name": N_("Agent name"), "team": N_("Team"), "client": N_("Client line"),
    "calls": N_("Calls"), "mean_score": N_("Mean score"), "median_score": N_("Median score"),
    "pass_rate": N_("Pass rate"), "unscorable": N_("Unscorable"), "redline_failures": N_("Red-line failures"),
    "reviewed_share": N_("Reviewed share"), "appeals": N_("Appeals"), "appeals_upheld": N_("Appeals upheld"),
    "appeals_overturned": N_("Appeals granted"), "appeals_open": N_("Appeals open"), "call_id": N_("Call ID"),
    "call_time": N_("Call time"), "duration_s": N_("Length (s)"), "auto_score": N_("Checker's score"),
    "final_score": N_("Final score"), "verdict": N_("Verdict"), "reviewed": N_("Reviewed"),
    "redline": N_("Red line"), "failed_standards": N_("Failed standards"), "rulebook": N_("Rulebook"),
}
CELL_WORDS = {"pass": N_("pass"), "fail": N_("fail"), "review": N_("review"), "unscorable": N_("unscorable"),
              "error": N_("error"), True: N_("yes"), False: N_("no")}
ABOUT = {"period": N_("Period"), "from": N_("From"), "to": N_("To"), "by": N_("By"), "store": N_("Results store"),
         "calls": N_("Calls"), "calls_without_call_time": N_("Calls without a call time (in no period)"),
         "calls_left_out_blind": N_("Calls left out: you are still to judge them blind (calibration)"),
         "rulebooks": N_("Rulebooks"), "models": N_("Models"), "final_scores": N_("Final scores"),
         "appeals": N_("Appeals")}
FINAL_SCORES_NOTE = N_("after supervisor review where a call was reviewed, else as scored")
APPEALS_NOTE = N_("agents' appeals (申诉) on the calls' current results: filed, upheld, overturned, still open")
SHEETS = {"agent": N_("By agent"), "team": N_("By team"), "client": N_("By client line"), "calls": N_("Calls"),
          "failed": N_("Failures per standard"), "about": N_("About")}


@dataclass(frozen=True)
class Export:
    about: dict
    rules: tuple[str, ...]          # standards' IDs in rulebook order, one count column each
    groups: tuple[dict, ...]        # one row per agent or team
    calls: tuple[dict, ...]         # one row per call
    sections: tuple[tuple[str, str, str], ...] = ()   # the scorecard's sections: (id, title, title_en)

    def key_columns(self) -> list[str]:
        return ["agent_id", "agent_name", "team"] if self.about["by"] == "agent" else [self.about["by"]]

    def summary_columns(self) -> list[str]:
        """A group's figures without the per-standard counts (what fits a printed page)."""
        return (self.key_columns()
                + ["calls", "mean_score", "median_score", "pass_rate", "unscorable", "redline_failures",
                   "reviewed_share", "appeals", "appeals_upheld", "appeals_overturned", "appeals_open"]
                + [f"section {sid}" for sid, _, _ in self.sections])

    def failed_columns(self) -> list[str]:
        return self.key_columns() + [f"failed {r}" for r in self.rules]

    def group_columns(self) -> list[str]:
        return self.summary_columns() + [f"failed {r}" for r in self.rules]

    def heading(self, column: str, language: str = DEFAULT_LANGUAGE) -> str:
        """A column's heading for people, in ``language`` (坐席工号, 平均分 …)."""
        if column.startswith("failed "):
            return gettext(language, N_("%(rule)s failed"), rule=column[7:])
        if column.startswith("section "):
            sid = column[8:]
            title = next((title_in(t, t_en, language) for i, t, t_en in self.sections if i == sid), sid)
            return gettext(language, N_("%(section)s score"), section=title)
        return gettext(language, HEADINGS[column]) if column in HEADINGS else column

    def call_columns(self) -> list[str]:
        columns = self.base_call_columns()
        if all(c.get("client") in (None, "(none)") for c in self.calls):
            columns.remove("client")                 # not a multi-client centre: no column of "(none)"
        if len({c.get("rulebook") for c in self.calls}) <= 1:
            columns.remove("rulebook")               # one rulebook for all: the about sheet names it
        return columns + [f"section {sid}" for sid, _, _ in self.sections]

    @staticmethod
    def base_call_columns() -> list[str]:
        return [
            "call_id",
            "call_time",
            "agent_id",
            "agent_name",
            "team",
            "client",
            "duration_s",
            "auto_score",
            "final_score",
            "verdict",
            "reviewed",
            "appeals",
            "appeals_overturned",
            "redline",
            "failed_standards",
            "rulebook",
        ]

    def to_dict(self) -> dict:
        return {"about": self.about, "groups": list(self.groups), "calls": list(self.calls)}


GROUPINGS = ("agent", "team", "client")


def build_export(store: Store, *, period: Period, by: str = "agent", scope: Scope | None = None,
                 leave_out: Collection[int] = ()) -> Export:
    """The export of the calls in ``period`` (and in ``scope``: a user's, on the review page), without the
    calls numbered in ``leave_out`` (those a reviewer is still to judge blind in a calibration session)."""
    if by not in GROUPINGS:
        raise QAError(f"--by must be one of {', '.join(GROUPINGS)}, got {by!r}")
    rows = store.current_rows(scope)
    blind = sum(1 for r in rows if r["call_pk"] in leave_out and r["call_time"] and period.contains(r["call_time"]))
    rows = [r for r in rows if r["call_pk"] not in leave_out]
    reviews = store.all_reviews()
    appeals = store.appeal_counts()
    no_time = [r["call_id"] for r in rows if not r["call_time"]]
    chosen = [r for r in rows if r["call_time"] and period.contains(r["call_time"])]
    rule_order: list[str] = []
    sections: dict[str, tuple[str, str, str]] = {}
    calls = []
    for r in chosen:
        result = StoredResult.from_dict(json.loads(r["result_json"]))
        findings = result.decided(reviews.get(r["result_id"], {}))
        scores = {}
        for part in result.final_sections(reviews.get(r["result_id"], {})):
            sections.setdefault(part.id, (part.id, part.title, part.title_en))
            scores[f"section {part.id}"] = part.score
        for f in findings:
            if f.rule not in rule_order and f.enabled:
                rule_order.append(f.rule)
        failed = [f.rule for f in findings if f.status == "fail" and f.enabled]   # a shadow rule is not HR's business
        final_score, verdict, reviewed = final_of(r)
        appealed = appeals.get(r["result_id"], {})
        calls.append(
            {
                "call_id": r["call_id"],
                "call_time": r["call_time"],
                "agent_id": r["agent_id"] or "(unknown)",
                "agent_name": r["agent_name"] or "",
                "team": r["team"] or "(unknown)",
                "client": r.get("client") or "(none)",
                "duration_s": r["duration_s"],
                "auto_score": r["score"],
                "final_score": final_score,
                "verdict": verdict,
                "reviewed": reviewed,
                "appeals": sum(appealed.values()),
                "appeals_overturned": appealed.get("overturned", 0),
                "_appeals_upheld": appealed.get("upheld", 0),
                "_appeals_open": appealed.get("open", 0),
                "redline": any(f.redline for f in findings if f.status == "fail"),
                "failed_standards": ", ".join(failed),
                "rulebook": r["rulebook"],
                "_failed": failed,
                "_model": r["model"],
                "_rulebook_name": r["rulebook_name"],
                **scores,
            }
        )
    calls.sort(key=lambda c: (c["call_time"], c["call_id"]))
    groups = _group(calls, by=by, rules=rule_order, sections=list(sections))
    about = {
        "period": period.label,
        "from": period.start.isoformat(),
        "to": period.last.isoformat(),
        "by": by,
        "store": store.name,
        "calls": len(calls),
        "calls_without_call_time": len(no_time),
        "calls_left_out_blind": blind,
        "rulebooks": sorted({f"{c['_rulebook_name']} {c['rulebook']}" for c in calls}),
        "models": sorted({c["_model"] for c in calls}),
        "final_scores": FINAL_SCORES_NOTE,
        "appeals": APPEALS_NOTE,
    }
    clean = tuple({k: v for k, v in c.items() if not k.startswith("_")} for c in calls)
    return Export(about, tuple(rule_order), tuple(groups), clean, tuple(sections.values()))


def _group(calls: list[dict], *, by: str, rules: list[str], sections: list[str]) -> list[dict]:
    buckets: dict[tuple, list[dict]] = {}
    for c in calls:
        key = (c["agent_id"],) if by == "agent" else (c[by],)
        buckets.setdefault(key, []).append(c)
    out = []
    for key in sorted(buckets):
        items = buckets[key]
        scores = [float(c["final_score"]) for c in items if c["final_score"] is not None]
        scorable = [c for c in items if c["verdict"] != "unscorable"]
        row: dict = {}
        if by == "agent":
            names = sorted({c["agent_name"] for c in items if c["agent_name"]})
            teams = sorted({c["team"] for c in items})
            row.update(agent_id=key[0], agent_name=" / ".join(names), team=" / ".join(teams))
        else:
            row[by] = key[0]
        row.update(
            calls=len(items),
            mean_score=round(statistics.fmean(scores), 2) if scores else None,
            median_score=round(statistics.median(scores), 2) if scores else None,
            pass_rate=round(sum(c["verdict"] == "pass" for c in scorable) / len(scorable), 4) if scorable else None,
            unscorable=len(items) - len(scorable),
            redline_failures=sum(bool(c["redline"]) for c in items),
            reviewed_share=round(sum(bool(c["reviewed"]) for c in items) / len(items), 4),
            appeals=sum(c["appeals"] for c in items),
            appeals_upheld=sum(c["_appeals_upheld"] for c in items),
            appeals_overturned=sum(c["appeals_overturned"] for c in items),
            appeals_open=sum(c["_appeals_open"] for c in items),
        )
        for sid in sections:
            values = [float(c[f"section {sid}"]) for c in items if c.get(f"section {sid}") is not None]
            row[f"section {sid}"] = round(statistics.fmean(values), 2) if values else None
        for rule in rules:
            row[f"failed {rule}"] = sum(rule in c["_failed"] for c in items)
        out.append(row)
    return out
