"""Voice activity per channel: webrtcvad decisions gated by an adaptive energy floor.

webrtcvad alone fires on line noise and on music; the energy gate (speech must
stand ``noise_margin_db`` above the channel's own noise floor) removes the first,
and :mod:`qa_audio.tones` removes the second through ``exclude``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import webrtcvad

from .config import VadSettings
from .spans import Span, mask_to_spans, merge, subtract

VAD_RATES_HZ = (8000, 16000, 32000, 48000)


@dataclass(frozen=True)
class VoiceActivity:
    """Speech regions of one channel and the frame data that produced them."""

    regions: tuple[Span, ...]
    raw: tuple[Span, ...]          # frame-level speech before smoothing and exclusions
    duration_s: float
    frame_s: float
    noise_floor_dbfs: float
    threshold_dbfs: float
    settings: VadSettings


def frame_levels_dbfs(samples: np.ndarray, *, rate_hz: int, frame_s: float) -> np.ndarray:
    """RMS level of consecutive non-overlapping frames, in dBFS."""
    size = int(round(rate_hz * frame_s))
    count = len(samples) // size
    if count == 0:
        return np.zeros(0)
    frames = samples[: count * size].reshape(count, size).astype(np.float64)
    rms = np.sqrt(np.mean(frames * frames, axis=1))
    return 20.0 * np.log10(np.maximum(rms, 1e-10))


def webrtc_decisions(samples: np.ndarray, *, rate_hz: int, frame_ms: int = 30, mode: int = 2) -> np.ndarray:
    """webrtcvad's raw per-frame speech decisions for float samples in [-1, 1]."""
    if rate_hz not in VAD_RATES_HZ:
        raise ValueError(f"webrtcvad needs one of {VAD_RATES_HZ} Hz, got {rate_hz}")
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    size = rate_hz * frame_ms // 1000 * 2
    vad = webrtcvad.Vad(mode)
    count = len(pcm) // size
    return np.fromiter((vad.is_speech(pcm[i * size:(i + 1) * size], rate_hz) for i in range(count)),
                       dtype=bool, count=count)


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
    return smooth(VoiceActivity((), raw, len(samples) / rate_hz, frame_s, noise_floor, threshold, settings),
                  exclude=exclude)


def smooth(activity: VoiceActivity, *, exclude: list[Span] | tuple[Span, ...] = ()) -> VoiceActivity:
    """Regions from the frame decisions: drop ``exclude``, join short pauses, drop blips, pad."""
    settings = activity.settings
    joined = merge(subtract(activity.raw, exclude), gap_s=settings.merge_gap_s)
    kept = [s for s in joined if s.duration_s >= settings.min_speech_s]
    padded = [Span(max(0.0, s.start_s - settings.pad_s), min(activity.duration_s, s.end_s + settings.pad_s))
              for s in kept]
    regions = [s for s in subtract(merge(padded), exclude) if s.duration_s >= settings.min_speech_s]
    return dataclasses.replace(activity, regions=tuple(regions))
