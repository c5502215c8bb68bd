"""Broken and hostile configs, lexicons and metadata files are refused with file, line and field;
nothing non-finite, out of range, duplicated or catastrophic gets through `rules check`."""
from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT
from test_config import DEFAULT, line_of, write_config

from qa_audio.config import load_config
from qa_audio.errors import ConfigError

# (what is replaced, by what, the field named, a word of the message); the line is the replaced one
VARIANTS = [
    # the metric registry decides what a threshold may say: a party is matched with equals, a number bounded
    ("    metric: {name: hangup_side, equals: customer}", "    metric: {name: hangup_side, max: 1}",
     "rules[18].metric.max", "is a party"),
    ("    metric: {name: rings, max: 3}", "    metric: {name: rings, equals: customer}", "rules[0].metric.equals",
     "is a number"),
    ("    when: {metric: rings, above: 3}", "    when: {metric: last_speaker, above: 3}", "rules[1].when.metric",
     "a condition needs a number"),
    ("  pass_score: 85.0 ", "  pass_score: .nan ", "scoring.pass_score", "finite"),
    ("  pass_score: 85.0 ", "  pass_score: .inf ", "scoring.pass_score", "finite"),
    ("  pass_score: 85.0 ", "  pass_score: nan ", "scoring.pass_score", "finite"),
    ("  pass_score: 85.0 ", "  pass_score: 185 ", "scoring.pass_score", "at most"),
    ("  redline_score: 0.0 ", "  redline_score: -5 ", "scoring.redline_score", "at least"),
    ("    weight: 15\n", "    weight: .nan\n", "rules[2].weight", "finite"),
    ("    weight: 15\n", "    weight: 1e308\n", "rules[2].weight", "at most 100"),
    ("    weight: 15\n", "    weight: -3\n", "rules[2].weight", "at least"),
    ("    metric: {name: rings, max: 3}", "    metric: {name: rings, max: .nan}", "rules[0].metric.max", "finite"),
    (
        "    metric: {name: rings, max: 3}",
        "    metric: {name: rings, min: 5, max: 3}",
        "rules[0].metric.min",
        "above max",
    ),
    (
        "      - {name: agent_rate_cps, min: 3, max: 6}",
        "      - {name: agent_rate_cps, min: 9, max: 6}",
        "rules[19].metric[0].min",
        "above max",
    ),
    ("    when: {metric: rings, above: 3}", "    when: {metric: rings, above: .inf}", "rules[1].when.above", "finite"),
    (
        "    when: {metric: rings, above: 3}",
        "    when: {metric: rings, above: 5, below: 2}",
        "rules[1].when.above",
        "never apply",
    ),
    (
        "    window: {from: answer, within_s: 10}",
        "    window: {from: answer, within_s: .nan}",
        "rules[2].window.within_s",
        "finite",
    ),
    ("    min_similarity: 1.0 ", "    min_similarity: 5 ", "rules[7].min_similarity", "at most"),
    ("    min_similarity: 1.0 ", "    min_similarity: .nan ", "rules[7].min_similarity", "finite"),
    ("  min_similarity: 0.8 ", "  min_similarity: 5 ", "matching.min_similarity", "at most"),
    ("  min_similarity: 0.8 ", "  min_similarity: 0.1 ", "matching.min_similarity", "at least"),
    ("  low_confidence: 0.5 ", "  low_confidence: 2 ", "matching.low_confidence", "at most"),
    ("  window_s: 30.0 ", "  window_s: 0 ", "model.window_s", "at least"),
    ("  window_s: 30.0 ", "  window_s: 45 ", "model.window_s", "at most"),
    ("  beam_size: 5\n", "  beam_size: 0\n", "model.beam_size", "at least"),
    ("  beam_size: 5\n", "  beam_size: 5000\n", "model.beam_size", "at most"),
    ("  energy_floor_dbfs: -50.0 ", "  energy_floor_dbfs: 10 ", "vad.energy_floor_dbfs", "at most"),
    ("  verify_threshold: 0.35 ", "  verify_threshold: 1.5 ", "vad.verify_threshold", "at most"),
    ("  dead_air_min_s: 5.0 ", "  dead_air_min_s: .nan ", "timing.dead_air_min_s", "finite"),
    ("  dead_air_min_s: 5.0 ", "  dead_air_min_s: 0 ", "timing.dead_air_min_s", "at least"),
    ("  hold_min_s: 8.0 ", "  hold_min_s: -1 ", "timing.hold_min_s", "at least"),
    ("  music_min_s: 3.0\n", "  music_min_s: .inf\n", "timing.music_min_s", "finite"),
    ("  session_hours: 8 ", "  session_hours: .nan ", "review.session_hours", "finite"),
    ("  session_hours: 8 ", "  session_hours: 0 ", "review.session_hours", "at least"),
    ("  page_size: 50\n", "  page_size: 0\n", "review.page_size", "at least"),
    ("  sample_passing_percent: 10 ", "  sample_passing_percent: .nan ", "review.sample_passing_percent", "finite"),
    ("  keep_last_digits: 4\n", "  keep_last_digits: 40\n", "privacy.keep_last_digits", "at most"),
    (
        "    cn: {frequencies_hz: [450], on_s: 1.0, off_s: 4.0}",
        "    cn: {frequencies_hz: [.inf], on_s: 1.0, off_s: 4.0}",
        "tones.plans.cn.frequencies_hz",
        "telephone band",
    ),
    (
        "    cn: {frequencies_hz: [450], on_s: 1.0, off_s: 4.0}",
        "    cn: {frequencies_hz: [450], on_s: .nan, off_s: 4.0}",
        "tones.plans.cn.on_s",
        "finite",
    ),
    ("  max_duration_s: 14400 ", "  max_duration_s: 0 ", "audio.max_duration_s", "at least"),
    ("  max_duration_s: 14400 ", "  max_duration_s: .inf ", "audio.max_duration_s", "finite"),
    # duplicate keys and sections: YAML keeps the last one silently
    ("  pass_score: 85.0 ", "  pass_score: 85.0\n  pass_score: 0 ", "scoring.pass_score", "duplicate key"),
    ("    weight: 15\n", "    weight: 15\n    weight: 0\n", "rules[2].weight", "duplicate key"),
    (
        "rules:\n",
        "rules:\n  - {id: ANS-1, title: x, weight: 1, metric: {name: rings, max: 3}}\nrules:\n",
        "rules",
        "duplicate key",
    ),
    ("scoring:\n", "scoring:\n  pass_score: 10\nscoring:\n", "scoring", "duplicate key"),
    (
        "  filename_pattern: '^(?P<call_time>",
        "  filename_pattern: '^((?P<call_time>",
        "metadata.filename_pattern",
        "invalid regular expression",
    ),
    (
        "  filename_pattern: '^(?P<call_time>\\d{8}-\\d{6})",
        "  filename_pattern: '^(?P<call_time>(\\d+)+-\\d{6})",
        "metadata.filename_pattern",
        "exponential",
    ),
]


@pytest.mark.parametrize("old,new,field,message", VARIANTS)
def test_hostile_value_is_refused_with_file_line_and_field(tmp_path, old, new, field, message):
    text = DEFAULT.replace(old, new, 1)
    assert text != DEFAULT, old
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text_error = str(err.value)
    assert f"{field}:" in text_error and message in text_error, text_error
    if message == "duplicate key":  # named on the second occurrence
        key = field.rsplit(".", 1)[-1]
        first = line_of(text, new.strip().splitlines()[0])
        expected = next(
            i for i, line in enumerate(text.splitlines(), 1) if i > first and line.strip().startswith(key + ":")
        )
    else:
        expected = line_of(text, new.strip().splitlines()[0])
    assert err.value.line == expected, (text_error, expected)
    assert text_error.startswith(f"{path}:{err.value.line}:")


def test_at_least_forty_variants():
    assert len(VARIANTS) >= 40


@pytest.mark.parametrize(
    "entry,message",
    [
        ("re:", "empty regular expression"),
        ("re:(a+)+$", "exponential"),
        ("re:(\\d+)*号", "exponential"),
        ("re:.*", "matches the empty string"),
        ("re:[", "invalid regular expression"),
    ],
)
def test_unsafe_lexicon_regex_is_refused_with_line(tmp_path, entry, message):
    path = write_config(tmp_path, DEFAULT)
    lexicon = tmp_path / "lexicons" / "banned.txt"
    lines = lexicon.read_text(encoding="utf-8").splitlines()
    lexicon.write_text("\n".join(lines + [entry]) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert message in str(err.value) and err.value.line == len(lines) + 1 and "banned.txt" in str(err.value)


def test_rules_check_refuses_nan_with_exit_1(tmp_path):
    path = write_config(tmp_path, DEFAULT.replace("  pass_score: 85.0 ", "  pass_score: .nan ", 1))
    proc = subprocess.run(
        [sys.executable, "-m", "qa_audio", "rules", "check", str(path)], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 1 and "finite" in proc.stderr and "Traceback" not in proc.stderr
