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
from qa_audio.signal.audio import as_float, blocks
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


TONE_BLOCK_FRAMES = 1200       # a minute of 50-ms frames analysed at a time


def _tone_frames(samples: np.ndarray, *, rate_hz: int, plan: TonePlan, settings: TimingSettings) -> np.ndarray:
    """Per 50-ms frame: does it carry the plan's tone, loud enough (block by block over the channel)."""
    hop = int(rate_hz * TONE_HOP_S)
    count = len(samples) // hop
    mask = np.zeros(count, dtype=bool)
    freqs = np.fft.rfftfreq(hop, 1.0 / rate_hz)
    band = (freqs >= 100) & (freqs <= 3600)
    window = np.hanning(hop)
    for a, b in blocks(count, block=TONE_BLOCK_FRAMES):
        frames = as_float(samples[a * hop: b * hop]).reshape(-1, hop)
        spectrum = np.abs(scipy_fft.rfft(frames * window, axis=1)) ** 2
        total = spectrum[:, band].sum(axis=1) + 1e-12
        at_tone = np.zeros_like(total)
        for f_hz in plan.frequencies_hz:
            at_tone += spectrum[:, (freqs >= f_hz - 30) & (freqs <= f_hz + 30)].sum(axis=1)
        level = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
        mask[a:b] = (at_tone / total >= settings.tone_ratio_min) & (level >= settings.tone_level_min_dbfs)
    return mask


def detect_ringback(samples: np.ndarray, *, rate_hz: int, plan: TonePlan, settings: TimingSettings) -> Ringback:
    """Find tone frames at the plan's frequencies and the bursts whose length fits its cadence."""
    mask = _tone_frames(samples, rate_hz=rate_hz, plan=plan, settings=settings)
    if mask.size == 0:
        return Ringback((), (), plan.name)
    min_tone_s = min(0.3, plan.on_s * 0.5)
    tone = [s for s in merge(mask_to_spans(mask, hop_s=TONE_HOP_S), gap_s=TONE_HOP_S * 2)
            if s.duration_s >= min_tone_s]
    lo, hi = plan.on_s * 0.6, plan.on_s * 1.5 + TONE_HOP_S
    # a burst's first and last frames are part tone, part silence: widen by one hop each side
    bursts = [Span(max(0.0, s.start_s - TONE_HOP_S), s.end_s + TONE_HOP_S) for s in tone
              if lo <= s.duration_s <= hi]
    return Ringback(tuple(bursts), tuple(tone), plan.name)


MUSIC_BLOCK_S = 900.0          # a longer channel is analysed in 15-minute blocks (memory), overlapping by
MUSIC_OVERLAP_S = 30.0         # half a minute, the spans joined across them


def detect_music(samples: np.ndarray, *, rate_hz: int, settings: TimingSettings,
                 level_floor_dbfs: float, exclude: list[Span] | tuple[Span, ...] = ()) -> list[Span]:
    """Stretches of music (or other sustained tonal sound) on one channel, outside ``exclude`` (tones).

    A channel up to ``MUSIC_BLOCK_S`` long is analysed whole (its noise spectrum measured over all of
    it); a longer one in overlapping blocks, each with its own noise spectrum.
    """
    block, overlap = int(MUSIC_BLOCK_S * rate_hz), int(MUSIC_OVERLAP_S * rate_hz)
    if len(samples) <= block + overlap:
        return _detect_music(samples, rate_hz=rate_hz, settings=settings, level_floor_dbfs=level_floor_dbfs,
                             exclude=exclude)
    found: list[Span] = []
    for a in range(0, len(samples) - overlap, block):
        offset_s = a / rate_hz
        shifted = [Span(s.start_s - offset_s, s.end_s - offset_s) for s in exclude]
        part = _detect_music(samples[a: a + block + overlap], rate_hz=rate_hz, settings=settings,
                             level_floor_dbfs=level_floor_dbfs, exclude=shifted)
        found += [Span(s.start_s + offset_s, s.end_s + offset_s) for s in part]
    return [s for s in merge(found, gap_s=MUSIC_GAP_FILL_S) if s.duration_s >= settings.music_min_s]


def _spectrogram(x: np.ndarray, *, n_fft: int, hop: int, band: np.ndarray) -> np.ndarray:
    """|STFT| in the band, (bins, frames) float32, computed a few thousand frames at a time."""
    frames = _frames(x, size=n_fft, hop=hop)
    window = np.hanning(n_fft).astype(np.float32)
    spec = np.empty((int(band.sum()), frames.shape[0]), dtype=np.float32)
    for a, b in blocks(frames.shape[0], block=4096):
        spec[:, a:b] = np.abs(scipy_fft.rfft(frames[a:b] * window, axis=1))[:, band].T
    return spec


def _detect_music(samples: np.ndarray, *, rate_hz: int, settings: TimingSettings,
                  level_floor_dbfs: float, exclude: list[Span] | tuple[Span, ...] = ()) -> list[Span]:
    # analyse at 8 kHz with 20 ms hops: the telephone band is all that matters, and it is 8x cheaper
    factor = max(1, rate_hz // 8000)
    x = as_float(samples[: len(samples) // factor * factor]).reshape(-1, factor).mean(axis=1, dtype=np.float32)
    rate = rate_hz // factor
    n_fft, hop = 512 * rate // 8000, rate // 50
    fps = 50
    frames = _frames(x, size=n_fft, hop=hop)
    if frames.shape[0] < int(MUSIC_WINDOW_S * fps):
        return []
    freqs = np.fft.rfftfreq(n_fft, 1.0 / rate)
    spec = _spectrogram(x, n_fft=n_fft, hop=hop, band=(freqs >= BAND_HZ[0]) & (freqs <= BAND_HZ[1]))
    # line noise is sustained too: measure what stands above the channel's stationary noise spectrum
    # (each bin's 10th percentile over the call), so speech over pinkish noise is not "sustained"
    floor = np.percentile(spec, 10, axis=1, keepdims=True)
    raw_sustained = minimum_filter1d(spec, int(SUSTAIN_S * fps), axis=1, mode="nearest")
    # the span edges are trimmed frame by frame on the raw spectrum (a quiet tail is still music)
    raw_share = raw_sustained.sum(axis=0, dtype=np.float64) / (spec.sum(axis=0, dtype=np.float64) + 1e-12)
    sustained = raw_sustained                      # in place: a long channel's spectrogram is not copied
    sustained -= floor
    np.maximum(sustained, 0.0, out=sustained)
    spec -= floor
    np.maximum(spec, 0.0, out=spec)
    flatness = np.empty(spec.shape[1])
    for a, b in blocks(spec.shape[1], block=4096):
        power = spec[:, a:b].astype(np.float64) ** 2
        flatness[a:b] = np.exp(np.mean(np.log(power + 1e-12), axis=0)) / (np.mean(power, axis=0) + 1e-12)
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
