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

A mono call is first split into two voices (:mod:`qa_audio.signal.diarize`); its transcript is cut at the
voice turns (each word goes to the speaker at its midpoint) and the same decision is made between the two
voices, the first to speak standing for the configured agent (an inbound call's agent answers first; a
tie keeps it). Two voices the encoder can hardly tell apart (``diarization.min_separation``) make the
decision doubtful whatever the words say.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from qa_audio.config import ChannelSettings
from qa_audio.judge.analysis import Acoustics
from qa_audio.judge.matching import PhraseMatcher
from qa_audio.signal.diarize import Diarization
from qa_audio.speech.normalize import TextNormalizer
from qa_audio.speech.transcribe import utterance_of
from qa_audio.speech.words import Utterance

_OTHER = {"agent": "customer", "customer": "agent"}


@dataclass(frozen=True)
class RoleDecision:
    """Which channel is whose, how that was decided, and on what evidence."""

    agent: int                        # stereo: the agent's channel; mono: its voice (0 = the first to speak)
    customer: int
    how: str                          # configured (detection off) | confirmed | swapped | doubtful
    evidence: dict[int, dict[str, int]] = field(default_factory=dict)   # channel → lexicon → hits
    scores: dict[int, float] = field(default_factory=dict)              # channel → weighted evidence
    source: str = "channels"          # channels (stereo) | voices (mono, diarized)
    separation: float | None = None   # mono: how distinct the two voices were (1 - cosine)

    @property
    def doubtful(self) -> bool:
        return self.how == "doubtful"

    def to_dict(self) -> dict:
        out = {"agent": self.agent, "customer": self.customer, "how": self.how,
               "confidence": "low" if self.doubtful else "high", "source": self.source,
               "evidence": {str(ch): dict(lex) for ch, lex in self.evidence.items()},
               "scores": {str(ch): score for ch, score in self.scores.items()}}
        if self.separation is not None:
            out["separation"] = round(self.separation, 4)
        return out


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
    """The roles of a stereo call (None for mono: see :func:`decide_voices`)."""
    if set(acoustics.roles) != {"agent", "customer"}:
        return None
    return _decide(utterances, acoustics.roles["agent"], acoustics.roles["customer"], matcher=matcher,
                   settings=settings)


def _decide(utterances: tuple[Utterance, ...], agent: int, customer: int, *, matcher: PhraseMatcher,
            settings: ChannelSettings) -> RoleDecision:
    """Which of two sides is the agent; ``utterances`` are labelled as configured (agent is side ``agent``)."""
    if not settings.detect:
        return RoleDecision(agent, customer, "configured")
    weights = dict(settings.agent_evidence)
    side = {"agent": agent, "customer": customer}
    evidence = {side[role]: agent_evidence(utterances, role, matcher=matcher, settings=settings)
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


def decide_voices(diarization: Diarization, utterances: tuple[Utterance, ...], *, matcher: PhraseMatcher,
                  settings: ChannelSettings, normalizer: TextNormalizer,
                  min_separation: float) -> tuple[RoleDecision, Diarization, tuple[Utterance, ...]]:
    """A mono call's roles: which voice is the agent, the turns named by party, the transcript cut by voice."""
    first = {"0": "agent", "1": "customer"}
    pieces = split_by_speaker(utterances, diarization.relabelled(first), normalizer=normalizer)
    decision = _decide(pieces, 0, 1, matcher=matcher, settings=settings)
    doubtful = diarization.separation < min_separation and decision.how != "configured" and bool(
        diarization.speech_s("0") and diarization.speech_s("1"))
    decision = dataclasses.replace(decision, source="voices", separation=diarization.separation,
                                   how="doubtful" if doubtful else decision.how)
    if decision.agent == 0:
        return decision, diarization.relabelled(first), pieces
    swapped_names = {"0": "customer", "1": "agent"}
    return decision, diarization.relabelled(swapped_names), swap_parties(pieces)


BREATH_GAP_S = 0.3     # words closer than this are one breath group: one speaker says them all


def split_by_speaker(utterances: tuple[Utterance, ...] | list[Utterance], diarization: Diarization, *,
                     normalizer: TextNormalizer) -> tuple[Utterance, ...]:
    """Each utterance cut into breath groups (words less than ``BREATH_GAP_S`` apart), each group given to the
    voice whose turns cover most of its words' time (a speaker never changes inside a word or a breath), and
    consecutive groups of one voice joined: one utterance per run of one speaker (channel: that speaker)."""
    out = []
    for u in utterances:
        if not u.words:
            out.append(dataclasses.replace(u, channel=diarization.speaker_at((u.start_s + u.end_s) / 2) or u.channel))
            continue
        groups: list[list] = [[u.words[0]]]
        for prev, w in zip(u.words, u.words[1:]):
            if w.start_s - prev.end_s >= BREATH_GAP_S:
                groups.append([])
            groups[-1].append(w)
        run: list = []
        current = None
        for group in groups:
            who = diarization.voice_of(group[0].start_s, group[-1].end_s) or u.channel
            if run and who != current:
                out.append(utterance_of(str(current), run, normalizer))
                run = []
            run += group
            current = who
        out.append(utterance_of(str(current), run, normalizer))
    return tuple(sorted(out, key=lambda x: x.start_s))


def swap_parties(utterances: tuple[Utterance, ...]) -> tuple[Utterance, ...]:
    return tuple(dataclasses.replace(u, channel=_OTHER.get(u.channel, u.channel)) for u in utterances)


def swap_roles(acoustics: Acoustics, utterances: tuple[Utterance, ...]) -> tuple[Acoustics, tuple[Utterance, ...]]:
    """The same call with agent and customer exchanged: every per-party record relabelled, nothing recomputed
    (each channel's speech, music, echo and line end were found the same way whoever it carries)."""
    def swapped(mapping: dict) -> dict:
        return {_OTHER.get(k, k): v for k, v in mapping.items()}

    sound = dataclasses.replace(acoustics, roles=swapped(acoustics.roles), regions=swapped(acoustics.regions),
                                levels_dbfs=swapped(acoustics.levels_dbfs), voiced=swapped(acoustics.voiced),
                                line_ends=swapped(acoustics.line_ends), heard=swapped(acoustics.heard))
    return sound, tuple(sorted(swap_parties(utterances), key=lambda u: u.start_s))
