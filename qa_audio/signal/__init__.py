"""The signal stage: decoding, spans, voice activity, tones and music, line echo, line ends (no ASR)."""
