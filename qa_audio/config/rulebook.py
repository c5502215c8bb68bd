"""The rulebook: rules, their windows, conditions and metrics, and the phrase lexicons they use; every
pattern is compiled safely and every field validated with file, line and field."""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from qa_audio.config.metrics import METRICS, REGISTRY
from qa_audio.config.parts import Anchor, Around, Condition, MetricCheck, RepeatBack, Window
from qa_audio.config.regex import compile_safe_regex
from qa_audio.config.source import _Node, _Section
from qa_audio.errors import ConfigError

SEVERITIES = ("minor", "major", "redline")
ROLES = ("agent", "customer", "any")
EXPECTS = ("present", "absent")
WINDOW_FROM = ("answer", "call", "end")
TURNS = ("first", "last")
EVENTS = ("hold",)
SIDES = ("before", "after")


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
    kind: str = "phrase"                 # one of RULE_KINDS: how the judge evaluates and explains the rule
    section: str | None = None           # the scorecard section it scores in (scoring.sections)
    title_en: str = ""                   # the title in English (``title`` is as the handbooks word it)

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
    n_of: tuple[str, ...] = ()
    n_of_count = 0
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
        title_en=section.get("title_en", str, ""),
        section=section.get("section", (str, type(None)), None),
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
    if sum(bool(x) for x in (rule.any_of, rule.all_of, rule.n_of)) > 1:
        raise ConfigError(path, "use one of any_of, all_of or n_of", line=node.line, field=where)
    kind = next((k for k in RULE_KINDS if k.applies(rule)), None)
    if kind is None:
        raise ConfigError(path, "a rule needs any_of, all_of or n_of lexicons, a metric or repeat_back",
                          line=node.line, field=where)
    kind.check(rule, path, where)
    return replace(rule, kind=kind.name)


# --------------------------------------------------------------------------- rule kinds
@dataclass(frozen=True)
class RuleKind:
    """A kind of rule as the rulebook knows it: which rules are of it (the first kind whose test a rule
    meets) and what else such a rule must satisfy. The judge evaluates and explains each kind by name
    (:data:`qa_audio.judge.rules.KINDS`); adding a kind is one entry here and one there."""

    name: str
    applies: Callable[[Rule], bool]
    check: Callable[[Rule, Path, str], None]             # raises ConfigError (file, line, field)


def _check_metric(rule: Rule, path: Path, where: str) -> None:
    if rule.is_phrase_rule or rule.repeat_back:
        raise ConfigError(path, "a metric rule cannot also match phrases", line=rule.line, field=where)
    if rule.around:
        raise ConfigError(path, "around needs a phrase rule", line=rule.line, field=f"{where}.around")


def _check_nothing(rule: Rule, path: Path, where: str) -> None:
    return None


RULE_KINDS: tuple[RuleKind, ...] = (
    RuleKind("metric", lambda r: bool(r.metrics), _check_metric),
    RuleKind("repeat_back", lambda r: r.repeat_back is not None, _check_nothing),
    RuleKind("per_hold", lambda r: r.around is not None and r.is_phrase_rule, _check_nothing),
    RuleKind("phrase", lambda r: r.is_phrase_rule, _check_nothing),
)


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
        if cond.metric is not None and REGISTRY[cond.metric].party:
            raise sub.fail("metric", f"{cond.metric} is a party, not a number: a condition needs a number")
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
    if REGISTRY[check.name].party and (check.min is not None or check.max is not None):
        raise section.fail("min" if check.min is not None else "max",
                           f"{check.name} is a party, not a number: use equals")
    if not REGISTRY[check.name].party and check.equals is not None:
        raise section.fail("equals", f"{check.name} is a number ({REGISTRY[check.name].unit}): use min or max")
    return check


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


@dataclass(frozen=True)
class Rulebook:
    """The rulebook part of a config: its identity, rules, lexicons, and the clients' own configs."""

    name: str
    version: str
    rules: tuple[Rule, ...]
    lexicons: dict[str, Lexicon]
    hold_request_lexicon: str | None
    backchannel_lexicon: str | None
    asr_inventions_lexicon: str | None
    clients: dict[str, str]


def load_rulebook(top: _Section, root: _Node, *, extra_lexicons: tuple[str, ...] = ()) -> Rulebook:
    """The ``rulebook``, ``rules``, ``lexicons``, ``clients`` and ``*_lexicon`` entries of a config, with
    ``extra_lexicons`` (what the settings name, e.g. ``channels.agent_evidence``) loaded too."""
    path = top.path
    book = top.section("rulebook", required=True)
    name = book.get("name", str)
    version = str(book.get("version", (str, int, float)))
    book.check_unknown()
    lex_dirs = _lexicon_dirs(top.section("lexicons", required=True))
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
    special = {key: top.get(key, (str, type(None)), None)
               for key in ("hold_request_lexicon", "backchannel_lexicon", "asr_inventions_lexicon")}
    names = {n for rule in rules for n in rule.lexicons} | {n for n in special.values() if n} | set(extra_lexicons)
    lexicons = {}
    for lex_name in sorted(names):
        if not re.fullmatch(r"[a-z0-9_]+", lex_name):
            raise ConfigError(path, f"invalid lexicon name {lex_name!r} (use a-z, 0-9, _)", field="rules")
        found = [d / f"{lex_name}.txt" for d in lex_dirs if (d / f"{lex_name}.txt").is_file()]
        lexicons[lex_name] = load_lexicon(found[0] if found else lex_dirs[0] / f"{lex_name}.txt", lex_name)
    return Rulebook(name=name, version=version, rules=rules, lexicons=lexicons, clients=clients, **special)


def _lexicon_dirs(section: _Section) -> list[Path]:
    """``lexicons.dir``: one folder or a list searched in order, each relative to the file that names it."""
    dir_node = section.raw("dir")
    if dir_node is None:
        raise section.fail("dir", "expected a folder, or a list of folders searched in order")
    dirs: list[_Node] = dir_node.value if isinstance(dir_node.value, list) else [dir_node]
    if not dirs or not all(isinstance(d.value, str) and d.value for d in dirs):
        raise section.fail("dir", "expected a folder, or a list of folders searched in order")
    section.check_unknown()
    return [((d.origin or section.path).parent / d.value).resolve() for d in dirs]
