"""Call timing from per-channel speech, tones and music: rings, holds, overtalk, dead air.

Pure functions of spans; no audio here. ``analyze_timing`` turns what the
earlier stages found into the ``timing`` block of the result contract.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from qa_audio.config import TimingSettings
from qa_audio.judge.holds import Hold, find_holds
from qa_audio.judge.turns import (
    Interruption,
    TimedText,
    find_interruptions,
    is_acknowledgement,
    longest_unacknowledged,
    utterances_of,
)
from qa_audio.signal.hangup import Hangup
from qa_audio.signal.spans import Span, gaps, round_s, subtract, total_s
from qa_audio.signal.vad import MIN_RUN_S

DEAD_AIR_SPEECH_MIN_S = 0.3   # an utterance this long ends a silence (shorter: a click, a breath, a far voice)


@dataclass(frozen=True)
class Timing:
    answered: bool | None
    rings: int | None
    ring_to_answer_s: float | None
    answer_s: float | None
    holds: tuple[Hold, ...]
    interruptions: tuple[Interruption, ...] | None
    dead_air: tuple[Span, ...]
    talk: dict = field(hash=False, compare=False)
    settings: TimingSettings = field(default_factory=TimingSettings)
    hangup: Hangup | None = None           # who hung up first, as the audio shows it

    def to_dict(self) -> dict:
        return {
            "answered": self.answered,
            "rings": self.rings,
            "ring_to_answer_s": round_s(self.ring_to_answer_s),
            "answer_s": round_s(self.answer_s),
            "holds": [h.to_dict() for h in self.holds],
            "interruptions": None if self.interruptions is None else [i.to_dict() for i in self.interruptions],
            "dead_air": [d.to_dict() for d in self.dead_air],
            "talk": self.talk,
            "hangup": self.hangup.to_dict() if self.hangup else None,
        }


def analyze_timing(*, duration_s: float, agent: list[Span] | None, customer: list[Span] | None,
                   mono: list[Span] | None = None, ring_bursts: Sequence[Span] = (), music: Sequence[Span] = (),
                   tone: Sequence[Span] = (), hold_cues_s: Sequence[float] = (), levels_dbfs: dict | None = None,
                   voiced: dict | None = None, heard: dict | None = None, rates_cps: dict | None = None,
                   words: dict[str, list[TimedText]] | None = None, acknowledgements: frozenset[str] = frozenset(),
                   inventions: frozenset[str] = frozenset(), hangup: Hangup | None = None,
                   settings: TimingSettings) -> Timing:
    """The timing block. Stereo: pass ``agent`` and ``customer``; mono: pass ``mono`` only.

    ``words`` (per party, from the transcript) and ``acknowledgements`` tell backchannels from
    interruptions by what was said (``inventions``: what Whisper writes for a sound that is no
    speech, counted as no words); without them, by length alone.
    """
    stereo = mono is None
    opener = agent if stereo else mono
    answer_s = opener[0].start_s if opener else None
    if answer_s is not None:
        # regions are built leniently, joined and padded: the answer is the first real run of speech frames
        runs = [v for v in (voiced or {}).get("agent" if stereo else "mixed", []) if v.duration_s >= MIN_RUN_S]
        answer_s = runs[0].start_s if runs else answer_s
    cutoff = answer_s if answer_s is not None else duration_s
    rings_before = [b for b in ring_bursts if b.start_s < cutoff]
    ring_to_answer = (answer_s - rings_before[0].start_s) if (answer_s is not None and rings_before) else None

    everyone = list(agent or []) + list(customer or []) + list(mono or [])
    agent_like = list(agent or []) if stereo else list(mono or [])
    holds = [] if answer_s is None else find_holds(
        agent=agent_like, music=list(music), hold_cues_s=list(hold_cues_s), after_s=answer_s,
        call_end_s=duration_s, settings=settings, customer=list(customer or []),
        customer_said=None if not (words and stereo) else [
            Span(w.start_s, max(w.end_s, w.start_s)) for w in words.get("customer", [])
            if not is_acknowledgement(w.text, acknowledgements | inventions)])

    interruptions = None
    if stereo:
        fine = {"agent": (voiced or {}).get("agent", agent) or [],
                "customer": (voiced or {}).get("customer", customer) or []}
        said = words or {}
        interruptions = sorted(
            [i for by, other in (("agent", "customer"), ("customer", "agent"))
             for i in find_interruptions(fine[by], fine[other], by=by, settings=settings, words=said.get(by),
                                         acknowledgements=acknowledgements, inventions=inventions,
                                         other_heard=(heard or {}).get(other), other_words=said.get(other))],
            key=lambda i: i.at_s)

    dead_air: list[Span] = []
    if answer_s is not None and everyone:
        speech = everyone
        if voiced and words:
            # with the transcript, silence is judged on frame-level speech and on the words, not on the
            # regions sent to Whisper: those are joined and padded, and background voices in the room
            # (babble) bridge them across a silent stretch; speech the strict gate loses in loud line
            # noise still has its words
            spoken = [u for party in voiced.values()
                      for u in utterances_of(list(party), gap_s=settings.utterance_gap_s)
                      if u.duration_s >= DEAD_AIR_SPEECH_MIN_S]
            spoken += [Span(w.start_s, max(w.end_s, w.start_s)) for party in words.values() for w in party
                       if not is_acknowledgement(w.text, inventions)]
            speech = spoken or everyone
        quiet = gaps(speech, start_s=answer_s, end_s=max(s.end_s for s in everyone))
        quiet = subtract(quiet, [Span(h.start_s, h.end_s) for h in holds] + list(music) + list(tone))
        dead_air = [q for q in quiet if q.duration_s >= settings.dead_air_min_s]

    talk = _talk(agent=agent, customer=customer, mono=mono, voiced=voiced, levels_dbfs=levels_dbfs,
                 rates_cps=rates_cps, dead_air=dead_air, settings=settings)
    return Timing(answer_s is not None, len(rings_before), ring_to_answer, answer_s, tuple(holds),
                  None if interruptions is None else tuple(interruptions), tuple(dead_air), talk, settings,
                  hangup if stereo else None)


def _talk(*, agent: list[Span] | None, customer: list[Span] | None, mono: list[Span] | None, voiced: dict | None,
          levels_dbfs: dict | None, rates_cps: dict | None, dead_air: list[Span], settings: TimingSettings) -> dict:
    """Talk time and share, loudness and speaking rate per party; overtalk, dead air, who spoke last."""
    stereo = mono is None
    parties = {"agent": agent, "customer": customer} if stereo else {"mixed": mono}
    talked = {name: total_s(spans or []) for name, spans in parties.items()}
    all_talk = sum(talked.values()) or 1.0
    level = {name: None if not levels_dbfs or levels_dbfs.get(name) is None else round(float(levels_dbfs[name]), 1)
             for name in parties}
    talk: dict[str, Any] = {name: {"talk_s": round_s(talked[name]), "share": round_s(talked[name] / all_talk),
                                   "level_dbfs": level[name]} for name in parties}
    for name, rate in (rates_cps or {}).items():
        if name in talk:
            talk[name]["rate_cps"] = rate
    if stereo and (agent or customer):
        last = {name: max((s.end_s for s in spans or []), default=-1.0) for name, spans in parties.items()}
        talk["last_speaker"] = max(last, key=lambda name: last[name])
    if stereo:
        # overtalk seconds from frame-level speech when given (regions are padded and joined)
        va = (voiced or {}).get("agent", agent) or []
        vc = (voiced or {}).get("customer", customer) or []
        talk["overtalk_s"] = round_s(total_s(va) + total_s(vc) - total_s(list(va) + list(vc)))
    else:
        talk["overtalk_s"] = None
    talk["dead_air_s"] = round_s(sum(d.duration_s for d in dead_air))
    if stereo:
        longest = longest_unacknowledged(customer or [], agent or [], turn_gap_s=settings.turn_gap_s)
        talk["longest_unacknowledged_s"] = round_s(longest.duration_s) if longest else 0.0
        talk["unacknowledged"] = [[round_s(longest.start_s), round_s(longest.end_s)]] if longest else []
    return talk


def speaking_rates(utterances) -> dict[str, float | None]:
    """Characters per second per party, over the time their recognised words span."""
    chars: dict[str, int] = {}
    seconds: dict[str, float] = {}
    for u in utterances:
        spoken = sum(1 for ch in u.text if ch.isalnum())
        chars[u.channel] = chars.get(u.channel, 0) + spoken
        seconds[u.channel] = seconds.get(u.channel, 0.0) + max(0.0, u.end_s - u.start_s)
    return {party: round_s(chars[party] / seconds[party]) if seconds[party] > 0 else None for party in chars}
