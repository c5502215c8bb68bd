"""#20: scorecard sections, the dashboard, the Chinese-first interface with its catalogues, the production
server. Through the public API, the CLI, the review application and a real browser."""
from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from conftest import ROOT, copy_store, raw_sql

PASSWORD = "correct-horse-9"


# ------------------------------------------------------------------------------------------ scorecard sections
@dataclass(frozen=True)
class F:
    """A finding as scoring reads it."""

    rule_id: str
    status: str
    deduction: float
    section: str | None
    redline: bool = False
    low_confidence: bool = False
    scored: bool = True


def test_a_section_costs_at_most_its_weight_and_scores_zero_to_hundred():
    from qa_audio.config import ScoreSection, ScoreSettings
    from qa_audio.judge.score import score_findings

    settings = ScoreSettings(85.0, 0.0, (ScoreSection("opening", "开场", "Opening", 20),
                                         ScoreSection("closing", "结束", "Closing", 25),
                                         ScoreSection("hold", "等待", "Holds", 10)))
    findings = [F("GRT-1", "fail", 15, "opening"), F("GRT-2", "fail", 10, "opening"),   # 25 lost, capped at 20
                F("CLS-1", "fail", 10, "closing"), F("CLS-2", "pass", 0, "closing"),
                F("HLD-1", "n/a", 0, "hold"), F("EMP-1", "fail", 0, "closing", scored=False)]
    score = score_findings(findings, settings)
    assert score.score == 100 - 20 - 10 and score.verdict == "fail"
    opening, closing, hold = score.sections
    assert (opening.lost, opening.score, opening.failed) == (20, 0.0, ("GRT-1", "GRT-2"))
    assert (closing.lost, closing.score, closing.rules) == (10, 60.0, ("CLS-1", "CLS-2"))   # the shadow rule is out
    assert (hold.score, hold.rules) == (None, ("HLD-1",))                                    # nothing applied: n/a
    red = score_findings([F("BAN-2", "fail", 30, "closing", redline=True)], settings)
    assert (red.score, red.redline, red.sections[1].score) == (0.0, True, 0.0)


def test_every_rule_scores_in_a_known_section(tmp_path):
    from qa_audio.config import load_config
    from qa_audio.errors import ConfigError

    config = load_config()
    assert [s.id for s in config.scoring.sections] == ["opening", "listening", "hold", "language", "closing", "voice"]
    for section in config.scoring.sections:        # the default weights are their rules' sums: no cap binds
        assert section.weight == sum(r.weight for r in config.rules if r.section == section.id)
    assert all(r.title_en and not r.title.isascii() for r in config.rules)   # Chinese titles, English kept
    overlay = tmp_path / "club.yaml"
    overlay.write_text(f"extends: {ROOT / 'configs' / 'default.yaml'}\n"
                       "rules:\n  - {id: XYZ-1, title: 新标准, weight: 3, section: nowhere,"
                       " metric: {name: rings, max: 2}}\n",
                       encoding="utf-8")
    with pytest.raises(ConfigError, match=r"club.yaml:3: rules.XYZ-1.section: .*unknown section 'nowhere'"):
        load_config(overlay)
    overlay.write_text(f"extends: {ROOT / 'configs' / 'default.yaml'}\n"
                       "rules:\n  - {id: XYZ-1, title: 新标准, weight: 3, metric: {name: rings, max: 2}}\n",
                       encoding="utf-8")
    with pytest.raises(ConfigError, match=r"rules.XYZ-1.section: rule XYZ-1 has no section"):
        load_config(overlay)


def test_results_carry_their_sections_and_show_prints_the_scorecard(sample_results, sample_store):
    for result in sample_results.values():
        sections = result["sections"]
        assert [s["id"] for s in sections] == ["opening", "listening", "hold", "language", "closing", "voice"]
        assert {"id", "title", "title_en", "weight", "lost", "score", "rules", "failed"} <= set(sections[0])
        if result["verdict"] != "unscorable" and not any(f["redline"] and f["status"] == "fail"
                                                         for f in result["findings"]):
            assert result["score"] == pytest.approx(100 - sum(s["lost"] for s in sections))
        failed = {f["rule"] for f in result["findings"] if f["status"] == "fail" and f["enabled"]}
        assert {r for s in sections for r in s["failed"]} == failed
        assert all(f["section"] for f in result["findings"])
    proc = subprocess.run([sys.executable, "-m", "qa_audio", "show", "bad_greeting", "--db", str(sample_store)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and re.search(r"scorecard  开场 44.4 \(-25/45\) · 倾听与沟通 100", proc.stdout)


# ------------------------------------------------------------------------------------------ catalogues, language
def test_the_catalogue_is_complete_and_compiled():
    """Every message of the code and templates has a Chinese translation with the same placeholders, and the
    committed .mo is what the .po compiles to (scripts/translations.py check)."""
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "translations.py"), "check"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture
def store_db(sample_store, new_store):
    """The sample calls, a supervisor and an admin, on each backend (SQLite, PostgreSQL)."""
    from qa_audio.results.review import hash_password
    from qa_audio.results.store import open_store

    db = copy_store(sample_store, new_store())
    with open_store(db) as store:
        store.add_user("alice", hash_password(PASSWORD))
        store.add_user("root", hash_password(PASSWORD), role="admin")
    return db


def _token(client, path="/login") -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get(path).text).group(1)


def _login(app, name="alice"):
    client = app.test_client()
    assert client.post("/login", data={"name": name, "password": PASSWORD, "csrf": _token(client)}).status_code == 302
    return client


def test_pages_speak_chinese_first_and_switch_to_english(store_db, config):
    import dataclasses

    from qa_audio.web import create_app

    app = create_app(store_db, config)
    anonymous = app.test_client()
    login = anonymous.get("/login").text
    assert '<html lang="zh-CN">' in login and ">登录</button>" in login and "用户名" in login
    resp = anonymous.post("/language", data={"language": "en", "csrf": _token(anonymous), "next": "/login"})
    assert resp.status_code == 302 and resp.location.endswith("/login")
    assert ">Log in</button>" in anonymous.get("/login").text            # the choice holds before login…
    client = app.test_client()
    client.post("/language", data={"language": "en", "csrf": _token(client), "next": "/login"})
    client.post("/login", data={"name": "alice", "password": PASSWORD, "csrf": _token(client)})
    queue = client.get("/queue").text
    assert "Spot-check queue" in queue and "Dashboard" in queue and "抽检队列" not in queue   # …and after it
    for hostile in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        resp = client.post("/language", data={"language": "zh-CN", "csrf": _token(client, "/queue"), "next": hostile})
        assert resp.location == "/", hostile                                # never off this site
    assert "抽检队列" in client.get("/queue").text
    nav = re.search(r"<nav>.*?</nav>", _login(app).get("/queue").text, re.S).group(0)
    assert all(word in nav for word in ("抽检队列", "通话", "数据看板", "申诉", "校准", "导出"))
    # an English-first centre sets review.language
    english = create_app(store_db, dataclasses.replace(config, review=dataclasses.replace(config.review,
                                                                                          language="en")))
    assert ">Log in</button>" in english.test_client().get("/login").text


def test_errors_and_the_scorecard_show_in_the_readers_language(store_db, config):
    from qa_audio.web import create_app

    client = _login(create_app(store_db, config))
    with raw_sql(store_db) as conn:
        pk = conn.execute("SELECT id FROM calls WHERE call_id = 'bad_greeting'").fetchone()[0]
    page = client.get(f"/calls/{pk}").text
    card = re.search(r'<div class="card" id="scorecard">.*?</table>', page, re.S).group(0)
    assert "开场" in card and "44.4" in card and "25 / 45" in card and 'href="#finding-GRT-1"' in card
    assert "开场问候须报机构名称和工号" in page                                   # the rule's Chinese title
    grt1 = re.search(r'id="finding-GRT-1".*?<div class="muted">([^<]+)</div>', page, re.S).group(1)
    assert "接听后 10 秒内" in grt1 and "未找到" in grt1 and "missing" not in grt1   # why it failed, in Chinese
    csrf = _token(client, f"/calls/{pk}")
    resp = client.post(f"/calls/{pk}/review", data={"rule": "GRT-1", "decision": "overturn", "csrf": csrf,
                                                    "reason": " "})
    assert "复核需要填写理由" in client.get(resp.location).text               # a library error, translated
    assert "页面不存在" in client.get("/calls/999999").text                    # an HTTP error page too


# ------------------------------------------------------------------------------------------ dashboard
WEEKS = {"banned_phrase": "2026-10-20T09:00:00", "bad_greeting": "2026-10-21T10:00:00",
         "compliant": "2026-10-29T11:00:00", "hold_ring": "2026-11-04T12:00:00", "no_closing": "2026-11-12T13:00:00"}


@pytest.fixture
def busy_store(store_db):
    """The sample calls spread over four weeks and two months, one finding overturned, one appeal."""
    from qa_audio.config import load_config
    from qa_audio.results.review import review_finding
    from qa_audio.results.store import open_store

    with raw_sql(store_db) as conn:
        for call_id, when in WEEKS.items():
            conn.execute("UPDATE calls SET call_time = ? WHERE call_id = ?", (when, call_id))
    with open_store(store_db) as store:
        privacy = load_config().privacy
        review_finding(store, store.find_call("banned_phrase"), "BAN-1", decision="overturn",
                       reason="客户原话", reviewer="alice", privacy=privacy)
        review_finding(store, store.find_call("bad_greeting"), "GRT-1", decision="confirm",
                       reason="确实没报工号", reviewer="alice", privacy=privacy)
    return store_db


def _period(day, grain: str) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}" if grain == "week" else f"{day.year}-{day.month:02d}"


def _independent_figures(db: Path, grain: str):
    """The dashboard's figures straight from the store's tables (not through qa_audio)."""
    with raw_sql(db) as conn:
        rows = conn.execute("SELECT c.team, c.call_time, r.score, r.verdict, r.final_score, r.final_verdict,"
                            " r.result_json, r.id FROM calls c JOIN results r ON r.id = c.current_result_id").fetchall()
        reviews = conn.execute("SELECT result_id, rule, decision FROM reviews").fetchall()
    decided = {(rid, rule): decision for rid, rule, decision in reviews}
    cells: dict[tuple[str, str], list[tuple[float | None, str]]] = defaultdict(list)
    failed: Counter[str] = Counter()
    reviewed: Counter[str] = Counter()
    overturned: Counter[str] = Counter()
    for team, when, score, verdict, final_score, final_verdict, result_json, rid in rows:
        day = datetime.fromisoformat(when).date()
        if verdict == "unscorable":          # counted as a call, never in a standard's figures
            cells[(team, _period(day, grain))].append((None, verdict))
            continue
        reviewed_call = final_score is not None
        cells[(team, _period(day, grain))].append((final_score if reviewed_call else score,
                                      final_verdict if reviewed_call else verdict))
        for f in json.loads(result_json)["findings"]:
            if not f["enabled"] or f["status"] == "n/a":
                continue
            decision = decided.get((rid, f["rule"]))
            status = ({"fail": "pass", "pass": "fail"}[f["status"]] if decision == "overturn" else f["status"])
            failed[f["rule"]] += status == "fail"
            if decision:
                reviewed[f["rule"]] += 1
                overturned[f["rule"]] += decision == "overturn"
    out = {}
    for key, items in cells.items():
        scores = [s for s, _ in items if s is not None]
        scorable = [v for _, v in items if v != "unscorable"]
        out[key] = (len(items), round(statistics.fmean(scores), 2) if scores else None,
                    round(sum(v == "pass" for v in scorable) / len(scorable), 4) if scorable else None)
    return out, failed, reviewed, overturned


@pytest.mark.parametrize("grain", ["week", "month"])
def test_the_dashboard_figures_match_the_store(busy_store, config, grain):
    from qa_audio.web import create_app

    client = _login(create_app(busy_store, config))
    client.post("/dashboard", data={"csrf": _token(client, "/dashboard"), "grain": grain, "by": "team"})
    page = client.get("/dashboard").text
    cells, failed, reviewed, overturned = _independent_figures(busy_store, grain)
    shown = {}
    for row in re.findall(r'<tr data-group="([^"]+)">(.*?)</tr>', page, re.S):
        for period, calls, mean, rate in re.findall(r'data-period="([^"]+)" data-calls="(\d+)" data-mean="([^"]*)"'
                                                    r' data-pass-rate="([^"]*)"', row[1]):
            shown[(row[0], period)] = (int(calls), float(mean) if mean else None, float(rate) if rate else None)
    assert shown == cells and len({p for _, p in cells}) == (4 if grain == "week" else 2)
    shown_failed = dict(re.findall(r'<tr data-rule="([^"]+)" data-failed="(\d+)">', page))
    assert {r: int(n) for r, n in shown_failed.items()} == {r: n for r, n in failed.items() if n}
    health = re.findall(r'<tr data-rule="([^"]+)" data-reviewed="(\d+)" data-overturned="(\d+)">', page)
    assert {r: (int(a), int(b)) for r, a, b in health} == {r: (reviewed[r], overturned[r]) for r in reviewed}
    assert health[0][0] == "BAN-1"                                # the most overturned rule heads rule health
    assert page.count('<circle') >= len(cells) and 'id="chart-failed"' in page and 'id="chart-volume"' in page
    total = re.search(r'data-figure="calls">(\d+)<', page).group(1)
    assert int(total) == len(WEEKS)


def test_an_agent_sees_only_their_own_figures(busy_store, config):
    from qa_audio.results.review import hash_password
    from qa_audio.results.store import open_store
    from qa_audio.web import create_app

    with open_store(busy_store) as store:
        store.add_user("liqiang", hash_password(PASSWORD), role="agent", agent_id="A2088")
    page = _login(create_app(busy_store, config), "liqiang").get("/dashboard").text
    assert re.search(r'data-figure="calls">2<', page)             # banned_phrase and hold_ring
    assert 'data-group="A2088"' in page and "A3001" not in page and 'id="d-team"' not in page


# ------------------------------------------------------------------------------------------ production server
def test_serve_runs_on_waitress_with_secure_cookies_behind_a_proxy(store_db, config, serve):
    import dataclasses

    secure = dataclasses.replace(config, review=dataclasses.replace(config.review, secure_cookies=True, threads=4))
    base = serve(store_db, secure)
    with urllib.request.urlopen(base + "/login") as resp:
        assert resp.headers["Server"] == "qa-audio"                # waitress (Werkzeug's would say Werkzeug/…)
        assert "Secure" in resp.headers["Set-Cookie"] and "HttpOnly" in resp.headers["Set-Cookie"]
        assert "登录" in resp.read().decode()
    from qa_audio.web import ReviewServer, make_server

    server = make_server(store_db, config, port=0, trusted_proxy="127.0.0.1")
    try:
        assert isinstance(server, ReviewServer) and server.threads == config.review.threads
    finally:
        server.server_close()


def test_the_serve_command_runs_the_production_server(store_db):
    import socket
    import time

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "qa_audio", "serve", "--db", str(store_db), "--port", str(port),
                             "--threads", "2"], stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as resp:
                    assert resp.headers["Server"] == "qa-audio" and "登录" in resp.read().decode()
                    break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("qa-audio serve never answered")
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "waitress, 2 threads" in err and "GET /login 200" in err and "Werkzeug" not in err


def test_serve_refuses_a_bad_thread_count(store_db):
    proc = subprocess.run([sys.executable, "-m", "qa_audio", "serve", "--db", str(store_db), "--threads", "0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--threads" in proc.stderr and "Traceback" not in proc.stderr


# ------------------------------------------------------------------------------------------ in a real browser
def test_dashboard_and_language_in_a_real_browser(busy_store, config, serve, browser_path, screenshots):
    from playwright.sync_api import sync_playwright

    base = serve(busy_store, config)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=browser_path, args=["--no-sandbox", "--disable-dev-shm-usage"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
        page.goto(base + "/login")
        assert page.inner_text("#login") == "登录"
        page.screenshot(path=str(screenshots / "login-zh.png"))
        page.fill("#name", "alice")
        page.fill("#password", PASSWORD)
        page.click("#login")
        page.click("#nav-dashboard")
        assert page.url.endswith("/dashboard") and "数据看板" in page.inner_text("h1")
        assert page.locator("#chart-score circle.drill").count() >= 4 and page.locator("#chart-failed rect").count()
        page.screenshot(path=str(screenshots / "dashboard-zh.png"), full_page=True)
        # a chart's point opens the calls behind it: one team, one week
        point = page.locator("#chart-score circle.drill").first
        wanted = json.loads(point.get_attribute("data-filter"))
        point.click()
        page.wait_for_url("**/calls")
        ids = page.locator("#calls tbody td:first-child a").all_inner_texts()
        expected = [c for c, when in WEEKS.items() if wanted["date_from"] <= when[:10] <= wanted["date_to"]
                    and _team(busy_store, c) == wanted["team"]]
        assert sorted(ids) == sorted(expected) and ids
        assert page.input_value("#f-team") == wanted["team"] and page.input_value("#f-from") == wanted["date_from"]
        # a bar of the most failed standards opens the calls failing it
        page.goto(base + "/dashboard")
        bar = page.locator("#chart-failed rect.drill").first
        rule = json.loads(bar.get_attribute("data-filter"))["rule"]
        bar.click()
        page.wait_for_url("**/calls")
        assert page.input_value("#f-rule") == rule and page.locator("#calls tbody tr").count() >= 1
        # the language switch
        with page.expect_navigation():
            page.select_option("#language select", "en")
        assert page.url.endswith("/calls") and "Calls" in page.inner_text("h1")
        assert "Dashboard" in page.inner_text("header nav")
        page.screenshot(path=str(screenshots / "calls-en.png"))
        with page.expect_navigation():
            page.select_option("#language select", "zh-CN")
        assert "通话" in page.inner_text("h1")
        browser.close()


def _team(db: Path, call_id: str) -> str:
    with raw_sql(db) as conn:
        return conn.execute("SELECT team FROM calls WHERE call_id = ?", (call_id,)).fetchone()[0]


def test_the_dashboard_escapes_hostile_names_and_copes_with_an_empty_store(busy_store, config, new_store):
    """Team and agent names come from call metadata: in a chart's labels, tooltips and filters they stay text."""
    import html

    from qa_audio.results.review import hash_password
    from qa_audio.results.store import open_store
    from qa_audio.web import create_app

    hostile = '<script>alert(1)</script>" onmouseover="x'
    with raw_sql(busy_store) as conn:
        conn.execute("UPDATE calls SET team = ? WHERE team = '贷后二组'", (hostile,))
    client = _login(create_app(busy_store, config))
    client.post("/dashboard", data={"csrf": _token(client, "/dashboard"), "grain": "week", "by": "team"})
    page = client.get("/dashboard").text
    assert "<script>alert(1)</script>" not in page and 'onmouseover="x' not in page
    filters = [json.loads(html.unescape(f)) for f in re.findall(r'data-filter="([^"]+)"', page)]
    filters += [json.loads(html.unescape(f)) for f in re.findall(r"data-filter='([^']+)'", page)]
    assert any(f.get("team") == hostile for f in filters)              # the filter carries the name exactly
    empty = new_store("empty")
    with open_store(empty, create=True) as store:
        store.add_user("alice", hash_password(PASSWORD))
    page = _login(create_app(empty, config)).get("/dashboard")
    assert page.status_code == 200 and "尚无带通话时间的已评分通话。" in page.text
