"""Time spans in seconds and the interval arithmetic every stage shares."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, order=True)
class Span:
    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def overlap_s(self, other: Span) -> float:
        return max(0.0, min(self.end_s, other.end_s) - max(self.start_s, other.start_s))

    def contains(self, t_s: float) -> bool:
        return self.start_s <= t_s < self.end_s

    def to_dict(self) -> dict:
        return {"start_s": round(float(self.start_s), 3), "end_s": round(float(self.end_s), 3)}


def merge(spans: Iterable[Span], *, gap_s: float = 0.0) -> list[Span]:
    """Sort and join spans that overlap or lie closer than ``gap_s``."""
    out: list[Span] = []
    for span in sorted(spans):
        if out and span.start_s - out[-1].end_s <= gap_s:
            out[-1] = Span(out[-1].start_s, max(out[-1].end_s, span.end_s))
        else:
            out.append(span)
    return out


def subtract(spans: Iterable[Span], holes: Iterable[Span]) -> list[Span]:
    """The parts of ``spans`` outside every hole."""
    holes = merge(holes)
    out: list[Span] = []
    for span in sorted(spans):
        pieces = [span]
        for hole in holes:
            nxt = []
            for p in pieces:
                if hole.end_s <= p.start_s or hole.start_s >= p.end_s:
                    nxt.append(p)
                    continue
                if hole.start_s > p.start_s:
                    nxt.append(Span(p.start_s, hole.start_s))
                if hole.end_s < p.end_s:
                    nxt.append(Span(hole.end_s, p.end_s))
            pieces = nxt
        out.extend(pieces)
    return out


def intersect(spans: Iterable[Span], within: Iterable[Span]) -> list[Span]:
    """The parts of ``spans`` that lie inside ``within``."""
    within = list(within)
    return [part for s in spans for w in within
            for part in [Span(max(s.start_s, w.start_s), min(s.end_s, w.end_s))] if part.duration_s > 0]


def covered_s(spans: Iterable[Span], window: Span) -> float:
    """Seconds of ``window`` that ``spans`` cover (overlapping spans counted once each)."""
    return sum(s.overlap_s(window) for s in spans)


def gaps(spans: Iterable[Span], *, start_s: float, end_s: float) -> list[Span]:
    """The stretches of [start_s, end_s) covered by none of ``spans``."""
    return subtract([Span(start_s, end_s)], spans) if end_s > start_s else []


def total_s(spans: Iterable[Span]) -> float:
    return sum(s.duration_s for s in merge(spans))


def mask_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Index ranges [a, b) of the runs of True in a boolean mask."""
    if mask.size == 0:
        return []
    padded = np.concatenate([[False], mask.astype(bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def mask_to_spans(mask: np.ndarray, *, hop_s: float, offset_s: float = 0.0) -> list[Span]:
    """Runs of True frames in a boolean frame mask, as spans."""
    return [Span(float(offset_s + a * hop_s), float(offset_s + b * hop_s)) for a, b in mask_runs(mask)]


def round_s(value: float | None) -> float | None:
    """A time (or any measure) rounded to the millisecond for the result contract; None stays None."""
    return None if value is None else round(float(value), 3)
