"""Who may see and do what: users' roles and the calls each one's scope covers.

* an **admin** manages users and sees every call;
* a **supervisor** sees and reviews the calls of their teams (every team when none is given), rules on
  agents' appeals and takes part in calibration sessions;
* an **agent** sees only their own calls (the call's ``agent_id``), never another agent's, appeals
  findings on them, and cannot confirm or overturn anything.

The store turns a :class:`Scope` into SQL; the review pages and the CLI ask a :class:`User` what it may do.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qa_audio.errors import QAError
from qa_audio.i18n import N_

ROLES = ("admin", "supervisor", "agent")
ROLE_NAMES_ZH = {"admin": "管理员", "supervisor": "质检主管", "agent": "坐席"}


class AccessError(QAError):
    """A user may not do this (wrong role, a call outside their scope, their own decision)."""


@dataclass(frozen=True)
class Scope:
    """Which calls a user sees: ``agent_id`` set, only that agent's; else ``teams`` (None: every team)."""

    teams: tuple[str, ...] | None = None
    agent_id: str | None = None
    nothing: bool = False                 # an agent account without an agent id sees no call

    @property
    def everything(self) -> bool:
        return not self.nothing and self.agent_id is None and self.teams is None

    def allows(self, metadata: Mapping[str, Any]) -> bool:
        """Whether a call with this metadata (``agent_id``, ``team``) is in scope."""
        if self.nothing:
            return False
        if self.agent_id is not None:
            return metadata.get("agent_id") == self.agent_id
        return self.teams is None or metadata.get("team") in self.teams


EVERYTHING = Scope()


@dataclass(frozen=True)
class User:
    """An account of the review page."""

    name: str
    role: str = "supervisor"
    teams: tuple[str, ...] = ()           # a supervisor's teams (none: every team); unused for other roles
    agent_id: str | None = None           # an agent's own id, as the calls' metadata gives it
    active: bool = True

    def __str__(self) -> str:
        return self.name

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_agent(self) -> bool:
        return self.role == "agent"

    @property
    def reviews(self) -> bool:
        """May confirm and overturn findings, rule on appeals, calibrate (admins and supervisors)."""
        return self.role in ("admin", "supervisor")

    @property
    def scope(self) -> Scope:
        if self.role == "agent":
            return Scope(agent_id=self.agent_id) if self.agent_id else Scope(nothing=True)
        if self.role == "supervisor" and self.teams:
            return Scope(teams=self.teams)
        return EVERYTHING

    @property
    def role_zh(self) -> str:
        return ROLE_NAMES_ZH.get(self.role, self.role)

    def describe(self) -> str:
        """One line for ``qa-audio users list``."""
        what = {"agent": f"agent id {self.agent_id or '(none: sees no call)'}",
                "supervisor": "teams " + (", ".join(self.teams) if self.teams else "(all)"),
                "admin": "all calls, manages users"}[self.role] if self.role in ROLES else ""
        return f"{self.name}\t{self.role}\t{what}\t{'active' if self.active else 'disabled'}"


def check_user_fields(name: str, role: str, teams: Sequence[str], agent_id: str | None) -> None:
    """The fields of a new or changed account, checked before anything is stored."""
    if not name or len(name) > 64 or any(ch.isspace() or not ch.isprintable() for ch in name):
        raise AccessError.of(N_("user name %(name)r: 1-64 printable characters, no spaces"), name=name)
    if role not in ROLES:
        raise AccessError.of(N_("role %(role)r: expected one of %(roles)s"), role=role, roles=', '.join(ROLES))
    if role == "agent" and not agent_id:
        raise AccessError.of(N_("%(name)s: an agent account needs --agent-id (the id the calls' metadata gives the "
                                "agent)"),
                             name=name)
    if role != "agent" and agent_id:
        raise AccessError.of(N_("%(name)s: --agent-id is only for agent accounts"), name=name)
    if role != "supervisor" and teams:
        raise AccessError.of(N_("%(name)s: --team is only for supervisors (an admin sees all, an agent their own "
                                "calls)"),
                             name=name)
    if any(not t.strip() for t in teams):
        raise AccessError.of(N_("%(name)s: an empty team name"), name=name)


def require_reviewer(user: User) -> None:
    if not user.reviews:
        raise AccessError.of(N_("%(name)s is an %(role)s: only supervisors and admins confirm or overturn findings"),
                             name=user.name, role=user.role)
