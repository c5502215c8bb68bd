"""Roles and scope, agents' appeals (申诉), review assignment and calibration between supervisors (#16):
every route for every role, the appeal's whole path, blind calibration and its agreement figures."""
from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from conftest import copy_store, raw_sql

pytest.importorskip("flask")

PASSWORD = "listen-carefully-42"
# name → (role, teams, agent id); the sample calls: A1023 and A2088 in 贷后一组, A3001 in 贷后二组
ACCOUNTS = {"root": ("admin", (), None), "alice": ("supervisor", (), None), "zhou": ("supervisor", ("贷后一组",), None),
            "wu": ("supervisor", ("贷后二组",), None), "liqiang": ("agent", (), "A2088"),
            "zhangmin": ("agent", (), "A3001"), "nobody": ("agent", (), "A9999")}
OWN = {"liqiang": {"banned_phrase", "hold_ring"}, "zhangmin": {"bad_greeting", "no_closing"}, "nobody": set(),
       "zhou": {"compliant", "banned_phrase", "hold_ring"}, "wu": {"bad_greeting", "no_closing"}}
EVERY_CALL = {"compliant", "banned_phrase", "bad_greeting", "hold_ring", "no_closing"}


@pytest.fixture
def db(sample_store, new_store):
    """The sample calls with the accounts, on each backend (SQLite, PostgreSQL)."""
    from qa_audio.results.review import hash_password
    from qa_audio.results.store import open_store

    path = copy_store(sample_store, new_store())
    hashed = hash_password(PASSWORD)
    with open_store(path) as store:
        for name, (role, teams, agent_id) in ACCOUNTS.items():
            store.add_user(name, hashed, role=role, teams=teams, agent_id=agent_id)
    return path


@pytest.fixture
def app(db, config):
    from qa_audio.web import create_app

    return create_app(db, config)


def token(client, path="/login") -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get(path).text).group(1)


def login(app, name):
    client = app.test_client()
    resp = client.post("/login", data={"name": name, "password": PASSWORD, "csrf": token(client)})
    assert resp.status_code == 302, name
    client.csrf = token(client, "/calls")
    return client


def pk_of(db, call_id: str) -> int:
    with raw_sql(db) as conn:
        return conn.execute("SELECT id FROM calls WHERE call_id = ?", (call_id,)).fetchone()[0]


def sees(name: str) -> set[str]:
    return OWN.get(name, EVERY_CALL)


def listed(client) -> set[str]:
    return set(re.findall(r'<td><a href="/calls/\d+">([^<]+)</a></td>', client.get("/calls").text))


# ------------------------------------------------------------------------------------------ every route, every role
# (endpoint, method) → who may use it: "all" (any logged-in user, within their scope), "reviewers", "admins",
# "agents"; a route missing here fails the test, so a new route must say who may use it
ROUTES = {("auth.logout", "POST"): "all", ("review.index", "GET"): "all", ("review.queue", "GET"): "reviewers",
          ("review.calls", "GET"): "all", ("review.set_filter", "POST"): "all", ("review.call_page", "GET"): "all",
          ("review.audio", "GET"): "all", ("review.review", "POST"): "reviewers",
          ("review.checked", "POST"): "reviewers",
          ("review.labels", "GET"): "reviewers", ("appeals.appeal", "POST"): "agents",
          ("appeals.decide", "POST"): "reviewers", ("appeals.assign", "POST"): "reviewers",
          ("appeals.appeals", "GET"): "all", ("calibration.sessions", "GET"): "reviewers",
          ("calibration.create", "POST"): "reviewers", ("calibration.session", "GET"): "reviewers",
          ("calibration.judge", "GET"): "reviewers", ("calibration.hand_in", "POST"): "reviewers",
          ("calibration.labels", "GET"): "reviewers", ("admin.export_page", "GET"): "all",
          ("admin.users", "GET"): "admins", ("admin.change_user", "POST"): "admins",
          ("dashboard.dashboard", "GET"): "all", ("dashboard.choose", "POST"): "all"}


def allowed(kind: str, name: str) -> bool:
    role = ACCOUNTS[name][0]
    return {"all": True, "reviewers": role != "agent", "admins": role == "admin", "agents": role == "agent"}[kind]


def test_every_route_for_every_role(app, db):
    # the login form and the language switch are for everyone, logged in or not (tests/test_web.py)
    routes = {(r.endpoint, m): r for r in app.url_map.iter_rules()
              if r.endpoint not in ("auth.login", "auth.set_language", "static")
              for m in r.methods - {"HEAD", "OPTIONS"}}
    assert set(routes) == set(ROUTES), "classify every route in ROUTES"
    other = pk_of(db, "bad_greeting")                # A3001's call, 贷后二组
    for name in ACCOUNTS:
        client = login(app, name)
        for (endpoint, method), rule in sorted(routes.items()):
            if endpoint == "auth.logout":
                continue
            url = rule.rule.replace("<int:pk>", str(other)).replace("<int:aid>", "1").replace("<int:sid>", "1")
            url = url.replace("<name>", "alice")
            data = {"csrf": client.csrf, "rule": "GRT-1", "decision": "confirm", "reason": "x", "ruling": "uphold",
                    "action": "enable"} if method == "POST" else None
            resp = client.open(url, method=method, data=data)
            code = resp.status_code
            if not allowed(ROUTES[(endpoint, method)], name):
                assert code == 403, (name, method, url, code)
            elif "<int:pk>" in rule.rule and "bad_greeting" not in sees(name):
                assert code == 404, (name, method, url, code)       # another agent's or team's call: as if absent
            else:
                assert code in (200, 302, 404), (name, method, url, code)   # 404: no appeal 1 / session 1 yet
            assert b"RIFF" not in resp.data or "bad_greeting" in sees(name)


def test_each_user_lists_searches_and_exports_only_their_scope(app, db):
    for name in ACCOUNTS:
        client = login(app, name)
        assert listed(client) == sees(name), name
        agents = set(re.findall(r'<option value="(A\d+)"', client.get("/calls").text))
        with raw_sql(db) as conn:
            mine = {a for (a, c) in conn.execute("SELECT agent_id, call_id FROM calls") if c in sees(name)}
        assert agents == mine, name                   # the agent filter names no one outside the scope
        resp = client.get("/export?period=2026-11&by=agent&format=json")
        assert resp.status_code == 200
        assert {c["call_id"] for c in resp.json["calls"]} == sees(name), name
        for call_id in EVERY_CALL - sees(name):
            pk = pk_of(db, call_id)
            for url in (f"/calls/{pk}", f"/calls/{pk}/audio"):
                assert client.get(url).status_code == 404, (name, url)


def test_an_agent_cannot_find_another_agents_call_by_searching_its_words(app, db):
    from qa_audio.results.store import open_store

    with open_store(db) as store:
        other = "".join(u.text for u in store.find_call("compliant").result.transcript)
    words = next(other[i:i + 3] for i in range(len(other) - 2) if other[i:i + 3].isalnum())
    agent = login(app, "liqiang")
    agent.post("/calls/filter", data={"csrf": agent.csrf, "text": words})
    assert "compliant" not in agent.get("/calls").text
    supervisor = login(app, "alice")
    supervisor.post("/calls/filter", data={"csrf": supervisor.csrf, "text": words})
    assert "compliant" in supervisor.get("/calls").text


def test_an_agent_sees_no_review_form_and_cannot_review(app, db):
    agent = login(app, "liqiang")
    pk = pk_of(db, "banned_phrase")
    page = agent.get(f"/calls/{pk}").text
    assert 'name="decision"' not in page and 'id="mark-checked"' not in page and 'id="assign"' not in page
    assert 'value="BAN-1"' in page and "appeal-button" in page          # …but may appeal the failed finding
    resp = agent.post(f"/calls/{pk}/review", data={"csrf": agent.csrf, "rule": "BAN-1", "decision": "overturn",
                                                  "reason": "not me"})
    assert resp.status_code == 403
    with raw_sql(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM reviews").fetchone()[0] == 0


# ------------------------------------------------------------------------------------------ appeals
def final(db, call_id: str):
    with raw_sql(db) as conn:
        return tuple(conn.execute("SELECT COALESCE(r.final_score, r.score), COALESCE(r.final_verdict, r.verdict)"
                                  " FROM results r JOIN calls c ON c.current_result_id = r.id WHERE c.call_id = ?",
                                  (call_id,)).fetchone())


def test_an_appeal_from_filing_to_ruling(app, db):
    pk = pk_of(db, "banned_phrase")
    zhou = login(app, "zhou")
    zhou.post(f"/calls/{pk}/review", data={"csrf": zhou.csrf, "rule": "BAN-1", "decision": "confirm",
                                           "reason": "坐席说了禁语"})
    assert final(db, "banned_phrase") == (70.0, "fail")
    agent = login(app, "liqiang")
    resp = agent.post(f"/calls/{pk}/appeal", data={"csrf": agent.csrf, "rule": "BAN-1",
                                                  "reason": "是客户先说的，我在复述 13912345678"})
    assert resp.status_code == 302
    page = agent.get(f"/calls/{pk}").text
    assert "申诉 #1" in page and "待裁决" in page and "13912345678" not in page   # the number is masked
    again = agent.post(f"/calls/{pk}/appeal", data={"csrf": agent.csrf, "rule": "BAN-1", "reason": "again"})
    assert "已申诉过" in agent.get(again.location).text
    # a passing finding cannot be appealed; nor can the other agent appeal this call (404)
    agent.post(f"/calls/{pk}/appeal", data={"csrf": agent.csrf, "rule": "GRT-1", "reason": "x"})
    assert "只能对不合格项目申诉" in agent.get(f"/calls/{pk}").text
    other = login(app, "zhangmin")
    assert other.post(f"/calls/{pk}/appeal", data={"csrf": other.csrf, "rule": "BAN-1",
                                                  "reason": "x"}).status_code == 404
    # the queue shows it; while it is open the finding is not reviewed the ordinary way
    assert 'id="queue-appeals"' in zhou.get("/queue").text and "是客户先说的" in zhou.get("/queue").text
    zhou.post(f"/calls/{pk}/review", data={"csrf": zhou.csrf, "rule": "BAN-1", "decision": "overturn", "reason": "x"})
    assert "正在申诉中" in zhou.get(f"/calls/{pk}").text
    # the one who made the disputed decision cannot rule on it; another supervisor can
    zhou.post("/appeals/1/decide", data={"csrf": zhou.csrf, "ruling": "overturn", "reason": "我自己改"})
    assert "由另一位主管裁决" in zhou.get(f"/calls/{pk}").text
    assert final(db, "banned_phrase") == (70.0, "fail")
    wu = login(app, "wu")                                     # 贷后二组 only: this call is not theirs
    assert wu.post("/appeals/1/decide", data={"csrf": wu.csrf, "ruling": "overturn", "reason": "x"}).status_code == 404
    alice = login(app, "alice")
    alice.post("/appeals/1/decide", data={"csrf": alice.csrf, "ruling": "overturn", "reason": "录音确认是客户先说"})
    assert final(db, "banned_phrase") == (100.0, "pass")
    page = agent.get(f"/calls/{pk}").text
    assert "申诉成立" in page and "alice 裁决" in page and "录音确认是客户先说" in page
    assert 'id="final-score">100<' in page
    # the ruling is final: no second ruling, no ordinary review over it
    alice.post("/appeals/1/decide", data={"csrf": alice.csrf, "ruling": "uphold", "reason": "x"})
    assert final(db, "banned_phrase") == (100.0, "pass")
    with raw_sql(db) as conn:
        actions = [a for (a,) in conn.execute("SELECT action FROM audit WHERE call_pk = ? ORDER BY id", (pk,))]
    assert actions == ["review:confirm", "appeal:file", "appeal:overturn"]
    mine = agent.get("/appeals").text
    assert "申诉成立" in mine and "banned_phrase" in mine


def test_the_appeal_window_and_the_hr_export(app, db, config, tmp_path):
    import dataclasses

    from qa_audio.results.appeals import decide_appeal, file_appeal
    from qa_audio.results.export import build_export, parse_period
    from qa_audio.results.review import ReviewError
    from qa_audio.results.store import open_store

    ten_days_ago = (datetime.now(timezone.utc) - timedelta(days=10)).isoformat(timespec="seconds")
    with raw_sql(db) as conn:       # bad_greeting was scored 10 days ago
        conn.execute("UPDATE results SET created_at = ? WHERE id ="
                     " (SELECT current_result_id FROM calls WHERE call_id = 'bad_greeting')", (ten_days_ago,))
    with open_store(db) as store:
        agent, root = store.account("zhangmin"), store.account("root")
        with pytest.raises(ReviewError, match="appeal window closed"):
            file_appeal(store, store.find_call("bad_greeting"), "GRT-1", agent=agent, reason="x", appeal_days=7)
        call = store.find_call("no_closing")
        failed = [f.rule for f in call.result.findings if f.status == "fail" and f.enabled]
        first = file_appeal(store, call, failed[0], agent=agent, reason="说了再见", appeal_days=7)
        decide_appeal(store, first, ruler=root, ruling="uphold", reason="没有说")
        if len(failed) > 1:
            file_appeal(store, store.find_call("no_closing"), failed[1], agent=agent, reason="x", appeal_days=7)
        export = build_export(store, period=parse_period("2026-11"))
    row = next(g for g in export.groups if g["agent_id"] == "A3001")
    assert (row["appeals"], row["appeals_upheld"], row["appeals_overturned"]) == (len(failed[:2]), 1, 0)
    assert row["appeals_open"] == len(failed[:2]) - 1
    assert next(c for c in export.calls if c["call_id"] == "no_closing")["appeals"] == len(failed[:2])
    # with appeals switched off the page offers none
    from qa_audio.web import create_app

    off = create_app(db, dataclasses.replace(config, review=dataclasses.replace(config.review, appeal_days=0)))
    page = login(off, "zhangmin").get(f"/calls/{pk_of(db, 'bad_greeting')}").text
    assert "appeal-button" not in page and "申诉功能已关闭" in page


def run_cli(*args, stdin: str | None = None, env=None):
    import os

    return subprocess.run([sys.executable, "-m", "qa_audio", *args], capture_output=True, text=True, timeout=120,
                          input=stdin, env=dict(os.environ, **(env or {})))


def test_users_appeals_and_assignment_from_the_terminal(db):
    from qa_audio.results.appeals import file_appeal
    from qa_audio.results.store import open_store

    add = run_cli("users", "add", "chen", "--role", "supervisor", "--team", "贷后一组", "--db", str(db),
                  env={"QA_AUDIO_PASSWORD": PASSWORD})
    assert add.returncode == 0 and "teams 贷后一组" in add.stdout, add.stderr
    bad = run_cli("users", "add", "ghost", "--role", "agent", "--db", str(db), env={"QA_AUDIO_PASSWORD": PASSWORD})
    assert bad.returncode == 1 and "needs --agent-id" in bad.stderr and "Traceback" not in bad.stderr
    listing = run_cli("users", "list", "--db", str(db)).stdout
    assert re.search(r"liqiang\tagent\tagent id A2088\tactive", listing) and "root\tadmin" in listing
    assert run_cli("users", "set-role", "chen", "--role", "admin", "--db", str(db)).returncode == 0
    assert run_cli("users", "disable", "chen", "--db", str(db)).returncode == 0
    assert "chen\tadmin\tall calls, manages users\tdisabled" in run_cli("users", "list", "--db", str(db)).stdout
    missing = run_cli("users", "disable", "nosuch", "--db", str(db))
    assert missing.returncode == 1 and "no user 'nosuch'" in missing.stderr
    # re-adding without --role keeps the role (a password reset does not demote an admin)
    run_cli("users", "add", "root", "--db", str(db), env={"QA_AUDIO_PASSWORD": PASSWORD})
    assert "root\tadmin" in run_cli("users", "list", "--db", str(db)).stdout

    assign = run_cli("assign", "compliant", "hold_ring", "--to", "zhou", "--user", "root", "--db", str(db))
    assert assign.returncode == 0 and "2 call(s) assigned to zhou" in assign.stdout
    outside = run_cli("assign", "bad_greeting", "--to", "zhou", "--db", str(db))
    assert outside.returncode == 1 and "not one of zhou's teams" in outside.stderr

    with open_store(db) as store:
        file_appeal(store, store.find_call("banned_phrase"), "BAN-1", agent=store.account("liqiang"),
                    reason="客户先说的", appeal_days=7)
    listing = run_cli("appeals", "list", "--db", str(db))
    assert listing.returncode == 0 and "#1 banned_phrase BAN-1 [open] by liqiang (A2088)" in listing.stdout
    agent_rules = run_cli("appeals", "decide", "1", "overturn", "--reason", "x", "--user", "liqiang", "--db", str(db))
    assert agent_rules.returncode == 1 and "only supervisors and admins" in agent_rules.stderr
    ruled = run_cli("appeals", "decide", "1", "overturn", "--reason", "录音确认", "--user", "zhou", "--db", str(db))
    assert ruled.returncode == 0 and "overturned by zhou; final score 100 pass" in ruled.stdout, ruled.stderr
    assert "no open appeals" in run_cli("appeals", "list", "--db", str(db)).stdout
    shown = run_cli("show", "banned_phrase", "--db", str(db)).stdout
    assert "appeal #1 BAN-1 by liqiang" in shown and "overturned by zhou: 录音确认" in shown
    shown_json = json.loads(run_cli("show", "banned_phrase", "--json", "--db", str(db)).stdout)
    assert shown_json["appeals"][0]["rule"] == "BAN-1"
    assert json.loads(run_cli("appeals", "list", "--status", "all", "--json", "--db", str(db)).stdout)[0][
        "status"] == "overturned"


def test_the_queue_is_per_supervisor(app, db, config):
    import dataclasses

    from qa_audio.web import create_app

    everything = create_app(db, dataclasses.replace(config, review=dataclasses.replace(config.review,
                                                                                       sample_passing_percent=100)))
    root = login(everything, "root")
    pk = pk_of(db, "no_closing")
    root.post(f"/calls/{pk}/assign", data={"csrf": root.csrf, "to": "wu"})
    wu = login(everything, "wu").get("/queue").text
    mine = re.search(r'<section class="card" id="queue-assigned">.*?</section>', wu, re.S).group(0)
    assert "no_closing" in mine
    zhou = login(everything, "zhou").get("/queue").text
    assert "no_closing" not in zhou and "bad_greeting" not in zhou and "banned_phrase" in zhou
    alice = login(everything, "alice").get("/queue").text
    assert "no_closing" not in alice and "bad_greeting" in alice         # assigned to another: not in her queue
    # assigning to someone who does not review that team is refused
    root.post(f"/calls/{pk}/assign", data={"csrf": root.csrf, "to": "zhou"})
    assert "不能复核此通话" in root.get(f"/calls/{pk}").text


# ------------------------------------------------------------------------------------------ calibration
def test_kappa_matches_the_textbook_examples():
    from qa_audio.results.calibration import cohen_kappa, fleiss_kappa

    # Cohen (Wikipedia's worked example): 20 yes-yes, 5 yes-no, 10 no-yes, 15 no-no → 0.4
    pairs = [("y", "y")] * 20 + [("y", "n")] * 5 + [("n", "y")] * 10 + [("n", "n")] * 15
    assert cohen_kappa(pairs) == pytest.approx(0.4)
    # Fleiss (1971), the worked example of 10 items, 14 raters, 5 categories → 0.210
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1], [7, 7, 0, 0, 0],
             [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    assert fleiss_kappa(table) == pytest.approx(0.20993, abs=1e-4)
    assert cohen_kappa([("pass", "pass")] * 5) is None          # chance agreement is 1: undefined
    assert cohen_kappa([("pass", "fail"), ("fail", "pass")]) == pytest.approx(-1.0)
    assert fleiss_kappa([[3, 0], [0, 3]]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        fleiss_kappa([[2, 0], [1, 2]])


def judge_labels(page: str) -> list[str]:
    return sorted(set(re.findall(r'name="label-([A-Z]+-\d+)"', page)))


def test_a_blind_calibration_session(app, db, tmp_path):
    zhou, alice, root = login(app, "zhou"), login(app, "alice"), login(app, "root")
    calls = "banned_phrase hold_ring"
    resp = zhou.post("/calibration", data={"csrf": zhou.csrf, "name": "十一月第一周", "calls": calls,
                                          "reviewers": ["zhou", "alice", "root"]})
    assert resp.status_code == 302 and resp.location.endswith("/calibration/1")
    # a reviewer who does not cover a call's team cannot be chosen
    zhou.post("/calibration", data={"csrf": zhou.csrf, "name": "x", "calls": "banned_phrase",
                                    "reviewers": ["zhou", "wu"]})
    assert "wu 不负责通话" in zhou.get("/calibration").text
    pk = pk_of(db, "banned_phrase")
    # blind: the call page sends a member to the calibration form, which shows no score and no one's decisions
    page = alice.get(f"/calls/{pk}")
    assert page.status_code == 302 and page.location.endswith(f"/calibration/1/calls/{pk}")
    form = alice.get(page.location).text
    assert "final-score" not in form and "FAIL" not in form and "−" not in form
    assert 'id="blind"' in alice.get("/calibration/1").text and 'id="agreement"' not in alice.get("/calibration/1").text
    for listing in (alice.get("/calls").text, alice.get("/queue").text):
        assert re.search(r"banned_phrase</a>.*?blind", listing, re.S)
    assert alice.get("/calibration/1/labels.json").status_code == 403
    # …and her HR export leaves those calls out, saying how many
    mine = json.loads(alice.get("/export?period=2026-11&by=agent&format=json").data)
    assert {c["call_id"] for c in mine["calls"]}.isdisjoint({"banned_phrase", "hold_ring"})
    assert mine["about"]["calls_left_out_blind"] == 2
    rules = judge_labels(form)
    assert "BAN-1" in rules and "GRT-1" in rules
    # an incomplete hand-in is refused
    alice.post(f"/calibration/1/calls/{pk}", data={"csrf": alice.csrf, "label-BAN-1": "fail"})
    assert "请对每个项目作出判定" in alice.get(f"/calibration/1/calls/{pk}").text

    def hand_in(client, call_id, **overrides):
        cpk = pk_of(db, call_id)
        names = judge_labels(client.get(f"/calibration/1/calls/{cpk}").text)
        checker = checker_status(db, call_id)
        labels = {f"label-{r}": overrides.get(r.replace("-", "_"), checker[r]) for r in names}
        return client.post(f"/calibration/1/calls/{cpk}", data={"csrf": client.csrf, **labels})

    hand_in(alice, "banned_phrase", BAN_1="pass")            # alice thinks the banned phrase was the customer's
    hand_in(alice, "hold_ring")
    hand_in(zhou, "banned_phrase")
    hand_in(zhou, "hold_ring")
    # alice has handed in everything: she sees the figures (root has not: the session is not complete)
    session = alice.get("/calibration/1").text
    assert 'id="agreement"' in session and "尚未所有人提交全部通话" in session
    assert 'id="blind"' in root.get("/calibration/1").text
    hand_in(root, "banned_phrase")
    hand_in(root, "hold_ring")
    session = root.get("/calibration/1").text
    ban = re.search(r'<tr data-rule="BAN-1">(.*?)</tr>', session, re.S).group(1)
    cells = re.findall(r'<td class="num">([^<]*)', ban)
    assert cells[:3] == ["2", "50%", "83%"]                   # 2 calls, all agree on 1, 5 of 6 decisions = checker
    assert "Fleiss" in ban
    dis = re.search(r'<table id="disagreements">.*?</table>', session, re.S).group(0)
    assert "banned_phrase" in dis and "BAN-1" in dis and "hold_ring" not in dis
    pairs = re.search(r'<table id="pairs">.*?</table>', session, re.S).group(0)
    assert "alice · root" in pairs and "root · zhou" in pairs
    # once handed in, the call page opens again; the production score is untouched by calibration
    assert alice.get(f"/calls/{pk}").status_code == 200 and final(db, "banned_phrase") == (70.0, "fail")
    labels = root.get("/calibration/1/labels.json").json
    assert labels["format"] == "qa-audio-labels/1" and labels["calls"]["banned_phrase"]["BAN-1"] == "fail"
    path = tmp_path / "labels.json"
    path.write_text(json.dumps(labels), encoding="utf-8")
    from qa_audio.batch.backtest import load_labels

    assert set(load_labels(path).calls) == {"banned_phrase", "hold_ring"}
    # the same from the terminal
    report = run_cli("calibration", "report", "1", "--db", str(db))
    assert report.returncode == 0 and re.search(r"BAN-1\s+2\s+50%\s+83%", report.stdout), report.stdout
    js = json.loads(run_cli("calibration", "report", "1", "--json", "--db", str(db)).stdout)
    assert js["complete"] is True and len(js["pairs"]) == 3
    assert run_cli("calibration", "labels", "1", "-o", str(path), "--db", str(db)).returncode == 0


def checker_status(db, call_id: str) -> dict[str, str]:
    from qa_audio.results.store import open_store

    with open_store(db) as store:
        return {f.rule: f.status for f in store.find_call(call_id).result.findings}


def test_calibration_from_the_terminal_and_its_checks(db):
    made = run_cli("calibration", "create", "week 45", "--calls", "compliant", "no_closing", "--reviewers",
                   "alice,root", "--user", "alice", "--db", str(db))
    assert made.returncode == 0 and "calibration session 1 'week 45': 2 call(s)" in made.stdout, made.stderr
    one = run_cli("calibration", "create", "solo", "--calls", "compliant", "--reviewers", "alice", "--user", "alice",
                  "--db", str(db))
    assert one.returncode == 1 and "at least two reviewers" in one.stderr
    agent = run_cli("calibration", "create", "x", "--calls", "compliant", "--reviewers", "alice,liqiang", "--user",
                    "alice", "--db", str(db))
    assert agent.returncode == 1 and "only supervisors and admins calibrate" in agent.stderr
    listing = run_cli("calibration", "list", "--db", str(db)).stdout
    assert "#1 week 45" in listing and "alice 0/2" in listing
    report = run_cli("calibration", "report", "1", "--db", str(db)).stdout
    assert "not complete" in report and "disagreements (0)" in report


# ------------------------------------------------------------------------------------------ accounts
def test_disabling_an_account_ends_its_sessions_and_admins_manage_roles(app, db):
    agent = login(app, "liqiang")
    root = login(app, "root")
    root.post("/admin/users/liqiang", data={"csrf": root.csrf, "action": "disable"})
    assert agent.get("/calls").status_code == 302                       # logged out at once
    root.post("/admin/users/zhou", data={"csrf": root.csrf, "action": "set-role", "role": "supervisor",
                                         "teams": "贷后二组"})
    assert listed(login(app, "zhou")) == OWN["wu"]
    root.post("/admin/users/root", data={"csrf": root.csrf, "action": "set-role", "role": "agent",
                                         "agent_id": "A1023"})
    assert "不能取消您自己的管理员角色" in root.get("/admin/users").text


def test_a_store_from_before_roles_keeps_its_users_as_supervisors(sample_store, tmp_path):
    from qa_audio.results.review import hash_password
    from qa_audio.results.store import open_store

    db = copy_store(sample_store, tmp_path / "old.sqlite")
    with sqlite3.connect(db) as conn:          # what migration 5 left: users without roles
        for table in ("appeals", "calibration_labels", "calibration_calls", "calibration_members",
                      "calibration_sessions"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("DROP INDEX calls_team")
        for column in ("role", "teams_json", "agent_id"):
            conn.execute(f"ALTER TABLE users DROP COLUMN {column}")
        for column in ("assigned_to", "assigned_at"):
            conn.execute(f"ALTER TABLE calls DROP COLUMN {column}")
        conn.execute("INSERT INTO users (name, password_hash, created_at) VALUES ('old', ?, 'then')",
                     (hash_password(PASSWORD),))
        conn.execute("PRAGMA user_version = 5")
    with open_store(db, readonly=True) as store:         # read as it is: no appeals yet, nothing breaks
        assert store.appeals() == [] and store.calibration_sessions() == []
    with open_store(db) as store:
        assert store.schema_version == 6
        assert store.account("old").role == "supervisor" and store.account("old").scope.everything


# ------------------------------------------------------------------------------------------ a real browser
@pytest.fixture
def live(db, config, serve):
    return serve(db, config)


def browser_login(browser, base: str, name: str):
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
    page.goto(base + "/login")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    return page


def test_appeal_ruling_and_calibration_in_a_real_browser(live, db, browser_path, screenshots):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=browser_path, args=["--no-sandbox", "--disable-dev-shm-usage"])
        # the agent logs in, lands on their own calls and sees nobody else's
        agent = browser_login(browser, live, "liqiang")
        assert agent.url.endswith("/calls") and "我的通话" in agent.inner_text("header nav")
        shown = set(agent.locator("#calls tbody td:first-child a").all_inner_texts())
        assert shown == OWN["liqiang"]
        assert agent.locator("#f-agent option").all_inner_texts()[1:] == ["A2088 李强"]
        agent.screenshot(path=str(screenshots / "agent-calls.png"), full_page=True)
        agent.click("text=banned_phrase")
        assert agent.inner_text("#final-score") == "70"
        assert agent.locator("button[name=decision]").count() == 0
        agent.fill("#finding-BAN-1 .appeal-form input[name=reason]", "是客户先说的这句话，我只是复述")
        agent.click("#finding-BAN-1 .appeal-form button[type=submit]")
        agent.wait_for_load_state()
        assert "待裁决" in agent.inner_text("#appeal-BAN-1")
        agent.screenshot(path=str(screenshots / "agent-appealed.png"), full_page=True)

        # another supervisor finds it in the queue and rules on it: the score changes
        sup = browser_login(browser, live, "zhou")
        assert "banned_phrase" in sup.inner_text("#queue-appeals")
        sup.screenshot(path=str(screenshots / "supervisor-queue.png"), full_page=True)
        sup.click("#queue-appeals >> text=banned_phrase")
        sup.fill("#appeal-BAN-1 input[name=reason]", "听录音确认是客户先说的")
        sup.click("#appeal-BAN-1 button[value=overturn]")
        sup.wait_for_load_state()
        assert sup.inner_text("#final-score") == "100" and "申诉成立" in sup.inner_text("#appeal-BAN-1")
        assert "appeal:overturn" in sup.inner_text("#audit")
        sup.screenshot(path=str(screenshots / "supervisor-ruled.png"), full_page=True)
        agent.reload()
        assert agent.inner_text("#final-score") == "100" and "zhou 裁决" in agent.inner_text("#appeal-BAN-1")

        # two supervisors calibrate a call blind; the agreement figures appear
        sup.click("#nav-calibration")
        sup.fill("#c-name", "十一月校准")
        sup.check("input[name=reviewers][value=zhou]")
        sup.check("input[name=reviewers][value=alice]")
        sup.fill("#c-calls", "hold_ring")
        sup.click("#new-session button[type=submit]")
        sup.wait_for_load_state()
        assert "blind" in sup.inner_text("#blind").lower() or "提交" in sup.inner_text("#blind")
        other = browser_login(browser, live, "alice")
        for page, verdict_for_grt1 in ((sup, "pass"), (other, "fail")):
            page.goto(live + "/calibration/1")
            page.click("#to-judge a")
            page.wait_for_load_state()
            assert page.locator("#final-score").count() == 0
            for name in set(page.locator("#judge input[type=radio]").evaluate_all("els => els.map(e => e.name)")):
                value = verdict_for_grt1 if name == "label-GRT-1" else "pass"
                page.check(f"#judge input[name='{name}'][value={value}]")
            if page is other:
                page.screenshot(path=str(screenshots / "calibration-judge.png"), full_page=True)
            page.click("#hand-in")
            page.wait_for_load_state()
        assert other.url.endswith("/calibration/1")
        figures = other.inner_text("#agreement")
        assert "GRT-1" in figures and "Cohen" in figures
        row = other.inner_text("#agreement tr[data-rule=GRT-1]")
        assert "0%" in row                              # they disagree on GRT-1
        assert "hold_ring" in other.inner_text("#disagreements")
        other.screenshot(path=str(screenshots / "calibration-figures.png"), full_page=True)
        browser.close()
