"""Languages and translation catalogues: what a person reads is Simplified Chinese first, English second.

The messages are English in the code and the templates (marked with ``_()`` or ``N_()``)
and translated through gettext catalogues, ``qa_audio/translations/<locale>/LC_MESSAGES/messages.po`` (``zh_Hans_CN``),
compiled to ``.mo`` beside them (``scripts/translations.py`` extracts, updates and compiles them).
The review page reads them through Flask-Babel; the HR export and error messages through :func:`gettext`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from qa_audio.errors import QAError

LANGUAGES = ("zh-CN", "en")                  # as configured (review.language) and offered on the page
DEFAULT_LANGUAGE = "zh-CN"
LANGUAGE_NAMES = {"zh-CN": "简体中文", "en": "English"}
CATALOGUES = Path(__file__).resolve().parent / "translations"
DOMAIN = "messages"


def N_(message: str) -> str:
    """Mark ``message`` for the catalogue without translating it here (it is translated where it is shown)."""
    return message


def locale_of(language: str) -> str:
    """The catalogue locale of a language tag, as Babel names it (``zh-CN`` → ``zh_Hans_CN``)."""
    from babel import Locale

    if language not in LANGUAGES:
        raise QAError(f"language {language!r}: expected one of {', '.join(LANGUAGES)}")
    return str(Locale.parse(language.replace("-", "_")))


@cache
def translations(language: str):
    """The compiled catalogue of ``language`` (English: the messages as written)."""
    from babel.support import NullTranslations, Translations

    if language == "en":
        return NullTranslations()
    return Translations.load(str(CATALOGUES), [locale_of(language)], DOMAIN)


def gettext(language: str, message: str, **params: object) -> str:
    """``message`` in ``language``, with ``params`` put in (``%(name)s``)."""
    return render(message, params, language)


def title_in(title: str, title_en: str, language: str) -> str:
    """A rule's or section's title for a reader of ``language``: English when asked and there is one."""
    return title_en if language == "en" and title_en else title


SEPARATOR = N_("; ")             # between the parts of a list of messages
# the parties as a finding's explanation and the pages name them
PARTIES = {"agent": N_("agent"), "customer": N_("customer"), "mixed": N_("speech (mono)"), "any": N_("anyone")}


@dataclass(frozen=True)
class Message:
    """A message with its values, kept apart until it is shown in someone's language. A value may be a
    message itself, or a list of messages (shown joined by :data:`SEPARATOR`)."""

    template: str
    params: dict[str, object] = field(default_factory=dict)

    def __str__(self) -> str:
        return render(self.template, self.params, "en")

    def shown(self, language: str) -> str:
        return render(self.template, self.params, language)

    def to_dict(self) -> dict:
        """The stored form (the JSON edge): ``{"template", "params"}``, nested messages alike."""
        return {"template": self.template, "params": {k: _stored(v) for k, v in self.params.items()}}

    @classmethod
    def from_dict(cls, data: dict) -> Message:
        return cls(str(data["template"]), {str(k): _loaded(v) for k, v in (data.get("params") or {}).items()})


def _stored(value: object) -> object:
    if isinstance(value, Message):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_stored(v) for v in value]
    return value


def _loaded(value: object) -> object:
    if isinstance(value, dict) and "template" in value:
        return Message.from_dict(value)
    if isinstance(value, list):
        return [_loaded(v) for v in value]
    return value


def render(template: str, params: dict[str, object] | None, language: str) -> str:
    """A template and its values in ``language``; values that are messages (or lists of them) are
    translated too."""
    def shown(value: object) -> object:
        if isinstance(value, Message):
            return value.shown(language)
        if isinstance(value, (list, tuple)):
            return translations(language).gettext(SEPARATOR).join(str(shown(v)) for v in value)
        return value

    values = {k: shown(v) for k, v in (params or {}).items()}
    text = translations(language).gettext(template)
    return text % values if values else text


def error_text(exc: BaseException, language: str) -> str:
    """An error as its reader should see it: translated when it was raised with ``QAError.of``."""
    template = getattr(exc, "template", None)
    if template is None:
        return str(exc)
    return render(template, getattr(exc, "params", None), language)
