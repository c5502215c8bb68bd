"""The supervisors' review page: ``qa-audio serve --db results.sqlite``.

A Flask application with server-rendered pages over the results store:

* ``/queue``: the spot-check queue (failing calls, low-confidence hits, a sample of
  passing calls) with progress counts;
* ``/calls``: every scored call, filtered by agent, team, dates, score, verdict,
  failed standard and transcript text, sorted and paged;
* ``/calls/<n>``: audio player, timeline, transcript and findings side by side,
  with a confirm / overturn form per finding and the call's audit trail;
* ``/calls/<n>/audio``: the recording, with HTTP range requests;
* ``/appeals``: agents' appeals (申诉) and their rulings; ``/calibration``: calibration sessions;
  ``/export``: the HR export; ``/admin/users``: accounts (admins).

Roles (:mod:`qa_audio.results.access`): an admin sees everything and manages accounts; a supervisor
sees and reviews their teams' calls; an agent sees only their own calls (anything else is 404, as if it
did not exist), appeals findings on them, and gets 403 on every supervisors' route.

Safety: every route but the login form needs a session; every form carries a
CSRF token; a recording is found by the call's number in the store and checked
against its stored content hash, so nothing in a request names a file; filters
travel in the (signed) session, never in URLs, so agent ids and searched text
stay out of URLs and logs; transcripts are masked (PRV-1) as everywhere else.
"""
from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

from qa_audio.config import Config
from qa_audio.errors import StoreError
from qa_audio.web import admin, appeals, auth, calibration, pages, views
from qa_audio.web.state import ReviewState, close_store


def create_app(db: str | Path, config: Config, *, secret_key: bytes | None = None):
    """The review application over the store ``db`` (which must exist)."""
    from flask import Flask, g

    app = Flask(__name__, static_folder=None, template_folder="templates")
    app.config.update(SECRET_KEY=secret_key or secrets.token_bytes(32), SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Strict", SESSION_COOKIE_NAME="qa_audio_session",
                      SESSION_COOKIE_SECURE=config.review.secure_cookies,
                      PERMANENT_SESSION_LIFETIME=timedelta(hours=config.review.session_hours),
                      MAX_CONTENT_LENGTH=64 * 1024, TEMPLATES_AUTO_RELOAD=False)
    app.jinja_env.autoescape = True
    app.jinja_env.filters["num"] = lambda value: "–" if value is None else f"{value:g}"
    app.jinja_env.globals["csrf_token"] = auth.csrf_token
    app.context_processor(lambda: {"user": g.get("user")})
    app.extensions["qa_audio"] = ReviewState.open(db, config)
    app.teardown_appcontext(close_store)
    app.after_request(_headers)
    app.register_blueprint(auth.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(appeals.bp)
    app.register_blueprint(calibration.bp)
    app.register_blueprint(admin.bp)
    _error_pages(app)
    return app


def _headers(resp):
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Content-Security-Policy"] = ("default-src 'self'; style-src 'self' 'unsafe-inline'; "
                                               "script-src 'self' 'unsafe-inline'; img-src 'self' data:")
    return resp


def _error_pages(app) -> None:
    from flask import render_template, request

    @app.errorhandler(400)
    @app.errorhandler(401)
    @app.errorhandler(403)
    @app.errorhandler(404)
    @app.errorhandler(405)
    @app.errorhandler(409)
    @app.errorhandler(413)
    def _error(exc):
        return render_template("error.html", code=exc.code, message=exc.description), exc.code

    @app.errorhandler(StoreError)
    def _store_error(exc):
        return render_template("error.html", code=503, message=views.cause(exc)), 503

    @app.errorhandler(Exception)
    def _unexpected(exc):
        from werkzeug.exceptions import HTTPException

        if isinstance(exc, HTTPException):
            return _error(exc)
        # the log names the kind of failure and the route, never the message (it may hold a path or a name)
        app.logger.error("internal error %s in %s", type(exc).__name__, request.endpoint)
        return render_template("error.html", code=500, message="internal error; see the server log"), 500


def make_server(db: str | Path, config: Config, *, host: str = "127.0.0.1", port: int = 8080, log=None):
    """A threaded WSGI server for the review page (port 0: any free port); its log has method, path, status only."""
    import sys

    from werkzeug.serving import WSGIRequestHandler
    from werkzeug.serving import make_server as _make_server

    log = log or sys.stderr

    class Handler(WSGIRequestHandler):
        def log_request(self, code="-", size="-"):
            path = self.path.split("?", 1)[0]              # never a query string in the log
            log.write(f"{self.log_date_time_string()} {self.command} {path} {code}\n")
            log.flush()

        def log_message(self, format, *args):
            pass

    app = create_app(db, config)
    server = _make_server(host, port, app, threaded=True, request_handler=Handler)
    server.app = app
    return server


def serve(db: str | Path, config: Config, *, host: str = "127.0.0.1", port: int = 8080, log=None) -> None:
    """Run the review page until interrupted."""
    import sys

    log = log or sys.stderr
    server = make_server(db, config, host=host, port=port, log=log)
    log.write(f"qa-audio review page on http://{host}:{server.server_port}/  (Ctrl-C stops)\n")
    log.flush()
    try:
        server.serve_forever()
    finally:
        server.server_close()
        server.app.extensions["qa_audio"].close()
