"""Decoding: every supported container and codec, any rate, and every kind of bad input."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from qa_audio.errors import AudioError
from qa_audio.signal.audio import load_audio


def tone(rate_hz, seconds=1.0, channels=2, f_hz=440.0):
    t = np.arange(int(rate_hz * seconds)) / rate_hz
    mono = 0.3 * np.sin(2 * np.pi * f_hz * t)
    return np.stack([mono * (i + 1) / channels for i in range(channels)], axis=1)


@pytest.mark.parametrize("fmt,subtype,ext", [
    ("WAV", "PCM_16", "wav"), ("WAV", "ULAW", "wav"), ("WAV", "ALAW", "wav"), ("WAV", "FLOAT", "wav"),
    ("FLAC", "PCM_16", "flac"), ("OGG", "VORBIS", "ogg"), ("MP3", "MPEG_LAYER_III", "mp3"),
])
def test_formats_decode_to_the_analysis_rate(tmp_path, fmt, subtype, ext):
    path = tmp_path / f"call.{ext}"
    sf.write(path, tone(8000, 2.0), 8000, format=fmt, subtype=subtype)
    audio = load_audio(path)
    assert audio.channels == 2 and audio.rate_hz == 16000 and audio.source_rate_hz == 8000
    assert abs(audio.duration_s - 2.0) < 0.1
    # channel order survives: channel 1 is twice as loud as channel 0
    ratio = np.abs(audio.channel(1)).mean() / np.abs(audio.channel(0)).mean()
    assert 1.8 < ratio < 2.2


@pytest.mark.parametrize("rate_hz", [8000, 11025, 16000, 22050, 44100, 48000])
def test_any_sample_rate(tmp_path, rate_hz):
    path = tmp_path / "call.wav"
    sf.write(path, tone(rate_hz, 1.0, channels=1), rate_hz)
    audio = load_audio(path)
    assert audio.channels == 1 and audio.source_rate_hz == rate_hz
    spectrum = np.abs(np.fft.rfft(audio.channel(0)))
    assert abs(np.argmax(spectrum) * 16000 / len(audio.channel(0)) - 440) < 5


def test_mp3_via_ffmpeg_path(tmp_path):
    path = tmp_path / "call.mp3"
    sf.write(path, tone(16000, 1.0, channels=1), 16000, format="MP3")
    assert load_audio(path).duration_s > 0.9


@pytest.mark.parametrize("make,cause", [
    (lambda p: p.write_bytes(b""), "empty file"),
    (lambda p: p.write_text("agent notes, not audio\n" * 20), "not readable audio"),
    (lambda p: p.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt "), "not readable audio"),
])
def test_bad_files_raise_one_line_naming_the_file(tmp_path, make, cause):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(AudioError) as err:
        load_audio(path)
    message = str(err.value)
    assert message.startswith(str(path)) and cause in message and "\n" not in message


def test_truncated_wav(tmp_path):
    path = tmp_path / "cut.wav"
    sf.write(path, tone(8000, 3.0), 8000)
    path.write_bytes(path.read_bytes()[:10000])
    with pytest.raises(AudioError, match="truncated WAV"):
        load_audio(path)


def test_too_many_channels_missing_and_directory(tmp_path):
    path = tmp_path / "surround.wav"
    sf.write(path, tone(8000, 1.0, channels=4), 8000)
    with pytest.raises(AudioError, match="expected mono or stereo, got 4 channels"):
        load_audio(path)
    with pytest.raises(AudioError, match="file not found"):
        load_audio(tmp_path / "nope.wav")
    with pytest.raises(AudioError, match="is a directory"):
        load_audio(tmp_path)


def test_too_short(tmp_path):
    path = tmp_path / "blip.wav"
    sf.write(path, tone(8000, 0.02), 8000)
    with pytest.raises(AudioError, match="too short"):
        load_audio(path)


def _peak_mb(run) -> float:
    """Peak of Python and numpy allocations (numpy reports its buffers to tracemalloc) while ``run`` runs."""
    import tracemalloc

    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def test_decoding_holds_16_bit_pcm_never_the_whole_recording_as_floats(tmp_path):
    # 20 minutes of 8 kHz stereo: as 16 kHz PCM 76.8 MB; as float32 at 16 kHz it would be 153.6 MB,
    # plus the source floats and the resampler's copy
    rng = np.random.default_rng(7)
    path = tmp_path / "long.wav"
    with sf.SoundFile(path, "w", samplerate=8000, channels=2, subtype="PCM_16") as out:
        for _ in range(20):
            out.write((0.1 * rng.standard_normal((8000 * 60, 2))).astype(np.float32))
    held = {}
    peak = _peak_mb(lambda: held.update(audio=load_audio(path)))
    audio = held["audio"]
    assert audio.samples.dtype == np.int16 and audio.samples.shape == (2, 16000 * 1200)
    assert audio.samples.nbytes / 1e6 == pytest.approx(76.8)
    assert peak < 76.8 + 25, f"decoding peaked at {peak:.0f} MB for 76.8 MB of PCM"
    # the float view of a channel is the same signal, scaled to [-1, 1)
    assert np.abs(audio.channel(0)).max() < 1.0 and 0.05 < float(np.std(audio.channel(0)[:16000])) < 0.2


def test_whole_channel_measures_go_block_by_block():
    from qa_audio.config import load_config
    from qa_audio.signal.tones import detect_music, detect_ringback
    from qa_audio.signal.vad import frame_levels_dbfs, webrtc_decisions

    config = load_config()
    rng = np.random.default_rng(11)
    pcm = (rng.standard_normal(16000 * 1200) * 3000).astype(np.int16)        # 20 minutes: 38.4 MB
    levels = {}
    assert _peak_mb(lambda: levels.update(l=frame_levels_dbfs(pcm, rate_hz=16000, frame_s=0.03))) < 30
    floats = pcm[:16000 * 60].astype(np.float64) / 32768.0
    frames = floats[: len(floats) // 480 * 480].reshape(-1, 480)
    expect = 20 * np.log10(np.sqrt(np.mean(frames * frames, axis=1)))
    assert np.allclose(levels["l"][: len(expect)], expect)
    assert _peak_mb(lambda: webrtc_decisions(pcm, rate_hz=16000, frame_ms=30)) < 30
    assert _peak_mb(lambda: detect_ringback(pcm, rate_hz=16000, plan=config.tone_plan, settings=config.timing)) < 60
    # music: a channel past 15 minutes goes in overlapping blocks; white noise is never music
    found: list = []
    peak = _peak_mb(lambda: found.extend(detect_music(pcm, rate_hz=16000, settings=config.timing,
                                                      level_floor_dbfs=-60.0)))
    assert found == [] and peak < 400
