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
import threading
import time
from datetime import timedelta
from pathlib import Path

from qa_audio.config import Config
from qa_audio.errors import StoreError
from qa_audio.i18n import CATALOGUES, DOMAIN
from qa_audio.web import admin, appeals, auth, calibration, dashboard, labels, pages, views
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
    from flask_babel import Babel

    Babel(app, locale_selector=labels.locale, default_translation_directories=str(CATALOGUES),
          default_domain=DOMAIN)
    app.context_processor(lambda: {"user": g.get("user"), **labels.template_globals()})
    app.extensions["qa_audio"] = ReviewState.open(db, config)
    app.teardown_appcontext(close_store)
    app.after_request(_headers)
    app.register_blueprint(auth.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(appeals.bp)
    app.register_blueprint(calibration.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(dashboard.bp)
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
        return render_template("error.html", code=exc.code, message=labels.http_message(exc)), exc.code

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
        from flask_babel import gettext as _

        return render_template("error.html", code=500, message=_("internal error; see the server log")), 500


class ReviewServer:
    """The review page on waitress, a production WSGI server (threads, no development server): bind with
    :func:`make_server`, then :meth:`serve_forever` until :meth:`shutdown` (from another thread) or Ctrl-C."""

    def __init__(self, app, *, host: str, port: int, threads: int, trusted_proxy: str | None, log):
        from waitress.server import create_server

        self.app = app
        options: dict = {"host": host, "port": port, "threads": threads, "ident": "qa-audio",
                         "expose_tracebacks": False, "max_request_body_size": 1024 * 1024}
        if trusted_proxy:     # behind a reverse proxy: its X-Forwarded-* headers say the scheme and client
            options.update(trusted_proxy=trusted_proxy, trusted_proxy_count=1, clear_untrusted_proxy_headers=True,
                           trusted_proxy_headers={"x-forwarded-proto", "x-forwarded-for", "x-forwarded-host"})
        self._server = create_server(_AccessLog(app, log), **options)
        self.server_port = int(self._server.effective_port)
        self.threads = threads

    def serve_forever(self) -> None:
        self._server.run()

    def shutdown(self) -> None:
        self._server.close()

    def server_close(self) -> None:
        self._server.close()


class _AccessLog:
    """One line per request: time, method, path (never a query string), status."""

    def __init__(self, app, log):
        self.app, self.log = app, log
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        def logged(status, headers, exc_info=None):
            stamp = time.strftime("%d/%b/%Y %H:%M:%S")
            with self._lock:
                self.log.write(f"[{stamp}] {environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO', '')} "
                               f"{status.split(' ', 1)[0]}\n")
                self.log.flush()
            return start_response(status, headers, exc_info)

        return self.app(environ, logged)


def make_server(db: str | Path, config: Config, *, host: str = "127.0.0.1", port: int = 8080, log=None,
                threads: int | None = None, trusted_proxy: str | None = None) -> ReviewServer:
    """The review page's server, bound (port 0: any free port); its log has method, path, status only."""
    import sys

    app = create_app(db, config)
    return ReviewServer(app, host=host, port=port, threads=threads or config.review.threads,
                        trusted_proxy=trusted_proxy, log=log or sys.stderr)


def serve(db: str | Path, config: Config, *, host: str = "127.0.0.1", port: int = 8080, log=None,
          threads: int | None = None, trusted_proxy: str | None = None) -> None:
    """Run the review page until interrupted."""
    import sys

    log = log or sys.stderr
    server = make_server(db, config, host=host, port=port, log=log, threads=threads, trusted_proxy=trusted_proxy)
    log.write(f"qa-audio review page on http://{host}:{server.server_port}/  (waitress, {server.threads} threads; "
              f"Ctrl-C stops)\n")
    log.flush()
    try:
        server.serve_forever()
    finally:
        server.server_close()
        server.app.extensions["qa_audio"].close()
