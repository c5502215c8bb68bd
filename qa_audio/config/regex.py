"""Regular expressions from a rulebook or settings file: compiled once, refused when they are empty,
match everything, or can take exponential time."""
from __future__ import annotations

import re

from qa_audio.errors import ConfigError

__all__ = ["compile_safe_regex"]


def _nested_quantifier(items, inside_repeat: bool = False) -> bool:
    """Whether a parsed pattern repeats something that itself repeats without bound: (a+)+, (x*)*, (\\d+)*.

    Such patterns take exponential time on a near-miss (catastrophic backtracking).
    """
    from re import _constants as c  # type: ignore[attr-defined]

    for op, arg in items:
        if op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
            _low, high, body = arg
            unbounded = high == c.MAXREPEAT
            if inside_repeat and (unbounded or high > 1):
                return True
            if (unbounded or high > 1) and _nested_quantifier(body, inside_repeat=unbounded or high > 10):
                return True
        elif op == c.SUBPATTERN:
            if _nested_quantifier(arg[-1], inside_repeat):
                return True
        elif op == c.BRANCH:
            if any(_nested_quantifier(branch, inside_repeat) for branch in arg[1]):
                return True
        elif op in (c.ASSERT, c.ASSERT_NOT) and _nested_quantifier(arg[1], inside_repeat):
            return True
    return False


def compile_safe_regex(pattern: str, path, *, line: int | None, field: str | None) -> re.Pattern:
    """Compile a rulebook regular expression, refusing empty, catch-all and catastrophic ones."""
    from re import _parser  # type: ignore[attr-defined]

    if not pattern:
        raise ConfigError(path, "empty regular expression after re:", line=line, field=field)
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(path, f"invalid regular expression: {exc}", line=line, field=field) from None
    if compiled.search("") is not None:
        raise ConfigError(path, f"regular expression {pattern!r} matches the empty string, so it matches every "
                                f"transcript", line=line, field=field)
    if _nested_quantifier(_parser.parse(pattern)):
        raise ConfigError(path, f"regular expression {pattern!r} repeats a repeated group (like (a+)+): it can take "
                                f"exponential time; rewrite it without nested quantifiers", line=line, field=field)
    return compiled
