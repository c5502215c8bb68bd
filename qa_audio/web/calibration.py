"""Calibration sessions on the review page: a supervisor puts calls into a session for chosen reviewers,
who judge each call blind (no one else's decisions, no final score) and hand it in; the session page
shows the agreement figures to a member once they have handed in every call."""
from __future__ import annotations

import json
from dataclasses import replace

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from qa_audio.errors import QAError
from qa_audio.results.calibration import (
    build_report,
    calibrated_findings,
    calibration_labels,
    create_session,
    may_see_figures,
    submit,
)
from qa_audio.results.records import CalibrationSession
from qa_audio.results.show import fmt_clock
from qa_audio.web.state import MAX_ID, call_or_404, reviewers_only, state, store, user
from qa_audio.web.views import cause, timeline

bp = Blueprint("calibration", __name__, url_prefix="/calibration")


def blind_session(call_pk: int) -> int | None:
    """A session in which this user is to judge this call and has not handed it in (its scores stay hidden)."""
    me = user()
    return store().pending_calibration(me.name).get(call_pk) if me.reviews else None


def _visible(s: CalibrationSession) -> bool:
    me = user()
    if me.is_admin or me.name in s.members or me.name == s.created_by:
        return True
    for c in s.calls:
        source = store().audio_source(c.call_pk)          # the call's agent and team, without its analysis
        if source is None or not me.scope.allows(source):
            return False
    return True


def _session_or_404(sid: int) -> CalibrationSession:
    reviewers_only()
    if not 0 < sid <= MAX_ID:
        abort(404)
    s = store().calibration(sid)
    if s is None or not _visible(s):
        abort(404)
    return s


@bp.get("")
def sessions():
    reviewers_only()
    shown = [s for s in store().calibration_sessions() if _visible(s)]
    candidates = [u.name for u in store().users() if u.active and u.reviews]
    return render_template("calibration_list.html", sessions=shown, candidates=candidates)


@bp.post("")
def create():
    reviewers_only()
    calls = request.form.get("calls", "").replace(",", " ").split()
    try:
        sid = create_session(store(), name=request.form.get("name", ""), creator=user(),
                             members=request.form.getlist("reviewers"), call_refs=calls)
    except QAError as exc:
        flash(cause(exc))
        return redirect(url_for("calibration.sessions"))
    return redirect(url_for("calibration.session", sid=sid))


@bp.get("/<int:sid>")
def session(sid: int):
    s = _session_or_404(sid)
    me = user()
    figures = may_see_figures(s, me)
    report = build_report(store(), s) if figures else None
    pending = [c for c in s.calls if me.name in s.members and not s.has_submitted(me.name, c.call_pk)]
    return render_template("calibration_session.html", session=s, report=report, figures=figures, pending=pending)


@bp.get("/<int:sid>/calls/<int:pk>")
def judge(sid: int, pk: int):
    s = _session_or_404(sid)
    if user().name not in s.members or not any(c.call_pk == pk for c in s.calls):
        abort(404)
    if s.has_submitted(user().name, pk):
        return redirect(url_for("calibration.session", sid=sid))
    call = call_or_404(pk)
    entry = next(c for c in s.calls if c.call_pk == pk)
    result = store().result_by_id(entry.result_id)
    if result is None:
        abort(404)
    shown = state().redactor.text
    findings = [replace(f, evidence=tuple(dict(e, text=shown(e.get("text")), matched=shown(e.get("matched")))
                                          for e in f.evidence)) for f in calibrated_findings(result)]
    transcript = [replace(u, text=shown(u.text) or "") for u in result.transcript]
    return render_template("calibration_call.html", session=s, call=call, result=result, findings=findings,
                           transcript=transcript, timeline=timeline(call), meta=call.metadata, fmt=fmt_clock)


@bp.post("/<int:sid>/calls/<int:pk>")
def hand_in(sid: int, pk: int):
    s = _session_or_404(sid)
    labels = {k[len("label-"):]: v for k, v in request.form.items() if k.startswith("label-")}
    try:
        submit(store(), s, pk, reviewer=user(), labels=labels)
    except QAError as exc:
        flash(cause(exc))
        return redirect(url_for("calibration.judge", sid=sid, pk=pk))
    after = store().calibration(sid)
    assert after is not None
    nxt = next((c.call_pk for c in after.calls if not after.has_submitted(user().name, c.call_pk)), None)
    return redirect(url_for("calibration.judge", sid=sid, pk=nxt) if nxt else url_for("calibration.session", sid=sid))


@bp.get("/<int:sid>/labels.json")
def labels(sid: int):
    s = _session_or_404(sid)
    if not may_see_figures(s, user()):
        abort(403, _("hand in every call of the session first"))
    resp = current_app.response_class(json.dumps(calibration_labels(store(), s), ensure_ascii=False, indent=1),
                                      mimetype="application/json")
    resp.headers["Content-Disposition"] = f"attachment; filename=calibration-{sid}-labels.json"
    return resp
