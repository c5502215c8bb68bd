"""Backtesting the rulebook against labels: the labels format, the figures, the CLI on real ASR results."""
from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
from conftest import ROOT

from qa_audio.batch.backtest import LabelsError, backtest, load_labels, with_setting
from qa_audio.errors import QAError

TARGET_RULES = ("GRT-1", "GRT-2", "GRT-3", "BAN-1", "CLS-1", "CLS-2", "ANS-2", "HLD-1", "HLD-3")


def run(*args):
    return subprocess.run([sys.executable, "-m", "qa_audio", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=900)


def write(path, data):
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.mark.parametrize("data,message", [
    ({"format": "something/2", "calls": {"a": {"GRT-1": "pass"}}}, "format: expected 'qa-audio-labels/1'"),
    ({"format": "qa-audio-labels/1", "calls": {}}, "calls: expected a non-empty mapping"),
    ({"format": "qa-audio-labels/1", "calls": {"c1": {"GRT-1": "passed"}}}, "calls.c1.GRT-1: expected one of"),
    ({"format": "qa-audio-labels/1", "calls": {"c1": {"BAN-1": {"status": "fail", "start_s": 3}}}},
     "calls.c1.BAN-1: start_s and end_s must both be numbers"),
    ({"format": "qa-audio-labels/1", "calls": {"c1": {"GRT-1": "pass"}}, "scores": {"c1": 130}},
     "scores.c1: expected a number from 0 to 100"),
])
def test_bad_labels_name_the_file_and_the_entry(tmp_path, data, message):
    path = write(tmp_path / "labels.json", data)
    with pytest.raises(LabelsError) as err:
        load_labels(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)


def test_labels_that_are_not_json(tmp_path):
    path = tmp_path / "labels.json"
    path.write_text("GRT-1,pass\n", encoding="utf-8")
    with pytest.raises(LabelsError, match="not a JSON labels file"):
        load_labels(path)


def finding(rule, status, *evidence):
    return {"rule": rule, "status": status, "enabled": True,
            "evidence": [{"start_s": a, "end_s": b, "channel": "agent", "text": ""} for a, b in evidence]}


def test_precision_recall_accuracy_evidence_and_score(tmp_path):
    results = [
        {"call_id": "c1", "score": 70, "verdict": "fail", "audio": {"path": "/x/c1.wav"}, "versions": {"rulebook": "r"},
         "findings": [finding("BAN-1", "fail", (20.2, 23.0)), finding("GRT-1", "pass")]},
        {"call_id": "c2", "score": 85, "verdict": "pass", "audio": {"path": "/x/c2.wav"}, "versions": {"rulebook": "r"},
         "findings": [finding("BAN-1", "fail", (50.0, 52.0)), finding("GRT-1", "fail", (0.0, 5.0))]},
        {"call_id": "c3", "score": 100, "verdict": "pass", "audio": {"path": "/x/c3.wav"},
         "versions": {"rulebook": "r"}, "findings": [finding("BAN-1", "pass"), finding("GRT-1", "pass")]},
        {"call_id": "c4", "verdict": "error", "error": "c4.wav: empty", "audio": {"path": "/x/c4.wav"},
         "findings": []},
    ]
    labels = load_labels(write(tmp_path / "l.json", {
        "format": "qa-audio-labels/1",
        "calls": {"c1": {"BAN-1": {"status": "fail", "start_s": 20.0, "end_s": 23.5}, "GRT-1": "pass"},
                  "c2": {"BAN-1": {"status": "fail", "start_s": 30.0, "end_s": 33.0}, "GRT-1": "pass"},
                  "c3": {"BAN-1": "fail", "GRT-1": "pass"},
                  "c4": {"BAN-1": "pass"}},
        "scores": {"c1": 70, "c2": 70, "c3": 70}}))
    report = backtest(results, labels)
    ban, grt = report.rule("BAN-1"), report.rule("GRT-1")
    assert (report.calls, report.unmatched) == (3, ("c4",))
    assert (ban.tp, ban.fp, ban.fn, ban.accuracy, ban.precision, ban.recall) == (2, 0, 1, 2 / 3, 1.0, 2 / 3)
    assert (ban.evidence_checked, ban.evidence_ok) == (2, 1)        # c2's evidence is 20 s off the true words
    assert (grt.tp, grt.fp, grt.fn, grt.precision, grt.recall) == (0, 1, 0, 0.0, None)
    assert report.score_mae == pytest.approx((0 + 15 + 30) / 3)
    assert ("c3", "fail", "pass") in ban.disagreements


def test_sweep_settings_are_validated(config):
    assert with_setting(config, "matching.min_similarity", "0.7").matching.min_similarity == 0.7
    assert with_setting(config, "rules.GRT-1.min_similarity", "0.9").rule("GRT-1").min_similarity == 0.9
    assert with_setting(config, "rules.CNF-1.enabled", "true").rule("CNF-1").enabled is True
    for bad in ("matching.colour", "rules.XYZ-1.weight", "model.beam_size", "rules.CNF-1.enabled"):
        with pytest.raises(QAError):
            with_setting(config, bad, "maybe")


@pytest.fixture(scope="module")
def labelled_store(scorer, tmp_path_factory):
    """Four calls of the labelled set (scripts/make_timing_set.py), batch-scored with the real model."""
    from test_timing_set import load_script

    from qa_audio.batch.runner import Progress, run_batch

    folder = tmp_path_factory.mktemp("labelled")
    load_script("make_timing_set").make_set(folder / "calls", count=4, seed=11)
    db = folder / "results.sqlite"
    summary = run_batch(folder / "calls", db=db, config=scorer.config, scorer=scorer,
                        progress=Progress(0, stream=io.StringIO(), tty=False))
    assert summary.scored == 4
    return folder


def test_backtest_cli_on_asr_results_meets_the_targets(labelled_store):
    labels = labelled_store / "calls" / "rules.json"
    proc = run("backtest", "--labels", str(labels), str(labelled_store / "results.sqlite"), "--json",
               "--sweep", "matching.min_similarity=0.7,0.9")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    report = out["report"]
    assert report["calls"] == 4 and not report["unmatched"]
    rules = {r["rule"]: r for r in report["rules"]}
    agree = sum(rules[r]["accuracy"] * rules[r]["calls"] for r in TARGET_RULES)
    assert agree / sum(rules[r]["calls"] for r in TARGET_RULES) >= 0.95
    assert report["score_mae"] <= 5
    assert all(r["evidence_ok"] == r["evidence_checked"] for r in report["rules"])
    assert [run["value"] for run in out["sweeps"][0]["runs"]] == ["0.7", "0.9"]
    text = run("backtest", "--labels", str(labels), str(labelled_store / "results.sqlite"), "-q")
    assert text.returncode == 0 and "precision" in text.stdout and "GRT-1" in text.stdout
    assert "score: mean absolute difference" in text.stdout


def test_backtest_cli_scores_audio_and_reports_bad_files(labelled_store, tmp_path):
    labels = labelled_store / "calls" / "rules.json"
    broken = tmp_path / "call_11_001.wav"
    broken.write_bytes(b"RIFF....WAVEfmt ")
    proc = run("backtest", "--labels", str(labels), str(labelled_store / "calls" / "call_11_000.wav"), str(broken))
    assert proc.returncode == 0, proc.stderr
    assert "backtest: 1 labelled call(s)" in proc.stdout
    assert "call_11_001.wav" in proc.stderr and "Traceback" not in proc.stderr
    nothing = run("backtest", "--labels", str(labels), str(broken))
    assert nothing.returncode != 0 and "none of the 4 labelled calls" in nothing.stderr


def test_supervisor_reviews_are_labels_for_backtest(sample_store, tmp_path):
    """Overturn a finding on the review side, export the labels, and backtest shows the false positive."""
    import shutil

    db = tmp_path / "results.sqlite"
    shutil.copy(sample_store, db)
    assert run("review", "banned_phrase", "BAN-1", "overturn", "--reason", "quoting the contract", "--db", str(db),
               "--user", "王主管").returncode == 0
    assert run("review", "compliant", "GRT-1", "confirm", "--reason", "ok", "--db", str(db),
               "--user", "王主管").returncode == 0
    labels = tmp_path / "labels.json"
    assert run("labels", "--db", str(db), "-o", str(labels)).returncode == 0
    assert load_labels(labels).calls["banned_phrase"]["BAN-1"].status == "pass"
    proc = run("backtest", "--labels", str(labels), str(db), "--json")
    rules = {r["rule"]: r for r in json.loads(proc.stdout)["report"]["rules"]}
    assert (rules["BAN-1"]["fp"], rules["BAN-1"]["precision"]) == (1, 0.0)
    assert rules["GRT-1"]["accuracy"] == 1.0
