"""The store's typed records: a stored result reads back into the same contract, and a supervisor's
decision is applied on records and scored by the one scoring function."""
import json
import sqlite3

import pytest

from qa_audio.results.records import FindingRecord, Review, StoredResult


def _finding(rule, status, weight=10.0, **extra):
    deduction = weight if status == "fail" else 0.0
    return FindingRecord(rule, status, deduction, weight, **extra)


def _result(*findings, pass_score=85.0):
    return StoredResult("call", None, "fail", {}, {}, tuple(findings), (), {}, {"scoring": {"pass_score": pass_score}})


def test_every_stored_result_reads_back_into_the_same_contract(sample_store):
    with sqlite3.connect(sample_store) as conn:
        stored = [json.loads(row[0]) for row in conn.execute("SELECT result_json FROM results")]
    assert len(stored) == 5
    for data in stored:
        assert StoredResult.from_dict(data).to_dict() == data


def test_overturning_a_failure_makes_it_a_pass_with_nothing_deducted():
    fail = _finding("BAN-1", "fail", 30.0, redline=True, low_confidence=True)
    decided = fail.decided(Review("overturn", "客户先说的", "alice"))
    assert (decided.status, decided.deduction, decided.redline, decided.low_confidence) == ("pass", 0.0, False, False)
    assert decided.original_status == "fail" and decided.to_dict()["review"]["reviewer"] == "alice"
    assert decided.to_dict()["passed"] is True


def test_overturning_a_pass_costs_the_rules_weight_unless_the_rule_is_disabled():
    assert _finding("GRT-1", "pass", 15.0).decided(Review("overturn", "没报工号", "bob")).deduction == 15.0
    shadow = _finding("EMP-1", "pass", 10.0, enabled=False).decided(Review("overturn", "x", "bob"))
    assert (shadow.status, shadow.deduction) == ("fail", 0.0)


def test_confirming_a_doubtful_failure_makes_it_certain_and_the_verdict_follows():
    result = _result(_finding("BAN-1", "fail", 30.0, low_confidence=True))
    assert result.final({}).verdict == "review"
    confirmed = result.final({"BAN-1": Review("confirm", "听过了，确实说了", "alice")})
    assert (confirmed.score, confirmed.verdict) == (70.0, "fail")
    overturned = result.final({"BAN-1": Review("overturn", "听错了", "alice")})
    assert (overturned.score, overturned.verdict) == (100.0, "pass")


def test_an_unscorable_result_has_no_final_score_whatever_the_review():
    result = StoredResult("call", None, "unscorable", {}, {}, (_finding("GRT-1", "fail"),), (), {}, {})
    assert result.final({"GRT-1": Review("overturn", "x", "alice")}) is None


def test_a_finding_with_an_unknown_status_is_refused():
    with pytest.raises(ValueError, match="status 'maybe'"):
        FindingRecord.from_dict({"rule": "GRT-1", "status": "maybe", "deduction": 0})
