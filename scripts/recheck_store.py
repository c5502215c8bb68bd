"""Re-check every call of a results store against its audio with the current code, for a backtest.

    python scripts/recheck_store.py STORE OUT_DIR [CALL_ID ...]
    qa-audio backtest --labels LABELS.json OUT_DIR/*.json

The stored transcripts are kept (no ASR); the phrases are re-checked afresh against each call's
recording (``Scorer.recheck``) and the call judged again; one result JSON per call goes to
OUT_DIR. Prints the re-check time against the ASR time the store recorded.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa_audio.config import load_config  # noqa: E402
from qa_audio.pipeline import Scorer  # noqa: E402
from qa_audio.results.store import open_store  # noqa: E402
from qa_audio.signal.audio import load_audio  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store")
    parser.add_argument("out", type=Path)
    parser.add_argument("calls", nargs="*", help="only these call ids")
    parser.add_argument("--config")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    scorer = Scorer(load_config(args.config))
    with open_store(args.store, readonly=True) as store:
        calls = [store.find_call(str(r["call_pk"])) for r in store.current_rows()
                 if not args.calls or r["call_id"] in args.calls]
    asr_s = recheck_s = 0.0
    for call in calls:
        if call.analysis is None:
            continue
        analysis = dataclasses.replace(call.analysis, checks=())
        audio = load_audio(analysis.audio["path"])
        started = time.perf_counter()
        checked = scorer.recheck(analysis, audio)
        recheck_s += time.perf_counter() - started
        asr_s += analysis.stage_s.get("asr_s", 0.0)
        result = scorer.judge(checked).to_dict()
        (args.out / f"{call.call_id}.json").write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
    print(f"{len(calls)} calls: re-checks {recheck_s:.1f} s against ASR {asr_s:.1f} s "
          f"({100 * recheck_s / max(asr_s, 1e-9):.1f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
