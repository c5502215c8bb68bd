"""`extends:`: a rulebook that overrides only what differs from another (#14)."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from conftest import ROOT

from qa_audio.config import load_config
from qa_audio.errors import ConfigError


@pytest.fixture
def tree(tmp_path):
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    shutil.copytree(ROOT / "lexicons", tmp_path / "lexicons")
    return tmp_path / "configs"


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def cli(*args):
    return subprocess.run([sys.executable, "-m", "qa_audio", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def test_an_overlay_changes_one_weight_and_explain_shows_it(tree):
    overlay = write(tree / "client.yaml", "extends: default.yaml\nrules:\n  - id: GRT-2\n    weight: 12\n")
    config, base = load_config(overlay), load_config(tree / "default.yaml")
    assert config.rule("GRT-2").weight == 12 and base.rule("GRT-2").weight != 12
    assert [r.id for r in config.rules] == [r.id for r in base.rules]
    assert config.rulebook != base.rulebook                      # the digest covers the whole chain
    check = cli("rules", "check", overlay)
    assert check.returncode == 0 and "rules.GRT-2.weight" in check.stdout and f"{overlay}:4" in check.stdout
    explain = cli("rules", "explain", "GRT-2", "--config", overlay)
    assert explain.returncode == 0 and "weight 12" in explain.stdout
    assert f"weight                   {overlay}:4" in explain.stdout
    assert "default.yaml" in explain.stdout                      # the rest comes from the base


def test_the_rail_rulebook_is_an_overlay_of_the_default():
    rail, base = load_config(ROOT / "configs" / "rail.yaml"), load_config()
    assert rail.files[0].endswith("default.yaml") and len(rail.files) == 2
    assert "GRT-3" not in {r.id for r in rail.rules} and rail.rule("GRT-1").all_of[-1] == "agent_identity"
    assert rail.scoring == base.scoring and rail.timing == base.timing
    assert rail.lexicons["organisation"].path.endswith("rail/organisation.txt")


def test_settings_merge_key_by_key_and_new_rules_append(tree):
    overlay = write(tree / "c.yaml", "extends: default.yaml\nscoring:\n  pass_score: 90\nrules:\n"
                                     "  - {id: XYZ-1, title: new rule, weight: 3, section: opening,"
                                     " metric: {name: rings, max: 2}}\n")
    config = load_config(overlay)
    assert config.scoring.pass_score == 90 and config.scoring.redline_score == 0.0
    assert config.rules[-1].id == "XYZ-1"


@pytest.mark.parametrize("text,message,line", [
    ("extends: default.yaml\nrules:\n  - id: GRT-2\n    weight: .nan\n", "finite", 4),
    ("extends: nowhere.yaml\n", "no such file", 1),
    ("extends: c.yaml\n", "a loop", 1),
    ("extends: default.yaml\nrules:\n  - id: ZZZ-9\n    remove: true\n", "no rule ZZZ-9", 3),
    ("extends: default.yaml\nrules:\n  - id: GRT-2\n    remove: true\n    weight: 3\n", "takes only the rule's id", 4),
    ("extends: [default.yaml]\n", "expected the path", 1),
    ("extends: default.yaml\nscoring:\n  pass_score: 90\n  pass_score: 80\n", "duplicate key", 4),
])
def test_a_broken_overlay_names_its_own_file_and_line(tree, text, message, line):
    overlay = write(tree / "c.yaml", text)
    with pytest.raises(ConfigError) as err:
        load_config(overlay)
    assert message in str(err.value) and err.value.path == str(overlay) and err.value.line == line, str(err.value)


def test_an_error_in_the_base_names_the_base(tree):
    base = tree / "default.yaml"
    write(base, base.read_text(encoding="utf-8").replace("  pass_score: 85.0 ", "  pass_score: 185 ", 1))
    overlay = write(tree / "c.yaml", "extends: default.yaml\nrulebook: {name: c, version: '1'}\n")
    with pytest.raises(ConfigError) as err:
        load_config(overlay)
    assert err.value.path == str(base) and "scoring.pass_score" in str(err.value)


def test_lexicon_folders_are_relative_to_the_file_that_names_them(tree, tmp_path):
    other = tmp_path / "clients" / "acme"
    (other / "lexicons").mkdir(parents=True)
    (other / "lexicons" / "organisation.txt").write_text("极客金融\n", encoding="utf-8")
    overlay = write(other / "acme.yaml", f"extends: {tree / 'default.yaml'}\nlexicons:\n"
                                         f"  dir: [lexicons, {tree.parent / 'lexicons'}]\n")
    config = load_config(overlay)
    assert config.lexicons["organisation"].path == str(other / "lexicons" / "organisation.txt")
    assert config.lexicons["offer_help"].path == str(tree.parent / "lexicons" / "offer_help.txt")
