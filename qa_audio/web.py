"""The supervisors' review page: ``qa-audio serve --db results.sqlite``.

A Flask application with server-rendered pages over the results store:

* ``/queue``: the spot-check queue (failing calls, low-confidence hits, a sample of
  passing calls) with progress counts;
* ``/calls``: every scored call, filtered by agent, team, dates, score, verdict,
  failed standard and transcript text, sorted and paged;
* ``/calls/<n>``: audio player, timeline, transcript and findings side by side,
  with a confirm / overturn form per finding and the call's audit trail;
* ``/calls/<n>/audio``: the recording, with HTTP range requests.

Safety: every route but the login form needs a session; every form carries a
CSRF token; a recording is found by the call's number in the store and checked
against its stored content hash, so nothing in a request names a file; filters
travel in the (signed) session, never in URLs, so agent ids and searched text
stay out of URLs and logs; transcripts are masked (PRV-1) as everywhere else.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import shutil
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

from .config import Config
from .errors import QAError, StoreError
from .privacy import Redactor
from .review import (QUEUE_KINDS, ReviewError, check_password, final_findings, final_score, mark_checked,
                     review_finding, review_labels, spot_check_queue)
from .show import fmt_clock
from .store import CALL_SORTS, open_store

# codecs a browser's <audio> plays as they are; anything else is decoded once and served as 16-bit WAV
PLAYABLE = {"WAV/PCM_16": "audio/wav", "WAV/PCM_24": "audio/wav", "WAV/PCM_U8": "audio/wav",
            "WAV/FLOAT": "audio/wav", "FLAC/PCM_16": "audio/flac", "FLAC/PCM_24": "audio/flac",
            "OGG/VORBIS": "audio/ogg", "OGG/OPUS": "audio/ogg", "MP3/MPEG_LAYER_III": "audio/mpeg",
            "mp3/mp3": "audio/mpeg", "mp3/mp3float": "audio/mpeg"}
FILTERS = ("agent", "team", "date_from", "date_to", "score_min", "score_max", "verdict", "rule", "text")
VERDICTS = ("pass", "review", "fail", "unscorable")
MAX_FAILED_LOGINS, LOCKOUT_S = 5, 60.0
MAX_ID, MAX_PAGE = 2 ** 63 - 1, 10 ** 6
TIMELINE_ROWS = (("ring", "Ringing"), ("agent", "Agent speech"), ("customer", "Customer speech"),
                 ("mixed", "Speech (mono)"), ("hold", "Hold"), ("overtalk", "Overtalk"), ("dead_air", "Dead air"))


class AudioUnavailable(QAError):
    """The recording of a stored call cannot be served (moved, changed, unreadable)."""


class _AudioFiles:
    """Recordings by call number: verified against the stored hash, transcoded when a browser cannot play them."""

    def __init__(self, store_dir: Path):
        self._store_dir = store_dir
        self._verified: dict[tuple, bool] = {}
        self._lock = threading.Lock()
        self._dir = Path(tempfile.mkdtemp(prefix="qa-audio-serve-"))

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)

    def resolve(self, source: dict) -> tuple[Path, str]:
        """(file to send, MIME type) for a store row ``{path, audio_sha256, size_bytes, codec}``."""
        path = Path(source["path"])
        if not path.is_absolute():                   # stores written before paths were kept absolute
            path = next((c for c in (Path.cwd() / path, self._store_dir / path) if c.exists()), path)
        try:
            stat = path.stat()
        except OSError:
            raise AudioUnavailable("the recording is no longer where the batch found it") from None
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        with self._lock:
            ok = self._verified.get(key)
        if ok is None:
            digest = hashlib.sha256()
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
            ok = digest.hexdigest() == source["audio_sha256"]
            with self._lock:
                self._verified[key] = ok
        if not ok:
            raise AudioUnavailable("the file at the recording's path has changed since it was scored")
        mime = PLAYABLE.get(source.get("codec") or "")
        if mime:
            return path, mime
        wav = self._dir / f"{source['audio_sha256']}.wav"
        if not wav.exists():
            import soundfile as sf

            from .audio import load_audio

            audio = load_audio(path, rate_hz=16000)
            tmp = wav.with_suffix(".part")
            sf.write(str(tmp), audio.samples.T, audio.rate_hz, subtype="PCM_16", format="WAV")
            os.replace(tmp, wav)
        return wav, "audio/wav"


def create_app(db: str | Path, config: Config, *, secret_key: bytes | None = None):
    """The review application over the store ``db`` (which must exist)."""
    from flask import (Flask, Response, abort, flash, g, redirect, render_template, request, send_file, session,
                       url_for)

    db = str(db)
    open_store(db, create=False).close()          # fail now, with the store's own message, if it is unusable
    app = Flask(__name__, static_folder=None, template_folder="templates")
    app.config.update(SECRET_KEY=secret_key or secrets.token_bytes(32), SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Strict", SESSION_COOKIE_NAME="qa_audio_session",
                      SESSION_COOKIE_SECURE=config.review.secure_cookies,
                      PERMANENT_SESSION_LIFETIME=timedelta(hours=config.review.session_hours),
                      MAX_CONTENT_LENGTH=64 * 1024, TEMPLATES_AUTO_RELOAD=False)
    app.jinja_env.autoescape = True
    app.jinja_env.filters["num"] = lambda value: "–" if value is None else f"{value:g}"
    redactor = Redactor(config.privacy)
    audio_files = _AudioFiles(Path(db).resolve().parent)
    failed_logins: dict[str, list[float]] = {}
    logins_lock = threading.Lock()
    app.extensions["qa_audio"] = {"db": db, "config": config, "audio_files": audio_files}

    def store():
        if "store" not in g:
            g.store = open_store(db, create=False)
        return g.store

    def current_queue():
        return spot_check_queue(store(), sample_percent=config.review.sample_passing_percent,
                                seed=config.review.sample_seed)

    def call_or_404(pk: int):
        if not 0 < pk <= MAX_ID:         # SQLite's integers end at 2**63 - 1
            abort(404)
        call = store().call_by_pk(pk)
        if call is None:
            abort(404)
        return call

    @app.teardown_appcontext
    def _close(_exc):
        st = g.pop("store", None)
        if st is not None:
            st.close()

    # ---------------------------------------------------------------- session, login, CSRF
    def csrf_token() -> str:
        if "csrf" not in session:
            session["csrf"] = secrets.token_urlsafe(32)
        return session["csrf"]

    app.jinja_env.globals["csrf_token"] = csrf_token

    @app.before_request
    def _guard():
        if request.method == "POST":
            sent = request.form.get("csrf", "")
            if not sent or not hmac.compare_digest(sent, session.get("csrf", "")):
                abort(400, "the form has expired or did not come from this site; reload the page and try again")
        if request.endpoint in ("login",):
            return None
        user = store().session_user(session.get("sid"))     # server-side: a logout revokes the cookie
        if user is None:
            session.pop("sid", None)
            if request.endpoint == "audio" or request.method != "GET":
                abort(401)
            return redirect(url_for("login"))
        g.user = user
        return None

    @app.after_request
    def _headers(resp):
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["Cache-Control"] = "no-store"
        resp.headers["Content-Security-Policy"] = ("default-src 'self'; style-src 'self' 'unsafe-inline'; "
                                                   "script-src 'self' 'unsafe-inline'; img-src 'self' data:")
        return resp

    @app.route("/login", methods=["GET", "POST"])
    def login():
        error = None
        if request.method == "POST":
            name = request.form.get("name", "").strip()
            password = request.form.get("password", "")
            now = time.monotonic()
            with logins_lock:        # an attempt counts before its password is checked: parallel guesses queue up
                recent = [t for t in failed_logins.get(name, []) if now - t < LOCKOUT_S]
                locked = len(recent) >= MAX_FAILED_LOGINS
                if not locked:
                    recent.append(now)
                failed_logins[name] = recent
            user = store().user(name) if name and not locked else None
            if locked:
                error = f"too many failed attempts; wait {int(LOCKOUT_S)} seconds"
            elif user is None or not check_password(password, user["password_hash"]):
                error = "unknown user or wrong password"
            else:
                with logins_lock:
                    failed_logins.pop(name, None)
                session.clear()
                session.permanent = True
                session["sid"] = store().create_session(name, hours=config.review.session_hours)
                csrf_token()
                store().log_action(actor=name, action="login")
                return redirect(url_for("queue"))
        return render_template("login.html", error=error), (401 if error else 200)

    @app.post("/logout")
    def logout():
        store().revoke_session(session.get("sid"))
        store().log_action(actor=g.user, action="logout")
        session.clear()
        return redirect(url_for("login"))

    # ---------------------------------------------------------------- pages
    @app.get("/")
    def index():
        return redirect(url_for("queue"))

    @app.get("/queue")
    def queue():
        return render_template("queue.html", queue=current_queue(), kinds=QUEUE_KINDS, user=g.user)

    @app.get("/calls")
    def calls():
        filters = session.get("filters", {})
        sort = request.args.get("sort", "time")
        if sort not in CALL_SORTS:
            sort = "time"
        descending = request.args.get("order", "desc") != "asc"
        page = min(max(1, _int(request.args.get("page"), 1)), MAX_PAGE)
        size = config.review.page_size
        try:
            rows, total = store().search_calls(
                agent=filters.get("agent"), team=filters.get("team"), date_from=filters.get("date_from"),
                date_to=filters.get("date_to"), score_min=_float(filters.get("score_min")),
                score_max=_float(filters.get("score_max")), verdict=filters.get("verdict"),
                failed_rule=filters.get("rule"), text=filters.get("text"), sort=sort, descending=descending,
                offset=(page - 1) * size, limit=size, shown=redactor.text)
        except StoreError:
            abort(400)
        pages = max(1, (total + size - 1) // size)
        return render_template("calls.html", rows=rows, total=total, page=page, pages=pages, sort=sort,
                               order="desc" if descending else "asc", filters=filters, facets=store().facets(),
                               verdicts=VERDICTS, user=g.user)

    @app.post("/calls/filter")
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
        return redirect(url_for("calls"))

    @app.get("/calls/<int:pk>")
    def call_page(pk: int):
        call = call_or_404(pk)
        if call.result is None:
            abort(404)
        result = call.result
        score, verdict = final_score(result, call.reviews)
        order = {"fail": 0, "pass": 1, "n/a": 2}
        findings = sorted(final_findings(result, call.reviews), key=lambda f: order.get(f["status"], 3))
        for f in findings:
            f["detail"] = redactor.text(f.get("detail"))
            f["evidence"] = [dict(e, text=redactor.text(e.get("text")), matched=redactor.text(e.get("matched")))
                             for e in f.get("evidence", [])]
            f["original_status"] = next(o["status"] for o in result["findings"] if o["rule"] == f["rule"])
        transcript = [dict(u, text=redactor.text(u["text"])) for u in result["transcript"]]
        audit = [_audit_row(a) for a in store().audit_trail(call_pk=pk)]
        next_pk = current_queue().next_call_pk
        return render_template("call.html", call=call, result=result, meta=call.metadata, score=score,
                               verdict=verdict, findings=findings, transcript=transcript, audit=audit,
                               timeline=timeline(call), user=g.user, next_pk=next_pk if next_pk != pk else None,
                               fmt=fmt_clock)

    @app.get("/calls/<int:pk>/audio")
    def audio(pk: int):
        if not 0 < pk <= MAX_ID:
            abort(404)
        source = store().audio_source(pk)
        if source is None:
            abort(404)
        try:
            path, mime = audio_files.resolve(source)
        except (AudioUnavailable, QAError, OSError) as exc:
            return Response(f"recording of call {pk} unavailable: {_cause(exc)}\n", status=410,
                            mimetype="text/plain")
        resp = send_file(path.absolute(), mimetype=mime, conditional=True, etag=source["audio_sha256"][:32],
                         max_age=0, download_name=f"call-{pk}{path.suffix}")
        resp.headers["Cache-Control"] = "private, no-store"
        return resp

    @app.post("/calls/<int:pk>/review")
    def review(pk: int):
        call = call_or_404(pk)
        try:
            review_finding(store(), call, request.form.get("rule", ""), decision=request.form.get("decision", ""),
                           reason=request.form.get("reason", ""), reviewer=g.user, privacy=config.privacy)
        except ReviewError as exc:
            flash(_cause(exc))                     # in the session, never in the URL
            return redirect(url_for("call_page", pk=pk) + "#findings")
        return redirect(url_for("call_page", pk=pk) + f"#finding-{request.form.get('rule', '')}")

    @app.post("/calls/<int:pk>/checked")
    def checked(pk: int):
        call = call_or_404(pk)
        try:
            mark_checked(store(), call, reviewer=g.user)
        except ReviewError as exc:
            flash(_cause(exc))
            return redirect(url_for("call_page", pk=pk))
        nxt = current_queue().next_call_pk
        return redirect(url_for("call_page", pk=nxt) if nxt else url_for("queue"))

    @app.get("/labels.json")
    def labels():
        resp = app.response_class(_json(review_labels(store())), mimetype="application/json")
        resp.headers["Content-Disposition"] = "attachment; filename=labels.json"
        return resp

    @app.errorhandler(400)
    @app.errorhandler(401)
    @app.errorhandler(404)
    @app.errorhandler(405)
    @app.errorhandler(413)
    def _error(exc):
        return render_template("error.html", code=exc.code, message=exc.description), exc.code

    @app.errorhandler(StoreError)
    def _store_error(exc):
        return render_template("error.html", code=503, message=_cause(exc)), 503

    @app.errorhandler(Exception)
    def _unexpected(exc):
        from werkzeug.exceptions import HTTPException

        if isinstance(exc, HTTPException):
            return _error(exc)
        # the log names the kind of failure and the route, never the message (it may hold a path or a name)
        app.logger.error("internal error %s in %s", type(exc).__name__, request.endpoint)
        return render_template("error.html", code=500, message="internal error; see the server log"), 500

    return app


# ------------------------------------------------------------------------ helpers
def timeline(call) -> dict:
    """Rows of (start_s, end_s) spans for the call page's timeline, from the stored acoustics and timing."""
    acoustics, t = call.analysis["acoustics"], call.result["timing"]
    duration = max(float(acoustics["duration_s"]), 0.001)
    rows = {"ring": [tuple(s) for s in acoustics.get("ring_bursts", [])]}
    for role, regions in acoustics["regions"].items():
        rows[role] = [tuple(s) for s in regions]
    rows["hold"] = [(h["start_s"], h["end_s"]) for h in t["holds"]]
    rows["overtalk"] = [(i["at_s"], i["at_s"] + max(float(i["overlap_s"]), 0.3)) for i in (t["interruptions"] or [])]
    rows["dead_air"] = [(d["start_s"], d["end_s"]) for d in t["dead_air"]]
    shown = [(key, label, [(float(a), float(b)) for a, b in rows[key]]) for key, label in TIMELINE_ROWS
             if key in rows and (rows[key] or key in ("agent", "customer", "ring", "hold"))]
    ticks_every = next(s for s in (5, 10, 15, 30, 60, 120, 300, 600, 1e9) if duration / s <= 12)
    ticks = [i * ticks_every for i in range(int(duration // ticks_every) + 1)]
    return {"duration_s": duration, "rows": shown, "ticks": ticks}


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


def _cause(exc: Exception) -> str:
    """An error message without the file path or call id it starts with (shown in a page)."""
    text = str(exc)
    return text.split(": ", 1)[1] if ": " in text else text


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

        def log_message(self, format, *args):              # noqa: A002 (the base class's name)
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
        server.app.extensions["qa_audio"]["audio_files"].close()
