"""Load and validate the YAML config: pipeline settings plus the rulebook.

Everything tunable lives in ``configs/*.yaml`` and ``lexicons/*.txt``. Loading
validates every field and raises :class:`ConfigError` naming the file, the line
and the field, so a QA team can fix a broken rule without reading code.
"""
from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PACKAGE_ROOT / "configs" / "default.yaml"

SEVERITIES = ("minor", "major", "redline")
ROLES = ("agent", "customer", "any")
EXPECTS = ("present", "absent")
WINDOW_FROM = ("answer", "call", "end")
TURNS = ("first", "last")
EVENTS = ("hold",)
SIDES = ("before", "after")


# --------------------------------------------------------------------------- YAML with lines
class _Node:
    """A parsed YAML value that remembers its line (1-based)."""

    __slots__ = ("value", "line", "key_line", "origin")

    def __init__(self, value: Any, line: int, origin: Path | None = None):
        self.value = value
        self.line = line
        self.key_line = line
        self.origin = origin          # the file it was read from (an extends: chain has several)


class _Duplicate(Exception):
    def __init__(self, key: str, line: int, first: int):
        self.key, self.line, self.first = key, line, first


def _compose(node: yaml.Node, origin: Path, where: str = "") -> _Node:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, _Node] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            name = f"{where}.{key}" if where else key
            if key in out:      # YAML would let the second silently win: a rulebook must not
                raise _Duplicate(name, key_node.start_mark.line + 1, out[key].key_line)
            out[key] = _compose(value_node, origin, name)
            out[key].key_line = key_node.start_mark.line + 1
        return _Node(out, line, origin)
    if isinstance(node, yaml.SequenceNode):
        return _Node([_compose(item, origin, f"{where}[{i}]") for i, item in enumerate(node.value)], line, origin)
    scalar = yaml.safe_load(yaml.serialize(node)) if node.tag != "tag:yaml.org,2002:str" else node.value
    return _Node(scalar, line, origin)


def _load_yaml(path: Path) -> _Node:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, f"cannot read: {exc}") from None
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(path, f"invalid YAML: {problem}", line=line) from None
    if root is None:
        raise ConfigError(path, "file is empty")
    try:
        return _compose(root, path)
    except _Duplicate as dup:
        raise ConfigError(path, f"duplicate key (first given on line {dup.first}); YAML would silently keep only "
                                f"one of them", line=dup.line, field=dup.key) from None


_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


class _Section:
    """Typed access to one mapping of the config, with errors that name the field."""

    def __init__(self, path: Path, node: _Node, prefix: str):
        path = node.origin or path
        if not isinstance(node.value, dict):
            raise ConfigError(path, "expected a mapping", line=node.line, field=prefix or None)
        self.path, self.node, self.prefix = path, node, prefix
        self.used: set[str] = set()

    def _name(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def has(self, key: str) -> bool:
        return key in self.node.value

    def raw(self, key: str) -> _Node | None:
        self.used.add(key)
        return self.node.value.get(key)

    def fail(self, key: str, message: str) -> ConfigError:
        node = self.node.value.get(key, self.node)
        return ConfigError(node.origin or self.path, message, line=node.line, field=self._name(key))

    def section(self, key: str, *, required: bool = False) -> "_Section":
        node = self.raw(key)
        if node is None or node.value is None:
            if required:
                raise self.fail(key, "missing required section")
            return _Section(self.path, _Node({}, self.node.line), self._name(key))
        return _Section(self.path, node, self._name(key))

    def get(self, key: str, kind: type | tuple, default: Any = ..., *, choices=None,
            min_value: float | None = None, max_value: float | None = None) -> Any:
        node = self.raw(key)
        if node is None:
            if default is ...:
                raise self.fail(key, "missing required field")
            return default
        value = node.value
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if float in kinds and isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
            value = float(value)      # YAML 1.1 reads 1e3 (no dot) as text
        if float in kinds and isinstance(value, str) and value.strip().lower().lstrip("+-.") in ("nan", "inf",
                                                                                              "infinity"):
            value = float(value.strip().lstrip("."))
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(key, f"must be a finite number, got {value!r}")
        if value is None and type(None) in kinds:
            return None
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join(k.__name__ for k in kinds if k is not type(None))
            raise self.fail(key, f"expected {names}, got {value!r}")
        if choices is not None and value not in choices:
            raise self.fail(key, f"expected one of {', '.join(map(str, choices))}, got {value!r}")
        if min_value is not None and value < min_value:
            raise self.fail(key, f"must be at least {min_value}, got {value!r}")
        if max_value is not None and value > max_value:
            raise self.fail(key, f"must be at most {max_value}, got {value!r}")
        return value

    def str_list(self, key: str) -> tuple[str, ...]:
        node = self.raw(key)
        if node is None:
            return ()
        items = node.value if isinstance(node.value, list) else None
        if items is None or not all(isinstance(i.value, str) and i.value for i in items):
            raise self.fail(key, "expected a list of names")
        return tuple(i.value for i in items)

    def check_unknown(self) -> None:
        for key, node in self.node.value.items():
            if key not in self.used:
                raise ConfigError(node.origin or self.path, "unknown field", line=node.key_line, field=self._name(key))


# --------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class AudioSettings:
    max_duration_s: float = 7200.0      # longer recordings are refused from their header, before decoding


@dataclass(frozen=True)
class ChannelSettings:
    agent: int = 0
    customer: int = 1


@dataclass(frozen=True)
class ModelSettings:
    path: str | None = None
    name: str = "whisper-base"
    compute_type: str = "int8"
    beam_size: int = 5
    language: str = "zh"
    cpu_threads: int = 0
    window_s: float = 30.0
    piece_gap_s: float = 0.4
    temperature_fallback: bool = True   # re-decode a doubtful segment at higher temperatures (faster-whisper default)
    best_of: int = 1                    # candidates sampled at each fallback temperature (faster-whisper: 5)
    retry_unrecognised_min_s: float = 0.8   # a region this long that gave no words is decoded again on its own


@dataclass(frozen=True)
class VadSettings:
    mode: int = 2
    frame_ms: int = 30
    min_speech_s: float = 0.2
    merge_gap_s: float = 0.8
    pad_s: float = 0.1
    energy_floor_dbfs: float = -50.0
    noise_margin_db: float = 10.0
    asr_margin_db: float = 6.0          # a lower gate for what is sent to Whisper (Silero verifies it)
    verify: bool = True                 # keep only regions where Silero VAD hears speech
    verify_threshold: float = 0.35
    verify_min_s: float = 0.1
    background_below_db: float | None = 20.0   # regions this far under the party's own level are background
    echo_margin_db: float = 6.0         # near-channel frames this close to the far party's predicted echo are echo


@dataclass(frozen=True)
class TonePlan:
    name: str
    frequencies_hz: tuple[float, ...]
    on_s: float
    off_s: float


@dataclass(frozen=True)
class TimingSettings:
    dead_air_min_s: float = 5.0
    hold_min_s: float = 8.0
    backchannel_max_s: float = 1.0
    turn_gap_s: float = 1.5
    interruption_min_prior_s: float = 0.5
    interruption_floor_s: float = 0.2
    utterance_gap_s: float = 0.3
    music_min_s: float = 3.0
    music_level_min_dbfs: float = -55.0
    music_above_noise_db: float = 2.0
    music_sustain_min: float = 0.13
    music_sustain_low: float = 0.07
    music_steady_sustain_min: float = 0.04
    music_steady_low_frames_max: float = 0.02
    music_flatness_max: float = 0.3
    tone_ratio_min: float = 0.6
    tone_level_min_dbfs: float = -45.0


@dataclass(frozen=True)
class MatchSettings:
    min_similarity: float = 0.8
    exact_below_syllables: int = 3
    word_aligned_below_syllables: int = 3   # shorter phrases must start and end on a word (jieba) boundary
    low_confidence: float = 0.5


@dataclass(frozen=True)
class RecheckSettings:
    enabled: bool = True                 # re-check missing phrases and fuzzy hits against the audio
    hotword_margin: float = -0.3         # a hotword decode that shows the phrase is accepted above this margin
    substitution_margin: float = -0.1    # the phrase put in the decode's place is accepted above this...
    undecided_band: float = 0.2          # ...and makes the verdict review this far below it
    fuzzy_margin: float = -1.0           # a fuzzy hit stands only if a hotword decode shows it, above this
    max_window_s: float = 30.0
    max_hotword_chars: int = 120
    max_phrases: int = 12                # phrases tried per missing lexicon (its first entries)
    hotword_decode: bool = True          # false: substitution only (align passes, no second decode): cheaper


@dataclass(frozen=True)
class ScoreSettings:
    pass_score: float = 85.0
    redline_score: float = 0.0


METADATA_FIELDS = ("agent_id", "agent_name", "team", "call_time", "direction", "hangup_side", "client")


@dataclass(frozen=True)
class MetadataSettings:
    """Where each call's agent, team and time come from besides a sidecar CSV."""

    filename_pattern: str | None = None              # regex with named groups, matched against the file name
    required: tuple[str, ...] = ("agent_id", "call_time")   # reported as missing when not found


@dataclass(frozen=True)
class PrivacySettings:
    """How personal numbers (phone, ID card, bank card) in transcripts are masked."""

    mask_in: str = "display"              # display: everything shown or exported; store: also before storing
    keep_last_digits: int = 4
    mask_digit_runs_min: int | None = 12  # any run of this many digits is masked too; null: only the three kinds


@dataclass(frozen=True)
class ReviewSettings:
    """The supervisors' review page (``qa-audio serve``): spot-check queue and sessions."""

    sample_passing_percent: float = 10.0  # share of passing calls drawn for calibration listening
    sample_seed: str = "calibration"      # the draw is a hash of (seed, audio): stable across restarts
    page_size: int = 50
    session_hours: float = 8.0            # a login lasts this long
    secure_cookies: bool = False          # true behind HTTPS: the login cookie is never sent over plain HTTP


@dataclass(frozen=True)
class Window:
    """Where a rule looks: seconds from answer, call start or before the end; or the first/last N turns."""

    start: str = "call"
    within_s: float | None = None
    turns: str | None = None
    n: int | None = None
    skip_first: int = 0

    def describe(self) -> str:
        parts = []
        if self.turns:
            parts.append(f"the {self.turns} {self.n} turn(s)")
            if self.skip_first:
                parts.append(f"after the first {self.skip_first}")
        if self.within_s is not None:
            anchor = {"answer": "of answer", "call": "of call start", "end": "before the last speech"}[self.start]
            parts.append(f"within {self.within_s:g} s {anchor}")
        return " ".join(parts) or "the whole call"


METRICS = ("rings", "ring_to_answer_s", "longest_hold_wait_s", "longest_dead_air_s", "agent_interruptions",
           "agent_rate_cps", "agent_level_below_customer_db", "last_speaker", "longest_unacknowledged_s",
           "holds", "hangup_side")


@dataclass(frozen=True)
class MetricCheck:
    """A threshold on a timing metric: fail when the value is above ``max``, below ``min`` or not ``equals``."""

    name: str
    min: float | None = None
    max: float | None = None
    equals: str | None = None

    def describe(self) -> str:
        bounds = [f"≥ {self.min:g}" if self.min is not None else "", f"≤ {self.max:g}" if self.max is not None else "",
                  f"= {self.equals}" if self.equals is not None else ""]
        return f"{self.name} " + " and ".join(b for b in bounds if b)


@dataclass(frozen=True)
class Condition:
    """When a rule applies: a timing metric above/below a bound, or a lexicon said by a party."""

    metric: str | None = None
    above: float | None = None
    below: float | None = None
    said: str | None = None          # lexicon name
    role: str = "customer"

    def describe(self) -> str:
        if self.said:
            return f"the {self.role if self.role != 'any' else 'anyone'} says something from {self.said}"
        bounds = [f"> {self.above:g}" if self.above is not None else "", f"< {self.below:g}" if self.below is not None
                  else ""]
        return f"{self.metric} " + " and ".join(b for b in bounds if b)


@dataclass(frozen=True)
class Around:
    """Judge a rule once per event (a hold): the role's last N turns before it, or the first N after it."""

    event: str = "hold"
    side: str = "before"
    turns: int = 1
    min_duration_s: float = 0.0

    def describe(self) -> str:
        which = "last" if self.side == "before" else "first"
        longer = f" longer than {self.min_duration_s:g} s" if self.min_duration_s else ""
        return f"the {which} {self.turns} turn(s) {self.side} each {self.event}{longer}"


@dataclass(frozen=True)
class Anchor:
    """Only hits after (or before) the first hit of another lexicon count."""

    lexicon: str
    role: str = "any"


@dataclass(frozen=True)
class RepeatBack:
    """A later agent turn must share a run of ``min_digits`` digits with a number the customer gave."""

    lexicon: str
    min_digits: int = 4


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    source: str
    weight: float
    severity: str
    role: str
    expect: str
    window: Window
    any_of: tuple[str, ...]
    all_of: tuple[str, ...]
    redline_lexicons: tuple[str, ...]
    line: int
    metrics: tuple[MetricCheck, ...] = ()
    enabled: bool = True                 # false: judged and reported (and backtested), never scored
    n_of: tuple[str, ...] = ()           # at least ``n_of_count`` of these lexicons
    n_of_count: int = 0
    exclude: tuple[str, ...] = ()        # a hit overlapping one of these lexicons' hits does not count
    after: Anchor | None = None
    before: Anchor | None = None
    min_count: int = 1                   # present: at least this many hits
    max_count: int = 0                   # absent: more hits than this fail
    when: tuple[Condition, ...] = ()     # the rule applies only when all hold; otherwise n/a
    around: Around | None = None
    repeat_back: RepeatBack | None = None
    min_similarity: float | None = None  # overrides matching.min_similarity for this rule (1.0: homophones only)

    @property
    def lexicons(self) -> tuple[str, ...]:
        """Every lexicon the rule reads."""
        extra = tuple(c.said for c in self.when if c.said) + self.exclude
        extra += tuple(a.lexicon for a in (self.after, self.before) if a)
        extra += (self.repeat_back.lexicon,) if self.repeat_back else ()
        return tuple(dict.fromkeys(self.any_of + self.all_of + self.n_of + self.redline_lexicons + extra))

    @property
    def phrase_lexicons(self) -> tuple[str, ...]:
        """The lexicons whose hits decide the rule."""
        return tuple(dict.fromkeys(self.any_of + self.all_of + self.n_of + self.redline_lexicons))

    @property
    def is_phrase_rule(self) -> bool:
        return bool(self.phrase_lexicons)


@dataclass(frozen=True)
class LexiconEntry:
    text: str
    regex: re.Pattern | None
    line: int


@dataclass(frozen=True)
class Lexicon:
    name: str
    path: str
    entries: tuple[LexiconEntry, ...]


@dataclass(frozen=True)
class Config:
    path: str
    rulebook_name: str
    rulebook_version: str
    channels: ChannelSettings
    model: ModelSettings
    vad: VadSettings
    tone_plan: TonePlan
    disconnect_plan: TonePlan | None
    timing: TimingSettings
    matching: MatchSettings
    scoring: ScoreSettings
    rules: tuple[Rule, ...]
    lexicons: dict[str, Lexicon] = field(hash=False, compare=False)
    hold_request_lexicon: str | None = None
    backchannel_lexicon: str | None = None
    asr_inventions_lexicon: str | None = None
    digest: str = ""
    metadata: MetadataSettings = field(default_factory=MetadataSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    review: ReviewSettings = field(default_factory=ReviewSettings)
    profile: str | None = None
    audio: AudioSettings = field(default_factory=AudioSettings)
    recheck: RecheckSettings = field(default_factory=RecheckSettings)
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


# --------------------------------------------------------------------------- loaders
# the range of every bounded setting (inclusive); other numbers must be ≥ 0, levels in dBFS ≤ 0
RANGES: dict[str, tuple[float, float]] = {
    "AudioSettings.max_duration_s": (1, 86400),
    "ModelSettings.beam_size": (1, 20), "ModelSettings.best_of": (1, 20), "ModelSettings.cpu_threads": (0, 256),
    "ModelSettings.window_s": (1, 30), "ModelSettings.piece_gap_s": (0, 5),
    "ModelSettings.retry_unrecognised_min_s": (0, 30),
    "VadSettings.min_speech_s": (0, 10), "VadSettings.merge_gap_s": (0, 10), "VadSettings.pad_s": (0, 5),
    "VadSettings.energy_floor_dbfs": (-120, 0), "VadSettings.noise_margin_db": (0, 60),
    "VadSettings.asr_margin_db": (0, 60), "VadSettings.verify_threshold": (0, 1), "VadSettings.verify_min_s": (0, 10),
    "VadSettings.background_below_db": (0, 120), "VadSettings.echo_margin_db": (0, 60),
    "TimingSettings.dead_air_min_s": (0.5, 3600), "TimingSettings.hold_min_s": (0.5, 3600),
    "TimingSettings.backchannel_max_s": (0, 10), "TimingSettings.turn_gap_s": (0, 30),
    "TimingSettings.interruption_min_prior_s": (0, 30), "TimingSettings.interruption_floor_s": (0, 10),
    "TimingSettings.utterance_gap_s": (0.01, 10), "TimingSettings.music_min_s": (0.5, 600),
    "TimingSettings.music_level_min_dbfs": (-120, 0), "TimingSettings.music_above_noise_db": (0, 60),
    "TimingSettings.music_sustain_min": (0, 1), "TimingSettings.music_sustain_low": (0, 1),
    "TimingSettings.music_steady_sustain_min": (0, 1), "TimingSettings.music_steady_low_frames_max": (0, 1),
    "TimingSettings.music_flatness_max": (0, 1), "TimingSettings.tone_ratio_min": (0, 1),
    "TimingSettings.tone_level_min_dbfs": (-120, 0),
    "MatchSettings.min_similarity": (0.5, 1), "MatchSettings.exact_below_syllables": (0, 20),
    "MatchSettings.word_aligned_below_syllables": (0, 20), "MatchSettings.low_confidence": (0, 1),
    "ScoreSettings.pass_score": (0, 100), "ScoreSettings.redline_score": (0, 100),
    "RecheckSettings.hotword_margin": (-5, 1), "RecheckSettings.substitution_margin": (-5, 1),
    "RecheckSettings.undecided_band": (0, 5), "RecheckSettings.fuzzy_margin": (-5, 1),
    "RecheckSettings.max_window_s": (1, 30), "RecheckSettings.max_hotword_chars": (1, 400),
    "RecheckSettings.max_phrases": (1, 100),
}


def _dataclass_from(section: _Section, cls, **overrides):
    values = {}
    for name, fdef in cls.__dataclass_fields__.items():
        if name in overrides:
            continue
        default = fdef.default
        kind: Any = type(default) if default is not None else (str, type(None))
        if kind is float:
            kind = (float,)
        if name.endswith(("_s", "_db", "_dbfs")) and default is None:
            kind = (float, type(None))
        numeric = kind in ((float,), int, (float, type(None)))
        low, high = RANGES.get(f"{cls.__name__}.{name}", (None, 0) if name.endswith("_dbfs") else (0, None))
        values[name] = section.get(name, kind, default, min_value=low if numeric else None,
                                   max_value=high if numeric else None)
    section.check_unknown()
    return cls(**values, **overrides)


def _nested_quantifier(items, inside_repeat: bool = False) -> bool:
    """Whether a parsed pattern repeats something that itself repeats without bound: (a+)+, (x*)*, (\\d+)*.

    Such patterns take exponential time on a near-miss (catastrophic backtracking).
    """
    from re import _constants as c, _parser  # noqa: F401  (CPython's own parser)

    for op, arg in items:
        if op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
            low, high, body = arg
            unbounded = high == c.MAXREPEAT
            if inside_repeat and (unbounded or high > 1):
                return True
            if (unbounded or high > 1) and _nested_quantifier(body, inside_repeat=unbounded or high > 10):
                return True
        elif op == c.SUBPATTERN:
            if _nested_quantifier(arg[-1], inside_repeat):
                return True
        elif op == c.BRANCH:
            if any(_nested_quantifier(branch, inside_repeat) for branch in arg[1]):
                return True
        elif op in (c.ASSERT, c.ASSERT_NOT):
            if _nested_quantifier(arg[1], inside_repeat):
                return True
    return False


def compile_safe_regex(pattern: str, path, *, line: int | None, field: str | None) -> re.Pattern:
    """Compile a rulebook regular expression, refusing empty, catch-all and catastrophic ones."""
    from re import _parser

    if not pattern:
        raise ConfigError(path, "empty regular expression after re:", line=line, field=field)
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(path, f"invalid regular expression: {exc}", line=line, field=field) from None
    if compiled.search("") is not None:
        raise ConfigError(path, f"regular expression {pattern!r} matches the empty string, so it matches every "
                                f"transcript", line=line, field=field)
    if _nested_quantifier(_parser.parse(pattern)):
        raise ConfigError(path, f"regular expression {pattern!r} repeats a repeated group (like (a+)+): it can take "
                                f"exponential time; rewrite it without nested quantifiers", line=line, field=field)
    return compiled


def load_lexicon(path: Path, name: str) -> Lexicon:
    """Read a lexicon: one phrase a line, ``#`` comments, ``re:`` for a regular expression."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ConfigError(path, f"lexicon {name!r} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, f"cannot read lexicon: {exc}") from None
    entries = []
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if text.startswith("re:"):
            pattern = text[3:].strip()
            entries.append(LexiconEntry(pattern, compile_safe_regex(pattern, path, line=number, field=name), number))
        else:
            entries.append(LexiconEntry(text, None, number))
    if not entries:
        raise ConfigError(path, "lexicon has no phrases", field=name)
    return Lexicon(name, str(path), tuple(entries))


def _load_window(section: _Section, path: Path) -> Window:
    path = section.path
    if not section.node.value:
        return Window()
    start = section.get("from", str, "call", choices=WINDOW_FROM)
    within = section.get("within_s", (float, type(None)), None, min_value=0)
    turns = section.get("turns", (str, type(None)), None, choices=TURNS + (None,))
    n = section.get("n", (int, type(None)), None, min_value=1)
    skip_first = section.get("skip_first", int, 0, min_value=0)
    section.check_unknown()
    if turns and n is None:
        raise ConfigError(path, "turns needs n (how many turns)", line=section.node.line, field=section.prefix)
    return Window(start=start, within_s=within, turns=turns, n=n, skip_first=skip_first)


def _load_rule(node: _Node, path: Path, index: int) -> Rule:
    path = node.origin or path
    section = _Section(path, node, f"rules[{index}]")
    rule_id = section.get("id", str)
    if not re.fullmatch(r"[A-Z]{2,4}-\d+", rule_id):
        raise section.fail("id", f"expected a standard ID such as GRT-1, got {rule_id!r}")
    n_of, n_of_count = (), 0
    if section.has("n_of"):
        n_section = section.section("n_of")
        n_of_count = n_section.get("n", int, min_value=1)
        n_of = n_section.str_list("of")
        n_section.check_unknown()
        if n_of_count > len(n_of):
            raise n_section.fail("n", f"n is {n_of_count} but only {len(n_of)} lexicon(s) are listed under of")
    rule = Rule(
        id=rule_id,
        title=section.get("title", str),
        source=section.get("source", str, ""),
        weight=section.get("weight", float, min_value=0, max_value=100),
        severity=section.get("severity", str, "major", choices=SEVERITIES),
        role=section.get("role", str, "agent", choices=ROLES),
        expect=section.get("expect", str, "present", choices=EXPECTS),
        window=_load_window(section.section("window"), path),
        any_of=section.str_list("any_of"),
        all_of=section.str_list("all_of"),
        redline_lexicons=section.str_list("redline"),
        line=node.line,
        metrics=_load_metrics(section, path),
        enabled=section.get("enabled", bool, True),
        n_of=n_of,
        n_of_count=n_of_count,
        exclude=section.str_list("exclude"),
        after=_load_anchor(section, "after"),
        before=_load_anchor(section, "before"),
        min_count=section.get("min_count", int, 1, min_value=1),
        max_count=section.get("max_count", int, 0, min_value=0),
        when=_load_conditions(section, path),
        around=_load_around(section),
        repeat_back=_load_repeat_back(section),
        min_similarity=section.get("min_similarity", (float, type(None)), None, min_value=0.5, max_value=1.0),
    )
    section.check_unknown()
    where = f"rules[{index}]"
    if not rule.is_phrase_rule and not rule.metrics and rule.repeat_back is None:
        raise ConfigError(path, "a rule needs any_of, all_of or n_of lexicons, a metric or repeat_back",
                          line=node.line, field=where)
    if sum(bool(x) for x in (rule.any_of, rule.all_of, rule.n_of)) > 1:
        raise ConfigError(path, "use one of any_of, all_of or n_of", line=node.line, field=where)
    if rule.metrics and (rule.is_phrase_rule or rule.repeat_back):
        raise ConfigError(path, "a metric rule cannot also match phrases", line=node.line, field=where)
    if rule.around and rule.metrics:
        raise ConfigError(path, "around needs a phrase rule", line=node.line, field=f"{where}.around")
    return rule


def _load_metrics(section: _Section, path: Path) -> tuple[MetricCheck, ...]:
    node = section.raw("metric")
    if node is None:
        return ()
    items = node.value if isinstance(node.value, list) else [node]
    name = section._name("metric")
    if not items:
        raise ConfigError(path, "expected a metric mapping or a list of them", line=node.line, field=name)
    return tuple(_load_metric(_Section(path, item, f"{name}[{i}]" if isinstance(node.value, list) else name), path)
                 for i, item in enumerate(items))


def _load_anchor(section: _Section, key: str) -> Anchor | None:
    if not section.has(key):
        return None
    sub = section.section(key)
    anchor = Anchor(sub.get("lexicon", str), sub.get("role", str, "any", choices=ROLES))
    sub.check_unknown()
    return anchor


def _load_conditions(section: _Section, path: Path) -> tuple[Condition, ...]:
    node = section.raw("when")
    if node is None:
        return ()
    items = node.value if isinstance(node.value, list) else [node]
    out = []
    for i, item in enumerate(items):
        sub = _Section(path, item, section._name("when") + (f"[{i}]" if isinstance(node.value, list) else ""))
        path = sub.path
        cond = Condition(
            metric=sub.get("metric", (str, type(None)), None, choices=METRICS + (None,)),
            above=sub.get("above", (float, type(None)), None),
            below=sub.get("below", (float, type(None)), None),
            said=sub.get("said", (str, type(None)), None),
            role=sub.get("role", str, "customer", choices=ROLES),
        )
        sub.check_unknown()
        if (cond.metric is None) == (cond.said is None):
            raise ConfigError(path, "a condition needs either metric (with above/below) or said", line=item.line,
                              field=sub.prefix)
        if cond.metric is not None and cond.above is None and cond.below is None:
            raise ConfigError(path, "a metric condition needs above or below", line=item.line, field=sub.prefix)
        if cond.above is not None and cond.below is not None and cond.above >= cond.below:
            raise sub.fail("above", f"above {cond.above:g} is not below below {cond.below:g}: the rule could never "
                                    f"apply")
        out.append(cond)
    return tuple(out)


def _load_around(section: _Section) -> Around | None:
    if not section.has("around"):
        return None
    sub = section.section("around")
    around = Around(event=sub.get("event", str, "hold", choices=EVENTS),
                    side=sub.get("side", str, choices=SIDES),
                    turns=sub.get("turns", int, 1, min_value=1),
                    min_duration_s=sub.get("min_duration_s", float, 0.0, min_value=0))
    sub.check_unknown()
    return around


def _load_repeat_back(section: _Section) -> RepeatBack | None:
    if not section.has("repeat_back"):
        return None
    sub = section.section("repeat_back")
    value = RepeatBack(sub.get("lexicon", str), sub.get("min_digits", int, 4, min_value=1))
    sub.check_unknown()
    return value


def _load_metric(section: _Section, path: Path) -> MetricCheck:
    path = section.path
    check = MetricCheck(
        name=section.get("name", str, choices=METRICS),
        min=section.get("min", (float, type(None)), None),
        max=section.get("max", (float, type(None)), None),
        equals=section.get("equals", (str, type(None)), None),
    )
    section.check_unknown()
    if check.min is None and check.max is None and check.equals is None:
        raise ConfigError(path, "a metric needs min, max or equals", line=section.node.line, field=section.prefix)
    if check.min is not None and check.max is not None and check.min > check.max:
        raise section.fail("min", f"min {check.min:g} is above max {check.max:g}: no value could pass")
    return check


def _tone_plan(tones: _Section, plans: _Section, key: str, plan_name: str) -> TonePlan:
    """The tone plan ``tones.KEY`` names, validated."""
    if not plans.has(plan_name):
        raise tones.fail(key, f"no tone plan named {plan_name!r} under tones.plans")
    plan_section = plans.section(plan_name)
    freqs_node = plan_section.raw("frequencies_hz")
    if freqs_node is None or not isinstance(freqs_node.value, list) or not freqs_node.value or not all(
            isinstance(f.value, (int, float)) and not isinstance(f.value, bool) and 50 <= f.value <= 3400
            for f in freqs_node.value):
        raise plan_section.fail("frequencies_hz", "expected a list of frequencies within the telephone band "
                                                  "(50-3400 Hz)")
    plan = TonePlan(
        name=plan_name,
        frequencies_hz=tuple(float(f.value) for f in freqs_node.value),
        on_s=plan_section.get("on_s", float, min_value=0.05, max_value=60),
        off_s=plan_section.get("off_s", float, min_value=0.0, max_value=60),
    )
    plan_section.check_unknown()
    return plan


MAX_EXTENDS = 8


def _load_tree(path: Path, chain: tuple[Path, ...] = ()) -> tuple[_Node, tuple[Path, ...]]:
    """The config at ``path`` with its ``extends:`` chain merged in; the files of the chain, base first."""
    root = _load_yaml(path)
    if not isinstance(root.value, dict):
        raise ConfigError(path, "expected a mapping at the top of the config", line=root.line)
    base_node = root.value.get("extends")
    if base_node is None:
        return root, (path,)
    if not isinstance(base_node.value, str) or not base_node.value:
        raise ConfigError(path, "expected the path of the config this one extends", line=base_node.line,
                          field="extends")
    base_path = (path.parent / base_node.value).resolve()
    if base_path in chain or base_path == path.resolve():
        raise ConfigError(path, f"extends {base_node.value}, which extends this file again (a loop)",
                          line=base_node.line, field="extends")
    if len(chain) >= MAX_EXTENDS:
        raise ConfigError(path, f"more than {MAX_EXTENDS} configs in the extends chain", line=base_node.line,
                          field="extends")
    if not base_path.is_file():
        raise ConfigError(path, f"extends {base_node.value}: no such file ({base_path})", line=base_node.line,
                          field="extends")
    base, files = _load_tree(base_path, (*chain, path.resolve()))
    overlay = _Node({k: v for k, v in root.value.items() if k != "extends"}, root.line, path)
    return _merge(base, overlay, ""), (*files, path)


def _merge(base: _Node, over: _Node, where: str) -> _Node:
    """``over`` on top of ``base``: mappings merge key by key, the rule list merges by rule id
    (an entry with ``remove: true`` drops the rule), anything else is replaced."""
    if isinstance(base.value, dict) and isinstance(over.value, dict):
        out = dict(base.value)
        for key, node in over.value.items():
            out[key] = _merge(out[key], node, f"{where}.{key}" if where else key) if key in out else node
        return _Node(out, over.line, over.origin)
    if where == "rules" and isinstance(base.value, list) and isinstance(over.value, list):
        return _merge_rules(base, over)
    return over


def _rule_id(node: _Node) -> str | None:
    value = node.value.get("id") if isinstance(node.value, dict) else None
    return value.value if value is not None and isinstance(value.value, str) else None


def _merge_rules(base: _Node, over: _Node) -> _Node:
    rules = list(base.value)
    for entry in over.value:
        rule_id = _rule_id(entry)
        at = next((i for i, r in enumerate(rules) if rule_id and _rule_id(r) == rule_id), None)
        remove = entry.value.get("remove") if isinstance(entry.value, dict) else None
        if remove is not None:
            if remove.value is not True or set(entry.value) != {"id", "remove"}:
                raise ConfigError(entry.origin, "remove: true takes only the rule's id", line=remove.line,
                                  field=f"rules.{rule_id}.remove")
            if at is None:
                raise ConfigError(entry.origin, f"remove: no rule {rule_id} in the config this one extends",
                                  line=entry.line, field=f"rules.{rule_id}")
            del rules[at]
        elif at is None:
            rules.append(entry)
        else:
            rules[at] = _merge(rules[at], entry, f"rules.{rule_id}")
    return _Node(rules, over.line, over.origin)


def load_config(path: str | Path | None = None, *, profile: str | None = None) -> Config:
    """Load a config file (default: the bundled ``configs/default.yaml``) and its lexicons.

    ``profile`` applies one of the config's ``profiles`` (model overrides such as a
    faster beam) on top of its ``model`` section. A config with ``extends: OTHER.yaml``
    is that config with this file's settings, rules (by id) and lexicon folders on top.
    """
    path = Path(path) if path else DEFAULT_CONFIG
    root, files = _load_tree(path)
    top = _Section(path, root, "")
    book = top.section("rulebook", required=True)
    name = book.get("name", str)
    version = str(book.get("version", (str, int, float)))
    book.check_unknown()

    audio = _dataclass_from(top.section("audio"), AudioSettings)
    channels = _dataclass_from(top.section("channels"), ChannelSettings)
    if channels.agent == channels.customer:
        raise top.fail("channels", "agent and customer must be different channels")
    model = _dataclass_from(top.section("model"), ModelSettings)
    profiles = top.section("profiles")
    for profile_name in profiles.node.value:
        overrides = _dataclass_from(profiles.section(profile_name), ModelSettings)   # validates every profile
        if profile_name == profile:
            given = profiles.section(profile_name).node.value
            model = replace(model, **{k: getattr(overrides, k) for k in given})
    if profile is not None and not profiles.has(profile):
        known = ", ".join(profiles.node.value) or "none"
        raise ConfigError(path, f"no profile named {profile!r} (known: {known})", field="profiles")
    vad = _dataclass_from(top.section("vad"), VadSettings)
    if vad.mode not in (0, 1, 2, 3):
        raise top.section("vad").fail("mode", "expected 0, 1, 2 or 3")
    if vad.frame_ms not in (10, 20, 30):
        raise top.section("vad").fail("frame_ms", "expected 10, 20 or 30")
    timing = _dataclass_from(top.section("timing"), TimingSettings)
    matching = _dataclass_from(top.section("matching"), MatchSettings)
    scoring = _dataclass_from(top.section("scoring"), ScoreSettings)
    recheck = _dataclass_from(top.section("recheck"), RecheckSettings)

    tones = top.section("tones", required=True)
    plans = tones.section("plans", required=True)
    tone_plan = _tone_plan(tones, plans, "plan", tones.get("plan", str))
    disconnect_name = tones.get("disconnect", (str, type(None)), None)
    disconnect_plan = _tone_plan(tones, plans, "disconnect", disconnect_name) if disconnect_name else None
    for other in plans.node.value:
        plans.used.add(other)
    tones.check_unknown()

    lex_section = top.section("lexicons", required=True)
    dir_node = lex_section.raw("dir")
    dirs = dir_node.value if dir_node is not None and isinstance(dir_node.value, list) else [dir_node]
    if dir_node is None or not dirs or not all(d is not None and isinstance(d.value, str) and d.value for d in dirs):
        raise lex_section.fail("dir", "expected a folder, or a list of folders searched in order")
    lex_dirs = [((d.origin or path).parent / d.value).resolve() for d in dirs]   # relative to the file that says it
    lex_section.check_unknown()

    rules_node = top.raw("rules")
    if rules_node is None or not isinstance(rules_node.value, list) or not rules_node.value:
        raise ConfigError(path, "expected a non-empty list of rules", line=root.line, field="rules")
    rules = tuple(_load_rule(node, path, i) for i, node in enumerate(rules_node.value))
    seen: set[str] = set()
    for rule in rules:
        if rule.id in seen:
            raise ConfigError(path, f"duplicate rule id {rule.id}", line=rule.line, field="id")
        seen.add(rule.id)

    clients = _load_clients(top.section("clients"))
    hold_lexicon = top.get("hold_request_lexicon", (str, type(None)), None)
    backchannel_lexicon = top.get("backchannel_lexicon", (str, type(None)), None)
    inventions_lexicon = top.get("asr_inventions_lexicon", (str, type(None)), None)
    metadata = _load_metadata(top.section("metadata"))
    privacy_section = top.section("privacy")
    privacy = PrivacySettings(
        mask_in=privacy_section.get("mask_in", str, "display", choices=("display", "store")),
        keep_last_digits=privacy_section.get("keep_last_digits", int, 4, min_value=0, max_value=8),
        mask_digit_runs_min=privacy_section.get("mask_digit_runs_min", (int, type(None)), 12, min_value=6),
    )
    privacy_section.check_unknown()
    review_section = top.section("review")
    review = ReviewSettings(
        sample_passing_percent=float(review_section.get("sample_passing_percent", (int, float), 10.0, min_value=0,
                                                        max_value=100)),
        sample_seed=str(review_section.get("sample_seed", (str, int), "calibration")),
        page_size=review_section.get("page_size", int, 50, min_value=1, max_value=500),
        session_hours=float(review_section.get("session_hours", (int, float), 8.0, min_value=0.1, max_value=24 * 7)),
        secure_cookies=review_section.get("secure_cookies", bool, False),
    )
    review_section.check_unknown()
    top.check_unknown()

    names = {n for rule in rules for n in rule.lexicons} | {n for n in (hold_lexicon, backchannel_lexicon, inventions_lexicon) if n}
    lexicons = {}
    for lex_name in sorted(names):
        if not re.fullmatch(r"[a-z0-9_]+", lex_name):
            raise ConfigError(path, f"invalid lexicon name {lex_name!r} (use a-z, 0-9, _)", field="rules")
        found = [d / f"{lex_name}.txt" for d in lex_dirs if (d / f"{lex_name}.txt").is_file()]
        lexicons[lex_name] = load_lexicon(found[0] if found else lex_dirs[0] / f"{lex_name}.txt", lex_name)

    digest = hashlib.sha256()
    for part in files:
        digest.update(part.read_bytes())
    for lex_name in sorted(lexicons):
        digest.update(Path(lexicons[lex_name].path).read_bytes())

    return Config(
        path=str(path), rulebook_name=name, rulebook_version=version, channels=channels, model=model,
        vad=vad, tone_plan=tone_plan, disconnect_plan=disconnect_plan, timing=timing, matching=matching, scoring=scoring, rules=rules,
        lexicons=lexicons, hold_request_lexicon=hold_lexicon,
        backchannel_lexicon=backchannel_lexicon, asr_inventions_lexicon=inventions_lexicon, digest=digest.hexdigest(), metadata=metadata,
        privacy=privacy, review=review, profile=profile, audio=audio, recheck=recheck,
        files=tuple(str(f) for f in files), origins=_origins(root), clients=clients,
    )


def _load_clients(section: _Section) -> dict[str, str]:
    """``clients:``: the call's ``client`` metadata value → the config that judges its calls."""
    out = {}
    for name, node in section.node.value.items():
        section.used.add(name)
        if not isinstance(node.value, str) or not node.value:
            raise section.fail(name, "expected the path of a config (relative to this file)")
        target = ((node.origin or section.path).parent / node.value).resolve()
        if not target.is_file():
            raise section.fail(name, f"no such config: {target}")
        out[str(name)] = str(target)
    return out


def _origins(root: _Node) -> dict[str, str]:
    """Where every scalar setting came from (``scoring.pass_score`` → ``file:line``), rules by id."""
    out: dict[str, str] = {}

    def walk(node: _Node, where: str) -> None:
        if isinstance(node.value, dict):
            for key, child in node.value.items():
                walk(child, f"{where}.{key}" if where else key)
        elif isinstance(node.value, list) and where == "rules":
            for item in node.value:
                rule_id = _rule_id(item)
                if rule_id:
                    walk(item, f"rules.{rule_id}")
        else:
            out[where] = f"{node.origin}:{node.line}"

    walk(root, "")
    return out


def _load_metadata(section: _Section) -> MetadataSettings:
    pattern = section.get("filename_pattern", (str, type(None)), None)
    if pattern is not None:
        node = section.raw("filename_pattern")
        groups = set(compile_safe_regex(pattern, section.path, line=node.line if node else None,
                                        field=section._name("filename_pattern")).groupindex)
        unknown = groups - set(METADATA_FIELDS)
        if not groups or unknown:
            raise section.fail("filename_pattern", "named groups must be among " + ", ".join(METADATA_FIELDS)
                               + (f"; unknown: {', '.join(sorted(unknown))}" if unknown else "; found none"))
    required = section.str_list("required") if section.has("required") else MetadataSettings.required
    bad = [f for f in required if f not in METADATA_FIELDS]
    if bad:
        raise section.fail("required", f"unknown field {bad[0]!r}; expected some of {', '.join(METADATA_FIELDS)}")
    section.check_unknown()
    return MetadataSettings(pattern, tuple(required))
