"""The speech stage: the Whisper model, transcription, text normalisation."""
