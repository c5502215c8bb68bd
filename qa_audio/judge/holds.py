"""Holds: music on hold, or an announced silence, from the request (or the music) to the agent resuming,
with check-ins joining one hold's waits. Pure functions of spans."""
from __future__ import annotations

from dataclasses import dataclass

from qa_audio.config import TimingSettings
from qa_audio.signal.spans import Span, covered_s, gaps, intersect, merge, round_s, total_s

HOLD_REQUEST_REACH_S = 3.0   # a hold starts at the request's end if the music follows within this


CHECK_IN_MAX_S = 20.0        # agent speech between two music stretches up to this long is a check-in


CHECK_IN_AGENT_MAX_S = 8.0      # ... in which the agent says no more than this


CHECK_IN_CUSTOMER_MAX_S = 1.5   # ... and the customer no more than this (else it is a conversation)


CHECK_IN_TURN_GAP_S = 2.0       # the agent's check-in is one turn: no pause this long inside it


SILENT_HOLD_CUSTOMER_SHARE = 0.5   # an announced silence is a hold if the customer talks less of it than this


@dataclass(frozen=True)
class Hold:
    start_s: float
    end_s: float
    kind: str                      # "music" or "silence"
    waits: tuple[Span, ...]        # stretches without agent speech, split by check-ins

    @property
    def longest_wait_s(self) -> float:
        return max((w.duration_s for w in self.waits), default=self.end_s - self.start_s)

    def to_dict(self) -> dict:
        return {"start_s": round_s(self.start_s), "end_s": round_s(self.end_s), "kind": self.kind,
                "longest_wait_s": round_s(self.longest_wait_s), "waits": [w.to_dict() for w in self.waits]}


def find_holds(
    *,
    agent: list[Span],
    music: list[Span],
    hold_cues_s: list[float],
    after_s: float,
    call_end_s: float,
    settings: TimingSettings,
    customer: list[Span] | None = None,
    customer_said: list[Span] | None = None,
) -> list[Hold]:
    """Holds with music (split into waits by agent check-ins) and silent holds the agent announced.

    Music on hold of ``music_min_s`` or more (the detector's own minimum) is a hold whatever its
    length; an announced silence is one from ``hold_min_s``. Two stretches belong to one hold when
    the agent only checks in between them (see ``_check_in``); a conversation makes them two holds.
    An announced silence the customer talks through (their words, where the transcript has them:
    ``customer_said``; else their speech regions) is the conversation going on, not a hold.
    """
    holds: list[Hold] = []
    music = [m for m in merge(music) if m.end_s > after_s]
    groups: list[list[Span]] = []
    for span in music:
        if groups and _check_in(
            Span(groups[-1][-1].end_s, span.start_s), agent=agent, customer=customer or [], cues_s=list(hold_cues_s)
        ):
            groups[-1].append(span)
            continue
        groups.append([span])
    for group in groups:
        onset, offset = group[0].start_s, group[-1].end_s
        before = [a.end_s for a in agent if a.end_s <= onset + 0.5]
        start = before[-1] if before and onset - before[-1] <= HOLD_REQUEST_REACH_S else onset
        start = min(start, onset)
        # the agent resumes with the first speech that goes on past the music's end
        after = [max(a.start_s, offset - 0.5) for a in agent if a.end_s > offset + 0.2]
        end = max(after[0], offset) if after else min(call_end_s, max(offset, call_end_s))
        waits = tuple(w for w in gaps(agent, start_s=start, end_s=end) if w.duration_s > 0.5)
        holds.append(Hold(start, end, "music", waits or (Span(start, end),)))
    talking = merge(customer_said if customer_said is not None else customer or [])
    for cue in sorted(hold_cues_s):
        if any(h.start_s - HOLD_REQUEST_REACH_S <= cue <= h.end_s for h in holds):
            continue
        after = [a.start_s for a in agent if a.start_s > cue + 0.05]
        end = after[0] if after else call_end_s
        # music that starts before the agent speaks again is this hold: it starts at the request
        joined = next((i for i, h in enumerate(holds) if cue < h.start_s <= end), None)
        if joined is not None:
            h = holds[joined]
            waits = tuple(w for w in gaps(agent, start_s=cue, end_s=h.end_s) if w.duration_s > 0.5)
            holds[joined] = Hold(cue, h.end_s, h.kind, waits or (Span(cue, h.end_s),))
            continue
        # an announced silence the customer talks through is the conversation going on (我先帮您查一下,
        # and the customer explains for 10 s), not a caller waiting
        talked = covered_s(talking, Span(cue, end))
        if end - cue >= settings.hold_min_s and talked <= SILENT_HOLD_CUSTOMER_SHARE * (end - cue):
            holds.append(Hold(cue, end, "silence", (Span(cue, end),)))
    return _join_check_ins(
        sorted(holds, key=lambda h: h.start_s), agent=agent, customer=customer or [], cues_s=list(hold_cues_s)
    )


def _check_in(between: Span, *, agent: list[Span], customer: list[Span], cues_s: list[float]) -> bool:
    """The agent speaks briefly between two holds: a check-in ("还在为您查询，请您再稍等"), not a conversation.

    Brief: the stretch is at most ``CHECK_IN_MAX_S`` with one agent turn of at most
    ``CHECK_IN_AGENT_MAX_S``. A check-in that asks the caller to keep waiting (a hold request in it) is one whatever the
    customer channel carries; otherwise the customer says at most ``CHECK_IN_CUSTOMER_MAX_S``.
    """
    said = intersect(agent, [between])
    if (
        between.duration_s > CHECK_IN_MAX_S
        or total_s(said) > CHECK_IN_AGENT_MAX_S
        or len(merge(said, gap_s=CHECK_IN_TURN_GAP_S)) > 1
    ):  # one agent turn, not a dialogue
        return False
    if any(between.start_s <= cue <= between.end_s + 0.5 for cue in cues_s):
        return True
    return covered_s(customer, between) <= CHECK_IN_CUSTOMER_MAX_S


def _join_check_ins(holds: list[Hold], *, agent: list[Span], customer: list[Span], cues_s: list[float]) -> list[Hold]:
    """Neighbouring holds separated by a check-in are one hold with more than one wait."""
    out: list[Hold] = []
    for hold in holds:
        if out and _check_in(Span(out[-1].end_s, hold.start_s), agent=agent, customer=customer, cues_s=cues_s):
            last = out[-1]
            kind = "music" if "music" in (last.kind, hold.kind) else last.kind
            out[-1] = Hold(last.start_s, max(last.end_s, hold.end_s), kind, last.waits + hold.waits)
        else:
            out.append(hold)
    return out
