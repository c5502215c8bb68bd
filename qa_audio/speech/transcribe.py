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


def decode_options(settings: ModelSettings, *, channel: str = "agent") -> dict:
    """The faster-whisper options every decode of ``channel`` uses (recorded with each result)."""
    options = {"language": settings.language, "beam_size": settings.beam_for(channel), "best_of": settings.best_of,
               "word_timestamps": True, "condition_on_previous_text": False, "vad_filter": False}
    if not settings.temperature_fallback:
        options["temperature"] = 0.0          # one decode per window, never a sampled retry
    return options


@dataclass(frozen=True)
class Window:
    """One packed decode window of one channel."""

    channel: str
    pieces: tuple[Piece, ...]


SLOT_S = 30            # a batch's windows sit at k x 30 s of one array (Whisper's input length)
DOUBTFUL_COMPRESSION = 2.4     # faster-whisper's own thresholds for a retry at a higher temperature
DOUBTFUL_LOGPROB = -1.0


def transcribe_channel(model, samples: np.ndarray, regions: list[Span] | tuple[Span, ...], *, rate_hz: int,
                       channel: str, settings: ModelSettings, normalizer: TextNormalizer) -> list[Utterance]:
    """One utterance per speech region that produced words, in call time (one channel)."""
    return transcribe_call(model, {channel: (samples, tuple(regions))}, rate_hz=rate_hz, settings=settings,
                           normalizer=normalizer)


def transcribe_call(model, channels: dict[str, tuple[np.ndarray, tuple[Span, ...]]], *, rate_hz: int,
                    settings: ModelSettings, normalizer: TextNormalizer) -> list[Utterance]:
    """One utterance per speech region that produced words, for every channel, in call time.

    With ``settings.batch_size`` above 1 the windows of all channels are decoded together, that many per
    encoder call, at temperature 0 (faster-whisper's ``BatchedInferencePipeline``); a window whose decode is
    doubtful by faster-whisper's own tests (compression ratio above 2.4, mean log-probability below -1) is
    decoded again alone with the temperature fallback, as every window is with ``batch_size: 1``.
    """
    per_region: dict[tuple[str, Span], list[Word]] = {}
    windows = []
    for channel, (_samples, regions) in channels.items():
        for region in regions:
            per_region.setdefault((channel, region), [])
        windows += [Window(channel, tuple(pieces))
                    for pieces in pack_regions(regions, window_s=settings.window_s, gap_s=settings.piece_gap_s)]
    samples_of = {channel: samples for channel, (samples, _regions) in channels.items()}
    _decode_windows(model, windows, samples_of, per_region, rate_hz=rate_hz, settings=settings,
                    normalizer=normalizer)
    # Whisper sometimes drops a short region packed among others (a final 感谢您的来电，再见): a region
    # long enough to hold words but with none gets one more decode on its own
    if settings.retry_unrecognised_min_s > 0:
        alone = [Window(channel, (Piece(0.0, region),)) for (channel, region), words in per_region.items()
                 if not words and region.duration_s >= settings.retry_unrecognised_min_s]
        _decode_windows(model, alone, samples_of, per_region, rate_hz=rate_hz, settings=settings,
                        normalizer=normalizer)
    utterances = []
    for (channel, _region), words in per_region.items():
        if not words:
            continue
        words.sort(key=lambda w: w.start_s)
        utterances.append(utterance_of(channel, words, normalizer))
    utterances.sort(key=lambda u: u.start_s)
    return utterances


def _decode_windows(model, windows: list[Window], samples_of: dict[str, np.ndarray],
                    into: dict[tuple[str, Span], list[Word]], *, rate_hz: int, settings: ModelSettings,
                    normalizer: TextNormalizer) -> None:
    def keep(window: Window, segments, pieces: list[Piece]) -> None:
        for piece, word in _words_in(segments, pieces, normalizer):
            into[(window.channel, piece.source)].append(word)

    alone = windows
    if settings.batch_size > 1 and len(windows) > 1:
        alone = []
        by_beam: dict[int, list[Window]] = {}
        for window in windows:
            by_beam.setdefault(settings.beam_for(window.channel), []).append(window)
        for beam, same in by_beam.items():
            for at in range(0, len(same), settings.batch_size):
                group = same[at: at + settings.batch_size]
                for k, (window, segments) in enumerate(zip(group, _batched(model, group, samples_of, rate_hz,
                                                                           settings, beam))):
                    if any(_doubtful(segment) for segment in segments):
                        alone.append(window)
                    else:      # window k sits at k x 30 s of the batch's array: its pieces are placed there too
                        keep(window, segments, [Piece(p.window_start_s + k * SLOT_S, p.source)
                                                for p in window.pieces])
    for window in alone:
        pieces = list(window.pieces)
        segments, _info = model.transcribe(_window_audio(samples_of[window.channel], pieces, rate_hz),
                                           **decode_options(settings, channel=window.channel))
        keep(window, segments, pieces)


def _doubtful(segment) -> bool:
    return segment.compression_ratio > DOUBTFUL_COMPRESSION or segment.avg_logprob < DOUBTFUL_LOGPROB


def _batched(model, group: list[Window], samples_of: dict[str, np.ndarray], rate_hz: int,
             settings: ModelSettings, beam_size: int) -> list[list]:
    """Each window's segments (in the batch's time: window k at k x 30 s of one array), decoded in one batch."""
    from faster_whisper import BatchedInferencePipeline

    slot = SLOT_S * rate_hz
    audio = np.zeros(slot * len(group), dtype=np.float32)
    clips = []
    for k, window in enumerate(group):
        chunk = _window_audio(samples_of[window.channel], list(window.pieces), rate_hz)[:slot]
        audio[k * slot: k * slot + len(chunk)] = chunk
        clips.append({"start": float(k * SLOT_S), "end": k * SLOT_S + len(chunk) / rate_hz})
    pipeline = BatchedInferencePipeline(model=model)
    segments, _info = pipeline.transcribe(audio, language=settings.language, beam_size=beam_size,
                                          word_timestamps=True, without_timestamps=True, temperature=0.0,
                                          clip_timestamps=clips, batch_size=len(group), vad_filter=False)
    out: list[list] = [[] for _ in group]
    for segment in segments:
        out[min(len(group) - 1, max(0, int(round(segment.seek / 100.0 / SLOT_S))))].append(segment)
    return out


def utterance_of(channel: str, words: list[Word], normalizer: TextNormalizer) -> Utterance:
    """One utterance of a party's words (in time order), its text normalised as transcripts are."""
    text = normalizer.numbers("".join(w.text for w in words)).strip()
    return Utterance(channel, words[0].start_s, words[-1].end_s, text, tuple(words))

