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


def shared(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"{path} is missing: the tests need ../shared beside the checkout")
    return path
