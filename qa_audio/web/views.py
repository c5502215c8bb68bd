"""What more than one page draws: the call timeline, an error's cause without its file path."""
from __future__ import annotations

from qa_audio.results.show import call_duration_s, timeline_spans

TIMELINE_ROWS = (("ring", "振铃 Ringing"), ("agent", "坐席 Agent"), ("customer", "客户 Customer"),
                 ("mixed", "Speech (mono)"), ("hold", "保持 Hold"), ("overtalk", "抢话 Overtalk"),
                 ("dead_air", "静默 Dead air"))


def timeline(call) -> dict:
    """Rows of (start_s, end_s) spans for the call page's timeline, from the stored acoustics and timing."""
    duration = call_duration_s(call)
    rows = timeline_spans(call, min_overtalk_s=0.3)
    shown = [(key, label, [(float(a), float(b)) for a, b in rows[key]]) for key, label in TIMELINE_ROWS
             if key in rows and (rows[key] or key in ("agent", "customer", "ring", "hold"))]
    ticks_every = next(s for s in (5, 10, 15, 30, 60, 120, 300, 600, 1e9) if duration / s <= 12)
    ticks = [i * ticks_every for i in range(int(duration // ticks_every) + 1)]
    return {"duration_s": duration, "rows": shown, "ticks": ticks}


def cause(exc: Exception) -> str:
    """An error message without the file path or call id it starts with (shown in a page)."""
    text = str(exc)
    return text.split(": ", 1)[1] if ": " in text else text
