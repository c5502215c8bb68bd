"""The PostgreSQL store (#18): a batch and its rerun, the batch lock across machines, schema checks, copying
an SQLite store in, and a two-worker Dask batch that loses a worker mid-run. The review page, exports,
roles, appeals and calibration run on both backends in their own tests (the ``backend`` fixture)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from conftest import ROOT, SAMPLES, copy_store, new_database, raw_sql
from test_batch import NoASR, add_broken, make_variants, quiet_progress

pytest.importorskip("psycopg")


def rows(db: str, sql: str) -> list[tuple]:
    with raw_sql(db) as conn:
        return [tuple(r) for r in conn.execute(sql).fetchall()]


def cli(*args, timeout=900):
    return subprocess.run([sys.executable, "-m", "qa_audio", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout)


def test_a_batch_into_postgresql_and_its_rerun(postgres_server, tmp_path, scorer):
    from qa_audio.batch.runner import run_batch
    from qa_audio.pipeline import Scorer
    from qa_audio.results.store import open_store

    db = new_database(postgres_server)
    folder = tmp_path / "rec"
    make_variants(SAMPLES / "bad_greeting.wav", folder, ["pg_a.wav", "pg_b.wav"])
    add_broken(folder)
    summary = run_batch(folder, db=db, config=scorer.config, scorer=scorer, out_dir=tmp_path / "json",
                        progress=quiet_progress())
    assert (summary.scored, summary.failed) == (2, 2)
    assert rows(db, "SELECT score, verdict FROM results ORDER BY id") == [(75.0, "fail"), (75.0, "fail")]
    with open_store(db, readonly=True) as store:
        call = store.find_call("pg_a")
        assert call.result.score == 75.0 and call.analysis.utterances      # the analysis reads back whole
        assert "GRT-1" in {f.rule for f in call.result.findings if f.status == "fail"}
    # a rerun decodes nothing: every call is found by its content hash
    idle = Scorer(scorer.config, model=NoASR(), model_info=scorer._model_info)
    again = run_batch(folder, db=db, config=scorer.config, scorer=idle, progress=quiet_progress())
    assert (again.scored, again.skipped, again.failed) == (0, 2, 2)
    assert rows(db, "SELECT COUNT(*), SUM(attempts) FROM errors") == [(2, 4)]
    assert [r[0] for r in rows(db, "SELECT status FROM runs ORDER BY id")] == ["done", "done"]
    shown = cli("show", "pg_a", "--db", db)
    assert shown.returncode == 0 and "GRT-1" in shown.stdout, shown.stderr


def test_one_batch_at_a_time_on_a_server_store_and_its_lock_dies_with_the_connection(postgres_server):
    from qa_audio.errors import StoreError
    from qa_audio.results.store import open_store

    db = new_database(postgres_server)
    with open_store(db) as one, open_store(db) as two:
        with one.batch_lock(), pytest.raises(StoreError, match="another batch is writing"), two.batch_lock():
            pass
        with one.batch_lock():
            pass                  # released: it can be taken again
        lock = one.batch_lock()
        lock.__enter__()
        one.conn.close()          # the batch's machine dies: the server frees its lock
        with two.batch_lock():
            pass


def test_server_store_schema_and_connection_errors_are_one_line(postgres_server):
    from qa_audio.errors import StoreError
    from qa_audio.results.store import MIGRATIONS, open_store

    db = new_database(postgres_server)
    with open_store(db) as store:
        assert store.schema_version == len(MIGRATIONS) and store.dialect.kind == "postgresql"
    with raw_sql(db) as conn:
        conn.execute("UPDATE qa_schema SET version = 99")
    with pytest.raises(StoreError, match="newer than this qa-audio"):
        open_store(db)
    assert rows(db, "SELECT version FROM qa_schema") == [(99,)]          # refused before anything changed
    empty = new_database(postgres_server)
    proc = cli("show", "x", "--db", empty)          # reading a database no batch has written
    assert proc.returncode == 1 and "no qa-audio results store yet" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    secret = postgres_server.replace("qa@", "qa:hunter2@").rsplit(":", 1)[0] + ":1/nowhere"
    proc = cli("show", "x", "--db", secret)          # nothing listens there
    assert proc.returncode == 1 and "cannot connect to the results store" in proc.stderr
    assert "hunter2" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_an_sqlite_store_is_copied_into_postgresql_whole(sample_store, postgres_server, tmp_path):
    from qa_audio.results.review import hash_password
    from qa_audio.results.store import open_store

    src = copy_store(sample_store, tmp_path / "src.sqlite")
    with open_store(src) as store:
        store.add_user("alice", hash_password("listen-carefully-42"))
    db = new_database(postgres_server)
    proc = cli("store", "copy", src, db)
    assert proc.returncode == 0, proc.stderr
    assert "5 calls, 5 results" in proc.stdout and "1 accounts" in proc.stdout
    for table in ("calls", "results", "findings", "segments", "timing", "analyses", "users", "runs"):
        assert rows(db, f"SELECT COUNT(*) FROM {table}") == rows(str(src), f"SELECT COUNT(*) FROM {table}"), table
    assert rows(db, "SELECT call_id, current_result_id FROM calls ORDER BY id") == rows(
        str(src), "SELECT call_id, current_result_id FROM calls ORDER BY id")
    with open_store(db) as store:      # new rows continue after the copied ones
        run = store.start_run(command="batch", config="c", rulebook="r", model="m", workers=1, scheduler=None)
        assert run == rows(str(src), "SELECT MAX(id) FROM runs")[0][0] + 1
    again = cli("store", "copy", src, db)
    assert again.returncode == 1 and "not empty" in again.stderr
    info = cli("store", "info", "--db", db)
    assert info.returncode == 0 and "postgresql, schema" in info.stdout


def _worker_pids(client) -> dict[str, int]:
    return client.run(os.getpid)


def test_a_two_worker_dask_batch_into_postgresql_survives_a_killed_worker(postgres_server, tmp_path, config):
    """Exactly one result per call, and none lost, when a worker process is killed while it scores a call."""
    distributed = pytest.importorskip("distributed")
    db = new_database(postgres_server)
    folder = tmp_path / "rec"
    good = make_variants(SAMPLES / "no_closing.flac", folder, [f"dask_{i}.flac" for i in range(6)])
    bad = add_broken(folder)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  worker_class=distributed.Nanny) as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        proc = subprocess.Popen([sys.executable, "-m", "qa_audio", "batch", str(folder), "--db", db,
                                 "--scheduler", cluster.scheduler_address, "--json"],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        killed = _kill_a_busy_worker(client, db, proc)
        _, err = proc.communicate(timeout=900)
    assert proc.returncode in (0, 2), err          # 2: the broken files' errors
    assert killed, "no worker was killed"
    # one result per call, every call: the killed worker's call was retried on a worker that lived
    assert rows(db, "SELECT COUNT(*), COUNT(DISTINCT call_pk) FROM results") == [(len(good), len(good))]
    assert rows(db, "SELECT COUNT(*) FROM calls WHERE current_result_id IS NOT NULL") == [(len(good),)]
    assert rows(db, "SELECT COUNT(*) FROM errors") == [(len(bad),)]
    assert all(score is not None for (score,) in rows(db, "SELECT score FROM results"))
    assert rows(db, "SELECT status, scheduler FROM runs") == [("done", cluster.scheduler_address)]


def _kill_a_busy_worker(client, db: str, proc, timeout_s: float = 600.0) -> bool:
    """SIGKILL the worker process that is scoring a call, once the first result is in the store."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            done = rows(db, "SELECT COUNT(*) FROM results")[0][0]
        except Exception:            # the batch has not created the tables yet
            done = 0
        processing = client.processing()
        busy = [addr for addr, keys in processing.items() if keys]
        if done >= 1 and busy:
            pids = _worker_pids(client)
            os.kill(pids[busy[0]], signal.SIGKILL)
            return True
        time.sleep(0.1)
    return False


def test_threads_of_a_server_store_take_turns_writing(postgres_server):
    """Concurrent writers (the review page's threads, two supervisors' machines) never lose a write."""
    from qa_audio.results.store import open_store

    db = new_database(postgres_server)
    errors: list[Exception] = []

    def write(n: int) -> None:
        try:
            with open_store(db) as store:
                for i in range(10):
                    store.log_action(actor=f"user{n}", action="note", reason=str(i))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert rows(db, "SELECT COUNT(*), COUNT(DISTINCT id) FROM audit") == [(40, 40)]
