"""Broken metadata CSVs: each is refused with file, line and cause, or its bad rows are reported;
never a traceback, never garbled names stored without a word."""
from __future__ import annotations

import pytest

from qa_audio.batch.metadata import load_sidecar
from qa_audio.errors import MetadataError

HEAD = "file,agent_id,agent_name,team,call_time\n"

REFUSED = [
    (
        "big5",
        (HEAD + "a.wav,A1,王小明,一組,2026-11-03 09:15\nb.wav,A2,陳大文,二組,2026-11-03 09:20\n").encode("big5"),
        "Big5",
    ),
    ("shift-jis", (HEAD + "a.wav,A1,山田太郎,営業,2026-11-03 09:15\n").encode("shift_jis"), "Shift-JIS"),
    (
        "unterminated quote",
        (HEAD + 'a.wav,A1,"王小明,一组,2026-11-03 09:15\nb.wav,A2,陈大文,二组,2026-11-03\n').encode(),
        ":2: not readable CSV: a quote is opened and never closed",
    ),
    (
        "quote swallows lines",
        (HEAD + 'a.wav,A1,"王\n小明",x,2026-11-03\nb.wav,A2,li,y,2026-11-03\n').encode(),
        ":2: a quoted field runs over 2 lines",
    ),
    ("field over 128 KB", (HEAD + "a.wav,A1," + "王" * 70000 + ",x,2026-11-03\n").encode(), "longer than 64 KB"),
    ("NUL bytes", (HEAD + "a.wav,A\x001,x,y,2026-11-03\n").encode(), "NUL"),
    ("binary", bytes(range(256)) * 4, "NUL"),
    ("empty", b"", "empty metadata file"),
    ("blank lines", b"\n\n  \n", "empty metadata file"),
    ("no key column", "agent,name\nA1,王\n".encode(), ":1: no file-name column"),
    ("broken UTF-16", b"\xff\xfe" + "file,agent_id\n".encode("utf-16-le") + b"\x00\xd8", "UTF-16"),
]

REPORTED = [
    ("bad time", HEAD + "a.wav,A1,王,x,not a date\n", ":2: call_time: cannot read"),
    ("control characters", HEAD + 'a.wav,A1,"王\x1b[2J",x,2026-11-03\n', ":2: agent_name: contains control"),
    ("value too long", HEAD + "a.wav,A1," + "王" * 300 + ",x,2026-11-03\n", ":2: agent_name: 300 characters"),
    ("listed twice", HEAD + "a.wav,A1,王,x,2026-11-03\na.wav,A2,李,y,2026-11-03\n", ":3: file: 'a.wav' listed twice"),
    ("empty key", HEAD + ",A1,王,x,2026-11-03\n", ":2: file: empty"),
    ("unknown column", "file,agent_id,colour\na.wav,A1,red\n", ":1: column 'colour' ignored"),
    ("bad direction", "file,agent_id,direction\na.wav,A1,sideways\n", ":2: direction: expected inbound"),
    ("bad hang-up side", "file,agent_id,hangup_side\na.wav,A1,nobody\n", ":2: hangup_side: expected agent"),
    (
        "physical line numbers past a blank line",
        HEAD + "a.wav,A1,王,x,2026-11-03\n\nb.wav,A2,李,y,never\n",
        ":4: call_time: cannot read",
    ),
]

ACCEPTED = [
    ("utf-8 with BOM", "\ufeff" + HEAD + "a.wav,A1,王小明,一组,2026-11-03 09:15\n", "utf-8", "王小明"),
    ("gb18030 from Excel", HEAD + "a.wav,A1,王小明,一组,2026-11-03 09:15\n", "gb18030", "王小明"),
    ("utf-16 with BOM", HEAD + "a.wav,A1,王小明,一组,2026-11-03 09:15\n", "utf-16", "王小明"),
    ("CRLF", (HEAD + "a.wav,A1,王小明,一组,2026-11-03 09:15\n").replace("\n", "\r\n"), "utf-8", "王小明"),
]


@pytest.mark.parametrize("name,data,message", REFUSED, ids=[c[0] for c in REFUSED])
def test_unreadable_metadata_is_refused_with_its_cause(tmp_path, name, data, message):
    path = tmp_path / "calls.csv"
    path.write_bytes(data)
    with pytest.raises(MetadataError) as err:
        load_sidecar(path)
    assert str(err.value).startswith(str(path)) and message in str(err.value), str(err.value)


@pytest.mark.parametrize("name,text,message", REPORTED, ids=[c[0] for c in REPORTED])
def test_bad_rows_are_reported_with_line_and_field(tmp_path, name, text, message):
    path = tmp_path / "calls.csv"
    path.write_text(text, encoding="utf-8", newline="")
    sidecar = load_sidecar(path)
    assert any(message in p and p.startswith(str(path)) for p in sidecar.problems), sidecar.problems


@pytest.mark.parametrize("name,text,encoding,agent_name", ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_good_encodings_are_read(tmp_path, name, text, encoding, agent_name):
    path = tmp_path / "calls.csv"
    path.write_bytes(text.encode(encoding))
    assert load_sidecar(path).rows["a.wav"]["agent_name"] == agent_name


def test_at_least_twenty_two_variants():
    assert len(REFUSED) + len(REPORTED) + len(ACCEPTED) >= 22
