"""One nightly batch, several client lines: each call is judged by its client's rulebook (#14)."""
from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT, SAMPLES

pytestmark = pytest.mark.asr


@pytest.fixture(scope="module")
def two_clients(tmp_path_factory, scorer):
    from qa_audio.batch.runner import Progress, run_batch
    from qa_audio.config import load_config
    from qa_audio.pipeline import Scorer

    tmp_path = tmp_path_factory.mktemp("clients")
    main = tmp_path / "centre.yaml"          # the centre's config: ours, plus which client line uses which rulebook
    main.write_text(
        f"extends: {ROOT / 'configs' / 'default.yaml'}\nclients:\n  高铁: {ROOT / 'configs' / 'rail.yaml'}\n",
        encoding="utf-8",
    )
    config = load_config(main)
    centre = Scorer(config, model=scorer.model, model_info=scorer._model_info)

    folder = tmp_path / "calls"
    folder.mkdir()
    shutil.copy(SAMPLES / "compliant.wav", folder / "finance.wav")
    shutil.copy(ROOT / "tests" / "fixtures" / "rail_call.flac", folder / "rail.flac")
    shutil.copy(SAMPLES / "bad_greeting.wav", folder / "bank.wav")
    csv = tmp_path / "calls.csv"
    csv.write_text(
        "file,agent_id,call_time,client\nfinance.wav,A1,2026-11-03 09:00,中联融资\n"
        "rail.flac,R7,2026-11-03 10:00,高铁\nbank.wav,B2,2026-11-03 11:00,某银行\n",
        encoding="utf-8",
    )
    db = tmp_path / "r.sqlite"
    log = io.StringIO()
    run_batch(
        folder, db=db, config=config, scorer=centre, metadata_csv=csv, progress=Progress(0, stream=log, tty=False)
    )
    return tmp_path, db, log.getvalue(), centre


def test_each_call_is_judged_by_its_clients_rulebook(two_clients):
    from qa_audio.results.store import open_store

    _, db, log, _ = two_clients
    assert "client '某银行' has no rulebook under clients:" in log
    with open_store(db, readonly=True) as store:
        rail, finance = store.find_call("rail"), store.find_call("finance")
        assert rail.metadata["client"] == "高铁" and finance.metadata["client"] == "中联融资"
        assert rail.result.versions["rulebook_name"].startswith("高铁客服中心")
        assert (rail.result.score, rail.result.verdict) == (100, "pass")
        assert finance.result.versions["rulebook_name"].startswith("中联融资")
        assert "中联融资" in json.dumps(dict(finance.result.versions), ensure_ascii=False)
        assert store.find_call("bank").result.versions["rulebook_name"].startswith("中联融资")


def test_a_rerun_skips_calls_already_judged_by_their_clients_rulebook(two_clients):
    from qa_audio.batch.runner import Progress, run_batch

    tmp_path, db, _, centre = two_clients
    summary = run_batch(
        tmp_path / "calls",
        db=db,
        config=centre.config,
        scorer=centre,
        metadata_csv=tmp_path / "calls.csv",
        progress=Progress(0, stream=io.StringIO(), tty=False),
    )
    assert (summary.scored, summary.rescored, summary.skipped) == (0, 0, 3)


def test_export_groups_by_client(two_clients):
    tmp_path, db, _, _ = two_clients
    out = tmp_path / "by-client.json"
    proc = subprocess.run(
        [sys.executable, "-m", "qa_audio", "export", "--db", db, "--period", "2026-11", "--by", "client", "-o", out],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    groups = {g["client"]: g for g in json.loads(out.read_text(encoding="utf-8"))["groups"]}
    assert set(groups) == {"高铁", "中联融资", "某银行"} and groups["高铁"]["mean_score"] == 100
