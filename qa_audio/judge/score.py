"""Turn findings into a 0-100 score, a score per scorecard section, and a verdict."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from qa_audio.config import ScoreSection, ScoreSettings

VERDICTS = ("pass", "fail", "review", "unscorable", "error")


@dataclass(frozen=True)
class SectionScore:
    """One scorecard section of one call: the points it lost (at most its weight) and its 0-100 score.

    ``score`` is None when every rule in it was n/a (or is a shadow rule): nothing in it was judged.
    A red line failed in the section sets its score to 0.
    """

    id: str
    title: str
    title_en: str
    weight: float
    lost: float                  # points deducted in it, capped at its weight (扣完为止)
    score: float | None          # 100 × (weight − lost) / weight
    rules: tuple[str, ...]       # the scored rules in it
    failed: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"id": self.id, "title": self.title, "title_en": self.title_en, "weight": self.weight,
                "lost": self.lost, "score": self.score, "rules": list(self.rules), "failed": list(self.failed)}


@dataclass(frozen=True)
class Score:
    score: float | None    # None when the call is unscorable
    verdict: str           # "pass", "fail", "review" or "unscorable"
    redline: bool
    reason: str
    sections: tuple[SectionScore, ...] = ()


def unscorable(reason: str, settings: ScoreSettings | None = None) -> Score:
    """A call nobody can be judged on (no speech, or no agent speech): no score, never a pass."""
    empty = tuple(SectionScore(s.id, s.title, s.title_en, s.weight, 0.0, None, (), ())
                  for s in (settings.sections if settings else ()))
    return Score(None, "unscorable", False, reason, empty)


class Scorable(Protocol):
    """What scoring reads of a finding: a judged one (:class:`~qa_audio.judge.rules.Finding`) or one as a
    supervisor decided it (:class:`~qa_audio.results.review.DecidedFinding`)."""

    @property
    def rule_id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def deduction(self) -> float: ...
    @property
    def redline(self) -> bool: ...
    @property
    def low_confidence(self) -> bool: ...
    @property
    def section(self) -> str | None: ...
    @property
    def scored(self) -> bool: ...


def _lost(findings: Sequence[Scorable], section: ScoreSection | None) -> float:
    """Points the failed findings cost; inside a section, at most its weight."""
    lost = sum(f.deduction for f in findings if f.status == "fail")
    return min(lost, section.weight) if section is not None else lost


def _raw(findings: Sequence[Scorable], settings: ScoreSettings) -> tuple[float, bool]:
    failed = [f for f in findings if f.status == "fail"]
    if any(f.redline for f in failed):
        return settings.redline_score, True
    known = {s.id for s in settings.sections}
    total = _lost([f for f in failed if f.section not in known], None)
    for section in settings.sections:
        total += _lost([f for f in failed if f.section == section.id], section)
    return max(0.0, 100.0 - total), False


def section_scores(findings: Sequence[Scorable], settings: ScoreSettings) -> tuple[SectionScore, ...]:
    """Each scorecard section's lost points and 0-100 score, in the rulebook's order."""
    out = []
    for section in settings.sections:
        mine = [f for f in findings if f.section == section.id and f.scored]
        judged = [f for f in mine if f.status != "n/a"]
        failed = tuple(f.rule_id for f in judged if f.status == "fail")
        lost = _lost(judged, section)
        if not judged:
            score = None
        elif any(f.redline for f in judged if f.status == "fail") or section.weight == 0:
            score = 0.0 if failed else 100.0
        else:
            score = round(100.0 * (section.weight - lost) / section.weight, 1)
        out.append(SectionScore(section.id, section.title, section.title_en, section.weight, round(lost, 2),
                                score, tuple(f.rule_id for f in mine), failed))
    return tuple(out)


def score_findings(findings: Sequence[Scorable], settings: ScoreSettings) -> Score:
    """100 minus every failed rule's weight (a section costing at most its own weight); a red-line hit
    fails the call outright.

    A failing call whose failure rests on low-confidence ASR hits (it would pass
    without them) gets the verdict "review" so a supervisor listens first.
    """
    sections = section_scores(findings, settings)
    score, redline = _raw(findings, settings)
    if not redline and score >= settings.pass_score:
        return Score(round(score, 2), "pass", False, f"score {score:g} ≥ pass mark {settings.pass_score:g}",
                     sections)
    certain = [f for f in findings if not (f.status == "fail" and f.low_confidence)]
    score_certain, redline_certain = _raw(certain, settings)
    if not redline_certain and score_certain >= settings.pass_score:
        return Score(round(score, 2), "review", redline,
                     "fails only on low-confidence ASR hits: a supervisor should listen", sections)
    reason = "red-line rule failed" if redline else f"score {score:g} < pass mark {settings.pass_score:g}"
    return Score(round(score, 2), "fail", redline, reason, sections)
