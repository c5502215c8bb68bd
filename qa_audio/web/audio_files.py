"""Recordings for the review page's player: found by call number, verified against the stored content
hash, transcoded once when a browser cannot play them as they are."""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path

from qa_audio.errors import QAError
from qa_audio.signal.audio import sha256_of

# codecs a browser's <audio> plays as they are; anything else is decoded once and served as 16-bit WAV
PLAYABLE = {"WAV/PCM_16": "audio/wav", "WAV/PCM_24": "audio/wav", "WAV/PCM_U8": "audio/wav",
            "WAV/FLOAT": "audio/wav", "FLAC/PCM_16": "audio/flac", "FLAC/PCM_24": "audio/flac",
            "OGG/VORBIS": "audio/ogg", "OGG/OPUS": "audio/ogg", "MP3/MPEG_LAYER_III": "audio/mpeg",
            "mp3/mp3": "audio/mpeg", "mp3/mp3float": "audio/mpeg"}


class AudioUnavailable(QAError):
    """The recording of a stored call cannot be served (moved, changed, unreadable)."""


class AudioFiles:
    """Recordings by call number: verified against the stored hash, transcoded when a browser cannot play them."""

    def __init__(self, store_dir: Path):
        self._store_dir = store_dir
        self._verified: dict[tuple, bool] = {}
        self._lock = threading.Lock()
        self._dir = Path(tempfile.mkdtemp(prefix="qa-audio-serve-"))

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)

    def resolve(self, source: dict) -> tuple[Path, str]:
        """(file to send, MIME type) for a store row ``{path, audio_sha256, size_bytes, codec}``."""
        path = Path(source["path"])
        if not path.is_absolute():                   # stores written before paths were kept absolute
            path = next((c for c in (Path.cwd() / path, self._store_dir / path) if c.exists()), path)
        try:
            stat = path.stat()
        except OSError:
            raise AudioUnavailable("the recording is no longer where the batch found it") from None
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        with self._lock:
            ok = self._verified.get(key)
        if ok is None:
            with open(path, "rb") as fh:
                ok = sha256_of(fh)[0] == source["audio_sha256"]
            with self._lock:
                self._verified[key] = ok
        if not ok:
            raise AudioUnavailable("the file at the recording's path has changed since it was scored")
        mime = PLAYABLE.get(source.get("codec") or "")
        if mime:
            return path, mime
        wav = self._dir / f"{source['audio_sha256']}.wav"
        if not wav.exists():
            import soundfile as sf

            from qa_audio.signal.audio import load_audio

            audio = load_audio(path, rate_hz=16000)
            tmp = wav.with_suffix(".part")
            sf.write(str(tmp), audio.samples.T, audio.rate_hz, subtype="PCM_16", format="WAV")
            os.replace(tmp, wav)
        return wav, "audio/wav"
