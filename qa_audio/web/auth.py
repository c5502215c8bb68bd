"""Sessions, login and logout, CSRF: every route but the login form needs a server-side session, every
form carries a CSRF token."""
from __future__ import annotations

import hmac
import secrets

from flask import Blueprint, abort, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from qa_audio.i18n import LANGUAGES
from qa_audio.results.review import check_password
from qa_audio.web.state import LOCKOUT_S, state, store

bp = Blueprint("auth", __name__)


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


@bp.before_app_request
def _guard():
    if request.method == "POST":
        sent = request.form.get("csrf", "")
        if not sent or not hmac.compare_digest(sent, session.get("csrf", "")):
            abort(400, _("the form has expired or did not come from this site; reload the page and try again"))
    if request.endpoint in ("auth.login", "auth.set_language"):
        return None
    user = store().session_user(session.get("sid"))     # server-side: a logout revokes the cookie
    if user is None:
        session.pop("sid", None)
        if request.endpoint == "review.audio" or request.method != "GET":
            abort(401)
        return redirect(url_for("auth.login"))
    g.user = user
    return None


def home_url(user) -> str:
    """Where a user starts: a supervisor's spot-check queue, an agent's own calls."""
    return url_for("review.calls") if user is not None and not user.reviews else url_for("review.queue")


@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    if request.method == "POST":
        name = request.form.get("name", "").strip()
        password = request.form.get("password", "")
        allowed = state().logins.attempt(name)
        user = store().user(name) if name and allowed else None
        if not allowed:
            error = _("too many failed attempts; wait %(seconds)s seconds", seconds=int(LOCKOUT_S))
        elif user is None or not check_password(password, user["password_hash"]):
            error = _("unknown user or wrong password")
        else:
            state().logins.succeeded(name)
            language = session.get("language")
            session.clear()
            if language:
                session["language"] = language
            session.permanent = True
            session["sid"] = store().create_session(name, hours=state().config.review.session_hours)
            csrf_token()
            store().log_action(actor=name, action="login")
            return redirect(home_url(store().account(name)))
    return render_template("login.html", error=error), (401 if error else 200)


@bp.post("/logout")
def logout():
    store().revoke_session(session.get("sid"))
    store().log_action(actor=g.user.name, action="logout")
    language = session.get("language")
    session.clear()
    if language:
        session["language"] = language
    return redirect(url_for("auth.login"))


@bp.post("/language")
def set_language():
    """The reader's language for this browser session (the config's ``review.language`` until chosen)."""
    language = request.form.get("language", "")
    if language in LANGUAGES:
        session["language"] = language
    target = request.form.get("next", "")
    # back to the page it came from: a path on this site only, never another host
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        target = url_for("review.index")
    return redirect(target)
