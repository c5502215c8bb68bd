"""Mono mixes of labelled stereo calls: does the mix get the stereo call's verdicts?

    python scripts/eval_mono.py build/hard-101 [--skip N] [--limit N] [--json]

Each stereo call of the set is mixed down to one channel (the mean of the two) and scored; its phrase
standards (GRT-1/2/3, BAN-1, CLS-1/2, HLD-1/3, ANS-2) are compared with the stereo original scored by the
same code, and both with the set's labels (rules.json). Also reports the diarization's DER against the set's
per-party speech labels (labels.json) and how often roles were doubtful.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import soundfile as sf

from qa_audio.config import load_config
from qa_audio.pipeline import Scorer
from qa_audio.signal.diarize import SpeakerTurn, error_rate

STANDARDS = ("GRT-1", "GRT-2", "GRT-3", "BAN-1", "CLS-1", "CLS-2", "HLD-1", "HLD-3", "ANS-2")


def _status(value) -> str:
    return value["status"] if isinstance(value, dict) else str(value)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("set_dir", type=Path)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--skip", type=int, default=0, help="leave out the first N calls (to measure in parts)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    labels = json.loads((args.set_dir / "labels.json").read_text())
    rules = json.loads((args.set_dir / "rules.json").read_text())["calls"]
    scorer = Scorer(load_config())
    names = sorted(labels)[args.skip:][: args.limit or None]
    agree = dict.fromkeys(STANDARDS, 0)
    right = {"stereo": 0, "mono": 0}
    count, doubtful, ders = 0, 0, []
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            data, rate = sf.read(args.set_dir / name, dtype="float32")
            mono_path = Path(tmp) / name
            sf.write(mono_path, data.mean(axis=1), rate)
            stereo = scorer.score_path(args.set_dir / name).to_dict()
            mono = scorer.score_path(mono_path).to_dict()
            st = {f["rule"]: f["status"] for f in stereo["findings"]}
            mo = {f["rule"]: f["status"] for f in mono["findings"]}
            truth = rules.get(Path(name).stem, rules.get(name, {}))
            roles = mono["audio"].get("roles") or {}
            doubtful += roles.get("how") == "doubtful"
            ref = [SpeakerTurn(a, b, party) for party, spans in labels[name]["speech"].items() for a, b in spans]
            hyp = [SpeakerTurn(t["start_s"], t["end_s"], t["speaker"]) for t in mono.get("diarization", [])]
            der = error_rate(ref, hyp, duration_s=labels[name]["duration_s"])
            ders.append(der)
            for s in STANDARDS:
                agree[s] += st.get(s, "n/a") == mo.get(s, "n/a")
                if s in truth:
                    right["stereo"] += _status(truth[s]) == st.get(s, "n/a")
                    right["mono"] += _status(truth[s]) == mo.get(s, "n/a")
            count += 1
            rows.append({"call": name, "der": round(der.der, 4), "separation": roles.get("separation"),
                         "how": roles.get("how"), "stereo": stereo["verdict"], "mono": mono["verdict"],
                         "differ": {s: [st.get(s), mo.get(s)] for s in STANDARDS if st.get(s) != mo.get(s)}})
            print(json.dumps(rows[-1], ensure_ascii=False), file=sys.stderr, flush=True)
    judged = count * len(STANDARDS)
    summary = {"calls": count, "agreement": round(sum(agree.values()) / judged, 4) if judged else None,
               "by_standard": {s: round(v / count, 3) for s, v in agree.items()} if count else {},
               "labels_right": right, "roles_doubtful": doubtful,
               "der_mean": round(sum(d.der for d in ders) / len(ders), 4) if ders else None,
               "confusion_mean": round(sum(d.confusion for d in ders) / len(ders), 4) if ders else None}
    print(json.dumps(summary if not args.json else {"summary": summary, "calls": rows}, ensure_ascii=False,
                     indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
