"""The bad-input corpus (scripts/make_bad_inputs.py) through the batch and `score`: a one-line
cause naming the file for each broken input, no traceback, no hang, and never a pass for a
recording in which nobody speaks."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = pytest.mark.asr


def _generator():
    spec = importlib.util.spec_from_file_location("make_bad_inputs", ROOT / "scripts" / "make_bad_inputs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad") / "calls"
    manifest = _generator().build(folder, long=True)
    return folder, manifest


@pytest.fixture(scope="module")
def batch_run(corpus, tmp_path_factory):
    folder, _manifest = corpus
    db = tmp_path_factory.mktemp("store") / "qa.db"
    proc = subprocess.run([sys.executable, "-m", "qa_audio", "batch", str(folder), "--db", str(db)],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    return db, proc


def _root_can_read_anything() -> bool:
    return os.geteuid() == 0


def test_corpus_has_at_least_fifty_kinds(corpus):
    _, manifest = corpus
    assert len({m["kind"] for m in manifest.values()}) >= 50


def test_batch_gives_each_bad_input_its_cause_and_never_passes_silence(corpus, batch_run):
    from qa_audio.results.store import open_store

    _folder, manifest = corpus
    db, proc = batch_run
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    with open_store(db, create=False) as store:
        errors = {Path(e["path"]).name: e["error"] for e in store.errors()}
        results = {Path(json.loads(r["result_json"])["audio"]["path"]).name: r for r in store.current_rows()}
    wrong = []
    for name, spec in manifest.items():
        if spec["kind"] == "unreadable" and _root_can_read_anything():
            continue
        if spec["expect"] == "error":
            message = errors.get(name)
            if message is None or spec["cause"].lower() not in message.lower() or name not in message:
                wrong.append(f"{name!r}: expected an error with {spec['cause']!r}, got {message or results.get(name)}")
            elif "\n" in message:
                wrong.append(f"{name!r}: error is not one line")
        elif spec["expect"] == "unscorable":
            row = results.get(name)
            if row is None or row["verdict"] != "unscorable" or row["score"] is not None:
                wrong.append(f"{name!r}: expected unscorable, got {row and row['verdict']} / {errors.get(name)}")
        else:
            row = results.get(name)
            if row is None or row["verdict"] not in ("pass", "fail", "review"):
                wrong.append(f"{name!r}: expected a verdict, got {row and row['verdict']} / {errors.get(name)}")
    assert not wrong, "\n".join(wrong)


def test_a_file_name_cannot_forge_a_log_line(batch_run):
    _, proc = batch_run
    assert not any(line.startswith("line 2026-12-01") for line in proc.stderr.splitlines())
    assert "\x1b[2J" not in proc.stderr
    assert "new\\nline" in proc.stderr


def test_score_prints_one_line_per_bad_file_and_exits_2(corpus):
    folder, manifest = corpus
    chosen = [n for n, m in manifest.items() if m["expect"] == "error" and m["kind"] != "unreadable"][:12]
    proc = subprocess.run([sys.executable, "-m", "qa_audio", "score", *[str(folder / n) for n in chosen]],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("qa-audio: error:")]
    assert len(lines) == len(chosen)
    for name, line in zip(chosen, lines):
        assert name in line and manifest[name]["cause"].lower() in line.lower()


def test_unscorable_call_in_the_result_contract(corpus):
    folder, _ = corpus
    proc = subprocess.run(
        [sys.executable, "-m", "qa_audio", "score", "--json", str(folder / "01-digital-silence-stereo.wav")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["verdict"] == "unscorable" and result["score"] is None
    assert "no speech" in result["verdict_reason"]
