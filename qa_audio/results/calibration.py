"""Calibration between supervisors: the same calls judged blind by several reviewers, and how alike they
judge, with each other and with the checker.

A session holds calls (their results at the time) and the supervisors chosen to judge them. Each one
hands in, per call, a pass or fail for every rule that applied to it, without seeing anyone else's
decisions or the call's final score; the figures are shown to a member once they have handed in every
call. Per rule: the share of calls all reviewers agree on, the share of their decisions that agree with
the checker, and the chance-corrected agreement: Cohen's kappa for two reviewers, Fleiss' kappa for more
(Cohen 1960; Fleiss 1971). Cohen's kappa for every pair, and the calls they disagree on. The majority's
decisions are labels for ``qa-audio backtest``.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

from qa_audio.i18n import N_
from qa_audio.results.access import AccessError, User, require_reviewer
from qa_audio.results.records import CalibrationSession, StoredResult
from qa_audio.results.review import ReviewError
from qa_audio.results.store import Store

LABELS = ("pass", "fail")
MAX_CALLS = 200


# --------------------------------------------------------------------------- agreement statistics
def cohen_kappa(pairs: Sequence[tuple[str, str]]) -> float | None:
    """Cohen's kappa of two raters' labels on the same items (None: no items, or chance agreement is 1)."""
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(a == b for a, b in pairs) / n
    first, second = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    expected = sum(first[k] * second[k] for k in first) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def fleiss_kappa(counts: Sequence[Sequence[int]]) -> float | None:
    """Fleiss' kappa from a table of items × categories, each row how many raters chose each category
    (every row the same number of raters, at least two). None: no items, or chance agreement is 1."""
    rows = [list(r) for r in counts if sum(r)]
    if not rows:
        return None
    raters = sum(rows[0])
    if raters < 2 or any(sum(r) != raters for r in rows):
        raise ValueError("Fleiss' kappa needs the same number (≥ 2) of raters on every item")
    items = len(rows)
    p_item = [(sum(c * c for c in r) - raters) / (raters * (raters - 1)) for r in rows]
    p_cat = [sum(r[j] for r in rows) / (items * raters) for j in range(len(rows[0]))]
    observed, expected = sum(p_item) / items, sum(p * p for p in p_cat)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


# --------------------------------------------------------------------------- the report
@dataclass(frozen=True)
class RuleAgreement:
    rule: str
    items: int                      # calls judged by every reviewer who handed them in (two or more)
    reviewers_agree: float | None   # share of those calls on which all reviewers gave the same decision
    with_checker: float | None      # share of the reviewers' decisions equal to the checker's
    kappa: float | None             # Cohen's (two reviewers) or Fleiss' (more), on calls all reviewers judged
    kappa_kind: str


@dataclass(frozen=True)
class PairAgreement:
    first: str
    second: str
    items: int
    agreement: float | None
    kappa: float | None


@dataclass(frozen=True)
class Disagreement:
    call_pk: int
    call_id: str
    rule: str
    checker: str
    labels: Mapping[str, str]        # reviewer → pass / fail


@dataclass(frozen=True)
class CalibrationReport:
    session: CalibrationSession
    rules: tuple[RuleAgreement, ...]
    pairs: tuple[PairAgreement, ...]
    overall: RuleAgreement           # every rule together
    disagreements: tuple[Disagreement, ...]
    complete: bool                   # every member handed in every call

    def to_dict(self) -> dict:
        def agreement(a: RuleAgreement) -> dict:
            return {"rule": a.rule, "items": a.items, "reviewers_agree": a.reviewers_agree,
                    "with_checker": a.with_checker, "kappa": a.kappa, "kappa_kind": a.kappa_kind}

        s = self.session
        return {"session": {"id": s.id, "name": s.name, "created_by": s.created_by, "created_at": s.created_at,
                            "members": list(s.members), "calls": [c.call_id for c in s.calls],
                            "handed_in": s.progress()},
                "complete": self.complete, "overall": agreement(self.overall),
                "rules": [agreement(r) for r in self.rules],
                "pairs": [{"reviewers": [p.first, p.second], "items": p.items, "agreement": p.agreement,
                           "cohen_kappa": p.kappa} for p in self.pairs],
                "disagreements": [{"call_id": d.call_id, "rule": d.rule, "checker": d.checker,
                                   "labels": dict(d.labels)} for d in self.disagreements]}


def checker_labels(store: Store, session: CalibrationSession) -> dict[tuple[int, str], str]:
    """(call_pk, rule) → the checker's status, for every rule that applied to the session's calls."""
    out: dict[tuple[int, str], str] = {}
    for call in session.calls:
        result = store.result_by_id(call.result_id)
        for f in calibrated_findings(result):
            out[(call.call_pk, f.rule)] = f.status
    return out


def calibrated_findings(result: StoredResult | None):
    """The findings a calibration reviewer judges: every rule that applied to the call."""
    return [f for f in (result.findings if result else ()) if f.status in LABELS]


def build_report(store: Store, session: CalibrationSession) -> CalibrationReport:
    checker = checker_labels(store, session)
    call_ids = {c.call_pk: c.call_id for c in session.calls}
    by_item: dict[tuple[int, str], dict[str, str]] = {}
    for pk, reviewer, rule, label in session.labels:
        if (pk, rule) in checker:
            by_item.setdefault((pk, rule), {})[reviewer] = label
    rules = sorted({rule for _, rule in checker})
    per_rule = tuple(_agreement(rule, {k: v for k, v in by_item.items() if k[1] == rule}, checker, session.members)
                     for rule in rules)
    overall = _agreement("all", by_item, checker, session.members)
    pairs = []
    for a, b in combinations(session.members, 2):
        both = [(v[a], v[b]) for v in by_item.values() if a in v and b in v]
        pairs.append(PairAgreement(a, b, len(both), sum(x == y for x, y in both) / len(both) if both else None,
                                   cohen_kappa(both)))
    disagreements = tuple(Disagreement(pk, call_ids[pk], rule, checker[(pk, rule)], dict(v))
                          for (pk, rule), v in sorted(by_item.items(), key=lambda kv: (call_ids[kv[0][0]], kv[0][1]))
                          if len(set(v.values())) > 1)
    complete = all(session.has_submitted(m) for m in session.members)
    return CalibrationReport(session, per_rule, tuple(pairs), overall, disagreements, complete)


def _agreement(rule: str, items: Mapping[tuple[int, str], Mapping[str, str]], checker: Mapping[tuple[int, str], str],
               members: Sequence[str]) -> RuleAgreement:
    judged = {k: v for k, v in items.items() if len(v) >= 2}
    agree = sum(len(set(v.values())) == 1 for v in judged.values())
    decisions = [(label, checker[k]) for k, v in items.items() for label in v.values()]
    with_checker = sum(a == b for a, b in decisions) / len(decisions) if decisions else None
    full = [v for v in items.values() if all(m in v for m in members)]
    if len(members) == 2:
        kappa, kind = cohen_kappa([(v[members[0]], v[members[1]]) for v in full]), "Cohen"
    else:
        kappa, kind = fleiss_kappa([[sum(x == c for x in v.values()) for c in LABELS] for v in full]), "Fleiss"
    return RuleAgreement(rule, len(judged), agree / len(judged) if judged else None, with_checker, kappa, kind)


def calibration_labels(store: Store, session: CalibrationSession) -> dict:
    """The reviewers' majority decision per call and rule (ties left out), as a qa-audio-labels/1 file."""
    checker = checker_labels(store, session)
    call_ids = {c.call_pk: c.call_id for c in session.calls}
    votes: dict[tuple[int, str], Counter] = {}
    for pk, _, rule, label in session.labels:
        if (pk, rule) in checker:
            votes.setdefault((pk, rule), Counter())[label] += 1
    calls: dict = {}
    for (pk, rule), count in sorted(votes.items(), key=lambda kv: (call_ids[kv[0][0]], kv[0][1])):
        (top, n), *rest = count.most_common()
        if not rest or rest[0][1] < n:
            calls.setdefault(call_ids[pk], {})[rule] = top
    return {"format": "qa-audio-labels/1", "calls": calls,
            "source": f"calibration session {session.id} ({session.name}): the reviewers' majority, ties left out"}


# --------------------------------------------------------------------------- creating and handing in
def create_session(store: Store, *, name: str, creator: User, members: Sequence[str], call_refs: Sequence[str]) -> int:
    """A calibration session over the calls named (call ids, hash prefixes or numbers), judged blind by
    ``members`` (two or more supervisors or admins, each able to see every call)."""
    require_reviewer(creator)
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise ReviewError.of(N_("a calibration session needs a name (at most 200 characters)"))
    chosen = list(dict.fromkeys(m.strip() for m in members if m.strip()))
    if len(chosen) < 2:
        raise ReviewError.of(N_("a calibration session needs at least two reviewers"))
    refs = list(dict.fromkeys(r.strip() for r in call_refs if r.strip()))
    if not refs or len(refs) > MAX_CALLS:
        raise ReviewError.of(N_("a calibration session needs 1-%(max)s calls, got %(count)s"),
                             max=MAX_CALLS, count=len(refs))
    accounts = []
    for member in chosen:
        account = store.account(member)
        if account is None or not account.active:
            raise ReviewError.of(N_("no active user %(member)r"), member=member)
        if not account.reviews:
            raise ReviewError.of(N_("%(member)s is an %(role)s: only supervisors and admins calibrate"),
                                 member=member, role=account.role)
        accounts.append(account)
    calls = []
    for ref in refs:
        call = store.find_call(ref)
        if call.result_id is None or not creator.scope.allows(call.metadata):
            raise ReviewError.of(N_("no call %(ref)r"), ref=ref)
        for account in accounts:
            if not account.scope.allows(call.metadata):
                raise ReviewError.of(N_("%(name)s does not review team %(team)s of call %(call)s"),
                                     name=account.name, team=call.metadata.get('team') or '(none)', call=call.call_id)
        calls.append((call.pk, call.result_id))
    return store.create_calibration(name=name, created_by=creator.name, members=chosen, calls=calls)


def submit(store: Store, session: CalibrationSession, call_pk: int, *, reviewer: User,
           labels: Mapping[str, str]) -> None:
    """A member hands in their decision on every rule of one call (once; the figures then open to them)."""
    if reviewer.name not in session.members:
        raise AccessError.of(N_("%(name)s is not a reviewer of calibration session %(session)s"),
                             name=reviewer.name, session=session.id)
    call = next((c for c in session.calls if c.call_pk == call_pk), None)
    if call is None:
        raise ReviewError.of(N_("call %(call_pk)s is not in calibration session %(session)s"),
                             call_pk=call_pk, session=session.id)
    if session.has_submitted(reviewer.name, call_pk):
        raise ReviewError.of(N_("%(call)s: handed in already"), call=call.call_id)
    wanted = [f.rule for f in calibrated_findings(store.result_by_id(call.result_id))]
    missing = [r for r in wanted if labels.get(r) not in LABELS]
    if missing:
        raise ReviewError.of(N_("%(call)s: decide every rule (pass or fail); missing: %(missing)s"),
                             call=call.call_id, missing=', '.join(missing))
    store.submit_calibration(session_id=session.id, call_pk=call_pk, reviewer=reviewer.name,
                             labels={r: labels[r] for r in wanted})


def may_see_figures(session: CalibrationSession, user: User) -> bool:
    """Blind until handed in: a member sees the figures once they have handed in every call; a
    supervisor who is not a member (who set the session up) sees them as they come."""
    return user.reviews and (user.name not in session.members or session.has_submitted(user.name))


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def _kappa(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def render_report(report: CalibrationReport) -> str:
    """The report in the terminal (``qa-audio calibration report``)."""
    s = report.session
    lines = [f"calibration session #{s.id} '{s.name}' by {s.created_by} {s.created_at[:16]}: {len(s.calls)} call(s), "
             f"reviewers {', '.join(s.members)}",
             "handed in: " + ", ".join(f"{m} {n}/{len(s.calls)}" for m, n in s.progress().items())
             + ("" if report.complete else "  (not complete: the figures cover what is handed in)"),
             "", f"{'rule':<8} {'calls':>5} {'reviewers agree':>16} {'with checker':>13} {'kappa':>7}"]
    for a in (*report.rules, report.overall):
        lines.append(f"{a.rule:<8} {a.items:>5} {_pct(a.reviewers_agree):>16} {_pct(a.with_checker):>13} "
                     f"{_kappa(a.kappa):>7} {a.kappa_kind if a.kappa is not None else ''}")
    lines += ["", "Cohen's kappa per pair:"]
    for p in report.pairs:
        lines.append(f"  {p.first} · {p.second}: {p.items} decisions, agree {_pct(p.agreement)}, "
                     f"kappa {_kappa(p.kappa)}")
    lines += ["", f"disagreements ({len(report.disagreements)}):"]
    for d in report.disagreements:
        said = ", ".join(f"{who} {label}" for who, label in sorted(d.labels.items()))
        lines.append(f"  {d.call_id} {d.rule}: {said} (checker {d.checker})")
    lines.append("kappa: – where it is undefined (no decisions yet, or everyone gave the same answer on every call)")
    return "\n".join(lines)
