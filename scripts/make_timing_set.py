"""Compose a labelled set of stereo 8 kHz calls with known timing ground truth.

    python scripts/make_timing_set.py --out build/timing-set --count 40 --seed 7

Speech comes from the bundled sample calls (their scripted lines, cut from the
clean channel) and from the real Mandarin clips in ../shared/realdata/zh-speech;
music on hold is the real asterisk music in ../shared/realdata/hold-music;
ringback is synthesised from China's plan (450 Hz, 1 s on / 4 s off). Each call
mixes rings, turns, holds with check-ins, agent and customer interruptions,
backchannels and dead air, then goes through a telephone band-pass, line noise
and mu-law. ``labels.json`` holds the truth that ``scripts/eval_timing.py``
compares qa-audio against.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from scipy.signal import butter, sosfilt

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "realdata"
RATE_HZ = 8000


@dataclass
class Sources:
    clips: list[np.ndarray]
    music: list[np.ndarray]


def load_sources() -> Sources:
    clips = []
    expected = json.loads((ROOT / "samples" / "expected.json").read_text(encoding="utf-8"))
    for name, info in expected.items():
        data, rate = sf.read(ROOT / "samples" / name, dtype="float32", always_2d=True)
        for line in info["lines"]:
            channel = 0 if line["channel"] == "agent" else 1
            clip = data[int(line["start_s"] * rate): int(line["end_s"] * rate), channel]
            if len(clip) > rate * 0.5:
                clips.append(clip / (np.max(np.abs(clip)) + 1e-9) * 0.5)
    for path in sorted((SHARED / "zh-speech").glob("*.wav")):
        data, rate = sf.read(path, dtype="float32", always_2d=True)
        clip = soxr.resample(data[:, 0], rate, RATE_HZ)
        clips.append(clip / (np.max(np.abs(clip)) + 1e-9) * 0.5)
    music = []
    for path in sorted((SHARED / "hold-music").glob("*.flac")):
        data, rate = sf.read(path, dtype="float32", always_2d=True)
        m = soxr.resample(data[:, 0], rate, RATE_HZ) if rate != RATE_HZ else data[:, 0]
        music.append(0.3 * m / (np.max(np.abs(m)) + 1e-9))
    return Sources(clips, music)


def speech_bounds(clip: np.ndarray) -> tuple[float, float]:
    """First and last 20 ms frame of speech: within 30 dB of the clip's peak and 15 dB above its own noise floor
    (the real clips carry room noise before and after the words)."""
    hop = RATE_HZ // 50
    frames = clip[: len(clip) // hop * hop].reshape(-1, hop)
    level = 20 * np.log10(np.sqrt(np.mean(frames ** 2, axis=1)) + 1e-9)
    active = np.flatnonzero(level > max(level.max() - 30, np.percentile(level, 10) + 15))
    return active[0] * hop / RATE_HZ, (active[-1] + 1) * hop / RATE_HZ


@dataclass
class Call:
    agent: list[tuple[float, np.ndarray]] = field(default_factory=list)
    customer: list[tuple[float, np.ndarray]] = field(default_factory=list)
    labels: dict = field(default_factory=dict)


def ringback(count: int) -> np.ndarray:
    t = np.arange(RATE_HZ) / RATE_HZ
    burst = 0.2 * np.sin(2 * np.pi * 450 * t)
    return np.tile(np.concatenate([burst, np.zeros(4 * RATE_HZ)]), count)


def compose(rng: np.random.Generator, src: Sources) -> tuple[np.ndarray, dict]:
    call = Call()
    rings = int(rng.choice([0, 0, 1, 2, 3, 4, 5]))
    labels = {"rings": rings, "holds": [], "agent_interruptions": [], "customer_interruptions": [],
              "backchannels": [], "dead_air": []}
    ring = ringback(rings)
    if rings:
        t = (rings - 1) * 5.0 + 1.0 + float(rng.uniform(0.5, 3.0))
    else:
        t = float(rng.uniform(0.3, 1.5))
    ring = ring[: int(t * RATE_HZ)]

    def place(party: str, at: float, clip: np.ndarray) -> tuple[float, float]:
        (call.agent if party == "agent" else call.customer).append((at, clip))
        lo, hi = speech_bounds(clip)
        return at + lo, at + hi

    def pick(min_s: float = 0.0, max_s: float = 1e9) -> np.ndarray:
        while True:
            clip = src.clips[int(rng.integers(len(src.clips)))]
            lo, hi = speech_bounds(clip)
            if min_s <= hi - lo <= max_s:
                return clip

    def utterance(n: int, *, min_s: float = 0.0) -> np.ndarray:
        parts = []
        for _ in range(n):
            parts += [pick(min_s), np.zeros(int(RATE_HZ * rng.uniform(0.15, 0.35)))]
        return np.concatenate(parts[:-1])

    first_start, _ = place("agent", t, utterance(1))
    labels["answer_s"] = round(first_start, 3)
    labels["ring_to_answer_s"] = round(first_start, 3) if rings else None
    t = first_start + speech_bounds(call.agent[-1][1])[1] - speech_bounds(call.agent[-1][1])[0]
    turns = int(rng.integers(6, 11))
    want_hold = rng.random() < 0.5
    want_dead = rng.random() < 0.4
    want_agent_int = rng.random() < 0.5
    want_cust_int = rng.random() < 0.3
    want_backchannel = rng.random() < 0.6
    party = "customer"
    for turn in range(turns):
        gap = float(rng.uniform(0.4, 1.4))
        if want_dead and turn == turns // 2:
            gap = float(rng.uniform(6.5, 14.0))
            labels["dead_air"].append([round(t, 3), round(t + gap, 3)])
            want_dead = False
        clip = utterance(int(rng.integers(1, 3)))
        start, end = place(party, t + gap, clip)
        if party == "customer" and end - start > 3.0:
            if want_agent_int:
                at = float(rng.uniform(start + 1.0, end - 1.5))   # talks over at least 1.5 s of the customer
                a_start, a_end = place("agent", at, utterance(1, min_s=1.5))   # substantive, not a backchannel
                labels["agent_interruptions"].append(round(a_start, 3))
                end = max(end, a_end)
                want_agent_int = False
                party = "agent"        # the agent took the floor; the customer speaks next
            elif want_backchannel:
                length = float(rng.uniform(0.3, 0.7))
                while True:
                    bc = src.clips[int(rng.integers(len(src.clips)))]
                    lo, hi = speech_bounds(bc)
                    if hi - lo > length + 0.2:
                        break
                begin = int((lo + float(rng.uniform(0, hi - lo - length))) * RATE_HZ)
                size = int(length * RATE_HZ)
                piece = bc[begin: begin + size] * np.hanning(size)
                at = float(rng.uniform(start + 0.8, end - length - 0.3))
                call.agent.append((at, piece))
                labels["backchannels"].append(round(at, 3))
                want_backchannel = False
        elif party == "agent" and end - start > 3.0 and want_cust_int:
            at = float(rng.uniform(start + 1.0, end - 1.5))
            c_start, c_end = place("customer", at, utterance(1, min_s=1.5))
            labels["customer_interruptions"].append(round(c_start, 3))
            end = max(end, c_end)
            want_cust_int = False
            party = "customer"
        t = end
        if party == "agent" and want_hold and turn >= 2:
            hold_start = t
            music = src.music[int(rng.integers(len(src.music)))]
            length = float(rng.uniform(12.0, 45.0))
            m_at = t + float(rng.uniform(0.4, 1.2))
            offset = int(rng.integers(0, len(music) - int(length * RATE_HZ) - 1))
            waits = []
            if rng.random() < 0.5 and length > 20:
                first = length * float(rng.uniform(0.35, 0.6))
                call.agent.append((m_at, music[offset: offset + int(first * RATE_HZ)]))
                # a brief check-in ("还在为您查询，请再稍等")
                ci_start, ci_end = place("agent", m_at + first + 0.5, pick(1.0, 6.0))
                waits.append([round(hold_start, 3), round(ci_start, 3)])
                rest_at = ci_end + 0.5
                rest = length - first
                call.agent.append((rest_at, music[offset + int(first * RATE_HZ): offset + int(length * RATE_HZ)]))
                m_end = rest_at + rest
                wait_from = ci_end
            else:
                call.agent.append((m_at, music[offset: offset + int(length * RATE_HZ)]))
                m_end = m_at + length
                wait_from = hold_start
            r_start, r_end = place("agent", m_end + float(rng.uniform(0.3, 1.0)), utterance(1))
            waits.append([round(wait_from, 3), round(r_start, 3)])
            labels["holds"].append({"start_s": round(hold_start, 3), "end_s": round(r_start, 3), "waits": waits})
            t = r_end
            want_hold = False
            party = "agent"
        party = "customer" if party == "agent" else "agent"
    total = t + float(rng.uniform(1.0, 2.5))
    n = int(total * RATE_HZ) + RATE_HZ
    stereo = np.zeros((2, n))
    stereo[0, : len(ring)] += ring
    for channel, parts in ((0, call.agent), (1, call.customer)):
        for at, clip in parts:
            i = int(at * RATE_HZ)
            stereo[channel, i: i + len(clip)] += clip[: n - i]
    band = butter(4, [300, 3400], btype="bandpass", fs=RATE_HZ, output="sos")
    noise_dbfs = float(rng.uniform(-62, -48))
    stereo = sosfilt(band, stereo, axis=1) + rng.normal(0, 10 ** (noise_dbfs / 20), stereo.shape)
    labels["duration_s"] = round(n / RATE_HZ, 3)
    labels["noise_dbfs"] = round(noise_dbfs, 1)
    return np.clip(stereo, -1, 1), labels


def make_set(out: Path, *, count: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    src = load_sources()
    out.mkdir(parents=True, exist_ok=True)
    labels = {}
    for i in range(count):
        audio, lab = compose(rng, src)
        name = f"call_{seed}_{i:03d}.wav"
        sf.write(out / name, audio.T, RATE_HZ, subtype="ULAW")
        labels[name] = lab
    (out / "labels.json").write_text(json.dumps(labels, indent=1) + "\n", encoding="utf-8")
    return labels


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "build" / "timing-set"))
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    labels = make_set(Path(args.out), count=args.count, seed=args.seed)
    print(f"wrote {len(labels)} calls and labels.json to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
