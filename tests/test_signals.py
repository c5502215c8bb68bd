"""Tier 2: synthetic and real signals for VAD, tones, music and timing (no ASR)."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import soxr
from conftest import SAMPLES, shared

from qa_audio.judge.timing import analyze_timing
from qa_audio.signal.spans import Span
from qa_audio.signal.tones import detect_music, detect_ringback
from qa_audio.signal.vad import detect_speech, webrtc_decisions

RATE = 16000


def ringback(rings, *, rate_hz=RATE, f_hz=450.0, on_s=1.0, off_s=4.0, level=0.2):
    t = np.arange(int(rate_hz * on_s)) / rate_hz
    cycle = np.concatenate([level * np.sin(2 * np.pi * f_hz * t), np.zeros(int(rate_hz * off_s))])
    return np.tile(cycle, rings).astype(np.float32)


def load_mono(path, seconds=None):
    data, rate = sf.read(path, dtype="float32", always_2d=True)
    x = data[:, 0]
    if rate != RATE:
        x = soxr.resample(x, rate, RATE)
    return x[: int(seconds * RATE)] if seconds else x


def test_webrtcvad_matches_its_own_published_decisions():
    pcm = np.frombuffer(shared("vad", "test-audio.raw").read_bytes(), dtype="<i2").astype(np.float32) / 32767.0
    expected = {0: "011110111111111111111111111100", 1: "011110111111111111111111111100",
                2: "000000111111111111111111110000", 3: "000000111111111111111100000000"}
    for mode, bits in expected.items():
        got = webrtc_decisions(pcm, rate_hz=8000, frame_ms=30, mode=mode)[: len(bits)]
        assert "".join("1" if d else "0" for d in got) == bits


def test_silence_and_line_noise_are_not_speech(config, rng):
    quiet = rng.normal(0, 10 ** (-70 / 20), RATE * 10).astype(np.float32)
    assert detect_speech(quiet, rate_hz=RATE, settings=config.vad).regions == ()
    hiss = rng.normal(0, 10 ** (-40 / 20), RATE * 10).astype(np.float32)   # loud, steady line noise
    assert detect_speech(hiss, rate_hz=RATE, settings=config.vad).regions == ()


def test_real_speech_is_found_where_it_is(config):
    speech = load_mono(shared("zh-speech", "llamacpp_sample.wav"))
    padded = np.concatenate([np.zeros(RATE * 2, np.float32), speech, np.zeros(RATE * 2, np.float32)])
    regions = detect_speech(padded, rate_hz=RATE, settings=config.vad).regions
    # FunASR's golden segmentation puts the speech at 0.77-5.98 s of the clip (with one pause inside)
    assert 1 <= len(regions) <= 2
    assert abs(regions[0].start_s - (2 + 0.77)) < 0.35 and abs(regions[-1].end_s - (2 + 5.98)) < 0.35


@pytest.mark.parametrize("rings", [1, 3, 4, 6])
def test_ringback_bursts_are_counted(config, rings, rng):
    signal = np.concatenate([ringback(rings), np.zeros(RATE, np.float32)])
    signal += rng.normal(0, 0.001, len(signal)).astype(np.float32)
    found = detect_ringback(signal, rate_hz=RATE, plan=config.tone_plan, settings=config.timing)
    assert len(found.bursts) == rings
    assert [round(b.start_s) for b in found.bursts] == [5 * i for i in range(rings)]


def test_other_frequencies_are_not_ringback(config):
    found = detect_ringback(ringback(3, f_hz=1000.0), rate_hz=RATE, plan=config.tone_plan, settings=config.timing)
    assert found.bursts == ()


def test_real_hold_music_is_music_and_real_speech_is_not(config):
    music = load_mono(shared("hold-music", "macroform-the_simplicity.flac"), 30)
    spans = detect_music(music, rate_hz=RATE, settings=config.timing, level_floor_dbfs=-50)
    assert sum(s.duration_s for s in spans) > 25
    speech = load_mono(shared("zh-speech", "cpp_long.wav"))
    assert detect_music(speech, rate_hz=RATE, settings=config.timing, level_floor_dbfs=-50) == []


def test_noisy_real_call_leg_has_no_music_and_little_false_speech(config):
    agent = load_mono(shared("calls-en", "Auto_Repairs_49_UTC_agent.flac"))
    assert detect_music(agent, rate_hz=RATE, settings=config.timing, level_floor_dbfs=-50) == []


def spans(*pairs):
    return [Span(a, b) for a, b in pairs]


def test_timing_interruptions_backchannels_and_dead_air(config):
    agent = spans((10, 14), (20, 20.6), (27, 31), (50, 55))
    customer = spans((15, 26), (30, 33), (57, 60))
    t = analyze_timing(duration_s=61, agent=agent, customer=customer, ring_bursts=spans((0, 1), (5, 6)),
                       settings=config.timing)
    assert (t.answered, t.rings, t.ring_to_answer_s) == (True, 2, 10)
    # 20-20.6 is a backchannel over the customer; 30-33 is the customer cutting in on the agent
    assert [(i.at_s, i.by) for i in t.interruptions] == [(30, "customer")]
    assert [d.to_dict() for d in t.dead_air] == [{"start_s": 33, "end_s": 50}]
    assert t.talk["agent"]["talk_s"] == pytest.approx(13.6)


def test_agent_interrupting_is_reported(config):
    t = analyze_timing(duration_s=30, agent=spans((0, 3), (6, 10)), customer=spans((4, 8)),
                       settings=config.timing)
    assert [(i.at_s, i.by, round(i.overlap_s, 2)) for i in t.interruptions] == [(6, "agent", 2.0)]


def test_music_hold_with_check_in_and_silent_hold(config):
    agent = spans((0, 5), (30, 32), (50, 55), (60, 62), (80, 85))
    music = spans((5.5, 29.5), (32.5, 49.5))
    t = analyze_timing(duration_s=90, agent=agent, customer=spans((56, 58)), music=music,
                       hold_cues_s=[62.0], settings=config.timing)
    assert [(h.kind, h.start_s, h.end_s) for h in t.holds] == [("music", 5, 50), ("silence", 62, 80)]
    assert t.holds[0].longest_wait_s == pytest.approx(25)     # the check-in at 30 s splits 5-50 into 25 + 18 s
    assert [w.duration_s for w in t.holds[0].waits] == pytest.approx([25, 18])
    assert t.dead_air == ()


def test_unanswered_and_mono(config):
    t = analyze_timing(duration_s=30, agent=[], customer=[], ring_bursts=spans((0, 1), (5, 6), (10, 11)),
                       settings=config.timing)
    assert (t.answered, t.rings, t.ring_to_answer_s) == (False, 3, None)
    m = analyze_timing(duration_s=30, agent=None, customer=None, mono=spans((2, 5), (20, 25)),
                       settings=config.timing)
    assert m.answered and m.interruptions is None and m.to_dict()["interruptions"] is None
    assert [d.to_dict() for d in m.dead_air] == [{"start_s": 5, "end_s": 20}]


def test_sample_call_ringback_survives_telephone_band_and_mu_law(config):
    data, rate = sf.read(SAMPLES / "hold_ring.wav", dtype="float32", always_2d=True)
    agent = soxr.resample(data[:, 0], rate, RATE)
    found = detect_ringback(agent, rate_hz=RATE, plan=config.tone_plan, settings=config.timing)
    assert len(found.bursts) == 4
