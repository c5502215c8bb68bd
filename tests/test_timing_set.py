"""Regression: a small labelled subset from scripts/make_timing_set.py, judged by scripts/eval_timing.py."""
from __future__ import annotations

import importlib.util
import sys

from conftest import ROOT


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_labelled_subset_meets_the_timing_targets(tmp_path):
    maker, evaluator = load_script("make_timing_set"), load_script("eval_timing")
    labels = maker.make_set(tmp_path, count=8, seed=3)
    assert len(labels) == 8
    report = evaluator.evaluate(tmp_path)
    assert report["rings_exact"] == 1.0
    assert report["ring_to_answer_within_0_5s"] == 1.0
    assert report["holds"]["precision"] == 1.0 and report["holds"]["recall"] == 1.0
    assert report["holds"]["median_duration_error_s"] <= 1.0
    assert report["agent_interruptions"]["precision"] >= 0.9 and report["agent_interruptions"]["recall"] >= 0.9
    assert report["backchannels_reported_as_interruptions"] <= 0.05
    assert report["dead_air"]["precision"] >= 0.9 and report["dead_air"]["recall"] >= 0.9


def test_generator_is_deterministic(tmp_path):
    maker = load_script("make_timing_set")
    first = maker.make_set(tmp_path / "a", count=2, seed=5)
    second = maker.make_set(tmp_path / "b", count=2, seed=5)
    assert first == second
    assert (tmp_path / "a" / "call_5_000.wav").read_bytes() == (tmp_path / "b" / "call_5_000.wav").read_bytes()
