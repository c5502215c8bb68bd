"""A second labelled-call generator, built to break the timing detectors (independent of make_timing_set.py).

    python scripts/make_hard_set.py --out build/hard-set --count 40 --seed 101

Where ``make_timing_set.py`` composes tidy calls (one line noise, one level, one
speed, substantive cut-ins of 1.5 s or more, backchannels mid-utterance, holds of
12-45 s of the same five tracks at one loudness), this one draws every condition
from the ranges real lines show and aims at the detectors' weak spots:

* **voices**: agent lines from the TTS phrase bank sped up or slowed down by
  0.85-1.2 (pitch moves with it, so it is not quite the same voice); customers are
  real human speakers (AISHELL-1, FunASR, PaddleSpeech clips in ../shared/realdata)
  or the bank's customer lines at their own speed; each party at -30 to -10 dBFS.
* **line**: noise of several kinds (pinkish, babble of other voices, mains hum,
  clicks, crackle, white) at 8-35 dB SNR per channel, the customer's echo on the
  agent channel at -40 to -20 dB on a third of the calls, 300-3400 Hz band-pass,
  G.711 mu-law.
* **overlap**: the agent (or the customer) cuts in while the other is mid-utterance,
  and the other goes on for 0.2-2.5 s before yielding; backchannels (嗯, 对, 好的,
  是的 …, the bank's ``backchannel`` clips) at every offset in the other's
  utterance, including its last half second right before the agent's next turn;
  near-continuous talkers (several lines with 0.15-0.5 s pauses).
* **holds**: announced or not, 3-90 s, with music of several kinds (the real
  tracks from any offset, including quiet and sparse passages, 6-30 dB above the
  channel's line noise and within -40 to -10 dBFS; a sparse
  synthetic piano; a sustained synthetic pad), on the agent or the customer
  channel, with check-ins on long holds; announced silent holds; short announced
  music holds of 3-7 s.
* **hang-up**: the side that hangs up first goes dead (digital silence) while the
  other channel runs on with line noise, or with China's busy tone (450 Hz, 0.35 s
  on/off), for 0.6-4 s.

Writes ``labels.json`` in the format ``scripts/eval_timing.py`` reads (plus each
party's true speech spans, for transcript completeness, and ``hangup_side``) and
``rules.json`` (``qa-audio-labels/1``) with the standards the timing decides (HLD-1,
HLD-2, HLD-3, LST-1, SIL-1, CLS-3, ANS-1) and the phrase standards the bank's lines
fix (GRT-1/2/3, ANS-2, BAN-1, CLS-1/2).
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
from scipy.signal import butter, lfilter, sosfilt

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "realdata"
PHRASES = ROOT / "tests" / "fixtures" / "phrases"
RATE_HZ = 8000
FRAME = RATE_HZ // 50


@dataclass(frozen=True, eq=False)
class Clip:
    audio: np.ndarray             # unit peak
    kind: str
    text: str | None = None
    facts: dict = field(default_factory=dict)


@dataclass
class Bank:
    lines: dict[str, list[Clip]]
    real: list[Clip]              # real human voices
    music: list[np.ndarray]


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / (np.max(np.abs(x)) + 1e-9)).astype(np.float32)


def _read_mono(path: Path) -> np.ndarray:
    data, rate = sf.read(path, dtype="float32", always_2d=True)
    mono = data[:, 0]
    return soxr.resample(mono, rate, RATE_HZ) if rate != RATE_HZ else mono


# what the real voices say (../shared/realdata/INDEX.md; the AISHELL speaker's transcripts.tsv): the bench's
# reference text for them; a clip without one is left out of the reference (cpp_long has none)
REAL_TEXT = {"aishell-BAC009S0724W0121": "广州市房地产中介协会分析",
             "BAC009S0764W0121": "甚至出现交易几乎停滞的情况",
             "BAC009S0764W0122": "一二线城市虽然也处于调整中",
             "llamacpp_sample": "我想问我在滨海新区有房",
             "asr_example_short": "欢迎大家来体验达摩院推出的语音识别模型",
             "zh": "我认为跑步最重要的就是给我带来了身体健康",
             "chinese": "砸自己的脚"}


def _real_texts() -> dict[str, str]:
    texts = dict(REAL_TEXT)
    tsv = SHARED / "zh-speech-aishell" / "transcripts.tsv"
    for line in tsv.read_text(encoding="utf-8").splitlines()[1:]:
        parts = line.split("\t")
        if len(parts) == 4:
            texts[parts[0]] = parts[3]
    return texts


def load_bank() -> Bank:
    folders = (SHARED / "zh-speech", SHARED / "zh-speech-aishell", SHARED / "hold-music")
    for needed in folders:
        if not any(needed.glob("*.*")):
            raise SystemExit(f"{needed} is missing or empty: this generator needs ../shared beside the checkout")
    lines: dict[str, list[Clip]] = {}
    for entry in json.loads((PHRASES / "phrases.json").read_text(encoding="utf-8")):
        facts = {k: v for k, v in entry.items() if k not in ("file", "kind", "text")}
        clip = Clip(_unit(_read_mono(PHRASES / entry["file"])), entry["kind"], entry["text"], facts)
        lines.setdefault(entry["kind"], []).append(clip)
    for kind in ("backchannel", "cut_in", "greeting_n"):
        if kind not in lines:
            raise SystemExit(f"{PHRASES / 'phrases.json'} has no '{kind}' clips: run scripts/make_phrases.py --extra")
    said = _real_texts()
    real = [Clip(_unit(_read_mono(p)), "real", said.get(p.stem)) for p in sorted((SHARED / "zh-speech").glob("*.wav"))
            if p.name != "cpp_long.wav"]
    real += [Clip(_unit(_read_mono(p)), "real", said.get(p.stem))
             for p in sorted((SHARED / "zh-speech-aishell").glob("*.flac"))]
    music = [_unit(_read_mono(p)) for p in sorted((SHARED / "hold-music").glob("*.flac"))]
    return Bank(lines, real, music)


def _threshold(level: np.ndarray) -> float:
    # a clip with no silence of its own (a trimmed 嗯) has no floor to stand above: then 6 dB under its peak
    return max(level.max() - 30, min(np.percentile(level, 10) + 15, level.max() - 6))


def speech_bounds(clip: np.ndarray) -> tuple[float, float]:
    """First and last 20 ms frame within 30 dB of the clip's peak frame and 15 dB above its floor."""
    frames = clip[: len(clip) // FRAME * FRAME].reshape(-1, FRAME)
    level = 20 * np.log10(np.sqrt(np.mean(frames ** 2, axis=1)) + 1e-9)
    active = np.flatnonzero(level > _threshold(level))
    return active[0] * FRAME / RATE_HZ, (active[-1] + 1) * FRAME / RATE_HZ


def speech_parts(clip: np.ndarray, *, pause_s: float = 0.25) -> list[tuple[float, float]]:
    """The clip's speech as spans, split at pauses of ``pause_s`` or more (for the completeness labels)."""
    frames = clip[: len(clip) // FRAME * FRAME].reshape(-1, FRAME)
    level = 20 * np.log10(np.sqrt(np.mean(frames ** 2, axis=1)) + 1e-9)
    active = level > _threshold(level)
    spans: list[list[float]] = []
    for i in np.flatnonzero(active):
        a, b = i * FRAME / RATE_HZ, (i + 1) * FRAME / RATE_HZ
        if spans and a - spans[-1][1] < pause_s:
            spans[-1][1] = b
        else:
            spans.append([a, b])
    return [(a, b) for a, b in spans]


def _speed(clip: np.ndarray, factor: float) -> np.ndarray:
    """Play ``factor`` times faster (pitch moves with it)."""
    return soxr.resample(clip, RATE_HZ, RATE_HZ / factor).astype(np.float32) if abs(factor - 1) > 1e-3 else clip


def _active_rms(clip: np.ndarray) -> float:
    frames = clip[: len(clip) // FRAME * FRAME].reshape(-1, FRAME)
    rms = np.sqrt(np.mean(frames ** 2, axis=1))
    loud = rms[rms > rms.max() * 0.1]
    return float(np.sqrt(np.mean(loud ** 2))) if loud.size else 1e-9


# ---------------------------------------------------------------- sounds that are not speech

def pink(rng: np.random.Generator, n: int) -> np.ndarray:
    b = [0.049922035, -0.095993537, 0.050612699, -0.004408786]
    a = [1, -2.494956002, 2.017265875, -0.522189400]
    return lfilter(b, a, rng.normal(0, 1, n))


def noise(rng: np.random.Generator, kind: str, n: int, bank: Bank) -> np.ndarray:
    """Unit-RMS line noise of one kind."""
    if kind == "pink":
        x = pink(rng, n)
    elif kind == "white":
        x = rng.normal(0, 1, n)
    elif kind == "hum":
        t = np.arange(n) / RATE_HZ
        base = float(rng.choice([50.0, 60.0]))
        x = sum((0.7 ** k) * np.sin(2 * np.pi * base * (k + 1) * t + rng.uniform(0, 6.3)) for k in range(8))
        x = x + 0.05 * rng.normal(0, 1, n)
    elif kind == "clicks":
        x = 0.1 * pink(rng, n)
        for at in rng.integers(0, n, size=max(1, int(n / RATE_HZ * rng.uniform(0.5, 3)))):
            x[at: at + 8] += rng.choice([-1, 1]) * rng.uniform(5, 20) * np.exp(-np.arange(min(8, n - at)))
    elif kind == "crackle":
        x = 0.2 * rng.normal(0, 1, n)
        for at in rng.integers(0, n, size=max(1, int(n / RATE_HZ * rng.uniform(0.2, 1.0)))):
            size = int(rng.uniform(0.02, 0.2) * RATE_HZ)
            burst = rng.normal(0, 1, size) * (rng.random(size) < 0.3) * rng.uniform(2, 6)
            x[at: at + size] += burst[: n - at]
    elif kind == "babble":                       # other agents talking in the room, far away
        x = np.zeros(n)
        voices = bank.real + bank.lines["agent"] + bank.lines["customer"]
        for _ in range(6):
            clip = voices[int(rng.integers(len(voices)))].audio
            reps = np.tile(clip, n // len(clip) + 2)
            start = int(rng.integers(len(clip)))
            x += reps[start: start + n]
    else:
        raise ValueError(kind)
    return x / (np.sqrt(np.mean(x ** 2)) + 1e-12)


def synth_music(rng: np.random.Generator, kind: str, seconds: float) -> np.ndarray:
    """Unit-peak synthetic music: a sparse piano (decaying notes with gaps) or a slow pad."""
    n = int(seconds * RATE_HZ)
    out = np.zeros(n)
    scale = 261.63 * 2 ** (np.array([0, 2, 4, 5, 7, 9, 11, 12, 14, 16]) / 12)
    t_s = 0.0
    while t_s < seconds:
        f = float(rng.choice(scale)) * float(rng.choice([0.5, 1, 2]))
        if kind == "piano":
            dur = float(rng.uniform(0.4, 1.6))
            t = np.arange(int(dur * RATE_HZ)) / RATE_HZ
            note = sum((0.5 ** k) * np.sin(2 * np.pi * f * (k + 1) * t) for k in range(4))
            note = note * np.exp(-t * rng.uniform(2, 5))
            step = float(rng.uniform(0.3, 1.3))
        else:
            dur = float(rng.uniform(2.0, 4.0))
            t = np.arange(int(dur * RATE_HZ)) / RATE_HZ
            # a 5 Hz vibrato of 0.4% in frequency: the phase is the integral of f(1 + 0.004 sin(10 pi t))
            phase = t - 0.004 * np.cos(2 * np.pi * 5 * t) / (2 * np.pi * 5)
            note = sum(np.sin(2 * np.pi * f * r * phase) for r in (1, 1.26, 1.5)) * np.sin(np.pi * t / dur)
            step = dur * 0.7
        i = int(t_s * RATE_HZ)
        out[i : i + len(note)] += note[: n - i]
        t_s += step
    return _unit(out)


def busy_tone(seconds: float) -> np.ndarray:
    t = np.arange(int(0.35 * RATE_HZ)) / RATE_HZ
    cycle = np.concatenate([0.25 * np.sin(2 * np.pi * 450 * t), np.zeros(len(t))])
    return np.tile(cycle, int(seconds / 0.7) + 1)[: int(seconds * RATE_HZ)]


def ringback(count: int) -> np.ndarray:
    t = np.arange(RATE_HZ) / RATE_HZ
    return np.tile(np.concatenate([0.2 * np.sin(2 * np.pi * 450 * t), np.zeros(4 * RATE_HZ)]), count)


# ---------------------------------------------------------------- composing a call


@dataclass
class Track:
    """What goes on one channel: (start sample, audio) parts, and the true speech spans."""

    parts: list[tuple[int, np.ndarray]] = field(default_factory=list)
    speech: list[tuple[float, float]] = field(default_factory=list)


class Composer:
    def __init__(self, rng: np.random.Generator, bank: Bank):
        self.rng, self.bank = rng, bank
        self.agent, self.customer = Track(), Track()
        self.agent_speed = float(rng.uniform(0.85, 1.2))
        self.customer_speed = float(rng.uniform(0.85, 1.2))
        self.level = {"agent": 10 ** (rng.uniform(-30, -10) / 20), "customer": 10 ** (rng.uniform(-30, -10) / 20)}
        # each channel's line noise, drawn up front so music on hold can be placed relative to it
        self.noise = {
            party: {
                "kind": str(rng.choice(["pink", "pink", "babble", "hum", "clicks", "crackle", "white"])),
                "snr_db": round(float(rng.uniform(8, 35)), 1),
            }
            for party in ("agent", "customer")
        }
        self.labels: dict = {
            "rings": 0,
            "holds": [],
            "agent_interruptions": [],
            "customer_interruptions": [],
            "backchannels": [],
            "customer_backchannels": [],
            "dead_air": [],
            "speech": {"agent": [], "customer": []},
        }
        self.agent_chars = 0
        self.agent_talk_s = 0.0
        self.lines: list[dict] = []      # what each party says, where: the reference text (complete: not cut off)

    def noise_level(self, party: str) -> float:
        return self.level[party] / 10 ** (self.noise[party]["snr_db"] / 20)

    def pick(self, kind: str) -> Clip:
        pool = self.bank.lines[kind]
        return pool[int(self.rng.integers(len(pool)))]

    def customer_clip(self, *, min_s: float = 0.0) -> Clip:
        while True:
            if self.rng.random() < 0.65:
                clip = self.bank.real[int(self.rng.integers(len(self.bank.real)))]
            else:
                clip = self.pick("customer")
            lo, hi = speech_bounds(clip.audio)
            if hi - lo >= min_s:
                return clip

    def agent_clip(self, *, min_s: float = 0.0, kind: str = "agent") -> Clip:
        while True:
            clip = self.pick(kind)
            lo, hi = speech_bounds(_speed(clip.audio, self.agent_speed))
            if hi - lo >= min_s:
                return clip

    def put(
        self, party: str, at_s: float, clip: Clip | np.ndarray, *, cut_after_s: float | None = None, speech: bool = True
    ) -> tuple[float, float]:
        """Place a clip so its speech starts at ``at_s``; returns its true speech (start, end).

        ``cut_after_s``: the speaker stops (yields) that long after ``at_s``, mid-line.
        """
        audio = clip.audio if isinstance(clip, Clip) else clip
        if speech:
            real = isinstance(clip, Clip) and clip.kind == "real"  # real voices keep their own speed
            audio = _speed(audio, self.agent_speed if party == "agent" else (1.0 if real else self.customer_speed))
            lo, hi = speech_bounds(audio)
            if cut_after_s is not None:
                stop = int((lo + cut_after_s) * RATE_HZ)
                fade = min(int(0.04 * RATE_HZ), stop)
                audio = audio[:stop].copy()
                audio[stop - fade :] *= np.linspace(1, 0, fade)
                hi = min(hi, lo + cut_after_s)
            scaled = audio * (self.level[party] / _active_rms(audio))
            start = at_s - lo
            track = self.agent if party == "agent" else self.customer
            track.parts.append((int(start * RATE_HZ), scaled))
            for a, b in speech_parts(audio[: int(hi * RATE_HZ) + FRAME]):
                track.speech.append((start + a, min(start + b, start + hi)))
            if party == "agent" and isinstance(clip, Clip) and clip.text:
                self.agent_chars += sum(ch.isalnum() for ch in clip.text)
                self.agent_talk_s += hi - lo
            if isinstance(clip, Clip):
                self.lines.append({"channel": party, "start_s": round(at_s, 3), "end_s": round(start + hi, 3),
                                   "text": clip.text, "complete": cut_after_s is None and clip.text is not None})
            return at_s, start + hi
        track = self.agent if party == "agent" else self.customer
        track.parts.append((int(at_s * RATE_HZ), audio))
        return at_s, at_s + len(audio) / RATE_HZ


def compose(rng: np.random.Generator, bank: Bank) -> tuple[np.ndarray, dict, dict]:
    """One call: (stereo audio, timing labels, rule labels)."""
    c = Composer(rng, bank)
    L = c.labels
    rules: dict = {}
    rings = int(rng.choice([0, 1, 2, 3, 4, 5]))
    L["rings"] = rings
    t = (rings - 1) * 5.0 + 1.0 + float(rng.uniform(0.4, 3.0)) if rings else float(rng.uniform(0.3, 1.5))
    ring = ringback(rings)[: int(t * RATE_HZ)]

    greeting = c.pick("greeting_n" if rng.random() < 0.3 else "greeting")
    if rings > 3 and rng.random() < 0.5:
        greeting = next(g for g in bank.lines["greeting"] if g.facts.get("apology"))
    for rule in ("GRT-1", "GRT-2", "GRT-3"):
        rules[rule] = greeting.facts[rule]
    rules["ANS-2"] = "n/a" if rings <= 3 else ("pass" if greeting.facts["apology"] else "fail")
    start, t = c.put("agent", t, greeting)
    L["answer_s"] = round(start, 3)
    L["ring_to_answer_s"] = round(start, 3) if rings else None

    plan = {
        "holds": int(rng.choice([0, 0, 1, 1, 1, 2])),
        "dead": rng.random() < 0.4,
        "agent_cuts": int(rng.choice([0, 0, 1, 1, 2, 3])),
        "cust_cuts": int(rng.choice([0, 0, 1])),
        "backchannels": int(rng.integers(0, 4)),
        "cust_backchannels": int(rng.integers(0, 3)),
        "continuous": rng.random() < 0.3,
    }
    if rng.random() < 0.35:
        banned = c.pick("banned")
        plan["banned"] = banned
        rules["BAN-1"] = {"status": "fail", "redline": bool(banned.facts.get("severe"))}
    turns = int(rng.integers(7, 13))
    hold_turns = sorted(rng.choice(np.arange(2, turns - 1), size=plan["holds"], replace=False).tolist())
    dead_turn = int(rng.integers(2, turns)) if plan["dead"] else -1
    party = "customer"
    hold_results: list[tuple[bool, bool | None]] = []  # (announced, thanked if judged)
    for turn in range(turns):
        gap = float(rng.uniform(0.25, 1.4))
        if turn == dead_turn:
            gap = float(rng.choice([rng.uniform(6.0, 9.0), rng.uniform(11.0, 20.0)]))
            L["dead_air"].append([round(t, 3), round(t + gap, 3)])
        if party == "agent" and hold_turns and turn >= hold_turns[0]:
            hold_turns.pop(0)
            t = hold(c, t + gap, hold_results)
            party = "customer"
            continue
        if party == "customer":
            t = customer_turn(c, t + gap, plan)
            party = "agent"
        else:
            line = plan.pop("banned", None) or c.agent_clip()
            bstart, t = c.put("agent", t + gap, line)
            if line.kind == "banned":
                rules["BAN-1"]["span"] = [round(bstart, 3), round(t, 3)]
            if plan["cust_cuts"] and t - bstart > 2.5:
                t = cut_in(c, "customer", bstart, t)
                plan["cust_cuts"] -= 1
            elif plan["cust_backchannels"] and t - bstart > 1.5:
                backchannel(c, "customer", bstart, t)
                plan["cust_backchannels"] -= 1
            party = "customer"
    if party == "agent":
        _, t = c.put("agent", t + float(rng.uniform(0.4, 1.0)), c.agent_clip())
    _, t = c.put("customer", t + float(rng.uniform(0.4, 1.0)), c.customer_clip())
    ask, farewell = rng.random() < 0.7, rng.random() < 0.7
    if ask:
        _, t = c.put("agent", t + float(rng.uniform(0.4, 1.0)), c.pick("ask_else"))
    _, t = c.put("customer", t + float(rng.uniform(0.4, 1.0)), c.pick("customer_end"))
    _, t = c.put("agent", t + float(rng.uniform(0.4, 1.0)), c.pick("farewell" if farewell else "no_close"))
    rules["CLS-1"] = "pass" if ask else "fail"
    rules["CLS-2"] = "pass" if farewell else "fail"
    if rng.random() < 0.3:  # the customer has the last word
        _, t = c.put("customer", t + float(rng.uniform(0.3, 0.8)), c.pick("customer_end"))

    # ---- hang-up: the side that hangs up first goes dead; the other runs on (noise, or busy tone)
    hangup = "agent" if rng.random() < 0.35 else "customer"
    L["hangup_side"] = hangup
    hang_s = t + float(rng.uniform(0.3, 1.5))
    tail_s = float(rng.uniform(0.6, 4.0))
    total = hang_s + tail_s
    other = "customer" if hangup == "agent" else "agent"
    if rng.random() < 0.4:
        c.put(other, hang_s + 0.2, busy_tone(tail_s - 0.2), speech=False)
    rules["CLS-3"] = "pass" if hangup == "customer" else "fail"
    rules.setdefault("BAN-1", "pass")
    audio = mix(c, rng, ring, total, {hangup: hang_s}, L)
    rules.update(timing_rules(L, hold_results, c))
    L["speech"] = {
        "agent": [[round(v, 3) for v in s] for s in sorted(c.agent.speech)],
        "customer": [[round(v, 3) for v in s] for s in sorted(c.customer.speech)],
    }
    L["lines"] = sorted(c.lines, key=lambda line: (line["start_s"], line["channel"]))
    return audio, L, rules


def customer_turn(c: Composer, t: float, plan: dict) -> float:
    """A customer turn (sometimes near-continuous), perhaps cut into by the agent, perhaps acknowledged."""
    rng = c.rng
    start, end = c.put("customer", t, c.customer_clip(min_s=2.0 if plan["agent_cuts"] else 0.0))
    if plan["continuous"]:
        for _ in range(int(rng.integers(1, 4))):
            _, end = c.put("customer", end + float(rng.uniform(0.15, 0.5)), c.customer_clip())
    if plan["agent_cuts"] and end - start > 2.0:
        plan["agent_cuts"] -= 1
        return cut_in(c, "agent", start, end)
    if plan["backchannels"] and end - start > 1.2:
        plan["backchannels"] -= 1
        at_end = rng.random() < 0.4
        bc_end = backchannel(c, "agent", start, end, at_end=at_end)
        if at_end:  # the agent's next turn follows the backchannel within a second
            return max(end, bc_end) + float(rng.uniform(0.0, 0.6)) - 0.25
    return end


def cut_in(c: Composer, by: str, other_start: float, other_end: float) -> float:
    """``by`` starts a substantive line while the other is mid-utterance; the other goes on 0.2-2.5 s, then yields.

    The other party's last clip is replaced by one cut short at the overlap's end.
    """
    rng = c.rng
    other = "customer" if by == "agent" else "agent"
    track = c.customer if other == "customer" else c.agent
    overlap = float(rng.uniform(0.2, 2.5))
    # the onset must fall while the other is really speaking (not in a reading pause of a real clip),
    # and the other must really go on speaking over the overlap before yielding
    spoken = [(a, b) for a, b in track.speech if b > other_start]
    candidates = [
        t
        for t in np.arange(other_start + 0.8, other_end - 0.2, 0.02)
        if any(a <= t - 0.15 and t < b for a, b in spoken)
        and sum(max(0.0, min(b, t + overlap) - max(a, t)) for a, b in spoken) >= min(0.2, overlap)
    ]
    if not candidates:
        return other_end
    at = float(candidates[int(rng.integers(len(candidates)))])
    # cut the other's last clip at at+overlap: the other yields the floor
    start_i, audio = track.parts.pop()
    stop = int((at + overlap) * RATE_HZ) - start_i
    if 0 < stop < len(audio):
        fade = min(int(0.04 * RATE_HZ), stop)
        audio = audio[:stop].copy()
        audio[stop - fade :] *= np.linspace(1, 0, fade)
    track.parts.append((start_i, audio))
    cut_at = start_i / RATE_HZ + len(audio) / RATE_HZ
    track.speech[:] = [(a, min(b, cut_at)) for a, b in track.speech if a < cut_at]
    if by == "agent":
        line = c.agent_clip(min_s=1.2, kind="cut_in" if rng.random() < 0.6 else "agent")
    else:
        line = c.customer_clip(min_s=1.2)
    start, end = c.put(by, at, line)
    c.labels["agent_interruptions" if by == "agent" else "customer_interruptions"].append(round(start, 3))
    return max(end, cut_at)


def backchannel(c: Composer, by: str, other_start: float, other_end: float, *, at_end: bool = False) -> float:
    """A short acknowledgement by ``by`` while the other talks (``at_end``: in the other's last half second)."""
    rng = c.rng
    clip = c.pick("backchannel")  # the customer's are the same clips at the customer's speed
    if at_end:
        at = other_end - float(rng.uniform(0.05, 0.5))
    else:
        at = float(rng.uniform(other_start + 0.3, max(other_start + 0.35, other_end - 0.6)))
    start, end = c.put(by, at, clip)
    c.labels["backchannels" if by == "agent" else "customer_backchannels"].append(round(start, 3))
    return end


def hold(c: Composer, t: float, results: list) -> float:
    """A hold after the agent's line at ``t``: announced or not, music of some kind or silence, 3-90 s."""
    rng = c.rng
    announced = rng.random() < 0.7
    kind = rng.choice(["music", "music", "music", "silence"]) if announced else "music"
    length = float(
        rng.choice([rng.uniform(3.0, 7.0), rng.uniform(8.0, 30.0), rng.uniform(30.0, 90.0)], p=[0.3, 0.45, 0.25])
    )
    if kind == "silence":
        length = max(length, float(rng.uniform(9.0, 14.0)))
    line = c.pick("hold_request") if announced else c.pick("no_request")
    channel = "agent" if rng.random() < 0.8 else "customer"
    _, t = c.put("agent", t, line)
    hold_start = t
    m_at = t + float(rng.uniform(0.3, 1.5)) if kind == "music" else t
    waits, cursor = [], m_at
    check_ins = int(length // 35) if length > 35 and rng.random() < 0.7 else 0
    pieces = np.diff(np.sort(np.concatenate([[0, length], rng.uniform(0.25, 0.75, check_ins) * length])))
    wait_from = hold_start
    source, music = choose_music(c, float(length + 5), channel) if kind == "music" else (None, None)
    used = 0.0
    for i, piece in enumerate(pieces):
        if source is not None:
            seg = source[int(used * RATE_HZ) : int((used + piece) * RATE_HZ)]
            c.put(channel, cursor, seg, speech=False)
        used += piece
        cursor += piece
        if i < len(pieces) - 1:
            ci_start, ci_end = c.put("agent", cursor + 0.4, c.pick("check_in"))
            waits.append([round(wait_from, 3), round(ci_start, 3)])
            wait_from = ci_end
            cursor = ci_end + 0.4
    resume = c.pick("thanks" if rng.random() < 0.6 else "no_thanks")
    r_start, r_end = c.put("agent", cursor + float(rng.uniform(0.3, 1.0)), resume)
    waits.append([round(wait_from, 3), round(r_start, 3)])
    c.labels["holds"].append(
        {
            "start_s": round(hold_start, 3),
            "end_s": round(r_start, 3),
            "waits": waits,
            "kind": str(kind),
            "announced": announced,
            "channel": channel,
            "music": music,
        }
    )
    results.append((announced, resume.kind == "thanks" if r_start - hold_start > 10 else None))
    return r_end


def choose_music(c: Composer, seconds: float, channel: str) -> tuple[np.ndarray, str]:
    """Music of ``seconds`` for ``channel``: a real track from any offset (quiet and sparse passages too) or a
    synthetic one, 6-30 dB above that channel's line noise (quieter is not audible music) and within -40..-10 dBFS."""
    rng = c.rng
    kind = str(rng.choice(["real", "real", "real", "piano", "pad"]))
    if kind == "real":
        track = c.bank.music[int(rng.integers(len(c.bank.music)))]
        n = int(seconds * RATE_HZ)
        offset = int(rng.integers(0, max(1, len(track) - n)))
        seg = np.tile(track, 2)[offset : offset + n]
    else:
        seg = synth_music(rng, kind, seconds)
    noise_dbfs = 20 * np.log10(c.noise_level(channel))
    above_db = float(rng.uniform(6, 30))
    gain_db = float(np.clip(noise_dbfs + above_db, -40, -10))
    scaled = seg * (10 ** (gain_db / 20) / (np.sqrt(np.mean(seg**2)) + 1e-9))
    return scaled, f"{kind} {gain_db:.0f} dBFS, {gain_db - noise_dbfs:.0f} dB above the line noise"


def mix(
    c: Composer, rng: np.random.Generator, ring: np.ndarray, total_s: float, dead_from: dict, labels: dict
) -> np.ndarray:
    n = int(total_s * RATE_HZ)
    stereo = np.zeros((2, n))
    ring_channel = 0 if rng.random() < 0.7 else 1
    stereo[ring_channel, : len(ring)] += ring[:n]
    for ch, track in ((0, c.agent), (1, c.customer)):
        for at, audio in track.parts:
            if at < 0:
                audio, at = audio[-at:], 0
            if at >= n:
                continue
            stereo[ch, at : at + len(audio)] += audio[: n - at]
    if rng.random() < 1 / 3:  # the customer's echo on the agent channel
        delay = int(rng.uniform(0.03, 0.25) * RATE_HZ)
        gain = 10 ** (rng.uniform(-40, -20) / 20)
        stereo[0, delay:] += gain * stereo[1, :-delay]
        labels["echo_db"] = round(20 * np.log10(gain), 1)
    band = butter(4, [300, 3400], btype="bandpass", fs=RATE_HZ, output="sos")
    stereo = sosfilt(band, stereo, axis=1)
    labels["noise"] = c.noise
    for ch, party in ((0, "agent"), (1, "customer")):
        line = noise(rng, c.noise[party]["kind"], n, c.bank) * c.noise_level(party)
        stereo[ch] += sosfilt(band, line)
    for party, at_s in dead_from.items():  # the side that hung up goes dead
        stereo[0 if party == "agent" else 1, int(at_s * RATE_HZ) :] = 0.0
    labels["duration_s"] = round(n / RATE_HZ, 3)
    labels["speeds"] = {"agent": round(c.agent_speed, 3), "customer": round(c.customer_speed, 3)}
    return np.clip(stereo, -1, 1)


def timing_rules(L: dict, holds: list, c: Composer) -> dict:
    waits = [w[1] - w[0] for h in L["holds"] for w in h["waits"]]
    judged = [thanked for _, thanked in holds if thanked is not None]
    return {
        "ANS-1": "fail" if L["rings"] > 3 else "pass",
        "HLD-1": "n/a" if not holds else ("pass" if all(a for a, _ in holds) else "fail"),
        "HLD-2": "n/a" if not waits else ("fail" if max(waits) > 30 else "pass"),
        "HLD-3": "n/a" if not judged else ("pass" if all(judged) else "fail"),
        "SIL-1": "fail" if any(b - a > 10 for a, b in L["dead_air"]) else "pass",
        "LST-1": "fail" if len(L["agent_interruptions"]) > 1 else "pass",
    }


def make_set(out: Path, *, count: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    bank = load_bank()
    out.mkdir(parents=True, exist_ok=True)
    labels, rule_set = {}, {}
    for i in range(count):
        audio, lab, rules = compose(rng, bank)
        name = f"hard_{seed}_{i:03d}.wav"
        sf.write(out / name, audio.T, RATE_HZ, subtype="ULAW")
        labels[name] = lab
        rule_set[Path(name).stem] = {
            k: ({"status": v["status"], "redline": v["redline"]} if isinstance(v, dict) else v)
            for k, v in rules.items()
        }
    (out / "labels.json").write_text(json.dumps(labels, indent=1) + "\n", encoding="utf-8")
    doc = {
        "format": "qa-audio-labels/1",
        "source": f"scripts/make_hard_set.py --count {count} --seed {seed}",
        "calls": rule_set,
    }
    (out / "rules.json").write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return labels


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "build" / "hard-set"))
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--seed", type=int, default=101)
    args = parser.parse_args()
    labels = make_set(Path(args.out), count=args.count, seed=args.seed)
    print(f"wrote {len(labels)} calls, labels.json and rules.json to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
