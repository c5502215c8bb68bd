"""The timing metrics a rule can put a threshold on (``metrics:``) or a condition on (``when: {metric: …}``).

One registry, one place: each metric has its name, its unit, the kind of value it has (a number
checked with ``min``/``max``, or a party checked with ``equals``), a sentence saying what it
measures, and how it is read off a call's timing block. The rulebook loader validates rules
against it, ``rules explain`` describes them from it, and the judge measures with it. Adding a
metric is one decorated function here.

A measure returns the value (None: cannot be measured on this call) and the spans that show it,
as (start_s, end_s, channel, text). It reads the timing block (``qa_audio.judge.timing.Timing``)
by its attributes and the call's metadata (``facts``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Shown = tuple[float, float, str, str]          # (start_s, end_s, channel, text)
Measure = Callable[[Any, dict], tuple[Any, list[Shown]]]


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str                   # "s", "count", "cps" (characters a second), "dB", or "party"
    what: str                   # what it measures, in plain words (rules explain)
    measure: Measure
    needs_timing: bool = True   # False: it can be known without the audio's timing (call metadata)

    @property
    def party(self) -> bool:
        """A party-valued metric (checked with ``equals``), not a number (``min``/``max``)."""
        return self.unit == "party"


REGISTRY: dict[str, Metric] = {}


def metric(name: str, *, unit: str, what: str, needs_timing: bool = True) -> Callable[[Measure], Measure]:
    def register(measure: Measure) -> Measure:
        if name in REGISTRY:
            raise ValueError(f"metric {name} registered twice")
        REGISTRY[name] = Metric(name, unit, what, measure, needs_timing)
        return measure
    return register


@metric("rings", unit="count", what="ring bursts before the agent first spoke")
def _rings(t: Any, facts: dict) -> tuple[Any, list[Shown]]:
    return t.rings, [(0.0, t.answer_s or 0.0, "both", f"{t.rings} ring(s) before the agent spoke")]


@metric("ring_to_answer_s", unit="s", what="seconds from the first ring to the agent's first word")
def _ring_to_answer(t: Any, facts: dict) -> tuple[Any, list[Shown]]:
    value = t.ring_to_answer_s
    if value is None:
        return None, []
    return value, [(t.answer_s - value, t.answer_s, "both", f"answered after {value:.1f} s")]


@metric("longest_hold_wait_s", unit="s", what="the longest stretch of a hold without the agent checking in")
def _longest_hold_wait(t: Any, facts: dict) -> tuple[Any, list[Shown]]:
    waits = [w for h in t.holds for w in h.waits]
    if not waits:
        return None, []
    worst = max(waits, key=lambda w: w.duration_s)
    return worst.duration_s, [(w.start_s, w.end_s, "both", f"customer waited {w.duration_s:.0f} s without the agent")
                              for w in sorted(waits, key=lambda w: -w.duration_s)]


@metric("longest_dead_air_s", unit="s", what="the longest silence on both sides outside holds")
def _longest_dead_air(t: Any, facts: dict) -> tuple[Any, list[Shown]]:
    worst = max((d.duration_s for d in t.dead_air), default=0.0)
    return worst, [(d.start_s, d.end_s, "both", f"{d.duration_s:.0f} s of silence on both sides") for d in t.dead_air]


@metric("agent_interruptions", unit="count", what="times the agent cut into the customer's turn")
def _agent_interruptions(t: Any, facts: dict) -> tuple[Any, list[Shown]]:
    if t.interruptions is None:
        return None, []
    cut = [i for i in t.interruptions if i.by == "agent"]
    return len(cut), [(i.at_s, i.at_s + i.overlap_s, "agent", f"agent talked over the customer for {i.overlap_s:.1f} s")
                      for i in cut]


@metric("agent_rate_cps", unit="cps", what="the agent's speaking rate in characters a second")
def _agent_rate(t: Any, facts: dict) -> tuple[Any, list[Shown]]:
    party = t.talk.get("agent") or t.talk.get("mixed") or {}
    value = party.get("rate_cps")
    if value is None:
        return None, []
    at = t.answer_s or 0.0
    return value, [(at, at, "agent", f"agent speaks {value:.1f} characters a second")]


@metric("agent_level_below_customer_db", unit="dB", what="how far the agent's speech level is below the customer's")
def _agent_level(t: Any, facts: dict) -> tuple[Any, list[Shown]]:
    a, c = (t.talk.get("agent") or {}).get("level_dbfs"), (t.talk.get("customer") or {}).get("level_dbfs")
    if a is None or c is None:
        return None, []
    return c - a, [(0.0, 0.0, "agent", f"agent {a:.0f} dBFS, customer {c:.0f} dBFS")]


@metric("holds", unit="count", what="holds (music on hold, or an announced silence)")
def _holds(t: Any, facts: dict) -> tuple[Any, list[Shown]]:
    return len(t.holds), [(h.start_s, h.end_s, "both", f"hold {h.end_s - h.start_s:.0f} s") for h in t.holds]


@metric("longest_unacknowledged_s", unit="s", what="the longest customer turn with no acknowledgement from the agent")
def _longest_unacknowledged(t: Any, facts: dict) -> tuple[Any, list[Shown]]:
    spans = t.talk.get("unacknowledged") or []
    return t.talk.get("longest_unacknowledged_s"), [
        (a, b, "customer", f"customer spoke {b - a:.0f} s with no acknowledgement") for a, b in spans]


@metric("last_speaker", unit="party", what="who spoke last")
def _last_speaker(t: Any, facts: dict) -> tuple[Any, list[Shown]]:
    return t.talk.get("last_speaker"), []


@metric("hangup_side", unit="party", needs_timing=False,
        what="who hung up first: call metadata when it says, else the audio (the leg that goes dead first)")
def _hangup_side(t: Any, facts: dict) -> tuple[Any, list[Shown]]:
    side = facts.get("hangup_side") or None           # call metadata is the stronger source
    if side:
        return side, [(0.0, 0.0, "both", f"{side} hung up first (call metadata)")]
    heard = t.hangup if t is not None else None
    if heard is None:
        return None, []
    return heard.side, [(heard.at_s, heard.at_s, "both", f"{heard.side} hung up first (audio: {heard.how})")]


METRICS = tuple(REGISTRY)


def measure(name: str, timing: Any, facts: dict | None = None) -> tuple[Any, list[Shown]]:
    """A metric's value on one call (None when it cannot be measured) and the spans that show it."""
    entry = REGISTRY[name]
    if timing is None and entry.needs_timing:
        return None, []
    return entry.measure(timing, dict(facts or {}))
