"""PRV-1 hardening (#15): the spoken and written forms a masker must catch, and personal numbers
in file names (call ids), names, review reasons, logs and search."""
from __future__ import annotations

import io
import shutil
import sqlite3
import subprocess
import sys

import pytest
from conftest import ROOT, SAMPLES
from test_privacy import unmasked_numbers

MOBILE, ID_CARD, CARD = "13800138000", "11010519900307231X", "6222021234567890128"
SPOKEN = dict(zip("0123456789X", "零一二三四五六七八九X"))


def spoken(number: str, *, yao: bool = False) -> str:
    out = "".join(SPOKEN[d] for d in number)
    return out.replace("一", "幺") if yao else out


def grouped(number: str, sizes, sep: str) -> str:
    parts, at = [], 0
    for n in sizes:
        parts.append(number[at: at + n])
        at += n
    return sep.join(parts)


MOBILE_GROUPS, ID_GROUPS, CARD_GROUPS = (3, 4, 4), (6, 8, 4), (4, 4, 4, 4, 3)
SEPARATORS = [" ", "，", "， ", ". ", ".", "/", "  ", "-", "、", "嗯", "，嗯，", " 嗯 ", "。"]
FORMS = []
for number, groups in ((MOBILE, MOBILE_GROUPS), (ID_CARD, ID_GROUPS), (CARD, CARD_GROUPS)):
    for sep in SEPARATORS:
        FORMS.append(grouped(number, groups, sep))
    FORMS.append(grouped(spoken(number, yao=True), groups, "，嗯，"))
    FORMS.append("(" + grouped(number, groups, ") ("[0:0] or ") ") + ")")
FORMS += [f"({MOBILE[:3]}) {MOBILE[3:7]}-{MOBILE[7:]}", f"{MOBILE[:3]}（{MOBILE[3:7]}）{MOBILE[7:]}",
          grouped(spoken(MOBILE), MOBILE_GROUPS, "，那个，")]


@pytest.mark.parametrize("form", FORMS)
def test_every_written_and_spoken_form_is_masked(form):
    from qa_audio.results.privacy import mask_text

    text = f"好的，号码是{form}，您记一下"
    masked = mask_text(text)
    assert not unmasked_numbers(masked.replace("嗯", "").replace("那个", "").replace("(", "").replace(")", "")
                                .replace("（", "").replace("）", "").replace(".", "").replace("/", "")
                                .replace("。", "")), (text, masked)
    assert masked != text


def test_at_least_thirty_six_forms():
    assert len(FORMS) >= 36


def test_dates_times_amounts_and_ids_in_names_stay_readable():
    from qa_audio.results.privacy import mask_text

    for text in ("2026.11.03 三点", "还款12345.67元，分3期", "工号1023，嗯，为您服务", "20261103-091500_A1023_inbound"):
        assert mask_text(text, identifier=True) == text
    for text in ("请在11月3日、12月3日前还款", "第一、第二、第三"):
        assert mask_text(text) == text


@pytest.fixture
def pii_batch(tmp_path_factory, scorer, config):
    """A batch over a recording whose file name holds a mobile number, with a metadata CSV whose
    agent name holds another."""
    from qa_audio.batch.runner import Progress, run_batch

    root = tmp_path_factory.mktemp("pii")
    folder = root / "rec"
    folder.mkdir()
    shutil.copy(SAMPLES / "bad_greeting.wav", folder / f"{MOBILE}_20261103-091500.wav")
    (root / "calls.csv").write_text(f"file,agent_id,agent_name,team,call_time\n{MOBILE}_20261103-091500.wav,"
                                    f"A1023,王小明 13912345678,一组 {CARD},2026-11-03 09:15\n", encoding="utf-8")
    log = io.StringIO()
    db = root / "results.sqlite"
    run_batch(folder, db=db, config=config, scorer=scorer, metadata_csv=root / "calls.csv", out_dir=root / "json",
              progress=Progress(0, stream=log, tty=False))
    return root, db, log.getvalue()


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "qa_audio", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


@pytest.mark.asr
def test_numbers_in_file_names_and_names_never_show(pii_batch):
    root, db, log = pii_batch
    with sqlite3.connect(db) as conn:
        call_id, name, team = conn.execute("SELECT call_id, agent_name, team FROM calls").fetchone()
    assert call_id == "*******8000_20261103-091500"
    assert name == "王小明 *******5678" and team.startswith("一组 ") and CARD not in team
    show = _cli("show", call_id, "--db", db)
    as_json = _cli("show", call_id, "--db", db, "--json")
    export = root / "hr.csv"
    assert _cli("export", "--db", db, "--period", "2026-11", "-o", export).returncode == 0
    texts = [log, show.stdout, as_json.stdout, export.read_text(encoding="utf-8-sig"),
             export.with_name("hr-calls.csv").read_text(encoding="utf-8-sig"),
             *(p.read_text(encoding="utf-8") for p in (root / "json").glob("*.json"))]
    for text in texts:
        flat = "".join(ch for ch in text if ch.isalnum())
        for number in (MOBILE, "13912345678", CARD):
            assert number not in flat, (number, text[:500])
    assert show.returncode == 0 and as_json.returncode == 0


@pytest.mark.asr
def test_review_reason_is_masked_and_search_cannot_recover_a_masked_number(pii_batch, config):
    from qa_audio.results.privacy import Redactor
    from qa_audio.results.review import review_finding
    from qa_audio.results.store import open_store

    _root, db, _ = pii_batch
    with open_store(db) as store:
        call = store.find_call("*******8000_20261103-091500")
        rule = next(f.rule for f in call.result.findings if f.status == "fail")
        review_finding(store, call, rule, decision="confirm", reason=f"客户留了手机 {MOBILE}，确认", reviewer="sup",
                       privacy=config.privacy)
        stored = store.find_call(call.call_id).reviews[rule].reason
        assert MOBILE not in stored and "*******8000" in stored
        # a transcript that says the number: searching its digits finds nothing the page would not show
        conn = store.conn
        analysis_id = conn.execute("SELECT analysis_id FROM results").fetchone()[0]
        conn.execute("INSERT INTO segments (analysis_id, idx, channel, start_s, end_s, text, words_json)"
                     " VALUES (?, 99, 'customer', 17, 18, ?, '[]')", (analysis_id, f"手机号{MOBILE}"))
        shown = Redactor(config.privacy).text
        assert store.search_calls(text="手机号")[1] == 1
        for probe in (MOBILE[:7], MOBILE[:5], "1380", MOBILE):
            assert store.search_calls(text=probe, shown=shown)[1] == 0, probe
            assert store.search_calls(text=probe)[1] == 1          # without the masker it would leak
        assert store.search_calls(text="8000", shown=shown)[1] == 1    # what the page shows can be searched
