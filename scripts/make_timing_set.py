"""Compose a labelled set of stereo 8 kHz calls with known timing and rule ground truth.

    python scripts/make_timing_set.py --out build/timing-set --count 40 --seed 7

Agent speech is the TTS phrase bank in tests/fixtures/phrases (made once by
scripts/make_phrases.py): greetings with and without the organisation, the
employee number, an offer of help, an apology for the wait or a personal name;
hold requests and thanks after holds, or their absence; banned phrases; closings
with and without "anything else" and a farewell; a number the customer gave,
repeated back or not; a complaint, answered with empathy or not. Customer speech
is the phrase bank's customer lines and the real Mandarin clips in
../shared/realdata/zh-speech. Music on hold is the real asterisk music in
../shared/realdata/hold-music; ringback is synthesised from China's plan (450 Hz,
1 s on / 4 s off). Each call mixes rings, turns, holds with check-ins, agent and
customer interruptions, backchannels and dead air, then goes through a telephone
band-pass, line noise and mu-law.

Writes ``labels.json`` (timing truth, for ``scripts/eval_timing.py``) and
``rules.json``: the per-rule verdicts, evidence spans and score of every call in
the ``qa-audio-labels/1`` format that ``qa-audio backtest --labels`` reads.
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
PHRASES = ROOT / "tests" / "fixtures" / "phrases"
RATE_HZ = 8000
sys.path.insert(0, str(ROOT))


@dataclass(frozen=True)
class Line:
    clip: np.ndarray
    kind: str
    text: str | None = None
    facts: dict = field(default_factory=dict)


@dataclass
class Sources:
    phrases: dict[str, list[Line]]
    customer: list[Line]          # neutral customer speech: phrase-bank lines and real clips
    music: list[np.ndarray]


def _peak(clip: np.ndarray) -> np.ndarray:
    return clip / (np.max(np.abs(clip)) + 1e-9) * 0.5


def load_sources() -> Sources:
    for needed in (SHARED / "zh-speech", SHARED / "hold-music"):
        if not any(needed.glob("*.*")):
            raise FileNotFoundError(
                f"{needed} is missing or empty: the labelled set needs ../shared beside the checkout"
            )
    phrases: dict[str, list[Line]] = {}
    for entry in json.loads((PHRASES / "phrases.json").read_text(encoding="utf-8")):
        data, rate = sf.read(PHRASES / entry["file"], dtype="float32")
        facts = {k: v for k, v in entry.items() if k not in ("file", "kind", "text")}
        phrases.setdefault(entry["kind"], []).append(Line(_peak(data), entry["kind"], entry["text"], facts))
    customer = list(phrases["customer"])
    for path in sorted((SHARED / "zh-speech").glob("*.wav")):
        data, rate = sf.read(path, dtype="float32", always_2d=True)
        customer.append(Line(_peak(soxr.resample(data[:, 0], rate, RATE_HZ)), "customer"))
    music = []
    for path in sorted((SHARED / "hold-music").glob("*.flac")):
        data, rate = sf.read(path, dtype="float32", always_2d=True)
        m = soxr.resample(data[:, 0], rate, RATE_HZ) if rate != RATE_HZ else data[:, 0]
        music.append(0.3 * m / (np.max(np.abs(m)) + 1e-9))
    return Sources(phrases, customer, music)


def speech_bounds(clip: np.ndarray) -> tuple[float, float]:
    """First and last 20 ms frame of speech: within 30 dB of the clip's peak and 15 dB above its own noise floor
    (the real clips carry room noise before and after the words)."""
    hop = RATE_HZ // 50
    frames = clip[: len(clip) // hop * hop].reshape(-1, hop)
    level = 20 * np.log10(np.sqrt(np.mean(frames**2, axis=1)) + 1e-9)
    active = np.flatnonzero(level > max(level.max() - 30, np.percentile(level, 10) + 15))
    return active[0] * hop / RATE_HZ, (active[-1] + 1) * hop / RATE_HZ


@dataclass
class Call:
    agent: list[tuple[float, np.ndarray]] = field(default_factory=list)
    customer: list[tuple[float, np.ndarray]] = field(default_factory=list)


def ringback(count: int) -> np.ndarray:
    t = np.arange(RATE_HZ) / RATE_HZ
    burst = 0.2 * np.sin(2 * np.pi * 450 * t)
    return np.tile(np.concatenate([burst, np.zeros(4 * RATE_HZ)]), count)


def _span(a: float, b: float) -> list[float]:
    return [round(a, 3), round(b, 3)]


def compose(rng: np.random.Generator, src: Sources) -> tuple[np.ndarray, dict, dict]:
    """One call: (stereo audio, timing labels, rule labels with evidence spans)."""
    call = Call()
    P = src.phrases

    def choose(kind: str) -> Line:
        return P[kind][int(rng.integers(len(P[kind])))]

    rings = int(rng.choice([0, 0, 1, 2, 3, 4, 5]))
    labels = {
        "rings": rings,
        "holds": [],
        "agent_interruptions": [],
        "customer_interruptions": [],
        "backchannels": [],
        "dead_air": [],
    }
    ring = ringback(rings)
    if rings:
        t = (rings - 1) * 5.0 + 1.0 + float(rng.uniform(0.5, 3.0))
    else:
        t = float(rng.uniform(0.3, 1.5))
    ring = ring[: int(t * RATE_HZ)]
    spoken: dict[str, list] = {"agent_chars": 0, "agent_s": 0.0}

    def place(party: str, at: float, line: Line | np.ndarray) -> tuple[float, float]:
        clip = line.clip if isinstance(line, Line) else line
        (call.agent if party == "agent" else call.customer).append((at, clip))
        lo, hi = speech_bounds(clip)
        if party == "agent" and isinstance(line, Line) and line.text:
            spoken["agent_chars"] += sum(ch.isalnum() for ch in line.text)
            spoken["agent_s"] += hi - lo
        return at + lo, at + hi

    def neutral(party: str, *, min_s: float = 0.0) -> Line:
        pool = P["agent"] if party == "agent" else src.customer
        while True:
            line = pool[int(rng.integers(len(pool)))]
            lo, hi = speech_bounds(line.clip)
            if hi - lo >= min_s:
                return line

    # ---- what this call will show, per standard
    greeting = choose("greeting")
    if rings > 3 and rng.random() < 0.5:
        greeting = P["greeting"][int(rng.choice([i for i, g in enumerate(P["greeting"]) if g.facts["apology"]]))]
    customer_queue: list[Line] = []
    agent_queue: list[Line] = []
    rules: dict = {r: {"status": greeting.facts[r]} for r in ("GRT-1", "GRT-2", "GRT-3")}
    rules["ANS-2"] = {"status": "n/a" if rings <= 3 else ("pass" if greeting.facts["apology"] else "fail")}
    if rng.random() < 0.35:  # CNF-1: the customer gives a number
        which = int(rng.integers(len(P["number"])))
        customer_queue.append(P["number"][which])
        agent_queue.append(P["confirm"][which] if rng.random() < 0.55 else choose("no_confirm"))
    if rng.random() < 0.3:  # EMP-1: the customer complains
        customer_queue.append(choose("complaint"))
        agent_queue.append(choose("empathy") if rng.random() < 0.55 else neutral("agent"))
    if rng.random() < 0.35:  # BAN-1
        severe = rng.random() < 0.3
        banned = [b for b in P["banned"] if b.facts["severe"] == severe]
        agent_queue.insert(int(rng.integers(len(agent_queue) + 1)), banned[int(rng.integers(len(banned)))])
    marks: dict[str, list] = {}

    first_start, first_end = place("agent", t, greeting)
    for rule in ("GRT-1", "GRT-2", "GRT-3", "ANS-2"):
        marks[rule] = _span(first_start, first_end)
    labels["answer_s"] = round(first_start, 3)
    labels["ring_to_answer_s"] = round(first_start, 3) if rings else None
    t = first_end
    turns = int(rng.integers(6, 11))
    want_hold = rng.random() < 0.5
    hold_request = rng.random() < 0.6
    hold_thanks = rng.random() < 0.6
    want_dead = rng.random() < 0.4
    want_agent_int = rng.random() < 0.5
    want_cust_int = rng.random() < 0.3
    want_backchannel = rng.random() < 0.6
    party = "customer"
    for turn in range(turns):
        gap = float(rng.uniform(0.4, 1.4))
        if want_dead and turn == turns // 2:
            # dead air clearly under or over SIL-1's 10 s, so the label is not a coin toss
            gap = float(rng.choice([rng.uniform(6.5, 9.0), rng.uniform(11.5, 14.0)]))
            labels["dead_air"].append([round(t, 3), round(t + gap, 3)])
            want_dead = False
        hold_lead = party == "agent" and want_hold and turn >= 2
        if hold_lead:
            line = choose("hold_request" if hold_request else "no_request")
        elif party == "agent" and agent_queue:
            line = agent_queue.pop(0)
        elif party == "customer" and customer_queue:
            line = customer_queue.pop(0)
        else:
            line = neutral(party)
        start, end = place(party, t + gap, line)
        if line.kind == "banned":
            marks["BAN-1"] = _span(start, end)
            rules["BAN-1"] = {"status": "fail", "redline": line.facts["severe"]}
        elif line.kind == "number":
            marks["CNF-1"] = _span(start, end)
            rules["CNF-1"] = {"status": "pending"}
        elif line.kind in ("confirm", "no_confirm") and "CNF-1" in rules:
            rules["CNF-1"]["status"] = "pass" if line.kind == "confirm" else "fail"
        elif line.kind == "complaint":
            rules["EMP-1"] = {"status": "fail"}
        elif line.kind == "empathy":
            rules["EMP-1"] = {"status": "pass"}
        elif "EMP-1" in rules and party == "agent" and "EMP-1" not in marks:
            marks["EMP-1"] = _span(start, end)
        if party == "customer" and end - start > 3.0:
            if want_agent_int:
                at = float(rng.uniform(start + 1.0, end - 1.5))  # talks over at least 1.5 s of the customer
                a_start, a_end = place("agent", at, neutral("agent", min_s=1.5))  # substantive, not a backchannel
                labels["agent_interruptions"].append(round(a_start, 3))
                end = max(end, a_end)
                want_agent_int = False
                party = "agent"  # the agent took the floor; the customer speaks next
            elif want_backchannel:
                length = float(rng.uniform(0.3, 0.7))
                while True:
                    bc = src.customer[int(rng.integers(len(src.customer)))].clip
                    lo, hi = speech_bounds(bc)
                    if hi - lo > length + 0.2:
                        break
                begin = int((lo + float(rng.uniform(0, hi - lo - length))) * RATE_HZ)
                size = int(length * RATE_HZ)
                piece = bc[begin : begin + size] * np.hanning(size)
                at = float(rng.uniform(start + 0.8, end - length - 0.3))
                call.agent.append((at, piece))
                labels["backchannels"].append(round(at, 3))
                want_backchannel = False
        elif party == "agent" and end - start > 3.0 and want_cust_int and not hold_lead:
            at = float(rng.uniform(start + 1.0, end - 1.5))
            c_start, c_end = place("customer", at, neutral("customer", min_s=1.5))
            labels["customer_interruptions"].append(round(c_start, 3))
            end = max(end, c_end)
            want_cust_int = False
            party = "customer"
        t = end
        if hold_lead:
            marks["HLD-1"] = _span(start, end)
            rules["HLD-1"] = {"status": "pass" if hold_request else "fail"}
            hold_start = t
            music = src.music[int(rng.integers(len(src.music)))]
            length = float(rng.uniform(12.0, 45.0))
            m_at = t + float(rng.uniform(0.4, 1.2))
            offset = int(rng.integers(0, len(music) - int(length * RATE_HZ) - 1))
            waits = []
            if rng.random() < 0.5 and length > 20:
                first = length * float(rng.uniform(0.35, 0.6))
                call.agent.append((m_at, music[offset : offset + int(first * RATE_HZ)]))
                # a brief check-in ("还在为您查询，请您再稍等一下")
                ci_start, ci_end = place("agent", m_at + first + 0.5, choose("check_in"))
                waits.append([round(hold_start, 3), round(ci_start, 3)])
                rest_at = ci_end + 0.5
                rest = length - first
                call.agent.append((rest_at, music[offset + int(first * RATE_HZ) : offset + int(length * RATE_HZ)]))
                m_end = rest_at + rest
                wait_from = ci_end
            else:
                call.agent.append((m_at, music[offset : offset + int(length * RATE_HZ)]))
                m_end = m_at + length
                wait_from = hold_start
            r_start, r_end = place(
                "agent", m_end + float(rng.uniform(0.3, 1.0)), choose("thanks" if hold_thanks else "no_thanks")
            )
            marks["HLD-3"] = _span(r_start, r_end)
            rules["HLD-3"] = {"status": "pass" if hold_thanks else "fail"}
            waits.append([round(wait_from, 3), round(r_start, 3)])
            labels["holds"].append({"start_s": round(hold_start, 3), "end_s": round(r_start, 3), "waits": waits})
            t = r_end
            want_hold = False
            party = "agent"
        party = "customer" if party == "agent" else "agent"

    # ---- the closing: (anything else?) → customer → (farewell)
    ask, farewell = rng.random() < 0.7, rng.random() < 0.7
    if party == "agent":
        _, t = place("agent", t + float(rng.uniform(0.4, 1.0)), neutral("agent"))
    _, t = place("customer", t + float(rng.uniform(0.4, 1.0)), neutral("customer"))
    if ask:
        a_start, t = place("agent", t + float(rng.uniform(0.4, 1.0)), choose("ask_else"))
    _, t = place("customer", t + float(rng.uniform(0.4, 1.0)), choose("customer_end"))
    f_start, t = place("agent", t + float(rng.uniform(0.4, 1.0)), choose("farewell" if farewell else "no_close"))
    marks["CLS-1"] = marks["CLS-2"] = _span(f_start, t)
    rules["CLS-1"] = {"status": "pass" if ask else "fail"}
    rules["CLS-2"] = {"status": "pass" if farewell else "fail"}

    total = t + float(rng.uniform(1.0, 2.5))
    n = int(total * RATE_HZ) + RATE_HZ
    stereo = np.zeros((2, n))
    stereo[0, : len(ring)] += ring
    for channel, parts in ((0, call.agent), (1, call.customer)):
        for at, clip in parts:
            i = int(at * RATE_HZ)
            stereo[channel, i : i + len(clip)] += clip[: n - i]
    band = butter(4, [300, 3400], btype="bandpass", fs=RATE_HZ, output="sos")
    noise_dbfs = float(rng.uniform(-62, -48))
    stereo = sosfilt(band, stereo, axis=1) + rng.normal(0, 10 ** (noise_dbfs / 20), stereo.shape)
    labels["duration_s"] = round(n / RATE_HZ, 3)
    labels["noise_dbfs"] = round(noise_dbfs, 1)
    return np.clip(stereo, -1, 1), labels, rule_labels(rules, marks, labels, spoken)


def rule_labels(rules: dict, marks: dict, timing: dict, spoken: dict) -> dict:
    """Every standard's true verdict on the call, with the true utterance of each phrase rule."""
    out = {rule: value["status"] for rule, value in rules.items()}
    redline = {rule for rule, value in rules.items() if value.get("redline")}
    out.setdefault("BAN-1", "pass")
    if out.get("CNF-1") == "pending":  # the number came too late for an answer
        out["CNF-1"] = "fail"
    out.setdefault("CNF-1", "n/a")
    out.setdefault("EMP-1", "n/a")
    out.setdefault("HLD-1", "n/a")
    out.setdefault("HLD-3", "n/a")
    waits = [w[1] - w[0] for h in timing["holds"] for w in h["waits"]]
    rate = spoken["agent_chars"] / spoken["agent_s"] if spoken["agent_s"] else None
    out.update(
        {
            "ANS-1": "fail" if timing["rings"] > 3 else "pass",
            "HLD-2": "n/a" if not waits else ("fail" if max(waits) > 30 else "pass"),
            "SIL-1": "fail" if any(b - a > 10 for a, b in timing["dead_air"]) else "pass",
            "LST-1": "fail" if len(timing["agent_interruptions"]) > 1 else "pass",
            "LST-2": "pass",
            "LST-3": "pass",
            "BAN-2": "pass",
            "CLS-3": "n/a",
            "VOC-1": "pass" if rate is None or 3 <= rate <= 6 else "fail",
        }
    )
    labelled = {}
    for rule, status in sorted(out.items()):
        if status == "fail" and rule in marks:
            labelled[rule] = {"status": status, "start_s": marks[rule][0], "end_s": marks[rule][1]}
            if rule in redline:
                labelled[rule]["redline"] = True
        else:
            labelled[rule] = status
    return labelled


def label_score(rules: dict, config) -> float:
    """The score the labels imply under a rulebook: 100 minus the weight of each truly failed, enabled rule;
    a severe banned phrase (BAN-1's red line) or a red-line rule fails the call outright."""
    score = 100.0
    for rule in config.rules:
        value = rules.get(rule.id)
        status = value["status"] if isinstance(value, dict) else value
        if status != "fail" or not rule.enabled:
            continue
        if rule.severity == "redline" or (isinstance(value, dict) and value.get("redline")):
            return config.scoring.redline_score
        score -= rule.weight
    return max(0.0, score)


def make_set(out: Path, *, count: int, seed: int, config_path: str | None = None) -> dict:
    from qa_audio.config import load_config

    config = load_config(config_path)
    rng = np.random.default_rng(seed)
    src = load_sources()
    out.mkdir(parents=True, exist_ok=True)
    labels, rule_set, scores = {}, {}, {}
    for i in range(count):
        audio, lab, rules = compose(rng, src)
        name = f"call_{seed}_{i:03d}.wav"
        sf.write(out / name, audio.T, RATE_HZ, subtype="ULAW")
        labels[name] = lab
        rule_set[Path(name).stem] = rules
        scores[Path(name).stem] = label_score(rules, config)
    (out / "labels.json").write_text(json.dumps(labels, indent=1) + "\n", encoding="utf-8")
    backtest = {
        "format": "qa-audio-labels/1",
        "source": f"scripts/make_timing_set.py --count {count} --seed {seed}",
        "rulebook": config.rulebook,
        "calls": rule_set,
        "scores": scores,
    }
    (out / "rules.json").write_text(json.dumps(backtest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
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
