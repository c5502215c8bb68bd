"""Call metadata (agent, team, call time, direction, hang-up side) for the batch.

Two sources, the sidecar CSV first: ``--metadata calls.csv`` keyed by file name
(or path relative to the batch folder), then the config's ``metadata.filename_pattern``.
Missing or unreadable values are reported, never fatal: the call is still scored.
"""
from __future__ import annotations

import contextlib
import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from qa_audio.config import METADATA_FIELDS, MetadataSettings
from qa_audio.errors import MetadataError

KEY_COLUMNS = ("file", "filename", "path", "recording")
MAX_VALUE_CHARS = 256
MAX_FIELD_BYTES = 1 << 16          # a metadata field longer than this is not metadata
MAX_FILE_BYTES = 256 << 20
DIRECTIONS = {"inbound": "inbound", "in": "inbound", "呼入": "inbound",
              "outbound": "outbound", "out": "outbound", "呼出": "outbound"}
SIDES = {"agent": "agent", "坐席": "agent", "客服": "agent", "customer": "customer", "客户": "customer"}
TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M",
                "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y%m%d-%H%M%S", "%Y%m%d%H%M%S", "%Y%m%d_%H%M%S")


@dataclass(frozen=True)
class Sidecar:
    """A parsed metadata CSV: values per key, and the problems found in its rows."""

    path: str
    rows: dict[str, dict]                  # key (file name or relative path) → field values
    problems: tuple[str, ...] = field(default=())


def parse_call_time(text: str) -> str | None:
    """A call time in any of the usual forms, as ISO 8601 (``2026-11-03T09:15:00``), else None."""
    text = text.strip()
    try:
        return datetime.fromisoformat(text).isoformat(timespec="seconds")
    except ValueError:
        pass
    for fmt in TIME_FORMATS:
        try:
            return datetime.strptime(text, fmt).isoformat(timespec="seconds")
        except ValueError:
            continue
    return None


def clean_value(name: str, raw: str) -> str | None:
    """Normalise one metadata value; ``None`` when it is empty; ValueError when it is unreadable."""
    value = raw.strip()
    if not value:
        return None
    if not value.isprintable():
        raise ValueError("contains control characters (a line break or escape code)")
    if len(value) > MAX_VALUE_CHARS:
        raise ValueError(f"{len(value)} characters long (at most {MAX_VALUE_CHARS})")
    if name == "call_time":
        iso = parse_call_time(value)
        if iso is None:
            raise ValueError(f"cannot read {value!r} as a date and time")
        return iso
    if name == "direction":
        if value.lower() not in DIRECTIONS:
            raise ValueError(f"expected inbound or outbound, got {value!r}")
        return DIRECTIONS[value.lower()]
    if name == "hangup_side":
        if value.lower() not in SIDES:
            raise ValueError(f"expected agent or customer, got {value!r}")
        return SIDES[value.lower()]
    return value


def load_sidecar(path: str | Path) -> Sidecar:
    """Read a metadata CSV (UTF-8, with or without BOM, or GB18030 as Excel writes it in China)."""
    path = Path(path)
    text = _decode(path, _read(path))
    if not text.strip():
        raise MetadataError(f"{path}: empty metadata file")
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
    except csv.Error as exc:
        raise MetadataError(f"{path}:1: not a readable CSV header: {exc}") from None
    key_column = next((k for k in KEY_COLUMNS if k in header), None)
    if key_column is None:
        raise MetadataError(f"{path}:1: no file-name column (expected one of {', '.join(KEY_COLUMNS)})")
    reader.fieldnames = header
    problems = [f"{path}:1: column {h!r} ignored (known: {', '.join(METADATA_FIELDS)})"
                for h in header if h and h != key_column and h not in METADATA_FIELDS]
    rows: dict[str, dict] = {}
    for line, row in _rows(path, reader):
        key = (row.get(key_column) or "").strip()
        if not key:
            problems.append(f"{path}:{line}: {key_column}: empty, row ignored")
            continue
        values = {}
        for name in METADATA_FIELDS:
            try:
                values[name] = clean_value(name, row.get(name) or "")
            except ValueError as exc:
                problems.append(f"{path}:{line}: {name}: {exc}")
                values[name] = None
        if key in rows:
            problems.append(f"{path}:{line}: {key_column}: {key!r} listed twice; the later row wins")
        rows[key] = values
    return Sidecar(str(path), rows, tuple(problems))


def _read(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise MetadataError(f"{path}: {size / 1e6:.0f} MB is too large for a metadata CSV")
        if not path.is_file():
            raise MetadataError(f"{path}: not a regular file")
        return path.read_bytes()
    except OSError as exc:
        raise MetadataError(f"{path}: cannot read the metadata file: {exc.strerror or exc}") from None


def _decode(path: Path, data: bytes) -> str:
    """UTF-8 (BOM or not), UTF-16 with a BOM, or GB18030; Big5 and Shift-JIS are refused by name,
    since GB18030 would read them without error into garbled names."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise MetadataError(f"{path}: broken UTF-16 text") from None
    if b"\x00" in data:
        raise MetadataError(f"{path}: not a text CSV file (it contains NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        raise MetadataError(f"{path}: not a text CSV file (neither UTF-8 nor GB18030)") from None
    wide = [ch for ch in text if ord(ch) > 0x7F]
    rare = sum(1 for ch in wide if not _in_gb2312(ch))
    if wide and rare / len(wide) > 0.2:
        guess = next(
            (
                name
                for name, enc in (("Big5 (traditional Chinese)", "big5"), ("Shift-JIS (Japanese)", "shift_jis"))
                if _decodes(data, enc)
            ),
            "an encoding other than UTF-8 or GB18030",
        )
        raise MetadataError(
            f"{path}: the text looks like {guess}, not UTF-8 or GB18030 ({rare} of {len(wide)} "
            f"characters would be rare or garbled): save it as UTF-8"
        )
    return text


def _in_gb2312(ch: str) -> bool:
    try:
        ch.encode("gb2312")
        return True
    except UnicodeEncodeError:
        return False


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
        return True
    except UnicodeDecodeError:
        return False


def _rows(path: Path, reader: csv.DictReader):
    """(physical line, row) of each record; a broken quote or an absurd field is a clean error."""
    start = reader.line_num + 1
    limit = csv.field_size_limit()
    csv.field_size_limit(MAX_FIELD_BYTES)
    try:
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                cause = str(exc)
                if "end of data" in cause or "EOF" in cause:
                    cause = "a quote is opened and never closed"
                elif "field larger" in cause:
                    cause = f"a field is longer than {MAX_FIELD_BYTES // 1024} KB"
                raise MetadataError(f"{path}:{start}: not readable CSV: {cause}") from None
            if reader.line_num - start > 0 and any("\n" in (v or "") for v in row.values() if isinstance(v, str)):
                raise MetadataError(
                    f"{path}:{start}: a quoted field runs over {reader.line_num - start + 1} lines "
                    f"(to line {reader.line_num}): an unterminated quote?"
                )
            yield reader.line_num, row  # the physical line (blank lines skipped by the reader count)
            start = reader.line_num + 1
    finally:
        csv.field_size_limit(limit)


def metadata_for(
    path: Path, *, root: Path | None, sidecar: Sidecar | None, settings: MetadataSettings, stored: dict | None = None
) -> dict:
    """The metadata of one recording: field values, their ``source``, and the ``missing`` required fields.

    ``stored`` is what the store already holds for this audio: a field that neither
    the sidecar nor the file name gives keeps its stored value, so a rerun without
    the CSV does not erase agent ids (a CSV row that gives a value still wins).
    """
    values = dict.fromkeys(METADATA_FIELDS)
    sources = []
    if sidecar is not None:
        keys = [path.name, path.stem]
        if root is not None:
            with contextlib.suppress(ValueError):
                keys.insert(0, path.relative_to(root).as_posix())
        row = next((sidecar.rows[k] for k in keys if k in sidecar.rows), None)
        if row is not None:
            values.update({k: v for k, v in row.items() if v is not None})
            sources.append("csv")
    if settings.filename_pattern:
        match = re.search(settings.filename_pattern, path.name)
        if match:
            found = False
            for name, raw in match.groupdict().items():
                if raw is None or values.get(name) is not None:
                    continue
                try:
                    values[name] = clean_value(name, raw)
                    found = found or values[name] is not None
                except ValueError:
                    continue
            if found:
                sources.append("filename")
    if stored:
        kept = False
        for name in METADATA_FIELDS:
            if values.get(name) is None and stored.get(name) is not None:
                values[name] = stored[name]
                kept = True
        if kept:
            sources.extend(s for s in (stored.get("source") or "").split("+") if s and s not in sources)
    values["source"] = "+".join(sources) or None
    values["missing"] = [name for name in settings.required if values.get(name) is None]
    return values
