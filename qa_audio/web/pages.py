"""The review pages: the spot-check queue, the call list, one call (player, timeline, transcript,
findings with confirm / overturn), the recording, labels for a backtest."""
from __future__ import annotations

from dataclasses import replace

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from flask_babel import gettext as _

from qa_audio.errors import QAError, StoreError
from qa_audio.results.review import (
    QUEUE_KINDS,
    ReviewError,
    final_score,
    mark_checked,
    review_finding,
    review_labels,
)
from qa_audio.results.show import fmt_clock
from qa_audio.results.store import CALL_SORTS
from qa_audio.web.appeals import appeals_view, assignees
from qa_audio.web.audio_files import AudioUnavailable
from qa_audio.web.auth import home_url
from qa_audio.web.calibration import blind_session
from qa_audio.web.labels import detail_text
from qa_audio.web.state import MAX_ID, call_or_404, current_queue, reviewers_only, state, store, user
from qa_audio.web.views import cause, timeline

FILTERS = ("agent", "team", "date_from", "date_to", "score_min", "score_max", "verdict", "rule", "text")
VERDICTS = ("pass", "review", "fail", "unscorable")
MAX_PAGE = 10 ** 6

bp = Blueprint("review", __name__)


@bp.get("/")
def index():
    return redirect(home_url(user()))

@bp.get("/queue")
def queue():
    reviewers_only()
    shown = current_queue()
    _hide_blind([row for rows in shown.items.values() for row in rows])
    return render_template("queue.html", queue=shown, kinds=QUEUE_KINDS)


def _hide_blind(rows: list[dict]) -> None:
    """No score on a call this user is still to judge blind in a calibration session."""
    blind = store().pending_calibration(user().name)
    for row in rows:
        if row["call_pk"] in blind:
            row.update(shown_score=None, shown_verdict="blind", score=None, failed_rules="", reviewed_at=None)

@bp.get("/calls")
def calls():
    filters = session.get("filters", {})
    sort = request.args.get("sort", "time")
    if sort not in CALL_SORTS:
        sort = "time"
    descending = request.args.get("order", "desc") != "asc"
    page = min(max(1, _int(request.args.get("page"), 1)), MAX_PAGE)
    size = state().config.review.page_size
    try:
        rows, total = store().search_calls(
            agent=filters.get("agent"), team=filters.get("team"), date_from=filters.get("date_from"),
            date_to=filters.get("date_to"), score_min=_float(filters.get("score_min")),
            score_max=_float(filters.get("score_max")), verdict=filters.get("verdict"),
            failed_rule=filters.get("rule"), text=filters.get("text"), sort=sort, descending=descending,
            offset=(page - 1) * size, limit=size, shown=state().redactor.text, scope=user().scope)
    except StoreError:
        abort(400)
    pages = max(1, (total + size - 1) // size)
    _hide_blind(rows)
    return render_template("calls.html", rows=rows, total=total, page=page, pages=pages, sort=sort,
                           order="desc" if descending else "asc", filters=filters,
                           facets=store().facets(user().scope), verdicts=VERDICTS)

@bp.post("/calls/filter")
def set_filter():
    if "clear" in request.form:
        session.pop("filters", None)
    else:
        filters = {k: request.form.get(k, "").strip()[:200] for k in FILTERS}
        for key in ("date_from", "date_to"):
            if filters[key] and not _is_date(filters[key]):
                filters[key] = ""
        for key in ("score_min", "score_max"):
            if filters[key] and _float(filters[key]) is None:
                filters[key] = ""
        if filters["verdict"] not in VERDICTS:
            filters["verdict"] = ""
        session["filters"] = {k: v for k, v in filters.items() if v}
    return redirect(url_for("review.calls"))

@bp.get("/calls/<int:pk>")
def call_page(pk: int):
    call = call_or_404(pk)
    if call.result is None:
        abort(404)
    blind = blind_session(pk)
    if blind is not None:            # judged blind first: no final score, no one else's decisions
        return redirect(url_for("calibration.judge", sid=blind, pk=pk))
    result = call.result
    score, verdict = final_score(result, call.reviews)
    order = {"fail": 0, "pass": 1, "n/a": 2}
    shown = state().redactor.text
    findings = [replace(f, detail=shown(detail_text(f)) or "",
                        evidence=tuple(dict(e, text=shown(e.get("text")), matched=shown(e.get("matched")))
                                       for e in f.evidence))
                for f in sorted(result.decided(call.reviews), key=lambda f: order.get(f.status, 3))]
    transcript = [replace(u, text=shown(u.text) or "") for u in result.transcript]
    audit = [_audit_row(a) for a in store().audit_trail(call_pk=pk)]
    next_pk = current_queue().next_call_pk if user().reviews else None
    return render_template("call.html", call=call, result=result, meta=call.metadata, score=score,
                           verdict=verdict, findings=findings, transcript=transcript, audit=audit,
                           timeline=timeline(call), next_pk=next_pk if next_pk != pk else None,
                           fmt=fmt_clock, appeals=appeals_view(call), assignees=assignees(call),
                           sections=result.final_sections(call.reviews))

@bp.get("/calls/<int:pk>/audio")
def audio(pk: int):
    if not 0 < pk <= MAX_ID:
        abort(404)
    source = store().audio_source(pk)
    if source is None or not user().scope.allows(source):
        abort(404)
    try:
        path, mime = state().audio_files.resolve(source)
    except (AudioUnavailable, QAError, OSError) as exc:
        return Response(f"recording of call {pk} unavailable: {cause(exc)}\n", status=410,
                        mimetype="text/plain")
    resp = send_file(path.absolute(), mimetype=mime, conditional=True, etag=source["audio_sha256"][:32],
                     max_age=0, download_name=f"call-{pk}{path.suffix}")
    resp.headers["Cache-Control"] = "private, no-store"
    return resp

@bp.post("/calls/<int:pk>/review")
def review(pk: int):
    reviewers_only()
    call = call_or_404(pk)
    if blind_session(pk) is not None:
        abort(409, _("hand in your calibration decisions on this call first"))
    try:
        review_finding(store(), call, request.form.get("rule", ""), decision=request.form.get("decision", ""),
                       reason=request.form.get("reason", ""), reviewer=user().name, privacy=state().config.privacy)
    except ReviewError as exc:
        flash(cause(exc))                     # in the session, never in the URL
        return redirect(url_for("review.call_page", pk=pk) + "#findings")
    return redirect(url_for("review.call_page", pk=pk) + f"#finding-{request.form.get('rule', '')}")

@bp.post("/calls/<int:pk>/checked")
def checked(pk: int):
    reviewers_only()
    call = call_or_404(pk)
    try:
        mark_checked(store(), call, reviewer=user().name)
    except ReviewError as exc:
        flash(cause(exc))
        return redirect(url_for("review.call_page", pk=pk))
    nxt = current_queue().next_call_pk
    return redirect(url_for("review.call_page", pk=nxt) if nxt else url_for("review.queue"))

@bp.get("/labels.json")
def labels():
    reviewers_only()
    # a call this user is still to judge blind: others' decisions on it stay unseen
    labels = review_labels(store(), scope=user().scope, leave_out=store().pending_calibration(user().name))
    resp = current_app.response_class(_json(labels), mimetype="application/json")
    resp.headers["Content-Disposition"] = "attachment; filename=labels.json"
    return resp


# ------------------------------------------------------------------------ helpers
def _audit_row(a: dict) -> dict:
    import json

    out = dict(a)
    for key in ("before_json", "after_json"):
        out[key[:-5]] = json.loads(a[key]) if a.get(key) else {}
    return out


def _json(value) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, indent=1)


def _int(value, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _float(value) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def _is_date(value: str) -> bool:
    from datetime import date

    try:
        date.fromisoformat(value)
        return True
    except ValueError:
        return False
