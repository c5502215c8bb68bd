"""Who hung up first, from the audio: the channel that goes dead, or the disconnect tone the other hears.

When one party hangs up, its leg of a stereo recording stops carrying anything (digital silence,
far below the line noise it had) while the other leg still runs, often with the exchange's busy
tone (China: 450 Hz, 0.35 s on / 0.35 s off) for the party left on the line. Both cues are read
after the last speech of the call; when neither is there the audio cannot tell and CLS-3 is n/a.
Call metadata (``hangup_side``), where a recorder gives it, is the stronger source.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qa_audio.config import TimingSettings, TonePlan
from qa_audio.signal.spans import Span, mask_runs
from qa_audio.signal.tones import detect_ringback
from qa_audio.signal.vad import frame_levels_dbfs

DEAD_DBFS = -80.0            # a live line never gets this quiet: its own noise sits far above
DEAD_MIN_S = 0.3
FRAME_S = 0.02
RUN_ON_MIN_S = 0.3           # the other leg must go on at least this long after the dead one stops


@dataclass(frozen=True)
class LineEnd:
    """How one channel ends: where it goes dead for good, and where a disconnect tone starts."""

    dead_from_s: float | None
    tone_from_s: float | None

    def to_dict(self) -> dict:
        return {"dead_from_s": self.dead_from_s, "tone_from_s": self.tone_from_s}

    @classmethod
    def from_dict(cls, data: dict) -> LineEnd:
        return cls(data.get("dead_from_s"), data.get("tone_from_s"))


@dataclass(frozen=True)
class Hangup:
    side: str                 # "agent" or "customer": who hung up first
    how: str                  # the evidence, in words
    at_s: float               # where the evidence is

    def to_dict(self) -> dict:
        return {"side": self.side, "how": self.how, "at_s": round(self.at_s, 3)}


def disconnect_bursts(samples: np.ndarray, *, rate_hz: int, plan: TonePlan | None,
                      settings: TimingSettings) -> list[Span]:
    """Bursts of the disconnect (busy) tone that keep its cadence: at least two, one period apart."""
    if plan is None:
        return []
    bursts = list(detect_ringback(samples, rate_hz=rate_hz, plan=plan, settings=settings).bursts)
    period = plan.on_s + plan.off_s
    keep: set[int] = set()
    for i in range(1, len(bursts)):
        if abs(bursts[i].start_s - bursts[i - 1].start_s - period) <= 0.15:
            keep |= {i - 1, i}
    return [bursts[i] for i in sorted(keep)]


def line_end(samples: np.ndarray, *, rate_hz: int, after_s: float, tone: list[Span]) -> LineEnd:
    """The channel's ending: where it goes dead for good, and the first disconnect tone after ``after_s``."""
    level = frame_levels_dbfs(samples, rate_hz=rate_hz, frame_s=FRAME_S)
    count = len(level)
    if count == 0:
        return LineEnd(None, None)
    runs = mask_runs(level < DEAD_DBFS)
    dead = None
    # the last run of digital silence reaching the end; a leg silent all along (an unused channel) never went dead
    if runs and runs[-1][1] == count and runs[-1][0] > 0 and (count - runs[-1][0]) * FRAME_S >= DEAD_MIN_S:
        dead = runs[-1][0] * FRAME_S
    later = [b.start_s for b in tone if b.start_s >= after_s - 0.5]
    return LineEnd(dead, later[0] if later else None)


def decide_hangup(ends: dict[str, LineEnd], *, duration_s: float) -> Hangup | None:
    """The side that hung up first, or None when the audio does not say."""
    if set(ends) != {"agent", "customer"}:
        return None
    stop = {side: (end.dead_from_s if end.dead_from_s is not None else duration_s) for side, end in ends.items()}
    for side, other in (("agent", "customer"), ("customer", "agent")):
        if ends[side].dead_from_s is not None and stop[other] - stop[side] >= RUN_ON_MIN_S:
            return Hangup(side, f"the {side} channel went dead at {stop[side]:.1f} s; "
                                f"the {other}'s line ran on {stop[other] - stop[side]:.1f} s", stop[side])
    tones = {side: end.tone_from_s for side, end in ends.items() if end.tone_from_s is not None}
    if len(tones) == 1:
        left = next(iter(tones))
        side = "customer" if left == "agent" else "agent"
        return Hangup(side, f"disconnect tone on the {left} channel from {tones[left]:.1f} s", tones[left])
    return None
