"""Typed records of what the results store holds: a stored result, its findings, supervisors' reviews.

The store reads its JSON and rows into these; review, show, export and the review pages work on
them; ``to_dict`` is the JSON edge and gives back the result contract unchanged. A supervisor's
decision is applied to a finding record (:meth:`FindingRecord.decided`) and the final score comes
from the one scoring function (:func:`qa_audio.judge.score.score_findings`).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from qa_audio.config import ScoreSection, ScoreSettings
from qa_audio.judge.score import Score, SectionScore, score_findings
from qa_audio.speech.words import Utterance

DECISIONS = ("confirm", "overturn")
STATUSES = ("pass", "fail", "n/a")


@dataclass(frozen=True)
class Review:
    """A supervisor's decision on one finding."""

    decision: str              # "confirm" or "overturn"
    reason: str
    reviewer: str
    at: str | None = None      # when it was stored (UTC, ISO 8601); None before it is

    @property
    def overturned(self) -> bool:
        return self.decision == "overturn"

    def to_dict(self) -> dict:
        return {"decision": self.decision, "reason": self.reason, "reviewer": self.reviewer, "at": self.at}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Review:
        return cls(str(data["decision"]), str(data.get("reason") or ""), str(data.get("reviewer") or ""),
                   data.get("at"))


_FINDING_KEYS = frozenset({"rule", "passed", "deduction", "evidence", "status", "title", "severity", "weight",
                           "redline", "low_confidence", "detail", "enabled", "review", "title_en", "section"})


@dataclass(frozen=True)
class FindingRecord:
    """One finding of a stored result, as the checker made it or as a supervisor decided it."""

    rule: str
    status: str                                    # "pass", "fail" or "n/a"
    deduction: float
    weight: float = 0.0
    enabled: bool = True
    redline: bool = False
    low_confidence: bool = False
    title: str = ""
    severity: str = ""
    detail: str = ""
    evidence: tuple[Mapping[str, Any], ...] = ()   # the contract's evidence items, as stored
    review: Review | None = None
    checker_status: str | None = None              # the checker's own status (set by :meth:`decided`)
    title_en: str = ""
    section: str | None = None                     # its scorecard section (None: the rulebook has none)
    extra: Mapping[str, Any] = field(default_factory=dict)   # keys a newer writer added

    @property
    def passed(self) -> bool | None:
        return None if self.status == "n/a" else self.status == "pass"

    @property
    def rule_id(self) -> str:
        return self.rule

    @property
    def scored(self) -> bool:
        return self.enabled

    @property
    def original_status(self) -> str:
        """What the checker found, before any review."""
        return self.checker_status or self.status

    def decided(self, review: Review | None) -> FindingRecord:
        """This finding with a supervisor's decision applied.

        Confirmed: it stands as found and stops being doubtful. Overturned: a failure becomes a pass
        (its deduction and red line dropped); a pass becomes a failure at the rule's weight (nothing if
        the rule is disabled).
        """
        if review is None:
            return self
        out = replace(self, review=review, checker_status=self.status, low_confidence=False)
        if not review.overturned:
            return out
        if self.status == "fail":
            return replace(out, status="pass", deduction=0.0, redline=False)
        if self.status == "pass":
            return replace(out, status="fail", deduction=self.weight if self.enabled else 0.0)
        return out

    def to_dict(self) -> dict:
        out = {"rule": self.rule, "passed": self.passed, "deduction": self.deduction,
               "evidence": [dict(e) for e in self.evidence], "status": self.status, "title": self.title,
               "title_en": self.title_en, "section": self.section, "severity": self.severity, "weight": self.weight,
               "redline": self.redline,
               "low_confidence": self.low_confidence, "detail": self.detail, "enabled": self.enabled,
               **self.extra}
        if self.review is not None:
            out["review"] = self.review.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FindingRecord:
        status = str(data["status"])
        if status not in STATUSES:
            raise ValueError(f"finding {data.get('rule')!r}: status {status!r} is not one of {', '.join(STATUSES)}")
        review = data.get("review")
        return cls(str(data["rule"]), status, float(data["deduction"]), float(data.get("weight") or 0.0),
                   bool(data.get("enabled", True)), bool(data.get("redline")), bool(data.get("low_confidence")),
                   str(data.get("title") or ""), str(data.get("severity") or ""), str(data.get("detail") or ""),
                   tuple(data.get("evidence") or ()), Review.from_dict(review) if review else None,
                   title_en=str(data.get("title_en") or ""), section=data.get("section") or None,
                   extra={k: v for k, v in data.items() if k not in _FINDING_KEYS})


_RESULT_KEYS = frozenset({"call_id", "score", "verdict", "audio", "timing", "findings", "transcript", "versions",
                          "settings", "verdict_reason", "error", "sections"})


@dataclass(frozen=True)
class StoredResult:
    """One call's result as stored: the result contract, typed where the product reads it.

    ``audio``, ``timing``, ``versions`` and ``settings`` are the contract's sections as they were
    written (read-only mappings).
    """

    call_id: str
    score: float | None
    verdict: str
    audio: Mapping[str, Any]
    timing: Mapping[str, Any]
    findings: tuple[FindingRecord, ...]
    transcript: tuple[Utterance, ...]
    versions: Mapping[str, Any]
    settings: Mapping[str, Any]
    verdict_reason: str | None = None
    error: str | None = None
    sections: tuple[SectionScore, ...] = ()       # the checker's score per scorecard section
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def unscorable(self) -> bool:
        return self.verdict == "unscorable"

    @property
    def score_settings(self) -> ScoreSettings:
        """The pass mark, red-line score and scorecard sections this result was scored with."""
        scoring = self.settings.get("scoring", {})
        sections = tuple(ScoreSection(str(s["id"]), str(s.get("title") or s["id"]), str(s.get("title_en") or ""),
                                      float(s["weight"])) for s in scoring.get("sections") or ())
        return ScoreSettings(pass_score=float(scoring.get("pass_score", 85.0)),
                             redline_score=float(scoring.get("redline_score", 0.0)), sections=sections)

    def finding(self, rule: str) -> FindingRecord | None:
        return next((f for f in self.findings if f.rule == rule), None)

    def decided(self, reviews: Mapping[str, Review]) -> tuple[FindingRecord, ...]:
        """The findings with the supervisors' decisions applied."""
        return tuple(f.decided(reviews.get(f.rule)) for f in self.findings)

    def final(self, reviews: Mapping[str, Review]) -> Score | None:
        """The score after review (None for an unscorable call: no review makes it pass)."""
        if self.unscorable:
            return None
        return score_findings(self.decided(reviews), self.score_settings)

    def final_sections(self, reviews: Mapping[str, Review]) -> tuple[SectionScore, ...]:
        """The score per section after review (the checker's own when nobody reviewed; none, unscorable)."""
        final = self.final(reviews)
        return final.sections if final is not None else self.sections

    def to_dict(self) -> dict:
        out: dict = {"call_id": self.call_id, "score": self.score, "verdict": self.verdict, "audio": dict(self.audio),
                     "timing": dict(self.timing), "findings": [f.to_dict() for f in self.findings],
                     "transcript": [u.to_dict() for u in self.transcript], "versions": dict(self.versions),
                     "settings": dict(self.settings)}
        if self.verdict_reason is not None:
            out["verdict_reason"] = self.verdict_reason
        if self.error is not None:
            out["error"] = self.error
        if self.sections or "sections" in self.settings.get("scoring", {}):
            out["sections"] = [s.to_dict() for s in self.sections]
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StoredResult:
        score = data.get("score")
        return cls(str(data["call_id"]), None if score is None else float(score), str(data["verdict"]),
                   data.get("audio") or {}, data.get("timing") or {},
                   tuple(FindingRecord.from_dict(f) for f in data.get("findings") or ()),
                   tuple(Utterance.from_dict(u) for u in data.get("transcript") or ()),
                   data.get("versions") or {}, data.get("settings") or {}, data.get("verdict_reason"),
                   data.get("error"), tuple(_section_score(s) for s in data.get("sections") or ()),
                   {k: v for k, v in data.items() if k not in _RESULT_KEYS})


def _section_score(data: Mapping[str, Any]) -> SectionScore:
    score = data.get("score")
    return SectionScore(str(data["id"]), str(data.get("title") or data["id"]), str(data.get("title_en") or ""),
                        float(data.get("weight") or 0.0), float(data.get("lost") or 0.0),
                        None if score is None else float(score), tuple(data.get("rules") or ()),
                        tuple(data.get("failed") or ()))


APPEAL_STATUSES = ("open", "upheld", "overturned")


@dataclass(frozen=True)
class Appeal:
    """An agent's appeal (申诉) against one finding of a call's current result, and its ruling."""

    id: int
    call_pk: int
    call_id: str
    result_id: int
    rule: str
    agent: str                       # the account that appealed
    reason: str
    filed_at: str
    disputed_by: str | None          # who made the decision appealed against (None: the checker)
    status: str                      # open, upheld or overturned
    ruled_by: str | None = None
    ruling_reason: str | None = None
    ruled_at: str | None = None
    score_before: float | None = None
    score_after: float | None = None
    agent_id: str | None = None      # the call's agent and team (for lists)
    team: str | None = None

    @property
    def open(self) -> bool:
        return self.status == "open"

    @property
    def status_zh(self) -> str:
        return {"open": "待裁决", "upheld": "维持原判", "overturned": "申诉成立"}.get(self.status, self.status)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class CalibrationCall:
    call_pk: int
    call_id: str
    result_id: int


@dataclass(frozen=True)
class CalibrationSession:
    """Calls that chosen supervisors judge blind, to measure how alike they judge (and the checker)."""

    id: int
    name: str
    created_by: str
    created_at: str
    members: tuple[str, ...]
    calls: tuple[CalibrationCall, ...]
    labels: tuple[tuple[int, str, str, str], ...] = ()    # (call_pk, reviewer, rule, "pass" | "fail")

    @cached_property
    def submitted(self) -> frozenset[tuple[int, str]]:
        """The (call_pk, reviewer) pairs handed in."""
        return frozenset((pk, who) for pk, who, _, _ in self.labels)

    def has_submitted(self, reviewer: str, call_pk: int | None = None) -> bool:
        """Whether ``reviewer`` handed in this call (or, with no call, every call of the session)."""
        pks = [call_pk] if call_pk is not None else [c.call_pk for c in self.calls]
        return all((pk, reviewer) in self.submitted for pk in pks)

    def progress(self) -> dict[str, int]:
        """reviewer → calls handed in."""
        return {m: sum((c.call_pk, m) in self.submitted for c in self.calls) for m in self.members}
