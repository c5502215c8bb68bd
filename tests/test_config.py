"""Config and lexicon validation: errors name the file, the line and the field."""
from __future__ import annotations

import re
import shutil

import pytest
from conftest import ROOT, shared

from qa_audio.config import load_config
from qa_audio.errors import ConfigError

DEFAULT = (ROOT / "configs" / "default.yaml").read_text(encoding="utf-8")


def write_config(tmp_path, text):
    shutil.copytree(ROOT / "lexicons", tmp_path / "lexicons")
    (tmp_path / "configs").mkdir()
    path = tmp_path / "configs" / "c.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def line_of(text, needle):
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_default_config_encodes_every_standard(config):
    standards = shared("..", "standards.md").read_text(encoding="utf-8")
    ids = set(re.findall(r"^\| ([A-Z]{3}-\d) \|", standards, flags=re.M))
    assert len(ids) == 21
    assert {r.id for r in config.rules} == ids - {"PRV-1"}       # PRV-1 is the privacy section, not a deduction
    assert config.privacy.mask_in == "display"
    assert config.rulebook.startswith("2026.11-2+")


@pytest.mark.parametrize(
    "old,new,field,message",
    [
        ("weight: 15", "weight: heavy", "rules[2].weight", "expected float"),
        ("severity: major", "severity: fatal", "rules[2].severity", "expected one of"),
        ("    expect: absent", "    expect: absent\n    colour: red", "rules[4].colour", "unknown field"),
        ("  mode: 2 ", "  mode: 7 ", "vad.mode", "expected 0, 1, 2 or 3"),
        ("  - id: GRT-2", "  - id: greeting two", "rules[3].id", "standard ID"),
        (
            "around: {event: hold, side: before, turns: 1}",
            "around: {event: hold, side: during}",
            "rules[9].around.side",
            "expected one of before, after",
        ),
        (
            "when: {metric: rings, above: 3}",
            "when: {metric: ringz, above: 3}",
            "rules[1].when.metric",
            "expected one of",
        ),
        ("when: {said: complaint, role: customer}", "when: {role: customer}", "rules[15].when", "needs either metric"),
        (
            "repeat_back: {lexicon: customer_number, min_digits: 4}",
            "repeat_back: {lexicon: customer_number, min_digits: 0}",
            "rules[8].repeat_back.min_digits",
            "at least",
        ),
        (
            "      - {name: agent_rate_cps, min: 3, max: 6}",
            "      - {name: agent_rate_cps, low: 3}",
            "rules[19].metric[0].low",
            "unknown field",
        ),
        (
            "    enabled: false      # shadow rule: reported",
            "    enabled: sometimes      # shadow rule: reported",
            "rules[8].enabled",
            "expected bool",
        ),
        ("  sample_passing_percent: 10", "  sample_passing_percent: 150", "review.sample_passing_percent", "at most"),
    ],
)
def test_bad_field_names_file_line_and_field(tmp_path, old, new, field, message):
    text = DEFAULT.replace(old, new, 1)
    assert text != DEFAULT
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}:{err.value.line}: {field}: ")
    assert message in str(err.value)
    assert err.value.line == line_of(text, new.splitlines()[-1].strip())


def test_broken_yaml_line_is_reported(tmp_path):
    text = DEFAULT.replace("  agent: 0\n", "  agent: [0\n", 1)
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "invalid YAML" in str(err.value) and err.value.line is not None


def test_duplicate_rule_id(tmp_path):
    path = write_config(tmp_path, DEFAULT.replace("  - id: GRT-2", "  - id: GRT-1", 1))
    with pytest.raises(ConfigError, match=r"duplicate rule id GRT-1"):
        load_config(path)


def test_missing_lexicon_and_bad_regex(tmp_path):
    path = write_config(tmp_path, DEFAULT.replace("any_of: [farewell]", "any_of: [farewells]"))
    with pytest.raises(ConfigError, match=r"farewells.txt.*not found"):
        load_config(path)
    (tmp_path / "lexicons" / "employee_id.txt").write_text("工号\nre:(\\d+\n", encoding="utf-8")
    path.write_text(DEFAULT, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "employee_id.txt:2" in str(err.value) and "regular expression" in str(err.value)


def test_rulebook_digest_changes_with_a_lexicon(tmp_path):
    path = write_config(tmp_path, DEFAULT)
    before = load_config(path).rulebook
    with open(tmp_path / "lexicons" / "farewell.txt", "a", encoding="utf-8") as fh:
        fh.write("拜拜\n")
    assert load_config(path).rulebook != before


def test_tone_plan_must_exist(tmp_path):
    path = write_config(tmp_path, DEFAULT.replace("  plan: cn", "  plan: mars"))
    with pytest.raises(ConfigError, match=r"tones.plan: no tone plan named 'mars'"):
        load_config(path)


def test_profiles_override_the_model_and_change_the_analysis_key():
    from qa_audio.config import load_config
    from qa_audio.errors import ConfigError
    from qa_audio.pipeline import analysis_key

    base, fast = load_config(), load_config(profile="fast")
    assert (base.model.beam_size, fast.model.beam_size) == (5, 1)
    assert fast.profile == "fast" and fast.rulebook == base.rulebook
    assert analysis_key(fast) != analysis_key(base)  # a fast-profile batch re-transcribes
    with pytest.raises(ConfigError, match=r"no profile named 'turbo'"):
        load_config(profile="turbo")


def test_every_rule_kind_of_the_rulebook_is_judged_and_explained(config):
    from qa_audio.config.rulebook import RULE_KINDS
    from qa_audio.judge.rules import KINDS, explain

    assert [k.name for k in RULE_KINDS] == list(KINDS)
    kinds = {rule.id: rule.kind for rule in config.rules}
    assert (kinds["ANS-1"], kinds["CNF-1"], kinds["HLD-3"], kinds["GRT-1"]) == ("metric", "repeat_back", "per_hold",
                                                                              "phrase")
    assert set(kinds.values()) == set(KINDS)
    for rule in config.rules:
        assert explain(rule, config).startswith(f"{rule.id}: ")
