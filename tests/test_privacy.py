"""PRV-1: phone, ID-card and bank-card numbers are masked, however callers say them."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
from conftest import shared

SPOKEN = {"0": "零", "1": "一", "2": "二", "3": "三", "4": "四", "5": "五", "6": "六", "7": "七", "8": "八", "9": "九"}
YAO = dict(SPOKEN, **{"1": "幺"})
TO_DIGIT = {**{v: k for k, v in SPOKEN.items()}, "幺": "1", "两": "2", "洞": "0", "拐": "7", "柒": "7", "玖": "9",
            "〇": "0", "X": "X", "叉": "X"}


def unmasked_numbers(text: str) -> list[str]:
    """An independent check: every phone, ID and Luhn-valid card number still readable in ``text``."""
    digits = "".join(TO_DIGIT.get(ch, ch) for ch in text)
    compact = re.sub(r"(?<=[\dX])[ ,，、\-](?=[\dX])", "", digits)
    found = re.findall(r"1[3-9]\d{9}", compact)
    found += re.findall(r"[1-8]\d{5}(?:19|20)\d{2}[01]\d[0-3]\d{4}[\dX]", compact)
    for run in re.findall(r"\d{13,19}", compact):
        for n in range(13, len(run) + 1):
            for i in range(len(run) - n + 1):
                if luhn(run[i: i + n]) and run[i: i + n].strip("0"):     # a row of CSV zeros is no card
                    found.append(run[i: i + n])
    return found


def luhn(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def with_luhn(prefix: str, length: int, rng) -> str:
    body = prefix + "".join(str(d) for d in rng.integers(0, 10, length - len(prefix) - 1))
    for check in "0123456789":
        if luhn(body + check):
            return body + check
    raise AssertionError


def id_number(rng) -> str:
    from qa_audio.results.privacy import id_check_digit

    first = f"{rng.integers(110000, 659999)}{rng.integers(1950, 2005)}{rng.integers(1, 13):02d}" \
            f"{rng.integers(1, 29):02d}{rng.integers(0, 1000):03d}"
    return first + id_check_digit(first)


def spoken_forms(number: str, rng) -> list[str]:
    """The ways callers say a number: digits, digit by digit (with 幺), in groups with pauses."""
    groups = [number[:3], number[3:7], number[7:]] if len(number) == 11 else \
        [number[i: i + 4] for i in range(0, len(number), 4)]
    return [
        number,
        "".join(SPOKEN.get(c, c) for c in number),
        "".join(YAO.get(c, "叉" if c == "X" else c) for c in number),
        "，".join("".join(YAO.get(c, c) for c in g) for g in groups),
        " ".join(groups),
        "-".join(groups),
    ]


def test_textnorm_phone_and_id_sentences_are_masked():
    from qa_audio.results.privacy import mask_text

    lines = []
    for part in ("itn_chinese", "tn_chinese"):
        for name in ("normalizer.txt", "number.txt", "cardinal.txt"):
            path = shared("textnorm", "wetextprocessing", part, name)
            lines += [line.split(" => ", 1) for line in path.read_text(encoding="utf-8").splitlines() if " => " in line]
    checked = 0
    for spoken, written in lines:
        for text in (spoken, written):
            if unmasked_numbers(text):
                checked += 1
                masked = mask_text(text)
                assert not unmasked_numbers(masked), (text, masked)
                assert len(masked) == len(text)
    assert checked >= 8          # 手机 13501234567, 一八五四四一三九一二一, 身份证 …, 幺八五洞幺拐两零柒幺玖


@pytest.mark.parametrize("kind", ["mobile", "id", "bank"])
def test_every_spoken_form_is_masked(kind, rng):
    from qa_audio.results.privacy import find_pii, mask_text

    for _ in range(25):
        if kind == "mobile":
            number = "1" + str(rng.integers(3, 10)) + "".join(str(d) for d in rng.integers(0, 10, 9))
        elif kind == "id":
            number = id_number(rng)
        else:
            number = with_luhn(str(rng.choice(["6222", "6217", "4367", "6228"])), int(rng.choice([16, 19])), rng)
        for form in spoken_forms(number, rng):
            text = f"好的，我的号码是{form}，您记一下"
            masked = mask_text(text)
            assert not unmasked_numbers(masked), (text, masked)
            assert find_pii(text), text
            assert masked.endswith("，您记一下") and masked.startswith("好的，我的号码是")


def test_ordinary_numbers_stay_readable():
    from qa_audio.results.privacy import mask_text

    for text in ("您好，中联融资客服中心，工号1023", "工号一零二三为您服务", "可以拨打幺二三零六来咨询", "尾号幺七零二",
                 "手续费是本金的百分之一，一千二百三十四元", "三点一刻", "请您稍等一下", "2026年11月3日",
                 "还款金额是12345.67元"):
        assert mask_text(text) == text


def test_keep_last_digits_and_kinds():
    from qa_audio.results.privacy import find_pii, mask_text

    assert mask_text("手机13800138000") == "手机*******8000"
    assert mask_text("手机13800138000", keep_last_digits=0) == "手机***********"
    kinds = [s.kind for s in find_pii("手机13800138000，身份证340203193701010511，卡号6222021234567890128")]
    assert kinds[0] == "mobile" and "id_card" in kinds


def test_redactor_masks_results_and_word_lists():
    from qa_audio.results.privacy import Redactor, pii_times
    from qa_audio.speech.words import Utterance, Word

    words = [[1.0, 1.4, "我的", 0.9], [1.4, 2.0, "手机", 0.9], [2.0, 2.6, "幺三八", 0.8], [2.6, 3.4, "零零一三", 0.8],
             [3.4, 4.2, "八零零零", 0.8], [4.2, 4.5, "好", 0.9]]
    result = {"transcript": [{"channel": "customer", "start_s": 1.0, "end_s": 4.5, "text": "我的手机13800138000好"}],
              "findings": [{"rule": "CNF-1", "detail": "heard 13800138000", "evidence": [
                  {"text": "我的手机13800138000好", "matched": "13800138000"}]}]}
    out = Redactor().result(result)
    assert not unmasked_numbers(json.dumps(out, ensure_ascii=False))
    assert result["transcript"][0]["text"].endswith("13800138000好")          # not changed in place
    analysis = {"utterances": [{"channel": "customer", "start_s": 1.0, "end_s": 4.5, "text": "我的手机13800138000好",
                                "words": words}]}
    masked = Redactor().analysis(analysis)
    assert [w[2] for w in masked["utterances"][0]["words"]] == ["我的", "手机", "***", "****", "八零零零", "好"]
    utterance = Utterance("customer", 1.0, 4.5, "我的手机13800138000好", tuple(Word.from_list(w) for w in words))
    assert pii_times([utterance]) == [(2.0, 4.2, "mobile")]


def test_privacy_settings_are_validated(tmp_path):
    from conftest import ROOT

    from qa_audio.config import load_config
    from qa_audio.errors import ConfigError

    bad = tmp_path / "bad.yaml"
    text = (ROOT / "configs" / "default.yaml").read_text(encoding="utf-8")
    bad.write_text(text.replace("mask_in: display", "mask_in: nowhere").replace("dir: ../lexicons",
                                                                               f"dir: {ROOT / 'lexicons'}"),
                   encoding="utf-8")
    with pytest.raises(ConfigError, match=r"privacy.mask_in.*expected one of display, store"):
        load_config(bad)


def test_unmasked_checker_itself_finds_numbers():
    rng = np.random.default_rng(3)
    assert unmasked_numbers("手机幺三八，零零幺三，八零零零")
    assert unmasked_numbers(id_number(rng))
    assert unmasked_numbers(with_luhn("6222", 19, rng))
    assert not unmasked_numbers("工号1023")
