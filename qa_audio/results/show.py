"""One stored call in the terminal: header, timeline, transcript and findings (``qa-audio show``)."""
from __future__ import annotations

from collections.abc import Callable, Iterable

from qa_audio.config import METADATA_FIELDS
from qa_audio.results.records import FindingRecord, StoredResult
from qa_audio.results.store import StoredCall

ROWS = (("ring", "#"), ("agent", "="), ("customer", "="), ("mixed", "="), ("hold", "H"), ("overtalk", "!"),
        ("dead air", "."))


def finding_mark(status: str, *, enabled: bool = True) -> str:
    """The four-letter status shown for a finding; a disabled (shadow) rule's failure shows as "off"."""
    if status == "fail" and not enabled:
        return "off "
    return {"pass": "ok  ", "fail": "FAIL", "n/a": "n/a "}[status]


def finding_lines(findings: Iterable[FindingRecord], *, mask: Callable[[str], str], max_evidence: int) -> list[str]:
    """Each finding on a line (status, rule, title, deduction, flags); a failure's detail and its first
    ``max_evidence`` evidence items below it, their text through ``mask``."""
    lines = []
    for f in findings:
        mark = finding_mark(f.status, enabled=f.enabled)
        extra = f" -{f.deduction:g}" if f.deduction else ""
        flags = (" RED-LINE" if f.redline else "") + (" (low ASR confidence)" if f.low_confidence else "")
        lines.append(f"  [{mark}] {f.rule:<6} {f.title}{extra}{flags}")
        if f.status == "fail":
            lines.append(f"           {mask(f.detail)}")
            for e in f.evidence[:max_evidence]:
                lines.append(f"           {fmt_clock(e['start_s'])}-{fmt_clock(e['end_s'])} {e['channel']}: "
                             f"{mask(e['text'])}")
    return lines


def section_line(sections) -> str | None:
    """The scorecard on one line: each section's title, 0-100 score and points lost of its weight."""
    if not sections:
        return None
    parts = [f"{s.title} {'n/a' if s.score is None else format(s.score, 'g')} (-{s.lost:g}/{s.weight:g})"
             for s in sections]
    return "scorecard  " + " · ".join(parts)


def fmt_clock(value) -> str:
    if value is None:
        return "–"
    m, s = divmod(float(value), 60)
    return f"{int(m)}:{s:04.1f}"


def call_duration_s(call: StoredCall) -> float:
    assert call.analysis is not None
    return max(call.analysis.acoustics.duration_s, 0.001)


def timeline_spans(call: StoredCall, *, min_overtalk_s: float) -> dict[str, list[tuple[float, float]]]:
    """The spans a timeline shows, by row (ring, each party's speech, hold, overtalk, dead_air), from the
    stored acoustics and timing; an overtalk is drawn at least ``min_overtalk_s`` wide."""
    assert call.result is not None and call.analysis is not None
    acoustics, t = call.analysis.acoustics, call.result.timing
    rows: dict[str, list[tuple[float, float]]] = {"ring": [(s.start_s, s.end_s) for s in acoustics.ring_bursts]}
    for role, regions in acoustics.regions.items():
        rows[role] = [(s.start_s, s.end_s) for s in regions]
    rows["hold"] = [(h["start_s"], h["end_s"]) for h in t["holds"]]
    rows["overtalk"] = [(i["at_s"], i["at_s"] + max(float(i["overlap_s"]), min_overtalk_s))
                        for i in (t["interruptions"] or [])]
    rows["dead_air"] = [(d["start_s"], d["end_s"]) for d in t["dead_air"]]
    return rows


def timeline_rows(call: StoredCall, *, width: int = 64) -> list[str]:
    """A character timeline: each column is ``duration / width`` seconds of the call."""
    if call.result is None or call.analysis is None:
        return []
    duration = call_duration_s(call)
    spans = timeline_spans(call, min_overtalk_s=duration / width)
    spans["dead air"] = spans.pop("dead_air")
    step = duration / width
    ruler = [" "] * width
    for col in range(0, width, 16):
        label = fmt_clock(col * step)
        ruler[col: col + len(label)] = label
    lines = [f"{'':>9} {''.join(ruler)[:width]}"]
    for name, mark in ROWS:
        if name not in spans:
            continue
        cells = [" "] * width
        for start, end in spans[name]:
            for col in range(int(start / step), min(width, int(end / step) + 1)):
                cells[col] = mark
        lines.append(f"{name:>9} {''.join(cells)}|")
    return lines


def render_call(call: StoredCall, *, mask=None, mask_id=None) -> str:
    """The spot-check view; ``mask`` (text → text) hides personal data in transcript and evidence,
    ``mask_id`` in the call id, path and names."""
    mask = mask or (lambda text: text)
    mask_id = mask_id or (lambda text: text)
    r = call.result
    if r is None:
        return f"{call.call_id}: no result stored"
    meta = call.metadata
    a = r.audio
    who = ", ".join(f"{k} {mask_id(str(meta[k]))}" for k in METADATA_FIELDS if meta.get(k)) or "no metadata"
    score = "–" if r.score is None else f"{r.score:g}"
    lines = [f"{mask_id(call.call_id)}  score {score}  verdict {r.verdict.upper()}  ({r.verdict_reason or ''})",
             f"  {mask_id(a['path'])}  {a['duration_s']:.1f} s, {a['channels']} ch, {a['sample_rate_hz']} Hz, "
             f"sha256 {call.audio_sha256[:12]}",
             f"  {who}",
             f"  rulebook {r.versions.get('rulebook_name', '')} {r.versions['rulebook']}, "
             f"model {r.versions['model']}", ""]
    roles = a.get("roles")
    if roles:
        lines.insert(-1, f"  channels: agent {roles['agent']}, customer {roles['customer']} ({roles['how']})")
    card = section_line(r.sections)
    if card:
        lines[-1:] = [card, ""]
    t = r.timing
    inter = t["interruptions"]
    lines.append(f"timeline  (answered {t['answered']}, rings {t['rings']}, ring-to-answer "
                 f"{fmt_clock(t['ring_to_answer_s'])}, holds {len(t['holds'])}, interruptions "
                 f"{'n/a' if inter is None else len(inter)}, dead air {len(t['dead_air'])})")
    lines += timeline_rows(call)
    lines += ["", "transcript"]
    for u in r.transcript:
        lines.append(f"  {fmt_clock(u.start_s):>7}-{fmt_clock(u.end_s):<7} {u.channel:<8} {mask(u.text)}")
    lines += ["", "findings", *finding_lines(r.findings, mask=mask, max_evidence=5)]
    return "\n".join(lines)


def render_summary(result: StoredResult) -> str:
    """A readable per-call summary of one result."""
    if result.verdict == "error":
        return f"{result.call_id}: ERROR {result.error}"
    t = result.timing
    a = result.audio
    score = "–" if result.score is None else f"{result.score:g}"
    lines = [f"{result.call_id}  score {score}  verdict {result.verdict.upper()}"
             f"  ({a['duration_s']:.1f} s, {a['channels']} ch, {a['sample_rate_hz']} Hz)"]
    if result.unscorable:
        lines.append(f"  unscorable: {result.verdict_reason or ''}")
    card = section_line(result.sections)
    if card:
        lines.append("  " + card)
    inter = t["interruptions"]
    lines.append(f"  timing: answered {t['answered']}, rings {t['rings']}, ring-to-answer "
                 f"{'–' if t['ring_to_answer_s'] is None else format(t['ring_to_answer_s'], '.1f') + ' s'}, "
                 f"holds {len(t['holds'])}, interruptions {'n/a (mono)' if inter is None else len(inter)}, "
                 f"dead air {len(t['dead_air'])}")
    lines += finding_lines(result.findings, mask=lambda text: text, max_evidence=3)
    return "\n".join(lines)
