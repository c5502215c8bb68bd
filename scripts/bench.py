"""Throughput benchmark: plain faster-whisper against qa-audio end to end, on the same calls.

The fixed set is the five sample calls plus one long call (about 20 minutes) made by
joining sample calls end to end. Each side runs in its own process (so peak RSS is
its own), after loading the model once (load time reported separately):

(a) baseline: what a user would otherwise write: faster-whisper transcribing each
    channel of the whole file, beam 5, word timestamps;
(b) qa-audio: ``Scorer.score_path`` per call: decode, VAD, tones, ASR on packed
    speech windows, timing, rules, score.

Both transcripts are compared with the known text (samples/expected.json lines)
after the same normalisation (simplified characters, spoken numbers as digits, no
punctuation): character error rate per side.

    python scripts/bench.py                       # default profile, writes build/bench/report.json
    python scripts/bench.py --profile fast        # beam 1
    python scripts/bench.py --long-min 20 --runs 1
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ("compliant.wav", "banned_phrase.wav", "bad_greeting.wav", "hold_ring.wav", "no_closing.flac")


def build_set(out: Path, *, long_min: float) -> list[dict]:
    """The sample calls, and one long call of about ``long_min`` minutes joined from them."""
    expected = json.loads((ROOT / "samples" / "expected.json").read_text(encoding="utf-8"))
    out.mkdir(parents=True, exist_ok=True)
    calls = []
    for name in SAMPLES:
        lines = expected[name]["lines"]
        calls.append({"path": str(ROOT / "samples" / name), "name": name, "reference": _ref(lines)})
    long_path = out / f"long_{int(long_min)}min.wav"
    parts, lines_all, t = [], [], 0.0
    i = 0
    while t < long_min * 60:
        name = SAMPLES[i % len(SAMPLES)]
        data, rate = sf.read(ROOT / "samples" / name, dtype="float32", always_2d=True)
        parts.append(data)
        lines_all += expected[name]["lines"]
        t += len(data) / rate
        i += 1
    if not long_path.exists():
        sf.write(long_path, np.concatenate(parts), rate, subtype="PCM_16")
    calls.append({"path": str(long_path), "name": long_path.name, "reference": _ref(lines_all)})
    return calls


def _ref(lines: list[dict]) -> dict:
    ref: dict[str, list[str]] = {"agent": [], "customer": []}
    for line in lines:
        ref[line["channel"]].append(line["text"])
    return {k: "".join(v) for k, v in ref.items()}


def _canon(normalizer, text: str) -> str:
    import re

    text = normalizer.numbers(normalizer.simplify(text))
    return re.sub(r"[\W_]+", "", text)


def cer(normalizer, hyp: str, ref: str) -> tuple[int, int]:
    from rapidfuzz.distance import Levenshtein

    h, r = _canon(normalizer, hyp), _canon(normalizer, ref)
    return Levenshtein.distance(h, r), len(r)


# --------------------------------------------------------------------------- the two sides
def run_side(side: str, calls: list[dict], profile: str | None) -> dict:
    from qa_audio.config import load_config
    from qa_audio.pipeline import Scorer
    from qa_audio.signal.audio import load_audio
    from qa_audio.speech.normalize import TextNormalizer

    config = load_config(profile=profile)
    normalizer = TextNormalizer()
    t0 = time.perf_counter()
    scorer = Scorer(config)
    model = scorer.model
    load_s = time.perf_counter() - t0
    per_call = []
    for call in calls:
        started = time.perf_counter()
        if side == "baseline":
            t_dec = time.perf_counter()
            audio = load_audio(call["path"])
            decode_s = time.perf_counter() - t_dec
            texts = {}
            for role, index in (("agent", config.channels.agent), ("customer", config.channels.customer)):
                segments, _ = model.transcribe(audio.channel(index), language="zh", beam_size=5,
                                               word_timestamps=True)
                texts[role] = "".join(s.text for s in segments)
            stages = {"decode_s": decode_s, "asr_s": time.perf_counter() - t_dec - decode_s}
            duration = audio.duration_s
        else:
            t_dec = time.perf_counter()
            audio = load_audio(call["path"])
            decode_s = time.perf_counter() - t_dec
            result = scorer.score_audio(audio)
            texts = {role: "".join(u.text for u in result.transcript if u.channel == role)
                     for role in ("agent", "customer")}
            stages = {"decode_s": decode_s, **result.stage_s}
            duration = audio.duration_s
        wall = time.perf_counter() - started
        errors = {role: cer(normalizer, texts[role], call["reference"][role]) for role in ("agent", "customer")}
        per_call.append({"name": call["name"], "audio_s": duration, "wall_s": wall, "stages": stages,
                         "edits": sum(e for e, _ in errors.values()), "ref_chars": sum(n for _, n in errors.values())})
    return {"side": side, "profile": profile or "default", "beam_size": 5 if side == "baseline" else
            config.model.beam_size, "load_s": load_s, "calls": per_call,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def summarise(report: dict) -> dict:
    calls = report["calls"]
    short = [c for c in calls if not c["name"].startswith("long_")]
    long = [c for c in calls if c["name"].startswith("long_")]
    audio = sum(c["audio_s"] for c in calls)
    wall = sum(c["wall_s"] for c in calls)
    stages: dict[str, float] = {}
    for c in calls:
        for k, v in c["stages"].items():
            stages[k] = stages.get(k, 0.0) + v
    per_s = lambda items: sum(c["wall_s"] for c in items) / sum(c["audio_s"] for c in items)  # noqa: E731
    return {"audio_s": audio, "wall_s": wall, "throughput": audio / wall,
            "cer": sum(c["edits"] for c in calls) / sum(c["ref_chars"] for c in calls),
            "stages_s": stages, "non_asr_share": 1 - stages.get("asr_s", 0.0) / wall,
            "short_cost_per_audio_s": per_s(short), "long_cost_per_audio_s": per_s(long),
            "long_over_short": per_s(long) / per_s(short), "peak_rss_mb": report["peak_rss_mb"],
            "load_s": report["load_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long-min", type=float, default=20.0)
    parser.add_argument("--profile", default=None, help="qa-audio profile for side (b), e.g. fast")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--side", help=argparse.SUPPRESS)
    args = parser.parse_args()
    calls = build_set(args.out, long_min=args.long_min)
    if args.side:                                   # a child process: one side, JSON on stdout
        print(json.dumps(run_side(args.side, calls, args.profile)))
        return
    reports = {}
    for side in (["qa-audio"] if args.skip_baseline else ["baseline", "qa-audio"]):
        cmd = [sys.executable, __file__, "--side", side, "--long-min", str(args.long_min), "--out", str(args.out)]
        if args.profile and side == "qa-audio":
            cmd += ["--profile", args.profile]
        print(f"running {side} …", file=sys.stderr, flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        reports[side] = json.loads(proc.stdout.strip().splitlines()[-1])
    summary = {side: summarise(r) for side, r in reports.items()}
    print(f"calls: {', '.join(c['name'] for c in calls)}  (total audio {summary['qa-audio']['audio_s']:.0f} s)")
    print(f"{'':<26}" + "".join(f"{side:>16}" for side in summary))
    rows = [("throughput (audio s/wall s)", "throughput", "{:.1f}"), ("wall s", "wall_s", "{:.1f}"),
            ("CER", "cer", "{:.2%}"), ("non-ASR share of wall", "non_asr_share", "{:.1%}"),
            ("cost per audio s, short", "short_cost_per_audio_s", "{:.4f}"),
            ("cost per audio s, long", "long_cost_per_audio_s", "{:.4f}"),
            ("long / short", "long_over_short", "{:.2f}"), ("peak RSS MB", "peak_rss_mb", "{:.0f}"),
            ("model load s", "load_s", "{:.1f}")]
    for label, key, fmt in rows:
        print(f"{label:<26}" + "".join(f"{fmt.format(s[key]):>16}" for s in summary.values()))
    for side, s in summary.items():
        print(f"stages {side}: " + ", ".join(f"{k} {v:.1f}" for k, v in s["stages_s"].items()))
    if "baseline" in summary:
        speedup = summary["qa-audio"]["throughput"] / summary["baseline"]["throughput"]
        print(f"speed-up qa-audio / baseline: {speedup:.2f}x")
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"report-{args.profile or 'default'}.json"
    (args.out / name).write_text(json.dumps({"summary": summary, "runs": reports}, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
