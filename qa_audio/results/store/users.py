"""Reviewers' accounts and their server-side sessions."""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone

from qa_audio.results.store.base import StoreBase, _now, _token_hash


class UsersPart(StoreBase):
    """Reviewers' accounts and their server-side sessions."""

    # ------------------------------------------------------------------ users
    def add_user(self, name: str, password_hash: str) -> None:
        with self._tx() as cur:
            cur.execute("INSERT INTO users (name, password_hash, created_at) VALUES (?, ?, ?)"
                        " ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash, active = 1",
                        (name, password_hash, _now()))

    def create_session(self, user: str, *, hours: float) -> str:
        """A new login session for ``user``; returns the token for the cookie (only its hash is stored)."""
        token = secrets.token_urlsafe(32)
        now = datetime.now(timezone.utc)
        with self._tx() as cur:
            cur.execute("DELETE FROM sessions WHERE expires_at < ?", (now.isoformat(),))
            cur.execute("INSERT INTO sessions (token_sha256, user, created_at, expires_at) VALUES (?, ?, ?, ?)",
                        (_token_hash(token), user, now.isoformat(), (now + timedelta(hours=hours)).isoformat()))
        return token

    def session_user(self, token: str | None) -> str | None:
        """The user of a live session (not revoked, not expired, user still active), else None."""
        if not token or not isinstance(token, str) or len(token) > 100:
            return None
        row = self.conn.execute(
            "SELECT s.user FROM sessions s JOIN users u ON u.name = s.user WHERE s.token_sha256 = ?"
            " AND s.revoked_at IS NULL AND s.expires_at > ? AND u.active = 1",
            (_token_hash(token), datetime.now(timezone.utc).isoformat())).fetchone()
        return row[0] if row else None

    def revoke_session(self, token: str | None) -> None:
        if not token or not isinstance(token, str):
            return
        with self._tx() as cur:
            cur.execute("UPDATE sessions SET revoked_at = ? WHERE token_sha256 = ? AND revoked_at IS NULL",
                        (_now(), _token_hash(token)))

    def user(self, name: str) -> dict | None:
        row = self.conn.execute("SELECT * FROM users WHERE name = ? AND active = 1", (name,)).fetchone()
        return dict(row) if row else None
