"""Supervisor review: confirm or overturn findings; the call's final score follows.

A *confirmed* finding stands as found (and a confirmed low-confidence hit stops
being doubtful). An *overturned* finding flips: a failure becomes a pass (its
deduction and any red line are dropped); a pass becomes a failure costing the
rule's weight. The final score is recomputed with the pass mark the result was
scored with, and every decision is kept in the audit trail (who, when, before, after).
"""
from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from qa_audio.config import PrivacySettings
from qa_audio.errors import QAError
from qa_audio.i18n import N_
from qa_audio.results.access import Scope, User
from qa_audio.results.privacy import Redactor
from qa_audio.results.records import DECISIONS, Appeal, Review, StoredResult
from qa_audio.results.store import Store, StoredCall


class ReviewError(QAError):
    """A review that cannot be applied (unknown rule, n/a finding, empty reason…)."""


def final_score(result: StoredResult, reviews: Mapping[str, Review]) -> tuple[float | None, str]:
    """(score, verdict) after review, by the one scoring function, with the result's own pass mark and
    red-line score.

    An unscorable call (nobody speaks) stays unscorable: no review of findings makes it pass.
    """
    scored = result.final(reviews)
    if scored is None:
        return None, "unscorable"
    return scored.score, scored.verdict


def review_finding(store: Store, call: StoredCall, rule: str, *, decision: str, reason: str,
                   reviewer: str, privacy: PrivacySettings | None = None) -> tuple[float | None, str]:
    """Record a supervisor's decision on one finding; returns the call's new (final score, verdict).

    Personal numbers in the reason (a supervisor quoting the customer) are masked before it is stored.
    """
    if decision not in DECISIONS:
        raise ReviewError.of(N_("decision must be confirm or overturn, got %(decision)r"), decision=decision)
    if not reason or not reason.strip():
        raise ReviewError.of(N_("a review needs a reason"))
    if call.result is None or call.result_id is None:
        raise ReviewError.of(N_("%(call)s: no result to review"), call=call.call_id)
    finding = call.result.finding(rule)
    if finding is None:
        raise ReviewError.of(N_("%(call)s: no finding for rule %(rule)r"), call=call.call_id, rule=rule)
    if finding.status == "n/a":
        raise ReviewError.of(N_("%(call)s: %(rule)s did not apply to this call (n/a); nothing to review"),
                             call=call.call_id, rule=rule)
    for appeal in store.appeals(result_id=call.result_id):
        if appeal.rule == rule and appeal.open:
            raise ReviewError.of(N_("%(call)s: %(rule)s is under appeal (#%(appeal)s); rule on the appeal instead"),
                                 call=call.call_id, rule=rule, appeal=appeal.id)
        if appeal.rule == rule:
            raise ReviewError.of(N_("%(call)s: %(rule)s: the appeal ruling (%(status)s by %(ruled_by)s) is final"),
                                 call=call.call_id, rule=rule, status=appeal.status, ruled_by=appeal.ruled_by)
    reason = Redactor(privacy).text(reason.strip()) or ""
    before_score, before_verdict = final_score(call.result, call.reviews)
    reviews = dict(call.reviews, **{rule: Review(decision, reason, reviewer)})
    score, verdict = final_score(call.result, reviews)
    earlier = call.reviews.get(rule)
    before = {"decision": earlier.decision if earlier else None, "finding_status": finding.status,
              "final_score": call.final_score if call.final_score is not None else before_score,
              "final_verdict": call.final_verdict or before_verdict}
    after = {"decision": decision, "final_score": score, "final_verdict": verdict}
    store.save_review(call_pk=call.pk, result_id=call.result_id, rule=rule, decision=decision,
                      reason=reason, reviewer=reviewer, final_score=score, final_verdict=verdict,
                      before=before, after=after)
    return score, verdict


def review_labels(store: Store, *, scope: Scope | None = None, leave_out: Collection[int] = ()) -> dict:
    """Reviewed findings (of calls in ``scope``, but the calls numbered in ``leave_out``) as human labels
    for ``qa-audio backtest``: call → rule → expected status."""
    labels: dict = {}
    for row in store.current_rows(scope):
        if row["call_pk"] in leave_out:
            continue
        call = store.find_call(row["call_id"])
        if call.result is None:
            continue
        for f in call.result.decided(call.reviews):
            if f.review is not None:
                labels.setdefault(call.call_id, {})[f.rule] = f.status
    return {"format": "qa-audio-labels/1", "calls": labels}


# --------------------------------------------------------------------------- spot-check queue
QUEUE_KINDS = (("assigned", N_("Assigned to you")), ("fail", N_("Failing calls")),
               ("review", N_("Low-confidence hits (verdict review)")),
               ("unscorable", N_("Unscorable: no speech, or no agent speech (check the recording)")),
               ("sample", N_("Calibration sample of passing calls")))


def in_sample(audio_sha256: str, *, percent: float, seed: str) -> bool:
    """Whether a passing call falls in the calibration sample: a stable hash draw, ``percent`` of calls."""
    draw = int.from_bytes(hashlib.sha256(f"{seed}:{audio_sha256}".encode()).digest()[:8], "big") / 2 ** 64
    return draw * 100.0 < percent


@dataclass(frozen=True)
class SpotCheckQueue:
    """The calls to review next, by kind, unreviewed first; ``progress`` is kind → (reviewed, total)."""

    items: dict                 # kind → list of call rows (store.queue_rows), unreviewed first
    progress: dict              # kind → (reviewed, total)
    sample_percent: float
    appeals: tuple[Appeal, ...] = ()     # open appeals on calls in the user's scope, oldest first

    @property
    def next_call_pk(self) -> int | None:
        for kind, _ in QUEUE_KINDS:
            for row in self.items[kind]:
                if not row["reviewed_at"]:
                    return row["call_pk"]
        return None


def spot_check_queue(store: Store, *, sample_percent: float, seed: str, user: User | None = None) -> SpotCheckQueue:
    """A supervisor's queue: the calls assigned to them, then failing calls, calls the checker was unsure
    of, and a random sample of passing calls, of their teams; and the open appeals.

    Calls are grouped by the checker's own verdict, so a call stays in its group
    after a supervisor overturns findings (and counts as reviewed). A call assigned to
    another supervisor is in that supervisor's queue only.
    """
    items: dict = {kind: [] for kind, _ in QUEUE_KINDS}
    scope = user.scope if user is not None else None
    for row in store.queue_rows(scope):
        kind = row["verdict"]
        if row.get("assigned_to") and user is not None:
            if row["assigned_to"] != user.name:
                continue
            kind = "assigned"
        if kind == "pass":
            if not in_sample(row["audio_sha256"], percent=sample_percent, seed=seed):
                continue
            kind = "sample"
        if kind in items:
            items[kind].append(row)
    progress = {}
    for kind, rows in items.items():
        rows.sort(key=lambda r: (bool(r["reviewed_at"]), r["call_time"] or "", r["call_pk"]))
        progress[kind] = (sum(1 for r in rows if r["reviewed_at"]), len(rows))
    return SpotCheckQueue(items, progress, sample_percent, tuple(store.appeals(scope=scope, status="open")))


def mark_checked(store: Store, call: StoredCall, *, reviewer: str) -> None:
    """The supervisor listened and leaves every finding as the checker found it."""
    if call.result is None or call.result_id is None:
        raise ReviewError.of(N_("%(call)s: no result to review"), call=call.call_id)
    score, verdict = final_score(call.result, call.reviews)
    store.mark_checked(call_pk=call.pk, result_id=call.result_id, reviewer=reviewer, score=score, verdict=verdict)


# --------------------------------------------------------------------------- passwords (stdlib scrypt)
def hash_password(password: str, *, salt: bytes | None = None) -> str:
    if len(password) < 8:
        raise QAError("a password needs at least 8 characters")
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2 ** 14, r=8, p=1)
    return f"scrypt$16384$8$1${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), digest)
