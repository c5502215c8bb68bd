"""The reader's language and the words the pages show for codes (verdicts, statuses, roles, titles).

The language is the reader's choice for this browser session, else the config's ``review.language``
(Simplified Chinese by default). Every label comes from the translation catalogue."""
from __future__ import annotations

from flask import session
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from qa_audio.i18n import LANGUAGE_NAMES, LANGUAGES, PARTIES, Message, error_text, locale_of, title_in
from qa_audio.web.state import state

VERDICT_LABELS = {"pass": _l("pass"), "fail": _l("fail"), "review": _l("review"), "unscorable": _l("unscorable"),
                  "error": _l("error"), "blind": _l("blind")}
STATUS_LABELS = {"pass": _l("PASS"), "fail": _l("FAIL"), "n/a": _l("N/A")}
APPEAL_LABELS = {"open": _l("awaiting ruling"), "upheld": _l("finding upheld"), "overturned": _l("appeal granted")}
ROLE_DECISIONS = {"configured": _l("as configured"), "confirmed": _l("as configured, confirmed by what each side says"),
                  "swapped": _l("swapped: the other channel says what agents say"),
                  "doubtful": _l("doubtful: listen before acting")}   # (the side that says more was taken)
ROLE_LABELS = {"admin": _l("admin"), "supervisor": _l("supervisor"), "agent": _l("agent")}
HTTP_MESSAGES = {400: _l("the request could not be understood"), 401: _l("please log in first"),
                 403: _l("you may not open this page"), 404: _l("no such page, or not one of your calls"),
                 405: _l("this address does not take that kind of request"),
                 409: _l("this cannot be done now"), 413: _l("the form sent is too large")}


def language() -> str:
    """This reader's language (a tag of :data:`~qa_audio.i18n.LANGUAGES`)."""
    chosen = session.get("language")
    return chosen if chosen in LANGUAGES else state().config.review.language


def locale() -> str:
    """Flask-Babel's locale selector."""
    return locale_of(language())


def _label(table: dict, code) -> str:
    return str(table.get(code, code)) if code is not None else "–"


def party_label(code) -> str:
    """A transcript line's or evidence's party (agent, customer, mono speech) in the reader's language."""
    if code in PARTIES:
        return _(PARTIES[code])
    return "–" if code is None else str(code)


def titled(thing) -> str:
    """A rule's, finding's or section's title in the reader's language (English when it has one)."""
    return title_in(str(thing.title), str(getattr(thing, "title_en", "") or ""), language())


def detail_text(finding) -> str:
    """A finding's explanation in the reader's language (results from before the catalogue: as stored)."""
    stored = finding.extra.get("detail_i18n")
    if isinstance(stored, dict) and "template" in stored:
        try:
            return Message.from_dict(stored).shown(language())
        except (KeyError, TypeError, ValueError):     # a stored message this catalogue cannot word
            pass
    return str(finding.detail)


def error_message(exc: BaseException) -> str:
    """An error for a page: in the reader's language, without the call id or file it starts with."""
    text = error_text(exc, language())
    return text.split(": ", 1)[1] if ": " in text else text


def http_message(exc) -> str:
    """An HTTP error's message: ours where a route gave one, else the reader's words for its code."""
    if exc.description and exc.description != type(exc).description:
        return str(exc.description)
    return str(HTTP_MESSAGES.get(exc.code, exc.description))


def reason_text(result) -> str:
    """Why the checker gave its verdict, in the reader's language (worded from the verdict and the score)."""
    mark = format(result.score_settings.pass_score, "g")
    score = "–" if result.score is None else format(result.score, "g")
    if result.verdict == "pass":
        return _("score %(score)s ≥ pass mark %(mark)s", score=score, mark=mark)
    if result.verdict == "review" and (result.audio.get("roles") or {}).get("how") == "doubtful":
        return _(result.verdict_reason)          # ROLES_DOUBTFUL, from the catalogue
    if result.verdict == "review":
        return _("fails only on low-confidence ASR hits: a supervisor should listen")
    if result.verdict == "fail":
        if any(f.status == "fail" and f.redline for f in result.findings):
            return _("red-line rule failed")
        return _("score %(score)s < pass mark %(mark)s", score=score, mark=mark)
    reason = result.verdict_reason or result.error
    return _(reason) if reason else ""       # gettext("") is the catalogue's header, never an empty line


def template_globals() -> dict:
    return {"language": language(), "languages": [(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
            "verdict_label": lambda code: _label(VERDICT_LABELS, code),
            "status_label": lambda code: _label(STATUS_LABELS, code),
            "role_label": lambda code: _label(ROLE_LABELS, code),
            "appeal_label": lambda code: _label(APPEAL_LABELS, code),
            "role_decision_label": lambda code: _label(ROLE_DECISIONS, code),
            "party_label": party_label,
            "titled": titled, "reason_text": reason_text}
