"""Re-checking phrase decisions against the audio (#14): a required phrase the transcript lost is
found again in the audio; a phrase that was not said is not; a fuzzy hit the audio does not bear
out stops costing the agent points."""
from __future__ import annotations

import dataclasses

import pytest
from conftest import SAMPLES

pytestmark = pytest.mark.asr


def _with_text(analysis, old: str, new: str):
    """The analysis with ``old`` replaced by ``new`` in the agent's transcript (a mis-hearing)."""
    from qa_audio.speech.transcribe import Utterance, Word

    out = []
    for u in analysis.utterances:
        if u.channel == "agent" and old in u.text:
            text = u.text.replace(old, new)
            u = Utterance(u.channel, u.start_s, u.end_s, text, (Word(u.start_s, u.end_s, text, 0.9),))
        out.append(u)
    return dataclasses.replace(analysis, utterances=tuple(out))


@pytest.fixture(scope="module")
def compliant(scorer):
    from qa_audio.signal.audio import load_audio

    audio = load_audio(SAMPLES / "compliant.wav")
    return audio, scorer.analyze(audio)


def _finding(result, rule):
    return next(f for f in result.findings if f.rule.id == rule)


def test_a_mis_heard_organisation_is_confirmed_in_the_audio(scorer, compliant):
    audio, analysis = compliant
    said = next(u.text for u in analysis.utterances if u.channel == "agent" and "中联融资" in u.text)
    assert said
    lost = _with_text(analysis, "中联融资客服中心", "总领导处")
    assert _finding(scorer.judge(lost), "GRT-1").status == "fail"          # the transcript alone fails it
    checked = scorer.recheck(lost, audio)
    grt1 = _finding(scorer.judge(checked), "GRT-1")
    assert grt1.status == "pass", grt1.detail
    verified = [e for e in grt1.evidence if e.get("how") == "verified"]
    assert verified and verified[0]["lexicon"] == "organisation" and verified[0]["verdict"] == "confirmed"
    assert "confirmed against the audio" in grt1.detail
    assert checked.stage_s["recheck_s"] > 0
    # the checks are part of the stored analysis: a re-judge without the audio gives the same finding
    from qa_audio.pipeline import Analysis

    again = Analysis.from_dict(checked.to_dict())
    assert _finding(scorer.judge(again), "GRT-1").status == "pass"


def test_a_phrase_that_was_not_said_is_not_found_in_the_audio(scorer):
    from qa_audio.signal.audio import load_audio

    audio = load_audio(SAMPLES / "bad_greeting.wav")
    analysis = scorer.recheck(scorer.analyze(audio), audio)
    assert _finding(scorer.judge(analysis), "GRT-1").status == "fail"
    assert analysis.checks and all(c.verdict == "rejected" for c in analysis.checks if c.rule == "GRT-1")


def test_a_fuzzy_banned_hit_the_audio_does_not_bear_out_goes_to_review(scorer, compliant):
    audio, analysis = compliant
    target = next(u for u in analysis.utterances if u.channel == "agent" and len(u.text) >= 8)
    fake = _with_text(analysis, target.text, "公司规定就是这样的没办理")      # a fuzzy near miss of a banned phrase
    ban = _finding(scorer.judge(fake), "BAN-1")
    assert ban.status == "fail" and any(e.get("how") == "fuzzy" for e in ban.evidence), ban.detail
    checked = scorer.recheck(fake, audio)
    result = scorer.judge(checked)
    ban = _finding(result, "BAN-1")
    assert ban.status == "fail" and ban.low_confidence and "not borne out" in ban.detail, ban.detail
    assert any(c.kind == "fuzzy" and c.verdict == "rejected" for c in checked.checks)
    assert result.score.verdict == "review"            # never silently passed, never silently failed


def test_recheck_can_be_switched_off(scorer, compliant):
    audio, analysis = compliant
    off = dataclasses.replace(scorer.config, recheck=dataclasses.replace(scorer.config.recheck, enabled=False))
    from qa_audio.pipeline import Scorer

    plain = Scorer(off, model=scorer.model, model_info=scorer._model_info)
    lost = _with_text(analysis, "中联融资客服中心", "总领导处")
    assert plain.recheck(lost, audio).checks == ()
    assert _finding(plain.judge(lost), "GRT-1").status == "fail"


def test_a_required_phrase_found_only_fuzzily_must_be_borne_out_by_the_audio(scorer, compliant):
    audio, analysis = compliant
    fake = _with_text(analysis, "中联融资客服中心", "总领导处客服中心")       # fuzzy ~ 中联融资客服中心
    grt1 = _finding(scorer.judge(fake), "GRT-1")
    assert grt1.status == "pass" and any(e.get("how") == "fuzzy" for e in grt1.evidence)
    # the audio says 中联融资客服中心: the fuzzy hit is confirmed and the pass stands
    assert _finding(scorer.judge(scorer.recheck(fake, audio)), "GRT-1").status == "pass"
    # over audio that does not say it (a silent agent channel), the fuzzy pass does not stand
    import numpy as np

    from qa_audio.signal.audio import Audio

    quiet = Audio(audio.path, np.vstack([np.zeros_like(audio.samples[0]), audio.samples[1]]), audio.rate_hz,
                  audio.source_rate_hz, audio.source_channels, audio.codec)
    grt1 = _finding(scorer.judge(scorer.recheck(fake, quiet)), "GRT-1")
    assert grt1.status == "fail" and "not borne out" in grt1.detail and grt1.low_confidence


def test_a_pass_rests_on_its_exact_hit_not_on_an_overlapping_fuzzy_one(scorer, compliant):
    _, analysis = compliant
    said = _with_text(analysis, "中联融资客服中心", "中联融资客服中心我理解您的心情")
    emp = _finding(scorer.judge(said), "EMP-1")
    if emp.status == "pass":                       # EMP-1 needs an apology too; the empathy hit is what we check
        assert all(e.get("how") != "fuzzy" for e in emp.evidence)
    from qa_audio.judge.recheck import checkable

    assert not (emp.status == "pass" and checkable(emp))


def test_a_fuzzy_hit_is_confirmed_by_the_window_saying_a_phrase_of_its_lexicon(scorer, compliant):
    audio, analysis = compliant
    last = next(u.text for u in reversed(analysis.utterances) if u.channel == "agent" and "再见" in u.text)
    fake = _with_text(analysis, last, "感谢您的来宾")           # the only farewell left: fuzzy ~ 感谢您的来电
    rechecked = scorer.recheck(fake, audio)
    farewell = [c for c in rechecked.checks if c.lexicon == "farewell" and c.kind == "fuzzy"]
    assert farewell and all(c.verdict == "confirmed" and c.how == "plain" for c in farewell)
    assert _finding(scorer.judge(rechecked), "CLS-2").status == "pass"


def test_nothing_is_confirmed_over_audio_whisper_hears_nothing_in(scorer, compliant):
    """A window whose unbiased decode is empty gives no transcript to weigh a candidate against:
    a missing phrase stays missing (a silent agent channel never 'says' its greeting)."""
    import numpy as np

    from qa_audio.signal.audio import Audio

    audio, analysis = compliant
    quiet = Audio(audio.path, np.vstack([np.zeros_like(audio.samples[0]), audio.samples[1]]), audio.rate_hz,
                  audio.source_rate_hz, audio.source_channels, audio.codec)
    lost = _with_text(analysis, "中联融资客服中心", "总领导处")
    checked = scorer.recheck(lost, quiet)
    grt1 = [c for c in checked.checks if c.rule == "GRT-1"]
    assert grt1 and all(c.verdict == "rejected" for c in grt1)
    assert _finding(scorer.judge(checked), "GRT-1").status == "fail"
