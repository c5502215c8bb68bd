"""A redacted copy of a call's audio: spoken personal numbers silenced or bleeped."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from qa_audio.config import PrivacySettings
from qa_audio.errors import AudioError, QAError
from qa_audio.results.privacy import pii_times
from qa_audio.results.store import StoredCall

PAD_S = 0.15
BLEEP_HZ = 1000.0


def write_redacted_audio(call: StoredCall, output: str | Path, *, settings: PrivacySettings | None = None,
                         bleep: bool = False) -> list[tuple[float, float, str]]:
    """Write ``output`` (WAV, the original rate and channels) with every spoken personal number
    (from the stored word timestamps, padded by 0.15 s) silenced on all channels, or bleeped."""
    if call.analysis is None:
        raise QAError(f"{call.call_id}: no stored transcript to find personal numbers in")
    spans = pii_times(call.analysis.utterances, settings)
    source = Path(call.path)
    target = Path(output)
    if target.resolve() == source.resolve() or (target.exists() and source.exists() and target.samefile(source)):
        raise QAError(f"{target}: is the call's own recording: write the redacted copy elsewhere (the original "
                      f"is the evidence)")
    try:
        data, rate = sf.read(source, dtype="float32", always_2d=True)
    except (OSError, RuntimeError, sf.LibsndfileError) as exc:
        raise AudioError(f"{source}: cannot read the recording to redact it: {exc}") from None
    for start_s, end_s, _kind in spans:
        a = max(0, int((start_s - PAD_S) * rate))
        b = min(len(data), int((end_s + PAD_S) * rate))
        if bleep:
            t = np.arange(b - a) / rate
            data[a:b] = (0.2 * np.sin(2 * np.pi * BLEEP_HZ * t)).astype(np.float32)[:, None]
        else:
            data[a:b] = 0.0
    sf.write(output, data, rate, subtype="PCM_16")
    return spans
