"""The command line, run as a user would: a real process, real files."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

from conftest import ROOT, SAMPLES


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "qa_audio", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=600)


def test_score_good_and_bad_files_exits_2_with_one_line_per_bad_file(tmp_path):
    good = tmp_path / "good.wav"
    shutil.copy(SAMPLES / "bad_greeting.wav", good)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes((SAMPLES / "compliant.wav").read_bytes()[:20000])
    notes = tmp_path / "notes.txt-renamed.wav"
    notes.write_text("call notes: customer asked about repayment dates\n", encoding="utf-8")

    proc = run("score", str(good), str(empty), str(truncated), str(notes), "--json")
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("qa-audio: error:")]
    assert len(errors) == 3
    assert any("empty.wav" in e and "empty" in e for e in errors)
    assert any("truncated.wav" in e and "truncated" in e for e in errors)
    assert any("notes.txt-renamed.wav" in e for e in errors)
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["call_id"] for r in results] == ["good", "empty", "truncated", "notes.txt-renamed"]
    assert results[0]["verdict"] == "fail" and results[0]["score"] == 75
    for r in results[1:]:
        assert r["verdict"] == "error" and r["error"]


def test_readable_summary_and_exit_0(tmp_path):
    proc = run("score", str(SAMPLES / "no_closing.flac"), "--timings")
    assert proc.returncode == 0, proc.stderr
    assert "no_closing  score 80  verdict FAIL" in proc.stdout
    assert "[FAIL] CLS-2" in proc.stdout
    # the stage hook: each stage's time on stderr, in pipeline order
    stages = [line.split()[1] for line in proc.stderr.splitlines() if line.startswith("qa-audio: ")]
    assert stages[:3] == ["vad_tones", "asr", "rules"] and "recheck" in stages


def test_bad_config_is_a_clean_one_line_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "configs" / "default.yaml").read_text(encoding="utf-8")
                   .replace("weight: 15", "weight: heavy"), encoding="utf-8")
    proc = run("score", str(SAMPLES / "compliant.wav"), "--config", str(bad))
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0
    assert "bad.yaml:" in proc.stderr and "rules[2].weight" in proc.stderr and "Traceback" not in proc.stderr


def test_rules_check_and_explain():
    proc = run("rules", "check")
    assert proc.returncode == 0 and "OK" in proc.stdout
    proc = run("rules", "explain", "BAN-1")
    assert proc.returncode == 0
    assert "must not say" in proc.stdout and "公司规定就是这样的没办法" in proc.stdout
    proc = run("rules", "explain", "XYZ-9")
    assert proc.returncode == 1 and "no rule with id" in proc.stderr


def test_doctor_reports_model_and_packages():
    proc = run("doctor")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "model: whisper-base (bundled)" in proc.stdout
    assert "faster-whisper" in proc.stdout and "status: OK" in proc.stdout
