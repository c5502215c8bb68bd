"""Turn findings into a 0-100 score and a verdict."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from qa_audio.config import ScoreSettings

VERDICTS = ("pass", "fail", "review", "unscorable", "error")


@dataclass(frozen=True)
class Score:
    score: float | None    # None when the call is unscorable
    verdict: str           # "pass", "fail", "review" or "unscorable"
    redline: bool
    reason: str


def unscorable(reason: str) -> Score:
    """A call nobody can be judged on (no speech, or no agent speech): no score, never a pass."""
    return Score(None, "unscorable", False, reason)


class Scorable(Protocol):
    """What scoring reads of a finding: a judged one (:class:`~qa_audio.judge.rules.Finding`) or one as a
    supervisor decided it (:class:`~qa_audio.results.review.DecidedFinding`)."""

    @property
    def status(self) -> str: ...
    @property
    def deduction(self) -> float: ...
    @property
    def redline(self) -> bool: ...
    @property
    def low_confidence(self) -> bool: ...


def _raw(findings: Sequence[Scorable], settings: ScoreSettings) -> tuple[float, bool]:
    failed = [f for f in findings if f.status == "fail"]
    if any(f.redline for f in failed):
        return settings.redline_score, True
    return max(0.0, 100.0 - sum(f.deduction for f in failed)), False


def score_findings(findings: Sequence[Scorable], settings: ScoreSettings) -> Score:
    """100 minus every failed rule's weight; a red-line hit fails the call outright.

    A failing call whose failure rests on low-confidence ASR hits (it would pass
    without them) gets the verdict "review" so a supervisor listens first.
    """
    score, redline = _raw(findings, settings)
    if not redline and score >= settings.pass_score:
        return Score(round(score, 2), "pass", False, f"score {score:g} ≥ pass mark {settings.pass_score:g}")
    certain = [f for f in findings if not (f.status == "fail" and f.low_confidence)]
    score_certain, redline_certain = _raw(certain, settings)
    if not redline_certain and score_certain >= settings.pass_score:
        return Score(round(score, 2), "review", redline,
                     "fails only on low-confidence ASR hits: a supervisor should listen")
    reason = "red-line rule failed" if redline else f"score {score:g} < pass mark {settings.pass_score:g}"
    return Score(round(score, 2), "fail", redline, reason)
