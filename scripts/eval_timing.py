"""Compare qa-audio's timing with the labels of a set made by make_timing_set.py.

    python scripts/eval_timing.py build/timing-set [--config FILE] [--store DB | --results DIR] [--json]

Prints rings and ring-to-answer accuracy, hold precision/recall (temporal IoU ≥ 0.5)
and duration error, agent-interruption precision/recall (within 1 s), the share
of backchannels reported as interruptions, dead-air precision/recall (IoU ≥ 0.5),
and the speed of the timing analysis (everything but ASR) on one core.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa_audio.config import load_config  # noqa: E402
from qa_audio.pipeline import analyze_acoustics, measure_timing  # noqa: E402
from qa_audio.signal.audio import load_audio  # noqa: E402
from qa_audio.signal.spans import Span, subtract, total_s  # noqa: E402


def iou(a, b) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


def match_spans(truth, found, *, min_iou=0.5):
    """Greedy one-to-one matching by IoU; returns matched pairs."""
    pairs, used = [], set()
    for t in truth:
        best, best_j = 0.0, None
        for j, f in enumerate(found):
            if j not in used and iou(t, f) > best:
                best, best_j = iou(t, f), j
        if best_j is not None and best >= min_iou:
            used.add(best_j)
            pairs.append((t, found[best_j]))
    return pairs


def match_points(truth, found, *, within_s=1.0):
    pairs, used = [], set()
    for t in truth:
        for j, f in enumerate(found):
            if j not in used and abs(t - f) <= within_s:
                used.add(j)
                pairs.append((t, f))
                break
    return pairs


def pr(tp: int, n_found: int, n_truth: int) -> tuple[float, float]:
    return (tp / n_found if n_found else 1.0), (tp / n_truth if n_truth else 1.0)


@dataclass(frozen=True)
class Found:
    """What qa-audio reported, from a fresh audio-only analysis or from a result JSON (ASR included)."""

    rings: int | None
    ring_to_answer_s: float | None
    holds: list
    agent_interruptions: list
    dead_air: list
    hangup_side: str | None


def _from_timing(timing) -> Found:
    return Found(timing.rings, timing.ring_to_answer_s, [(h.start_s, h.end_s) for h in timing.holds],
                 [i.at_s for i in timing.interruptions or () if i.by == "agent"],
                 [(d.start_s, d.end_s) for d in timing.dead_air], timing.hangup.side if timing.hangup else None)


def _from_result(result: dict) -> Found:
    t = result["timing"]
    return Found(t["rings"], t["ring_to_answer_s"], [(h["start_s"], h["end_s"]) for h in t["holds"]],
                 [i["at_s"] for i in t["interruptions"] or () if i["by"] == "agent"],
                 [(d["start_s"], d["end_s"]) for d in t["dead_air"]], (t.get("hangup") or {}).get("side"))


def judged_from_store(db: Path, config, set_dir: Path) -> dict[str, Found]:
    """Each call judged now with the transcript a results store holds and the acoustics analysed afresh
    from the audio (cheap), so a change to the timing code is measured with the words and without ASR."""
    import dataclasses

    from qa_audio.pipeline import Scorer
    from qa_audio.results.store import open_store

    scorer = Scorer(config)
    with open_store(db) as store:
        stored = [a for key in store.analysis_keys() for _, a in store.stored_analyses(key=key)]
    out = {}
    for analysis in stored:
        name = Path(analysis.audio["path"]).name
        fresh = analyze_acoustics(load_audio(set_dir / name), config)
        out[Path(name).stem] = _from_timing(scorer.judge(dataclasses.replace(analysis, acoustics=fresh)).timing)
    return out


def evaluate(set_dir: Path, *, config_path=None, results_dir: Path | None = None, store: Path | None = None) -> dict:
    """Score qa-audio's timing against the set's labels: audio-only analysis; or the timing of
    ``qa-audio batch --out`` result files (``results_dir``); or the transcripts of a results store with
    the acoustics analysed now (``store``). The last two use the transcript too (words, hold requests)."""
    config = load_config(config_path)
    labels = json.loads((set_dir / "labels.json").read_text(encoding="utf-8"))
    judged = judged_from_store(store, config, set_dir) if store is not None else None
    counts = dict.fromkeys(
        (
            "calls",
            "rings_ok",
            "r2a_ok",
            "r2a_n",
            "hold_tp",
            "hold_found",
            "hold_truth",
            "int_tp",
            "int_found",
            "int_truth",
            "bc_flagged",
            "bc_truth",
            "dead_tp",
            "dead_found",
            "dead_truth",
        ),
        0,
    )
    counts.update(speech_s=0.0, speech_sent_s=0.0, hangup_n=0, hangup_ok=0)
    hold_errors, audio_s, analysis_s, decode_s, misses = [], 0.0, 0.0, 0.0, []
    for name, lab in sorted(labels.items()):
        if judged is not None:
            timing = judged[Path(name).stem]
            audio_s += lab["duration_s"]
        elif results_dir is not None:
            timing = _from_result(json.loads((results_dir / f"{Path(name).stem}.json").read_text(encoding="utf-8")))
            audio_s += lab["duration_s"]
        else:
            t_load = time.perf_counter()
            audio = load_audio(set_dir / name)
            decode_s += time.perf_counter() - t_load
            t0 = time.perf_counter()
            acoustics = analyze_acoustics(audio, config)
            timing = _from_timing(measure_timing(acoustics, config=config))
            analysis_s += time.perf_counter() - t0
            audio_s += audio.duration_s
            for party, spans in lab.get("speech", {}).items():  # what of the true speech reaches Whisper
                truth = [Span(a, b) for a, b in spans]
                counts["speech_s"] += total_s(truth)
                counts["speech_sent_s"] += total_s(truth) - total_s(subtract(truth, acoustics.regions.get(party, [])))
        if "hangup_side" in lab:
            counts["hangup_n"] += 1
            counts["hangup_ok"] += timing.hangup_side == lab["hangup_side"]
            if timing.hangup_side != lab["hangup_side"]:
                misses.append(f"{name}: hang-up side {timing.hangup_side} != {lab['hangup_side']}")
        counts["calls"] += 1
        counts["rings_ok"] += timing.rings == lab["rings"]
        if timing.rings != lab["rings"]:
            misses.append(f"{name}: rings {timing.rings} != {lab['rings']}")
        if lab["ring_to_answer_s"] is not None:
            counts["r2a_n"] += 1
            ok = timing.ring_to_answer_s is not None and abs(timing.ring_to_answer_s - lab["ring_to_answer_s"]) <= 0.5
            counts["r2a_ok"] += ok
            if not ok:
                misses.append(f"{name}: ring-to-answer {timing.ring_to_answer_s} != {lab['ring_to_answer_s']}")
        truth = [(h["start_s"], h["end_s"]) for h in lab["holds"]]
        found = timing.holds
        pairs = match_spans(truth, found)
        counts["hold_tp"] += len(pairs)
        counts["hold_found"] += len(found)
        counts["hold_truth"] += len(truth)
        hold_errors += [abs((f[1] - f[0]) - (t[1] - t[0])) for t, f in pairs]
        if len(pairs) != len(truth) or len(found) != len(truth):
            misses.append(f"{name}: holds {found} vs {truth}")
        agent_int = timing.agent_interruptions
        pairs = match_points(lab["agent_interruptions"], agent_int)
        counts["int_tp"] += len(pairs)
        counts["int_found"] += len(agent_int)
        counts["int_truth"] += len(lab["agent_interruptions"])
        if len(pairs) != len(agent_int) or len(pairs) != len(lab["agent_interruptions"]):
            misses.append(f"{name}: agent interruptions {agent_int} vs {lab['agent_interruptions']}")
        counts["bc_truth"] += len(lab["backchannels"])
        counts["bc_flagged"] += len(match_points(lab["backchannels"], agent_int))
        truth = [tuple(d) for d in lab["dead_air"]]
        found = timing.dead_air
        pairs = match_spans(truth, found)
        counts["dead_tp"] += len(pairs)
        counts["dead_found"] += len(found)
        counts["dead_truth"] += len(truth)
        if len(pairs) != len(truth) or len(found) != len(truth):
            misses.append(f"{name}: dead air {found} vs {truth}")
    c = counts
    hold_p, hold_r = pr(c["hold_tp"], c["hold_found"], c["hold_truth"])
    int_p, int_r = pr(c["int_tp"], c["int_found"], c["int_truth"])
    dead_p, dead_r = pr(c["dead_tp"], c["dead_found"], c["dead_truth"])
    return {
        "calls": c["calls"],
        "audio_s": round(audio_s, 1),
        "rings_exact": c["rings_ok"] / c["calls"],
        "ring_to_answer_within_0_5s": c["r2a_ok"] / c["r2a_n"] if c["r2a_n"] else 1.0,
        "holds": {
            "precision": hold_p,
            "recall": hold_r,
            "n": c["hold_truth"],
            "median_duration_error_s": statistics.median(hold_errors) if hold_errors else None,
        },
        "agent_interruptions": {"precision": int_p, "recall": int_r, "n": c["int_truth"]},
        "backchannels_reported_as_interruptions": c["bc_flagged"] / c["bc_truth"] if c["bc_truth"] else 0.0,
        "dead_air": {"precision": dead_p, "recall": dead_r, "n": c["dead_truth"]},
        "transcript_completeness": c["speech_sent_s"] / c["speech_s"] if c["speech_s"] else None,
        "hangup_side_accuracy": c["hangup_ok"] / c["hangup_n"] if c["hangup_n"] else None,
        "timing_x_realtime_one_core": round(audio_s / analysis_s, 1) if analysis_s else None,
        "timing_with_decode_x_realtime_one_core": round(audio_s / (analysis_s + decode_s), 1) if analysis_s else None,
        "misses": misses,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("set_dir", nargs="?", default=str(ROOT / "build" / "timing-set"))
    parser.add_argument("--config")
    parser.add_argument("--results", help="a folder of result JSON files (qa-audio batch --out) to judge instead")
    parser.add_argument(
        "--store",
        help="a results store of the set (qa-audio batch --db): its transcripts "
        "judged now with the acoustics analysed afresh",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = evaluate(
        Path(args.set_dir),
        config_path=args.config,
        results_dir=Path(args.results) if args.results else None,
        store=Path(args.store) if args.store else None,
    )
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    h, i, d = report["holds"], report["agent_interruptions"], report["dead_air"]
    print(f"calls {report['calls']}, audio {report['audio_s'] / 60:.1f} min")
    print(f"rings exact                 {report['rings_exact']:.1%}")
    print(f"ring-to-answer within 0.5 s {report['ring_to_answer_within_0_5s']:.1%}")
    print(
        f"holds (n={h['n']})             precision {h['precision']:.3f} recall {h['recall']:.3f} "
        f"median duration error {h['median_duration_error_s']} s"
    )
    print(f"agent interruptions (n={i['n']}) precision {i['precision']:.3f} recall {i['recall']:.3f}")
    print(f"backchannels reported as interruptions {report['backchannels_reported_as_interruptions']:.1%}")
    print(f"dead air (n={d['n']})          precision {d['precision']:.3f} recall {d['recall']:.3f}")
    if report["transcript_completeness"] is not None:
        print(f"labelled speech sent to ASR {report['transcript_completeness']:.2%}")
    if report["hangup_side_accuracy"] is not None:
        print(f"hang-up side from the audio {report['hangup_side_accuracy']:.1%}")
    if report["timing_x_realtime_one_core"] is not None:
        print(
            f"timing analysis             {report['timing_x_realtime_one_core']}x real time (one core); "
            f"{report['timing_with_decode_x_realtime_one_core']}x with decoding and resampling"
        )
    for miss in report["misses"]:
        print("  miss:", miss)
    return 0


if __name__ == "__main__":
    sys.exit(main())
