"""Re-check a phrase against the audio before a phrase rule decides on it.

Whisper base mis-hears real voices (25-32% CER on telephone speech), so a required phrase can
be missing from the transcript though it was said, and a fuzzy pinyin match can find a phrase
that was not. Before such a decision counts, the rule's window is examined again:

* **hotword decode**: the window is decoded again with the phrase as a faster-whisper hotword.
  If the phrase now appears (exactly or as a homophone), the biased transcript is scored by
  Whisper's own decoder against the same audio (CTranslate2 ``Whisper.align``: the probability of
  each token given the audio and the tokens before it) and compared with the unbiased decode of
  the window: biased decoding that invents a phrase makes the transcript less likely.
* **substitution**: otherwise the phrase replaces the stretch of the unbiased decode that sounds
  most like it, and that transcript is scored the same way.

The margin is the mean token log-probability of the candidate transcript minus the unbiased
one's. A missing phrase is ``confirmed`` above its margin, ``undecided`` in a band below it (the
verdict becomes ``review``), else ``rejected``; a fuzzy hit is kept only when the hotword decode
confirms it. The margins are in the config (``recheck:``) and were set on near-miss phrases of
real voices (``scripts/eval_phrases.py``).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np

from qa_audio.config import RecheckSettings
from qa_audio.i18n import N_, Message
from qa_audio.signal.audio import as_float
from qa_audio.speech.normalize import TextNormalizer
from qa_audio.speech.transcribe import DOUBTFUL_LOGPROB
from qa_audio.speech.words import Utterance

WINDOW_PAD_S = 0.3
NO_SPEECH_PROB = 0.6     # faster-whisper's no-speech skip: above this and a doubtful log-probability, no text


@dataclass(frozen=True)
class Check:
    """One phrase re-checked against one stretch of one channel."""

    rule: str
    lexicon: str
    phrase: str
    channel: str
    start_s: float
    end_s: float
    kind: str              # "missing" (a required phrase not heard) or "fuzzy" (a fuzzy hit to confirm)
    how: str               # "hotword" or "substitution"
    margin: float          # mean token log-probability: candidate minus unbiased decode
    verdict: str           # "confirmed", "undecided" or "rejected"
    heard: str             # the candidate transcript that was scored

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Check:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


class AudioChecker:
    """Whisper's decoder as a judge of given transcripts (one per loaded model)."""

    def __init__(self, model, *, normalizer: TextNormalizer, settings: RecheckSettings, language: str = "zh"):
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        self.model = model
        self.normalizer = normalizer
        self.settings = settings
        self.tokenizer = Tokenizer(model.hf_tokenizer, True, task="transcribe", language=language)
        self.suppress_tokens = get_suppressed_tokens(self.tokenizer, [-1])

    # ---------------------------------------------------------------- building blocks
    def decode(self, encoded, *, hotwords: str | None = None) -> str:
        """The window's transcript at temperature 0, beam 5, from its encoding (no second encoder pass): what
        ``WhisperModel.transcribe(without_timestamps=True, temperature=0)`` returns for a clip of up to 30 s,
        including its no-speech skip."""
        output, _frames = encoded
        prompt = self.model.get_prompt(self.tokenizer, [], without_timestamps=True, hotwords=hotwords)
        result = self.model.model.generate(output, [prompt], beam_size=5, patience=1.0, length_penalty=1.0,
                                           max_length=self.model.max_length, return_scores=True,
                                           return_no_speech_prob=True, suppress_blank=True,
                                           suppress_tokens=self.suppress_tokens)[0]
        tokens = result.sequences_ids[0]
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
        if result.no_speech_prob > NO_SPEECH_PROB and avg_logprob <= DOUBTFUL_LOGPROB:
            return ""
        return self.normalizer.simplify(self.tokenizer.decode(tokens)).strip()

    def encode(self, audio_16k: np.ndarray):
        from faster_whisper.audio import pad_or_trim

        features = self.model.feature_extractor(audio_16k)[..., :-1]   # as WhisperModel.transcribe frames it
        frames = min(features.shape[-1], 3000)
        return self.model.encode(pad_or_trim(features)), frames

    def log_probability(self, encoded, text: str) -> float:
        """Mean log-probability per token of ``text`` given the audio (teacher-forced)."""
        ids = self.tokenizer.encode(text)
        if not ids:
            return -99.0
        output, frames = encoded
        result = self.model.model.align(output, self.tokenizer.sot_sequence, [ids], frames)[0]
        probs = np.maximum(np.asarray(result.text_token_probs, dtype=np.float64), 1e-9)
        return float(np.mean(np.log(probs)))

    # ---------------------------------------------------------------- the two questions
    def window(self, samples: np.ndarray, *, rate_hz: int, start_s: float, end_s: float) -> np.ndarray:
        a = max(0, int((start_s - WINDOW_PAD_S) * rate_hz))
        b = min(len(samples), int((min(end_s, start_s + self.settings.max_window_s) + WINDOW_PAD_S) * rate_hz))
        return np.ascontiguousarray(as_float(samples[a:b]))

    def open(self, audio_16k: np.ndarray) -> Examined:
        """One window's audio, encoded once and decoded without bias, for any number of questions."""
        encoded = self.encode(audio_16k)
        plain = self.decode(encoded)
        return Examined(self, audio_16k, encoded, plain, self.log_probability(encoded, plain))


@dataclass
class Examined:
    """A window under examination: its encoding, unbiased decode and that decode's score, and the
    hotword decodes made so far (one per set of hotwords)."""

    checker: AudioChecker
    audio: np.ndarray
    encoded: object
    plain: str
    base: float

    def __post_init__(self) -> None:
        self._biased: dict[str, str] = {}

    @property
    def heard_words(self) -> bool:
        """Whether the unbiased decode heard anything: over a window Whisper hears nothing in, no
        candidate transcript can be weighed against it, and nothing is confirmed."""
        return any(ch.isalnum() for ch in self.plain)

    def biased(self, phrases: list[str]) -> str:
        key = " ".join(phrases)[: self.checker.settings.max_hotword_chars]
        if key not in self._biased:
            self._biased[key] = self.checker.decode(self.encoded, hotwords=key)
        return self._biased[key]

    def margin(self, text: str) -> float:
        """How much likelier (mean token log-probability) ``text`` is than the unbiased decode, given the audio."""
        return self.checker.log_probability(self.encoded, text) - self.base

    def substituted(self, phrase: str) -> tuple[str, float]:
        """The unbiased decode with ``phrase`` in place of what sounds most like it, and its margin."""
        candidate = substitute(self.plain, phrase)
        return candidate, self.margin(candidate)

    def missing(self, phrases: list[str], *, found, hotwords: list[str] | None = None
                ) -> tuple[str, str, float, str, str]:
        """Was any of ``phrases`` said here? ``found(text, phrase)`` is the rules' matcher.

        Substitution first (Whisper's decoder scores the unbiased decode with the phrase put in
        place of what sounds most like it), then a decode with ``hotwords`` (default: the phrases).
        Returns (phrase, how, margin, verdict, heard) of the best candidate.
        """
        s = self.checker.settings
        best = ("", "substitution", -99.0, "rejected", self.plain)
        if not self.heard_words:
            return best
        for phrase in phrases:
            candidate, margin = self.substituted(phrase)
            if margin >= s.substitution_margin:
                return phrase, "substitution", margin, "confirmed", candidate
            verdict = "undecided" if margin >= s.substitution_margin - s.undecided_band else "rejected"
            if margin > best[2]:
                best = (phrase, "substitution", margin, verdict, candidate)
        if s.hotword_decode:
            biased = self.biased(hotwords or phrases)
            heard = [p for p in phrases if biased != self.plain and found(biased, p)]
            if heard:
                margin = self.margin(biased)
                if margin >= s.hotword_margin:
                    return heard[0], "hotword", margin, "confirmed", biased
        return best

    def fuzzy(self, phrase: str, *, found, found_any=None, required: bool = False) -> tuple[str, float, str, str]:
        """Is a fuzzy hit of ``phrase`` real? (how, margin, verdict, heard)

        ``found_any(text)``: whether ``text`` holds any phrase of the hit's lexicon exactly (or as a
        homophone). The window's unbiased decode holding one settles it (what the rule asks was said,
        in other words of its lexicon: 谢谢您的来电 for 感谢您的来电); so does, for a ``required``
        phrase, the substitution test a missing phrase passes; so does the hotword decode, at the
        fuzzy margin (the only test a banned phrase's fuzzy hit gets)."""
        if not self.heard_words:
            return "plain", -99.0, "rejected", self.plain
        if found_any is not None and found_any(self.plain):
            return "plain", 0.0, "confirmed", self.plain
        if required:      # a required phrase heard fuzzily passes at least the test a missing one passes
            candidate, margin = self.substituted(phrase)
            if margin >= self.checker.settings.substitution_margin:
                return "substitution", margin, "confirmed", candidate
        biased = self.biased([phrase])
        if not (found(biased, phrase) or (found_any is not None and found_any(biased))):
            return "hotword", -99.0, "rejected", biased
        margin = self.margin(biased)
        return "hotword", margin, ("confirmed" if margin >= self.checker.settings.fuzzy_margin else "rejected"), biased


def substitute(text: str, phrase: str) -> str:
    """``text`` with its stretch that sounds most like ``phrase`` (same length, pinyin) replaced by it."""
    from pypinyin import Style, lazy_pinyin

    if not text:
        return phrase
    want = lazy_pinyin(phrase, style=Style.NORMAL)
    best, at = -1.0, 0
    for i in range(0, max(1, len(text) - len(phrase) + 1)):
        have = lazy_pinyin(text[i: i + len(phrase)], style=Style.NORMAL)
        same = sum(x == y for x, y in zip(have, want)) + 0.5 * sum(bool(x and y and x[0] == y[0])
                                                                  for x, y in zip(have, want))
        if same > best:
            best, at = same, i
    return text[:at] + phrase + text[at + len(phrase):]


# --------------------------------------------------------------------------- rules ↔ checks
FUZZY_CONTEXT_S = 4.0     # a fuzzy hit is heard again with up to this much of its utterance either side


def context_window(utterances: Sequence[Utterance], channel: str, start_s: float, end_s: float
                   ) -> tuple[str, float, float]:
    """The window a fuzzy hit is re-checked in: the hit with its own utterance around it (up to
    FUZZY_CONTEXT_S either side), as the phrase evaluation examines whole utterances; Whisper hears
    half a second of audio badly."""
    around = [u for u in utterances if u.channel == channel and u.start_s < end_s and u.end_s > start_s]
    if not around:
        return channel, start_s, end_s
    return (channel, max(min(u.start_s for u in around), start_s - FUZZY_CONTEXT_S),
            min(max(u.end_s for u in around), end_s + FUZZY_CONTEXT_S))


def _said(matcher, channel: str, start_s: float, end_s: float, text: str):
    from qa_audio.speech.words import Word

    return matcher.prepare(Utterance(channel, start_s, end_s, text, (Word(start_s, end_s, text, 1.0),)))


def heard_exactly(matcher, lexicon: str, text: str, phrase: str | None = None) -> bool:
    """Whether ``phrase`` of ``lexicon`` (None: any of its phrases) is in ``text`` exactly or as a
    homophone (never fuzzily)."""
    prep = _said(matcher, "any", 0.0, 1.0, text)
    return any((phrase is None or h.phrase == phrase) and h.how in ("exact", "pinyin")
               for h in matcher.find(prep, lexicon))


def checkable(finding) -> bool:
    """A phrase rule's failure (or a pass of a required phrase that rests on a fuzzy hit) the audio can settle."""
    rule = finding.rule
    if not (rule.is_phrase_rule and not rule.metrics and rule.around is None and rule.repeat_back is None
            and not rule.n_of):
        return False
    return finding.status == "fail" or (finding.status == "pass" and rule.expect == "present"
                                        and any(e.get("how") == "fuzzy" for e in finding.evidence))


def missing_lexicons(finding, matcher) -> list[str]:
    """The required lexicons of a failed ``present`` rule that none of its window's turns contains."""
    lexicons = finding.rule.all_of or finding.rule.any_of
    preps = [_said(matcher, e["channel"], e["start_s"], e["end_s"], e["text"]) for e in finding.evidence]
    return [lex for lex in lexicons if not any(matcher.find(p, lex) for p in preps)]


def plan(finding, matcher, config) -> list[tuple[str, str, list[str], str, float, float]]:
    """What to re-check for one finding: (kind, lexicon, phrases, channel, start_s, end_s)."""
    rule = finding.rule
    if not checkable(finding) or not finding.evidence:
        return []
    if finding.status == "pass":          # a required phrase found only fuzzily: was it said?
        return [("fuzzy", e["lexicon"], [e["phrase"]], e["channel"], e["start_s"], e["end_s"])
                for e in finding.evidence if e.get("how") == "fuzzy"]
    if rule.expect == "present":
        channel = rule.role if rule.role != "any" else finding.evidence[0]["channel"]
        start = min(e["start_s"] for e in finding.evidence)
        end = max(e["end_s"] for e in finding.evidence)
        if rule.window.turns == "last":
            start = max(start, end - config.recheck.max_window_s)
        out = []
        for lexicon in missing_lexicons(finding, matcher):
            entries = config.lexicons[lexicon].entries
            phrases = [e.text for e in entries if e.regex is None][: config.recheck.max_phrases]
            if phrases:
                out.append(("missing", lexicon, phrases, channel, start, end))
        return out
    return [
        ("fuzzy", e["lexicon"], [e["phrase"]], e["channel"], e["start_s"], e["end_s"])
        for e in finding.evidence
        if e.get("how") == "fuzzy"
    ]


def apply(findings: list, checks: tuple[Check, ...]) -> list:
    """The findings with the audio's answers applied: a missing phrase confirmed makes the rule pass,
    an undecided one makes it a low-confidence failure (verdict review); a fuzzy hit the audio does
    not confirm stops counting."""
    from qa_audio.judge.rules import Finding

    out = []
    for f in findings:
        mine = [c for c in checks if c.rule == f.rule.id]
        if not mine or not checkable(f):
            out.append(f)
            continue
        rule = f.rule
        if f.status == "pass":
            out.append(_fuzzy_presence(f, mine))
            continue
        evidence = tuple(_evidence(c) for c in mine)
        if rule.expect == "present":
            wanted = {c.lexicon for c in mine if c.kind == "missing"}
            confirmed = {c.lexicon for c in mine if c.kind == "missing" and c.verdict == "confirmed"}
            undecided = {c.lexicon for c in mine if c.kind == "missing" and c.verdict == "undecided"}
            done = confirmed == wanted if rule.all_of else bool(confirmed)
            maybe = (confirmed | undecided) == wanted if rule.all_of else bool(undecided)
            if done:
                out.append(
                    Finding(
                        rule,
                        "pass",
                        0.0,
                        False,
                        False,
                        Message(N_("%(detail)s; then confirmed against the audio: %(lexicons)s"),
                                {"detail": f.explanation, "lexicons": ", ".join(sorted(confirmed))}),
                        evidence + f.evidence,
                    )
                )
            elif maybe:
                out.append(
                    replace(
                        f,
                        low_confidence=True,
                        evidence=evidence + f.evidence,
                        explanation=Message(N_("%(detail)s; the audio may hold %(lexicons)s: listen before acting"),
                                       {"detail": f.explanation, "lexicons": ", ".join(sorted(undecided))}),
                    )
                )
            else:
                out.append(replace(f, evidence=f.evidence + evidence))
            continue
        rejected = {(c.phrase, round(c.start_s, 3)) for c in mine if c.kind == "fuzzy" and c.verdict == "rejected"}
        kept = tuple(e for e in f.evidence if (e.get("phrase"), e.get("start_s")) not in rejected)
        if len(kept) <= rule.max_count:
            # the audio does not bear the fuzzy hit out, but a said phrase can fail that test too (the hard
            # set's banned phrases did): never a silent pass, a failure a supervisor hears first (review)
            out.append(
                replace(
                    f,
                    low_confidence=True,
                    evidence=f.evidence + evidence,
                    explanation=Message(N_("%(detail)s; not borne out by the audio (fuzzy hit(s)): listen before "
                                           "acting"), {"detail": f.explanation}),
                )
            )
        else:
            # a hit the audio bears out is certain, however unsure Whisper was of its words
            heard = {(c.phrase, round(c.start_s, 3)) for c in mine if c.kind == "fuzzy" and c.verdict == "confirmed"}
            borne = sum((e.get("phrase"), e.get("start_s")) in heard for e in kept)
            out.append(replace(f, evidence=kept + evidence,
                               low_confidence=f.low_confidence and borne <= rule.max_count))
    return out


def _fuzzy_presence(f, mine: list[Check]):
    """A pass that rests on fuzzy hits: each must be borne out by the audio, else the phrase is missing."""
    from qa_audio.judge.rules import _fail

    rejected = {c.lexicon for c in mine if c.kind == "fuzzy" and c.verdict == "rejected"}
    rule = f.rule
    have = {e.get("lexicon") for e in f.evidence} - rejected
    still = all(lex in have for lex in rule.all_of) if rule.all_of else bool(have & set(rule.any_of))
    notes = tuple(dict(_evidence(c)) for c in mine)
    if still:
        return replace(f, evidence=f.evidence + notes)
    # the transcript holds something close: a failure, but one a supervisor should hear (verdict review)
    return _fail(
        rule,
        Message(N_("%(detail)s; but the fuzzy hit of %(lexicons)s is not borne out by the audio: listen before "
                   "acting"), {"detail": f.explanation, "lexicons": ", ".join(sorted(rejected))}),
        notes + f.evidence,
        low_confidence=True,
    )


def _evidence(c: Check) -> dict:
    return {
        "start_s": round(c.start_s, 3),
        "end_s": round(c.end_s, 3),
        "channel": c.channel,
        "text": c.heard,
        "matched": c.phrase,
        "phrase": c.phrase,
        "lexicon": c.lexicon,
        "how": "verified",
        "method": c.how,
        "margin": round(c.margin, 3),
        "verdict": c.verdict,
        "probability": round(float(np.exp(min(0.0, c.margin))), 3),
    }
