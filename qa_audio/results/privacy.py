"""Personal data in transcripts: find and mask phone, ID-card and bank-card numbers.

Callers read numbers out in many ways: Arabic digits from the ASR, digits spoken one
by one (幺三八…, with 两, 洞 for 0, 拐 for 7, 勾 for 9, or the formal 壹贰叁), and in
groups separated by pauses the ASR writes as commas or spaces (一三八，零零一三，八零零零).
A *digit run* is a stretch of digit characters with at most one separator between
them; within a run, every combination of consecutive groups is checked:

* mobile: 11 digits, ``1[3-9]…``;
* ID card: 18 characters, a valid region and birth date, the last a digit or X;
  the check digit (GB 11643) is not required: one misheard digit must not unmask it;
* bank card: 13-19 digits passing the Luhn check;
* any run of ``mask_digit_runs_min`` digits or more (account numbers, landlines…).

Masking replaces each digit character by ``*`` (keeping the last ``keep_last_digits``),
so text length and character positions never change: word times still line up.
"""
from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date

from qa_audio.config import PrivacySettings
from qa_audio.speech.normalize import SPOKEN_DIGITS
from qa_audio.speech.words import Utterance, Word

# every way a digit of a personal number is written: Arabic and full-width digits, the spoken digits the
# transcript normaliser reads (normalize.SPOKEN_DIGITS), the radio/telephone forms (洞 0, 拐 7, 勾 9),
# traditional 兩, and the formal (financial) numerals
DIGIT_VALUE = {**{str(d): str(d) for d in range(10)}, **{chr(0xFF10 + d): str(d) for d in range(10)},
               **SPOKEN_DIGITS, "洞": "0", "拐": "7", "勾": "9", "兩": "2",
               **{ch: str(d) for d, ch in enumerate("零壹贰叁肆伍陆柒捌玖") if d}, "貳": "2", "陸": "6"}
X_CHARS = {"X", "x", "Ｘ", "叉"}
SEPARATORS = set(" \u3000-–—,，、.。·/()（）:：;；")
FILLERS = set("嗯呃啊额哦唔噢那个就是然后呢吧")   # what a caller says between digit groups (一三八，嗯，零零一三)
MAX_GAP = 4                               # at most this many separator or filler characters between two groups
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
MOBILE = re.compile(r"1[3-9]\d{9}")


@dataclass(frozen=True)
class PiiSpan:
    start: int          # character offsets in the text, end exclusive
    end: int
    kind: str           # mobile, id_card, bank_card, digits


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def id_check_digit(first17: str) -> str:
    return ID_CHECK[sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS)) % 11]


def looks_like_id(value: str) -> bool:
    """18 characters: region (first digit 1-8), a real birth date from 1900 on, sequence, digit or X."""
    if len(value) != 18 or not value[:17].isdigit() or not (value[17].isdigit() or value[17] == "X"):
        return False
    if value[0] not in "12345678":
        return False
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    return 1900 <= born.year <= date.today().year


def _runs(text: str) -> list[list[list[tuple[int, str]]]]:
    """Digit runs as lists of groups; each group a list of (char index, digit value).

    Groups may be parted by up to :data:`MAX_GAP` separator or filler characters: a comma and a
    space, dots, slashes, brackets, two spaces, a 嗯 — every way a number is read out or written.
    """
    runs: list[list[list[tuple[int, str]]]] = []
    groups: list[list[tuple[int, str]]] = []
    group: list[tuple[int, str]] = []
    gap = 0
    for i, ch in enumerate(text):
        value = DIGIT_VALUE.get(ch)
        if value is None and ch in X_CHARS and group:
            value = "X"                         # an ID card's last character
        if value is not None:
            group.append((i, value))
            gap = 0
            if value == "X":                    # nothing follows an X in a number
                groups.append(group)
                runs.append(groups)
                groups, group = [], []
            continue
        if (ch in SEPARATORS or ch in FILLERS) and (group or groups) and gap < MAX_GAP:
            if group:
                groups.append(group)
                group = []
            gap += 1
            continue
        if group:
            groups.append(group)
        if groups:
            runs.append(groups)
        groups, group, gap = [], [], 0
    if group:
        groups.append(group)
    if groups:
        runs.append(groups)
    return runs


def find_pii(text: str, *, digit_runs_min: int | None = 12) -> list[PiiSpan]:
    """Every phone, ID-card and bank-card number (and long digit run) in ``text``."""
    found: list[PiiSpan] = []
    for groups in _runs(text):
        chars = [c for g in groups for c in g]
        if len(chars) < 11 and not (digit_runs_min and len(chars) >= digit_runs_min):
            continue
        # combinations of consecutive groups, then every window inside the whole run
        for a in range(len(groups)):
            for b in range(a, len(groups)):
                part = [c for g in groups[a: b + 1] for c in g]
                _classify(part, found, exact=True)
        _classify(chars, found, exact=False)
        if digit_runs_min and len(chars) >= digit_runs_min:
            found.append(PiiSpan(chars[0][0], chars[-1][0] + 1, "digits"))
    return _merge(found)


def _classify(part: list[tuple[int, str]], found: list[PiiSpan], *, exact: bool) -> None:
    value = "".join(v for _, v in part)

    def add(i: int, j: int, kind: str) -> None:
        found.append(PiiSpan(part[i][0], part[j - 1][0] + 1, kind))

    if exact:
        if len(value) == 11 and MOBILE.fullmatch(value):
            add(0, 11, "mobile")
        if looks_like_id(value):
            add(0, 18, "id_card")
        if 13 <= len(value) <= 19 and value.isdigit() and luhn_ok(value):
            add(0, len(value), "bank_card")
        return
    for m in MOBILE.finditer(value):                      # numbers run together without pauses
        if m.end() - m.start() == 11:
            add(m.start(), m.end(), "mobile")
    for i in range(0, len(value) - 17):
        if looks_like_id(value[i: i + 18]):
            add(i, i + 18, "id_card")


def _merge(spans: list[PiiSpan]) -> list[PiiSpan]:
    order = {"id_card": 0, "bank_card": 1, "mobile": 2, "digits": 3}
    out: list[PiiSpan] = []
    for s in sorted(spans, key=lambda s: (s.start, -s.end)):
        if out and s.start < out[-1].end:
            last = out[-1]
            kind = min(last.kind, s.kind, key=order.__getitem__)
            out[-1] = PiiSpan(last.start, max(last.end, s.end), kind)
        else:
            out.append(s)
    return out


def mask_text(text: str, *, keep_last_digits: int = 4, digit_runs_min: int | None = 12,
              identifier: bool = False) -> str:
    """``text`` with the digits of every personal number replaced by ``*`` (same length).

    ``identifier``: a file name, call id or person's name, where long digit runs are dates and
    times: only mobiles, ID cards and bank cards of 16-19 digits are masked.
    """
    spans = find_pii(text, digit_runs_min=None if identifier else digit_runs_min)
    if identifier:
        spans = [s for s in spans if s.kind != "bank_card" or _digit_count(text, s) >= 16]
    if not spans:
        return text
    chars = list(text)
    for span in spans:
        digit_positions = [i for i in range(span.start, span.end)
                           if chars[i] in DIGIT_VALUE or chars[i] in X_CHARS]
        hidden = digit_positions[: max(0, len(digit_positions) - keep_last_digits)]
        for i in hidden:
            chars[i] = "*"
    return "".join(chars)


def _digit_count(text: str, span: PiiSpan) -> int:
    return sum(1 for ch in text[span.start: span.end] if ch in DIGIT_VALUE)


class Redactor:
    """Applies one privacy setting to text, results and analyses (never in place)."""

    def __init__(self, settings: PrivacySettings | None = None):
        self.settings = settings or PrivacySettings()

    def text(self, text: str | None) -> str | None:
        if not text:
            return text
        s = self.settings
        return mask_text(text, keep_last_digits=s.keep_last_digits, digit_runs_min=s.mask_digit_runs_min)

    def identifier(self, text: str | None) -> str | None:
        """A file name, path, call id, person's or team's name, or a log line, with personal numbers masked."""
        if not text:
            return text
        return mask_text(text, keep_last_digits=self.settings.keep_last_digits, identifier=True)

    def result(self, result: dict) -> dict:
        """A result-contract dict with transcript, evidence, details, call id and path masked."""
        out = copy.deepcopy(result)
        if isinstance(out.get("call_id"), str):
            out["call_id"] = self.identifier(out["call_id"])
        if isinstance(out.get("audio"), dict) and isinstance(out["audio"].get("path"), str):
            out["audio"]["path"] = self.identifier(out["audio"]["path"])
        if isinstance(out.get("error"), str):
            out["error"] = self.identifier(out["error"])
        for line in out.get("transcript", ()):
            line["text"] = self.text(line["text"])
            if "words" in line:
                line["words"] = self._words(line["words"])
        for finding in out.get("findings", ()):
            finding["detail"] = self.text(finding.get("detail"))
            for ev in finding.get("evidence", ()):
                for key in ("text", "matched"):
                    if isinstance(ev.get(key), str):
                        ev[key] = self.text(ev[key])
        return out

    def analysis(self, analysis: dict) -> dict:
        out = copy.deepcopy(analysis)
        for u in out.get("utterances", ()):
            u["text"] = self.text(u["text"])
            u["words"] = self._words(u["words"])
        return out

    def _words(self, stored: list) -> list:
        """Mask across word boundaries: a number is often several ASR words."""
        words = [Word.from_list(w) for w in stored]
        joined = "".join(w.text for w in words)
        masked = self.text(joined)
        if masked is None or masked == joined:
            return stored
        out, at = [], 0
        for w in words:
            out.append(replace(w, text=masked[at: at + len(w.text)]).to_list())
            at += len(w.text)
        return out


def pii_times(utterances: Iterable[Utterance], settings: PrivacySettings | None = None
              ) -> list[tuple[float, float, str]]:
    """(start_s, end_s, kind) of each personal number spoken, from word timestamps."""
    s = settings or PrivacySettings()
    out = []
    for u in utterances:
        words = u.words
        offsets, at = [], 0
        for w in words:
            offsets.append((at, at + len(w.text)))
            at += len(w.text)
        joined = "".join(w.text for w in words)
        for span in find_pii(joined, digit_runs_min=s.mask_digit_runs_min):
            covered = [w for w, (a, b) in zip(words, offsets) if a < span.end and b > span.start]
            if covered:
                out.append((covered[0].start_s, covered[-1].end_s, span.kind))
    return out
