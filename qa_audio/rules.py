"""Evaluate the rulebook against a transcript: ASR-tolerant phrase matching.

Whisper turns 工号 into 公号 and 中联融资 into 周联柔自, so a phrase is found in
three ways, best first: the exact characters; the same fuzzy pinyin syllables
(a homophone); or, for phrases of ``exact_below_syllables`` syllables or more,
a pinyin string similarity of at least ``min_similarity``. Every hit keeps the
ASR words it spans, with their timestamps and probabilities.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from rapidfuzz import fuzz

from .config import Config, LexiconEntry, Rule
from .normalize import TextNormalizer, Unit
from .transcribe import Utterance

MAX_EVIDENCE = 3


def evidence_dict(start_s: float, end_s: float, channel: str, text: str, **extra) -> dict:
    """One evidence item of the result contract (extra keys extend it)."""
    return {"start_s": round(float(start_s), 3), "end_s": round(float(end_s), 3), "channel": channel, "text": text,
            **extra}


@dataclass(frozen=True)
class Hit:
    lexicon: str
    phrase: str
    how: str                  # "exact", "pinyin", "fuzzy" or "regex"
    similarity: float
    channel: str
    start_s: float
    end_s: float
    text: str                 # the utterance the hit is in
    matched: str              # the words that matched
    probability: float        # mean ASR probability of the matched words
    min_probability: float

    def evidence(self) -> dict:
        return evidence_dict(self.start_s, self.end_s, self.channel, self.text, matched=self.matched,
                             phrase=self.phrase, lexicon=self.lexicon, how=self.how,
                             similarity=round(self.similarity, 3), probability=round(self.probability, 3))


@dataclass(frozen=True)
class Finding:
    rule: Rule
    status: str               # "pass", "fail" or "n/a"
    deduction: float
    redline: bool
    low_confidence: bool
    detail: str
    evidence: tuple[dict, ...] = field(default=())

    @property
    def passed(self) -> bool | None:
        return None if self.status == "n/a" else self.status == "pass"

    def to_dict(self) -> dict:
        return {"rule": self.rule.id, "passed": self.passed, "deduction": self.deduction,
                "evidence": list(self.evidence), "status": self.status, "title": self.rule.title,
                "severity": self.rule.severity, "weight": self.rule.weight, "redline": self.redline,
                "low_confidence": self.low_confidence, "detail": self.detail}


def _needs_space(before: str, after: str) -> bool:
    """Latin words and numbers are separated by a space; Han characters are not."""
    return bool(before) and before[-1].isascii() and before[-1].isalnum() and after[:1].isascii() \
        and after[:1].isalnum()


def join_words(texts: list[str]) -> str:
    """Join ASR word texts: no space between Han characters, one between latin words."""
    out = ""
    for text in texts:
        out += (" " if _needs_space(out, text) else "") + text
    return out


@dataclass(frozen=True)
class _Prepared:
    utterance: Utterance
    text: str
    units: tuple[Unit, ...]
    word_of_char: tuple[int, ...]


class PhraseMatcher:
    """Finds lexicon phrases in utterances; built once per config."""

    def __init__(self, config: Config, normalizer: TextNormalizer | None = None):
        self.config = config
        self.settings = config.matching
        self.normalizer = normalizer or TextNormalizer()
        self._phrases: dict[str, list[tuple[LexiconEntry, str, tuple[str, ...]]]] = {}
        for name, lexicon in config.lexicons.items():
            prepared = []
            for entry in lexicon.entries:
                if entry.regex is not None:
                    prepared.append((entry, entry.text, ()))
                    continue
                canonical = self.normalizer.canonical(entry.text)
                prepared.append((entry, canonical, tuple(u.syllable for u in self.normalizer.units(canonical))))
            self._phrases[name] = prepared

    def prepare(self, utterance: Utterance) -> _Prepared:
        """Normalise an utterance once, keeping which ASR word each character came from."""
        raw_chars: list[str] = []
        word_of_raw: list[int] = []
        for i, word in enumerate(utterance.words):
            text = (" " if _needs_space("".join(raw_chars[-1:]), word.text) else "") + word.text
            raw_chars.extend(text)
            word_of_raw.extend([i] * len(text))
        numbered, idx1 = self.normalizer.numbers_mapped("".join(raw_chars))
        text, idx2 = self.normalizer.matchable_mapped(numbered)
        word_of_char = tuple(word_of_raw[idx1[j]] for j in idx2)
        return _Prepared(utterance, text, tuple(self.normalizer.units(text)), word_of_char)

    def _hit(self, prep: _Prepared, lexicon: str, phrase: str, how: str, similarity: float,
             start_char: int, end_char: int) -> Hit:
        first, last = prep.word_of_char[start_char], prep.word_of_char[max(start_char, end_char - 1)]
        words = prep.utterance.words[first: last + 1]
        probs = [w.probability for w in words] or [1.0]
        return Hit(lexicon, phrase, how, similarity, prep.utterance.channel, words[0].start_s, words[-1].end_s,
                   prep.utterance.text, join_words([w.text for w in words]), sum(probs) / len(probs), min(probs))

    def find(self, prep: _Prepared, lexicon: str) -> list[Hit]:
        """Best hit of each phrase of ``lexicon`` in a prepared utterance."""
        if not prep.text:
            return []
        hits = []
        syllables = [u.syllable for u in prep.units]
        for entry, canonical, phrase_syl in self._phrases[lexicon]:
            if entry.regex is not None:
                m = entry.regex.search(prep.text)
                if m and m.end() > m.start():
                    hits.append(self._hit(prep, lexicon, entry.text, "regex", 1.0, m.start(), m.end()))
                continue
            at = prep.text.find(canonical)
            if at >= 0:
                hits.append(self._hit(prep, lexicon, entry.text, "exact", 1.0, at, at + len(canonical)))
                continue
            best = self._best_window(syllables, phrase_syl)
            if best is None:
                continue
            similarity, i, j = best
            how = "pinyin" if similarity >= 1.0 else "fuzzy"
            hits.append(self._hit(prep, lexicon, entry.text, how, similarity,
                                  prep.units[i].start, prep.units[j - 1].end))
        return hits

    def _best_window(self, syllables: list[str], phrase: tuple[str, ...]) -> tuple[float, int, int] | None:
        m = len(phrase)
        if m == 0 or not syllables:
            return None
        for i in range(len(syllables) - m + 1):
            if tuple(syllables[i:i + m]) == phrase:
                return 1.0, i, i + m
        if m < self.settings.exact_below_syllables:
            return None
        target = " ".join(phrase)
        best: tuple[float, int, int] | None = None
        for length in (m, m - 1, m + 1):
            if length < 1 or length > len(syllables):
                continue
            for i in range(len(syllables) - length + 1):
                score = fuzz.ratio(" ".join(syllables[i:i + length]), target) / 100.0
                if score >= self.settings.min_similarity and (best is None or score > best[0]):
                    best = (score, i, i + length)
        return best


def _scope(rule: Rule, preps: list[_Prepared], answer_s: float | None) -> list[_Prepared]:
    role = [p for p in preps if rule.role == "any" or p.utterance.channel in (rule.role, "mixed")]
    window = rule.window
    role = role[window.skip_first:]
    if window.turns == "first":
        role = role[: window.n]
    elif window.turns == "last":
        role = role[-window.n:]
    if window.within_s is not None:
        anchor = (answer_s or 0.0) if window.start == "answer" else 0.0
        role = [p for p in role if p.utterance.start_s < anchor + window.within_s and p.utterance.end_s > anchor]
    return role


def _utterance_evidence(preps: list[_Prepared]) -> tuple[dict, ...]:
    return tuple(evidence_dict(p.utterance.start_s, p.utterance.end_s, p.utterance.channel, p.utterance.text)
                 for p in preps[:MAX_EVIDENCE])


def evaluate_rule(rule: Rule, preps: list[_Prepared], *, matcher: PhraseMatcher, answered: bool | None,
                  answer_s: float | None) -> Finding:
    """Judge one rule on one call's transcript."""
    low = matcher.settings.low_confidence
    if answered is False:
        return Finding(rule, "n/a", 0.0, False, False, "the call was not answered")
    scope = _scope(rule, preps, answer_s)
    where = rule.window.describe()
    if rule.expect == "absent":
        names = rule.lexicons
        hits = [h for u in scope for name in names for h in matcher.find(u, name)]
        if not hits:
            return Finding(rule, "pass", 0.0, False, False, f"none of {', '.join(names)} in {where}")
        hits.sort(key=lambda h: h.start_s)
        redline = any(h.lexicon in rule.redline_lexicons for h in hits)
        lowconf = all(h.min_probability < low for h in hits)
        said = "; ".join(f"{h.matched!r} ~ {h.phrase!r} ({h.how})" for h in hits[:MAX_EVIDENCE])
        return Finding(rule, "fail", rule.weight, redline, lowconf, f"said {said}",
                       tuple(h.evidence() for h in hits))
    if not scope:
        return Finding(rule, "fail", rule.weight, False, False, f"no {rule.role} speech in {where}")
    found: dict[str, list[Hit]] = {}
    for name in rule.lexicons:
        found[name] = [h for u in scope for h in matcher.find(u, name)]
    if rule.all_of:
        missing = [n for n in rule.all_of if not found[n]]
        ok = not missing
        detail = f"all of {', '.join(rule.all_of)} in {where}" if ok else f"missing {', '.join(missing)} in {where}"
    else:
        ok = any(found[n] for n in rule.any_of)
        detail = f"{'found' if ok else 'missing'} {' / '.join(rule.any_of)} in {where}"
    if ok:
        hits = sorted((min(v, key=lambda h: h.start_s) for v in found.values() if v), key=lambda h: h.start_s)
        return Finding(rule, "pass", 0.0, False, False, detail, tuple(h.evidence() for h in hits))
    return Finding(rule, "fail", rule.weight, False, False, detail, _utterance_evidence(scope))


def _metric_value(name: str, timing) -> tuple[object, list[dict]]:
    """The value of a timing metric and the spans that show it (None when it cannot be measured)."""
    t, talk = timing, timing.talk

    def ev(start, end, text, channel="both"):
        return evidence_dict(start, end, channel, text)

    if name == "rings":
        return t.rings, [ev(0.0, t.answer_s or 0.0, f"{t.rings} ring(s) before the agent spoke")]
    if name == "ring_to_answer_s":
        value = t.ring_to_answer_s
        return value, [] if value is None else [ev(t.answer_s - value, t.answer_s, f"answered after {value:.1f} s")]
    if name == "longest_hold_wait_s":
        waits = [w for h in t.holds for w in h.waits]
        if not waits:
            return None, []
        worst = max(waits, key=lambda w: w.duration_s)
        return worst.duration_s, [ev(w.start_s, w.end_s, f"customer waited {w.duration_s:.0f} s without the agent")
                                  for w in sorted(waits, key=lambda w: -w.duration_s)]
    if name == "longest_dead_air_s":
        worst = max((d.duration_s for d in t.dead_air), default=0.0)
        return worst, [ev(d.start_s, d.end_s, f"{d.duration_s:.0f} s of silence on both sides") for d in t.dead_air]
    if name == "agent_interruptions":
        if t.interruptions is None:
            return None, []
        cut = [i for i in t.interruptions if i.by == "agent"]
        return len(cut), [ev(i.at_s, i.at_s + i.overlap_s, f"agent talked over the customer for {i.overlap_s:.1f} s",
                             "agent") for i in cut]
    if name == "agent_rate_cps":
        party = talk.get("agent") or talk.get("mixed") or {}
        value = party.get("rate_cps")
        return value, [] if value is None else [ev(t.answer_s or 0.0, t.answer_s or 0.0,
                                                   f"agent speaks {value:.1f} characters a second", "agent")]
    if name == "agent_level_below_customer_db":
        a, c = (talk.get("agent") or {}).get("level_dbfs"), (talk.get("customer") or {}).get("level_dbfs")
        if a is None or c is None:
            return None, []
        return c - a, [ev(0.0, 0.0, f"agent {a:.0f} dBFS, customer {c:.0f} dBFS", "agent")]
    if name == "last_speaker":
        value = talk.get("last_speaker")
        return value, []
    raise ValueError(name)


def evaluate_metric(rule: Rule, timing) -> Finding:
    check = rule.metric
    if timing is None or timing.answered is False:
        return Finding(rule, "n/a", 0.0, False, False, "the call was not answered")
    value, evidence = _metric_value(check.name, timing)
    if value is None:
        return Finding(rule, "n/a", 0.0, False, False, f"{check.name} cannot be measured on this call")
    failed = ((check.max is not None and value > check.max) or (check.min is not None and value < check.min)
              or (check.equals is not None and value != check.equals))
    shown = f"{value:.2f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)
    detail = f"{check.name} = {shown} (expected {check.describe()})"
    if not failed:
        return Finding(rule, "pass", 0.0, False, False, detail)
    return Finding(rule, "fail", rule.weight, rule.severity == "redline", False, detail,
                   tuple(evidence[:MAX_EVIDENCE]))


def evaluate(config: Config, utterances: list[Utterance], *, matcher: PhraseMatcher, answered: bool | None,
             answer_s: float | None, timing=None) -> list[Finding]:
    preps = [matcher.prepare(u) for u in sorted(utterances, key=lambda u: u.start_s)]
    return [evaluate_metric(rule, timing) if rule.metric is not None
            else evaluate_rule(rule, preps, matcher=matcher, answered=answered, answer_s=answer_s)
            for rule in config.rules]


def hold_cues(config: Config, utterances: list[Utterance], *, matcher: PhraseMatcher) -> list[float]:
    """End times of agent utterances that ask the caller to hold."""
    name = config.hold_request_lexicon
    if not name:
        return []
    return [u.end_s for u in utterances
            if u.channel in ("agent", "mixed") and matcher.find(matcher.prepare(u), name)]
