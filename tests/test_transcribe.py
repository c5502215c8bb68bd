"""Packing speech regions into decode windows, and the second chance for a region that gave no words."""
from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np

from qa_audio.signal.spans import Span
from qa_audio.speech.normalize import TextNormalizer
from qa_audio.speech.transcribe import transcribe_channel

RATE_HZ = 16000


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
