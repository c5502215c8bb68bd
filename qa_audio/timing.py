"""Call timing from per-channel speech, tones and music: rings, holds, overtalk, dead air.

Pure functions of spans; no audio here. ``analyze_timing`` turns what the
earlier stages found into the ``timing`` block of the result contract.
"""
from __future__ import annotations

from difflib import SequenceMatcher
from dataclasses import dataclass, field
from typing import Protocol

from pypinyin import Style, lazy_pinyin

from .config import TimingSettings
from .hangup import Hangup
from .normalize import fuzzy_syllable
from .spans import Span, covered_s, gaps, intersect, merge, subtract, total_s
from .vad import MIN_RUN_S

HOLD_REQUEST_REACH_S = 3.0   # a hold starts at the request's end if the music follows within this
CHECK_IN_MAX_S = 20.0        # agent speech between two music stretches up to this long is a check-in
CHECK_IN_AGENT_MAX_S = 8.0      # ... in which the agent says no more than this
CHECK_IN_CUSTOMER_MAX_S = 1.5   # ... and the customer no more than this (else it is a conversation)
CHECK_IN_TURN_GAP_S = 2.0       # the agent's check-in is one turn: no pause this long inside it


def _r(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


@dataclass(frozen=True)
class Interruption:
    at_s: float
    by: str
    overlap_s: float

    def to_dict(self) -> dict:
        return {"at_s": _r(self.at_s), "by": self.by, "overlap_s": _r(self.overlap_s)}


@dataclass(frozen=True)
class Hold:
    start_s: float
    end_s: float
    kind: str                      # "music" or "silence"
    waits: tuple[Span, ...]        # stretches without agent speech, split by check-ins

    @property
    def longest_wait_s(self) -> float:
        return max((w.duration_s for w in self.waits), default=self.end_s - self.start_s)

    def to_dict(self) -> dict:
        return {"start_s": _r(self.start_s), "end_s": _r(self.end_s), "kind": self.kind,
                "longest_wait_s": _r(self.longest_wait_s), "waits": [w.to_dict() for w in self.waits]}


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
            "ring_to_answer_s": _r(self.ring_to_answer_s),
            "answer_s": _r(self.answer_s),
            "holds": [h.to_dict() for h in self.holds],
            "interruptions": None if self.interruptions is None else [i.to_dict() for i in self.interruptions],
            "dead_air": [d.to_dict() for d in self.dead_air],
            "talk": self.talk,
            "hangup": self.hangup.to_dict() if self.hangup else None,
        }


class TimedText(Protocol):
    start_s: float
    end_s: float
    text: str


def is_acknowledgement(text: str, acknowledgements: frozenset[str]) -> bool:
    """True when ``text`` (normalised words) is nothing but acknowledgements: 嗯, 对对对, 好的好的, 我明白了."""
    text = "".join(ch for ch in text if ch.isalnum())
    if not text or not acknowledgements:
        return False
    longest = max(len(a) for a in acknowledgements)
    reach = [False] * (len(text) + 1)        # reach[i]: text[:i] splits into acknowledgements
    reach[0] = True
    for i in range(len(text)):
        if reach[i]:
            for n in range(1, min(longest, len(text) - i) + 1):
                if text[i:i + n] in acknowledgements:
                    reach[i + n] = True
    return reach[-1]


WORD_BACKED_SHARE = 0.4       # of a word's time that the party's own speech frames must cover
TALK_THROUGH_S = 0.5          # the other goes on this long after a short utterance: they talked through it
ISOLATED_S = 0.5              # ... and the speaker is silent this long after it: a backchannel, not a cut-in
ACK_REACH_S = 0.25            # acknowledgement words ending this close to an utterance's end make it a backchannel
OTHER_UTTERANCE_GAP_S = 0.8   # the interrupted party's utterances (noisy speech breaks up more)
WORDS_REACH_S = 0.3           # the interrupted party's words end no earlier / start no later than this from the onset
UNHEARD_GOES_ON_S = 0.6       # where Whisper heard no word of theirs there, this much of their speech in the next
UNHEARD_WINDOW_S = 1.5        # ... 1.5 s: line noise breaks into short bursts, speech Whisper dropped does not
ECHO_TEXT_MIN_SYLLABLES = 3   # an utterance this long (syllables) whose words ...
ECHO_TEXT_SHARE = 0.5         # ... repeat the other party's words of the moment this much is their echo


def _backchannel_words(said: list[TimedText], utt: Span, acknowledgements: frozenset[str]) -> bool:
    """The utterance's words are acknowledgements up to (about) its end. Whisper's word times are loose:
    the first word of the speaker's next utterance often leaks into a 对对 just before it."""
    ack_end = None
    for i in range(len(said), 0, -1):
        if is_acknowledgement("".join(w.text for w in said[:i]), acknowledgements):
            ack_end = said[i - 1].end_s
            break
    return ack_end is not None and (ack_end >= utt.end_s - ACK_REACH_S or len(said) == i)


def _backed(words: list[TimedText] | None, frames: list[Span]) -> list[TimedText]:
    """The words a party's own speech frames back (Whisper also transcribes the other party's echo)."""
    return sorted((w for w in words or []
                   if covered_s(frames, Span(w.start_s, w.end_s)) >= WORD_BACKED_SHARE * max(w.end_s - w.start_s, 0.05)),
                  key=lambda w: w.start_s)


def _goes_on_in_words(words: list[TimedText], onset_s: float, turn_end_s: float,
                      acknowledgements: frozenset[str]) -> bool | None:
    """Do the interrupted party's words go on at ``onset_s``? True when a word of theirs reaches the
    onset (Whisper often drops the words spoken under a cut-in, so one ending shortly before it, or
    starting shortly after, will do) and they are more than acknowledgements from there on; False
    when they are only acknowledgements (a 是的 after they had finished); None when no word reaches it
    (Whisper heard nothing there: noise, or speech it dropped)."""
    around = [w for w in words if w.end_s >= onset_s - WORDS_REACH_S and w.start_s < turn_end_s]
    if not around or around[0].start_s > onset_s + WORDS_REACH_S:
        return None
    return not is_acknowledgement("".join(w.text for w in around), acknowledgements)


def _syllables(text: str) -> list[str]:
    return [fuzzy_syllable(x) for x in lazy_pinyin("".join(ch for ch in text if ch.isalnum()), style=Style.NORMAL)]


def is_echo_text(mine: str, theirs: str) -> bool:
    """Words that repeat the other party's words of the same moment, syllable for syllable (homophones
    and Whisper's usual confusions allowed): their echo, transcribed on this channel (a line echo 30 dB
    down is still clear to Whisper, which hears it a little differently each time)."""
    said, heard = _syllables(mine), _syllables(theirs)
    if len(said) < ECHO_TEXT_MIN_SYLLABLES or not heard:
        return False
    same = sum(b.size for b in SequenceMatcher(None, said, heard, autojunk=False).get_matching_blocks())
    return same >= ECHO_TEXT_SHARE * len(said)


def utterances_of(voiced: list[Span], *, gap_s: float) -> list[Span]:
    """A party's utterances: frame-level speech joined across pauses shorter than ``gap_s``."""
    return merge([v for v in voiced if v.duration_s >= MIN_RUN_S], gap_s=gap_s)


def find_interruptions(speaker: list[Span], other: list[Span], *, by: str, settings: TimingSettings,
                       words: list[TimedText] | None = None, acknowledgements: frozenset[str] = frozenset(),
                       inventions: frozenset[str] = frozenset(),
                       other_heard: list[Span] | None = None,
                       other_words: list[TimedText] | None = None) -> list[Interruption]:
    """Utterances of ``speaker`` that start while ``other`` is mid-utterance and are not backchannels.

    Judged on utterances (frame-level speech split at pauses of ``utterance_gap_s``), never on
    turns, so a backchannel followed within a second by the speaker's next utterance stays a
    backchannel. An utterance is a backchannel when it is short (``backchannel_max_s``), the other
    talks straight through it and the speaker says nothing more right after it; when its recognised
    words are only acknowledgements (``acknowledgements``, the backchannel lexicon); or, where
    Whisper returned no words for it, when it is short. Any other utterance is an
    interruption when it starts inside a turn of the other party (speech with pauses under
    ``turn_gap_s``) that began at least ``interruption_min_prior_s`` before, the other goes on
    speaking at least ``interruption_floor_s`` after the onset, whatever the overlap's length, and
    the speaker is starting rather than going on with a turn of their own (no substantive speech
    of theirs in the second before), and the other is mid-utterance (an utterance of theirs spans the
    onset, or one longer than a backchannel starts with it). One interruption per turn of the other.

    Where the transcript has words of the other party (``other_words``), their going on must be
    words too: a word of theirs ending after the onset that is not an acknowledgement (line noise,
    echo and a 是的 after the other had finished are no turn being cut into). The speaker's own
    words also bridge the pauses noisy speech breaks into (a cut-in split by noise is not a
    backchannel followed by silence).
    """
    mine = utterances_of(speaker, gap_s=settings.utterance_gap_s)
    # is the other speaking? their frame-level speech under the strict gate, and under the lenient one
    # (``other_heard``): noisy speech survives the strict gate only in fragments
    fine = merge([v for v in list(other) + list(other_heard or []) if v.duration_s >= MIN_RUN_S])
    theirs = merge(fine, gap_s=settings.turn_gap_s)
    spoken = merge(fine, gap_s=OTHER_UTTERANCE_GAP_S)
    own = [v for v in speaker if v.duration_s >= MIN_RUN_S]
    # a word counts only where the party's own speech frames back it: Whisper also transcribes the
    # other party's echo (and invents stock phrases such as 中文字幕 for a lone sound: ``inventions``)
    words = _backed(words, own)
    their_all = sorted(other_words or [], key=lambda w: w.start_s)
    their_words = _backed(their_all, fine)
    found: list[Interruption] = []
    taken: set[int] = set()
    spoke_until = -1.0             # the end of the speaker's last substantive utterance
    for i, utt in enumerate(mine):
        # a short utterance the other talks straight through, after which the speaker says nothing more for a
        # while, is a backchannel whatever Whisper made of it (明白 heard as 能忍): no floor was taken
        then = mine[i + 1].start_s if i + 1 < len(mine) else float("inf")
        then = min([then] + [w.start_s for w in words if utt.end_s - 0.05 <= w.start_s < then])
        if (utt.duration_s <= settings.backchannel_max_s and then - utt.end_s >= ISOLATED_S
                and any(u.start_s < utt.start_s and u.end_s >= utt.end_s + TALK_THROUGH_S for u in spoken)):
            continue
        said = [w for w in words if utt.start_s - 0.15 <= (w.start_s + w.end_s) / 2 <= utt.end_s + 0.15]
        if said and is_acknowledgement("".join(w.text for w in said), inventions):
            said = []
        if said and is_echo_text("".join(w.text for w in said), "".join(
                w.text for w in their_all if w.end_s >= utt.start_s - 0.5 and w.start_s <= utt.end_s + 0.5)):
            continue                                    # the other party's echo, not this one speaking
        if said:
            if _backchannel_words(said, utt, acknowledgements):
                continue
        elif utt.duration_s <= settings.backchannel_max_s:
            continue
        previous, spoke_until = spoke_until, utt.end_s
        onset = utt.start_s
        if previous > onset - 1.0:                      # the speaker goes on with their own turn
            continue
        k = next((k for k, t in enumerate(theirs) if t.start_s <= onset < t.end_s), None)
        if k is None or k in taken or theirs[k].start_s + settings.interruption_min_prior_s > onset:
            continue
        if covered_s(fine, Span(onset, theirs[k].end_s)) < settings.interruption_floor_s:
            continue
        # mid-utterance: an utterance of the other spans the onset, or one starts with it and is more than a
        # backchannel (not: the other had stopped, the speaker took the turn, the other said 嗯 later)
        spans_onset = any(u.start_s < onset and u.end_s >= onset + settings.interruption_floor_s for u in spoken)
        starts_with = any(abs(u.start_s - onset) <= settings.utterance_gap_s and u.duration_s > settings.backchannel_max_s
                          for u in spoken)
        if not (spans_onset or starts_with):
            continue
        if their_words:
            going_on = _goes_on_in_words(their_words, onset, theirs[k].end_s, acknowledgements | inventions)
            if going_on is False or (going_on is None and covered_s(
                    fine, Span(onset, onset + UNHEARD_WINDOW_S)) < UNHEARD_GOES_ON_S):
                continue
        found.append(Interruption(onset, by, min(theirs[k].end_s, utt.end_s) - onset))
        taken.add(k)
    return found


def find_holds(*, agent: list[Span], music: list[Span], hold_cues_s: list[float], after_s: float,
               call_end_s: float, settings: TimingSettings, customer: list[Span] | None = None) -> list[Hold]:
    """Holds with music (split into waits by agent check-ins) and silent holds the agent announced.

    Music on hold of ``music_min_s`` or more (the detector's own minimum) is a hold whatever its
    length; an announced silence is one from ``hold_min_s``. Two stretches belong to one hold when
    the agent only checks in between them (see ``_check_in``); a conversation makes them two holds.
    """
    holds: list[Hold] = []
    music = [m for m in merge(music) if m.end_s > after_s]
    groups: list[list[Span]] = []
    for span in music:
        if groups and _check_in(Span(groups[-1][-1].end_s, span.start_s), agent=agent, customer=customer or [],
                                cues_s=list(hold_cues_s)):
            groups[-1].append(span)
            continue
        groups.append([span])
    for group in groups:
        onset, offset = group[0].start_s, group[-1].end_s
        before = [a.end_s for a in agent if a.end_s <= onset + 0.5]
        start = before[-1] if before and onset - before[-1] <= HOLD_REQUEST_REACH_S else onset
        start = min(start, onset)
        # the agent resumes with the first speech that goes on past the music's end
        after = [max(a.start_s, offset - 0.5) for a in agent if a.end_s > offset + 0.2]
        end = max(after[0], offset) if after else min(call_end_s, max(offset, call_end_s))
        waits = tuple(w for w in gaps(agent, start_s=start, end_s=end) if w.duration_s > 0.5)
        holds.append(Hold(start, end, "music", waits or (Span(start, end),)))
    for cue in sorted(hold_cues_s):
        if any(h.start_s - HOLD_REQUEST_REACH_S <= cue <= h.end_s for h in holds):
            continue
        after = [a.start_s for a in agent if a.start_s > cue + 0.05]
        end = after[0] if after else call_end_s
        # music that starts before the agent speaks again is this hold: it starts at the request
        joined = next((i for i, h in enumerate(holds) if cue < h.start_s <= end), None)
        if joined is not None:
            h = holds[joined]
            waits = tuple(w for w in gaps(agent, start_s=cue, end_s=h.end_s) if w.duration_s > 0.5)
            holds[joined] = Hold(cue, h.end_s, h.kind, waits or (Span(cue, h.end_s),))
            continue
        if end - cue >= settings.hold_min_s:
            holds.append(Hold(cue, end, "silence", (Span(cue, end),)))
    return _join_check_ins(sorted(holds, key=lambda h: h.start_s), agent=agent, customer=customer or [],
                           cues_s=list(hold_cues_s))


def _check_in(between: Span, *, agent: list[Span], customer: list[Span], cues_s: list[float]) -> bool:
    """The agent speaks briefly between two holds: a check-in ("还在为您查询，请您再稍等"), not a conversation.

    Brief: the stretch is at most ``CHECK_IN_MAX_S`` with one agent turn of at most
    ``CHECK_IN_AGENT_MAX_S``. A check-in that asks the caller to keep waiting (a hold request in it) is one whatever the
    customer channel carries; otherwise the customer says at most ``CHECK_IN_CUSTOMER_MAX_S``.
    """
    said = intersect(agent, [between])
    if (between.duration_s > CHECK_IN_MAX_S or total_s(said) > CHECK_IN_AGENT_MAX_S
            or len(merge(said, gap_s=CHECK_IN_TURN_GAP_S)) > 1):          # one agent turn, not a dialogue
        return False
    if any(between.start_s <= cue <= between.end_s + 0.5 for cue in cues_s):
        return True
    return covered_s(customer, between) <= CHECK_IN_CUSTOMER_MAX_S


def _join_check_ins(holds: list[Hold], *, agent: list[Span], customer: list[Span], cues_s: list[float]) -> list[Hold]:
    """Neighbouring holds separated by a check-in are one hold with more than one wait."""
    out: list[Hold] = []
    for hold in holds:
        if out and _check_in(Span(out[-1].end_s, hold.start_s), agent=agent, customer=customer, cues_s=cues_s):
            last = out[-1]
            kind = "music" if "music" in (last.kind, hold.kind) else last.kind
            out[-1] = Hold(last.start_s, max(last.end_s, hold.end_s), kind, last.waits + hold.waits)
        else:
            out.append(hold)
    return out


def analyze_timing(*, duration_s: float, agent: list[Span] | None, customer: list[Span] | None,
                   mono: list[Span] | None = None, ring_bursts: list[Span] = (), music: list[Span] = (),
                   tone: list[Span] = (), hold_cues_s: list[float] = (), levels_dbfs: dict | None = None,
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
        fine = [v for v in (voiced or {}).get("agent" if stereo else "mixed", []) if v.duration_s >= MIN_RUN_S]
        answer_s = fine[0].start_s if fine else answer_s
    answered = answer_s is not None
    cutoff = answer_s if answered else duration_s
    rings_before = [b for b in ring_bursts if b.start_s < cutoff]
    rings = len(rings_before)
    ring_to_answer = (answer_s - rings_before[0].start_s) if (answered and rings_before) else None

    everyone = list(agent or []) + list(customer or []) + list(mono or [])
    agent_like = list(agent) if stereo else list(mono)
    holds = find_holds(agent=agent_like, music=list(music), hold_cues_s=list(hold_cues_s),
                       after_s=answer_s or 0.0, call_end_s=duration_s, settings=settings,
                       customer=list(customer or [])) if answered else []

    interruptions = None
    if stereo:
        fine = {"agent": (voiced or {}).get("agent", agent), "customer": (voiced or {}).get("customer", customer)}
        said = words or {}
        interruptions = sorted(
            find_interruptions(fine["agent"], fine["customer"], by="agent", settings=settings,
                               words=said.get("agent"), acknowledgements=acknowledgements, inventions=inventions,
                               other_heard=(heard or {}).get("customer"), other_words=said.get("customer"))
            + find_interruptions(fine["customer"], fine["agent"], by="customer", settings=settings,
                                 words=said.get("customer"), acknowledgements=acknowledgements,
                                 inventions=inventions, other_heard=(heard or {}).get("agent"),
                                 other_words=said.get("agent")),
            key=lambda i: i.at_s)

    dead_air: list[Span] = []
    if answered and everyone:
        last_speech = max(s.end_s for s in everyone)
        quiet = gaps(everyone, start_s=answer_s, end_s=last_speech)
        quiet = subtract(quiet, [Span(h.start_s, h.end_s) for h in holds] + list(music) + list(tone))
        dead_air = [q for q in quiet if q.duration_s >= settings.dead_air_min_s]

    parties = {"agent": agent, "customer": customer} if stereo else {"mixed": mono}
    talked = {name: total_s(spans or []) for name, spans in parties.items()}
    all_talk = sum(talked.values()) or 1.0
    talk = {name: {"talk_s": _r(talked[name]), "share": _r(talked[name] / all_talk),
                   "level_dbfs": None if not levels_dbfs or levels_dbfs.get(name) is None
                   else round(float(levels_dbfs[name]), 1)}
            for name in parties}
    for name, rate in (rates_cps or {}).items():
        if name in talk:
            talk[name]["rate_cps"] = rate
    if stereo and (agent or customer):
        last = {name: max((s.end_s for s in spans), default=-1.0) for name, spans in parties.items()}
        talk["last_speaker"] = max(last, key=last.get)
    if stereo:
        # overtalk seconds from frame-level speech when given (regions are padded and joined)
        va = (voiced or {}).get("agent", agent)
        vc = (voiced or {}).get("customer", customer)
        talk["overtalk_s"] = _r(total_s(va) + total_s(vc) - total_s(list(va) + list(vc)))
    else:
        talk["overtalk_s"] = None
    talk["dead_air_s"] = _r(sum(d.duration_s for d in dead_air))
    if stereo:
        longest = longest_unacknowledged(customer or [], agent or [], turn_gap_s=settings.turn_gap_s)
        talk["longest_unacknowledged_s"] = _r(longest.duration_s) if longest else 0.0
        talk["unacknowledged"] = [[_r(longest.start_s), _r(longest.end_s)]] if longest else []
    return Timing(answered, rings, ring_to_answer, answer_s, tuple(holds),
                  None if interruptions is None else tuple(interruptions), tuple(dead_air), talk, settings,
                  hangup if stereo else None)


def longest_unacknowledged(customer: list[Span], agent: list[Span], *, turn_gap_s: float) -> Span | None:
    """The longest stretch of a customer turn with no agent speech at all (not even 嗯/对) (LST-2)."""
    best: Span | None = None
    for turn in merge(customer, gap_s=turn_gap_s):
        for quiet in gaps(agent, start_s=turn.start_s, end_s=turn.end_s):
            if best is None or quiet.duration_s > best.duration_s:
                best = quiet
    return best


def speaking_rates(utterances) -> dict[str, float | None]:
    """Characters per second per party, over the time their recognised words span."""
    chars: dict[str, int] = {}
    seconds: dict[str, float] = {}
    for u in utterances:
        spoken = sum(1 for ch in u.text if ch.isalnum())
        chars[u.channel] = chars.get(u.channel, 0) + spoken
        seconds[u.channel] = seconds.get(u.channel, 0.0) + max(0.0, u.end_s - u.start_s)
    return {party: _r(chars[party] / seconds[party]) if seconds[party] > 0 else None for party in chars}
