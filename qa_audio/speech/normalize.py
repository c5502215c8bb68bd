"""Text normalisation for matching: simplified characters, numerals, pinyin.

Whisper base writes about a third of Mandarin characters in traditional form and
spells numbers either way; rules must see one canonical form. Every transform
here keeps a map from output characters back to input characters, so a phrase
found in normalised text still points at the ASR words (and their timestamps
and probabilities) it came from.
"""
from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass

import cn2an
import opencc
from pypinyin import Style, lazy_pinyin

SPOKEN_DIGITS = {"零": "0", "〇": "0", "幺": "1", "一": "1", "二": "2", "两": "2", "三": "3",
                 "四": "4", "五": "5", "六": "6", "七": "7", "八": "8", "九": "9"}
_DIGIT_RUN = re.compile(r"[零〇幺一二三四五六七八九两]{3,}")
_CARDINAL = re.compile(r"[零〇幺一二三四五六七八九两十百千万亿]{2,}")
_UNITS = set("十百千万亿")
_HAN = re.compile(r"[\u3400-\u9fff]")
_ALNUM = re.compile(r"[0-9a-z]+")

# pinyin confusions typical of ASR homophone errors and of southern accents
_FUZZY_INITIALS = (("zh", "z"), ("ch", "c"), ("sh", "s"), ("l", "n"), ("f", "h"), ("r", "n"))
_FUZZY_FINALS = (("iang", "ian"), ("uang", "uan"), ("ang", "an"), ("eng", "en"), ("ing", "in"), ("ong", "on"))


def fuzzy_syllable(syllable: str) -> str:
    """Fold a toneless pinyin syllable onto its confusion class (zh→z, -ng→-n, l→n …)."""
    for src, dst in _FUZZY_INITIALS:
        if syllable.startswith(src):
            syllable = dst + syllable[len(src):]
            break
    for src, dst in _FUZZY_FINALS:
        if syllable.endswith(src):
            return syllable[: -len(src)] + dst
    return syllable


POLYPHONE_MIN_SHARE = 0.1     # a reading counts when this share of a character's words read it so...
POLYPHONE_MIN_WORDS = 3       # ...and at least this many


@functools.lru_cache(maxsize=1)
def common_readings() -> dict[str, frozenset[str]]:
    """The toneless readings of each polyphone that its words commonly use, counted in pypinyin's word
    dictionary (的: de, di; 着: zhe, zhuo, zhao; 行: xing, hang), leaving out its rare and archaic ones
    (立 wèi, 于 wū), which would make homophones of unrelated words."""
    from pypinyin.contrib.tone_convert import to_normal
    from pypinyin.phrases_dict import phrases_dict

    toneless = functools.lru_cache(maxsize=4096)(to_normal)   # the dictionary repeats a few thousand readings
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for word, readings in phrases_dict.items():
        if len(word) == len(readings):
            for ch, reading in zip(word, readings):
                counts[ch][toneless(reading[0])] += 1
    out = {}
    for ch, seen in counts.items():
        total = sum(seen.values())
        keep = frozenset(r for r, n in seen.items() if n >= POLYPHONE_MIN_WORDS and n >= POLYPHONE_MIN_SHARE * total)
        if len(keep) > 1:
            out[ch] = keep
    return out


def digits_for_run(run: str) -> str | None:
    """A number read out digit by digit (幺三八零零…) or as a cardinal (一千零二十三), in Arabic digits."""
    if all(ch in SPOKEN_DIGITS for ch in run) and not (_UNITS & set(run)):
        if len(run) >= 3:
            return "".join(SPOKEN_DIGITS[ch] for ch in run)
        return None
    if not (_UNITS & set(run)):
        return None
    if not (set(run) - _UNITS) and not run.startswith("十"):
        return None     # 千万 (by all means), 万万: idioms, not numbers; 十万 is a number
    try:
        value = cn2an.cn2an(run, "normal")
    except (ValueError, KeyError, IndexError):
        return None
    return str(int(value)) if float(value).is_integer() else str(value)


@dataclass(frozen=True)
class Unit:
    """One matchable unit: a Han character, or a run of digits/latin letters."""

    text: str
    syllable: str       # fuzzy-folded pinyin, or the text itself for digits/latin
    start: int          # character span in the normalised text
    end: int


class TextNormalizer:
    """Simplified-Chinese, numeral and pinyin normalisation with its own OpenCC instance."""

    def __init__(self) -> None:
        self._t2s = opencc.OpenCC("t2s")

    def simplify(self, text: str) -> str:
        return self._t2s.convert(text)

    @staticmethod
    def numbers_mapped(text: str) -> tuple[str, list[int]]:
        """Spoken numbers to digits; returns the text and, per output char, its source index."""
        out: list[str] = []
        index: list[int] = []
        pos = 0
        for match in _CARDINAL.finditer(text):
            run = match.group()
            converted = digits_for_run(run)
            if converted is None:
                # a longer cardinal run may still hold a digit-by-digit part
                sub = _DIGIT_RUN.search(run)
                if sub is None:
                    continue
                converted = digits_for_run(sub.group())
                start, end = match.start() + sub.start(), match.start() + sub.end()
            else:
                start, end = match.span()
            if converted is None:
                continue
            out.append(text[pos:start])
            index.extend(range(pos, start))
            out.append(converted)
            span = end - start
            index.extend(start + min(span - 1, i * span // max(1, len(converted))) for i in range(len(converted)))
            pos = end
        out.append(text[pos:])
        index.extend(range(pos, len(text)))
        return "".join(out), index

    def numbers(self, text: str) -> str:
        return self.numbers_mapped(text)[0]

    def display(self, text: str) -> str:
        """The transcript text people read: simplified, numbers in digits."""
        return self.numbers(self.simplify(text)).strip()

    @staticmethod
    def matchable_mapped(text: str) -> tuple[str, list[int]]:
        """Drop punctuation, spaces and symbols; lower-case latin. Keeps the index map."""
        chars, index = [], []
        for i, ch in enumerate(text):
            cat = unicodedata.category(ch)
            if cat[0] in "PZSC":
                continue
            chars.append(unicodedata.normalize("NFKC", ch).lower())
            index.append(i)
        return "".join(chars), index

    def canonical(self, text: str) -> str:
        """Simplified, numbers in digits, no punctuation: the form phrases are matched in."""
        numbered = self.numbers(self.simplify(text))
        return self.matchable_mapped(numbered)[0]

    @staticmethod
    def units(text: str) -> list[Unit]:
        """Split canonical text into units with their fuzzy pinyin syllables."""
        units: list[Unit] = []
        i = 0
        while i < len(text):
            ch = text[i]
            if _HAN.match(ch):
                j = i
                while j < len(text) and _HAN.match(text[j]):
                    j += 1
                run = text[i:j]
                syllables = lazy_pinyin(run, style=Style.NORMAL, errors="default")
                if len(syllables) != len(run):
                    syllables = [lazy_pinyin(c, style=Style.NORMAL)[0] for c in run]
                units.extend(Unit(c, fuzzy_syllable(s), i + k, i + k + 1)
                             for k, (c, s) in enumerate(zip(run, syllables)))
                i = j
                continue
            m = _ALNUM.match(text, i)
            if m:
                units.append(Unit(m.group(), m.group(), i, m.end()))
                i = m.end()
            else:
                units.append(Unit(ch, ch, i, i + 1))
                i += 1
        return units

    @staticmethod
    def readings(units: list[Unit]) -> list[frozenset[str]]:
        """Per unit (as ``units`` splits a text), every fuzzy syllable it can be read as: a polyphone
        (的 de/dì in 美的, 行 xíng/háng) matches a homophone of any of its common readings. For phrases, whose
        reading out of context is a guess (pypinyin reads the brand 美的 as měi de; its speakers say měi dì)."""
        table = common_readings()
        return [frozenset({u.syllable, *(fuzzy_syllable(o) for o in table.get(u.text, ()))}) for u in units]
