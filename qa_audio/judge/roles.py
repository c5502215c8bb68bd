"""Who is the agent: which channel of a stereo call carries the agent, decided from what each side says.

A recorder or trunk that puts the customer on the agent's channel turns every agent rule upside down.
The configured roles (``channels.agent``/``customer``) stand unless the call says otherwise: each
channel's transcript is searched for what only an agent says (the organisation's name, an employee
number, the help offer, 还有其他…, 请稍等, 感谢您的耐心等待: ``channels.agent_evidence``, lexicon →
weight, each lexicon counted once per channel). When the other channel's evidence beats the configured
one's by ``channels.swap_margin`` the roles are swapped; when the two are closer than that (and not both
nothing), the side with more evidence is the agent's (a tie keeps the configuration), the decision is
doubtful and the verdict becomes ``review``: the same decision whichever channel the agent is on.
``channels.detect: false`` forces the configured roles. The decision and its evidence go into the result as
``audio.roles``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from qa_audio.config import ChannelSettings
from qa_audio.judge.analysis import Acoustics
from qa_audio.judge.matching import PhraseMatcher
from qa_audio.speech.words import Utterance

_OTHER = {"agent": "customer", "customer": "agent"}


@dataclass(frozen=True)
class RoleDecision:
    """Which channel is whose, how that was decided, and on what evidence."""

    agent: int
    customer: int
    how: str                          # configured (detection off) | confirmed | swapped | doubtful
    evidence: dict[int, dict[str, int]] = field(default_factory=dict)   # channel → lexicon → hits
    scores: dict[int, float] = field(default_factory=dict)              # channel → weighted evidence

    @property
    def doubtful(self) -> bool:
        return self.how == "doubtful"

    def to_dict(self) -> dict:
        return {"agent": self.agent, "customer": self.customer, "how": self.how,
                "confidence": "low" if self.doubtful else "high",
                "evidence": {str(ch): dict(lex) for ch, lex in self.evidence.items()},
                "scores": {str(ch): score for ch, score in self.scores.items()}}


def agent_evidence(utterances: list[Utterance] | tuple[Utterance, ...], role: str, *, matcher: PhraseMatcher,
                   settings: ChannelSettings) -> dict[str, int]:
    """Hits of each agent-evidence lexicon in ``role``'s transcript (lexicons with none are left out)."""
    preps = [matcher.prepare(u) for u in utterances if u.channel == role and u.text.strip()]
    out = {}
    for lexicon, _weight in settings.agent_evidence:
        hits = sum(len(matcher.find(p, lexicon)) for p in preps)
        if hits:
            out[lexicon] = hits
    return out


def decide_roles(acoustics: Acoustics, utterances: tuple[Utterance, ...], *, matcher: PhraseMatcher,
                 settings: ChannelSettings) -> RoleDecision | None:
    """The roles of a stereo call (None for mono: nothing to decide between)."""
    if set(acoustics.roles) != {"agent", "customer"}:
        return None
    agent, customer = acoustics.roles["agent"], acoustics.roles["customer"]
    if not settings.detect:
        return RoleDecision(agent, customer, "configured")
    weights = dict(settings.agent_evidence)
    evidence = {acoustics.roles[role]: agent_evidence(utterances, role, matcher=matcher, settings=settings)
                for role in ("agent", "customer")}
    scores = {ch: round(sum(weights[lex] for lex in found), 3) for ch, found in evidence.items()}
    lead = scores[customer] - scores[agent]
    if lead >= settings.swap_margin:
        return RoleDecision(customer, agent, "swapped", evidence, scores)
    if lead <= -settings.swap_margin or not (scores[agent] or scores[customer]):
        return RoleDecision(agent, customer, "confirmed", evidence, scores)
    # too close to call either way: the side that says more is the agent (a tie keeps the configuration),
    # and a supervisor listens; the same decision whichever channel the recorder put the agent on. A call
    # with a silent side is never turned round on so little: an agent who never speaks stays unscorable
    both_speak = all(any(u.text.strip() for u in utterances if u.channel == role) for role in ("agent", "customer"))
    if lead > 0 and both_speak:
        return RoleDecision(customer, agent, "doubtful", evidence, scores)
    return RoleDecision(agent, customer, "doubtful", evidence, scores)


def swap_roles(acoustics: Acoustics, utterances: tuple[Utterance, ...]) -> tuple[Acoustics, tuple[Utterance, ...]]:
    """The same call with agent and customer exchanged: every per-party record relabelled, nothing recomputed
    (each channel's speech, music, echo and line end were found the same way whoever it carries)."""
    def swapped(mapping: dict) -> dict:
        return {_OTHER.get(k, k): v for k, v in mapping.items()}

    sound = dataclasses.replace(acoustics, roles=swapped(acoustics.roles), regions=swapped(acoustics.regions),
                                levels_dbfs=swapped(acoustics.levels_dbfs), voiced=swapped(acoustics.voiced),
                                line_ends=swapped(acoustics.line_ends), heard=swapped(acoustics.heard))
    words = tuple(dataclasses.replace(u, channel=_OTHER.get(u.channel, u.channel)) for u in utterances)
    return sound, tuple(sorted(words, key=lambda u: u.start_s))
