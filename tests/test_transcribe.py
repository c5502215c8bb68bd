"""Packing speech regions into decode windows, and the second chance for a region that gave no words."""
from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from qa_audio.signal.spans import Span
from qa_audio.speech.normalize import TextNormalizer
from qa_audio.speech.transcribe import transcribe_channel

RATE_HZ = 16000
SAMPLES = Path(__file__).resolve().parent.parent / "samples"


@dataclass
class FakeWord:
    word: str
    start: float
    end: float
    probability: float = 0.9


@dataclass
class FakeSegment:
    words: list


class DropsTheLastPiece:
    """Like Whisper on a packed window: words for every piece but the last; a window of one piece is heard."""

    def __init__(self):
        self.calls = []

    def transcribe(self, audio, **options):
        loud = np.flatnonzero(np.abs(audio) > 0.05)
        starts = [loud[0]] + [b for a, b in itertools.pairwise(loud) if b - a > RATE_HZ * 0.2]
        self.calls.append(len(starts))
        keep = starts if len(starts) == 1 else starts[:-1]
        return [FakeSegment([FakeWord("好", s / RATE_HZ, s / RATE_HZ + 0.3)]) for s in keep], None


def test_a_region_that_gave_no_words_is_decoded_again_alone(config):
    samples = np.zeros(RATE_HZ * 20, dtype=np.float32)
    regions = [Span(1.0, 2.5), Span(5.0, 6.5), Span(10.0, 12.0)]
    for r in regions:
        samples[int(r.start_s * RATE_HZ): int(r.end_s * RATE_HZ)] = 0.3
    model = DropsTheLastPiece()
    found = transcribe_channel(model, samples, regions, rate_hz=RATE_HZ, channel="agent", settings=config.model,
                               normalizer=TextNormalizer())
    assert model.calls == [3, 1]                     # one packed window, then the empty region on its own
    assert [round(u.start_s, 1) for u in found] == [1.0, 5.0, 10.0]
    off = replace(config.model, retry_unrecognised_min_s=0.0)
    model = DropsTheLastPiece()
    found = transcribe_channel(model, samples, regions, rate_hz=RATE_HZ, channel="agent", settings=off,
                               normalizer=TextNormalizer())
    assert model.calls == [3] and [round(u.start_s, 1) for u in found] == [1.0, 5.0]


def _words_by_region(utterances, regions_of):
    """Which speech region each utterance's words fall in, per channel (call time must map back exactly)."""
    out = {}
    for u in utterances:
        inside = [r for r in regions_of[u.channel] if r.start_s - 0.05 <= u.start_s and u.end_s <= r.end_s + 0.05]
        assert len(inside) == 1, (u.channel, u.start_s, u.end_s)
        assert all(inside[0].start_s - 0.05 <= w.start_s <= w.end_s <= inside[0].end_s + 0.05 for w in u.words)
        out.setdefault(u.channel, set()).add(inside[0])
    return out


def test_batched_windows_of_both_channels_map_back_like_one_at_a_time(scorer):
    """Both channels' windows decoded eight to a batch (window k at k x 30 s of one array) give words in the same
    speech regions of the same channels as one decode per window, and every word stays inside its region."""
    from qa_audio.pipeline import analyze_acoustics
    from qa_audio.signal.audio import load_audio
    from qa_audio.speech.transcribe import transcribe_call

    audio = load_audio(SAMPLES / "hold_ring.wav")
    config = scorer.config
    sound = analyze_acoustics(audio, config)
    channels = {role: (audio.pcm(index), tuple(sound.regions[role])) for role, index in sound.roles.items()}
    runs = {}
    for batch in (1, 8):
        settings = replace(config.model, batch_size=batch, customer_beam_size=0)
        runs[batch] = transcribe_call(scorer.model, channels, rate_hz=audio.rate_hz, settings=settings,
                                      normalizer=scorer.normalizer)
    regions_of = {role: regions for role, (_pcm, regions) in channels.items()}
    one, batched = (_words_by_region(runs[b], regions_of) for b in (1, 8))
    assert set(batched) == {"agent", "customer"}
    for role in one:
        agree = len(one[role] & batched.get(role, set())) / len(one[role] | batched.get(role, set()))
        assert agree >= 0.9, role
    assert [u.start_s for u in runs[8]] == sorted(u.start_s for u in runs[8])
