"""Text normalisation, checked against the third-party tables in shared/realdata/textnorm."""
from __future__ import annotations

import json

import pytest
from conftest import shared

from qa_audio.speech.normalize import TextNormalizer, digits_for_run, fuzzy_syllable

norm = TextNormalizer()


def test_traditional_to_simplified():
    assert norm.simplify("請問有什麼可以幫您") == "请问有什么可以帮您"


@pytest.mark.parametrize("spoken,written", [
    ("工号一零二三", "工号1023"),
    ("幺三八零零一三八零零零", "13800138000"),
    ("我的电话是一三九 一二三四 五六七八", "我的电话是139 1234 5678"),
    ("一千零二十三", "1023"),
    ("工号二十三号", "工号23号"),
    ("三点一刻", "三点一刻"),           # the cn2an pitfall: a time is not 3.1
    ("稍等一下", "稍等一下"),           # 一 alone stays a word
    ("十分感谢", "十分感谢"),
    ("千万不要", "千万不要"),
])
def test_spoken_numbers(spoken, written):
    assert norm.numbers(spoken) == written


def test_cn2an_cardinal_tables():
    cases = json.loads(shared("textnorm", "cn2an_test_cases.json").read_text(encoding="utf-8"))
    checked = 0
    table = {**cases["cn2an_test"]["strict_data_dict"], **cases["cn2an_test"]["normal_data_dict"]}
    for spoken, value in table.items():
        if any(ch not in "零一二三四五六七八九十百千万亿两" for ch in spoken) or isinstance(value, float):
            continue
        if not (set(spoken) & set("十百千万亿")) or len(spoken) < 2:
            continue
        assert digits_for_run(spoken) == str(value), spoken
        checked += 1
    assert checked >= 20


def test_cn2an_digit_by_digit_tables():
    cases = json.loads(shared("textnorm", "cn2an_test_cases.json").read_text(encoding="utf-8"))
    checked = 0
    for number, forms in cases["an2cn_test"]["input_data"].items():
        direct = forms[3]
        if not number.isdigit() or len(direct) < 3:
            continue
        assert norm.numbers(direct) == number, direct
        checked += 1
    assert checked >= 5


def test_wetextprocessing_number_table():
    lines = shared("textnorm", "wetextprocessing", "itn_chinese", "number.txt").read_text(encoding="utf-8")
    checked = 0
    for line in lines.splitlines():
        if " => " not in line:
            continue
        spoken, written = line.split(" => ")
        if not written.isdigit() or len(spoken) < 2 or set(spoken) - set("零一二三四五六七八九十百千万亿两"):
            continue
        assert norm.numbers(spoken) == written, spoken
        checked += 1
    assert checked >= 5


def test_index_map_points_back_to_source():
    text, index = norm.numbers_mapped("工号一零二三为您")
    assert text == "工号1023为您"
    assert [index[i] for i in range(len(text))][:2] == [0, 1]
    assert index[text.index("为")] == "工号一零二三为您".index("为")


def test_fuzzy_pinyin_folds_homophone_classes():
    assert fuzzy_syllable("zhong") == fuzzy_syllable("zon")
    assert fuzzy_syllable("gong") == "gon"
    units = norm.units(norm.canonical("公號1023"))
    assert [u.text for u in units] == ["公", "号", "1023"]


def test_a_polyphone_matches_a_homophone_of_any_of_its_common_readings():
    # the brand 美的 is said měi dì (pypinyin reads it měi de); Whisper writes what it heard: 美帝, 美地
    readings = TextNormalizer.readings(TextNormalizer.units("美的"))
    assert "di" in readings[1] and "de" in readings[1]
    # rare and archaic readings stay out: 立 is never wèi in a word, so 成立 is no homophone of 成为
    assert TextNormalizer.readings(TextNormalizer.units("立")) == [frozenset({"ni"})]
