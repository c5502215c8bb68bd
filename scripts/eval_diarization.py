"""Diarization error rate of qa-audio's mono diarization on labelled conversations.

    python scripts/eval_diarization.py                    # ../shared/realdata/conversation-en/sample.wav + .rttm
    python scripts/eval_diarization.py CALL.wav CALL.rttm [--set diarization.switch_penalty=3] [--json]

The speech mask is qa-audio's own (webrtcvad, music and tones removed), as in scoring, so DER includes its
misses and false alarms; no collar, overlapped speech scored (one hypothesis speaker per frame: overlap is
always part miss).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from qa_audio.config import load_config
from qa_audio.pipeline import analyze_acoustics
from qa_audio.signal.audio import load_audio
from qa_audio.signal.diarize import diarize, error_rate, read_rttm

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "realdata" / "conversation-en"


def _value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pairs", nargs="*", help="WAV RTTM [WAV RTTM ...]")
    ap.add_argument("--set", action="append", default=[], metavar="diarization.FIELD=VALUE")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    pairs = args.pairs or [str(SHARED / "sample.wav"), str(SHARED / "sample.rttm")]
    if len(pairs) % 2:
        ap.error("give WAV and RTTM in pairs")
    config = load_config()
    settings = config.diarization
    for item in args.set:
        key, _, value = item.partition("=")
        settings = dataclasses.replace(settings, **{key.removeprefix("diarization."): _value(value)})
    rows = []
    for wav, rttm in zip(pairs[::2], pairs[1::2]):
        audio = load_audio(wav)
        sound = analyze_acoustics(audio, config)
        started = time.perf_counter()
        result = diarize(audio.pcm(0), rate_hz=audio.rate_hz, voiced=sound.voiced["mixed"], settings=settings)
        seconds = time.perf_counter() - started
        rate = error_rate(read_rttm(rttm), result.turns, duration_s=audio.duration_s)
        rows.append({"file": wav, **rate.to_dict(), "separation": round(result.separation, 3),
                     "turns": len(result.turns), "diarize_s": round(seconds, 2),
                     "duration_s": round(audio.duration_s, 1)})
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        for r in rows:
            print(f"{Path(r['file']).name}: DER {r['der']:.1%} (miss {r['miss']:.1%}, false alarm "
                  f"{r['false_alarm']:.1%}, confusion {r['confusion']:.1%}) over {r['reference_s']:.1f} s of "
                  f"reference speech; separation {r['separation']}, {r['turns']} turns, "
                  f"{r['diarize_s']} s for {r['duration_s']} s of audio")
    return 0


if __name__ == "__main__":
    sys.exit(main())
