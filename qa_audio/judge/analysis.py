"""What the analysis stages found in one call: the acoustics, the transcript and the phrases re-checked
against the audio. All a rulebook needs to judge the call; stored, so a new rulebook re-judges
without the audio."""
from __future__ import annotations

from dataclasses import dataclass, field

from qa_audio.judge.recheck import Check
from qa_audio.signal.diarize import Diarization
from qa_audio.signal.hangup import LineEnd
from qa_audio.signal.spans import Span
from qa_audio.speech.words import Utterance

__all__ = ["Acoustics", "Analysis"]


@dataclass(frozen=True)
class Analysis:
    """Acoustics and transcript of one call: all a rulebook needs to judge it."""

    audio: dict
    acoustics: Acoustics
    utterances: tuple[Utterance, ...]
    model: str
    key: str                  # analysis_key() of the settings that produced it
    stage_s: dict = field(default_factory=dict, compare=False)
    checks: tuple[Check, ...] = ()     # phrases re-checked against the audio (for the rulebook that asked)
    diarization: Diarization | None = None   # mono: the two voices' turns, named agent/customer

    def to_dict(self) -> dict:
        out = {"audio": self.audio, "acoustics": self.acoustics.to_dict(),
               "utterances": [u.to_dict(words=True) for u in self.utterances], "model": self.model,
               "key": self.key, "stage_s": self.stage_s, "checks": [c.to_dict() for c in self.checks]}
        if self.diarization is not None:
            out["diarization"] = self.diarization.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Analysis:
        return cls(data["audio"], Acoustics.from_dict(data["acoustics"]),
                   tuple(Utterance.from_dict(u) for u in data["utterances"]), data["model"], data["key"],
                   data.get("stage_s", {}), tuple(Check.from_dict(c) for c in data.get("checks", ())),
                   Diarization.from_dict(data["diarization"]) if data.get("diarization") else None)


@dataclass(frozen=True)
class Acoustics:
    """What the signal alone shows: speech per party, ringback, tones and music."""

    duration_s: float
    roles: dict
    regions: dict
    ring_bursts: tuple[Span, ...]
    music: tuple[Span, ...]
    levels_dbfs: dict
    voiced: dict          # frame-level speech per party (no joining or padding), for overtalk seconds
    line_ends: dict = field(default_factory=dict)     # party → LineEnd: how each channel ends (CLS-3)
    heard: dict = field(default_factory=dict)     # frame-level speech under the lenient gate, in verified regions

    def to_dict(self) -> dict:
        def spans(items):
            return [[s.start_s, s.end_s] for s in items]
        return {"duration_s": self.duration_s, "roles": self.roles,
                "regions": {k: spans(v) for k, v in self.regions.items()}, "ring_bursts": spans(self.ring_bursts),
                "music": spans(self.music), "levels_dbfs": self.levels_dbfs,
                "voiced": {k: spans(v) for k, v in self.voiced.items()},
                "line_ends": {k: v.to_dict() for k, v in self.line_ends.items()},
                "heard": {k: spans(v) for k, v in self.heard.items()}}

    @classmethod
    def from_dict(cls, data: dict) -> Acoustics:
        def spans(items):
            return [Span(float(a), float(b)) for a, b in items]
        return cls(float(data["duration_s"]), dict(data["roles"]),
                   {k: spans(v) for k, v in data["regions"].items()}, tuple(spans(data["ring_bursts"])),
                   tuple(spans(data["music"])), dict(data["levels_dbfs"]),
                   {k: spans(v) for k, v in data["voiced"].items()},
                   {k: LineEnd.from_dict(v) for k, v in data.get("line_ends", {}).items()},
                   {k: spans(v) for k, v in data.get("heard", {}).items()})
