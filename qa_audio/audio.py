"""Decode a recording into per-channel float arrays at the analysis rate.

wav (PCM, mu-law, A-law), flac and ogg go through libsndfile; mp3 and anything
libsndfile refuses go through PyAV (FFmpeg). Every failure is an
:class:`AudioError` whose message names the file and the cause.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from .errors import AudioError

ANALYSIS_RATE_HZ = 16000
MIN_DURATION_S = 0.1


@dataclass(frozen=True)
class Audio:
    """A decoded recording: ``samples`` is (channels, n) float32 at ``rate_hz``."""

    path: str
    samples: np.ndarray
    rate_hz: int
    source_rate_hz: int
    source_channels: int
    codec: str

    @property
    def duration_s(self) -> float:
        return self.samples.shape[1] / self.rate_hz

    @property
    def channels(self) -> int:
        return self.samples.shape[0]

    def channel(self, index: int) -> np.ndarray:
        return self.samples[index]


def _check_wav_truncation(path: Path) -> None:
    """Raise when a RIFF/WAVE header promises more data than the file holds."""
    with path.open("rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return
        size = path.stat().st_size
        while True:
            chunk = fh.read(8)
            if len(chunk) < 8:
                return
            chunk_id, chunk_size = struct.unpack("<4sI", chunk)
            if chunk_id == b"data":
                available = size - fh.tell()
                if chunk_size not in (0, 0xFFFFFFFF) and available < chunk_size:
                    raise AudioError(
                        f"{path}: truncated WAV: header declares {chunk_size} data bytes, file holds {available}")
                return
            fh.seek(chunk_size + (chunk_size & 1), 1)


def _decode_soundfile(path: Path) -> tuple[np.ndarray, int, str]:
    with sf.SoundFile(str(path)) as fh:
        data = fh.read(dtype="float32", always_2d=True)
        return data.T, fh.samplerate, f"{fh.format}/{fh.subtype}"


def _decode_av(path: Path) -> tuple[np.ndarray, int, str]:
    import av  # PyAV ships with faster-whisper

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise AudioError(f"{path}: not audio: no audio stream")
            stream = container.streams.audio[0]
            rate = stream.codec_context.sample_rate
            chunks = []
            for frame in container.decode(stream):
                array = frame.to_ndarray()
                if array.dtype.kind == "i":
                    array = array.astype(np.float32) / float(np.iinfo(array.dtype).max)
                if frame.format.is_planar:
                    chunks.append(array.astype(np.float32))
                else:
                    chunks.append(array.reshape(-1, frame.layout.nb_channels).T.astype(np.float32))
            if not chunks:
                raise AudioError(f"{path}: empty: the audio stream has no frames")
            return np.concatenate(chunks, axis=1), rate, f"{container.format.name}/{stream.codec_context.name}"
    except av.error.FFmpegError as exc:
        raise AudioError(f"{path}: not readable audio: {exc.strerror or exc}") from None


def load_audio(path: str | Path, *, rate_hz: int = ANALYSIS_RATE_HZ) -> Audio:
    """Decode ``path`` and resample every channel once to ``rate_hz``."""
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: file not found")
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, not a recording")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")
    _check_wav_truncation(path)
    try:
        data, source_rate, codec = _decode_soundfile(path)
    except (sf.LibsndfileError, RuntimeError, TypeError):
        data, source_rate, codec = _decode_av(path)
    if data.ndim != 2 or data.shape[1] == 0:
        raise AudioError(f"{path}: empty: no audio samples")
    if data.shape[0] > 2:
        raise AudioError(f"{path}: expected mono or stereo, got {data.shape[0]} channels")
    if not np.all(np.isfinite(data)):
        raise AudioError(f"{path}: corrupt: samples are not finite numbers")
    duration_s = data.shape[1] / source_rate
    if duration_s < MIN_DURATION_S:
        raise AudioError(f"{path}: too short: {duration_s:.3f} s of audio")
    if source_rate != rate_hz:
        data = np.stack([soxr.resample(ch, source_rate, rate_hz, quality="HQ") for ch in data])
    return Audio(path=str(path), samples=np.ascontiguousarray(data, dtype=np.float32), rate_hz=rate_hz,
                 source_rate_hz=int(source_rate), source_channels=int(data.shape[0]), codec=codec)
