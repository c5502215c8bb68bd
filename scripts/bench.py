"""Throughput and accuracy benchmark: every plain faster-whisper path against qa-audio, on the same calls,
in one run.

The fixed set (``--set hard``, the default): six calls of the second labelled-call generator
(``scripts/make_hard_set.py --count 6 --seed 303``: real and TTS voices, overlap, line noise, echo, holds
with music, G.711) plus one long call (about 20 minutes) joined from the sample calls. ``--set samples``:
the five sample calls and the long call. Each path runs in its own process (so peak RSS is its own),
after loading the model once (load time reported separately):

* ``plain``: what a user would otherwise write: faster-whisper on each whole channel, beam 5, word
  timestamps, its defaults;
* ``plain-vad``: the same with faster-whisper's own ``vad_filter=True`` (Silero);
* ``batched``: faster-whisper's ``BatchedInferencePipeline`` (Silero chunks, batch 8, word timestamps);
* ``qa-audio``: ``Scorer.score_audio`` per call (decode, VAD, tones, ASR on speech windows, re-checks,
  timing, rules, score), default profile; ``qa-audio-fast``: the same with ``--profile fast``.

Every transcript is compared with the known text of each channel (the generator's placed lines, the
samples' expected lines) after the same normalisation (simplified characters, spoken numbers as digits, no
punctuation): character error rate per path.

    python scripts/bench.py                       # all paths, writes build/bench/report-hard.json
    python scripts/bench.py --paths plain-vad,qa-audio --long-min 20
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


PATHS = ("plain", "plain-vad", "batched", "qa-audio", "qa-audio-fast")
HARD_SEED, HARD_COUNT = 303, 6


def build_set(out: Path, *, long_min: float, which: str = "hard") -> list[dict]:
    """The set's calls (six of the hard generator's, or the sample calls), and one long call of about
    ``long_min`` minutes joined from the samples."""
    expected = json.loads((ROOT / "samples" / "expected.json").read_text(encoding="utf-8"))
    out.mkdir(parents=True, exist_ok=True)
    calls = []
    if which == "hard":
        hard = out / "hard"
        if not (hard / "labels.json").exists():
            subprocess.run([sys.executable, str(ROOT / "scripts" / "make_hard_set.py"), "--out", str(hard),
                            "--count", str(HARD_COUNT), "--seed", str(HARD_SEED)], check=True,
                           stdout=subprocess.DEVNULL)
        labels = json.loads((hard / "labels.json").read_text(encoding="utf-8"))
        for name, label in sorted(labels.items()):
            lines = [line for line in label["lines"] if line["text"]]
            calls.append({"path": str(hard / name), "name": name, "reference": _ref(lines)})
    else:
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


# --------------------------------------------------------------------------- the paths
def _plain(model, audio, config, path: str) -> tuple[dict, dict]:
    """Each whole channel through faster-whisper: (text per party, seconds per stage)."""
    texts, started = {}, time.perf_counter()
    runner = model
    options: dict = {"language": "zh", "beam_size": 5, "word_timestamps": True}
    if path == "plain-vad":
        options["vad_filter"] = True
    elif path == "batched":
        from faster_whisper import BatchedInferencePipeline

        runner = BatchedInferencePipeline(model=model)
        options["batch_size"] = 8
    for role, index in (("agent", config.channels.agent), ("customer", config.channels.customer)):
        segments, _ = runner.transcribe(audio.channel(index), **options)
        texts[role] = "".join(s.text for s in segments)
    return texts, {"asr_s": time.perf_counter() - started}


def run_side(side: str, calls: list[dict], profile: str | None) -> dict:
    from qa_audio.config import load_config
    from qa_audio.pipeline import Scorer
    from qa_audio.signal.audio import load_audio
    from qa_audio.speech.normalize import TextNormalizer

    if side == "qa-audio-fast":
        profile = "fast"
    config = load_config(profile=profile)
    normalizer = TextNormalizer()
    t0 = time.perf_counter()
    scorer = Scorer(config)
    model = scorer.model
    load_s = time.perf_counter() - t0
    per_call = []
    for call in calls:
        started = time.perf_counter()
        audio = load_audio(call["path"])
        decode_s = time.perf_counter() - started
        if side.startswith("qa-audio"):
            result = scorer.score_audio(audio)
            texts = {role: "".join(u.text for u in result.transcript if u.channel == role)
                     for role in ("agent", "customer")}
            stages = {"decode_s": decode_s, **result.stage_s}
        else:
            texts, asr = _plain(model, audio, config, side)
            stages = {"decode_s": decode_s, **asr}
        wall = time.perf_counter() - started
        errors = {role: cer(normalizer, texts[role], call["reference"][role]) for role in ("agent", "customer")}
        per_call.append({"name": call["name"], "audio_s": audio.duration_s, "wall_s": wall, "stages": stages,
                         "edits": sum(e for e, _ in errors.values()), "ref_chars": sum(n for _, n in errors.values())})
    return {"side": side, "profile": profile or "default", "beam_size": config.model.beam_size
            if side.startswith("qa-audio") else 5, "load_s": load_s, "calls": per_call,
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
    parser.add_argument("--set", dest="which", choices=("hard", "samples"), default="hard")
    parser.add_argument("--paths", default=",".join(PATHS), help=f"comma-separated, of {', '.join(PATHS)}")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench")
    parser.add_argument("--side", help=argparse.SUPPRESS)
    args = parser.parse_args()
    calls = build_set(args.out, long_min=args.long_min, which=args.which)
    if args.side:                                   # a child process: one path, JSON on stdout
        print(json.dumps(run_side(args.side, calls, None)))
        return
    paths = [p for p in args.paths.split(",") if p]
    unknown = sorted(set(paths) - set(PATHS))
    if unknown:
        raise SystemExit(f"unknown paths: {', '.join(unknown)} (known: {', '.join(PATHS)})")
    reports = {}
    for side in paths:
        cmd = [sys.executable, __file__, "--side", side, "--long-min", str(args.long_min), "--out", str(args.out),
               "--set", args.which]
        print(f"running {side} …", file=sys.stderr, flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{side} failed: {proc.stderr.strip().splitlines()[-1:]}")
        reports[side] = json.loads(proc.stdout.strip().splitlines()[-1])
    summary = {side: summarise(r) for side, r in reports.items()}
    first = next(iter(summary.values()))
    print(f"calls: {', '.join(c['name'] for c in calls)}  (total audio {first['audio_s']:.0f} s)")
    print(f"{'':<28}" + "".join(f"{side:>15}" for side in summary))
    rows = [("throughput (audio s/wall s)", "throughput", "{:.1f}"), ("wall s", "wall_s", "{:.1f}"),
            ("CER", "cer", "{:.2%}"), ("non-ASR share of wall", "non_asr_share", "{:.1%}"),
            ("cost per audio s, short", "short_cost_per_audio_s", "{:.4f}"),
            ("cost per audio s, long", "long_cost_per_audio_s", "{:.4f}"),
            ("long / short", "long_over_short", "{:.2f}"), ("peak RSS MB", "peak_rss_mb", "{:.0f}"),
            ("model load s", "load_s", "{:.1f}")]
    for label, key, fmt in rows:
        print(f"{label:<28}" + "".join(f"{fmt.format(s[key]):>15}" for s in summary.values()))
    for side, s in summary.items():
        print(f"stages {side}: " + ", ".join(f"{k} {v:.1f}" for k, v in s["stages_s"].items()))
    for ours in ("qa-audio", "qa-audio-fast"):
        for base in ("plain", "plain-vad", "batched"):
            if ours in summary and base in summary:
                print(f"{ours} / {base}: {summary[ours]['throughput'] / summary[base]['throughput']:.2f}x speed, "
                      f"CER {summary[ours]['cer']:.2%} against {summary[base]['cer']:.2%}")
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"report-{args.which}.json"
    (args.out / name).write_text(json.dumps({"summary": summary, "runs": reports}, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
