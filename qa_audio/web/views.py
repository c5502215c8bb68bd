"""What more than one page draws: the call timeline, an error's cause without its file path."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

from qa_audio.results.show import call_duration_s, timeline_spans
from qa_audio.web.labels import error_message

TIMELINE_ROWS = (("ring", _l("Ringing")), ("agent", _l("Agent")), ("customer", _l("Customer")),
                 ("mixed", _l("Speech (mono)")), ("hold", _l("Hold")), ("overtalk", _l("Overtalk")),
                 ("dead_air", _l("Dead air")))


def timeline(call) -> dict:
    """Rows of (start_s, end_s) spans for the call page's timeline, from the stored acoustics and timing."""
    duration = call_duration_s(call)
    rows = timeline_spans(call, min_overtalk_s=0.3)
    shown = [(key, str(label), [(float(a), float(b)) for a, b in rows[key]]) for key, label in TIMELINE_ROWS
             if key in rows and (rows[key] or key in ("agent", "customer", "ring", "hold"))]
    ticks_every = next(s for s in (5, 10, 15, 30, 60, 120, 300, 600, 1e9) if duration / s <= 12)
    ticks = [i * ticks_every for i in range(int(duration // ticks_every) + 1)]
    return {"duration_s": duration, "rows": shown, "ticks": ticks}


def cause(exc: Exception) -> str:
    """An error message in the reader's language, without the file path or call id it starts with."""
    return error_message(exc)
