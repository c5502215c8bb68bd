"""How teams and agents are doing over time: the figures behind the dashboard page.

Per team or per agent, by ISO week or by month: calls scored, mean final score, pass rate; over the
whole selection: the most failed standards, each rule's health (how often supervisors overturn its
findings: a rule overturned often needs tuning) and the appeals. Final scores and verdicts are those
after review and appeals, as in the HR export; an unscorable call counts as a call, never in a mean or
a pass rate.
"""
from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime

from qa_audio.errors import QAError
from qa_audio.results.access import Scope
from qa_audio.results.export import Period, final_of, parse_period
from qa_audio.results.records import StoredResult
from qa_audio.results.store import Store

GRAINS = ("week", "month")
GROUPINGS = ("team", "agent")
MAX_PERIODS = 26


def period_label(day: date, grain: str) -> str:
    """The ISO week (``2026-W45``) or month (``2026-11``) holding ``day``, as :func:`parse_period` reads it."""
    if grain == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{day.year}-{day.month:02d}"


@dataclass(frozen=True)
class Cell:
    """One group's figures in one period (or over the whole selection)."""

    calls: int
    scored: int                       # calls with a score (not unscorable)
    mean_score: float | None
    passed: int
    pass_rate: float | None           # passed / scored

    @classmethod
    def of(cls, calls: list[_Call]) -> Cell:
        scores = [c.score for c in calls if c.score is not None]
        scorable = [c for c in calls if c.verdict != "unscorable"]
        passed = sum(c.verdict == "pass" for c in scorable)
        return cls(len(calls), len(scorable), round(statistics.fmean(scores), 2) if scores else None, passed,
                   round(passed / len(scorable), 4) if scorable else None)


@dataclass(frozen=True)
class Series:
    """One team's or agent's row: a cell per period, and the whole selection."""

    key: str
    name: str
    cells: tuple[Cell | None, ...]    # None: no call in that period
    total: Cell


@dataclass(frozen=True)
class RuleFigures:
    rule: str
    title: str
    title_en: str
    judged: int                       # findings that applied (not n/a) on scored rules
    failed: int                       # final failures (after review and appeals)
    reviewed: int                     # findings a supervisor decided (or an appeal ruled on)
    overturned: int

    @property
    def fail_rate(self) -> float | None:
        return round(self.failed / self.judged, 4) if self.judged else None

    @property
    def overturn_rate(self) -> float | None:
        return round(self.overturned / self.reviewed, 4) if self.reviewed else None


@dataclass(frozen=True)
class Dashboard:
    grain: str
    by: str
    periods: tuple[Period, ...]
    series: tuple[Series, ...]
    overall: tuple[Cell | None, ...]  # every group together, per period
    total: Cell
    rules: tuple[RuleFigures, ...]    # most failed first
    appeals: dict[str, int] = field(default_factory=dict)   # filed, open, upheld, overturned
    team: str | None = None
    agent: str | None = None

    @property
    def most_failed(self) -> tuple[RuleFigures, ...]:
        return tuple(r for r in self.rules if r.failed)[:10]

    @property
    def rule_health(self) -> tuple[RuleFigures, ...]:
        """The rules supervisors decided on, the most often overturned first."""
        decided = [r for r in self.rules if r.reviewed]
        return tuple(sorted(decided, key=lambda r: (-(r.overturn_rate or 0.0), -r.reviewed, r.rule)))


@dataclass(frozen=True)
class _Call:
    period: str                       # its week's or month's label
    team: str
    agent: str
    agent_name: str
    score: float | None
    verdict: str


def build_dashboard(store: Store, *, grain: str = "week", by: str = "team", scope: Scope | None = None,
                    team: str | None = None, agent: str | None = None,
                    max_periods: int = MAX_PERIODS) -> Dashboard:
    """The dashboard over the calls in ``scope`` (narrowed to one ``team`` or ``agent`` if given), in the
    latest ``max_periods`` weeks or months that hold calls."""
    if grain not in GRAINS:
        raise QAError(f"grain must be one of {', '.join(GRAINS)}, got {grain!r}")
    if by not in GROUPINGS:
        raise QAError(f"by must be one of {', '.join(GROUPINGS)}, got {by!r}")
    rows = [r for r in store.current_rows(scope) if r["call_time"]
            and (team is None or (r["team"] or "") == team) and (agent is None or (r["agent_id"] or "") == agent)]
    calls = [_call(r, grain) for r in rows]
    periods = tuple(sorted((parse_period(label) for label in {c.period for c in calls}),
                           key=lambda p: p.start)[-max_periods:])
    index = {p.label: i for i, p in enumerate(periods)}
    kept = [(r, c) for r, c in zip(rows, calls) if c.period in index]      # the latest periods only
    rows, calls = [r for r, _ in kept], [c for _, c in kept]

    groups: dict[str, list[tuple[int, _Call]]] = defaultdict(list)
    names: dict[str, set[str]] = defaultdict(set)
    for c in calls:
        key = c.team if by == "team" else c.agent
        groups[key].append((index[c.period], c))
        if by == "agent" and c.agent_name:
            names[key].add(c.agent_name)
    series = tuple(Series(key, " / ".join(sorted(names[key])), _cells(groups[key], len(periods)),
                          Cell.of([c for _, c in groups[key]])) for key in sorted(groups))
    overall = _cells([(index[c.period], c) for c in calls], len(periods))
    return Dashboard(grain, by, periods, series, overall, Cell.of(calls), _rule_figures(store, rows),
                     _appeals(store, rows), team, agent)


def _call(row: dict, grain: str) -> _Call:
    score, verdict, _ = final_of(row)                       # as the HR export reads it
    return _Call(period_label(datetime.fromisoformat(row["call_time"]).date(), grain), row["team"] or "(unknown)",
                 row["agent_id"] or "(unknown)", row["agent_name"] or "", None if score is None else float(score),
                 verdict)


def _cells(items: list[tuple[int, _Call]], n: int) -> tuple[Cell | None, ...]:
    by_period: dict[int, list[_Call]] = defaultdict(list)
    for i, c in items:
        by_period[i].append(c)
    return tuple(Cell.of(by_period[i]) if by_period.get(i) else None for i in range(n))


def _rule_figures(store: Store, rows: list[dict]) -> tuple[RuleFigures, ...]:
    reviews = store.all_reviews()
    judged: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    reviewed: Counter[str] = Counter()
    overturned: Counter[str] = Counter()
    titles: dict[str, tuple[str, str]] = {}
    order: list[str] = []
    for r in rows:
        result = StoredResult.from_dict(json.loads(r["result_json"]))
        if result.unscorable:
            continue
        decided = reviews.get(r["result_id"], {})
        for f in result.decided(decided):
            if f.rule not in titles:
                titles[f.rule] = (f.title, f.title_en)
                order.append(f.rule)
            if not f.enabled or f.original_status == "n/a":
                continue
            judged[f.rule] += 1
            failed[f.rule] += f.status == "fail"
            if f.review is not None:
                reviewed[f.rule] += 1
                overturned[f.rule] += f.review.overturned
    out = [RuleFigures(rule, *titles[rule], judged[rule], failed[rule], reviewed[rule], overturned[rule])
           for rule in order]
    return tuple(sorted(out, key=lambda r: (-r.failed, order.index(r.rule))))


def _appeals(store: Store, rows: list[dict]) -> dict[str, int]:
    counts = store.appeal_counts()
    out: Counter[str] = Counter()
    for r in rows:
        for status, n in counts.get(r["result_id"], {}).items():
            out[status] += n
    return {"filed": sum(out.values()), "open": out["open"], "upheld": out["upheld"],
            "overturned": out["overturned"]}
