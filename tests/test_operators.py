"""Rule operators on hand-made transcripts and timings (no ASR): conditions, per-hold rules, repeat-back,
exclusions, n-of, counts, windows before the end, disabled rules, red-line severity, word boundaries."""
from __future__ import annotations

import dataclasses

import pytest
from conftest import ROOT

from qa_audio.config import Anchor, Condition, Window, load_config
from qa_audio.judge.rules import PhraseMatcher, evaluate, explain
from qa_audio.judge.score import score_findings
from qa_audio.judge.timing import analyze_timing
from qa_audio.signal.spans import Span
from qa_audio.speech.transcribe import Utterance, Word

OPENING = "您好中联融资客服中心工号1023为您服务请问有什么可以帮您"
CLOSING_AT = 200


def utt(channel, start_s, text, *, prob=0.9, per_char_s=0.25):
    words = tuple(Word(start_s + i * per_char_s, start_s + (i + 1) * per_char_s, ch, prob)
                  for i, ch in enumerate(text))
    return Utterance(channel, start_s, start_s + len(text) * per_char_s, text, words)


def closing():
    return [utt("agent", CLOSING_AT, "请问还有其他可以帮您的吗"), utt("customer", CLOSING_AT + 4, "没有了谢谢"),
            utt("agent", CLOSING_AT + 6, "感谢您的来电再见")]


def spans_of(utterances, channel):
    return [Span(u.start_s, u.end_s) for u in utterances if u.channel == channel]


def timing_for(config, utterances, *, rings=0, music=()):
    """A timing block consistent with the utterances (speech spans from them), rings before the first one."""
    answer = min(u.start_s for u in utterances)
    bursts = [Span(answer - 5 * (rings - i) + 1.0, answer - 5 * (rings - i) + 2.0) for i in range(rings)]
    return analyze_timing(duration_s=max(u.end_s for u in utterances) + 2, agent=spans_of(utterances, "agent"),
                          customer=spans_of(utterances, "customer"), ring_bursts=bursts, music=list(music),
                          settings=config.timing)


@pytest.fixture(scope="module")
def matcher(config):
    return PhraseMatcher(config)


def judge(config, matcher, utterances, *, timing=None, facts=None):
    findings = evaluate(config, utterances, matcher=matcher, timing=timing, facts=facts)
    return {f.rule.id: f for f in findings}, score_findings(findings, config.scoring)


def shifted(utterances, by_s):
    return [utt(u.channel, u.start_s + by_s, u.text) for u in utterances]


@pytest.mark.parametrize("rings,greeting,status", [
    (2, OPENING, "n/a"),                                                    # answered in time: ANS-2 does not apply
    (5, OPENING, "fail"),                                                   # late and no apology
    (5, "您好中联融资客服中心工号1023很抱歉让您久等了请问有什么可以帮您", "pass"),
])
def test_ans2_applies_only_after_the_third_ring(config, matcher, rings, greeting, status):
    calls = shifted([utt("agent", 0, greeting), utt("customer", 16, "我想查一下还款日期")] + closing(), 30)
    found, _ = judge(config, matcher, calls, timing=timing_for(config, calls, rings=rings))
    assert found["ANS-2"].status == status
    assert found["ANS-1"].status == ("fail" if rings > 3 else "pass")
    if status == "fail":
        assert found["ANS-2"].evidence[0]["start_s"] == 30


def hold_call(before: str, after: str):
    """Greeting, a request (or not) at 20 s, 40 s of music from 24 s, the agent back at 66 s."""
    calls = [utt("agent", 0, OPENING), utt("customer", 15, "我想了解提前还款的手续费"),
             utt("agent", 20, before), utt("agent", 66, after), utt("customer", 80, "好的明白了")] + closing()
    return calls, [Span(24.5, 64.5)]


@pytest.mark.parametrize("before,after,hld1,hld3", [
    ("好的请您稍等我帮您查询一下", "感谢您的耐心等待手续费是百分之一", "pass", "pass"),
    ("好的您的信息我收到了", "感谢您的耐心等待手续费是百分之一", "fail", "pass"),
    ("好的请您稍等我帮您查询一下", "手续费是剩余本金的百分之一", "pass", "fail"),
])
def test_hold_rules_look_at_the_turns_around_each_hold(config, matcher, before, after, hld1, hld3):
    calls, music = hold_call(before, after)
    timing = timing_for(config, calls, music=music)
    assert len(timing.holds) == 1
    found, _ = judge(config, matcher, calls, timing=timing)
    assert (found["HLD-1"].status, found["HLD-3"].status) == (hld1, hld3)
    if hld1 == "fail":
        assert found["HLD-1"].evidence[0]["start_s"] == 20        # the agent's last turn before the hold
    if hld3 == "fail":
        assert found["HLD-3"].evidence[0]["start_s"] == 66        # the first turn after it


def test_hold_rules_are_not_applicable_without_a_hold(config, matcher):
    calls = [utt("agent", 0, OPENING), utt("customer", 15, "我想查询还款日期")] + closing()
    found, _ = judge(config, matcher, calls, timing=timing_for(config, calls))
    assert found["HLD-1"].status == found["HLD-3"].status == "n/a"
    assert "no hold" in found["HLD-1"].detail


def test_repeat_back_of_a_number_the_customer_gave(config, matcher):
    base = [utt("agent", 0, OPENING), utt("customer", 15, "我的手机号是幺三八零零一三八零零零")]
    said_back = base + [utt("agent", 25, "跟您确认一下手机号13800138000对吗")] + closing()
    found, _ = judge(config, matcher, said_back, timing=timing_for(config, said_back))
    assert found["CNF-1"].status == "pass"
    missed = base + [utt("agent", 25, "好的我帮您查一下")] + closing()
    found, score = judge(config, matcher, missed)
    assert found["CNF-1"].status == "fail" and found["CNF-1"].evidence[0]["channel"] == "customer"
    assert found["CNF-1"].deduction == 0 and score.score == 100       # shipped disabled: reported, not scored
    no_number = [utt("agent", 0, OPENING), utt("customer", 15, "我想查询还款日期")] + closing()
    found, _ = judge(config, matcher, no_number, timing=timing_for(config, no_number))
    assert found["CNF-1"].status == "n/a"


def test_switching_a_disabled_rule_on_makes_it_count(config, matcher):
    on = dataclasses.replace(config, rules=tuple(dataclasses.replace(r, enabled=True) if r.id == "EMP-1" else r
                                                 for r in config.rules))
    complaint = [utt("agent", 0, OPENING), utt("customer", 15, "你们的服务太差了我要投诉"),
                 utt("agent", 22, "这是系统自动扣的费用")] + closing()
    found, score = judge(on, matcher, complaint)
    assert found["EMP-1"].status == "fail" and score.score == 100 - on.rule("EMP-1").weight
    kind = [utt("agent", 0, OPENING), utt("customer", 15, "你们的服务太差了我要投诉"),
            utt("agent", 22, "非常抱歉给您带来不便我理解您的心情")] + closing()
    found, _ = judge(on, matcher, kind, timing=timing_for(on, kind))
    assert found["EMP-1"].status == "pass"
    before = [
        utt("agent", 0, "您好中联融资客服中心工号1023很抱歉我理解您的心情"),  # before the complaint: too early
        utt("customer", 15, "你们的服务太差了我要投诉"),
        utt("agent", 22, "这是系统自动扣的费用"),
    ] + closing()
    found, _ = judge(on, matcher, before, timing=timing_for(on, before))
    assert found["EMP-1"].status == "fail"
    calm = [utt("agent", 0, OPENING), utt("customer", 15, "我想查询还款日期")] + closing()
    assert judge(on, matcher, calm, timing=timing_for(on, calm))[0]["EMP-1"].status == "n/a"


def test_exclusions_and_exact_only_matching(config, matcher):
    rude = [utt("agent", 0, OPENING), utt("customer", 15, "我要改地址"), utt("agent", 20, "你说什么")] + closing()
    assert judge(config, matcher, rude)[0]["LST-3"].status == "fail"
    question = [
        utt("agent", 0, OPENING),
        utt("customer", 15, "我明天再打"),
        utt("agent", 20, "你说什么时候方便"),
    ] + closing()
    assert judge(config, matcher, question)[0]["LST-3"].status == "pass"  # excluded: a real question
    near = [utt("agent", 0, "喂你有什么事")] + closing()
    assert judge(config, matcher, near)[0]["LST-3"].status == "pass"  # 你有什么 is not 你说什么


def test_red_line_severity_fails_the_call_outright(config, matcher):
    calls = [utt("agent", 0, OPENING), utt("agent", 20, "跟你说了多少遍了你怎么还不明白")] + closing()
    found, score = judge(config, matcher, calls)
    assert found["BAN-2"].status == "fail" and found["BAN-2"].redline
    assert (score.score, score.verdict) == (config.scoring.redline_score, "fail")


def test_short_phrases_count_only_on_word_boundaries(config):
    acks = dataclasses.replace(
        config.rule("CLS-2"), id="LST-9", any_of=("ack",), exclude=(), window=Window(), role="agent"
    )
    lex = dataclasses.replace(
        config.lexicons["farewell"],
        name="ack",
        entries=tuple(
            dataclasses.replace(e, text=t)
            for e, t in zip(config.lexicons["farewell"].entries, ("是", "对", "好", "嗯"))
        ),
    )
    cfg = dataclasses.replace(config, rules=(acks,), lexicons={"ack": lex})
    m = PhraseMatcher(cfg)
    assert judge(cfg, m, [utt("agent", 0, "这是系统按照合同扣的")])[0]["LST-9"].status == "fail"  # 是 inside 这是
    assert judge(cfg, m, [utt("agent", 0, "是的您说")])[0]["LST-9"].status == "pass"


def test_n_of_counts_and_windows_before_the_end(config, matcher):
    rule = dataclasses.replace(
        config.rule("CLS-2"),
        id="CLS-8",
        any_of=(),
        n_of=("anything_else", "farewell"),
        n_of_count=2,
        window=Window(start="end", within_s=15),
    )
    cfg = dataclasses.replace(config, rules=(rule,))
    found, _ = judge(cfg, matcher, [utt("agent", 0, OPENING)] + closing())
    assert found["CLS-8"].status == "pass"
    found, _ = judge(
        cfg,
        matcher,
        [
            utt("agent", 0, OPENING),
            utt("agent", CLOSING_AT - 60, "请问还有其他可以帮您的吗"),
            utt("agent", CLOSING_AT, "感谢您的来电再见"),
        ],
    )
    assert found["CLS-8"].status == "fail" and "1 of" in found["CLS-8"].detail  # the question was too early
    counted = dataclasses.replace(config.rule("BAN-1"), id="BAN-8", redline_lexicons=(), max_count=1)
    cfg = dataclasses.replace(config, rules=(counted,))
    once = [utt("agent", 0, OPENING), utt("agent", 20, "这我不清楚")]
    assert judge(cfg, matcher, once)[0]["BAN-8"].status == "pass"
    assert judge(cfg, matcher, once + [utt("agent", 40, "肯定不行")])[0]["BAN-8"].status == "fail"


def test_after_anchor_and_metric_conditions(config, matcher):
    rule = dataclasses.replace(
        config.rule("CLS-1"),
        id="CLS-7",
        window=Window(),
        after=Anchor("organisation", "agent"),
        when=(Condition(metric="rings", above=0),),
    )
    cfg = dataclasses.replace(config, rules=(rule,))
    calls = shifted([utt("agent", 0, "请问还有其他可以帮您的吗"), utt("agent", 10, "您好中联融资客服中心工号1023")], 12)
    found, _ = judge(cfg, matcher, calls, timing=timing_for(cfg, calls, rings=2))
    assert found["CLS-7"].status == "fail"  # the only hit is before the anchor
    found, _ = judge(cfg, matcher, calls, timing=timing_for(cfg, calls, rings=0))
    assert found["CLS-7"].status == "n/a" and "applies only when rings > 0" in found["CLS-7"].detail


def test_cls3_reads_who_hung_up_from_call_metadata(config, matcher):
    calls = [utt("agent", 0, OPENING)] + closing()
    timing = timing_for(config, calls)
    assert judge(config, matcher, calls, timing=timing)[0]["CLS-3"].status == "n/a"
    assert judge(config, matcher, calls, timing=timing, facts={"hangup_side": "customer"})[0]["CLS-3"].status == "pass"
    found, _ = judge(config, matcher, calls, timing=timing, facts={"hangup_side": "agent"})
    assert found["CLS-3"].status == "fail" and "agent hung up first" in found["CLS-3"].evidence[0]["text"]


def test_lst2_long_unacknowledged_customer_turn(config, matcher):
    monologue = [utt("agent", 0, OPENING), utt("customer", 15, "我" * 160, per_char_s=0.25)] + closing()
    found, _ = judge(config, matcher, monologue, timing=timing_for(config, monologue))
    assert found["LST-2"].status == "fail" and found["LST-2"].evidence[0]["start_s"] == 15
    acked = monologue + [utt("agent", 30, "嗯"), utt("agent", 45, "对")]
    found, _ = judge(config, matcher, acked, timing=timing_for(config, acked))
    assert found["LST-2"].status == "pass"


def test_explain_says_what_each_rule_checks(config):
    text = explain(config.rule("HLD-3"), config)
    assert "the first 1 turn(s) after each hold longer than 10 s" in text and "感谢您的耐心等待" in text
    assert "applies only when rings > 3" in explain(config.rule("ANS-2"), config)
    assert "DISABLED" in explain(config.rule("CNF-1"), config)
    assert "repeat at least 4 of its digits in a row" in explain(config.rule("CNF-1"), config)
    for rule in config.rules:
        assert explain(rule, config).startswith(f"{rule.id}: ")


def test_another_companys_rulebook_needs_no_code(config):
    """configs/rail.yaml: its own organisation, agent identity, banned list and farewell in lexicons/rail/."""
    rail = load_config(ROOT / "configs" / "rail.yaml")
    assert "GRT-3" not in {r.id for r in rail.rules}
    assert rail.lexicons["organisation"].path.endswith("lexicons/rail/organisation.txt")
    assert rail.lexicons["anything_else"].path == config.lexicons["anything_else"].path  # shared, not copied
    greeting = [utt("agent", 0, "您好高铁客服中心工号3215很高兴为您服务请问有什么可以帮您")] + closing()
    rude = greeting[:1] + [utt("agent", 20, "这不归我们管")] + greeting[1:]
    ours, theirs = PhraseMatcher(config), PhraseMatcher(rail)
    assert judge(rail, theirs, greeting)[0]["GRT-1"].status == "pass"
    assert judge(config, ours, greeting)[0]["GRT-1"].status == "fail"
    assert judge(rail, theirs, rude)[0]["BAN-1"].status == "fail"
    assert judge(config, ours, rude)[0]["BAN-1"].status == "pass"


def test_speech_without_recognised_words_is_still_a_turn(scorer):
    """The agent's last word is a lone 嗯 Whisper returns nothing for: CLS-2 looks at it, not the line before."""
    from qa_audio.pipeline import Analysis

    said = [
        utt("agent", 0.5, OPENING),
        utt("customer", 9, "我想查询还款日期"),
        utt("agent", 14, "感谢您的耐心等待还款日是15号"),
        utt("customer", 20, "好的没有了"),
    ]
    regions = {"agent": [[0.4, 7.3], [13.9, 17.6], [25.0, 25.3]], "customer": [[8.9, 11.1], [19.9, 22.6]]}
    analysis = Analysis.from_dict(
        {
            "audio": {"path": "/calls/ends_on_hum.wav", "duration_s": 27.0, "sample_rate_hz": 8000, "channels": 2},
            "acoustics": {
                "duration_s": 27.0,
                "roles": {"agent": 0, "customer": 1},
                "regions": regions,
                "ring_bursts": [],
                "music": [],
                "levels_dbfs": {"agent": -20.0, "customer": -20.0},
                "voiced": regions,
            },
            "utterances": [u.to_dict(words=True) for u in said],
            "model": "test",
            "key": "k",
        }
    )
    result = scorer.judge(analysis).to_dict()
    cls2 = next(f for f in result["findings"] if f["rule"] == "CLS-2")
    assert cls2["status"] == "fail"  # 感谢您的耐心等待 is not the farewell: it was not the last turn
    assert cls2["evidence"][-1]["start_s"] == 25.0 and "no words recognised" in cls2["evidence"][-1]["text"]
    assert [u["text"] for u in result["transcript"]] == [u.text for u in said]  # the transcript shows only words


@pytest.mark.parametrize(
    "greeting,status",
    [
        ("您好中联融资客服中心八号为您服务请问有什么可以帮您", "pass"),  # seed 001's 中联融资客服中心XX号
        ("您好我是六号客服中联融资客服中心请问有什么可以帮您", "pass"),
        ("您好中联融资客服中心12号客服为您服务请问有什么可以帮您", "pass"),
        ("您好中联融资客服中心工后五一千为您服务请问有什么可以帮您", "pass"),  # 工号5172 as Whisper base hears it
        ("您好中联融资客服中心高耗五一千为您服务请问有什么可以帮您", "pass"),
        ("您好中联融资客服中心请问有什么可以帮您您的还款日是每月15号", "fail"),  # a date is not an employee number
        ("您好中联融资客服中心我是王丽请问有什么可以帮您", "fail"),
    ],
)
def test_employee_number_in_the_seeds_short_form_and_as_misheard(config, matcher, greeting, status):
    calls = [utt("agent", 1.0, greeting)] + closing()
    found, _ = judge(config, matcher, calls, timing=timing_for(config, calls))
    assert found["GRT-1"].status == status
