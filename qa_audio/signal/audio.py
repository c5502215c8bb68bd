"""Decode a recording into per-channel 16-bit PCM at the analysis rate, in blocks.

wav (PCM, mu-law, A-law), flac and ogg go through libsndfile; mp3 and anything
libsndfile refuses go through PyAV (FFmpeg). Every failure is an
:class:`AudioError` whose message names the file and the cause.
"""
from __future__ import annotations

import errno
import hashlib
import math
import os
import stat
import struct
import zlib
from collections.abc import Iterator
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
DEFAULT_MAX_DURATION_S = 14400.0  # config audio.max_duration_s; longer files are refused before decoding
PCM_SCALE = 32768.0
BLOCK_FRAMES = 1 << 18           # source frames decoded at a time (about 16 s at 16 kHz)


def as_float(samples: np.ndarray, dtype: type = np.float32) -> np.ndarray:
    """Samples as floats in [-1, 1): 16-bit PCM scaled, floats converted (copied only when they must be).

    The signal functions take either; they convert one block at a time, never a whole recording.
    """
    if samples.dtype == np.int16:
        out: np.ndarray = samples.astype(dtype)
        out /= PCM_SCALE
        return out
    return np.asarray(samples, dtype=dtype)


def blocks(length: int, *, block: int, unit: int = 1) -> Iterator[tuple[int, int]]:
    """(start, stop) of consecutive blocks covering ``length`` samples, each ``block`` long rounded
    down to whole ``unit``s (frames), the last one shorter."""
    step = max(unit, block // unit * unit)
    for start in range(0, length, step):
        yield start, min(start + step, length)


@dataclass(frozen=True)
class Audio:
    """A decoded recording: ``samples`` is (channels, n) 16-bit PCM at ``rate_hz``.

    PCM halves the memory of float32 (a 3-hour stereo call at 16 kHz: 0.69 GB); the signal
    functions read it one block at a time (:func:`as_float`).
    """

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

    def pcm(self, index: int) -> np.ndarray:
        """One channel's 16-bit samples (a view: no copy)."""
        return self.samples[index]

    def channel(self, index: int) -> np.ndarray:
        """One channel as float32 in [-1, 1) (a copy of the whole channel: for short calls and tests)."""
        return as_float(self.samples[index])


def _check_wav_truncation(path: Path, fh: BinaryIO, size: int) -> None:
    """Raise when a RIFF/WAVE header promises more data than the file holds."""
    fh.seek(0)
    head = fh.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return
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


class _Sink:
    """Decoded blocks in, one (channels, n) int16 PCM array at ``rate_hz`` out.

    Each block is checked (finite, not far past full scale), resampled through one soxr stream
    and stored as 16-bit PCM in an array sized from the header's length: the whole recording is
    never held as floats, at the source rate or the analysis rate.
    """

    def __init__(self, path: Path, *, channels: int, source_rate_hz: int, rate_hz: int, frames_hint: int):
        self.path, self.channels = path, channels
        self.source_rate_hz, self.rate_hz = source_rate_hz, rate_hz
        self.resampler = (None if source_rate_hz == rate_hz else
                          soxr.ResampleStream(source_rate_hz, rate_hz, channels, dtype="float32", quality="HQ"))
        capacity = int(math.ceil(max(frames_hint, source_rate_hz) * rate_hz / source_rate_hz)) + rate_hz
        self.out = np.empty((channels, capacity), dtype=np.int16)   # pages become resident only as written
        self.length = 0
        self.decoded = 0                                            # source frames

    def add(self, block: np.ndarray) -> None:
        """One block of (frames, channels) float32 samples in [-1, 1]."""
        if block.shape[0] == 0:
            return
        if not np.all(np.isfinite(block)):
            raise AudioError(f"{self.path}: corrupt: samples are not finite numbers (NaN or infinity)")
        peak = float(np.max(np.abs(block)))
        if peak > MAX_PEAK:
            raise AudioError(f"{self.path}: corrupt: samples reach {peak:.3g}, far beyond full scale (1.0): "
                             f"not a valid recording")
        self.decoded += block.shape[0]
        self._store(block if self.resampler is None else self.resampler.resample_chunk(block))

    def finish(self) -> np.ndarray:
        if self.resampler is not None:
            self._store(self.resampler.resample_chunk(np.zeros((0, self.channels), dtype=np.float32), last=True))
        return self.out[:, : self.length]

    def _store(self, block: np.ndarray) -> None:
        n = block.shape[0]
        if self.length + n > self.out.shape[1]:           # the header understated the length
            grown = np.empty((self.channels, max(self.length + n, int(self.out.shape[1] * 1.5))), dtype=np.int16)
            grown[:, : self.length] = self.out[:, : self.length]
            self.out = grown
        scaled = np.rint(np.clip(block.T * PCM_SCALE, -PCM_SCALE, PCM_SCALE - 1))
        self.out[:, self.length: self.length + n] = scaled
        self.length += n


def _decode_soundfile(path: Path, fh: BinaryIO, max_duration_s: float | None,
                      rate_hz: int) -> tuple[np.ndarray, int, str]:
    """libsndfile. Raises :class:`_NotMine` when it does not know the format (PyAV's turn)."""
    fh.seek(0)
    try:
        sound = sf.SoundFile(fh)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise _NotMine(str(exc)) from None
    with sound:
        _check_length(path, sound.frames, sound.samplerate, max_duration_s)
        _check_channels(path, sound.channels)
        sink = _Sink(path, channels=sound.channels, source_rate_hz=sound.samplerate, rate_hz=rate_hz,
                     frames_hint=sound.frames)
        try:
            # read() returns what was really decoded (blocks() pads a short last block to its size)
            while len(block := sound.read(BLOCK_FRAMES, dtype="float32", always_2d=True)):
                sink.add(block)
        except (sf.LibsndfileError, RuntimeError) as exc:     # the header was fine, the stream is not
            raise AudioError(f"{path}: corrupt or truncated {sound.format} stream: {exc}") from None
        declared = sound.frames
        codec = f"{sound.format}/{sound.subtype}"
        if sound.format in ("OGG", "MPEG", "MP3", "FLAC") and declared > 0 and sink.decoded < declared * 0.99:
            raise AudioError(f"{path}: corrupt or truncated: decoded {sink.decoded / sound.samplerate:.1f} s of "
                             f"the {declared / sound.samplerate:.1f} s its header declares")
        return sink.finish(), sound.samplerate, codec


class _NotMine(Exception):
    """libsndfile does not read this format."""


def _check_ogg_end(path: Path, fh: BinaryIO, size: int) -> None:
    """An Ogg stream ends on a complete page flagged end-of-stream; a cut file does not."""
    fh.seek(0)
    if fh.read(4) != b"OggS":
        return
    offset = max(0, size - 70000)
    fh.seek(offset)
    tail = fh.read()
    last = tail.rfind(b"OggS")
    if last < 0 or len(tail) < last + 27:
        raise AudioError(f"{path}: truncated Ogg stream: it ends inside a page")
    segments = tail[last + 26]
    if len(tail) < last + 27 + segments:
        raise AudioError(f"{path}: truncated Ogg stream: it ends inside a page")
    body = sum(tail[last + 27: last + 27 + segments])
    if len(tail) < last + 27 + segments + body or not tail[last + 5] & 0x04:
        raise AudioError(f"{path}: truncated Ogg stream: the last page is incomplete or not end-of-stream")


_BIT_REVERSED = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def _ogg_crc(page: bytes) -> int:
    """Ogg's page checksum (CRC-32, polynomial 0x04C11DB7, not reflected, initial value 0), from zlib's
    reflected CRC-32: on bit-reversed bytes, with zlib's initial value and final xor cancelled out."""
    raw = zlib.crc32(page.translate(_BIT_REVERSED)) ^ zlib.crc32(bytes(len(page)))
    return int(f"{raw:032b}"[::-1], 2)


def _check_ogg_pages(path: Path, fh: BinaryIO, size: int) -> None:
    """Every page of an Ogg stream in place and matching its checksum: damage inside the stream (which
    decoders step over, filling the hole or not) is refused."""
    fh.seek(0)
    if fh.read(4) != b"OggS":
        return
    offset = 0
    while offset < size:
        fh.seek(offset)
        head = fh.read(27)
        if len(head) < 27 or head[:4] != b"OggS":
            raise AudioError(f"{path}: corrupt Ogg stream: no page where one should start (byte {offset})")
        table = fh.read(head[26])
        body = fh.read(sum(table))
        page = bytearray(head + table + body)
        if len(table) < head[26] or len(body) < sum(table):
            raise AudioError(f"{path}: truncated Ogg stream: it ends inside a page")
        expected = struct.unpack("<I", bytes(page[22:26]))[0]
        page[22:26] = b"\0\0\0\0"
        if _ogg_crc(bytes(page)) != expected:
            raise AudioError(f"{path}: corrupt Ogg stream: the page at byte {offset} fails its checksum")
        offset += len(page)


def _check_channels(path: Path, channels: int) -> None:
    if channels > 2:
        raise AudioError(f"{path}: expected mono or stereo, got {channels} channels")


def _av_block(frame) -> np.ndarray:
    """One decoded PyAV frame as (frames, channels) float32 in [-1, 1]."""
    array = frame.to_ndarray()
    if array.dtype.kind in "iu":
        info = np.iinfo(array.dtype)
        array = (array.astype(np.float32) - (info.max + 1 if info.min == 0 else 0)) / float(info.max)
    if not frame.format.is_planar:
        array = array.reshape(-1, frame.layout.nb_channels).T
    return np.ascontiguousarray(array.T, dtype=np.float32)


def _decode_av(path: Path, fh: BinaryIO, max_duration_s: float | None, rate_hz: int) -> tuple[np.ndarray, int, str]:
    import av  # PyAV ships with faster-whisper

    fh.seek(0)
    decoded = 0
    rate = 0
    try:
        with av.open(fh, metadata_errors="ignore") as container:
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
            sink: _Sink | None = None
            for frame in container.decode(stream):
                block = _av_block(frame)
                if sink is None:
                    _check_length(path, 0, rate, max_duration_s)
                    _check_channels(path, block.shape[1])
                    sink = _Sink(path, channels=block.shape[1], source_rate_hz=rate, rate_hz=rate_hz,
                                 frames_hint=int((declared or 60 * rate) * 1.02))
                elif block.shape[1] != sink.channels:
                    raise AudioError(
                        f"{path}: the channel count changes mid-stream ({sink.channels} → {block.shape[1]} "
                        f"at {decoded / rate:.1f} s): split the file or fix the recorder"
                    )
                sink.add(block)
                decoded += block.shape[0]
                if max_duration_s and decoded / rate > max_duration_s:    # a header can understate the length
                    _check_length(path, decoded, rate, max_duration_s)
            if sink is None:
                raise AudioError(f"{path}: empty: the audio stream has no frames")
            if declared and decoded < declared * 0.97 and declared - decoded > rate:
                raise AudioError(
                    f"{path}: corrupt or truncated: decoded {decoded / rate:.1f} s of the "
                    f"{declared / rate:.1f} s its header declares"
                )
            return sink.finish(), rate, f"{container.format.name}/{stream.codec_context.name}"
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
    _check_size(path, info.st_size, max_bytes)
    with _opened(path) as fh:
        try:
            return fh.read()
        except OSError as exc:
            raise AudioError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _check_size(path: Path, size: int, max_bytes: int | None) -> None:
    if max_bytes is not None and size > max_bytes:
        raise AudioError(
            f"{path}: {size / 1e9:.2f} GB is larger than a recording within "
            f"audio.max_duration_s can be: split the recording or raise the limit"
        )


def load_audio(
    path: str | Path, *, rate_hz: int = ANALYSIS_RATE_HZ, max_duration_s: float | None = DEFAULT_MAX_DURATION_S
) -> Audio:
    """Decode ``path`` and resample every channel once to ``rate_hz``, into 16-bit PCM.

    The file is opened once; its SHA-256 (:attr:`Audio.sha256`) is read from that open file, and a
    file that changes while it is decoded is refused, so the digest is of the very bytes decoded.
    Decoding streams in blocks: memory is the PCM result (64 kB per second of stereo at 16 kHz),
    whatever the source format. Recordings longer than ``max_duration_s`` are refused from their
    header, before decoding.
    """
    path = Path(path)
    info = check_file(path)
    # a header can declare anything; the bytes we hold bound what is decoded
    _check_size(path, info.st_size, _max_bytes(max_duration_s))
    with _opened(path) as fh:
        try:
            digest, size = sha256_of(fh)
            _check_wav_truncation(path, fh, size)
            _check_ogg_end(path, fh, size)
            _check_ogg_pages(path, fh, size)
            try:
                pcm, source_rate, codec = _decode_soundfile(path, fh, max_duration_s, rate_hz)
            except _NotMine:
                pcm, source_rate, codec = _decode_av(path, fh, max_duration_s, rate_hz)
            after = os.fstat(fh.fileno())
        except OSError as exc:
            raise AudioError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if (after.st_size, after.st_mtime_ns) != (size, info.st_mtime_ns):
        raise AudioError(f"{path}: the file changed while it was being read: score it again once it is complete")
    if pcm.ndim != 2 or pcm.shape[1] == 0:
        raise AudioError(f"{path}: empty: no audio samples")
    duration_s = pcm.shape[1] / rate_hz
    _check_length(path, pcm.shape[1], rate_hz, max_duration_s)
    if duration_s < MIN_DURATION_S:
        raise AudioError(f"{path}: too short: {duration_s:.3f} s of audio")
    return Audio(
        path=str(path),
        samples=pcm,
        rate_hz=rate_hz,
        source_rate_hz=int(source_rate),
        source_channels=int(pcm.shape[0]),
        codec=codec,
        sha256=digest,
        size_bytes=size,
    )


def _max_bytes(max_duration_s: float | None) -> int | None:
    """The most bytes a recording within the length limit can take (uncompressed 32-bit stereo at 192 kHz)."""
    return None if not max_duration_s else int(max_duration_s * 192000 * 2 * 4) + (1 << 20)
