"""Turn-taking: interruptions judged on utterances and their words, backchannels, the other party's echo
transcribed on this channel, and the longest stretch a customer talks unacknowledged. Pure functions of
spans and words."""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Protocol

from pypinyin import Style, lazy_pinyin

from qa_audio.config import TimingSettings
from qa_audio.signal.spans import Span, covered_s, gaps, merge, round_s
from qa_audio.signal.vad import MIN_RUN_S
from qa_audio.speech.normalize import TextNormalizer, fuzzy_syllable
from qa_audio.speech.transcribe import utterance_of
from qa_audio.speech.words import Utterance


@dataclass(frozen=True)
class Interruption:
    at_s: float
    by: str
    overlap_s: float

    def to_dict(self) -> dict:
        return {"at_s": round_s(self.at_s), "by": self.by, "overlap_s": round_s(self.overlap_s)}


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


def split_at_replies(utterances: list[Utterance], *, min_gap_s: float, acknowledgements: frozenset[str],
                     normalizer: TextNormalizer) -> list[Utterance]:
    """Each party's utterances cut where the other party replied in a pause of its words: one turn each.

    A speech region that line noise or babble bridged for a minute holds all of one party's turns
    (the other spoke in its pauses); the rules count turns ("the last 2 turns"), so they see the
    turns the conversation shows. A pause of at least ``min_gap_s`` is a turn's end when an
    utterance of the other party that is more than an acknowledgement (嗯, 好的) lies within it.
    """
    replies = [u for u in utterances if u.text and not is_acknowledgement(u.text, acknowledgements)]
    out = []
    for u in utterances:
        others = [r for r in replies if r.channel != u.channel and r.start_s < u.end_s and r.end_s > u.start_s]
        cuts = [i + 1 for i, (w, nxt) in enumerate(zip(u.words, u.words[1:]))
                if nxt.start_s - w.end_s >= min_gap_s
                and any(w.end_s <= (r.start_s + r.end_s) / 2 <= nxt.start_s for r in others)]
        if u.channel not in ("agent", "customer") or not cuts:
            out.append(u)
            continue
        for a, b in zip([0, *cuts], [*cuts, len(u.words)]):
            out.append(utterance_of(u.channel, list(u.words[a:b]), normalizer))
    return out


WORD_BACKED_SHARE = 0.4       # of a word's time that the party's own speech frames must cover


TALK_THROUGH_S = 0.5          # the other goes on this long after a short utterance: they talked through it


ISOLATED_S = 0.5              # ... and the speaker is silent this long after it: a backchannel, not a cut-in


ACK_REACH_S = 0.25            # acknowledgement words ending this close to an utterance's end make it a backchannel


OTHER_UTTERANCE_GAP_S = 0.8   # the interrupted party's utterances (noisy speech breaks up more)


WORDS_REACH_S = 0.3           # the interrupted party's words end no earlier / start no later than this from the onset


UNHEARD_GOES_ON_S = 0.6       # where Whisper heard no word of theirs there, this much of their speech in the next


UNHEARD_WINDOW_S = 1.5        # ... 1.5 s: line noise breaks into short bursts, speech Whisper dropped does not


ECHO_TEXT_MIN_SYLLABLES = 3   # an utterance this long (syllables) whose words ...


UNSURE_WORDS_P = 0.5          # a short utterance's words below this mean probability count as none
ECHO_CONTEXT_S = 1.0          # the words this far around an utterance are compared with the other channel's
ECHO_RUN_SYLLABLES = 4        # ... or repeat a run this long (syllables) and
ECHO_RUN_SHARE = 0.45         # ... this much of it
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


class _ByTime:
    """Items (spans or words) in start order, and the run of them that can reach a stretch of time:
    every item that overlaps [lo_s, hi_s] is in :meth:`near` (a binary search, with the longest item's
    length as the look-back), so a long call's checks stay local instead of scanning the whole call."""

    def __init__(self, items):
        self.items = sorted(items, key=lambda x: x.start_s)
        self.starts = [x.start_s for x in self.items]
        self.longest_s = max((x.end_s - x.start_s for x in self.items), default=0.0)

    def bounds(self, lo_s: float, hi_s: float) -> tuple[int, int]:
        return bisect_left(self.starts, lo_s - self.longest_s), bisect_right(self.starts, hi_s)

    def near(self, lo_s: float, hi_s: float) -> list:
        a, b = self.bounds(lo_s, hi_s)
        return self.items[a:b]


def _backed(words: list[TimedText] | None, frames: list[Span]) -> list[TimedText]:
    """The words a party's own speech frames back (Whisper also transcribes the other party's echo)."""
    index = _ByTime(frames)
    return sorted(
        (
            w
            for w in words or []
            if covered_s(index.near(w.start_s, w.end_s), Span(w.start_s, w.end_s))
            >= WORD_BACKED_SHARE * max(w.end_s - w.start_s, 0.05)
        ),
        key=lambda w: w.start_s,
    )


def _goes_on_in_words(
    words: list[TimedText], onset_s: float, turn_end_s: float, acknowledgements: frozenset[str]
) -> bool | None:
    """Do the interrupted party's words go on at ``onset_s``? True when a word of theirs reaches the
    onset (Whisper often drops the words spoken under a cut-in, so one ending shortly before it, or
    starting shortly after, will do) and they are more than acknowledgements from there on; False
    when they are only acknowledgements (a 是的 after they had finished); None when no word reaches it
    (Whisper heard nothing there: noise, or speech it dropped)."""
    around = [w for w in words if w.end_s >= onset_s - WORDS_REACH_S and w.start_s < turn_end_s]
    if not around or around[0].start_s > onset_s + WORDS_REACH_S:
        return None
    return not is_acknowledgement("".join(w.text for w in around), acknowledgements)


LOOP_MIN_CHARS = 5            # Whisper looping over background voices: this much text after an onset ...
LOOP_BEFORE_S = 6.0           # ... written already in the seconds before it
VOICES_WINDOW_S = 1.5         # the other party's words this long after an onset ...


def _background_voices(words: list[TimedText], backed: list[TimedText], onset_s: float) -> bool:
    """Whether the other party's words going on after ``onset_s`` are Whisper's reading of background
    voices (babble in the room), not the party speaking: text it loops on (the same phrase written again
    and again: 向茶匹印象我的概软还款 three times over babble at 10 dB) that the party's own speech frames
    mostly do not back (a phrase Whisper writes twice over real speech, at a window's edge, is backed)."""
    after = [w for w in words if onset_s - 0.05 <= w.start_s < onset_s + VOICES_WINDOW_S]
    if not after:
        return False
    text = "".join(ch for w in after for ch in w.text if ch.isalnum())
    before = "".join(ch for w in words if onset_s - LOOP_BEFORE_S <= w.start_s < onset_s - 0.05
                     for ch in w.text if ch.isalnum())
    if len(text) < LOOP_MIN_CHARS or text[:LOOP_MIN_CHARS] not in before:
        return False
    ids = {id(w) for w in backed}
    return sum(id(w) in ids for w in after) < 0.5 * len(after)


def _syllables(text: str) -> list[str]:
    return [fuzzy_syllable(x) for x in lazy_pinyin("".join(ch for ch in text if ch.isalnum()), style=Style.NORMAL)]


def is_echo_text(mine: str, theirs: str) -> bool:
    """Words that repeat the other party's words of the same moment, syllable for syllable (homophones
    and Whisper's usual confusions allowed): their echo, transcribed on this channel (a line echo 30 dB
    down is still clear to Whisper, which hears it a little differently each time)."""
    said, heard = _syllables(mine), _syllables(theirs)
    if len(said) < ECHO_TEXT_MIN_SYLLABLES or not heard:
        return False
    blocks = SequenceMatcher(None, said, heard, autojunk=False).get_matching_blocks()
    same = sum(b.size for b in blocks)
    # half of it repeated; or a run of ECHO_RUN_SYLLABLES repeated word for word inside a stretch that is
    # partly the party's own speech (the words of a second either side are compared)
    return same >= ECHO_TEXT_SHARE * len(said) or (max(b.size for b in blocks) >= ECHO_RUN_SYLLABLES
                                                   and same >= ECHO_RUN_SHARE * len(said))


def utterances_of(voiced: list[Span], *, gap_s: float) -> list[Span]:
    """A party's utterances: frame-level speech joined across pauses shorter than ``gap_s``."""
    return merge([v for v in voiced if v.duration_s >= MIN_RUN_S], gap_s=gap_s)


def find_interruptions(
    speaker: list[Span],
    other: list[Span],
    *,
    by: str,
    settings: TimingSettings,
    words: list[TimedText] | None = None,
    acknowledgements: frozenset[str] = frozenset(),
    inventions: frozenset[str] = frozenset(),
    other_heard: list[Span] | None = None,
    other_words: list[TimedText] | None = None,
) -> list[Interruption]:
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
    their_all = sorted(other_words or [], key=lambda w: w.start_s)
    them = _Other(
        fine=fine,
        turns=merge(fine, gap_s=settings.turn_gap_s),
        utterances=merge(fine, gap_s=OTHER_UTTERANCE_GAP_S),
        words=_backed(their_all, fine),
        all_words=their_all,
    )
    # a word counts only where the party's own speech frames back it: Whisper also transcribes the
    # other party's echo (and invents stock phrases such as 中文字幕 for a lone sound: ``inventions``)
    mine_all = sorted(words or [], key=lambda w: w.start_s)
    words = _backed(mine_all, [v for v in speaker if v.duration_s >= MIN_RUN_S])
    found: list[Interruption] = []
    taken: set[int] = set()
    spoke_until = -1.0  # the end of the speaker's last substantive utterance
    index = _Indexed(them, words, mine_all)
    for i, utt in enumerate(mine):
        following_s = mine[i + 1].start_s if i + 1 < len(mine) else float("inf")
        first, near, near_words, near_mine = index.around(utt)
        if not _substantive(utt, following_s, near_words, near, mine_all=near_mine, settings=settings,
                            acknowledgements=acknowledgements, inventions=inventions):
            continue
        previous, spoke_until = spoke_until, utt.end_s
        onset = _word_onset(utt, mine[i - 1].end_s if i else 0.0, near_mine, near, settings=settings)
        if previous > onset - 1.0:  # the speaker goes on with their own turn
            continue
        k = _turn_cut_into(onset, near, settings=settings, ignore=acknowledgements | inventions)
        if k is None or first + k in taken:
            continue
        found.append(Interruption(onset, by, min(near.turns[k].end_s, utt.end_s) - onset))
        taken.add(first + k)
    return found


HORIZON_S = 60.0    # every check of an utterance looks at most a few seconds past it, and along the other's turn


class _Indexed:
    """The other party and the speaker's words, cut down to what can matter for one utterance: what lies
    within ``HORIZON_S`` of it and, for the other, along every turn that reaches that stretch. The same
    verdicts as on the whole call (unless a run of words goes on without a pause for more than a
    minute), at a cost that does not grow with the call's length."""

    def __init__(self, them: _Other, words: list[TimedText], mine_all: list[TimedText]):
        self.them = them
        self.turns = _ByTime(them.turns)
        self.fine, self.utterances = _ByTime(them.fine), _ByTime(them.utterances)
        self.their_words, self.their_all = _ByTime(them.words), _ByTime(them.all_words)
        self.words, self.mine_all = _ByTime(words), _ByTime(mine_all)

    def around(self, utt: Span) -> tuple[int, _Other, list[TimedText], list[TimedText]]:
        lo, hi = utt.start_s - HORIZON_S, utt.end_s + HORIZON_S
        first, last = self.turns.bounds(lo, hi)
        turns = self.turns.items[first:last]
        hi = max([hi] + [t.end_s for t in turns])
        near = _Other(fine=self.fine.near(lo, hi), turns=turns, utterances=self.utterances.near(lo, hi),
                      words=self.their_words.near(lo, hi), all_words=self.their_all.near(lo, hi))
        return first, near, self.words.near(lo, hi), self.mine_all.near(lo, hi)


@dataclass(frozen=True)
class _Other:
    """The party who may be interrupted: their speech frames, turns, utterances and words."""

    fine: list[Span]
    turns: list[Span]
    utterances: list[Span]
    words: list[TimedText]  # backed by their own speech frames
    all_words: list[TimedText]  # everything Whisper wrote on their channel (for telling echo)


def _substantive(
    utt: Span,
    following_s: float,
    words: list[TimedText],
    them: _Other,
    *,
    mine_all: list[TimedText],
    settings: TimingSettings,
    acknowledgements: frozenset[str],
    inventions: frozenset[str],
) -> bool:
    """Is ``utt`` more than a backchannel, and this party's own speech (not the other's echo)?"""
    # a short utterance the other talks straight through, after which the speaker says nothing more for a
    # while, is a backchannel whatever Whisper made of it (明白 heard as 能忍): no floor was taken
    then = min([following_s] + [w.start_s for w in words if utt.end_s - 0.05 <= w.start_s < following_s])
    if (
        utt.duration_s <= settings.backchannel_max_s
        and then - utt.end_s >= ISOLATED_S
        and not _words_run_on(utt, mine_all, inventions)
        and any(u.start_s < utt.start_s and u.end_s >= utt.end_s + TALK_THROUGH_S for u in them.utterances)
    ):
        return False
    # the other party's echo, transcribed on this channel: what Whisper wrote here around the utterance
    # repeats what it wrote on the other channel at that moment (it copies a whole stretch, so the words
    # of a second either side are compared, backed by speech frames or not)
    near = "".join(w.text for w in mine_all if w.end_s >= utt.start_s - ECHO_CONTEXT_S
                   and w.start_s <= utt.end_s + ECHO_CONTEXT_S)
    if is_echo_text(near, "".join(w.text for w in them.all_words if w.end_s >= utt.start_s - 2 * ECHO_CONTEXT_S
                                  and w.start_s <= utt.end_s + 2 * ECHO_CONTEXT_S)):
        return False
    said = [w for w in words if utt.start_s - 0.15 <= (w.start_s + w.end_s) / 2 <= utt.end_s + 0.15]
    if said and is_acknowledgement("".join(w.text for w in said), inventions):
        said = []
    # a short utterance whose words Whisper itself doubts (恩人 for 嗯嗯 at p 0.3-0.4) has no words to go by
    if (said and utt.duration_s <= settings.backchannel_max_s
            and sum(getattr(w, "probability", 1.0) for w in said) / len(said) < UNSURE_WORDS_P):
        said = []
    if said:
        return not _backchannel_words(said, utt, acknowledgements)
    return utt.duration_s > settings.backchannel_max_s


WORD_ONSET_MAX_S = 1.0        # an utterance's words may start this much before its speech frames do


def _word_onset(utt: Span, previous_end_s: float, mine_all: list[TimedText], them: _Other, *,
                settings: TimingSettings) -> float:
    """When the speaker started: the start of the utterance's frames, or earlier where their words run
    fluently into it (each next word less than ``utterance_gap_s`` after the last), every one a word
    Whisper is fairly sure of (background voices give doubtful words) and not the other party's words
    echoed. Line noise hides a sentence's first syllables from the frame-level gate, not from
    Whisper (这个情况 at 18.3 s, the frames from 19.0 s)."""
    lead = [w for w in mine_all if previous_end_s <= w.start_s < utt.start_s and w.end_s > utt.start_s - 1.0]
    chain: list[TimedText] = []
    reach_s = utt.start_s
    for w in reversed(lead):
        if w.end_s < reach_s - settings.utterance_gap_s or getattr(w, "probability", 1.0) < UNSURE_WORDS_P:
            break
        chain.insert(0, w)
        reach_s = w.start_s
    if not chain:
        return utt.start_s
    heard = "".join(w.text for w in them.all_words
                    if w.end_s >= chain[0].start_s - ECHO_CONTEXT_S and w.start_s <= utt.start_s + ECHO_CONTEXT_S)
    if is_echo_text("".join(w.text for w in chain), heard):     # the other party's echo, not the speaker
        return utt.start_s
    return max(chain[0].start_s, utt.start_s - WORD_ONSET_MAX_S)


def _words_run_on(utt: Span, mine_all: list[TimedText], inventions: frozenset[str]) -> bool:
    """The speaker's words go on fluently past a short utterance: from a word of it, each next word
    starting less than ``ISOLATED_S`` after the last, for ``ISOLATED_S`` or more past its end, with
    words Whisper is fairly sure of. In loud line noise the speech frames break a sentence into short
    bursts (打断一下 | 您的…); its words, backed by frames or not, show it is one."""
    start = next((i for i, w in enumerate(mine_all)
                  if utt.start_s - 0.15 <= (w.start_s + w.end_s) / 2 <= utt.end_s + 0.15), None)
    if start is None:
        return False
    end_s, run = mine_all[start].end_s, []
    for w in mine_all[start + 1:]:
        if w.start_s - end_s >= ISOLATED_S:
            break
        end_s = max(end_s, w.end_s)
        if w.start_s >= utt.end_s - 0.05:
            run.append(w)
    run = [w for w in run if not is_acknowledgement(w.text, inventions)]
    if not run or end_s < utt.end_s + ISOLATED_S:
        return False
    return sum(getattr(w, "probability", 1.0) for w in run) / len(run) >= UNSURE_WORDS_P


def _turn_cut_into(onset: float, them: _Other, *, settings: TimingSettings, ignore: frozenset[str]) -> int | None:
    """The index of the other's turn that an utterance starting at ``onset`` cuts into, or None."""
    k = next((k for k, t in enumerate(them.turns) if t.start_s <= onset < t.end_s), None)
    if k is None or them.turns[k].start_s + settings.interruption_min_prior_s > onset:
        return None
    if covered_s(them.fine, Span(onset, them.turns[k].end_s)) < settings.interruption_floor_s:
        return None
    # mid-utterance: an utterance of the other spans the onset, or one starts with it and is more than a
    # backchannel (not: the other had stopped, the speaker took the turn, the other said 嗯 later)
    floor = settings.interruption_floor_s
    spans_onset = any(u.start_s < onset and u.end_s >= onset + floor for u in them.utterances)
    starts_with = any(
        abs(u.start_s - onset) <= settings.utterance_gap_s and u.duration_s > settings.backchannel_max_s
        for u in them.utterances
    )
    if not (spans_onset or starts_with):
        return None
    if _background_voices(them.all_words, them.words, onset):
        return None
    if them.words:
        going_on = _goes_on_in_words(them.words, onset, them.turns[k].end_s, ignore)
        if going_on is False or (
            going_on is None and covered_s(them.fine, Span(onset, onset + UNHEARD_WINDOW_S)) < UNHEARD_GOES_ON_S
        ):
            return None
    return k


def longest_unacknowledged(customer: list[Span], agent: list[Span], *, turn_gap_s: float) -> Span | None:
    """The longest stretch of a customer turn with no agent speech at all (not even 嗯/对) (LST-2)."""
    best: Span | None = None
    for turn in merge(customer, gap_s=turn_gap_s):
        for quiet in gaps(agent, start_s=turn.start_s, end_s=turn.end_s):
            if best is None or quiet.duration_s > best.duration_s:
                best = quiet
    return best
