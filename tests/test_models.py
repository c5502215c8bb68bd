"""Model provisioning: atomic assembly from the PyPI packages, verification, configured paths."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time

import pytest

from qa_audio.config import ModelSettings
from qa_audio.errors import ModelError
from qa_audio.speech import models


def test_assembles_verifies_and_reuses(tmp_path):
    path = models.assemble_bundled(root=tmp_path)
    assert (path / "model.bin").stat().st_size == models.BUNDLED_SIZE
    assert {p.name for p in path.iterdir()} >= {"model.bin", "config.json", "tokenizer.json", "vocabulary.json",
                                                models.COMPLETE_MARKER}
    mtime = (path / "model.bin").stat().st_mtime_ns
    assert models.assemble_bundled(root=tmp_path) == path
    assert (path / "model.bin").stat().st_mtime_ns == mtime          # not rebuilt
    assert [p.name for p in tmp_path.iterdir()] == [path.name]       # no temporary left


def test_checksum_mismatch_leaves_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.setattr(models, "BUNDLED_SHA256", "0" * 64)
    with pytest.raises(ModelError, match=r"sha256"):
        models.assemble_bundled(root=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_killed_assembly_never_leaves_a_loadable_half_model(tmp_path):
    """SIGKILL a process mid-assembly, then check the cache holds no final directory, and recovers."""
    code = ("import sys; from pathlib import Path; from qa_audio.speech import models; "
            "models.assemble_bundled(root=Path(sys.argv[1]))")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)])
    deadline = time.time() + 30
    while time.time() < deadline and not any(p.name.startswith(".assembling-") for p in tmp_path.iterdir()):
        time.sleep(0.005)
    time.sleep(0.05)
    proc.kill()
    proc.wait()
    final = tmp_path / f"{models.BUNDLED_NAME}-{models.BUNDLED_SHA256[:12]}"
    assert not final.exists() or (final / models.COMPLETE_MARKER).is_file()
    path = models.assemble_bundled(root=tmp_path)
    assert (path / "model.bin").stat().st_size == models.BUNDLED_SIZE


def test_stale_final_directory_without_marker_is_replaced(tmp_path):
    final = tmp_path / f"{models.BUNDLED_NAME}-{models.BUNDLED_SHA256[:12]}"
    final.mkdir()
    (final / "model.bin").write_bytes(b"half")
    path = models.assemble_bundled(root=tmp_path)
    assert (path / "model.bin").stat().st_size == models.BUNDLED_SIZE


def test_cache_dir_is_overridable(monkeypatch, tmp_path):
    monkeypatch.setenv("QA_AUDIO_CACHE", str(tmp_path / "c"))
    assert models.cache_dir() == tmp_path / "c"


def test_configured_model_path_is_checked(tmp_path):
    with pytest.raises(ModelError, match=r"model directory not found"):
        models.resolve_model(ModelSettings(path=str(tmp_path / "large-v3")))
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    with pytest.raises(ModelError, match=r"missing model.bin"):
        models.resolve_model(ModelSettings(path=str(tmp_path / "m")))


def test_configured_model_directory_is_used(tmp_path):
    bundled = models.assemble_bundled()
    link = tmp_path / "my-whisper"
    link.mkdir()
    for f in bundled.iterdir():
        os.symlink(f, link / f.name)
    settings = dataclasses.replace(ModelSettings(), path=str(link), name="my-whisper")
    info = models.resolve_model(settings)
    assert (info.name, info.source, info.path) == ("my-whisper", "config", str(link))
    _model, info = models.load_model(settings)
    assert info.name == "my-whisper"


def test_unloadable_model_is_a_model_error(tmp_path):
    (tmp_path / "model.bin").write_bytes(b"not a model")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelError, match=r"cannot load the model"):
        models.load_model(ModelSettings(path=str(tmp_path)))
