"""Who speaks when in a mono recording: two speakers told apart by their voices (no ASR, no roles).

Stages (settings: ``diarization:`` in the rulebook, :class:`~qa_audio.config.DiarizationSettings`):

1. **Segments**: the channel's voiced frames (webrtcvad, music and tones removed), joined over gaps
   shorter than ``bridge_s``. Only these are labelled: nothing outside speech is ever given a speaker.
2. **Voice windows**: windows of ``window_s`` every ``hop_s`` inside each segment (a shorter segment is
   one window) embedded by the speaker encoder (:mod:`qa_audio.signal.voices`).
3. **Two clusters** (k-means on the unit vectors, after removing the call's mean vector and keeping the first
   ``components`` principal directions when ``center`` is on: what all windows share is the line, not a
   voice), then ``iterations`` rounds of: each 10-ms frame's score is the mean, over the windows covering
   it, of (cosine to centroid 0 − cosine to centroid 1) × ``scale``;
   a two-state Viterbi path with ``switch_penalty`` per change of speaker inside a segment (free between
   segments); windows relabelled by the path and the centroids recomputed.
4. **Refinement** (``refine``): a diagonal GMM of MFCCs and deltas per speaker, trained on frames at least
   ``refine_margin_s`` inside that speaker's turns, and a second Viterbi on their smoothed log-likelihood
   ratio: the frame-level features move the turn boundaries the 0.8-s windows blur.

The result carries its turns, the separation of the two voices (1 − cosine of the centroids: near 0 when
one voice was split in two) and the settings that made it.

Measured (``scripts/eval_diarization.py``) on the real two-speaker telephone conversation in
``../shared/realdata/conversation-en/``: see the README's "Mono calls" section.
"""
from __future__ import annotations

import bisect
import dataclasses
import itertools
from dataclasses import dataclass

import numpy as np

from qa_audio.config import DiarizationSettings
from qa_audio.signal.spans import Span
from qa_audio.signal.vad import frame_levels_dbfs
from qa_audio.signal.voices import FRAME_S, load_encoder, mel_frames

__all__ = ["Diarization", "ErrorRate", "SpeakerTurn", "cut_at_changes", "diarize", "error_rate",
           "pieces_by_voice", "read_rttm"]


@dataclass(frozen=True)
class SpeakerTurn:
    start_s: float
    end_s: float
    speaker: str              # "0", "1" (in order of first speech) or, once roles are decided, agent | customer

    def to_dict(self) -> dict:
        return {"start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3), "speaker": self.speaker}

    @classmethod
    def from_dict(cls, data: dict) -> SpeakerTurn:
        return cls(float(data["start_s"]), float(data["end_s"]), str(data["speaker"]))


@dataclass(frozen=True)
class Diarization:
    """Speaker turns of one mono channel, how distinct the two voices were, and the settings used."""

    turns: tuple[SpeakerTurn, ...]
    separation: float                 # 1 - cosine(centroid 0, centroid 1); 0 when there was nothing to split
    settings: DiarizationSettings

    def speech_s(self, speaker: str) -> float:
        return sum(t.end_s - t.start_s for t in self.turns if t.speaker == speaker)

    def speaker_at(self, time_s: float) -> str | None:
        """The speaker of the turn at (or, between turns, nearest to) ``time_s``; None without turns."""
        if not self.turns:
            return None
        i = bisect.bisect_right([t.start_s for t in self.turns], time_s)
        near = list(self.turns[max(0, i - 1): i + 1])
        return min(near, key=lambda t: 0.0 if t.start_s <= time_s <= t.end_s
                   else min(abs(time_s - t.start_s), abs(time_s - t.end_s))).speaker

    def voice_of(self, start_s: float, end_s: float) -> str | None:
        """The speaker whose turns overlap [start_s, end_s] most (the nearest turn's when none does)."""
        held: dict[str, float] = {}
        for t in self.turns:
            if t.start_s < end_s and start_s < t.end_s:
                held[t.speaker] = held.get(t.speaker, 0.0) + min(end_s, t.end_s) - max(start_s, t.start_s)
        if held:
            return max(held, key=lambda k: held[k])
        return self.speaker_at((start_s + end_s) / 2)

    def by_speaker(self, spans: list[Span] | tuple[Span, ...]) -> dict[str, list[Span]]:
        """``spans`` grouped by the speaker whose turns cover most of each (see :meth:`voice_of`)."""
        out: dict[str, list[Span]] = {}
        for span in spans:
            out.setdefault(self.voice_of(span.start_s, span.end_s) or "0", []).append(span)
        return out

    def relabelled(self, names: dict[str, str]) -> Diarization:
        return dataclasses.replace(self, turns=tuple(dataclasses.replace(t, speaker=names.get(t.speaker, t.speaker))
                                                     for t in self.turns))

    def to_dict(self) -> dict:
        return {"turns": [t.to_dict() for t in self.turns], "separation": round(self.separation, 4),
                "settings": dataclasses.asdict(self.settings)}

    @classmethod
    def from_dict(cls, data: dict) -> Diarization:
        return cls(tuple(SpeakerTurn.from_dict(t) for t in data.get("turns", ())), float(data.get("separation", 0.0)),
                   DiarizationSettings(**data.get("settings", {})))


def diarize(samples: np.ndarray, *, rate_hz: int, voiced: list[Span] | tuple[Span, ...],
            settings: DiarizationSettings) -> Diarization:
    """Two speakers' turns over the ``voiced`` speech of one channel (frame-level spans, in seconds)."""
    segments = _segments(voiced, bridge_s=settings.bridge_s)
    mels = _segment_mels(samples, rate_hz=rate_hz, segments=segments)
    frames = [(a, a + len(m)) for (a, _b), m in zip(_frame_bounds(segments), mels)]
    windows = _windows(frames, size=_frames(settings.window_s), hop=_frames(settings.hop_s),
                       smallest=_frames(settings.min_window_s))
    if len(windows) < 2:                 # one short burst: one speaker
        return Diarization(tuple(SpeakerTurn(a * FRAME_S, b * FRAME_S, "0") for a, b in frames if b > a), 0.0,
                           settings)
    mel_all = np.concatenate(mels)
    offset = _offsets(frames, mels)
    vectors = _embed(mel_all, windows, offset)
    space = _call_space(vectors, components=settings.components) if settings.center else vectors
    labels = _initial_labels(space)
    path = np.zeros(0, dtype=np.int8)
    for _ in range(max(1, settings.iterations)):
        centroids = _centroids(space, labels)
        diff = space @ centroids[0] - space @ centroids[1]
        score = _frame_scores(diff, windows, frames) * settings.scale
        path = _viterbi(score, _starts(frames), penalty=settings.switch_penalty)
        labels = _window_labels(path, windows, frames, fallback=labels)
    centroids = _centroids(vectors, labels)
    separation = float(1.0 - centroids[0] @ centroids[1])
    if settings.refine:
        path = _refine(samples, rate_hz=rate_hz, frames=frames, path=path, settings=settings)
    turns = _turns(path, frames)
    return Diarization(_in_order(turns), separation, settings)


def cut_at_changes(regions: list[Span] | tuple[Span, ...], diarization: Diarization, *, samples: np.ndarray,
                   rate_hz: int, search_s: float, min_piece_s: float) -> list[Span]:
    """The speech regions cut where the voice changes, so that each piece Whisper decodes is one voice.

    A mono call's regions run on for tens of seconds while the two parties alternate, and Whisper, given two
    voices in one window, drops one of them or loops on a phrase. Each change of speaker inside a region cuts
    it at the quietest 10 ms within ``search_s`` of the change (a pause between words, not the middle of
    one); a cut that would leave a piece shorter than ``min_piece_s`` is not made.
    """
    changes = [b.start_s for a, b in itertools.pairwise(diarization.turns)
               if a.speaker != b.speaker and b.start_s - a.end_s < 0.05]
    out: list[Span] = []
    for region in regions:
        start = region.start_s
        for at in changes:
            if not region.start_s < at < region.end_s:
                continue
            cut = _quietest(samples, rate_hz=rate_hz, lo_s=max(start, at - search_s),
                            hi_s=min(region.end_s, at + search_s))
            if cut - start >= min_piece_s and region.end_s - cut >= min_piece_s:
                out.append(Span(start, cut))
                start = cut
        out.append(Span(start, region.end_s))
    return out


def pieces_by_voice(regions: list[Span] | tuple[Span, ...], diarization: Diarization, *, samples: np.ndarray,
                    rate_hz: int, settings: DiarizationSettings) -> dict[str, tuple[Span, ...]]:
    """The regions cut at changes of voice (:func:`cut_at_changes`), grouped by voice: one channel each."""
    pieces = cut_at_changes(regions, diarization, samples=samples, rate_hz=rate_hz, search_s=settings.cut_search_s,
                            min_piece_s=settings.cut_min_piece_s)
    return {name: tuple(spans) for name, spans in diarization.by_speaker(pieces).items()}


def _quietest(samples: np.ndarray, *, rate_hz: int, lo_s: float, hi_s: float) -> float:
    """The middle of the quietest 10-ms frame in [lo_s, hi_s]."""
    levels = frame_levels_dbfs(samples[int(lo_s * rate_hz): int(hi_s * rate_hz)], rate_hz=rate_hz, frame_s=FRAME_S)
    if len(levels) < 2:
        return (lo_s + hi_s) / 2
    return lo_s + (int(np.argmin(levels)) + 0.5) * FRAME_S


def _frames(seconds: float) -> int:
    return max(1, int(round(seconds / FRAME_S)))


def _segments(voiced, *, bridge_s: float) -> list[tuple[float, float]]:
    out: list[list[float]] = []
    for span in sorted(voiced):
        if out and span.start_s - out[-1][1] < bridge_s:
            out[-1][1] = max(out[-1][1], span.end_s)
        else:
            out.append([span.start_s, span.end_s])
    return [(a, b) for a, b in out if b > a]


def _frame_bounds(segments) -> list[tuple[int, int]]:
    return [(int(a / FRAME_S), int(b / FRAME_S)) for a, b in segments]


def _segment_mels(samples: np.ndarray, *, rate_hz: int, segments) -> list[np.ndarray]:
    """Mel frames of each segment (computed segment by segment: memory follows the longest segment)."""
    level = _speech_rms(samples, rate_hz=rate_hz, segments=segments)
    out = []
    for fa, fb in _frame_bounds(segments):
        piece = samples[int(fa * FRAME_S * rate_hz): int(fb * FRAME_S * rate_hz)]
        mel = mel_frames(piece, rate_hz=rate_hz, speech_rms=level)
        if len(mel) < fb - fa:
            mel = np.vstack([mel, np.repeat(mel[-1:], fb - fa - len(mel), 0)])
        out.append(mel[: max(0, fb - fa)])
    return out


def _speech_rms(samples: np.ndarray, *, rate_hz: int, segments) -> float:
    """The RMS of the channel's speech: every segment is levelled by the same gain."""
    total, count = 0.0, 0
    for a, b in segments:
        piece = np.asarray(samples[int(a * rate_hz): int(b * rate_hz)], dtype=np.float64)
        total += float(np.sum(piece * piece))
        count += piece.size
    return float(np.sqrt(total / count)) if count else 0.0


def _offsets(frames, mels) -> dict[int, int]:
    """Each segment's first frame (call time, in frames) → its row in the concatenated mels."""
    out, row = {}, 0
    for (a, _b), m in zip(frames, mels):
        out[a] = row
        row += len(m)
    return out


def _windows(frames, *, size: int, hop: int, smallest: int) -> list[tuple[int, int, int]]:
    """Windows as (segment start frame, start frame, end frame), in call time."""
    out = []
    for a, b in frames:
        if b - a <= size:
            if b - a >= smallest:
                out.append((a, a, b))
            continue
        starts = list(range(a, b - size + 1, hop))
        if starts[-1] != b - size:
            starts.append(b - size)
        out += [(a, s, s + size) for s in starts]
    return out


def _embed(mel_all: np.ndarray, windows, offset: dict[int, int], *, batch: int = 256) -> np.ndarray:
    encoder = load_encoder()
    out = np.zeros((len(windows), 256), np.float32)
    by_length: dict[int, list[int]] = {}
    for i, (_seg, s, e) in enumerate(windows):
        by_length.setdefault(e - s, []).append(i)
    for _length, ids in sorted(by_length.items()):
        for k in range(0, len(ids), batch):
            chunk = ids[k:k + batch]
            stack = np.stack([mel_all[offset[windows[i][0]] + windows[i][1] - windows[i][0]:
                                      offset[windows[i][0]] + windows[i][2] - windows[i][0]] for i in chunk])
            out[chunk] = encoder.embed(stack)
    return out


def _call_space(vectors: np.ndarray, *, components: int) -> np.ndarray:
    """The windows' vectors minus their mean, on their first ``components`` principal directions (0: all), as
    unit vectors. Every window of a call shares its line, codec and language, and on a telephone line that shared
    part dominates the encoder's raw cosines (two voices' centroids are often within 0.1 of each other); what is
    left after removing it is mostly who is speaking."""
    centred = vectors - vectors.mean(0)
    if components and components < centred.shape[1]:
        _u, _s, vt = np.linalg.svd(centred, full_matrices=False)
        centred = centred @ vt[:components].T
    return centred / np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 1e-9)


def _initial_labels(vectors: np.ndarray) -> np.ndarray:
    from sklearn.cluster import KMeans

    return KMeans(2, n_init=10, random_state=0).fit_predict(vectors).astype(np.int8)


def _centroids(vectors: np.ndarray, labels: np.ndarray) -> np.ndarray:
    out = []
    for k in (0, 1):
        members = vectors[labels == k]
        c = members.mean(0) if len(members) else vectors.mean(0)
        out.append(c / max(float(np.linalg.norm(c)), 1e-9))
    return np.stack(out)


def _positions(frames) -> np.ndarray:
    return np.concatenate([np.arange(a, b) for a, b in frames])


def _starts(frames) -> np.ndarray:
    """True at each segment's first frame, in the concatenated speech frames."""
    out = np.zeros(sum(b - a for a, b in frames), bool)
    row = 0
    for a, b in frames:
        if b > a:
            out[row] = True
        row += b - a
    return out


def _frame_scores(diff: np.ndarray, windows, frames) -> np.ndarray:
    """Mean window score per speech frame (frames no window covers take their neighbours')."""
    total = sum(b - a for a, b in frames)
    acc, cnt = np.zeros(total), np.zeros(total)
    row_of = {}
    row = 0
    for a, b in frames:
        row_of[a] = row
        row += b - a
    for (seg, s, e), v in zip(windows, diff):
        r = row_of[seg] + s - seg
        acc[r:r + e - s] += v
        cnt[r:r + e - s] += 1
    good = cnt > 0
    mean = np.where(good, acc / np.maximum(cnt, 1), 0.0)
    if good.any() and not good.all():
        idx = np.flatnonzero(good)
        mean = np.interp(np.arange(total), idx, mean[idx])
    return mean


def _viterbi(score: np.ndarray, starts: np.ndarray, *, penalty: float) -> np.ndarray:
    """Two states with log-likelihoods +score/2 (speaker 0) and -score/2 (speaker 1); a change of speaker
    costs ``penalty`` except at a segment start."""
    n = len(score)
    path = np.zeros(n, dtype=np.int8)
    if n == 0:
        return path
    half = (score / 2.0).tolist()
    free = starts.tolist()
    s0, s1 = half[0], -half[0]
    back0 = bytearray(n)       # 1: state 0 at t came from state 1 at t-1
    back1 = bytearray(n)       # 1: state 1 at t came from state 0 at t-1
    for t in range(1, n):
        p = 0.0 if free[t] else penalty
        h = half[t]
        a, b = s1 - p, s0 - p
        if a > s0:
            back0[t] = 1
            n0 = a + h
        else:
            n0 = s0 + h
        if b > s1:
            back1[t] = 1
            n1 = b - h
        else:
            n1 = s1 - h
        s0, s1 = n0, n1
    state = 0 if s0 >= s1 else 1
    for t in range(n - 1, -1, -1):
        path[t] = state
        if t and (back0[t] if state == 0 else back1[t]):
            state = 1 - state
    return path


def _window_labels(path: np.ndarray, windows, frames, *, fallback: np.ndarray) -> np.ndarray:
    row_of, row = {}, 0
    for a, b in frames:
        row_of[a] = row
        row += b - a
    out = fallback.copy()
    for i, (seg, s, e) in enumerate(windows):
        r = row_of[seg] + s - seg
        out[i] = 0 if float(np.mean(path[r:r + e - s] == 0)) >= 0.5 else 1
    return out


def _refine(samples: np.ndarray, *, rate_hz: int, frames, path: np.ndarray,
            settings: DiarizationSettings) -> np.ndarray:
    """The path again, from per-speaker GMMs of frame-level MFCCs (unchanged when a speaker has too few frames)."""
    import librosa
    from sklearn.mixture import GaussianMixture

    feats = []
    for a, b in frames:
        piece = np.asarray(samples[int(a * FRAME_S * rate_hz): int(b * FRAME_S * rate_hz)], dtype=np.float32)
        feats.append(_mfcc(librosa, piece, rate_hz, b - a))
    x = np.concatenate(feats)
    z = (x - x.mean(0)) / np.maximum(x.std(0), 1e-6)
    margin = _frames(settings.refine_margin_s)
    core = np.zeros(len(path), bool)
    row = 0
    for a, b in frames:
        seg = path[row:row + b - a]
        change = np.flatnonzero(np.diff(seg)) + 1
        edges = np.concatenate([[0], change, [len(seg)]])
        for lo, hi in itertools.pairwise(edges):
            if hi - lo > 2 * margin:
                core[row + lo + margin: row + hi - margin] = True
        row += b - a
    models = []
    for k in (0, 1):
        data = z[core & (path == k)]
        if len(data) < 20 * settings.refine_components:
            return path
        models.append(GaussianMixture(settings.refine_components, covariance_type="diag", random_state=0,
                                      reg_covar=1e-2).fit(data))
    ratio = models[0].score_samples(z) - models[1].score_samples(z)
    width = _frames(settings.refine_smooth_s)
    ratio = np.convolve(ratio, np.ones(width) / width, "same")
    return _viterbi(ratio, _starts(frames), penalty=settings.refine_penalty)


def _mfcc(librosa, piece: np.ndarray, rate_hz: int, count: int) -> np.ndarray:
    """20 MFCCs and their deltas every 10 ms, exactly ``count`` frames (padded by repetition)."""
    n_fft = 512 if rate_hz > 8000 else 256
    if piece.size < n_fft:
        piece = np.pad(piece, (0, n_fft - piece.size))
    m = librosa.feature.mfcc(y=piece, sr=rate_hz, n_mfcc=20, n_fft=n_fft, hop_length=int(rate_hz * FRAME_S),
                             win_length=int(rate_hz * 0.025), n_mels=40, fmax=min(3800, rate_hz / 2))
    width = min(9, m.shape[1] if m.shape[1] % 2 else m.shape[1] - 1)
    d = librosa.feature.delta(m, width=width) if width >= 3 else np.zeros_like(m)
    f = np.vstack([m, d]).T
    if len(f) < count:
        f = np.vstack([f, np.repeat(f[-1:], count - len(f), 0)])
    return f[:count]


def _turns(path: np.ndarray, frames) -> list[SpeakerTurn]:
    out, row = [], 0
    for a, b in frames:
        seg = path[row:row + b - a]
        row += b - a
        start = 0
        for t in range(1, len(seg) + 1):
            if t == len(seg) or seg[t] != seg[start]:
                out.append(SpeakerTurn((a + start) * FRAME_S, (a + t) * FRAME_S, str(int(seg[start]))))
                start = t
    return out


def _in_order(turns: list[SpeakerTurn] | tuple[SpeakerTurn, ...]) -> tuple[SpeakerTurn, ...]:
    """Speakers named "0" and "1" in order of first speech (the clusters' numbering is arbitrary)."""
    if turns and turns[0].speaker == "1":
        return tuple(dataclasses.replace(t, speaker="0" if t.speaker == "1" else "1") for t in turns)
    return tuple(turns)


@dataclass(frozen=True)
class ErrorRate:
    """Diarization error rate (no collar, overlap scored) and its parts, as shares of reference speech."""

    der: float
    miss: float
    false_alarm: float
    confusion: float
    reference_s: float

    def to_dict(self) -> dict:
        return {k: round(v, 4) for k, v in dataclasses.asdict(self).items()}


def error_rate(reference: list[SpeakerTurn], hypothesis: list[SpeakerTurn] | tuple[SpeakerTurn, ...], *,
               duration_s: float, step_s: float = 0.01) -> ErrorRate:
    """DER of ``hypothesis`` against ``reference`` (any speaker names), under the best one-to-one mapping of
    speakers (two hypothesis speakers at most), scored every ``step_s``."""
    n = int(duration_s / step_s) + 1
    ref_names = sorted({t.speaker for t in reference})
    hyp_names = sorted({t.speaker for t in hypothesis})

    def grid(turns, names):
        g = np.zeros((max(1, len(names)), n), bool)
        for t in turns:
            g[names.index(t.speaker), int(t.start_s / step_s): int(t.end_s / step_s)] = True
        return g

    ref, hyp = grid(reference, ref_names), grid(hypothesis, hyp_names)
    n_ref, n_hyp = ref.sum(0), hyp.sum(0)
    total = float(n_ref.sum()) or 1.0
    miss = float(np.maximum(n_ref - n_hyp, 0).sum())
    false_alarm = float(np.maximum(n_hyp - n_ref, 0).sum())
    best = None
    for perm in itertools.permutations(range(len(hyp)), min(len(ref), len(hyp))):
        correct = sum((ref[i] & hyp[j]).sum() for i, j in enumerate(perm))
        confusion = float((np.minimum(n_ref, n_hyp)).sum() - correct)
        if best is None or confusion < best:
            best = confusion
    confusion = best or 0.0
    return ErrorRate((miss + false_alarm + confusion) / total, miss / total, false_alarm / total,
                     confusion / total, total * step_s)


def read_rttm(path) -> list[SpeakerTurn]:
    """The SPEAKER lines of an RTTM file as turns."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            p = line.split()
            if len(p) >= 8 and p[0] == "SPEAKER":
                start = float(p[3])
                out.append(SpeakerTurn(start, start + float(p[4]), p[7]))
    return out
