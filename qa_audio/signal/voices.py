"""Speaker embeddings: a numpy forward pass of Resemblyzer's GE2E speaker encoder (weights in ``data/``).

No speaker-embedding model can be downloaded at run time, and torch is not a dependency: the encoder's
weights ship inside the package (2.6 MB, Apache-2.0, see ``data/README.md``) and run here on numpy.
A window of speech (0.8 s works on telephone audio) gives a unit vector; two windows of one voice have a
higher cosine than windows of two voices.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.special import expit

from qa_audio.errors import QAError

__all__ = ["ENCODER_RATE_HZ", "FRAME_S", "VoiceEncoder", "load_encoder", "mel_frames"]

WEIGHTS = Path(__file__).with_name("data") / "voice_encoder.npz"
ENCODER_RATE_HZ = 16000
FRAME_S = 0.01                 # one mel frame per 10 ms (hop 160 at 16 kHz)
_LAYERS, _HIDDEN = 3, 256
_LEVEL_RMS = 0.03              # the input is scaled to about -30 dBFS, as the encoder was trained


@dataclass(frozen=True)
class VoiceEncoder:
    """The encoder's weights (float32); :meth:`embed` turns batches of mel windows into unit vectors."""

    layers: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]    # per layer: W_ih, W_hh, bias
    projection: tuple[np.ndarray, np.ndarray]                         # linear weight, bias

    def embed(self, mels: np.ndarray) -> np.ndarray:
        """``mels``: windows × frames × 40 → windows × 256 unit vectors (the LSTM's last state, projected)."""
        h_in = np.asarray(mels, dtype=np.float32)
        batch, steps, _ = h_in.shape
        h = np.zeros((batch, _HIDDEN), np.float32)
        for w_ih, w_hh, bias in self.layers:
            x = h_in @ w_ih.T + bias
            h = np.zeros((batch, _HIDDEN), np.float32)
            c = np.zeros((batch, _HIDDEN), np.float32)
            out = np.empty((batch, steps, _HIDDEN), np.float32)
            for t in range(steps):          # PyTorch's gate order: input, forget, cell, output
                g = x[:, t] + h @ w_hh.T
                i, f = expit(g[:, :_HIDDEN]), expit(g[:, _HIDDEN:2 * _HIDDEN])
                cell, o = np.tanh(g[:, 2 * _HIDDEN:3 * _HIDDEN]), expit(g[:, 3 * _HIDDEN:])
                c = f * c + i * cell
                h = o * np.tanh(c)
                out[:, t] = h
            h_in = out
        weight, bias = self.projection
        e = np.maximum(h @ weight.T + bias, 0.0)
        return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-9)


@lru_cache(maxsize=1)
def load_encoder(path: str | None = None) -> VoiceEncoder:
    """The bundled encoder (or one converted to the same layout at ``path``)."""
    where = Path(path) if path else WEIGHTS
    try:
        with np.load(where) as data:
            w = {k: data[k].astype(np.float32) for k in data.files}
        layers = tuple((w[f"lstm.weight_ih_l{n}"], w[f"lstm.weight_hh_l{n}"],
                        w[f"lstm.bias_ih_l{n}"] + w[f"lstm.bias_hh_l{n}"]) for n in range(_LAYERS))
        projection = (w["linear.weight"], w["linear.bias"])
    except (OSError, KeyError, ValueError) as exc:
        raise QAError(f"{where}: not a usable voice encoder ({exc})") from exc
    return VoiceEncoder(layers, projection)


def mel_frames(samples: np.ndarray, *, rate_hz: int, speech_rms: float | None = None) -> np.ndarray:
    """The encoder's input: 40 mel bands (power, not log) every 10 ms at 16 kHz, frames × 40.

    The samples are scaled so that ``speech_rms`` (default: their own RMS) becomes the encoder's
    training level: pieces of one recording levelled by one gain keep their voices' relative loudness.
    """
    import librosa  # ~1 s on first import: only mono calls need it

    y = np.asarray(samples, dtype=np.float32)
    if rate_hz != ENCODER_RATE_HZ:
        y = librosa.resample(y, orig_sr=rate_hz, target_sr=ENCODER_RATE_HZ).astype(np.float32)
    if y.size < 400:                 # one FFT frame at least
        y = np.pad(y, (0, 400 - y.size))
    if speech_rms is None:
        speech_rms = float(np.sqrt(np.mean(y.astype(np.float64) ** 2))) if y.size else 0.0
    y = y * (_LEVEL_RMS / max(speech_rms, 1e-9))
    mel = librosa.feature.melspectrogram(y=y, sr=ENCODER_RATE_HZ, n_fft=400, hop_length=160, n_mels=40)
    return np.ascontiguousarray(mel.T, dtype=np.float32)
