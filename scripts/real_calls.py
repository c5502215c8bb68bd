"""Timing on the real two-leg English service calls in ../shared/realdata/calls-en.

    python scripts/real_calls.py

Stacks each call's agent and caller legs as a stereo call and prints total overtalk,
dead air and interruptions, with every event listed with both legs' levels so it
can be checked by ear (play the legs at those times) or by eye.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa_audio.config import load_config  # noqa: E402
from qa_audio.pipeline import analyze_acoustics, measure_timing  # noqa: E402
from qa_audio.signal.audio import load_audio  # noqa: E402

CALLS = ROOT.parent / "shared" / "realdata" / "calls-en"


def level_dbfs(x: np.ndarray, rate: int, start_s: float, end_s: float) -> float:
    seg = x[int(start_s * rate): int(end_s * rate)]
    return float(20 * np.log10(np.sqrt(np.mean(seg.astype(np.float64) ** 2)) + 1e-10)) if len(seg) else -200.0


def main(out_dir: Path = Path("/tmp")) -> int:
    config = load_config()
    for call in ("Auto_Repairs_40_UTC", "Auto_Repairs_49_UTC"):
        agent, rate = sf.read(CALLS / f"{call}_agent.flac", dtype="float32")
        caller, _ = sf.read(CALLS / f"{call}_caller.flac", dtype="float32")
        n = min(len(agent), len(caller))
        path = out_dir / f"{call}_stereo.wav"
        sf.write(path, np.stack([agent[:n], caller[:n]], axis=1), rate)
        audio = load_audio(path)
        sound = analyze_acoustics(audio, config)
        timing = measure_timing(sound, config=config)
        overlap = timing.talk["overtalk_s"]
        print(f"{call}: {n / rate:.1f} s; agent talk {timing.talk['agent']['talk_s']:.1f} s, "
              f"caller talk {timing.talk['customer']['talk_s']:.1f} s, overtalk {overlap:.1f} s, "
              f"dead air {timing.talk['dead_air_s']:.1f} s in {len(timing.dead_air)} stretch(es), "
              f"interruptions {len(timing.interruptions)}, music {sum(m.duration_s for m in sound.music):.1f} s")
        for a in sound.regions["agent"]:
            for c in sound.regions["customer"]:
                o = a.overlap_s(c)
                if o > 0:
                    s, e = max(a.start_s, c.start_s), min(a.end_s, c.end_s)
                    print(
                        f"   overtalk {s:6.1f}-{e:6.1f} s ({o:.2f} s): agent {level_dbfs(agent, rate, s, e):.0f} dBFS,"
                        f" caller {level_dbfs(caller, rate, s, e):.0f} dBFS"
                    )
        for d in timing.dead_air:
            print(
                f"   dead air {d.start_s:6.1f}-{d.end_s:6.1f} s:"
                f" agent {level_dbfs(agent, rate, d.start_s, d.end_s):.0f}"
                f" dBFS, caller {level_dbfs(caller, rate, d.start_s, d.end_s):.0f} dBFS"
            )
        for i in timing.interruptions:
            print(f"   interruption at {i.at_s:.1f} s by {i.by}, overlap {i.overlap_s:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
