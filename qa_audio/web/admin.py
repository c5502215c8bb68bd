"""The HR export (each user gets the calls of their own scope) and, for admins, the accounts page."""
from __future__ import annotations

import io
import tempfile
from pathlib import Path

from flask import Blueprint, abort, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _

from qa_audio.errors import QAError
from qa_audio.results.access import ROLES, check_user_fields
from qa_audio.results.export import build_export, parse_period
from qa_audio.results.sheets import write_export
from qa_audio.web.labels import language
from qa_audio.web.state import admins_only, store, user
from qa_audio.web.views import cause

bp = Blueprint("admin", __name__)
MIME = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "json": "application/json"}


@bp.get("/export")
def export_page():
    """The export form; with ``period`` given, the file itself (the calls this user may see, no more)."""
    period_text = request.args.get("period", "").strip()[:40]
    if not period_text:
        return render_template("export.html")
    by = request.args.get("by", "agent")
    fmt = request.args.get("format", "xlsx")
    if fmt not in MIME or by not in ("agent", "team", "client"):
        abort(400)
    try:
        period = parse_period(period_text)
        # a calibration member's own export leaves out the calls they are still to judge blind
        export = build_export(store(), period=period, by=by, scope=user().scope,
                              leave_out=store().pending_calibration(user().name))
    except QAError as exc:
        flash(cause(exc))
        return redirect(url_for("admin.export_page"))
    with tempfile.TemporaryDirectory(prefix="qa-audio-export-") as tmp:
        path = Path(tmp) / f"qa-audio-{period.label}-by-{by}.{fmt}"
        write_export(export, path, fmt=fmt, language=language())
        data = path.read_bytes()
    store().log_action(actor=user().name, action="export", reason=f"{period.label} by {by} ({len(export.calls)} calls)")
    resp = send_file(io.BytesIO(data), mimetype=MIME[fmt], as_attachment=True,
                     download_name=path.name)
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


@bp.get("/admin/users")
def users():
    admins_only()
    return render_template("users.html", users=store().users(), roles=ROLES)


@bp.post("/admin/users/<name>")
def change_user(name: str):
    admins_only()
    account = store().account(name)
    if account is None:
        abort(404)
    action = request.form.get("action", "")
    if action in ("disable", "enable"):
        if name == user().name and action == "disable":
            flash(_("you cannot disable your own account"))
        else:
            store().set_active(name, action == "enable")
            store().log_action(actor=user().name, action=f"user:{action}", reason=name)
    elif action == "set-role":
        role = request.form.get("role", "")
        teams = [t.strip() for t in request.form.get("teams", "").replace("，", ",").split(",") if t.strip()]
        agent_id = request.form.get("agent_id", "").strip() or None
        try:
            check_user_fields(name, role, teams if role == "supervisor" else [], agent_id if role == "agent" else None)
        except QAError as exc:
            flash(cause(exc))
            return redirect(url_for("admin.users"))
        if name == user().name and role != "admin":
            flash(_("you cannot take away your own admin role"))
            return redirect(url_for("admin.users"))
        store().set_role(name, role=role, teams=teams if role == "supervisor" else [],
                         agent_id=agent_id if role == "agent" else None)
        store().log_action(actor=user().name, action="user:set-role", reason=f"{name} {account.role} → {role}")
    else:
        abort(400)
    return redirect(url_for("admin.users"))
