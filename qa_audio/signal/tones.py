"""Non-speech sounds that webrtcvad mistakes for speech: ringback tones and music.

Ringback follows a tone plan from the config (frequencies and on/off cadence).
Music is told from speech by how much of its spectrum is *sustained*: notes hold
their partials for hundreds of milliseconds, while speech moves its pitch and
formants every syllable. Over 400 ms, the real hold music in shared/realdata keeps
a median 0.18-0.29 of its spectral energy; real Mandarin and English speech at
most 0.136 in any 2-s window.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import fft as scipy_fft
from scipy.ndimage import minimum_filter1d, uniform_filter1d

from qa_audio.config import TimingSettings, TonePlan
from qa_audio.signal.spans import Span, mask_runs, mask_to_spans, merge, subtract

TONE_HOP_S = 0.05
MUSIC_WINDOW_S = 2.0
MUSIC_HOP_S = 0.5
SUSTAIN_S = 0.4
MUSIC_GAP_FILL_S = 1.0
BAND_HZ = (125.0, 3400.0)


@dataclass(frozen=True)
class Ringback:
    """Ringback bursts found on one channel and the tone plan they matched."""

    bursts: tuple[Span, ...]
    tone: tuple[Span, ...]
    plan: str


def _frames(samples: np.ndarray, *, size: int, hop: int) -> np.ndarray:
    if len(samples) < size:
        return np.zeros((0, size), dtype=np.float32)
    count = 1 + (len(samples) - size) // hop
    return np.lib.stride_tricks.as_strided(
        samples, shape=(count, size), strides=(samples.strides[0] * hop, samples.strides[0]), writeable=False)


def detect_ringback(samples: np.ndarray, *, rate_hz: int, plan: TonePlan, settings: TimingSettings) -> Ringback:
    """Find tone frames at the plan's frequencies and the bursts whose length fits its cadence."""
    hop = int(rate_hz * TONE_HOP_S)
    frames = _frames(samples.astype(np.float32), size=hop, hop=hop)
    if frames.shape[0] == 0:
        return Ringback((), (), plan.name)
    spectrum = np.abs(scipy_fft.rfft(frames * np.hanning(hop), axis=1)) ** 2
    freqs = np.fft.rfftfreq(hop, 1.0 / rate_hz)
    band = (freqs >= 100) & (freqs <= 3600)
    total = spectrum[:, band].sum(axis=1) + 1e-12
    at_tone = np.zeros_like(total)
    for f_hz in plan.frequencies_hz:
        at_tone += spectrum[:, (freqs >= f_hz - 30) & (freqs <= f_hz + 30)].sum(axis=1)
    level = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    mask = (at_tone / total >= settings.tone_ratio_min) & (level >= settings.tone_level_min_dbfs)
    min_tone_s = min(0.3, plan.on_s * 0.5)
    tone = [s for s in merge(mask_to_spans(mask, hop_s=TONE_HOP_S), gap_s=TONE_HOP_S * 2)
            if s.duration_s >= min_tone_s]
    lo, hi = plan.on_s * 0.6, plan.on_s * 1.5 + TONE_HOP_S
    # a burst's first and last frames are part tone, part silence: widen by one hop each side
    bursts = [Span(max(0.0, s.start_s - TONE_HOP_S), s.end_s + TONE_HOP_S) for s in tone
              if lo <= s.duration_s <= hi]
    return Ringback(tuple(bursts), tuple(tone), plan.name)


def detect_music(samples: np.ndarray, *, rate_hz: int, settings: TimingSettings,
                 level_floor_dbfs: float, exclude: list[Span] | tuple[Span, ...] = ()) -> list[Span]:
    """Stretches of music (or other sustained tonal sound) on one channel, outside ``exclude`` (tones)."""
    # analyse at 8 kHz with 20 ms hops: the telephone band is all that matters, and it is 8x cheaper
    factor = max(1, rate_hz // 8000)
    x = samples[: len(samples) // factor * factor].astype(np.float32).reshape(-1, factor).mean(axis=1)
    rate = rate_hz // factor
    n_fft, hop = 512 * rate // 8000, rate // 50
    fps = 50
    frames = _frames(x, size=n_fft, hop=hop)
    if frames.shape[0] < int(MUSIC_WINDOW_S * fps):
        return []
    spec = np.abs(scipy_fft.rfft(frames * np.hanning(n_fft).astype(np.float32), axis=1)).T
    freqs = np.fft.rfftfreq(n_fft, 1.0 / rate)
    spec = spec[(freqs >= BAND_HZ[0]) & (freqs <= BAND_HZ[1])]
    # line noise is sustained too: measure what stands above the channel's stationary noise spectrum
    # (each bin's 10th percentile over the call), so speech over pinkish noise is not "sustained"
    floor = np.percentile(spec, 10, axis=1, keepdims=True)
    raw_sustained = minimum_filter1d(spec, int(SUSTAIN_S * fps), axis=1, mode="nearest")
    # the span edges are trimmed frame by frame on the raw spectrum (a quiet tail is still music)
    raw_share = raw_sustained.sum(axis=0, dtype=np.float64) / (spec.sum(axis=0, dtype=np.float64) + 1e-12)
    sustained = np.maximum(raw_sustained - floor, 0.0)
    spec = np.maximum(spec - floor, 0.0)
    power = spec.astype(np.float64) ** 2
    log_mean = np.mean(np.log(power + 1e-12), axis=0)
    flatness = np.exp(log_mean) / (np.mean(power, axis=0) + 1e-12)
    frame_power = np.einsum("ij,ij->i", frames, frames, dtype=np.float64) / n_fft
    level = 10 * np.log10(frame_power + 1e-12)
    rms = np.sqrt(frame_power)

    # per-frame totals once; each window then sums a few frames instead of copying a spectrogram slice
    spec_per_frame = spec.sum(axis=0, dtype=np.float64)
    sustained_per_frame = sustained.sum(axis=0, dtype=np.float64)

    win, step = int(MUSIC_WINDOW_S * fps), int(MUSIC_HOP_S * fps)
    starts = range(0, spec.shape[1] - win + 1, step)
    # every 2-s window at once: (windows, frames) views, no copies

    def windows(a: np.ndarray) -> np.ndarray:
        return sliding_window_view(a, win)[::step][: len(starts)]

    active = windows(level > level_floor_dbfs)
    n_active = active.sum(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)      # a window with no active frame: NaN, not considered
        flat_median = np.nanmedian(np.where(active, windows(flatness), np.nan), axis=1)
    considered = (n_active >= 0.5 * win) & ~(flat_median > settings.music_flatness_max)
    share = np.where(considered, (windows(sustained_per_frame) * active).sum(axis=1)
                     / ((windows(spec_per_frame) * active).sum(axis=1) + 1e-12), 0.0)
    # speech pauses between syllables; music (even drums) keeps sounding
    rms_windows = windows(rms)
    low = np.mean(rms_windows < 0.5 * rms_windows.mean(axis=1, keepdims=True), axis=1)
    steady = considered & (low <= settings.music_steady_low_frames_max)
    # hysteresis: a run of windows above the low mark (or steady and above a lower one) is music
    # if it holds one window above the high mark
    weak = (share >= settings.music_sustain_low) | (steady & (share >= settings.music_steady_sustain_min))
    spans = [Span(starts[k] / fps, (starts[j - 1] + win) / fps) for k, j in mask_runs(weak)
             if share[k:j].max() >= settings.music_sustain_min]
    # windows are 2 s long: trim each span's edges, frame by frame, to where the music really is
    frame_share = uniform_filter1d(raw_share, int(0.5 * fps))
    musical = (frame_share >= settings.music_sustain_min) & (level > level_floor_dbfs)
    trimmed = []
    for span in subtract(merge(spans, gap_s=MUSIC_GAP_FILL_S), exclude):
        lo, hi = int(span.start_s * fps), min(int(span.end_s * fps), len(musical))
        edge = int(MUSIC_WINDOW_S * fps)
        while lo < hi and lo < int(span.start_s * fps) + edge and not musical[lo]:
            lo += 1
        while hi > lo and hi > int(span.end_s * fps) - edge and not musical[hi - 1]:
            hi -= 1
        trimmed.append(Span(lo / fps, hi / fps))
    return [s for s in trimmed if s.duration_s >= settings.music_min_s]
