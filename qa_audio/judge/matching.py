"""ASR-tolerant phrase matching: normalised text, pinyin homophones, fuzzy pinyin, word boundaries.

Whisper turns 工号 into 公号 and 中联融资 into 周联柔自, so a phrase is found in
three ways, best first: the exact characters; the same fuzzy pinyin syllables
(a homophone); or, for phrases of ``exact_below_syllables`` syllables or more,
a pinyin string similarity of at least ``min_similarity``. Short phrases (under
``word_aligned_below_syllables``) must also start and end on a word boundary of
a jieba segmentation whose user dictionary holds every lexicon phrase, so 是 in
这是 or 好 in 好像 is not an acknowledgement. Every hit keeps the ASR words it
spans, with their timestamps and probabilities.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import NamedTuple

import jieba
from rapidfuzz import fuzz

from qa_audio.config import Config, LexiconEntry
from qa_audio.speech.normalize import TextNormalizer, Unit
from qa_audio.speech.words import Utterance


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


USER_WORD_FREQ = 1_000_000   # above any jieba dictionary word: a lexicon phrase is always one word


class Segmenter:
    """Word segmentation with its own jieba ``Tokenizer`` (never the global one) and the lexicon phrases
    as a user dictionary, loaded on first use."""

    def __init__(self, words: list[str]):
        self._words = sorted({w for w in words if len(w) > 1})
        self._tokenizer: jieba.Tokenizer | None = None

    def _ready(self) -> jieba.Tokenizer:
        if self._tokenizer is None:
            jieba.setLogLevel(logging.WARNING)
            tokenizer = jieba.Tokenizer()
            tokenizer.initialize()
            for word in self._words:      # lexicon phrases win over the dictionary's own cuts (姓李 in 我姓李)
                tokenizer.add_word(word, freq=USER_WORD_FREQ)
            self._tokenizer = tokenizer
        return self._tokenizer

    def boundaries(self, text: str) -> frozenset[int]:
        """Character offsets where a word starts or ends."""
        if not text:
            return frozenset({0})
        return frozenset(b for _, start, end in self._ready().tokenize(text) for b in (start, end))


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
class Prepared:
    """An utterance normalised once for matching, with each character's ASR word and the word boundaries."""

    utterance: Utterance
    text: str
    units: tuple[Unit, ...]
    word_of_char: tuple[int, ...]
    boundaries: frozenset[int]


class _Phrase(NamedTuple):
    entry: LexiconEntry
    canonical: str
    syllables: tuple[str, ...]           # as read in context
    readings: tuple[frozenset[str], ...]  # every reading of each unit (polyphones)


class PhraseMatcher:
    """Finds lexicon phrases in utterances; built once per config."""

    def __init__(self, config: Config, normalizer: TextNormalizer | None = None):
        self.config = config
        self.settings = config.matching
        self.normalizer = normalizer or TextNormalizer()
        self._phrases: dict[str, list[_Phrase]] = {}
        for name, lexicon in config.lexicons.items():
            prepared: list[_Phrase] = []
            for entry in lexicon.entries:
                if entry.regex is not None:
                    prepared.append(_Phrase(entry, entry.text, (), ()))
                    continue
                canonical = self.normalizer.canonical(entry.text)
                units = self.normalizer.units(canonical)
                prepared.append(_Phrase(entry, canonical, tuple(u.syllable for u in units),
                                        tuple(self.normalizer.readings(units))))
            self._phrases[name] = prepared
        self.segmenter = Segmenter([canonical for entries in self._phrases.values()
                                    for entry, canonical, _, _ in entries if entry.regex is None])

    def prepare(self, utterance: Utterance) -> Prepared:
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
        return Prepared(utterance, text, tuple(self.normalizer.units(text)), word_of_char,
                        self.segmenter.boundaries(text))

    def _aligned(self, prep: Prepared, start: int, end: int, syllables: int) -> bool:
        """Long phrases always; short ones only when they start and end on a word boundary."""
        return syllables >= self.settings.word_aligned_below_syllables or (
            start in prep.boundaries and end in prep.boundaries)

    def _hit(self, prep: Prepared, lexicon: str, phrase: str, how: str, similarity: float,
             start_char: int, end_char: int) -> Hit:
        first, last = prep.word_of_char[start_char], prep.word_of_char[max(start_char, end_char - 1)]
        words = prep.utterance.words[first: last + 1]
        probs = [w.probability for w in words] or [1.0]
        return Hit(lexicon, phrase, how, similarity, prep.utterance.channel, words[0].start_s, words[-1].end_s,
                   prep.utterance.text, join_words([w.text for w in words]), sum(probs) / len(probs), min(probs))

    def find(self, prep: Prepared, lexicon: str, *, min_similarity: float | None = None) -> list[Hit]:
        """Best hit of each phrase of ``lexicon`` in a prepared utterance.

        ``min_similarity`` overrides the config's for this search (1.0: exact or homophone only).
        """
        if not prep.text:
            return []
        hits = []
        syllables = [u.syllable for u in prep.units]
        for entry, canonical, phrase_syl, readings in self._phrases[lexicon]:
            if entry.regex is not None:
                m = entry.regex.search(prep.text)
                if m and m.end() > m.start():
                    hits.append(self._hit(prep, lexicon, entry.text, "regex", 1.0, m.start(), m.end()))
                continue
            at = prep.text.find(canonical)
            while at >= 0 and not self._aligned(prep, at, at + len(canonical), len(phrase_syl)):
                at = prep.text.find(canonical, at + 1)
            if at >= 0:
                hits.append(self._hit(prep, lexicon, entry.text, "exact", 1.0, at, at + len(canonical)))
                continue
            best = self._best_window(prep, syllables, phrase_syl, readings, min_similarity)
            if best is None:
                continue
            similarity, i, j = best
            how = "pinyin" if similarity >= 1.0 else "fuzzy"
            hits.append(self._hit(prep, lexicon, entry.text, how, similarity,
                                  prep.units[i].start, prep.units[j - 1].end))
        return hits

    def _best_window(self, prep: Prepared, syllables: list[str], phrase: tuple[str, ...],
                     readings: tuple[frozenset[str], ...], min_similarity: float | None = None
                     ) -> tuple[float, int, int] | None:
        threshold = self.settings.min_similarity if min_similarity is None else min_similarity
        m = len(phrase)
        if m == 0 or not syllables:
            return None
        for i in range(len(syllables) - m + 1):
            if all(s in r for s, r in zip(syllables[i:i + m], readings)) and self._aligned(prep, prep.units[i].start,
                                                                     prep.units[i + m - 1].end, m):
                return 1.0, i, i + m
        if m < self.settings.exact_below_syllables or threshold >= 1.0:
            return None
        target = " ".join(phrase)
        best: tuple[float, int, int] | None = None
        for length in (m, m - 1, m + 1):
            if length < 1 or length > len(syllables):
                continue
            for i in range(len(syllables) - length + 1):
                score = fuzz.ratio(" ".join(syllables[i:i + length]), target) / 100.0
                if score >= threshold and (best is None or score > best[0]):
                    best = (score, i, i + length)
        return best
