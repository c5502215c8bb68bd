"""Appeals (申诉) and review assignment on the review page: an agent appeals a failed finding on their own
call; a supervisor other than the one who made the disputed decision rules on it; a supervisor gives a
call's review to another."""
from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from qa_audio.errors import QAError
from qa_audio.i18n import Message
from qa_audio.results.appeals import appeal_deadline, appealable, decide_appeal, file_appeal
from qa_audio.results.records import APPEAL_STATUSES, Appeal
from qa_audio.results.store import StoredCall
from qa_audio.web.state import MAX_ID, call_or_404, reviewers_only, state, store, user
from qa_audio.web.views import cause

bp = Blueprint("appeals", __name__)


@dataclass(frozen=True)
class FindingAppeal:
    """What the call page shows and offers about appealing one finding."""

    appeal: Appeal | None
    can_appeal: bool            # this user (the call's agent) may appeal it now
    why_not: Message | None     # why the agent cannot (shown to them)
    can_rule: bool              # this user (a supervisor) may rule on the open appeal


def appeals_view(call: StoredCall) -> dict[str, FindingAppeal]:
    """rule → the appeal state of that finding, for the call page."""
    if call.result is None or call.result_id is None:
        return {}
    me = user()
    filed = {a.rule: a for a in store().appeals(result_id=call.result_id)}
    days = state().config.review.appeal_days
    out = {}
    for f in call.result.findings:
        appeal = filed.get(f.rule)
        why_not = None
        if appeal is None and me.is_agent:
            why_not = appealable(call, f.rule, appeal_days=days)
        out[f.rule] = FindingAppeal(appeal, me.is_agent and appeal is None and why_not is None, why_not,
                                    bool(appeal and appeal.open and me.reviews and appeal.disputed_by != me.name))
    return out


def assignees(call: StoredCall) -> list[str]:
    """The supervisors and admins who may review this call (for the assign form; empty for an agent)."""
    if not user().reviews:
        return []
    return [u.name for u in store().users() if u.active and u.reviews and u.scope.allows(call.metadata)]


@bp.post("/calls/<int:pk>/appeal")
def appeal(pk: int):
    if not user().is_agent:
        abort(403, _("appeals are filed by the call's agent"))
    call = call_or_404(pk)
    rule = request.form.get("rule", "")
    try:
        number = file_appeal(store(), call, rule, agent=user(), reason=request.form.get("reason", ""),
                             appeal_days=state().config.review.appeal_days, privacy=state().config.privacy)
        flash(_("appeal #%(number)s filed: a supervisor will rule on it", number=number), "ok")
    except QAError as exc:
        flash(cause(exc))
    return redirect(url_for("review.call_page", pk=pk) + f"#finding-{rule}")


@bp.post("/appeals/<int:aid>/decide")
def decide(aid: int):
    reviewers_only()
    if not 0 < aid <= MAX_ID:
        abort(404)
    found = store().appeal(aid)
    if found is None:
        abort(404)
    call_or_404(found.call_pk)                      # a supervisor of another team: 404
    try:
        decide_appeal(store(), aid, ruler=user(), ruling=request.form.get("ruling", ""),
                      reason=request.form.get("reason", ""), privacy=state().config.privacy)
    except QAError as exc:
        flash(cause(exc))
    return redirect(url_for("review.call_page", pk=found.call_pk) + f"#finding-{found.rule}")


@bp.post("/calls/<int:pk>/assign")
def assign(pk: int):
    reviewers_only()
    call = call_or_404(pk)
    to = request.form.get("to", "").strip() or None
    if to is not None and to not in assignees(call):
        flash(_("%(name)s cannot review this call (not an active supervisor of its team)", name=to))
    else:
        store().assign(call_pk=pk, to=to, by=user().name)
    return redirect(url_for("review.call_page", pk=pk))


@bp.get("/appeals")
def appeals():
    status = request.args.get("status", "")
    if status not in ("", *APPEAL_STATUSES):
        status = ""
    shown = store().appeals(scope=user().scope, status=status or None)
    if user().is_agent:
        shown = [a for a in shown if a.agent == user().name or a.agent_id == user().agent_id]
    days = state().config.review.appeal_days
    return render_template("appeals.html", appeals=shown[::-1], status=status, appeal_days=days,
                           deadline=appeal_deadline)
