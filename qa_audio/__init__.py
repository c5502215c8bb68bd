"""qa-audio: offline, Mandarin-first call-quality checking for contact centres."""
from __future__ import annotations

from qa_audio.errors import AudioError, ConfigError, ModelError, QAError
from qa_audio.version import __version__

__all__ = [
    "AudioError",
    "ConfigError",
    "ModelError",
    "QAError",
    "Scorer",
    "__version__",
    "load_audio",
    "load_config",
]


def __getattr__(name):
    # lazy: importing qa_audio must stay cheap (faster-whisper and librosa are heavy)
    if name == "load_config":
        from qa_audio.config import load_config
        return load_config
    if name == "Scorer":
        from qa_audio.pipeline import Scorer
        return Scorer
    if name == "load_audio":
        from qa_audio.signal.audio import load_audio
        return load_audio
    raise AttributeError(name)
