"""The nightly batch and its SQLite store: incremental, crash-safe, failure-isolated."""
from __future__ import annotations

import io
import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf
from conftest import ROOT, SAMPLES

GOOD_NAMES = ("20261103-091500_A1023_inbound.wav", "call_b.wav", "sub/call_c.wav")


def make_variants(src: Path, folder: Path, names) -> list[Path]:
    """Copies of a sample call with a slightly different gain each, so each is a distinct recording."""
    data, rate = sf.read(src, dtype="float32", always_2d=True)
    info = sf.info(src)
    out = []
    for i, name in enumerate(names):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, data * (0.97 - 0.03 * i), rate, subtype=info.subtype)
        out.append(path)
    return out


def add_broken(folder: Path) -> list[Path]:
    empty = folder / "empty.wav"
    empty.write_bytes(b"")
    notes = folder / "notes.txt-renamed.wav"
    notes.write_text("call notes, not audio\n", encoding="utf-8")
    return [empty, notes]


class NoASR:
    """A model that fails the test if anything tries to transcribe with it."""

    def transcribe(self, *args, **kwargs):
        raise AssertionError("ASR ran, but this run should reuse stored transcripts")


def quiet_progress():
    from qa_audio.batch.runner import Progress

    return Progress(0, stream=io.StringIO(), tty=False)


def rows(db: Path, sql: str):
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def cli(*args, timeout=900, **kwargs):
    return subprocess.run([sys.executable, "-m", "qa_audio", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout, **kwargs)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("recordings")
    make_variants(SAMPLES / "bad_greeting.wav", root, GOOD_NAMES)
    shutil.copy(root / "call_b.wav", root / "call_b_copy.wav")     # the same recording twice
    add_broken(root)
    (root / "notes_again.wav").write_text("call notes, not audio\n", encoding="utf-8")   # two bad files, one content
    (root / "readme.txt").write_text("not a recording: ignored\n")
    return root


@pytest.fixture(scope="module")
def first_run(folder, scorer, tmp_path_factory):
    from qa_audio.batch.runner import run_batch

    work = tmp_path_factory.mktemp("store")
    csv = work / "calls.csv"
    csv.write_text("file,agent_id,agent_name,team,call_time,direction,hangup_side\n"
                   "call_b.wav,A2088,王芳,二组,2026-11-03 10:20:00,呼入,customer\n"
                   "sub/call_c.wav,A3001,李雷,三组,yesterday,inbound,agent\n", encoding="utf-8")
    progress = quiet_progress()
    summary = run_batch(folder, db=work / "results.sqlite", config=scorer.config, scorer=scorer,
                        metadata_csv=csv, out_dir=work / "json", progress=progress)
    return summary, work, progress.stream.getvalue()


def test_batch_scores_every_call_and_records_every_error(first_run):
    summary, work, log = first_run
    assert (summary.found, summary.scored, summary.skipped, summary.failed) == (7, 3, 1, 3)
    db = work / "results.sqlite"
    assert rows(db, "SELECT COUNT(*) FROM calls")[0][0] == 3
    assert rows(db, "SELECT COUNT(*) FROM results")[0][0] == 3
    errors = dict(rows(db, "SELECT path, error FROM errors"))
    assert len(errors) == 3
    assert "same content as" in errors[next(p for p in errors if p.endswith("notes_again.wav"))]
    assert "empty" in errors[next(p for p in errors if p.endswith("empty.wav"))]
    assert all(e.startswith(p) for p, e in errors.items())          # every cause names its file
    # every result is whole: its findings, its timing row and its transcript
    n_rules = rows(db, "SELECT COUNT(DISTINCT rule) FROM findings")[0][0]
    assert rows(db, "SELECT MIN(n), MAX(n) FROM (SELECT COUNT(*) n FROM findings GROUP BY result_id)")[0] == (
        n_rules, n_rules)
    assert rows(db, "SELECT COUNT(*) FROM timing")[0][0] == 3
    assert rows(db, "SELECT COUNT(DISTINCT analysis_id) FROM segments")[0][0] == 3
    scores = dict(rows(db, "SELECT c.call_id, r.score FROM calls c JOIN results r ON r.id = c.current_result_id"))
    # call_c: the CSV says the agent hung up
    assert scores == {"20261103-091500_A1023_inbound": 75.0, "call_b": 75.0, "call_c": 70.0}
    cls3 = json.loads(
        rows(
            db,
            "SELECT r.result_json FROM calls c JOIN results r ON r.id = c.current_result_id WHERE c.call_id = 'call_c'",
        )[0][0]
    )
    cls3 = next(f for f in cls3["findings"] if f["rule"] == "CLS-3")
    assert cls3["status"] == "fail" and "agent hung up first" in cls3["evidence"][0]["text"]
    # one JSON file per call, in the result contract, with the metadata beside it
    files = sorted((work / "json").glob("*.json"))
    assert len(files) == 3
    result = json.loads(files[0].read_text(encoding="utf-8"))
    assert {"call_id", "score", "verdict", "audio", "timing", "findings", "transcript", "versions", "metadata"} <= set(
        result
    )
    # the cron log: timestamped lines
    assert "same audio as" in log and "error" in log
    assert all(line[:4].isdigit() for line in log.splitlines())
    assert summary.peak_rss_mb and summary.audio_s > 50


def test_metadata_from_sidecar_and_file_name_missing_reported(first_run):
    summary, work, _log = first_run
    db = work / "results.sqlite"
    meta = {
        row[0]: row[1:]
        for row in rows(
            db,
            "SELECT call_id, agent_id, agent_name, team, call_time, direction,"
            " hangup_side, metadata_source, metadata_missing FROM calls",
        )
    }
    assert meta["call_b"] == ("A2088", "王芳", "二组", "2026-11-03T10:20:00", "inbound", "customer", "csv", None)
    # an unreadable call_time is reported with file, line and field, and the value left out
    assert any("calls.csv:3: call_time" in p for p in summary.problems)
    assert meta["call_c"][:3] == ("A3001", "李雷", "三组") and meta["call_c"][3] is None
    assert meta["call_c"][-1] == "call_time"
    assert meta["20261103-091500_A1023_inbound"][:5] == ("A1023", None, None, "2026-11-03T09:15:00", "inbound")
    assert meta["20261103-091500_A1023_inbound"][-2] == "filename"
    assert summary.metadata_missing == 1


def test_rerun_with_nothing_changed_runs_no_asr(first_run, folder, scorer):
    from qa_audio.batch.runner import run_batch
    from qa_audio.pipeline import Scorer

    _, work, _ = first_run
    idle = Scorer(scorer.config, model=NoASR(), model_info=scorer._model_info)
    (work / "json" / "call_b.json").unlink()  # a lost JSON file is written again
    summary = run_batch(
        folder,
        db=work / "results.sqlite",
        config=scorer.config,
        scorer=idle,
        out_dir=work / "json",
        progress=quiet_progress(),
    )
    assert (summary.scored, summary.rescored, summary.skipped, summary.failed) == (0, 0, 4, 3)
    assert (work / "json" / "call_b.json").exists()
    db = work / "results.sqlite"
    assert rows(db, "SELECT COUNT(*) FROM results")[0][0] == 3
    assert rows(db, "SELECT COUNT(*), SUM(attempts) FROM errors")[0] == (3, 6)
    # a rerun without the sidecar CSV keeps the metadata it gave
    assert rows(db, "SELECT agent_id, agent_name, metadata_source FROM calls WHERE call_id = 'call_b'") == [
        ("A2088", "王芳", "csv")
    ]


def test_rescore_after_a_rulebook_change_updates_scores_without_asr(first_run, scorer, tmp_path):
    from qa_audio.batch.runner import run_batch
    from qa_audio.config import load_config
    from qa_audio.pipeline import Scorer

    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    shutil.copytree(ROOT / "lexicons", tmp_path / "lexicons")
    path = tmp_path / "configs" / "default.yaml"
    text = path.read_text(encoding="utf-8")
    assert "weight: 15" in text
    path.write_text(
        text.replace('version: "2026.11-2"', 'version: "2026.11-3"').replace("weight: 15", "weight: 20", 1),
        encoding="utf-8",
    )
    changed = load_config(path)
    _, work, _ = first_run
    db = work / "results.sqlite"
    summary = run_batch(
        None,
        db=db,
        config=changed,
        rescore=True,
        progress=quiet_progress(),
        scorer=Scorer(changed, model=NoASR(), model_info=scorer._model_info),
    )
    assert (summary.rescored, summary.scored, summary.failed) == (3, 0, 0)
    current = rows(
        db,
        "SELECT c.call_id, r.score, r.rulebook FROM calls c JOIN results r"
        " ON r.id = c.current_result_id ORDER BY c.call_id",
    )
    assert current == [
        ("20261103-091500_A1023_inbound", 70.0, changed.rulebook),
        ("call_b", 70.0, changed.rulebook),
        ("call_c", 65.0, changed.rulebook),
    ]  # GRT-1 now costs 20, not 15 (call_c: CLS-3 too)
    assert rows(db, "SELECT COUNT(*) FROM results")[0][0] == 6  # the old results are kept
    # rescoring again with the same rulebook does nothing
    again = run_batch(
        None,
        db=db,
        config=changed,
        rescore=True,
        progress=quiet_progress(),
        scorer=Scorer(changed, model=NoASR(), model_info=scorer._model_info),
    )
    assert (again.rescored, again.skipped) == (0, 3)


def test_show_prints_timeline_transcript_and_findings(first_run):
    _, work, _ = first_run
    proc = cli("show", "call_b", "--db", work / "results.sqlite")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("call_b  score ") and "verdict FAIL" in out and "agent_id A2088" in out
    assert "timeline" in out and " ring " in out and "agent " in out
    assert "transcript" in out and "[FAIL] GRT-1" in out
    missing = cli("show", "no_such_call", "--db", work / "results.sqlite")
    assert missing.returncode == 1 and "no call 'no_such_call'" in missing.stderr and "Traceback" not in missing.stderr


def test_batch_refuses_an_unusable_store_or_config(tmp_path):
    (tmp_path / "rec").mkdir()
    proc = cli("batch", tmp_path / "rec", "--db", tmp_path / "missing_dir" / "r.sqlite")
    assert proc.returncode == 1 and "does not exist" in proc.stderr and proc.stderr.count("\n") == 1
    not_db = tmp_path / "notes.sqlite"
    not_db.write_text("this is not a database " * 100)
    proc = cli("batch", tmp_path / "rec", "--db", not_db)
    assert proc.returncode == 1 and "notes.sqlite" in proc.stderr and "Traceback" not in proc.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("rulebook: [\n")
    proc = cli("batch", tmp_path / "rec", "--db", tmp_path / "r.sqlite", "--config", bad)
    assert proc.returncode == 1 and "bad.yaml:" in proc.stderr


def test_store_migrations_and_a_newer_schema(tmp_path):
    from qa_audio.errors import StoreError
    from qa_audio.results.store import MIGRATIONS, open_store

    db = tmp_path / "r.sqlite"
    with open_store(db) as store:
        assert store.schema_version == len(MIGRATIONS)
    with open_store(db) as store:  # reopening migrates nothing twice
        assert store.schema_version == len(MIGRATIONS)
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this qa-audio"):
        open_store(db)


def test_two_batches_cannot_write_one_store_at_once(tmp_path):
    from qa_audio.errors import StoreError
    from qa_audio.results.store import open_store

    db = tmp_path / "r.sqlite"
    with open_store(db) as one, open_store(db) as two, one.batch_lock(), \
            pytest.raises(StoreError, match="another batch"), two.batch_lock():
        pass


def test_progress_bar_on_a_terminal():
    from qa_audio.batch.runner import Progress

    stream = io.StringIO()
    progress = Progress(4, stream=stream, tty=True)
    progress.step("scored", "scored a")
    progress.step("failed", "error b.wav: empty file")
    progress.close()
    text = stream.getvalue()
    assert "2/4" in text and "ETA" in text and "error b.wav: empty file" in text


def _kill_when(proc, db: Path, condition, timeout_s=300.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the batch ended before it could be killed: {proc.stderr.read()}")
        if condition():
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            return
        time.sleep(0.05)
    proc.kill()
    pytest.fail("the batch never reached the point to kill it")


def _count(db: Path, table: str) -> int:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def test_sigkill_mid_batch_then_rerun_gives_exactly_one_row_per_call(tmp_path):
    folder = tmp_path / "rec"
    good = make_variants(SAMPLES / "no_closing.flac", folder, [f"call_{i}.flac" for i in range(4)])
    bad = add_broken(folder)
    db, out = tmp_path / "results.sqlite", tmp_path / "json"
    args = [sys.executable, "-m", "qa_audio", "batch", str(folder), "--db", str(db), "--out", str(out)]

    # 1: killed while starting up (before any call is scored)
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _kill_when(proc, db, lambda: _count(db, "runs") >= 1)
    # 2: killed mid-run, after some calls are in the store and others are in flight
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _kill_when(proc, db, lambda: 1 <= _count(db, "results") < len(good))
    assert 1 <= _count(db, "results") < len(good)
    # 3: the next run resumes and finishes
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    assert f"{len(good)} scored" not in done.stderr  # only what the killed runs left
    assert rows(db, "SELECT COUNT(*), COUNT(DISTINCT call_pk) FROM results")[0] == (len(good), len(good))
    assert rows(db, "SELECT COUNT(*) FROM calls WHERE current_result_id IS NOT NULL")[0][0] == len(good)
    assert rows(db, "SELECT COUNT(*), COUNT(DISTINCT path) FROM errors")[0] == (len(bad), len(bad))
    assert rows(db, "SELECT COUNT(*) FROM analyses")[0][0] == len(good)
    assert [r[0] for r in rows(db, "SELECT status FROM runs ORDER BY id")] == ["killed", "killed", "done"]
    # the first runs' results were kept, not redone
    assert rows(db, "SELECT COUNT(DISTINCT run_id) FROM results")[0][0] == 2
    jsons = sorted(out.glob("*.json"))
    assert len(jsons) == len(good) and not list(out.glob(".*.tmp"))
    for path in jsons:
        json.loads(path.read_text(encoding="utf-8"))


def test_parallel_workers_give_the_same_results(tmp_path, first_run):
    folder = tmp_path / "rec"
    make_variants(SAMPLES / "bad_greeting.wav", folder, GOOD_NAMES[1:])
    add_broken(folder)
    db = tmp_path / "results.sqlite"
    proc = cli("batch", folder, "--db", db, "--workers", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert (summary["scored"], summary["failed"]) == (2, 2)
    assert rows(db, "SELECT score FROM results") == [(75.0,), (75.0,)]
    assert summary["peak_rss_mb"] < 1536
    assert len(rows(db, "SELECT DISTINCT run_id FROM results")) == 1


def test_dask_cluster_batch_lands_in_the_same_store(tmp_path, config):
    distributed = pytest.importorskip("distributed")
    from qa_audio.batch.runner import run_batch

    folder = tmp_path / "rec"
    make_variants(SAMPLES / "bad_greeting.wav", folder, ["dask_a.wav"])
    add_broken(folder)
    db = tmp_path / "results.sqlite"
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None, worker_class=distributed.Nanny
    ) as cluster:
        summary = run_batch(
            folder, db=db, config=config, scheduler=cluster.scheduler_address, progress=quiet_progress()
        )
    assert (summary.scored, summary.failed) == (1, 2)
    assert rows(db, "SELECT score, verdict FROM results") == [(75.0, "fail")]
    assert rows(db, "SELECT scheduler FROM runs")[0][0] == cluster.scheduler_address
