"""qa-audio: offline, Mandarin-first call-quality checking for contact centres."""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import AudioError, ConfigError, ModelError, QAError  # noqa: E402

__all__ = ["__version__", "QAError", "AudioError", "ConfigError", "ModelError", "load_config", "Scorer",
           "load_audio"]


def __getattr__(name):
    # lazy: importing qa_audio must stay cheap (faster-whisper and librosa are heavy)
    if name == "load_config":
        from .config import load_config
        return load_config
    if name == "Scorer":
        from .pipeline import Scorer
        return Scorer
    if name == "load_audio":
        from .audio import load_audio
        return load_audio
    raise AttributeError(name)
