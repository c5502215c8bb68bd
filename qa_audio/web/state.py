"""The review application's state, in one object: the store it reads, the rulebook, the redactor, the
recordings, the login throttle. Routes reach it through :func:`state`; each request opens the store once."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from flask import abort, current_app, g
from flask_babel import gettext as _

from qa_audio.config import Config
from qa_audio.results.access import User
from qa_audio.results.privacy import Redactor
from qa_audio.results.review import spot_check_queue
from qa_audio.results.store import Store, StoredCall, is_server, open_store
from qa_audio.web.audio_files import AudioFiles

MAX_FAILED_LOGINS, LOCKOUT_S = 5, 60.0
MAX_ID = 2 ** 63 - 1              # SQLite's integers end here


class LoginThrottle:
    """At most MAX_FAILED_LOGINS failed attempts per name within LOCKOUT_S. An attempt counts before its
    password is checked, so parallel guesses queue up."""

    def __init__(self) -> None:
        self._failed: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def attempt(self, name: str) -> bool:
        """Count an attempt; False when the name is locked out (the attempt is then not counted)."""
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._failed.get(name, []) if now - t < LOCKOUT_S]
            locked = len(recent) >= MAX_FAILED_LOGINS
            if not locked:
                recent.append(now)
            self._failed[name] = recent
        return not locked

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failed.pop(name, None)


@dataclass
class ReviewState:
    db: str
    config: Config
    redactor: Redactor
    audio_files: AudioFiles
    logins: LoginThrottle = field(default_factory=LoginThrottle)

    @classmethod
    def open(cls, db: str | Path, config: Config) -> ReviewState:
        db = str(db)
        open_store(db, create=False).close()      # fail now, with the store's own message, if it is unusable
        beside = Path.cwd() if is_server(db) else Path(db).resolve().parent    # where relative paths are found
        return cls(db, config, Redactor(config.privacy), AudioFiles(beside))

    def close(self) -> None:
        self.audio_files.close()


def state() -> ReviewState:
    return current_app.extensions["qa_audio"]


def store() -> Store:
    """This request's store connection (closed when the request ends)."""
    if "store" not in g:
        g.store = open_store(state().db, create=False)
    return g.store


def close_store(_exc: BaseException | None = None) -> None:
    st = g.pop("store", None)
    if st is not None:
        st.close()


def user() -> User:
    """This request's logged-in user (the login guard sets it before any route runs)."""
    return g.user


def current_queue():
    review = state().config.review
    return spot_check_queue(store(), sample_percent=review.sample_passing_percent, seed=review.sample_seed,
                            user=user())


def call_or_404(pk: int) -> StoredCall:
    """The call numbered ``pk`` if this user may see it; otherwise 404, as for a call that does not exist
    (an agent cannot tell another agent's call from no call)."""
    if not 0 < pk <= MAX_ID:
        abort(404)
    call = store().call_by_pk(pk)
    if call is None or not user().scope.allows(call.metadata):
        abort(404)
    return call


def reviewers_only() -> None:
    """Supervisors' and admins' routes: an agent gets 403."""
    if not user().reviews:
        abort(403, _("supervisors only: agents see and appeal their own calls"))


def admins_only() -> None:
    if not user().is_admin:
        abort(403, _("admins only"))
