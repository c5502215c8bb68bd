"""The parts of a rule: where it looks (:class:`Window`), what it measures (:class:`MetricCheck`), when it
applies (:class:`Condition`), per-hold judging (:class:`Around`), anchors and repeat-back; each can word
itself (``message()``, translated where it is shown; ``describe()``, in English)."""
from __future__ import annotations

from dataclasses import dataclass

from qa_audio.i18n import N_, Message


def _num(value: float | None) -> str | None:
    return None if value is None else f"{value:g}"


@dataclass(frozen=True)
class Window:
    """Where a rule looks: seconds from answer, call start or before the end; or the first/last N turns."""

    start: str = "call"
    within_s: float | None = None
    turns: str | None = None
    n: int | None = None
    skip_first: int = 0

    def describe(self) -> str:
        return str(self.message())

    def message(self) -> Message:
        turns = within = None
        if self.turns:
            first = self.turns == "first"
            if self.skip_first:
                turns = Message(N_("the first %(n)s turn(s) after the first %(skip)s") if first else
                                N_("the last %(n)s turn(s) after the first %(skip)s"),
                                {"n": self.n, "skip": self.skip_first})
            else:
                turns = Message(N_("the first %(n)s turn(s)") if first else N_("the last %(n)s turn(s)"),
                                {"n": self.n})
        if self.within_s is not None:
            template = {"answer": N_("within %(s)s s of answer"), "call": N_("within %(s)s s of call start"),
                        "end": N_("within %(s)s s before the last speech")}[self.start]
            within = Message(template, {"s": f"{self.within_s:g}"})
        if turns and within:
            return Message(N_("%(turns)s %(within)s"), {"turns": turns, "within": within})
        return turns or within or Message(N_("the whole call"))




@dataclass(frozen=True)
class MetricCheck:
    """A threshold on a timing metric: fail when the value is above ``max``, below ``min`` or not ``equals``."""

    name: str
    min: float | None = None
    max: float | None = None
    equals: str | None = None

    def describe(self) -> str:
        return str(self.message())

    def message(self) -> Message:
        values: dict[str, object] = {"metric": self.name, "min": _num(self.min), "max": _num(self.max),
                                     "equals": self.equals}
        if self.equals is not None:
            return Message(N_("%(metric)s = %(equals)s"), values)
        if self.min is not None and self.max is not None:
            return Message(N_("%(metric)s ≥ %(min)s and ≤ %(max)s"), values)
        if self.min is not None:
            return Message(N_("%(metric)s ≥ %(min)s"), values)
        return Message(N_("%(metric)s ≤ %(max)s"), values)


@dataclass(frozen=True)
class Condition:
    """When a rule applies: a timing metric above/below a bound, or a lexicon said by a party."""

    metric: str | None = None
    above: float | None = None
    below: float | None = None
    said: str | None = None          # lexicon name
    role: str = "customer"

    def describe(self) -> str:
        return str(self.message())

    def message(self) -> Message:
        if self.said:
            template = {"agent": N_("the agent says something from %(lexicon)s"),
                        "customer": N_("the customer says something from %(lexicon)s")}.get(
                self.role, N_("anyone says something from %(lexicon)s"))
            return Message(template, {"lexicon": self.said})
        values: dict[str, object] = {"metric": self.metric, "above": _num(self.above), "below": _num(self.below)}
        if self.above is not None and self.below is not None:
            return Message(N_("%(metric)s > %(above)s and < %(below)s"), values)
        if self.above is not None:
            return Message(N_("%(metric)s > %(above)s"), values)
        return Message(N_("%(metric)s < %(below)s"), values)


@dataclass(frozen=True)
class Around:
    """Judge a rule once per event (a hold): the role's last N turns before it, or the first N after it."""

    event: str = "hold"
    side: str = "before"
    turns: int = 1
    min_duration_s: float = 0.0

    def describe(self) -> str:
        return str(self.message())

    def message(self) -> Message:
        values: dict[str, object] = {"n": self.turns, "s": f"{self.min_duration_s:g}"}
        if self.side == "before":
            template = (N_("the last %(n)s turn(s) before each hold longer than %(s)s s") if self.min_duration_s
                        else N_("the last %(n)s turn(s) before each hold"))
        else:
            template = (N_("the first %(n)s turn(s) after each hold longer than %(s)s s") if self.min_duration_s
                        else N_("the first %(n)s turn(s) after each hold"))
        return Message(template, values)


@dataclass(frozen=True)
class Anchor:
    """Only hits after (or before) the first hit of another lexicon count."""

    lexicon: str
    role: str = "any"


@dataclass(frozen=True)
class RepeatBack:
    """A later agent turn must share a run of ``min_digits`` digits with a number the customer gave."""

    lexicon: str
    min_digits: int = 4
