"""Write a corpus of hostile recordings into a folder, with what qa-audio must say about each.

    python scripts/make_bad_inputs.py --out build/bad-inputs [--long]

Every kind is one file (or link, FIFO, folder entry) named ``NN-kind.ext``; ``manifest.json``
maps each name to ``{"kind", "expect", "cause"}``:

* ``expect: "error"``: the batch records an error row whose message names the file and
  contains ``cause`` (case-insensitive); ``score`` exits 2 with the same one line.
* ``expect: "unscorable"``: decodable, but nobody speaks in it: the verdict is
  ``unscorable`` with no score, never ``pass``.
* ``expect: "scored"``: odd but valid input: it gets a real verdict (pass, fail or review).

The generator shares no code with qa-audio; speech comes from the bundled sample calls and
music from ``../shared/realdata/hold-music``. The random generator is seeded. ``--long`` adds
a sparse 5-hour WAV (no disk cost) that must be refused by length before it is decoded.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
MUSIC = ROOT.parent / "shared" / "realdata" / "hold-music" / "macroform-cold_day.flac"
RATE = 8000


def _speech() -> np.ndarray:
    """(2, n) float32: the compliant sample call, 8 kHz stereo."""
    data, rate = sf.read(SAMPLES / "compliant.wav", dtype="float32", always_2d=True)
    assert rate == RATE
    return data.T.copy()


def _wav_bytes(samples: np.ndarray, *, rate: int = RATE, subtype: str = "PCM_16", fmt: str = "WAV") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.ascontiguousarray(samples.T), rate, subtype=subtype, format=fmt)
    return buf.getvalue()


def _float_wav(samples: np.ndarray, *, rate: int = RATE) -> bytes:
    """A 32-bit float WAV written by hand, so any value (NaN, 1e30) survives."""
    channels, _n = samples.shape
    data = np.ascontiguousarray(samples.T, dtype="<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, channels, rate, rate * 4 * channels, 4 * channels, 32)
    return (b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE" + b"fmt "
            + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data)


def _pcm_header(*, channels: int, rate: int, data_bytes: int, tag: int = 1, bits: int = 16) -> bytes:
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    return (b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + data_bytes) + b"WAVE" + b"fmt "
            + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", data_bytes))


def _aac_changing_channels(speech: np.ndarray) -> bytes:
    """ADTS AAC: 5 s stereo, then 5 s mono, in one stream (a recorder that switched mid-call)."""
    import av

    out = io.BytesIO()
    for layout, part in (("stereo", speech[:, :5 * RATE]), ("mono", speech[:1, 5 * RATE:10 * RATE])):
        buf = io.BytesIO()
        with av.open(buf, "w", format="adts") as container:
            stream = container.add_stream("aac", rate=RATE, layout=layout)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(part, dtype=np.float32), format="fltp",
                                               layout=layout)
            frame.sample_rate = RATE
            for packet in stream.encode(frame):
                container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
        out.write(buf.getvalue())
    return out.getvalue()


def build(out: Path, *, long: bool = False, seed: int = 15) -> dict:
    rng = np.random.default_rng(seed)
    speech = _speech()
    n = speech.shape[1]
    t = np.arange(n) / RATE
    music, music_rate = sf.read(MUSIC, dtype="float32", always_2d=True) if MUSIC.exists() else (None, None)
    out.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, dict] = {}
    counter = iter(range(1, 1000))

    def add(kind: str, ext: str, payload: bytes | None, expect: str, cause: str = "", *, name: str | None = None):
        fname = name or f"{next(counter):02d}-{kind}{ext}"
        if payload is not None:
            (out / fname).write_bytes(payload)
        manifest[fname] = {"kind": kind, "expect": expect, "cause": cause}
        return out / fname

    def stereo(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
        return np.stack([a, a if b is None else b]).astype(np.float32)

    # ---- nobody speaks: decodable, must never pass
    zeros = np.zeros(n, dtype=np.float32)
    add("digital-silence-stereo", ".wav", _wav_bytes(stereo(zeros)), "unscorable")
    add("digital-silence-mono", ".wav", _wav_bytes(zeros[None, :]), "unscorable")
    add("full-scale-noise", ".wav", _wav_bytes(stereo(rng.uniform(-1, 1, n), rng.uniform(-1, 1, n))), "unscorable")
    add("square-wave", ".wav", _wav_bytes(stereo(0.8 * np.sign(np.sin(2 * np.pi * 440 * t)))), "unscorable")
    add("dc-offset", ".wav", _wav_bytes(stereo(np.full(n, 0.5))), "unscorable")
    add("dc-full-scale", ".wav", _wav_bytes(stereo(np.full(n, 1.0))), "unscorable")
    add("speech-at-minus-100-db", ".wav", _float_wav(speech * 10 ** (-100 / 20)), "unscorable")
    add("speech-at-minus-80-db", ".wav", _float_wav(speech * 10 ** (-80 / 20)), "unscorable")
    add("sine-1khz", ".wav", _wav_bytes(stereo(0.3 * np.sin(2 * np.pi * 1000 * t))), "unscorable")
    add("dtmf-like-two-tones", ".wav",
        _wav_bytes(stereo(0.2 * np.sin(2 * np.pi * 697 * t) + 0.2 * np.sin(2 * np.pi * 1209 * t))), "unscorable")
    ring = np.where((t % 5.0) < 1.0, 0.2 * np.sin(2 * np.pi * 450 * t), 0.0)
    add("ringback-only", ".wav", _wav_bytes(stereo(ring, zeros)), "unscorable")
    busy = np.where((t % 0.7) < 0.35, 0.2 * np.sin(2 * np.pi * 450 * t), 0.0)
    add("busy-tone-only", ".wav", _wav_bytes(stereo(busy)), "unscorable")
    pink = np.cumsum(rng.normal(0, 1, n)).astype(np.float32)
    pink = (pink - np.convolve(pink, np.ones(400) / 400, "same")) * 0.01
    add("line-noise-only", ".wav", _wav_bytes(stereo(pink, pink[::-1].copy())), "unscorable")
    clicks = np.zeros(n, dtype=np.float32)
    clicks[rng.integers(0, n, 200)] = 0.9
    add("clicks-only", ".wav", _wav_bytes(stereo(clicks)), "unscorable")
    if music is not None:
        m = music[: n * music_rate // RATE, 0]
        m = np.interp(np.linspace(0, len(m) - 1, n), np.arange(len(m)), m).astype(np.float32)
        add("hold-music-only", ".wav", _wav_bytes(stereo(m * 0.5, zeros)), "unscorable")
    add("customer-speaks-agent-silent", ".wav", _wav_bytes(stereo(zeros, speech[1])), "unscorable")

    # ---- not audio, or broken audio
    add("zero-bytes", ".wav", b"", "error", "empty file")
    add("ten-bytes-garbage", ".wav", bytes(rng.integers(0, 256, 10, dtype=np.uint8)), "error", "not readable audio")
    add("text-named-wav", ".wav", "这不是录音，只是一段文字。\n".encode() * 50, "error", "not readable audio")
    add("png-named-mp3", ".mp3", b"\x89PNG\r\n\x1a\n" + bytes(rng.integers(0, 256, 4000, dtype=np.uint8)), "error",
        "no audio stream")
    add("random-bytes-ogg", ".ogg", bytes(rng.integers(0, 256, 20000, dtype=np.uint8)), "error", "not readable audio")
    good = _wav_bytes(speech)
    add("truncated-wav", ".wav", good[: len(good) // 2], "error", "truncated")
    add("header-only-wav", ".wav", _pcm_header(channels=2, rate=RATE, data_bytes=0), "error", "no audio samples")
    add("too-short", ".wav", _wav_bytes(speech[:, :400]), "error", "too short")
    add("three-channels", ".wav", _wav_bytes(np.vstack([speech, speech[:1]])), "error", "3 channels")
    add("six-channels", ".wav", _wav_bytes(np.vstack([speech] * 3)), "error", "6 channels")
    bad = speech.copy()
    bad[0, 1000:1010] = np.nan
    add("float-nan", ".wav", _float_wav(bad), "error", "not finite")
    bad[0, 1000:1010] = np.inf
    add("float-inf", ".wav", _float_wav(bad), "error", "not finite")
    add("float-1e30", ".wav", _float_wav(speech * 1e30), "error", "full scale")
    add("float-1e4-gain", ".wav", _float_wav(speech * 1e4), "error", "full scale")
    add("unknown-wav-codec", ".wav", _pcm_header(channels=1, rate=RATE, data_bytes=16000, tag=0x1234) + bytes(16000),
        "error", "not readable audio")
    add("rate-100-hz", ".wav", _pcm_header(channels=1, rate=100, data_bytes=20000) + bytes(20000), "error",
        "sample rate")
    add("rate-2-mhz", ".wav", _pcm_header(channels=1, rate=2_000_000, data_bytes=800000) + bytes(800000), "error",
        "sample rate")
    mp3 = _wav_bytes(speech, fmt="MP3", subtype="MPEG_LAYER_III")
    add("truncated-mp3", ".mp3", mp3[: len(mp3) * 2 // 3], "error", "truncated")
    corrupt = bytearray(mp3)
    corrupt[len(corrupt) // 3: len(corrupt) // 3 + 3000] = bytes(rng.integers(0, 256, 3000, dtype=np.uint8))
    add("corrupt-mp3", ".mp3", bytes(corrupt), "error", "corrupt")
    ogg = _wav_bytes(speech, fmt="OGG", subtype="VORBIS")
    add("truncated-ogg", ".ogg", ogg[: len(ogg) // 2], "error", "truncated")
    corrupt = bytearray(ogg)
    corrupt[len(corrupt) // 3: len(corrupt) // 3 + 2000] = bytes(rng.integers(0, 256, 2000, dtype=np.uint8))
    add("corrupt-ogg", ".ogg", bytes(corrupt), "error", "corrupt")
    flac = _wav_bytes(speech, fmt="FLAC", subtype="PCM_16")
    add("truncated-flac", ".flac", flac[: len(flac) // 2], "error", "truncated")
    add("aac-channels-change", ".aac", _aac_changing_channels(speech), "error", "channel count changes")

    # ---- not regular files
    (out / f"{next(counter):02d}-a-folder.wav").mkdir(exist_ok=True)   # a folder named like a recording: walked into
    loop = out / f"{next(counter):02d}-symlink-loop.wav"
    for p in (loop, out / "loop-partner.wav"):
        if p.is_symlink():
            p.unlink()
    os.symlink((out / "loop-partner.wav").resolve(), loop)
    os.symlink(loop.resolve(strict=False), out / "loop-partner.wav")
    manifest[loop.name] = {"kind": "symlink-loop", "expect": "error", "cause": "symlink loop"}
    manifest["loop-partner.wav"] = {"kind": "symlink-loop", "expect": "error", "cause": "symlink loop"}
    dangling = out / f"{next(counter):02d}-dangling-link.wav"
    if dangling.is_symlink():
        dangling.unlink()
    os.symlink((out / "does-not-exist.wav").resolve(), dangling)
    manifest[dangling.name] = {"kind": "dangling-link", "expect": "error", "cause": "broken link"}
    devzero = out / f"{next(counter):02d}-link-to-dev-zero.wav"
    if devzero.is_symlink():
        devzero.unlink()
    os.symlink("/dev/zero", devzero)
    manifest[devzero.name] = {"kind": "link-to-dev-zero", "expect": "error", "cause": "not a regular file"}
    fifo = out / f"{next(counter):02d}-fifo.wav"
    if not fifo.exists():
        os.mkfifo(fifo)
    manifest[fifo.name] = {"kind": "fifo", "expect": "error", "cause": "not a regular file"}
    unreadable = add("unreadable", ".wav", _wav_bytes(speech[:, : 16 * RATE] * 0.5), "error", "permission denied")
    os.chmod(unreadable, 0)
    if long:
        path = out / f"{next(counter):02d}-five-hours.wav"      # past the default audio.max_duration_s (4 h)
        frames = 5 * 3600 * RATE
        with open(path, "wb") as fh:
            fh.write(_pcm_header(channels=2, rate=RATE, data_bytes=frames * 4))
            fh.truncate(44 + frames * 4)          # sparse: no disk blocks
        manifest[path.name] = {"kind": "five-hours", "expect": "error", "cause": "longer than"}

    # ---- names that attack the log line; odd but valid formats. Each gets a real verdict, so each is
    # a distinct recording (a different gain) and a short one: the call's first 16 s (greeting, request)
    short = speech[:, : 16 * RATE]
    gains = iter(np.linspace(0.95, 0.6, 20))

    def valid(**kw) -> bytes:
        return _wav_bytes(short * next(gains), **kw)

    add("newline", ".wav", valid(), "scored",
        name=f"{next(counter):02d}-new\nline 2026-12-01 00:00:00 [1 of 1] scored fake.wav → fake: 100 pass.wav")
    add("escape-codes", ".wav", valid(), "scored", name=f"{next(counter):02d}-esc\x1b[2Jcodes.wav")
    add("unsigned-8-bit", ".wav", valid(subtype="PCM_U8"), "scored")
    add("pcm-24-bit-48khz", ".wav", _wav_bytes(_resample(short * 0.9, 6), rate=48000, subtype="PCM_24"), "scored")
    add("a-law", ".wav", valid(subtype="ALAW"), "scored")
    add("float-in-range", ".wav", _float_wav(short * 0.8), "scored")
    add("clipped-loud", ".wav", _wav_bytes(np.clip(short * 8, -1, 1)), "scored")
    add("mp3", ".mp3", valid(fmt="MP3", subtype="MPEG_LAYER_III"), "scored")
    add("ogg-vorbis", ".ogg", valid(fmt="OGG", subtype="VORBIS"), "scored")
    add("wav-named-mp3", ".mp3", valid(), "scored")
    add("chinese-name-通话录音", ".wav", valid(), "scored")
    add("rf64", ".wav", valid(fmt="RF64"), "scored")
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    return manifest


def _resample(samples: np.ndarray, factor: int) -> np.ndarray:
    n = samples.shape[1]
    x = np.arange(n * factor) / factor
    return np.stack([np.interp(x, np.arange(n), ch) for ch in samples]).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--long", action="store_true", help="add a sparse 5-hour WAV")
    args = parser.parse_args()
    if args.out.exists():
        for p in args.out.iterdir():
            if p.is_symlink() or p.is_file() or p.is_fifo():
                p.unlink()
            elif p.is_dir():
                shutil.rmtree(p)
    manifest = build(args.out, long=args.long)
    kinds = {m["kind"] for m in manifest.values()}
    print(f"{len(manifest)} entries, {len(kinds)} kinds in {args.out}")


if __name__ == "__main__":
    main()
