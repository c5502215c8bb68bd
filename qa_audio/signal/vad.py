"""Voice activity per channel: webrtcvad decisions gated by an adaptive energy floor.

webrtcvad alone fires on line noise and on music; the energy gate (speech must
stand ``noise_margin_db`` above the channel's own noise floor) removes the first,
and :mod:`qa_audio.signal.tones` removes the second through ``exclude``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import webrtcvad

from qa_audio.config import VadSettings
from qa_audio.signal.audio import as_float, blocks
from qa_audio.signal.spans import Span, covered_s, intersect, mask_to_spans, merge, subtract

VAD_RATES_HZ = (8000, 16000, 32000, 48000)


@dataclass(frozen=True)
class VoiceActivity:
    """Speech regions of one channel and the frame data that produced them."""

    regions: tuple[Span, ...]      # what is sent to Whisper: built from ``loose``, joined, padded
    raw: tuple[Span, ...]          # frame-level speech before smoothing and exclusions (the timing's)
    duration_s: float
    frame_s: float
    noise_floor_dbfs: float
    threshold_dbfs: float
    settings: VadSettings
    loose: tuple[Span, ...] = ()   # frame-level speech under the lenient gate (``asr_margin_db``), for regions
    levels_dbfs: np.ndarray = field(default_factory=lambda: np.zeros(0), compare=False, repr=False)  # per frame


BLOCK_SAMPLES = 1 << 20      # about a minute at 16 kHz: whole-channel measures go block by block


def frame_levels_dbfs(samples: np.ndarray, *, rate_hz: int, frame_s: float) -> np.ndarray:
    """RMS level of consecutive non-overlapping frames, in dBFS (16-bit PCM or floats in [-1, 1])."""
    size = int(round(rate_hz * frame_s))
    count = len(samples) // size
    out = np.zeros(count)
    for a, b in blocks(count * size, block=BLOCK_SAMPLES, unit=size):
        frames = as_float(samples[a:b], np.float64).reshape(-1, size)
        rms = np.sqrt(np.mean(frames * frames, axis=1))
        out[a // size: a // size + len(rms)] = 20.0 * np.log10(np.maximum(rms, 1e-10))
    return out


def _pcm_bytes(block: np.ndarray) -> bytes:
    if block.dtype == np.int16:
        return block.astype("<i2", copy=False).tobytes()
    return (np.clip(block, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def webrtc_decisions(samples: np.ndarray, *, rate_hz: int, frame_ms: int = 30, mode: int = 2) -> np.ndarray:
    """webrtcvad's raw per-frame speech decisions for 16-bit PCM or float samples in [-1, 1]."""
    if rate_hz not in VAD_RATES_HZ:
        raise ValueError(f"webrtcvad needs one of {VAD_RATES_HZ} Hz, got {rate_hz}")
    frame = rate_hz * frame_ms // 1000
    size = frame * 2
    vad = webrtcvad.Vad(mode)
    count = len(samples) // frame
    out = np.zeros(count, dtype=bool)
    for a, b in blocks(count * frame, block=BLOCK_SAMPLES, unit=frame):
        pcm = _pcm_bytes(samples[a:b])
        n = len(pcm) // size
        out[a // frame: a // frame + n] = np.fromiter(
            (vad.is_speech(pcm[i * size:(i + 1) * size], rate_hz) for i in range(n)), dtype=bool, count=n)
    return out


def detect_speech(samples: np.ndarray, *, rate_hz: int, settings: VadSettings,
                  exclude: list[Span] | tuple[Span, ...] = ()) -> VoiceActivity:
    """Speech regions of one channel, in seconds."""
    frame_s = settings.frame_ms / 1000.0
    decisions = webrtc_decisions(samples, rate_hz=rate_hz, frame_ms=settings.frame_ms, mode=settings.mode)
    levels = frame_levels_dbfs(samples, rate_hz=rate_hz, frame_s=frame_s)[: len(decisions)]
    noise_floor = float(np.percentile(levels, 10)) if levels.size else -120.0
    threshold = max(settings.energy_floor_dbfs, noise_floor + settings.noise_margin_db)
    mask = decisions & (levels > threshold)
    raw = tuple(mask_to_spans(mask, hop_s=frame_s))
    # quieter speech still goes to Whisper: the regions use a lower gate (Silero then drops what is noise)
    loose_threshold = max(settings.energy_floor_dbfs, noise_floor + min(settings.asr_margin_db,
                                                                        settings.noise_margin_db))
    loose = tuple(mask_to_spans(decisions & (levels > loose_threshold), hop_s=frame_s))
    return smooth(VoiceActivity((), raw, len(samples) / rate_hz, frame_s, noise_floor, threshold, settings, loose,
                                levels), exclude=exclude)


SILERO_RATE_HZ = 16000
SILERO_CONTEXT_S = 1.0
MIN_RUN_S = 0.1            # a run of speech frames shorter than this is a click, not a syllable


def neural_speech(samples: np.ndarray, *, rate_hz: int, within: list[Span] | tuple[Span, ...],
                  min_speech_s: float = 0.25, threshold: float = 0.5, context_s: float = 0.0) -> list[Span]:
    """Speech that Silero VAD (the ONNX model inside faster-whisper's wheel) hears inside ``within``.

    A second opinion where a cheaper detector claims the channel is not speech: music and tone
    detectors respond to stationary noise under quiet speech, Silero does not (it reports no speech
    at all on the 18 minutes of real hold music in shared/realdata). Only the given spans are
    analysed, so its cost stays proportional to what is in doubt.
    """
    import soxr
    from faster_whisper.vad import VadOptions, get_speech_timestamps  # onnxruntime: loaded on first doubt

    options = VadOptions(threshold=threshold, min_speech_duration_ms=int(min_speech_s * 1000),
                         min_silence_duration_ms=300, speech_pad_ms=100)
    wanted = merge(within)
    duration_s = len(samples) / rate_hz
    # Silero is recurrent: started cold on a span it misses the first seconds of speech, so a span can be
    # analysed with ``context_s`` of what came before (overlapping contexts merged, none analysed twice)
    contexts = merge([Span(max(0.0, s.start_s - context_s), min(duration_s, s.end_s + (0.2 if context_s else 0.0)))
                      for s in wanted])
    found: list[Span] = []
    for ctx in _pieces(contexts, lead_s=max(context_s, SILERO_CONTEXT_S)):
        chunk = as_float(samples[int(ctx.start_s * rate_hz): int(ctx.end_s * rate_hz)])
        if len(chunk) < rate_hz * min_speech_s:
            continue
        if rate_hz != SILERO_RATE_HZ:
            chunk = soxr.resample(chunk, rate_hz, SILERO_RATE_HZ).astype(np.float32)
        for stamp in get_speech_timestamps(chunk, options):
            found.append(
                Span(ctx.start_s + stamp["start"] / SILERO_RATE_HZ, ctx.start_s + stamp["end"] / SILERO_RATE_HZ)
            )
    return intersect(found, wanted)


SILERO_PIECE_S = 600.0     # a longer stretch is analysed in pieces (memory), each with a second of lead-in


def _pieces(spans: list[Span], *, lead_s: float) -> list[Span]:
    out = []
    for span in spans:
        start = span.start_s
        while span.end_s - start > SILERO_PIECE_S:
            out.append(Span(max(span.start_s, start - lead_s) if start > span.start_s else start,
                            start + SILERO_PIECE_S))
            start += SILERO_PIECE_S
        out.append(Span(max(span.start_s, start - lead_s) if start > span.start_s else start, span.end_s))
    return out


def verify(
    activity: VoiceActivity,
    samples: np.ndarray,
    *,
    rate_hz: int,
    threshold: float,
    min_heard_s: float,
    trim_pad_s: float = 0.2,
) -> VoiceActivity:
    """Keep the regions in which Silero hears at least ``min_heard_s`` of speech, edges trimmed to real speech.

    webrtcvad and an energy gate take clicks, crackle and bursts of line noise for speech; those
    regions would start the call early, hide dead air, count as interruptions and be sent to
    Whisper (which invents words for them).
    """
    if not activity.regions:
        return activity
    heard = neural_speech(
        samples,
        rate_hz=rate_hz,
        within=activity.regions,
        min_speech_s=0.1,
        threshold=threshold,
        context_s=SILERO_CONTEXT_S,
    )
    kept, confirmed = [], []
    for r in activity.regions:
        inside = [h for h in heard if h.overlap_s(r) > 0]
        if covered_s(inside, r) < min_heard_s:
            continue
        # clicks joined onto a region's edges are not speech: trim to its first and last real run of speech
        # frames (Silero's own edges are late after a pause, so they only decide keep or drop)
        runs = [f for f in activity.loose if f.duration_s >= MIN_RUN_S and f.overlap_s(r) > 0]
        if runs:
            r = Span(max(r.start_s, runs[0].start_s - trim_pad_s), min(r.end_s, runs[-1].end_s + trim_pad_s))
        kept.append(r)
        confirmed += [Span(h.start_s - 0.1, h.end_s + 0.1) for h in inside]
    # the lenient frames (the other party's evidence for interruptions) only where Silero hears speech
    return dataclasses.replace(
        activity,
        regions=tuple(kept),
        raw=tuple(intersect(activity.raw, kept)),
        loose=tuple(intersect(activity.loose, merge(confirmed))),
    )


def drop_background(activity: VoiceActivity, *, below_db: float) -> VoiceActivity:
    """Drop regions whose loudest frames stay ``below_db`` under the channel's own speech level.

    Other agents talking in the room, a television, a far-off echo: speech, but not this party's.
    A party's own voice (a quiet 嗯 included) stays within a few dB of its usual level.
    """
    if not activity.regions:
        return activity
    frame_s, levels = activity.frame_s, activity.levels_dbfs
    peaks = []
    for r in activity.regions:
        part = levels[int(r.start_s / frame_s) : max(int(r.end_s / frame_s), int(r.start_s / frame_s) + 1)]
        peaks.append(float(np.percentile(part, 90)) if part.size else -120.0)
    weights = np.array([r.duration_s for r in activity.regions])
    order = np.argsort(peaks)
    cumulative = np.cumsum(weights[order]) / weights.sum()
    own = peaks[int(order[np.searchsorted(cumulative, 0.5)])]  # the duration-weighted median peak
    kept = tuple(r for r, p in zip(activity.regions, peaks) if p >= own - below_db)
    return dataclasses.replace(
        activity, regions=kept, raw=tuple(intersect(activity.raw, kept)), loose=tuple(intersect(activity.loose, kept))
    )


def smooth(activity: VoiceActivity, *, exclude: list[Span] | tuple[Span, ...] = ()) -> VoiceActivity:
    """Regions from the frame decisions: drop ``exclude``, join short pauses, drop blips, pad."""
    settings = activity.settings
    joined = merge(subtract(activity.loose or activity.raw, exclude), gap_s=settings.merge_gap_s)
    kept = [s for s in joined if s.duration_s >= settings.min_speech_s]
    padded = [
        Span(max(0.0, s.start_s - settings.pad_s), min(activity.duration_s, s.end_s + settings.pad_s)) for s in kept
    ]
    regions = [s for s in subtract(merge(padded), exclude) if s.duration_s >= settings.min_speech_s]
    return dataclasses.replace(activity, regions=tuple(regions))
