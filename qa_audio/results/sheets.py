"""The HR export's files: an Excel workbook laid out to print on A4 landscape, CSV for other tools, JSON.

Spreadsheets and CSV get human headings and words in the reader's language (坐席工号, 平均分, 合格 …; the
JSON keeps the keys). The same export written twice gives byte-identical files (no creation time
inside; xlsx zip entries carry a fixed date). Text a spreadsheet would run as a formula stays text.
"""
from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from qa_audio.errors import QAError
from qa_audio.i18n import DEFAULT_LANGUAGE, gettext
from qa_audio.results.export import ABOUT, APPEALS_NOTE, CELL_WORDS, FINAL_SCORES_NOTE, SHEETS, Export

FORMATS = ("xlsx", "csv", "json")
FIXED_TIME = datetime(2000, 1, 1)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")  # what a spreadsheet reads as a formula (OWASP)
PERCENT_COLUMNS = ("pass_rate", "reviewed_share")
# widths in characters (a CJK character counts two); other columns fit their values, their headings wrap
WIDE_COLUMNS = {"call_id": 16, "call_time": 16, "failed_standards": 18, "rulebook": 18, "agent_id": 8,
                "agent_name": 8, "team": 10, "client": 10}


def write_export(export: Export, path: str | Path, *, fmt: str, language: str = DEFAULT_LANGUAGE) -> list[Path]:
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
            _write_csv(path, export, export.group_columns(), export.groups, language)
            _write_csv(calls_path, export, export.call_columns(), export.calls, language)
            return [path, calls_path]
        path.write_bytes(xlsx_bytes(export, language=language))
        return [path]
    except OSError as exc:
        raise QAError(f"{path}: cannot write the export: {exc.strerror or exc}") from None


def is_formula_like(value) -> bool:
    return isinstance(value, str) and value.startswith(FORMULA_START)


def _word(value, language: str):
    """A verdict or a yes/no in the reader's words; anything else as it is."""
    if isinstance(value, bool) or (isinstance(value, str) and value in CELL_WORDS):
        return gettext(language, CELL_WORDS[value])
    return value


def _write_csv(path: Path, export: Export, columns: list[str], rows, language: str) -> None:
    """UTF-8 with BOM, so Excel opens Chinese text correctly."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([export.heading(c, language) for c in columns])
    for row in rows:
        writer.writerow(["" if row.get(c) is None else _csv_value(_word(row.get(c), language)) for c in columns])
    path.write_bytes(buf.getvalue().encode("utf-8-sig"))


def _csv_value(value):
    """A CSV cell; text a spreadsheet would run as a formula gets a leading apostrophe (OWASP)."""
    if is_formula_like(value):
        return "'" + value
    return value


def xlsx_bytes(export: Export, *, language: str = DEFAULT_LANGUAGE) -> bytes:
    """The workbook: the groups' figures (one printed page wide), each standard's failures per group,
    the calls, and what the export covers."""
    from openpyxl import Workbook

    wb = Workbook()
    wb.properties.creator = "qa-audio"
    wb.properties.created = wb.properties.modified = FIXED_TIME
    title = gettext(language, SHEETS[export.about["by"]])
    sheets = ((title, export.summary_columns(), export.groups),
              (gettext(language, SHEETS["failed"]), export.failed_columns(), export.groups),
              (gettext(language, SHEETS["calls"]), export.call_columns(), export.calls))
    for index, (name, columns, rows) in enumerate(sheets):
        ws = wb.active if index == 0 else wb.create_sheet()
        ws.title = name[:31]
        _fill(ws, export, columns, rows, language)
        _print_layout(ws, header=f"{name} · {export.about['period']}")
    about = wb.create_sheet(gettext(language, SHEETS["about"])[:31])
    for key, value in export.about.items():
        if value in (FINAL_SCORES_NOTE, APPEALS_NOTE) or key == "by":
            value = gettext(language, value if key != "by" else SHEETS[value])
        shown = gettext(language, ABOUT[key]) if key in ABOUT else key
        about.append([shown, ", ".join(value) if isinstance(value, list) else value])
        _keep_text(about[about.max_row])
    about.column_dimensions["A"].width = 34
    about.column_dimensions["B"].width = 80
    _print_layout(about, header=f"{about.title} · {export.about['period']}")
    raw = io.BytesIO()
    wb.save(raw)
    return _fixed_zip(raw.getvalue())


def _fill(ws, export: Export, columns: Sequence[str], rows, language: str) -> None:
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    ws.append([export.heading(c, language) for c in columns])
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    for row in rows:
        ws.append([_xlsx_value(_word(row.get(c), language)) for c in columns])
        _keep_text(ws[ws.max_row])
    lines = 1
    for i, column in enumerate(columns, start=1):
        letter = get_column_letter(i)
        longest = max([0] + [_display_len(_shown(_word(row.get(column), language), column)) for row in rows])
        # a heading wraps onto two or three lines rather than widen a column of short numbers: the whole
        # sheet then prints one A4 landscape page wide at a legible size
        width = WIDE_COLUMNS.get(column, max(5, min(longest, 12)))
        ws.column_dimensions[letter].width = width + 1
        lines = max(lines, -(-_display_len(export.heading(column, language)) // width))
        if column in PERCENT_COLUMNS:
            for cell in ws[letter][1:]:
                cell.number_format = "0.0%"
        if column == "call_time":
            for cell in ws[letter][1:]:
                cell.number_format = "yyyy-mm-dd hh:mm"
        if column == "duration_s":
            for cell in ws[letter][1:]:
                cell.number_format = "0.0"
    ws.row_dimensions[1].height = 16 * min(lines, 4)     # spreadsheets do not grow a wrapped row by themselves
    ws.freeze_panes = "A2"


def _print_layout(ws, *, header: str) -> None:
    """A4 landscape, every column on the page width, the heading row repeated on each page, page numbers."""
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.orientation = "landscape"
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
    ws.print_title_rows = "1:1"
    ws.page_margins.left = ws.page_margins.right = 0.4
    ws.page_margins.top = ws.page_margins.bottom = 0.75
    ws.page_margins.header = ws.page_margins.footer = 0.3
    ws.oddHeader.center.text = header.replace("&", "&&")
    ws.oddFooter.center.text = "&P / &N"
    ws.print_options.gridLines = True


def _shown(value, column: str):
    """Roughly what the cell shows (for its width): a percentage as 100.0%, a number as %g."""
    if column in PERCENT_COLUMNS and isinstance(value, (int, float)):
        return f"{100 * value:.1f}%"
    if isinstance(value, float):
        return f"{value:g}"
    return value


def _keep_text(cells) -> None:
    for cell in cells:
        if is_formula_like(cell.value):  # text, shown as typed: never a live formula
            cell.data_type = "s"
            cell.quotePrefix = True


def _xlsx_value(value):
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
