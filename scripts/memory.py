"""Memory benchmark: peak RSS on one long call, and RSS and open files over a long batch.

``long``: joins the sample calls (8 kHz stereo, ringback, holds, speech on both channels) into one
recording of ``--hours`` hours, then runs ``qa-audio score`` on it in a child process and reports
the child's peak RSS (``ru_maxrss``) and wall time; the target is 1.5 GB for 3 hours.

``soak``: writes ``--calls`` distinct short calls (cuts of the sample calls, each one sample
different so none is a duplicate), runs ``qa-audio batch`` on them into a fresh SQLite store with
one worker, and samples the batch process's RSS and open file descriptors (``/proc/PID``) against
the number of results stored; reports the least-squares slope of RSS per 1,000 calls after the
first ``--warmup`` calls, and the descriptor count at the start and end.

    python scripts/memory.py long --hours 3          # writes build/memory/long.json
    python scripts/memory.py soak --calls 1000       # writes build/memory/soak.json

Timings and sizes go here, never in timed tests.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "memory"
SAMPLES = ("compliant.wav", "bad_greeting.wav", "banned_phrase.wav", "hold_ring.wav")
RATE_HZ = 8000


def _sample_calls() -> list[np.ndarray]:
    import soxr

    calls = []
    for name in SAMPLES:
        data, rate = sf.read(ROOT / "samples" / name, dtype="float32", always_2d=True)
        if rate != RATE_HZ:
            data = soxr.resample(data, rate, RATE_HZ)
        calls.append(data)
    return calls


def build_long(path: Path, hours: float) -> Path:
    """The sample calls joined (3 s of silence between) and repeated to ``hours``, as 16-bit WAV,
    written a call at a time."""
    calls = _sample_calls()
    gap = np.zeros((3 * RATE_HZ, 2), dtype=np.float32)
    total = int(hours * 3600 * RATE_HZ)
    path.parent.mkdir(parents=True, exist_ok=True)
    with sf.SoundFile(path, "w", samplerate=RATE_HZ, channels=2, subtype="PCM_16") as out:
        written, k = 0, 0
        while written < total:
            block = np.concatenate([calls[k % len(calls)], gap])[: total - written]
            out.write(block)
            written += len(block)
            k += 1
    return path


def run_long(args: argparse.Namespace) -> dict:
    path = build_long(OUT / f"long-{args.hours:g}h.wav", args.hours)
    started = time.perf_counter()
    proc = subprocess.run([str(Path(sys.executable).parent / "qa-audio"), "score", str(path), "--json",
                           "--timings", *(["--profile", args.profile] if args.profile else [])],
                          capture_output=True, text=True)
    wall_s = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    if proc.returncode != 0:
        raise SystemExit(f"qa-audio score failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    result = json.loads(proc.stdout.splitlines()[-1])
    return {"hours": args.hours, "file_mb": round(path.stat().st_size / 1e6, 1), "peak_rss_mb": round(peak_mb, 1),
            "wall_s": round(wall_s, 1), "verdict": result["verdict"], "score": result["score"],
            "transcript_lines": len(result["transcript"]), "profile": args.profile or "default",
            "stages": proc.stderr.strip().splitlines()[-12:]}


def build_soak(folder: Path, count: int, seconds: float) -> list[Path]:
    calls = _sample_calls()
    folder.mkdir(parents=True, exist_ok=True)
    length = int(seconds * RATE_HZ)
    paths = []
    for i in range(count):
        call = calls[i % len(calls)]
        start = (i // len(calls)) * RATE_HZ // 4 % max(1, len(call) - length)
        cut = call[start: start + length].copy()
        cut[0, 0] = (i + 1) / 65536.0            # every file distinct (no duplicate-content skips)
        path = folder / f"call-{i:05d}.wav"
        sf.write(path, cut, RATE_HZ, subtype="PCM_16")
        paths.append(path)
    return paths


def _proc_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def _open_fds(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def _stored(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return int(conn.execute("SELECT count(*) FROM results").fetchone()[0])
    except sqlite3.Error:
        return 0


def run_soak(args: argparse.Namespace) -> dict:
    folder = OUT / f"soak-{args.calls}"
    build_soak(folder, args.calls, args.seconds)
    db = OUT / f"soak-{args.calls}.db"
    for stale in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        stale.unlink(missing_ok=True)
    command = [str(Path(sys.executable).parent / "qa-audio"), "batch", str(folder), "--db", str(db), "--workers", "1",
               "--json", *(["--profile", args.profile] if args.profile else [])]
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    samples: list[tuple[int, float, int]] = []
    while proc.poll() is None:
        rss, fds = _proc_rss_mb(proc.pid), _open_fds(proc.pid)
        if rss is not None and fds is not None:
            samples.append((_stored(db), rss, fds))
        time.sleep(args.every_s)
    out, _ = proc.communicate()
    wall_s = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"qa-audio batch failed ({proc.returncode})")
    summary = json.loads(out.splitlines()[-1])
    steady = [(n, rss) for n, rss, _ in samples if n >= args.warmup]
    slope = None
    if len({n for n, _ in steady}) >= 2:
        n, rss = np.array(steady, dtype=float).T
        slope = float(np.polyfit(n, rss, 1)[0]) * 1000.0
    fds = [f for n, _, f in samples if n >= 1]
    return {"calls": args.calls, "seconds_per_call": args.seconds, "stored": _stored(db), "wall_s": round(wall_s, 1),
            "profile": args.profile or "default", "warmup_calls": args.warmup,
            "rss_mb_after_warmup": round(steady[0][1], 1) if steady else None,
            "rss_mb_at_end": round(samples[-1][1], 1) if samples else None,
            "rss_slope_mb_per_1000_calls": None if slope is None else round(slope, 2),
            "open_fds_first_last_max": [fds[0], fds[-1], max(fds)] if fds else None,
            "samples": len(samples), "summary": summary}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    long = sub.add_parser("long", help="peak RSS scoring one long call")
    long.add_argument("--hours", type=float, default=3.0)
    long.add_argument("--profile", default=None)
    soak = sub.add_parser("soak", help="RSS slope and open files over a long batch")
    soak.add_argument("--calls", type=int, default=1000)
    soak.add_argument("--seconds", type=float, default=6.0, help="length of each call")
    soak.add_argument("--warmup", type=int, default=50)
    soak.add_argument("--every-s", type=float, default=1.0)
    soak.add_argument("--profile", default=None)
    args = parser.parse_args(argv)
    report = run_long(args) if args.mode == "long" else run_soak(args)
    OUT.mkdir(parents=True, exist_ok=True)
    target = OUT / f"{args.mode}.json"
    target.write_text(json.dumps(report, ensure_ascii=False, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k not in ("summary", "stages")}, ensure_ascii=False))
    print(f"report: {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
