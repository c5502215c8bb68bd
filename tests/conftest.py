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
def sample_results(scorer, expected):
    """Every bundled sample call scored once with the real model."""
    return {name: scorer.score_path(SAMPLES / name).to_dict() for name in expected}


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def shared(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"{path} is missing: the tests need ../shared beside the checkout")
    return path
