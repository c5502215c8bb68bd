from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
SHARED = ROOT.parent / "shared" / "realdata"


@pytest.fixture(scope="session")
def config():
    from qa_audio.config import load_config

    return load_config()


@pytest.fixture(scope="session")
def scorer(config):
    from qa_audio.pipeline import Scorer

    return Scorer(config)


@pytest.fixture(scope="session")
def expected():
    return json.loads((SAMPLES / "expected.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def sample_store(scorer, tmp_path_factory):
    """The bundled sample calls batch-scored once, with their metadata, into a results store."""
    import io

    from qa_audio.batch.runner import Progress, run_batch

    db = tmp_path_factory.mktemp("sample_store") / "results.sqlite"
    summary = run_batch(SAMPLES, db=db, config=scorer.config, scorer=scorer, metadata_csv=SAMPLES / "calls.csv",
                        progress=Progress(0, stream=io.StringIO(), tty=False))
    assert (summary.scored, summary.failed, summary.metadata_missing) == (5, 0, 0)
    return db


@pytest.fixture(scope="session")
def sample_results(sample_store, expected):
    """Every bundled sample call's result, as scored with the real model (the result contract)."""
    from qa_audio.results.store import open_store

    with open_store(sample_store) as store:
        return {name: store.find_call(Path(name).stem).result.to_dict() for name in expected}


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def copy_store(src: Path, dst: Path | str) -> Path | str:
    """A copy of a results store: SQLite's backup for a file (consistent even with a WAL beside it), the
    library's store copy for a PostgreSQL database."""
    import sqlite3

    from qa_audio.results.store import is_server, open_store
    from qa_audio.results.store.transfer import copy_store as copy_rows

    if is_server(dst):
        with open_store(src, create=False) as source, open_store(dst) as target:
            copy_rows(source, target)
        return dst
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    return dst


@contextmanager
def raw_sql(db: Path | str):
    """A connection to a store (either backend) for a test that must reach past the API: backdate a result,
    damage a row. ``?`` placeholders, rows as tuples; every statement commits at once."""
    import sqlite3

    from qa_audio.results.store import is_server
    from qa_audio.results.store.backend import PgConnection

    if is_server(db):
        import psycopg

        conn = PgConnection(psycopg.connect(str(db), autocommit=True, cursor_factory=psycopg.ClientCursor))
    else:
        conn = sqlite3.connect(db, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


# ------------------------------------------------------------------------------------------ PostgreSQL
@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory) -> str:
    """A PostgreSQL server for the session's store tests: $QA_AUDIO_TEST_POSTGRES (a server URL whose user may
    create databases), else a private one started here from Debian's binaries on a free port, stopped at the
    end. Skipped when neither exists; a failure when CI asked for it (QA_AUDIO_REQUIRE_POSTGRES)."""
    import os

    url = os.environ.get("QA_AUDIO_TEST_POSTGRES")
    if url:
        yield url.rstrip("/")
        return
    from pg_server import PrivateServer, find_binaries

    bindir = find_binaries()
    if bindir is None:
        if os.environ.get("QA_AUDIO_REQUIRE_POSTGRES"):
            pytest.fail("the store tests need PostgreSQL (apt-get install postgresql)")
        pytest.skip("PostgreSQL is not installed")
    server = PrivateServer(bindir, tmp_path_factory.mktemp("postgres"))
    try:
        yield server.start()
    finally:
        server.stop()


def new_database(server: str) -> str:
    """A new, empty database on the test server; its URL."""
    import psycopg

    name = f"qa_test_{os.getpid()}_{len(_DATABASES) + 1}"      # the set only grows: a name is never reused
    with psycopg.connect(server + "/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    _DATABASES.add(name)
    return f"{server}/{name}"


_DATABASES: set[str] = set()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> str:
    """Run a store test on each backend: an SQLite file and a PostgreSQL database."""
    return request.param


@pytest.fixture
def new_store(backend, tmp_path, request):
    """``new_store(name)``: where a new, empty store goes on this test's backend (a file path or a URL)."""
    def make(name: str = "results") -> Path | str:
        if backend == "sqlite":
            return tmp_path / f"{name}.sqlite"
        return new_database(request.getfixturevalue("postgres_server"))

    return make


def shared(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"{path} is missing: the tests need ../shared beside the checkout")
    return path


@pytest.fixture
def browser_path() -> str:
    """Debian's Chromium for Playwright; the test is skipped without one, and fails if CI asked for it."""
    import importlib.util
    import os
    import shutil

    path = os.environ.get("QA_AUDIO_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None or importlib.util.find_spec("playwright") is None:
        if os.environ.get("QA_AUDIO_REQUIRE_BROWSER"):
            pytest.fail("the browser test needs Playwright and Chromium (apt-get install chromium)")
        pytest.skip("Playwright or Chromium not installed")
    return path


@pytest.fixture
def screenshots(tmp_path) -> Path:
    """Where a browser test leaves its screenshots: $QA_AUDIO_SCREENSHOTS if set, else the test's tmp folder."""
    import os

    folder = Path(os.environ.get("QA_AUDIO_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def serve():
    """``serve(db, config)`` runs the review page on a free port in a thread and returns its base URL;
    every server it started stops when the test ends."""
    import io
    import threading

    from qa_audio.web import make_server

    servers = []

    def start(db, config) -> str:
        server = make_server(db, config, port=0, log=io.StringIO())
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
