"""Reviewers' accounts and their server-side sessions."""
from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

from qa_audio.results.access import User
from qa_audio.results.store.backend import Row
from qa_audio.results.store.base import StoreBase, _now, _token_hash


def _user(row: Row) -> User:
    keys = row.keys()
    return User(row["name"], row["role"] if "role" in keys else "supervisor",
                tuple(json.loads(row["teams_json"])) if "teams_json" in keys else (),
                row["agent_id"] if "agent_id" in keys else None, bool(row["active"]))


class UsersPart(StoreBase):
    """Reviewers' accounts and their server-side sessions."""

    # ------------------------------------------------------------------ users
    def add_user(self, name: str, password_hash: str, *, role: str = "supervisor", teams: Sequence[str] = (),
                 agent_id: str | None = None) -> None:
        """A new account, or an existing one with a new password, role and scope (and enabled again)."""
        with self._tx() as cur:
            cur.execute("INSERT INTO users (name, password_hash, created_at, role, teams_json, agent_id)"
                        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET"
                        " password_hash = excluded.password_hash, active = 1, role = excluded.role,"
                        " teams_json = excluded.teams_json, agent_id = excluded.agent_id",
                        (name, password_hash, _now(), role, json.dumps(list(teams), ensure_ascii=False), agent_id))

    def users(self) -> list[User]:
        """Every account, disabled ones too, by name."""
        return [_user(r) for r in self.conn.execute("SELECT * FROM users ORDER BY name")]

    def account(self, name: str) -> User | None:
        """An account by name, active or not."""
        row = self.conn.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
        return _user(row) if row else None

    def set_active(self, name: str, active: bool) -> None:
        """Enable or disable an account; disabling ends its sessions at once."""
        with self._tx() as cur:
            cur.execute("UPDATE users SET active = ? WHERE name = ?", (int(active), name))
            if not active:
                cur.execute("UPDATE sessions SET revoked_at = ? WHERE \"user\" = ? AND revoked_at IS NULL",
                            (_now(), name))

    def set_role(self, name: str, *, role: str, teams: Sequence[str] = (), agent_id: str | None = None) -> None:
        with self._tx() as cur:
            cur.execute("UPDATE users SET role = ?, teams_json = ?, agent_id = ? WHERE name = ?",
                        (role, json.dumps(list(teams), ensure_ascii=False), agent_id, name))

    def create_session(self, user: str, *, hours: float) -> str:
        """A new login session for ``user``; returns the token for the cookie (only its hash is stored)."""
        token = secrets.token_urlsafe(32)
        now = datetime.now(timezone.utc)
        with self._tx() as cur:
            cur.execute("DELETE FROM sessions WHERE expires_at < ?", (now.isoformat(),))
            cur.execute("INSERT INTO sessions (token_sha256, \"user\", created_at, expires_at) VALUES (?, ?, ?, ?)",
                        (_token_hash(token), user, now.isoformat(), (now + timedelta(hours=hours)).isoformat()))
        return token

    def session_user(self, token: str | None) -> User | None:
        """The user of a live session (not revoked, not expired, user still active), else None."""
        if not token or not isinstance(token, str) or len(token) > 100:
            return None
        row = self.conn.execute(
            "SELECT u.* FROM sessions s JOIN users u ON u.name = s.\"user\" WHERE s.token_sha256 = ?"
            " AND s.revoked_at IS NULL AND s.expires_at > ? AND u.active = 1",
            (_token_hash(token), datetime.now(timezone.utc).isoformat())).fetchone()
        return _user(row) if row else None

    def revoke_session(self, token: str | None) -> None:
        if not token or not isinstance(token, str):
            return
        with self._tx() as cur:
            cur.execute("UPDATE sessions SET revoked_at = ? WHERE token_sha256 = ? AND revoked_at IS NULL",
                        (_now(), _token_hash(token)))

    def user(self, name: str) -> dict | None:
        row = self.conn.execute("SELECT * FROM users WHERE name = ? AND active = 1", (name,)).fetchone()
        return dict(row) if row else None
