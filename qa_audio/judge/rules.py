"""Judge the rulebook on one call: phrase rules, per-hold rules, conditions and timing thresholds.

Operators, all data in ``configs/*.yaml`` (see README "Rule operators"): any / all /
n-of lexicons with exclusions; role; a window from answer, from call start or
before the end; the first or last N turns; once per hold (the turns before or
after it); only after or before another lexicon's hit; counts; repeat-back of a
number the customer gave; thresholds on timing metrics; conditions (``when``)
under which a rule applies at all. A rule that does not apply is n/a, never a
pass. Phrase matching itself is in :mod:`qa_audio.judge.matching`.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any

from qa_audio.config import Condition, Config, Rule
from qa_audio.config.metrics import measure
from qa_audio.i18n import N_, PARTIES, Message
from qa_audio.judge.matching import Hit, PhraseMatcher, Prepared, evidence_dict, join_words
from qa_audio.judge.timing import Timing
from qa_audio.speech.words import Utterance

__all__ = ["Finding", "PhraseMatcher", "evaluate", "evaluate_metric", "evidence_dict", "hold_cues", "join_words"]

MAX_EVIDENCE = 3
EVENT_EDGE_S = 0.5      # an utterance ending this close after a hold's start still counts as before it


@dataclass(frozen=True)
class Finding:
    rule: Rule
    status: str               # "pass", "fail" or "n/a"
    deduction: float
    redline: bool
    low_confidence: bool
    explanation: Message     # why, in words: English in the result's ``detail``, every language in ``detail_i18n``
    evidence: tuple[dict, ...] = field(default=())

    @property
    def detail(self) -> str:
        return str(self.explanation)

    @property
    def passed(self) -> bool | None:
        return None if self.status == "n/a" else self.status == "pass"

    @property
    def rule_id(self) -> str:
        return self.rule.id

    @property
    def section(self) -> str | None:
        return self.rule.section

    @property
    def scored(self) -> bool:
        return self.rule.enabled

    def to_dict(self) -> dict:
        return {"rule": self.rule.id, "passed": self.passed, "deduction": self.deduction,
                "evidence": list(self.evidence), "status": self.status, "title": self.rule.title,
                "title_en": self.rule.title_en, "section": self.rule.section,
                "severity": self.rule.severity, "weight": self.rule.weight, "redline": self.redline,
                "low_confidence": self.low_confidence, "detail": self.detail,
                "detail_i18n": self.explanation.to_dict(), "enabled": self.rule.enabled}


def _msg(template: str, **params: object) -> Message:
    return Message(template, params)


def _na(rule: Rule, detail: Message) -> Finding:
    return Finding(rule, "n/a", 0.0, False, False, detail)


def _pass(rule: Rule, detail: Message, evidence=()) -> Finding:
    return Finding(rule, "pass", 0.0, False, False, detail, tuple(evidence))


def _fail(rule: Rule, detail: Message, evidence=(), *, redline: bool = False,
          low_confidence: bool = False) -> Finding:
    """A failure; a disabled rule (``enabled: false``) is reported but deducts nothing."""
    if not rule.enabled:
        return Finding(rule, "fail", 0.0, False, False, _msg(N_("%(detail)s (rule disabled: not scored)"),
                                                              detail=detail), tuple(evidence))
    return Finding(rule, "fail", rule.weight, redline or rule.severity == "redline", low_confidence, detail,
                   tuple(evidence))


@dataclass(frozen=True)
class CallView:
    """What the rules see of one call: prepared utterances in time order, timing and call metadata."""

    preps: tuple[Prepared, ...]
    timing: Timing | None
    facts: dict

    @property
    def answer_s(self) -> float:
        return (self.timing.answer_s if self.timing is not None and self.timing.answer_s is not None
                else (self.preps[0].utterance.start_s if self.preps else 0.0))

    def by_role(self, role: str) -> list[Prepared]:
        return [p for p in self.preps if role == "any" or p.utterance.channel in (role, "mixed")]


def _window(rule: Rule, preps: list[Prepared], view: CallView) -> list[Prepared]:
    window = rule.window
    scope = preps[window.skip_first:]
    if window.turns == "first" and window.n is not None:
        scope = scope[: window.n]
    elif window.turns == "last" and window.n is not None:
        scope = scope[-window.n:]
    if window.within_s is not None:
        if window.start == "end":
            last = max((p.utterance.end_s for p in view.preps), default=0.0)
            scope = [p for p in scope if p.utterance.end_s > last - window.within_s]
        else:
            anchor = view.answer_s if window.start == "answer" else 0.0
            scope = [p for p in scope if p.utterance.start_s < anchor + window.within_s and p.utterance.end_s > anchor]
    return scope


UNRECOGNISED = "(speech, no words recognised)"


def _utterance_evidence(preps: list[Prepared], *, latest_first: bool = False) -> tuple[dict, ...]:
    chosen = list(reversed(preps))[:MAX_EVIDENCE] if latest_first else preps[:MAX_EVIDENCE]
    return tuple(
        evidence_dict(p.utterance.start_s, p.utterance.end_s, p.utterance.channel, p.utterance.text or UNRECOGNISED)
        for p in sorted(chosen, key=lambda p: p.utterance.start_s)
    )


def _distinct(hits: list[Hit]) -> list[Hit]:
    """Hits in time order, one per stretch of speech (two phrases matching the same words count once)."""
    out: list[Hit] = []
    for hit in sorted(hits, key=lambda h: (h.start_s, -(h.end_s - h.start_s))):
        if out and hit.start_s < out[-1].end_s and hit.channel == out[-1].channel:
            continue
        out.append(hit)
    return out


def _anchors(rule: Rule, view: CallView, matcher: PhraseMatcher) -> tuple[Hit | None, Hit | None]:
    """The first hits of the rule's ``after`` and ``before`` lexicons (None when not set or never said)."""
    after, before = (_first_hit(view.by_role(a.role), a.lexicon, matcher) if a is not None else None
                     for a in (rule.after, rule.before))
    return after, before


def _hits(
    rule: Rule, scope: list[Prepared], anchors: tuple[Hit | None, Hit | None], matcher: PhraseMatcher
) -> dict[str, list[Hit]]:
    """Each deciding lexicon's hits in scope, after exclusions and before/after anchors."""
    after, before = anchors
    low_s, high_s = float("-inf"), float("inf")
    if rule.after is not None:
        low_s = after.end_s - EVENT_EDGE_S if after else float("inf")  # never said: nothing is after
    if rule.before is not None:
        high_s = before.start_s + EVENT_EDGE_S if before else float("inf")  # never said: everything is before
    found: dict[str, list[Hit]] = {name: [] for name in rule.phrase_lexicons}
    for prep in scope:
        # exclusions are specific phrases: exact or homophone only, never fuzzy
        excluded = [h for ex in rule.exclude for h in matcher.find(prep, ex, min_similarity=1.0)]
        for name in rule.phrase_lexicons:
            for hit in matcher.find(prep, name, min_similarity=rule.min_similarity):
                if any(e.start_s < hit.end_s and hit.start_s < e.end_s for e in excluded):
                    continue
                if low_s <= hit.start_s <= high_s:
                    found[name].append(hit)
    return found


def _first_hit(preps: list[Prepared], lexicon: str, matcher: PhraseMatcher) -> Hit | None:
    for prep in preps:
        hits = matcher.find(prep, lexicon)
        if hits:
            return min(hits, key=lambda h: h.start_s)
    return None


def _judge_present(
    rule: Rule, found: dict[str, list[Hit]], scope: list[Prepared], where: Message
) -> tuple[bool, Message, tuple[dict, ...]]:
    if rule.all_of:
        missing = [n for n in rule.all_of if not found[n]]
        ok = not missing
        detail = (_msg(N_("all of %(lexicons)s in %(where)s"), lexicons=", ".join(rule.all_of), where=where) if ok
                  else _msg(N_("missing %(lexicons)s in %(where)s"), lexicons=", ".join(missing), where=where))
    elif rule.n_of:
        have = [n for n in rule.n_of if found[n]]
        ok = len(have) >= rule.n_of_count
        detail = _msg(N_("%(have)s of %(lexicons)s in %(where)s (needs %(needs)s)"), have=len(have),
                      lexicons=", ".join(rule.n_of), where=where, needs=rule.n_of_count)
    else:
        ok = any(found[n] for n in rule.any_of)
        detail = _msg(N_("found %(lexicons)s in %(where)s") if ok else N_("missing %(lexicons)s in %(where)s"),
                      lexicons=" / ".join(rule.any_of), where=where)
    if ok and rule.min_count > 1:
        count = len(_distinct([h for hits in found.values() for h in hits]))
        ok = count >= rule.min_count
        detail = _msg(N_("%(detail)s; %(count)s hit(s), needs %(needs)s"), detail=detail, count=count,
                      needs=rule.min_count)
    if ok:
        # per lexicon its first hit, an exact or homophone one before any fuzzy one: a pass rests on the
        # surest hit (and only a pass resting on fuzzy hits alone is re-checked against the audio)
        firsts = sorted((min(v, key=lambda h: (h.how == "fuzzy", h.start_s)) for v in found.values() if v),
                        key=lambda h: h.start_s)
        return True, detail, tuple(h.evidence() for h in firsts)
    return False, detail, _utterance_evidence(scope, latest_first=rule.window.turns == "last")


def _phrase_finding(rule: Rule, scope: list[Prepared], view: CallView, matcher: PhraseMatcher,
                    where: Message) -> Finding:
    anchors = _anchors(rule, view, matcher)
    found = _hits(rule, scope, anchors, matcher)
    if rule.expect == "absent":
        hits = _distinct([h for hits in found.values() for h in hits])
        if len(hits) <= rule.max_count:
            return _pass(rule, _msg(N_("%(n)s hit(s) in %(where)s (allowed up to %(max)s)"), n=len(hits),
                                    where=where, max=rule.max_count) if hits
                         else _msg(N_("none of %(lexicons)s in %(where)s"), lexicons=", ".join(rule.phrase_lexicons),
                                   where=where))
        redline = any(h.lexicon in rule.redline_lexicons for h in hits)
        lowconf = all(h.min_probability < matcher.settings.low_confidence for h in hits)
        said = [_msg(N_("%(matched)r ~ %(phrase)r (%(how)s)"), matched=h.matched, phrase=h.phrase, how=h.how)
                for h in hits[:MAX_EVIDENCE]]
        return _fail(rule, _msg(N_("said %(said)s"), said=said), [h.evidence() for h in hits], redline=redline,
                     low_confidence=lowconf)
    if not scope:
        return _fail(rule, _msg(N_("no speech of the %(role)s in %(where)s"), role=_party(rule.role), where=where))
    after = anchors[0]  # a missing phrase is shown where it was due: after the anchor
    scope_shown = [p for p in scope if p.utterance.start_s >= after.start_s] if after else scope
    ok, detail, evidence = _judge_present(rule, found, scope_shown or scope, where)
    if ok:
        return _pass(rule, detail, evidence)
    return _fail(rule, detail, evidence)


def _per_hold(rule: Rule, view: CallView, matcher: PhraseMatcher) -> Finding:
    """Judge the rule on the turns before (or after) each hold; it fails if it fails at any hold."""
    around = rule.around
    assert around is not None
    holds = [
        h for h in (view.timing.holds if view.timing is not None else ()) if h.end_s - h.start_s > around.min_duration_s
    ]
    if not holds:
        return _na(rule, _msg(N_("no hold longer than %(s)s s on this call"), s=f"{around.min_duration_s:g}")
                   if around.min_duration_s else _msg(N_("no hold on this call")))
    role = view.by_role(rule.role)
    failures: list[Finding] = []
    passes: list[Finding] = []
    for hold in holds:
        if around.side == "before":
            scope = [p for p in role if p.utterance.end_s <= hold.start_s + EVENT_EDGE_S][-around.turns :]
        else:
            scope = [p for p in role if p.utterance.start_s >= hold.end_s - EVENT_EDGE_S][: around.turns]
        where = _msg(N_("the last %(n)s turn(s) of the %(role)s before the hold at %(start)s-%(end)s s")
                     if around.side == "before" else
                     N_("the first %(n)s turn(s) of the %(role)s after the hold at %(start)s-%(end)s s"),
                     n=around.turns, role=_party(rule.role), start=f"{hold.start_s:.0f}", end=f"{hold.end_s:.0f}")
        finding = _phrase_finding(rule, scope, view, matcher, where)
        if finding.status == "fail" and not scope:
            finding = Finding(
                rule,
                "fail",
                finding.deduction,
                finding.redline,
                False,
                finding.explanation,
                (evidence_dict(hold.start_s, hold.end_s, "both", f"hold {hold.start_s:.0f}-{hold.end_s:.0f} s"),),
            )
        (failures if finding.status == "fail" else passes).append(finding)
    if not failures:
        return _pass(rule, _msg(N_("%(n)s hold(s): %(details)s"), n=len(holds),
                                details=[f.explanation for f in passes]),
                     tuple(e for f in passes for e in f.evidence)[:MAX_EVIDENCE])
    first = failures[0]
    detail = _msg(N_("%(bad)s of %(n)s hold(s) fail: %(details)s"), bad=len(failures), n=len(holds),
                  details=[f.explanation for f in failures])
    return _fail(
        rule,
        detail,
        [e for f in failures for e in f.evidence][:MAX_EVIDENCE],
        redline=first.redline,
        low_confidence=all(f.low_confidence for f in failures),
    )


_DIGITS = re.compile(r"\d+")


def _shared_digits(a: str, b: str) -> int:
    """Length of the longest run of digits two numbers share (ASR drops or splits digits on both sides)."""
    match = SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b))
    return match.size


def _repeat_back(rule: Rule, view: CallView, matcher: PhraseMatcher) -> Finding:
    """The agent repeats back a number the customer gave: a later agent turn shares a run of at least
    ``min_digits`` of its digits (so one misheard or dropped digit on either side does not fail it)."""
    spec = rule.repeat_back
    assert spec is not None
    hits = [(p, h) for p in view.by_role("customer") for h in matcher.find(p, spec.lexicon)]
    numbers = [(p, h, "".join(_DIGITS.findall(matcher.normalizer.display(h.matched)))) for p, h in hits]
    given = [(p, h, d) for p, h, d in numbers if len(d) >= spec.min_digits]
    if not given:
        return _na(rule, _msg(N_("the customer gave no number (%(lexicon)s)"), lexicon=spec.lexicon))
    agent = view.by_role(rule.role)
    missed = []
    for prep, hit, digits in given:
        later = ["".join(_DIGITS.findall(p.text)) for p in agent if p.utterance.start_s >= hit.start_s]
        if not any(_shared_digits(digits, said) >= spec.min_digits for said in later if said):
            missed.append((prep, hit, digits))
    if not missed:
        return _pass(rule, _msg(N_("the %(role)s repeated back %(n)s number(s) the customer gave"),
                                role=_party(rule.role), n=len(given)))
    detail = _listed([
        _msg(N_("no turn of the %(role)s after %(at)s s repeats %(digits)s+ digits of …%(tail)s"),
             role=_party(rule.role), at=f"{h.start_s:.0f}", digits=spec.min_digits, tail=d[-spec.min_digits:])
        for _, h, d in missed])
    return _fail(rule, detail, [h.evidence() for _, h, _ in missed])


def _condition_met(cond: Condition, view: CallView, matcher: PhraseMatcher) -> bool | None:
    if cond.said is not None:
        return _first_hit(view.by_role(cond.role), cond.said, matcher) is not None
    if cond.metric is None:
        return None
    value, _ = _metric_value(cond.metric, view.timing, view.facts)
    if value is None:
        return None
    return (cond.above is None or value > cond.above) and (cond.below is None or value < cond.below)


def evaluate_rule(rule: Rule, view: CallView, *, matcher: PhraseMatcher) -> Finding:
    """Judge one rule on one call."""
    if view.timing is not None and view.timing.answered is False:
        return _na(rule, _msg(N_("the call was not answered")))
    for cond in rule.when:
        met = _condition_met(cond, view, matcher)
        if met is None:
            return _na(rule, _msg(N_("applies only when %(condition)s: cannot be measured on this call"),
                                  condition=cond.message()))
        if not met:
            return _na(rule, _msg(N_("applies only when %(condition)s"), condition=cond.message()))
    return kind_of(rule).evaluate(rule, view, matcher)


def _metric_value(name: str, timing: Any, facts: dict | None = None) -> tuple[Any, list[dict]]:
    """The value of a timing metric (None when it cannot be measured) and the evidence that shows it."""
    value, shown = measure(name, timing, facts)
    return value, [evidence_dict(start, end, channel, text) for start, end, channel, text in shown]


def evaluate_metric(rule: Rule, timing, facts: dict | None = None) -> Finding:
    """Thresholds on timing metrics (or call metadata): the rule fails when any check fails."""
    if timing is None or timing.answered is False:
        return _na(rule, _msg(N_("the call was not answered")))
    details: list[Message] = []
    evidence: list[dict] = []
    failed = False
    for check in rule.metrics:
        value, shown_by = _metric_value(check.name, timing, facts)
        if value is None:
            return _na(rule, _msg(N_("%(metric)s cannot be measured on this call"), metric=check.name))
        bad = (
            (check.max is not None and value > check.max)
            or (check.min is not None and value < check.min)
            or (check.equals is not None and value != check.equals)
        )
        shown = f"{value:.2f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)
        details.append(_msg(N_("%(metric)s = %(value)s (expected %(expected)s)"), metric=check.name, value=shown,
                            expected=check.message()))
        if bad:
            failed = True
            evidence += shown_by
    detail = _listed(details)
    if not failed:
        return _pass(rule, detail)
    return _fail(rule, detail, evidence[:MAX_EVIDENCE])


def evaluate(
    config: Config, utterances: list[Utterance], *, matcher: PhraseMatcher, timing=None, facts: dict | None = None
) -> list[Finding]:
    """Every rule of the rulebook on one call. ``facts`` is the call's metadata (e.g. ``hangup_side``)."""
    preps = tuple(matcher.prepare(u) for u in sorted(utterances, key=lambda u: u.start_s))
    view = CallView(preps, timing, dict(facts or {}))
    return [evaluate_rule(rule, view, matcher=matcher) for rule in config.rules]


def _party(role: str) -> Message:
    return Message(PARTIES.get(role, role))


def _listed(parts: list[Message]) -> Message:
    """Several explanations as one (joined by the reader's separator)."""
    return _msg(N_("%(parts)s"), parts=parts)


def hold_cues(config: Config, utterances: list[Utterance], *, matcher: PhraseMatcher) -> list[float]:
    """End times of agent utterances that ask the caller to hold."""
    name = config.hold_request_lexicon
    if not name:
        return []
    return [u.end_s for u in utterances if u.channel in ("agent", "mixed") and matcher.find(matcher.prepare(u), name)]


def _in_window(rule: Rule, view: CallView, matcher: PhraseMatcher) -> Finding:
    scope = _window(rule, view.by_role(rule.role), view)
    return _phrase_finding(rule, scope, view, matcher, rule.window.message())


@dataclass(frozen=True)
class KindJudge:
    """How the judge evaluates and explains one kind of rule (the kinds are the rulebook's
    :data:`~qa_audio.config.rulebook.RULE_KINDS`)."""

    evaluate: Callable[[Rule, CallView, PhraseMatcher], Finding]
    explain: Callable[[Rule], list[str]]


def _explain_metrics(rule: Rule) -> list[str]:
    return ["  measured from the audio: " + "; ".join(c.describe() for c in rule.metrics)
            + " (n/a when it cannot be measured)"]


def _explain_repeat_back(rule: Rule) -> list[str]:
    rb = rule.repeat_back
    assert rb is not None
    return [f"  after the customer gives a number ({rb.lexicon}), a later {rule.role} turn must repeat at "
            f"least {rb.min_digits} of its digits in a row"]


def _explain_phrases(rule: Rule) -> list[str]:
    verb = "must say" if rule.expect == "present" else "must not say"
    if rule.all_of:
        groups = "all of: " + ", ".join(rule.all_of)
    elif rule.n_of:
        groups = f"at least {rule.n_of_count} of: " + ", ".join(rule.n_of)
    else:
        groups = "any of: " + ", ".join(rule.any_of + tuple(n for n in rule.redline_lexicons if n not in rule.any_of))
    lines = [f"  the {rule.role} {verb} {groups}"]
    where = rule.around.describe() if rule.around else rule.window.describe()
    lines.append(f"  where: {where}" + (" (n/a when there is none)" if rule.around else ""))
    if rule.after:
        lines.append(f"  only after the {rule.after.role} first says something from {rule.after.lexicon}")
    if rule.before:
        lines.append(f"  only before the {rule.before.role} first says something from {rule.before.lexicon}")
    if rule.exclude:
        lines.append(f"  a hit overlapping {', '.join(rule.exclude)} does not count")
    if rule.expect == "absent" and rule.max_count:
        lines.append(f"  up to {rule.max_count} hit(s) allowed")
    if rule.expect == "present" and rule.min_count > 1:
        lines.append(f"  needs at least {rule.min_count} hits")
    return lines


KINDS: dict[str, KindJudge] = {
    "metric": KindJudge(lambda r, v, m: evaluate_metric(r, v.timing, v.facts), _explain_metrics),
    "repeat_back": KindJudge(_repeat_back, _explain_repeat_back),
    "per_hold": KindJudge(_per_hold, _explain_phrases),
    "phrase": KindJudge(_in_window, _explain_phrases),
}


def kind_of(rule: Rule) -> KindJudge:
    """How a rule of its kind is judged (the rulebook loader decided the kind)."""
    return KINDS[rule.kind]


def explain(rule: Rule, config: Config) -> str:
    """What a rule checks, in plain words, with its thresholds and phrase lists."""
    lines = [f"{rule.id}: {rule.title}", f"  source: {rule.source or '-'}"]
    if not rule.enabled:
        lines.append("  DISABLED: judged and reported (and backtested), never scored")
    for cond in rule.when:
        lines.append(f"  applies only when {cond.describe()}; otherwise n/a")
    lines += kind_of(rule).explain(rule)
    lines.append(f"  weight {rule.weight:g}, severity {rule.severity}"
                 + (" (a failure fails the call outright)" if rule.severity == "redline" else ""))
    if rule.redline_lexicons:
        lines.append(f"  red line (fails the call outright): {', '.join(rule.redline_lexicons)}")
    for name in rule.lexicons:
        lex = config.lexicons[name]
        lines.append(f"  {name} ({lex.path}): " + " | ".join(e.text for e in lex.entries))
    if rule.lexicons:
        m = config.matching
        lines.append(
            f"  matching: exact, homophone (same pinyin), or pinyin similarity ≥ {m.min_similarity:g} "
            f"for phrases of {m.exact_below_syllables}+ syllables; phrases under "
            f"{m.word_aligned_below_syllables} syllables only on word boundaries; a hit with ASR word "
            f"probability < {m.low_confidence:g} makes the verdict review"
        )
    return "\n".join(lines)
