"""Call metadata (agent, team, call time, direction, hang-up side) for the batch.

Two sources, the sidecar CSV first: ``--metadata calls.csv`` keyed by file name
(or path relative to the batch folder), then the config's ``metadata.filename_pattern``.
Missing or unreadable values are reported, never fatal: the call is still scored.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from .config import METADATA_FIELDS, MetadataSettings
from .errors import MetadataError

KEY_COLUMNS = ("file", "filename", "path", "recording")
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
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MetadataError(f"{path}: cannot read the metadata file: {exc.strerror or exc}") from None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise MetadataError(f"{path}: not a text CSV file (neither UTF-8 nor GB18030)")
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    key_column = next((k for k in KEY_COLUMNS if k in header), None)
    if key_column is None:
        raise MetadataError(f"{path}:1: no file-name column (expected one of {', '.join(KEY_COLUMNS)})")
    reader.fieldnames = header
    problems = [f"{path}:1: column {h!r} ignored (known: {', '.join(METADATA_FIELDS)})"
                for h in header if h and h != key_column and h not in METADATA_FIELDS]
    rows: dict[str, dict] = {}
    for line, row in enumerate(reader, start=2):
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


def metadata_for(path: Path, *, root: Path | None, sidecar: Sidecar | None, settings: MetadataSettings,
                 stored: dict | None = None) -> dict:
    """The metadata of one recording: field values, their ``source``, and the ``missing`` required fields.

    ``stored`` is what the store already holds for this audio: a field that neither
    the sidecar nor the file name gives keeps its stored value, so a rerun without
    the CSV does not erase agent ids (a CSV row that gives a value still wins).
    """
    values = {name: None for name in METADATA_FIELDS}
    sources = []
    if sidecar is not None:
        keys = [path.name, path.stem]
        if root is not None:
            try:
                keys.insert(0, path.relative_to(root).as_posix())
            except ValueError:
                pass
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
