"""Decode a recording into per-channel float arrays at the analysis rate.

wav (PCM, mu-law, A-law), flac and ogg go through libsndfile; mp3 and anything
libsndfile refuses go through PyAV (FFmpeg). Every failure is an
:class:`AudioError` whose message names the file and the cause.
"""
from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf
import soxr

from qa_audio.errors import AudioError

ANALYSIS_RATE_HZ = 16000
MIN_DURATION_S = 0.1
MIN_RATE_HZ, MAX_RATE_HZ = 4000, 384000
MAX_PEAK = 4.0                  # float samples past +12 dBFS are not a recording but garbage
DEFAULT_MAX_DURATION_S = 7200.0  # config audio.max_duration_s; longer files are refused before decoding


@dataclass(frozen=True)
class Audio:
    """A decoded recording: ``samples`` is (channels, n) float32 at ``rate_hz``."""

    path: str
    samples: np.ndarray
    rate_hz: int
    source_rate_hz: int
    source_channels: int
    codec: str
    sha256: str = ""           # of the very bytes that were decoded
    size_bytes: int = 0

    @property
    def duration_s(self) -> float:
        return self.samples.shape[1] / self.rate_hz

    @property
    def channels(self) -> int:
        return self.samples.shape[0]

    def channel(self, index: int) -> np.ndarray:
        return self.samples[index]


def _check_wav_truncation(path: Path, blob: bytes) -> None:
    """Raise when a RIFF/WAVE header promises more data than the file holds."""
    with io.BytesIO(blob) as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return
        size = len(blob)
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


def _decode_soundfile(path: Path, blob: bytes, max_duration_s: float | None) -> tuple[np.ndarray, int, str]:
    """libsndfile. Raises :class:`_NotMine` when it does not know the format (PyAV's turn)."""
    try:
        fh = sf.SoundFile(io.BytesIO(blob))
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise _NotMine(str(exc)) from None
    with fh:
        _check_length(path, fh.frames, fh.samplerate, max_duration_s)
        try:
            data = fh.read(dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:     # the header was fine, the stream is not
            raise AudioError(f"{path}: corrupt or truncated {fh.format} stream: {exc}") from None
        declared = fh.frames
        codec = f"{fh.format}/{fh.subtype}"
        if fh.format in ("OGG", "MPEG", "MP3", "FLAC") and declared > 0 and len(data) < declared * 0.99:
            raise AudioError(f"{path}: corrupt or truncated: decoded {len(data) / fh.samplerate:.1f} s of the "
                             f"{declared / fh.samplerate:.1f} s its header declares")
        return data.T, fh.samplerate, codec


class _NotMine(Exception):
    """libsndfile does not read this format."""


def _check_ogg_end(path: Path, blob: bytes) -> None:
    """An Ogg stream ends on a complete page flagged end-of-stream; a cut file does not."""
    if not blob.startswith(b"OggS"):
        return
    last = blob.rfind(b"OggS", max(0, len(blob) - 70000))
    if last < 0 or len(blob) < last + 27:
        raise AudioError(f"{path}: truncated Ogg stream: it ends inside a page")
    segments = blob[last + 26]
    if len(blob) < last + 27 + segments:
        raise AudioError(f"{path}: truncated Ogg stream: it ends inside a page")
    body = sum(blob[last + 27: last + 27 + segments])
    if len(blob) < last + 27 + segments + body or not blob[last + 5] & 0x04:
        raise AudioError(f"{path}: truncated Ogg stream: the last page is incomplete or not end-of-stream")


def _decode_av(path: Path, blob: bytes, max_duration_s: float | None) -> tuple[np.ndarray, int, str]:
    import av  # PyAV ships with faster-whisper

    decoded = 0
    try:
        with av.open(io.BytesIO(blob), metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise AudioError(f"{path}: not audio: no audio stream")
            stream = container.streams.audio[0]
            if stream.codec_context is None or not stream.codec_context.sample_rate:
                raise AudioError(
                    f"{path}: not readable audio: unsupported codec "
                    f"{(stream.codec_context and stream.codec_context.name) or '(unknown)'}"
                )
            rate = stream.codec_context.sample_rate
            declared = None
            if stream.duration and stream.time_base:
                declared = float(stream.duration * stream.time_base) * rate
            elif container.duration:
                declared = container.duration / 1e6 * rate
            if declared and rate:
                _check_length(path, int(declared), rate, max_duration_s)
            chunks = []
            channels = None
            for frame in container.decode(stream):
                array = frame.to_ndarray()
                if array.dtype.kind in "iu":
                    info = np.iinfo(array.dtype)
                    array = (array.astype(np.float32) - (info.max + 1 if info.min == 0 else 0)) / float(info.max)
                if not frame.format.is_planar:
                    array = array.reshape(-1, frame.layout.nb_channels).T
                if channels is not None and array.shape[0] != channels:
                    raise AudioError(
                        f"{path}: the channel count changes mid-stream ({channels} → {array.shape[0]} "
                        f"at {decoded / rate:.1f} s): split the file or fix the recorder"
                    )
                channels = array.shape[0]
                chunks.append(array.astype(np.float32))
                decoded += array.shape[1]
            if not chunks:
                raise AudioError(f"{path}: empty: the audio stream has no frames")
            if declared and decoded < declared * 0.97 and declared - decoded > rate:
                raise AudioError(
                    f"{path}: corrupt or truncated: decoded {decoded / rate:.1f} s of the "
                    f"{declared / rate:.1f} s its header declares"
                )
            return np.concatenate(chunks, axis=1), rate, f"{container.format.name}/{stream.codec_context.name}"
    except av.error.FFmpegError as exc:
        cause = exc.strerror or str(exc)
        if decoded:
            raise AudioError(f"{path}: corrupt: {cause} after {decoded / max(rate, 1):.1f} s") from None
        raise AudioError(f"{path}: not readable audio: {cause}") from None


def _check_length(path: Path, frames: int, rate: int, max_duration_s: float | None) -> None:
    if not MIN_RATE_HZ <= rate <= MAX_RATE_HZ:
        raise AudioError(
            f"{path}: sample rate {rate} Hz is outside {MIN_RATE_HZ}-{MAX_RATE_HZ} Hz: not a "
            f"telephone or studio recording"
        )
    if max_duration_s and frames / rate > max_duration_s:
        raise AudioError(
            f"{path}: {frames / rate / 3600:.2f} h of audio is longer than audio.max_duration_s "
            f"({max_duration_s:g} s): split the recording or raise the limit"
        )


def _file_kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a directory"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def check_file(path: Path) -> os.stat_result:
    """``stat`` of a recording file, or a one-line :class:`AudioError` for anything that is not one.

    FIFOs, devices and sockets are refused here, before anything opens them (they would block).
    """
    try:
        info = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise AudioError(f"{path}: symlink loop: the link points back at itself") from None
        if exc.errno == errno.ENOENT:
            if path.is_symlink():
                raise AudioError(f"{path}: broken link: its target {os.readlink(path)} does not exist") from None
            raise AudioError(f"{path}: file not found") from None
        if exc.errno == errno.EACCES:
            raise AudioError(f"{path}: permission denied: this process may not read it") from None
        raise AudioError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        kind = _file_kind(info.st_mode)
        if kind == "a directory":
            raise AudioError(f"{path}: is a directory, not a recording")
        raise AudioError(f"{path}: not a regular file but {kind}: refused, reading it could block for ever")
    if info.st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")
    return info


def _opened(path: Path):
    try:
        return open(path, "rb")
    except PermissionError:
        raise AudioError(f"{path}: permission denied: this process may not read it") from None
    except OSError as exc:
        raise AudioError(f"{path}: cannot read: {exc.strerror or exc}") from None


def file_sha256(path: str | Path) -> tuple[str, int]:
    """(SHA-256, size in bytes) of a recording file, read in blocks; the checks of :func:`check_file`."""
    path = Path(path)
    check_file(path)
    with _opened(path) as fh:
        try:
            return sha256_of(fh)
        except OSError as exc:
            raise AudioError(f"{path}: cannot read: {exc.strerror or exc}") from None


def sha256_of(fh: BinaryIO) -> tuple[str, int]:
    """(SHA-256, size in bytes) of an open binary file, read in 1 MiB blocks (recordings, model files)."""
    digest = hashlib.sha256()
    size = 0
    for chunk in iter(lambda: fh.read(1 << 20), b""):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def read_recording(path: str | Path, *, max_bytes: int | None = None) -> bytes:
    """The bytes of a recording file (never blocks; too large a file is refused before reading)."""
    path = Path(path)
    info = check_file(path)
    if max_bytes is not None and info.st_size > max_bytes:
        raise AudioError(
            f"{path}: {info.st_size / 1e9:.2f} GB is larger than a recording within "
            f"audio.max_duration_s can be: split the recording or raise the limit"
        )
    with _opened(path) as fh:
        try:
            return fh.read()
        except OSError as exc:
            raise AudioError(f"{path}: cannot read: {exc.strerror or exc}") from None


def load_audio(
    path: str | Path, *, rate_hz: int = ANALYSIS_RATE_HZ, max_duration_s: float | None = DEFAULT_MAX_DURATION_S
) -> Audio:
    """Decode ``path`` and resample every channel once to ``rate_hz``.

    The file is read once: the SHA-256 in :attr:`Audio.sha256` is of the very bytes decoded.
    Recordings longer than ``max_duration_s`` are refused from their header, before decoding.
    """
    path = Path(path)
    # a header can declare anything; the bytes we hold bound what is decoded
    blob = read_recording(path, max_bytes=_max_bytes(max_duration_s))
    digest, size = hashlib.sha256(blob).hexdigest(), len(blob)
    _check_wav_truncation(path, blob)
    _check_ogg_end(path, blob)
    try:
        data, source_rate, codec = _decode_soundfile(path, blob, max_duration_s)
    except _NotMine:
        data, source_rate, codec = _decode_av(path, blob, max_duration_s)
    del blob
    if data.ndim != 2 or data.shape[1] == 0:
        raise AudioError(f"{path}: empty: no audio samples")
    if data.shape[0] > 2:
        raise AudioError(f"{path}: expected mono or stereo, got {data.shape[0]} channels")
    if not np.all(np.isfinite(data)):
        raise AudioError(f"{path}: corrupt: samples are not finite numbers (NaN or infinity)")
    peak = float(np.max(np.abs(data)))
    if peak > MAX_PEAK:
        raise AudioError(
            f"{path}: corrupt: samples reach {peak:.3g}, far beyond full scale (1.0): not a valid recording"
        )
    _check_length(path, data.shape[1], source_rate, max_duration_s)
    duration_s = data.shape[1] / source_rate
    if duration_s < MIN_DURATION_S:
        raise AudioError(f"{path}: too short: {duration_s:.3f} s of audio")
    if source_rate != rate_hz:
        data = np.stack([soxr.resample(ch, source_rate, rate_hz, quality="HQ") for ch in data])
    return Audio(
        path=str(path),
        samples=np.ascontiguousarray(data, dtype=np.float32),
        rate_hz=rate_hz,
        source_rate_hz=int(source_rate),
        source_channels=int(data.shape[0]),
        codec=codec,
        sha256=digest,
        size_bytes=size,
    )


def _max_bytes(max_duration_s: float | None) -> int | None:
    """The most bytes a recording within the length limit can take (uncompressed 32-bit stereo at 192 kHz)."""
    return None if not max_duration_s else int(max_duration_s * 192000 * 2 * 4) + (1 << 20)
