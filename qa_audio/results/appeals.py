"""Agents' appeals (申诉): an agent disputes a finding on their own call within ``review.appeal_days`` of
its scoring; a supervisor other than the one who made the disputed decision rules on it (uphold or
overturn, with a reason); the final score and verdict follow the ruling, which is final.

Like Alibaba Cloud 智能对话分析's SubmitComplaint / HandleComplaint and Contact Lens' review requests.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from qa_audio.config import PrivacySettings
from qa_audio.i18n import N_, Message
from qa_audio.results.access import AccessError, User, require_reviewer
from qa_audio.results.privacy import Redactor
from qa_audio.results.records import Appeal, Review
from qa_audio.results.review import ReviewError, final_score
from qa_audio.results.store import Store, StoredCall

RULINGS = ("uphold", "overturn")
MAX_REASON_CHARS = 500


@dataclass(frozen=True)
class Ruling:
    appeal: Appeal
    score: float | None
    verdict: str


def appeal_deadline(call: StoredCall, *, appeal_days: float) -> datetime | None:
    """Until when the call's findings may be appealed (None: no result, or appeals switched off)."""
    if not call.scored_at or appeal_days <= 0:
        return None
    return datetime.fromisoformat(call.scored_at) + timedelta(days=appeal_days)


def appealable(call: StoredCall, rule: str, *, appeal_days: float, now: datetime | None = None) -> Message | None:
    """Why this finding cannot be appealed now, or None when it can."""
    if call.result is None or call.result_id is None:
        return Message(N_("the call has no result"))
    finding = call.result.finding(rule)
    if finding is None:
        return Message(N_("no finding for rule %(rule)s"), {"rule": rule})
    decided = finding.decided(call.reviews.get(rule))
    if decided.status != "fail":
        return Message(N_("%(rule)s is not failed; only a failed finding can be appealed"), {"rule": rule})
    if not decided.enabled:
        return Message(N_("%(rule)s is a shadow rule: it does not count toward the score"), {"rule": rule})
    deadline = appeal_deadline(call, appeal_days=appeal_days)
    if deadline is None:
        return Message(N_("appeals are switched off (review.appeal_days is 0)"))
    if (now or datetime.now(timezone.utc)) > deadline:
        return Message(N_("the appeal window closed on %(deadline)s"),
                       {"deadline": deadline.astimezone().isoformat(timespec="minutes")})
    return None


def file_appeal(store: Store, call: StoredCall, rule: str, *, agent: User, reason: str, appeal_days: float,
                privacy: PrivacySettings | None = None, now: datetime | None = None) -> int:
    """An agent appeals a failed finding on their own call; returns the appeal's number."""
    if not agent.is_agent:
        raise AccessError.of(N_("%(name)s is a %(role)s: appeals are filed by the call's agent"),
                             name=agent.name, role=agent.role)
    if not agent.scope.allows(call.metadata):
        raise AccessError.of(N_("%(call)s: not %(name)s's call"), call=call.call_id, name=agent.name)
    reason = _reason(reason, privacy)
    why_not = appealable(call, rule, appeal_days=appeal_days, now=now)
    if why_not:
        raise ReviewError.of(N_("%(call)s: cannot appeal %(rule)s: %(why_not)s"),
                             call=call.call_id, rule=rule, why_not=why_not)
    assert call.result is not None and call.result_id is not None
    if any(a.rule == rule for a in store.appeals(result_id=call.result_id)):
        raise ReviewError.of(N_("%(call)s: %(rule)s was appealed already (one appeal per finding)"),
                             call=call.call_id, rule=rule)
    earlier = call.reviews.get(rule)
    score, _ = final_score(call.result, call.reviews)
    return store.file_appeal(call_pk=call.pk, result_id=call.result_id, rule=rule, agent=agent.name, reason=reason,
                             disputed_by=earlier.reviewer if earlier else None, score=score)


def decide_appeal(store: Store, appeal_id: int, *, ruler: User, ruling: str, reason: str,
                  privacy: PrivacySettings | None = None) -> Ruling:
    """A supervisor rules on an open appeal: ``uphold`` (the finding stands) or ``overturn`` (it is reversed
    in the agent's favour). The ruler may not be the one who made the disputed decision."""
    require_reviewer(ruler)
    if ruling not in RULINGS:
        raise ReviewError.of(N_("a ruling is uphold or overturn, got %(ruling)r"), ruling=ruling)
    appeal = store.appeal(appeal_id)
    call = store.call_by_pk(appeal.call_pk) if appeal else None
    if appeal is None or call is None or not ruler.scope.allows(call.metadata):
        raise ReviewError.of(N_("no appeal %(appeal)s"), appeal=appeal_id)
    if not appeal.open:
        raise ReviewError.of(N_("appeal %(appeal)s was ruled on already (%(status)s by %(ruled_by)s)"),
                             appeal=appeal_id, status=appeal.status, ruled_by=appeal.ruled_by)
    if appeal.disputed_by and appeal.disputed_by == ruler.name:
        raise AccessError.of(N_("appeal %(appeal)s: %(name)s made the decision the agent disputes; another supervisor "
                                "rules on it"),
                             appeal=appeal_id, name=ruler.name)
    if call.result is None or call.result_id != appeal.result_id:
        raise ReviewError.of(N_("appeal %(appeal)s: %(call)s was re-scored since; the appealed result is not current"),
                             appeal=appeal_id, call=call.call_id)
    reason = _reason(reason, privacy)
    finding = call.result.finding(appeal.rule)
    assert finding is not None
    wanted = "fail" if ruling == "uphold" else "pass"
    decision = "confirm" if finding.status == wanted else "overturn"     # relative to the checker's own status
    before_score, before_verdict = final_score(call.result, call.reviews)
    reviews = dict(call.reviews, **{appeal.rule: Review(decision, reason, ruler.name)})
    score, verdict = final_score(call.result, reviews)
    status = "upheld" if ruling == "uphold" else "overturned"
    store.rule_appeal(appeal=appeal, status=status, ruled_by=ruler.name, reason=reason, decision=decision,
                      final_score=score, final_verdict=verdict,
                      before={"final_score": before_score, "final_verdict": before_verdict},
                      after={"final_score": score, "final_verdict": verdict, "ruling": ruling})
    ruled = store.appeal(appeal_id)
    assert ruled is not None
    return Ruling(ruled, score, verdict)


def _reason(reason: str, privacy: PrivacySettings | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise ReviewError.of(N_("an appeal and a ruling need a reason"))
    if len(text) > MAX_REASON_CHARS:
        raise ReviewError.of(N_("a reason has at most %(max)s characters, got %(length)s"),
                             max=MAX_REASON_CHARS, length=len(text))
    return Redactor(privacy).text(text) or ""
