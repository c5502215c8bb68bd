"""Make a batch test folder: N distinct calls made from the sample calls, plus broken files.

Each call is a sample with its own small gain change and faint seeded noise (so every
file is a distinct recording with its own content hash), named the way a recorder
would name it (time, agent id, direction) so the batch reads its metadata from the
file name. Broken files (empty, text, truncated) are mixed in.

    python scripts/make_batch_set.py OUT_DIR --count 200 --seed 5
"""
from __future__ import annotations

import argparse
import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ("compliant.wav", "banned_phrase.wav", "bad_greeting.wav", "hold_ring.wav", "no_closing.flac")
AGENTS = ("A1023", "A2088", "A3001", "A3002", "A4100")


def make_set(out: Path, *, count: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    sources = {name: sf.read(ROOT / "samples" / name, dtype="float32", always_2d=True) for name in SAMPLES}
    start = datetime(2026, 11, 3, 8, 30)
    good = []
    for i in range(count):
        name = SAMPLES[i % len(SAMPLES)]
        data, rate = sources[name]
        gain = float(rng.uniform(0.8, 1.0))
        noisy = data * gain + rng.normal(0, 10 ** (-70 / 20), data.shape).astype(np.float32)
        when = start + timedelta(minutes=int(rng.integers(3, 9)) * i)
        agent = AGENTS[int(rng.integers(len(AGENTS)))]
        day = out / when.strftime("%Y%m%d")
        day.mkdir(exist_ok=True)
        path = day / f"{when:%Y%m%d-%H%M%S}_{agent}_inbound{Path(name).suffix}"
        sf.write(path, np.clip(noisy, -1, 1), rate, subtype=sf.info(ROOT / "samples" / name).subtype)
        good.append({"path": str(path.relative_to(out)), "sample": name})
    broken = []
    for i in range(max(1, count // 20)):
        kind = ("empty", "text", "truncated")[i % 3]
        path = out / "broken" / f"{kind}_{i}.wav"
        path.parent.mkdir(exist_ok=True)
        if kind == "empty":
            path.write_bytes(b"")
        elif kind == "text":
            path.write_text("通话备注：客户询问还款日期\n", encoding="utf-8")
        else:
            path.write_bytes((ROOT / "samples" / "compliant.wav").read_bytes()[:30000])
        broken.append(str(path.relative_to(out)))
    manifest = {"count": count, "seed": seed, "good": good, "broken": broken}
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    manifest = make_set(args.out, count=args.count, seed=args.seed)
    print(f"{args.out}: {len(manifest['good'])} calls, {len(manifest['broken'])} broken files")


if __name__ == "__main__":
    main()
