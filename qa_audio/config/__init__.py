"""Load and validate the YAML config: pipeline settings plus the rulebook.

Everything tunable lives in ``configs/*.yaml`` and ``lexicons/*.txt``. Loading
validates every field and raises :class:`ConfigError` naming the file, the line
and the field, so a QA team can fix a broken rule without reading code.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields
from pathlib import Path

from qa_audio.config.metrics import METRICS
from qa_audio.config.regex import compile_safe_regex
from qa_audio.config.rulebook import (
    EVENTS,
    EXPECTS,
    ROLES,
    SEVERITIES,
    SIDES,
    TURNS,
    WINDOW_FROM,
    Anchor,
    Around,
    Condition,
    Lexicon,
    LexiconEntry,
    MetricCheck,
    RepeatBack,
    Rule,
    Rulebook,
    Window,
    load_lexicon,
    load_rulebook,
)
from qa_audio.config.settings import (
    METADATA_FIELDS,
    RANGES,
    AudioSettings,
    ChannelSettings,
    DiarizationSettings,
    MatchSettings,
    MetadataSettings,
    ModelSettings,
    PrivacySettings,
    RecheckSettings,
    ReviewSettings,
    ScoreSection,
    ScoreSettings,
    Settings,
    TimingSettings,
    TonePlan,
    VadSettings,
    load_settings,
)
from qa_audio.config.source import _load_tree, _origins, _Section
from qa_audio.errors import ConfigError

__all__ = [
    "DEFAULT_CONFIG",
    "EVENTS",
    "EXPECTS",
    "METADATA_FIELDS",
    "METRICS",
    "PACKAGE_ROOT",
    "RANGES",
    "ROLES",
    "SEVERITIES",
    "SIDES",
    "TURNS",
    "WINDOW_FROM",
    "Anchor",
    "Around",
    "AudioSettings",
    "ChannelSettings",
    "Condition",
    "Config",
    "DiarizationSettings",
    "Lexicon",
    "LexiconEntry",
    "MatchSettings",
    "MetadataSettings",
    "MetricCheck",
    "ModelSettings",
    "PrivacySettings",
    "RecheckSettings",
    "RepeatBack",
    "ReviewSettings",
    "Rule",
    "Rulebook",
    "ScoreSection",
    "ScoreSettings",
    "Settings",
    "TimingSettings",
    "TonePlan",
    "VadSettings",
    "Window",
    "compile_safe_regex",
    "load_config",
    "load_lexicon"
]

PACKAGE_ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_CONFIG = PACKAGE_ROOT / "configs" / "default.yaml"


@dataclass(frozen=True)
class Config(Settings):
    """A loaded config: its settings (the fields of :class:`Settings`), its rulebook, and where it came from."""

    path: str
    rulebook_name: str
    rulebook_version: str
    rules: tuple[Rule, ...]
    lexicons: dict[str, Lexicon] = field(hash=False, compare=False)
    hold_request_lexicon: str | None = None
    backchannel_lexicon: str | None = None
    asr_inventions_lexicon: str | None = None
    digest: str = ""
    profile: str | None = None
    files: tuple[str, ...] = ()                  # the extends: chain, base first (the config itself last)
    clients: dict[str, str] = field(default_factory=dict, hash=False, compare=False)   # client → its config file
    origins: dict[str, str] = field(default_factory=dict, hash=False, compare=False)   # setting → file:line

    @property
    def rulebook(self) -> str:
        """The rulebook identity recorded in every result: version plus content digest."""
        return f"{self.rulebook_version}+{self.digest[:8]}"

    def rule(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise ConfigError(self.path, f"no rule with id {rule_id!r}")


def _check_sections(path: Path, scoring: ScoreSettings, rules: tuple[Rule, ...]) -> None:
    """With a scorecard, every rule scores in one of its sections; without one, no rule names a section."""
    known = [s.id for s in scoring.sections]
    for rule in rules:
        if rule.section is None and known:
            raise ConfigError(path, f"rule {rule.id} has no section (one of: {', '.join(known)})", line=rule.line,
                              field=f"rules.{rule.id}.section")
        if rule.section is not None and rule.section not in known:
            expected = f"one of: {', '.join(known)}" if known else "no scoring.sections are defined"
            raise ConfigError(path, f"rule {rule.id}: unknown section {rule.section!r} ({expected})",
                              line=rule.line, field=f"rules.{rule.id}.section")


def load_config(path: str | Path | None = None, *, profile: str | None = None) -> Config:
    """Load a config file (default: the bundled ``configs/default.yaml``) and its lexicons.

    ``profile`` applies one of the config's ``profiles`` (model overrides such as a
    faster beam) on top of its ``model`` section. A config with ``extends: OTHER.yaml``
    is that config with this file's settings, rules (by id) and lexicon folders on top.
    """
    path = Path(path) if path else DEFAULT_CONFIG
    root, files = _load_tree(path)
    top = _Section(path, root, "")
    settings = load_settings(top, profile=profile)
    book = load_rulebook(top, root, extra_lexicons=tuple(n for n, _ in settings.channels.agent_evidence))
    top.check_unknown()
    _check_sections(path, settings.scoring, book.rules)

    digest = hashlib.sha256()
    for part in files:
        digest.update(part.read_bytes())
    for lex_name in sorted(book.lexicons):
        digest.update(Path(book.lexicons[lex_name].path).read_bytes())

    return Config(
        path=str(path), rulebook_name=book.name, rulebook_version=book.version, rules=book.rules,
        lexicons=book.lexicons, hold_request_lexicon=book.hold_request_lexicon,
        backchannel_lexicon=book.backchannel_lexicon, asr_inventions_lexicon=book.asr_inventions_lexicon,
        clients=book.clients, digest=digest.hexdigest(), profile=profile,
        files=tuple(str(f) for f in files), origins=_origins(root),
        **{f.name: getattr(settings, f.name) for f in fields(settings)},
    )
