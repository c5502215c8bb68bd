"""Transcribe each channel's speech regions with faster-whisper.

Only speech is decoded: the regions found by :mod:`qa_audio.signal.vad` are packed,
with a short silence between them, into windows of up to ``window_s`` (Whisper
pads every decode to 30 s, so one full window costs what one short clip would).
Word timestamps are mapped back from the packed window to the call's timeline,
and words are grouped back into one utterance per speech region.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qa_audio.config import ModelSettings
from qa_audio.signal.audio import as_float
from qa_audio.signal.spans import Span
from qa_audio.speech.normalize import TextNormalizer
from qa_audio.speech.words import Utterance, Word


@dataclass(frozen=True)
class Piece:
    """One speech region placed in a packed window."""

    window_start_s: float     # where it starts inside the window
    source: Span              # where it comes from in the call


def pack_regions(regions: list[Span] | tuple[Span, ...], *, window_s: float, gap_s: float) -> list[list[Piece]]:
    """Greedily pack speech regions, in order, into windows no longer than ``window_s``."""
    windows: list[list[Piece]] = []
    cursor = 0.0
    for region in regions:
        length = region.duration_s
        if windows and cursor + gap_s + length <= window_s:
            windows[-1].append(Piece(cursor + gap_s, region))
            cursor += gap_s + length
        else:
            windows.append([Piece(0.0, region)])
            cursor = length
    return windows


def _window_audio(samples: np.ndarray, pieces: list[Piece], rate_hz: int) -> np.ndarray:
    end_s = pieces[-1].window_start_s + pieces[-1].source.duration_s
    out = np.zeros(int(np.ceil(end_s * rate_hz)) + 1, dtype=np.float32)
    for piece in pieces:
        chunk = samples[int(piece.source.start_s * rate_hz): int(piece.source.end_s * rate_hz)]
        at = int(round(piece.window_start_s * rate_hz))
        out[at: at + len(chunk)] = as_float(chunk[: len(out) - at])
    return out


def _to_call_time(t_s: float, piece: Piece) -> float:
    offset = min(max(t_s - piece.window_start_s, 0.0), piece.source.duration_s)
    return piece.source.start_s + offset


def _piece_for(t_s: float, pieces: list[Piece]) -> int:
    best, best_distance = 0, float("inf")
    for i, piece in enumerate(pieces):
        lo, hi = piece.window_start_s, piece.window_start_s + piece.source.duration_s
        distance = 0.0 if lo <= t_s <= hi else min(abs(t_s - lo), abs(t_s - hi))
        if distance < best_distance:
            best, best_distance = i, distance
    return best


def _words_in(segments, pieces: list[Piece], normalizer: TextNormalizer):
    """(piece, word in call time) for every non-empty word Whisper returned for a packed window."""
    for segment in segments:
        for w in segment.words or ():
            text = normalizer.simplify(w.word.strip())
            if not text:
                continue
            piece = pieces[_piece_for((w.start + w.end) / 2, pieces)]
            start, end = _to_call_time(w.start, piece), _to_call_time(w.end, piece)
            yield piece, Word(start, max(end, start), text, float(w.probability))


def decode_options(settings: ModelSettings) -> dict:
    """The faster-whisper options every decode uses (recorded with each result)."""
    options = {"language": settings.language, "beam_size": settings.beam_size, "best_of": settings.best_of,
               "word_timestamps": True, "condition_on_previous_text": False, "vad_filter": False}
    if not settings.temperature_fallback:
        options["temperature"] = 0.0          # one decode per window, never a sampled retry
    return options


def transcribe_channel(model, samples: np.ndarray, regions: list[Span] | tuple[Span, ...], *, rate_hz: int,
                       channel: str, settings: ModelSettings, normalizer: TextNormalizer) -> list[Utterance]:
    """One utterance per speech region that produced words, in call time."""
    per_region: list[list[Word]] = [[] for _ in regions]
    index_of = {region: i for i, region in enumerate(regions)}
    options = decode_options(settings)
    for pieces in pack_regions(regions, window_s=settings.window_s, gap_s=settings.piece_gap_s):
        audio = _window_audio(samples, pieces, rate_hz)
        segments, _info = model.transcribe(audio, **options)
        for piece, word in _words_in(segments, pieces, normalizer):
            per_region[index_of[piece.source]].append(word)
    # Whisper sometimes drops a short region packed among others (a final 感谢您的来电，再见): a region
    # long enough to hold words but with none gets one more decode on its own
    if settings.retry_unrecognised_min_s > 0:
        for i, region in enumerate(regions):
            if per_region[i] or region.duration_s < settings.retry_unrecognised_min_s:
                continue
            alone = [Piece(0.0, region)]
            segments, _info = model.transcribe(_window_audio(samples, alone, rate_hz), **options)
            per_region[i] += [word for _, word in _words_in(segments, alone, normalizer)]
    utterances = []
    for words in per_region:
        if not words:
            continue
        words.sort(key=lambda w: w.start_s)
        utterances.append(utterance_of(channel, words, normalizer))
    return utterances


def utterance_of(channel: str, words: list[Word], normalizer: TextNormalizer) -> Utterance:
    """One utterance of a party's words (in time order), its text normalised as transcripts are."""
    text = normalizer.numbers("".join(w.text for w in words)).strip()
    return Utterance(channel, words[0].start_s, words[-1].end_s, text, tuple(words))

