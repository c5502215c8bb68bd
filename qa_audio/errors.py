"""The exception hierarchy: one root, one subclass per kind of failure.

Every error carries a one-line message that names the file and the cause, so the
CLI and the batch can print or store it as is.
"""
from __future__ import annotations

import unicodedata


def one_line(text: str) -> str:
    """``text`` with control characters escaped (a file name with a newline or an escape code
    cannot split a log line or forge one)."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch == " " else
                   (repr(ch)[1:-1] if unicodedata.category(ch)[0] == "C" else ch) for ch in text)


class QAError(Exception):
    """Root of every error qa-audio raises on purpose; its message is always one printable line.

    An error a person sees on the review page is raised with :meth:`of`: its English message is a
    template from the translation catalogue plus its values, so the page can show it in the reader's
    language (``template`` and ``params``); ``str()`` is the English line, as everywhere else.
    """

    template: str | None = None
    params: dict[str, object] | None = None

    def __init__(self, message: object = "", *args: object):
        super().__init__(one_line(str(message)), *args)

    @classmethod
    def of(cls, template: str, **params: object):
        """``cls(template % params)``, remembering the template and values for translation."""
        exc = cls(template % params)
        exc.template, exc.params = template, params
        return exc


class AudioError(QAError):
    """An input recording cannot be read or does not fit the channel layout."""


class ConfigError(QAError):
    """A config or lexicon file is invalid; the message names file, line and field."""

    def __init__(self, path, message: str, *, line: int | None = None, field: str | None = None):
        self.path = str(path)
        self.line = line
        self.field = field
        where = self.path if line is None else f"{self.path}:{line}"
        what = f"{field}: " if field else ""
        super().__init__(f"{where}: {what}{message}")


class ModelError(QAError):
    """The speech-recognition model is missing, incomplete or fails to load."""


class StoreError(QAError):
    """The results store cannot be opened, migrated or written."""


class MetadataError(QAError):
    """A call-metadata sidecar file cannot be read at all (bad rows are only reported)."""
