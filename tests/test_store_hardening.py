"""The results store under attack (#15): a newer store is refused untouched, a damaged one gives
one line, a read-only one can still be read, links cannot dodge the batch lock, and redact-audio
never overwrites the evidence."""
from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT


def cli(*args):
    return subprocess.run([sys.executable, "-m", "qa_audio", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def store_copy(sample_store, tmp_path):
    db = tmp_path / "results.sqlite"
    with sqlite3.connect(sample_store) as a, sqlite3.connect(db) as b:
        a.backup(b)
    return db


def test_a_store_from_a_newer_version_is_refused_before_anything_changes(tmp_path):
    from qa_audio.errors import StoreError
    from qa_audio.results.store import open_store

    db = tmp_path / "future.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE calls (id INTEGER)")
        conn.execute("PRAGMA user_version = 99")
    before = digest(db)
    for readonly in (False, True):
        with pytest.raises(StoreError, match=r"newer than this qa-audio.*not modified"):
            open_store(db, readonly=readonly)
    assert digest(db) == before and db.read_bytes()[18:20] == b"\x01\x01"     # still a rollback-journal file
    assert not db.with_name(db.name + "-wal").exists()


@pytest.mark.parametrize("command", ["show", "export"])
def test_a_damaged_store_gives_one_line_not_a_traceback(store_copy, tmp_path, command):
    with sqlite3.connect(store_copy) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode = DELETE")
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    data = bytearray(store_copy.read_bytes())
    for n in range(2, pages):                       # keep the header page, garble the rest
        data[n * page: n * page + 64] = b"\xde\xad" * 32
    store_copy.write_bytes(bytes(data))
    args = ["show", "compliant"] if command == "show" else ["export", "--period", "2026-11", "-o", tmp_path / "x.csv"]
    proc = cli(*args, "--db", store_copy)
    assert proc.returncode == 1, proc.stdout
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
    assert str(store_copy) in proc.stderr and "damaged" in proc.stderr


def test_reading_never_writes_the_store(store_copy):
    with sqlite3.connect(store_copy) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = digest(store_copy)
    assert cli("show", "compliant", "--db", store_copy).returncode == 0
    assert cli("labels", "--db", store_copy).returncode == 0
    assert digest(store_copy) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes a read-only folder anyway")
def test_show_and_export_read_a_store_in_a_read_only_folder(store_copy, tmp_path):
    with sqlite3.connect(store_copy) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    folder = store_copy.parent
    for extra in folder.glob("results.sqlite-*"):
        extra.unlink()
    out = tmp_path.parent / f"{tmp_path.name}-out.csv"
    os.chmod(folder, 0o555)
    try:
        assert cli("show", "compliant", "--db", store_copy).returncode == 0
        assert cli("export", "--db", store_copy, "--period", "2026-11", "-o", out).returncode == 0
    finally:
        os.chmod(folder, 0o755)


def test_the_batch_lock_holds_through_a_symlink(store_copy, tmp_path, config):
    from qa_audio.errors import StoreError
    from qa_audio.results.store import open_store

    link = tmp_path / "elsewhere" / "link.sqlite"
    link.parent.mkdir()
    link.symlink_to(store_copy)
    with open_store(store_copy) as store, store.batch_lock():
        proc = cli("batch", ROOT / "samples", "--db", link)
    assert proc.returncode == 1 and "another batch is writing to this store" in proc.stderr
    with open_store(link) as one, open_store(store_copy) as two, one.batch_lock(), \
            pytest.raises(StoreError, match=r"another batch"), two.batch_lock():
        pass


def test_redact_audio_refuses_to_overwrite_the_recording(store_copy, tmp_path):
    from qa_audio.results.store import open_store

    source = tmp_path / "compliant.wav"
    shutil.copy(ROOT / "samples" / "compliant.wav", source)
    with sqlite3.connect(store_copy) as conn:
        conn.execute("UPDATE calls SET path = ? WHERE call_id = 'compliant'", (str(source),))
    before = digest(source)
    link = tmp_path / "same.wav"
    link.symlink_to(source)
    for target in (source, link, tmp_path / "." / "compliant.wav"):
        proc = cli("redact-audio", "compliant", "--db", store_copy, "-o", target)
        assert proc.returncode == 1 and "own recording" in proc.stderr, proc.stderr
    assert digest(source) == before
    with open_store(store_copy, readonly=True) as store:
        assert store.find_call("compliant").path == str(source)


@pytest.mark.asr
def test_a_file_rewritten_during_the_batch_is_stored_under_what_was_decoded(tmp_path, scorer, monkeypatch):
    import io

    import qa_audio.batch.jobs as jobs
    import qa_audio.batch.runner as batch
    from qa_audio.results.store import open_store

    folder = tmp_path / "rec"
    folder.mkdir()
    call = folder / "call.wav"
    shutil.copy(ROOT / "samples" / "bad_greeting.wav", call)
    planned = digest(call)
    real = jobs.load_audio

    def rewritten_first(path, **kwargs):        # the recorder rewrites the file after it was hashed
        shutil.copy(ROOT / "samples" / "compliant.wav", path)
        return real(path, **kwargs)

    monkeypatch.setattr(jobs, "load_audio", rewritten_first)
    log = io.StringIO()
    batch.run_batch(folder, db=tmp_path / "r.sqlite", config=scorer.config, scorer=scorer,
                    progress=batch.Progress(0, stream=log, tty=False))
    with open_store(tmp_path / "r.sqlite", readonly=True) as store:
        (row,) = store.current_rows()
        stored = store.find_call(row["call_id"])
    assert stored.audio_sha256 == digest(call) != planned
    assert abs(stored.result.audio["duration_s"] - 44.15) < 0.1        # compliant.wav's transcript and length
    assert "changed after it was planned" in log.getvalue()
