"""Turn-taking (#13): interruptions by content and timing, backchannels, holds, echo, music vs speech."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import soxr
from conftest import SHARED

from qa_audio.config import TimingSettings
from qa_audio.judge.holds import find_holds
from qa_audio.judge.turns import find_interruptions, is_acknowledgement, is_echo_text
from qa_audio.signal.echo import echo_path
from qa_audio.signal.spans import Span, subtract, total_s
from qa_audio.speech.transcribe import Word

ACKS = frozenset({"嗯", "对", "好", "好的", "是的", "明白", "我明白了"})
SETTINGS = TimingSettings()


@pytest.mark.parametrize("text, ack", [("嗯", True), ("嗯嗯好的", True), ("对对对", True), ("我明白了。", True),
                                       ("好的我帮您查一下", False), ("等一下", False), ("", False)])
def test_acknowledgements_are_recognised_by_their_words(text, ack):
    assert is_acknowledgement(text, ACKS) is ack


def test_a_short_cut_in_with_words_is_an_interruption_whatever_the_overlap():
    customer = [Span(10.0, 14.0)]                   # the customer goes on 0.4 s past the agent's onset
    agent = [Span(13.6, 16.0)]
    words = [Word(13.6, 14.0, "不好意思", 0.9), Word(14.0, 16.0, "打断一下", 0.9)]
    found = find_interruptions(agent, customer, by="agent", settings=SETTINGS, words=words, acknowledgements=ACKS)
    assert [round(i.at_s, 2) for i in found] == [13.6]


def test_a_cut_in_that_line_noise_breaks_into_bursts_is_one_by_its_words():
    # at 8 dB SNR the frame gate keeps only bursts of the agent's sentence; Whisper heard it whole
    customer = [Span(15.8, 21.7)]
    agent = [Span(20.07, 20.85), Span(21.39, 21.6), Span(21.93, 22.65)]
    words = [Word(20.07, 20.35, "打断", 0.95), Word(20.35, 20.81, "一下", 0.9), Word(21.27, 21.45, "您", 0.99),
             Word(21.45, 21.61, "的", 1.0),
             Word(21.61, 21.99, "卡号", 0.9), Word(21.99, 22.65, "是多少", 0.99)]
    said = [Word(15.8, 21.6, "我上个月的账单为什么多扣了五十元", 0.9)]
    found = find_interruptions(agent, customer, by="agent", settings=SETTINGS, words=words, acknowledgements=ACKS,
                               other_words=said)
    assert [round(i.at_s, 2) for i in found] == [20.07]
    # the same burst with nothing said after it stays a backchannel the customer talked through
    alone = [Word(20.07, 20.85, "能忍", 0.9)]
    assert find_interruptions(agent[:1], customer, by="agent", settings=SETTINGS, words=alone, acknowledgements=ACKS,
                              other_words=said) == []


def test_a_cut_in_starts_where_its_words_do_when_noise_hides_its_first_syllables():
    customer = [Span(13.6, 19.2)]
    agent = [Span(19.02, 21.0)]                     # the frames begin 0.7 s late; the words do not
    words = [Word(18.34, 18.7, "这个", 0.82), Word(18.7, 19.04, "情况", 1.0), Word(19.04, 21.0, "我已经了解了", 0.9)]
    said = [Word(13.6, 19.2, "我想查询一下我的还款日期", 0.9)]
    found = find_interruptions(agent, customer, by="agent", settings=SETTINGS, words=words, acknowledgements=ACKS,
                               other_words=said)
    assert [round(i.at_s, 2) for i in found] == [18.34]
    # doubtful words before the frames (background voices) or the customer's own words echoed do not move it
    doubtful = [Word(18.34, 18.7, "这个", 0.2), Word(18.7, 19.04, "情况", 0.3), *words[2:]]
    assert find_interruptions(agent, customer, by="agent", settings=SETTINGS, words=doubtful, acknowledgements=ACKS,
                              other_words=said) == []
    echoed = [Word(18.34, 19.0, "还款日期", 0.9), *words[2:]]
    assert find_interruptions(agent, customer, by="agent", settings=SETTINGS, words=echoed, acknowledgements=ACKS,
                              other_words=said) == []


def test_cutting_into_background_voices_whisper_loops_on_is_no_interruption():
    # babble at 10 dB on the customer's leg: bursts of frames and one phrase written over and over
    customer = [Span(8.0 + 0.5 * k, 8.15 + 0.5 * k) for k in range(18)]
    phrase = "向茶匹印象我的概软还款"
    said = [Word(8.3 + 0.2 * k, 8.5 + 0.2 * k, phrase[k % len(phrase)], 0.99) for k in range(45)]
    agent = [Span(12.75, 16.7)]
    words = [Word(12.75, 16.7, "您好中联融资客服中心", 0.9)]
    assert find_interruptions(agent, customer, by="agent", settings=SETTINGS, words=words, acknowledgements=ACKS,
                              other_words=said) == []


def test_a_backchannel_right_before_the_next_turn_is_not_an_interruption():
    customer = [Span(10.0, 14.0)]
    agent = [Span(13.7, 14.1), Span(14.5, 18.0)]     # 嗯 in the customer's last half second, then the reply
    words = [Word(13.7, 14.1, "嗯", 0.8), Word(14.5, 18.0, "好的我帮您查一下", 0.9)]
    assert find_interruptions(agent, customer, by="agent", settings=SETTINGS, words=words,
                              acknowledgements=ACKS) == []
    # a long acknowledgement (嗯嗯对对对, 1.3 s) mid-utterance is still no interruption
    words = [Word(11.0, 12.3, "嗯嗯对对对", 0.8)]
    assert find_interruptions([Span(11.0, 12.3)], customer, by="agent", settings=SETTINGS, words=words,
                              acknowledgements=ACKS) == []


def test_without_words_a_short_utterance_is_a_backchannel_and_a_long_one_is_not():
    customer = [Span(10.0, 16.0)]
    assert find_interruptions([Span(12.0, 12.6)], customer, by="agent", settings=SETTINGS) == []
    found = find_interruptions([Span(12.0, 14.5)], customer, by="agent", settings=SETTINGS)
    assert [i.at_s for i in found] == [12.0]
    # a click (a 60 ms run of speech frames) does not keep the customer's turn going
    assert find_interruptions([Span(16.5, 19.0)], customer + [Span(16.6, 16.66)], by="agent",
                              settings=SETTINGS) == []


def test_the_other_party_must_go_on_in_words_where_the_transcript_has_theirs():
    customer = [Span(10.0, 13.0), Span(13.9, 14.3)]           # finished at 13.0; a 是的 at 13.9
    agent = [Span(13.5, 16.0)]
    mine = [Word(13.5, 16.0, "好的我帮您查一下", 0.9)]
    said = [Word(10.0, 12.9, "我想问一下还款", 0.9), Word(13.9, 14.3, "是的", 0.8)]
    assert find_interruptions(agent, customer, by="agent", settings=SETTINGS, words=mine, acknowledgements=ACKS,
                              other_words=said) == []
    # the same timing, but the customer's words go on under the agent's onset: an interruption
    said = [Word(10.0, 12.9, "我想问一下还款", 0.9), Word(13.9, 14.3, "的时间", 0.8)]
    customer = [Span(10.0, 14.3)]
    found = find_interruptions(agent, customer, by="agent", settings=SETTINGS, words=mine, acknowledgements=ACKS,
                               other_words=said)
    assert [i.at_s for i in found] == [13.5]


def test_line_noise_where_whisper_heard_no_word_of_the_other_does_not_make_an_interruption():
    said = [Word(10.0, 12.9, "我想问一下还款", 0.9)]
    mine = [Word(13.6, 16.0, "好的我帮您查一下", 0.9)]
    noise = [Span(10.0, 13.0), Span(13.4, 13.5), Span(13.9, 14.0)]     # bursts of crackle after the customer
    assert find_interruptions([Span(13.6, 16.0)], noise, by="agent", settings=SETTINGS, words=mine,
                              acknowledgements=ACKS, other_words=said) == []
    # speech Whisper dropped (no words, but a second of it after the onset) still counts
    dropped = [Span(10.0, 14.8)]
    found = find_interruptions([Span(13.6, 16.0)], dropped, by="agent", settings=SETTINGS, words=mine,
                               acknowledgements=ACKS, other_words=said)
    assert [i.at_s for i in found] == [13.6]


def test_the_other_partys_echo_transcribed_on_this_channel_is_not_this_party_speaking():
    assert is_echo_text("即使今天后每次压缩机被未营电器接收", "即使今天后每支压缩机被喂灵电器兼变")
    assert not is_echo_text("好的我帮您查一下", "我想问一下提前还款的手续费")
    # a run of the other's words inside a stretch that is partly this party's own speech
    assert is_echo_text("缩机被未营电器接收我不知道", "今天后每支压缩机被喂灵电器兼变对")
    # a key phrase repeated inside a longer reply of one's own is no echo
    assert not is_echo_text("提前还款的话需要先在应用里提交申请", "我想了解一下提前还款的手续费")
    customer = [Span(10.0, 16.0)]
    echo = [Word(12.0, 14.5, "那我什么时候能收到退款", 0.7)]
    theirs = [Word(11.9, 14.4, "那我什么时候能收到退款", 0.9)]
    assert find_interruptions([Span(12.0, 14.5)], customer, by="agent", settings=SETTINGS, words=echo,
                              acknowledgements=ACKS, other_words=theirs) == []


def test_an_echo_path_is_found_through_double_talk_and_crackle():
    rng = np.random.default_rng(5)
    frames = 3000
    far = np.where(rng.random(frames) < 0.5, rng.uniform(-30, -10, frames), -70.0)   # the far party's levels
    active = far > -60
    echo = np.concatenate([np.full(3, -70.0), far[:-3] - 25.0])                    # 90 ms late, 25 dB down
    near = np.maximum(echo, -60.0 + rng.normal(0, 1, frames))
    talk = rng.random(frames) < 0.25                                                 # the near party's own speech
    near[talk] = rng.uniform(-25, -8, talk.sum())
    pops = rng.random(frames) < 0.05                                                  # crackle
    near[pops] += 30.0
    path = echo_path(near, far, active, frame_s=0.03)
    assert path is not None and abs(path.lag_s - 0.09) < 0.035 and -29 < path.gain_db < -21
    unrelated = np.where(rng.random(frames) < 0.5, rng.uniform(-30, -10, frames), -60.0)
    unrelated[pops] += 30.0
    assert echo_path(unrelated, far, active, frame_s=0.03) is None


def test_short_music_on_hold_is_a_hold_and_a_conversation_splits_two_holds():
    agent = [Span(5.0, 8.0), Span(12.5, 15.0), Span(16.0, 18.0), Span(26.0, 28.0)]
    customer = [Span(15.2, 15.9), Span(18.2, 21.0)]
    music = [Span(8.6, 12.3), Span(21.5, 25.8)]       # 3.7 s and 4.3 s of music, a conversation between
    holds = find_holds(agent=agent, music=music, hold_cues_s=[], after_s=5.0, call_end_s=30.0,
                       settings=SETTINGS, customer=customer)
    assert [(round(h.start_s, 1), round(h.end_s, 1)) for h in holds] == [(8.0, 12.5), (21.5, 26.0)]


def _clip(path, rate_hz=8000):
    data, rate = sf.read(path, dtype="float32", always_2d=True)
    return soxr.resample(data[:, 0], rate, rate_hz)


def _pink(rng, n):
    from scipy.signal import lfilter

    x = lfilter([0.049922035, -0.095993537, 0.050612699, -0.004408786], [1, -2.494956002, 2.017265875, -0.522189400],
                rng.normal(0, 1, n))
    return x / np.sqrt(np.mean(x ** 2))


def _call(agent: np.ndarray, customer: np.ndarray, tmp_path, name="call.wav"):
    n = max(len(agent), len(customer))
    stereo = np.zeros((n, 2), dtype=np.float32)
    stereo[: len(agent), 0], stereo[: len(customer), 1] = agent, customer
    path = tmp_path / name
    sf.write(path, stereo, 8000, subtype="PCM_16")
    return path


def test_speech_over_stationary_noise_is_not_music_and_reaches_asr(config, tmp_path):
    """Real speech at 10 dB SNR over pinkish line noise: once taken for minutes of music on hold."""
    from qa_audio.pipeline import analyze_acoustics, measure_timing
    from qa_audio.signal.audio import load_audio

    rng = np.random.default_rng(4)
    clips = [_clip(p) for p in sorted((SHARED / "zh-speech-aishell").glob("*.flac"))[:8]]
    speech = np.concatenate([np.concatenate([c, np.zeros(int(0.4 * 8000))]) for c in clips])
    speech = 0.1 * speech / np.sqrt(np.mean(speech ** 2))
    customer = speech + 0.1 / 10 ** (10 / 20) * _pink(rng, len(speech))
    agent = 0.001 * _pink(rng, len(speech))
    acoustics = analyze_acoustics(load_audio(_call(agent, customer, tmp_path)), config)
    assert list(acoustics.music) == []
    assert measure_timing(acoustics, config=config).holds == ()
    # what the clean recording sends to Whisper, the noisy one mostly sends too: at 10 dB SNR the energy
    # gate (noise floor + 10 dB) loses quiet phrases (81% measured); never to a music detector
    clean = analyze_acoustics(load_audio(_call(agent, speech + 1e-4 * _pink(rng, len(speech)), tmp_path, "clean.wav")),
                              config).regions["customer"]
    noisy = acoustics.regions["customer"]
    assert total_s(clean) - total_s(subtract(clean, noisy)) >= 0.75 * total_s(clean)


def test_the_customers_echo_on_the_agent_channel_is_not_agent_speech(config, tmp_path):
    from qa_audio.pipeline import analyze_acoustics, measure_timing
    from qa_audio.signal.audio import load_audio

    rng = np.random.default_rng(5)
    clips = [_clip(p) for p in sorted((SHARED / "zh-speech-aishell").glob("*.flac"))[8:14]]
    customer = np.concatenate([np.concatenate([c, np.zeros(int(0.6 * 8000))]) for c in clips])
    customer = 0.1 * customer / np.sqrt(np.mean(customer ** 2))
    delay = int(0.12 * 8000)
    agent = np.zeros_like(customer)
    agent[delay:] = customer[:-delay] * 10 ** (-25 / 20)                 # echo 25 dB down, 120 ms late
    agent += 0.0005 * rng.normal(0, 1, len(agent))
    customer = customer + 0.0005 * rng.normal(0, 1, len(customer))
    acoustics = analyze_acoustics(load_audio(_call(agent, customer, tmp_path)), config)
    assert sum(r.duration_s for r in acoustics.regions["agent"]) < 1.0
    assert measure_timing(acoustics, config=config).interruptions == ()


def test_silero_hears_no_speech_in_real_hold_music():
    from qa_audio.signal.vad import neural_speech

    music = _clip(sorted((SHARED / "hold-music").glob("*.flac"))[0])[: 60 * 8000]
    assert neural_speech(music, rate_hz=8000, within=[Span(0.0, 60.0)]) == []


def test_hard_generator_subset_keeps_its_figures(tmp_path):
    """A regression guard on the adversarial generator (scripts/make_hard_set.py), audio only, seed 3.

    These are today's measured figures minus a margin, not the issue's targets (see the README).
    """
    from test_timing_set import load_script

    maker, evaluator = load_script("make_hard_set"), load_script("eval_timing")
    maker.make_set(tmp_path, count=8, seed=3)
    report = evaluator.evaluate(tmp_path)
    assert report["rings_exact"] == 1.0
    assert report["transcript_completeness"] >= 0.98
    assert report["holds"]["precision"] >= 0.85 and report["holds"]["recall"] >= 0.85
    assert report["agent_interruptions"]["precision"] >= 0.7 and report["agent_interruptions"]["recall"] >= 0.8
    assert report["backchannels_reported_as_interruptions"] <= 0.12       # at most one of the subset's nine
    assert report["hangup_side_accuracy"] == 1.0


def test_the_leg_that_goes_dead_first_hung_up_and_a_busy_tone_means_the_other_side_did(config):
    from qa_audio.signal.hangup import decide_hangup, disconnect_bursts, line_end

    rng = np.random.default_rng(6)
    live = 0.003 * rng.normal(0, 1, 10 * 8000)
    dead = live.copy()
    dead[int(7.5 * 8000):] = 0.0                                     # the customer's leg stops at 7.5 s
    ends = {"agent": line_end(live, rate_hz=8000, after_s=7.0, tone=[]),
            "customer": line_end(dead, rate_hz=8000, after_s=7.0, tone=[])}
    hangup = decide_hangup(ends, duration_s=10.0)
    assert hangup.side == "customer" and hangup.at_s == pytest.approx(7.5, abs=0.05)
    # no dead leg, but China's busy tone on the agent's leg after the last word: the customer hung up
    t = np.arange(int(0.35 * 8000)) / 8000
    busy = np.tile(np.concatenate([0.25 * np.sin(2 * np.pi * 450 * t), np.zeros(len(t))]), 4)
    agent = live.copy()
    agent[8 * 8000: 8 * 8000 + len(busy)] += busy[: 2 * 8000]
    bursts = disconnect_bursts(agent, rate_hz=8000, plan=config.disconnect_plan, settings=config.timing)
    assert len(bursts) >= 2
    ends = {"agent": line_end(agent, rate_hz=8000, after_s=7.0, tone=bursts),
            "customer": line_end(live, rate_hz=8000, after_s=7.0, tone=[])}
    assert decide_hangup(ends, duration_s=10.0).side == "customer"
    # both legs run to the end: the audio does not say
    assert decide_hangup({"agent": line_end(live, rate_hz=8000, after_s=7.0, tone=[]),
                          "customer": line_end(live, rate_hz=8000, after_s=7.0, tone=[])}, duration_s=10.0) is None


def test_cls3_uses_metadata_first_and_the_audio_otherwise(config):
    from qa_audio.judge.rules import PhraseMatcher
    from qa_audio.judge.rules import evaluate as evaluate_rules
    from qa_audio.judge.timing import analyze_timing
    from qa_audio.signal.hangup import Hangup

    matcher = PhraseMatcher(config)

    def evaluate(config, utterances, **kw):
        return evaluate_rules(config, utterances, matcher=matcher, **kw)

    agent, customer = [Span(1.0, 5.0), Span(9.0, 12.0)], [Span(6.0, 8.5)]
    heard = analyze_timing(duration_s=14, agent=agent, customer=customer, settings=config.timing,
                           hangup=Hangup("agent", "the agent channel went dead at 12.5 s", 12.5))
    cls3 = {f.rule.id: f for f in evaluate(config, [], timing=heard)}["CLS-3"]
    assert cls3.status == "fail" and "audio" in cls3.evidence[0]["text"]
    cls3 = {f.rule.id: f for f in evaluate(config, [], timing=heard, facts={"hangup_side": "customer"})}["CLS-3"]
    assert cls3.status == "pass"                            # the metadata overrides what the audio showed
    cls3 = {f.rule.id: f for f in evaluate(config, [], timing=heard, facts={"hangup_side": "agent"})}["CLS-3"]
    assert cls3.status == "fail" and "metadata" in cls3.evidence[0]["text"]
    silent = analyze_timing(duration_s=14, agent=agent, customer=customer, settings=config.timing)
    assert {f.rule.id: f for f in evaluate(config, [], timing=silent)}["CLS-3"].status == "n/a"


def test_a_check_in_asking_to_keep_waiting_joins_a_hold_whatever_the_customer_channel_carries():
    agent = [Span(5.0, 8.0), Span(30.0, 33.0), Span(60.0, 64.0)]
    babble = [Span(29.0, 34.5)]                                  # background voices on the customer's leg
    music = [Span(8.6, 29.5), Span(33.5, 59.5)]
    holds = find_holds(agent=agent, music=music, hold_cues_s=[8.0, 33.0], after_s=5.0, call_end_s=70.0,
                       settings=SETTINGS, customer=babble)
    assert [(h.start_s, h.end_s, len(h.waits)) for h in holds] == [(8.0, 60.0, 2)]
    # without the request in it, that much customer speech makes it a conversation: two holds
    holds = find_holds(agent=agent, music=music, hold_cues_s=[8.0], after_s=5.0, call_end_s=70.0,
                       settings=SETTINGS, customer=babble)
    assert len(holds) == 2


def test_words_decide_backchannels_loosely_timed_words_and_whispers_inventions():
    customer = [Span(10.0, 16.0)]
    # 对对 whose last word's time leaks into the next word (您) is still a backchannel
    words = [Word(12.0, 12.2, "对", 0.8), Word(12.2, 12.35, "对", 0.8), Word(12.35, 12.6, "您", 0.7)]
    assert find_interruptions([Span(12.0, 12.5)], customer, by="agent", settings=SETTINGS, words=words,
                              acknowledgements=ACKS) == []
    # 中文字幕 for a lone sound counts as no words: judged by its length (a 0.5 s sound is no cut-in)
    words = [Word(12.0, 12.1, "中", 0.3), Word(12.1, 12.2, "文", 0.3), Word(12.2, 12.3, "字", 0.3),
             Word(12.3, 12.5, "幕", 0.3)]
    assert find_interruptions([Span(12.0, 12.5)], customer, by="agent", settings=SETTINGS, words=words,
                              acknowledgements=ACKS, inventions=frozenset({"中文字幕"})) == []
    # words the party's own speech does not back (the other party's echo, transcribed) do not count
    words = [Word(12.0, 13.5, "我想问一下", 0.8)]
    assert find_interruptions([Span(12.0, 12.3)], customer, by="agent", settings=SETTINGS, words=words,
                              acknowledgements=ACKS) == []


def test_dead_air_under_background_voices_is_found_with_the_transcript():
    from qa_audio.judge.timing import analyze_timing

    # the agent's region runs across a 12 s silence (background voices in the room kept it open), but the
    # agent's own speech frames and words stop at 20 s and start again at 32 s
    regions = {"agent": [Span(1.0, 40.0)], "customer": [Span(8.0, 12.0)]}
    voiced = {"agent": [Span(1.0, 7.0), Span(14.0, 20.0), Span(24.0, 24.1), Span(28.0, 28.05), Span(32.0, 40.0)],
              "customer": [Span(8.0, 12.0)]}
    words = {"agent": [Word(1.0, 7.0, "您好中联融资客服中心", 0.9), Word(14.0, 20.0, "我帮您查一下", 0.9),
                       Word(32.0, 40.0, "让您久等了", 0.9)],
             "customer": [Word(8.0, 12.0, "我想查询还款", 0.9)]}
    timing = analyze_timing(duration_s=41, settings=SETTINGS, voiced=voiced, words=words, **regions)
    assert [(round(d.start_s), round(d.end_s)) for d in timing.dead_air] == [(20, 32)]
    # without the transcript the regions decide, as before: no dead air
    assert analyze_timing(duration_s=41, settings=SETTINGS, voiced=voiced, **regions).dead_air == ()
    # speech the strict gate lost in loud line noise still has its words: no dead air
    words["customer"].append(Word(21.0, 31.0, "那我需要准备什么材料呢我还想问一下", 0.8))
    assert analyze_timing(duration_s=41, settings=SETTINGS, voiced=voiced, words=words, **regions).dead_air == ()


def test_a_short_utterance_whose_words_whisper_doubts_is_judged_by_its_length():
    customer = [Span(10.0, 12.8)]                       # goes on 0.8 s past the agent's onset, then stops
    agent = [Span(12.0, 12.6)]                          # 嗯嗯 heard as 恩人, at p 0.29 / 0.44
    doubted = [Word(12.0, 12.4, "恩", 0.29), Word(12.4, 12.6, "人", 0.44)]
    assert find_interruptions(agent, customer, by="agent", settings=SETTINGS, words=doubted,
                              acknowledgements=ACKS) == []
    # the same words heard surely are a (short) cut-in
    sure = [Word(12.0, 12.4, "等一", 0.9), Word(12.4, 12.6, "下", 0.9)]
    found = find_interruptions(agent, customer, by="agent", settings=SETTINGS, words=sure, acknowledgements=ACKS)
    assert [i.at_s for i in found] == [12.0]


def _said(channel, *words):
    from qa_audio.speech.words import Utterance

    ws = tuple(Word(a, b, t, 0.9) for a, b, t in words)
    return Utterance(channel, ws[0].start_s, ws[-1].end_s, "".join(w.text for w in ws), ws)


def test_a_bridged_region_is_cut_into_turns_where_the_other_party_replied():
    """Line noise can hold one party's speech region open for a minute: the rules must still see
    'the last turn' as the turn after the customer's last reply, not the whole call."""
    from qa_audio.judge.turns import split_at_replies
    from qa_audio.speech.normalize import TextNormalizer

    agent = _said("agent", (1.0, 2.0, "您好"), (2.0, 3.0, "请问还有其他可以帮您的吗"), (6.0, 7.0, "感谢您的来电"),
                  (7.0, 7.5, "再见"))
    reply, ack = _said("customer", (3.5, 5.0, "没有了谢谢")), _said("customer", (4.0, 4.3, "嗯"))
    turns = split_at_replies([agent, reply], min_gap_s=0.3, acknowledgements=ACKS, normalizer=TextNormalizer())
    mine = [u for u in turns if u.channel == "agent"]
    assert [u.text for u in mine] == ["您好请问还有其他可以帮您的吗", "感谢您的来电再见"]
    assert (mine[1].start_s, mine[1].end_s) == (6.0, 7.5)
    # a pause the other party filled with only 嗯 is no turn's end; with no reply at all neither
    for others in ([ack], []):
        alone = split_at_replies([agent, *others], min_gap_s=0.3, acknowledgements=ACKS, normalizer=TextNormalizer())
        assert [u.text for u in alone if u.channel == "agent"] == [agent.text]


def test_an_announced_silence_the_customer_talks_through_is_no_hold():
    agent = [Span(5.0, 14.7), Span(28.0, 30.0)]             # 我先帮您查一下 at 14.7 s, then silent while ...
    customer = [Span(15.6, 26.4)]                           # ... the customer explains for 11 s
    talked = find_holds(agent=agent, music=[], hold_cues_s=[14.7], after_s=5.0, call_end_s=40.0,
                        settings=SETTINGS, customer=customer, customer_said=[Span(15.6, 26.4)])
    assert talked == []
    # background voices make the customer's leg "speech" all through a real hold; their words say it is not
    babble = [Span(14.9, 27.9)]
    waited = find_holds(agent=agent, music=[], hold_cues_s=[14.7], after_s=5.0, call_end_s=40.0,
                        settings=SETTINGS, customer=babble, customer_said=[Span(20.0, 20.4)])
    assert [(h.start_s, h.end_s, h.kind) for h in waited] == [(14.7, 28.0, "silence")]


def _random_dialogue(rng, minutes: float):
    """Two parties taking turns with overlaps, backchannels and words, for ``minutes``."""
    phrases = ["您好请问有什么可以帮您", "嗯", "好的", "我想查一下账单", "对", "请您稍等", "是的我明白了", "不是这样的"]
    agent, customer, agent_words, customer_words = [], [], [], []
    t = 0.0
    while t < minutes * 60:
        for spans, words in ((agent, agent_words), (customer, customer_words)):
            length = float(rng.choice([0.4, 0.8, 2.0, 4.0, 7.0]))
            start = t + float(rng.uniform(-0.9, 0.6))            # overlaps the other's end, or a pause
            spans.append(Span(max(0.0, start), max(0.0, start) + length))
            text = phrases[int(rng.integers(len(phrases)))]
            step = length / len(text)
            words += [Word(max(0.0, start) + i * step, max(0.0, start) + (i + 1) * step, ch,
                           float(rng.uniform(0.3, 1.0))) for i, ch in enumerate(text)]
            t = max(0.0, start) + length
    return agent, customer, agent_words, customer_words


def test_interruptions_on_a_long_call_look_locally_with_the_same_verdicts(monkeypatch):
    # each utterance is judged on the minute around it (a 3-hour call was quadratic); with the horizon
    # lifted the whole call is searched: the interruptions found must be the same
    import qa_audio.judge.turns as turns

    agent, customer, agent_words, customer_words = _random_dialogue(np.random.default_rng(5), 12)

    def found():
        return [(round(i.at_s, 3), i.by, round(i.overlap_s, 3)) for by, me, them, mine, theirs in (
            ("agent", agent, customer, agent_words, customer_words),
            ("customer", customer, agent, customer_words, agent_words))
            for i in find_interruptions(me, them, by=by, settings=SETTINGS, words=mine, other_words=theirs,
                                        acknowledgements=ACKS)]

    local = found()
    monkeypatch.setattr(turns, "HORIZON_S", 1e9)
    assert local == found() and len(local) >= 5
