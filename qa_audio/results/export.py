"""Scores for HR: per agent (or team) and period, plus one row per call.

Final scores are those after supervisor review. The export is a pure function of
the store and the period: the same store exported twice gives byte-identical
files (no creation time inside; xlsx zip entries carry a fixed date). Every export
records the rulebook versions, models and the time range it covers.
"""
from __future__ import annotations

import csv
import io
import json
import re
import statistics
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from qa_audio.errors import QAError
from qa_audio.results.access import Scope
from qa_audio.results.records import StoredResult
from qa_audio.results.store import Store

FORMATS = ("xlsx", "csv", "json")
FIXED_TIME = datetime(2000, 1, 1)


@dataclass(frozen=True)
class Period:
    label: str
    start: date        # inclusive
    end: date          # exclusive

    def contains(self, iso_time: str) -> bool:
        day = datetime.fromisoformat(iso_time).date()
        return self.start <= day < self.end


def parse_period(text: str) -> Period:
    """``2026-11`` (a month), ``2026`` (a year), ``2026-11-03`` (a day), ``2026-W45`` (an ISO week),
    or ``2026-11-01..2026-11-15`` (both days included)."""
    t = text.strip()
    try:
        if ".." in t:
            a, b = (date.fromisoformat(x.strip()) for x in t.split("..", 1))
            if b < a:
                raise QAError(f"period {text!r}: the end is before the start")
            return Period(t, a, b + timedelta(days=1))
        if re.fullmatch(r"\d{4}", t):
            return Period(t, date(int(t), 1, 1), date(int(t) + 1, 1, 1))
        if re.fullmatch(r"\d{4}-\d{2}", t):
            y, m = map(int, t.split("-"))
            start = date(y, m, 1)
            return Period(t, start, date(y + (m == 12), m % 12 + 1, 1))
        week = re.fullmatch(r"(\d{4})-W(\d{2})", t)
        if week:
            start = date.fromisocalendar(int(week.group(1)), int(week.group(2)), 1)
            return Period(t, start, start + timedelta(days=7))
        day = date.fromisoformat(t)
        return Period(t, day, day + timedelta(days=1))
    except ValueError:
        raise QAError(f"period {text!r}: expected YYYY, YYYY-MM, YYYY-MM-DD, YYYY-Www or DAY..DAY") from None


@dataclass(frozen=True)
class Export:
    about: dict
    rules: tuple[str, ...]          # standards' IDs in rulebook order, one count column each
    groups: tuple[dict, ...]        # one row per agent or team
    calls: tuple[dict, ...]         # one row per call

    def group_columns(self) -> list[str]:
        keys = (["agent_id", "agent_name", "team"] if self.about["by"] == "agent" else [self.about["by"]])
        return (
            keys
            + ["calls", "mean_score", "median_score", "pass_rate", "unscorable", "redline_failures", "reviewed_share",
               "appeals", "appeals_upheld", "appeals_overturned", "appeals_open"]
            + [f"failed {r}" for r in self.rules]
        )

    @staticmethod
    def call_columns() -> list[str]:
        return [
            "call_id",
            "call_time",
            "agent_id",
            "agent_name",
            "team",
            "client",
            "duration_s",
            "auto_score",
            "final_score",
            "verdict",
            "reviewed",
            "appeals",
            "appeals_overturned",
            "redline",
            "failed_standards",
            "rulebook",
        ]

    def to_dict(self) -> dict:
        return {"about": self.about, "groups": list(self.groups), "calls": list(self.calls)}


GROUPINGS = ("agent", "team", "client")


def build_export(store: Store, *, period: Period, by: str = "agent", scope: Scope | None = None) -> Export:
    """The export of the calls in ``period`` (and in ``scope``: a user's, on the review page)."""
    if by not in GROUPINGS:
        raise QAError(f"--by must be one of {', '.join(GROUPINGS)}, got {by!r}")
    rows = store.current_rows(scope)
    reviews = store.all_reviews()
    appeals = store.appeal_counts()
    no_time = [r["call_id"] for r in rows if not r["call_time"]]
    chosen = [r for r in rows if r["call_time"] and period.contains(r["call_time"])]
    rule_order: list[str] = []
    calls = []
    for r in chosen:
        result = StoredResult.from_dict(json.loads(r["result_json"]))
        findings = result.decided(reviews.get(r["result_id"], {}))
        for f in findings:
            if f.rule not in rule_order:
                rule_order.append(f.rule)
        failed = [f.rule for f in findings if f.status == "fail"]
        reviewed = r["final_score"] is not None
        appealed = appeals.get(r["result_id"], {})
        calls.append(
            {
                "call_id": r["call_id"],
                "call_time": r["call_time"],
                "agent_id": r["agent_id"] or "(unknown)",
                "agent_name": r["agent_name"] or "",
                "team": r["team"] or "(unknown)",
                "client": r.get("client") or "(none)",
                "duration_s": r["duration_s"],
                "auto_score": r["score"],
                "final_score": r["final_score"] if reviewed else r["score"],
                "verdict": (r["final_verdict"] if reviewed else r["verdict"]),
                "reviewed": reviewed,
                "appeals": sum(appealed.values()),
                "appeals_overturned": appealed.get("overturned", 0),
                "_appeals_upheld": appealed.get("upheld", 0),
                "_appeals_open": appealed.get("open", 0),
                "redline": any(f.redline for f in findings if f.status == "fail"),
                "failed_standards": ", ".join(failed),
                "rulebook": r["rulebook"],
                "_failed": failed,
                "_model": r["model"],
                "_rulebook_name": r["rulebook_name"],
            }
        )
    calls.sort(key=lambda c: (c["call_time"], c["call_id"]))
    groups = _group(calls, by=by, rules=rule_order)
    about = {
        "period": period.label,
        "from": period.start.isoformat(),
        "to": (period.end - timedelta(days=1)).isoformat(),
        "by": by,
        "store": Path(store.path).name,
        "calls": len(calls),
        "calls_without_call_time": len(no_time),
        "rulebooks": sorted({f"{c['_rulebook_name']} {c['rulebook']}" for c in calls}),
        "models": sorted({c["_model"] for c in calls}),
        "final_scores": "after supervisor review where a call was reviewed, else as scored",
        "appeals": "agents' appeals (申诉) on the calls' current results: filed, upheld, overturned, still open",
    }
    clean = tuple({k: v for k, v in c.items() if not k.startswith("_")} for c in calls)
    return Export(about, tuple(rule_order), tuple(groups), clean)


def _group(calls: list[dict], *, by: str, rules: list[str]) -> list[dict]:
    buckets: dict[tuple, list[dict]] = {}
    for c in calls:
        key = (c["agent_id"],) if by == "agent" else (c[by],)
        buckets.setdefault(key, []).append(c)
    out = []
    for key in sorted(buckets):
        items = buckets[key]
        scores = [float(c["final_score"]) for c in items if c["final_score"] is not None]
        scorable = [c for c in items if c["verdict"] != "unscorable"]
        row: dict = {}
        if by == "agent":
            names = sorted({c["agent_name"] for c in items if c["agent_name"]})
            teams = sorted({c["team"] for c in items})
            row.update(agent_id=key[0], agent_name=" / ".join(names), team=" / ".join(teams))
        else:
            row[by] = key[0]
        row.update(
            calls=len(items),
            mean_score=round(statistics.fmean(scores), 2) if scores else None,
            median_score=round(statistics.median(scores), 2) if scores else None,
            pass_rate=round(sum(c["verdict"] == "pass" for c in scorable) / len(scorable), 4) if scorable else None,
            unscorable=len(items) - len(scorable),
            redline_failures=sum(bool(c["redline"]) for c in items),
            reviewed_share=round(sum(bool(c["reviewed"]) for c in items) / len(items), 4),
            appeals=sum(c["appeals"] for c in items),
            appeals_upheld=sum(c["_appeals_upheld"] for c in items),
            appeals_overturned=sum(c["appeals_overturned"] for c in items),
            appeals_open=sum(c["_appeals_open"] for c in items),
        )
        for rule in rules:
            row[f"failed {rule}"] = sum(rule in c["_failed"] for c in items)
        out.append(row)
    return out


# --------------------------------------------------------------------------- writers
def write_export(export: Export, path: str | Path, *, fmt: str) -> list[Path]:
    """Write the export; returns the files written (CSV writes two: groups and calls)."""
    path = Path(path)
    if fmt not in FORMATS:
        raise QAError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if not path.parent.is_dir():
        raise QAError(f"{path}: folder {path.parent} does not exist")
    try:
        if fmt == "json":
            path.write_text(json.dumps(export.to_dict(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
            return [path]
        if fmt == "csv":
            calls_path = path.with_name(path.stem + "-calls" + path.suffix)
            _write_csv(path, export.group_columns(), export.groups)
            _write_csv(calls_path, export.call_columns(), export.calls)
            return [path, calls_path]
        path.write_bytes(_xlsx_bytes(export))
        return [path]
    except OSError as exc:
        raise QAError(f"{path}: cannot write the export: {exc.strerror or exc}") from None


def _write_csv(path: Path, columns: list[str], rows) -> None:
    """UTF-8 with BOM, so Excel opens Chinese text correctly."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else _csv_value(row.get(c)) for c in columns])
    path.write_bytes(buf.getvalue().encode("utf-8-sig"))


FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")  # what a spreadsheet reads as a formula (OWASP)


def is_formula_like(value) -> bool:
    return isinstance(value, str) and value.startswith(FORMULA_START)


def _csv_value(value):
    """A CSV cell; text a spreadsheet would run as a formula gets a leading apostrophe (OWASP)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if is_formula_like(value):
        return "'" + value
    return value


def _xlsx_bytes(export: Export) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    wb.properties.creator = "qa-audio"
    wb.properties.created = wb.properties.modified = FIXED_TIME
    sheets = (
        ("by " + export.about["by"], export.group_columns(), export.groups),
        ("calls", export.call_columns(), export.calls),
    )
    for index, (title, columns, rows) in enumerate(sheets):
        ws = wb.active if index == 0 else wb.create_sheet()
        ws.title = title
        ws.append(columns)
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for row in rows:
            ws.append([_xlsx_value(row.get(c)) for c in columns])
            for cell in ws[ws.max_row]:
                if is_formula_like(cell.value):  # text, shown as typed: never a live formula
                    cell.data_type = "s"
                    cell.quotePrefix = True
        for i, column in enumerate(columns, start=1):
            width = max([len(str(column))] + [_display_len(row.get(column)) for row in rows])
            ws.column_dimensions[get_column_letter(i)].width = min(60, width + 2)
            if column in ("pass_rate", "reviewed_share"):
                for cell in ws[get_column_letter(i)][1:]:
                    cell.number_format = "0.0%"
            if column == "call_time":
                for cell in ws[get_column_letter(i)][1:]:
                    cell.number_format = "yyyy-mm-dd hh:mm:ss"
        ws.freeze_panes = "A2"
        ws.page_setup.orientation = "landscape"  # printed or rendered to PDF: all columns on one page
        ws.sheet_properties.pageSetUpPr.fitToPage = True
        ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
    about = wb.create_sheet("about")
    for key, value in export.about.items():
        about.append([key, ", ".join(value) if isinstance(value, list) else value])
        for cell in about[about.max_row]:
            if is_formula_like(cell.value):
                cell.data_type = "s"
                cell.quotePrefix = True
    about.column_dimensions["A"].width = 26
    about.column_dimensions["B"].width = 70
    raw = io.BytesIO()
    wb.save(raw)
    return _fixed_zip(raw.getvalue())


def _xlsx_value(value):
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", value):
        return datetime.fromisoformat(value)  # a real date cell
    return value


def _display_len(value) -> int:
    text = "" if value is None else str(value)
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _fixed_zip(data: bytes) -> bytes:
    """Rewrite the xlsx zip with fixed entry times, so equal content gives equal bytes."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = info.external_attr
            content = src.read(info.filename)
            if info.filename == "docProps/core.xml":  # openpyxl stamps the save time here
                content = re.sub(
                    rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)", rb"\g<1>2000-01-01T00:00:00Z\g<2>", content
                )
            dst.writestr(fixed, content)
    return out.getvalue()
