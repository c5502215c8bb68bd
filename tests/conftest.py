from __future__ import annotations

import json
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


def copy_store(src: Path, dst: Path) -> Path:
    """A copy of a results store (SQLite's backup: consistent even with a WAL beside it)."""
    import sqlite3

    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    return dst


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
