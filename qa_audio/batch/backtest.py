"""Backtest the rulebook against human labels: per-rule precision, recall and accuracy.

Labels are ``qa-audio-labels/1`` JSON (README "Labels for backtesting"): per call,
each rule's true status (``pass``, ``fail`` or ``n/a``), optionally with the true
utterance (``start_s``/``end_s``) of a failure, and optionally the call's true
score. Supervisors' reviews export to this format (``qa-audio labels``), and
``scripts/make_timing_set.py`` writes it for its generated calls.

The results judged can be fresh (audio scored now), stored (a results store whose
analyses are re-judged under the given rulebook, with no ASR), or result JSON
files as they are. ``sweep`` re-judges the same analyses under several values of
one setting, so a QA team can pick a threshold against their own labels before
switching a rule on.
"""
from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from qa_audio.config import Config
from qa_audio.errors import QAError

if TYPE_CHECKING:
    from qa_audio.judge.analysis import Analysis
    from qa_audio.results.store import Store

LABELS_FORMAT = "qa-audio-labels/1"
STATUSES = ("pass", "fail", "n/a")
EVIDENCE_TOLERANCE_S = 1.0


class LabelsError(QAError):
    """A labels file that cannot be used (not JSON, wrong format, unknown status…)."""


@dataclass(frozen=True)
class Label:
    status: str
    start_s: float | None = None      # the true utterance of a failure, when known
    end_s: float | None = None


@dataclass(frozen=True)
class Labels:
    path: str
    calls: dict                       # call id → rule → Label
    scores: dict                      # call id → true score


def load_labels(path: str | Path) -> Labels:
    """Read and validate a labels file; errors name the file and the call and rule at fault."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LabelsError(f"{path}: labels file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LabelsError(f"{path}: not a JSON labels file: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != LABELS_FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise LabelsError(f"{path}: format: expected {LABELS_FORMAT!r}, got {found!r}")
    calls_in = data.get("calls")
    if not isinstance(calls_in, dict) or not calls_in:
        raise LabelsError(f"{path}: calls: expected a non-empty mapping of call id → rule → status")
    calls: dict = {}
    for call_id, rules in calls_in.items():
        if not isinstance(rules, dict):
            raise LabelsError(f"{path}: calls.{call_id}: expected a mapping of rule → status")
        labelled = {}
        for rule, value in rules.items():
            where = f"{path}: calls.{call_id}.{rule}"
            if isinstance(value, str):
                value = {"status": value}
            if not isinstance(value, dict) or value.get("status") not in STATUSES:
                raise LabelsError(f"{where}: expected one of {', '.join(STATUSES)} (or an object with status), "
                                  f"got {value!r}")
            start, end = value.get("start_s"), value.get("end_s")
            if (start is None) != (end is None) or any(v is not None and not isinstance(v, (int, float))
                                                       for v in (start, end)):
                raise LabelsError(f"{where}: start_s and end_s must both be numbers, or both absent")
            labelled[rule] = Label(value["status"], None if start is None else float(start),
                                   None if end is None else float(end))
        calls[str(call_id)] = labelled
    scores_in = data.get("scores", {})
    if not isinstance(scores_in, dict):
        raise LabelsError(f"{path}: scores: expected a mapping of call id → score")
    scores = {}
    for call_id, value in scores_in.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 100:
            raise LabelsError(f"{path}: scores.{call_id}: expected a number from 0 to 100, got {value!r}")
        scores[str(call_id)] = float(value)
    return Labels(str(path), calls, scores)


@dataclass(frozen=True)
class RuleStats:
    """One rule judged against the labels; "positive" is a failure (a breach of the standard)."""

    rule: str
    calls: int
    agree: int
    tp: int
    fp: int
    fn: int
    evidence_checked: int = 0
    evidence_ok: int = 0
    enabled: bool = True
    disagreements: tuple = ()       # (call id, label, predicted)

    @property
    def accuracy(self) -> float | None:
        return self.agree / self.calls if self.calls else None

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    def to_dict(self) -> dict:
        return {"rule": self.rule, "calls": self.calls, "accuracy": self.accuracy, "precision": self.precision,
                "recall": self.recall, "tp": self.tp, "fp": self.fp, "fn": self.fn, "enabled": self.enabled,
                "evidence_checked": self.evidence_checked, "evidence_ok": self.evidence_ok,
                "disagreements": [list(d) for d in self.disagreements]}


@dataclass(frozen=True)
class BacktestReport:
    labels: str
    rulebook: str | None
    calls: int                           # labelled calls that had a result
    rules: tuple[RuleStats, ...]
    score_errors: tuple[float, ...] = ()
    unmatched: tuple[str, ...] = ()      # labelled calls with no result
    settings: dict = field(default_factory=dict)

    @property
    def score_mae(self) -> float | None:
        return statistics.fmean(self.score_errors) if self.score_errors else None

    def rule(self, rule_id: str) -> RuleStats:
        for stats in self.rules:
            if stats.rule == rule_id:
                return stats
        raise KeyError(rule_id)

    def to_dict(self) -> dict:
        return {"labels": self.labels, "rulebook": self.rulebook, "calls": self.calls,
                "rules": [r.to_dict() for r in self.rules], "score_mae": self.score_mae,
                "score_max_error": max(self.score_errors) if self.score_errors else None,
                "unmatched": list(self.unmatched), "settings": self.settings}


def _evidence_near(evidence: list[dict], label: Label) -> bool:
    """Some evidence item lies on the true utterance, give or take ``EVIDENCE_TOLERANCE_S``."""
    tol = EVIDENCE_TOLERANCE_S
    if label.start_s is None or label.end_s is None:
        return False
    return any(e["start_s"] >= label.start_s - tol and e["end_s"] <= label.end_s + tol
               and e["end_s"] > label.start_s - tol for e in evidence)


def _ids(result: dict) -> list[str]:
    path = Path((result.get("audio") or {}).get("path") or "")
    return [result.get("call_id") or "", path.stem, path.name]


def backtest(results: list[dict], labels: Labels, *, settings: dict | None = None) -> BacktestReport:
    """Compare results (the JSON result contract) with the labels, rule by rule."""
    by_id: dict[str, dict] = {}
    for result in results:
        if result.get("verdict") == "error":
            continue
        for key in _ids(result):
            if key:
                by_id.setdefault(key, result)
    matched = {cid: by_id[cid] for cid in labels.calls if cid in by_id}
    unmatched = tuple(cid for cid in labels.calls if cid not in by_id)
    rule_ids = list(dict.fromkeys(r for rules in labels.calls.values() for r in rules))
    stats = []
    for rule in rule_ids:
        n = agree = tp = fp = fn = ev_n = ev_ok = 0
        enabled = True
        wrong = []
        for cid, result in matched.items():
            label = labels.calls[cid].get(rule)
            finding = next((f for f in result["findings"] if f["rule"] == rule), None)
            if label is None or finding is None:
                continue
            enabled = finding.get("enabled", True)
            n += 1
            predicted = finding["status"]
            agree += predicted == label.status
            tp += predicted == "fail" and label.status == "fail"
            fp += predicted == "fail" and label.status != "fail"
            fn += predicted != "fail" and label.status == "fail"
            if predicted != label.status:
                wrong.append((cid, label.status, predicted))
            if predicted == "fail" and label.status == "fail" and label.start_s is not None:
                ev_n += 1
                ev_ok += _evidence_near(finding.get("evidence", []), label)
        if n:
            stats.append(RuleStats(rule, n, agree, tp, fp, fn, ev_n, ev_ok, enabled, tuple(wrong)))
    errors = tuple(abs(float(matched[cid]["score"]) - labels.scores[cid]) for cid in matched
                   if cid in labels.scores and matched[cid].get("score") is not None)
    rulebook = next((r["versions"].get("rulebook") for r in matched.values()), None)
    return BacktestReport(labels.path, rulebook, len(matched), tuple(stats), errors, unmatched, settings or {})


# --------------------------------------------------------------------------- where results come from
def stored_analyses(store: Store) -> list[tuple[Analysis, dict]]:
    """(analysis, call metadata) of every call in a results store that has a current result."""
    out = []
    for row in store.current_rows():
        call = store.find_call(str(row["call_pk"]))
        if call.analysis is not None:
            out.append((call.analysis, call.metadata or {}))
    return out


def judge_all(config: Config, analyses: list[tuple[Analysis, dict]]) -> list[dict]:
    """Re-judge stored analyses under a rulebook (no audio, no ASR)."""
    from qa_audio.pipeline import Scorer

    scorer = Scorer(config)
    out = []
    for analysis, metadata in analyses:
        facts = {k: v for k, v in (metadata or {}).items() if k == "hangup_side" and v}
        out.append(scorer.judge(analysis, facts=facts).to_dict())
    return out


SWEEPABLE = ("matching.", "scoring.", "rules.")


def with_setting(config: Config, key: str, value: str) -> Config:
    """A copy of the config with one setting changed: ``matching.min_similarity``, ``scoring.pass_score``
    or ``rules.GRT-1.min_similarity`` / ``.weight`` / ``.enabled``."""
    parts = key.split(".")
    try:
        if parts[0] in ("matching", "scoring") and len(parts) == 2:
            section = getattr(config, parts[0])
            current = getattr(section, parts[1])
            return replace(config, **{parts[0]: replace(section, **{parts[1]: _typed(value, current)})})
        if parts[0] == "rules" and len(parts) == 3:
            rule = config.rule(parts[1])
            current = getattr(rule, parts[2])
            kind = float if parts[2] == "min_similarity" else None
            new = replace(rule, **{parts[2]: _typed(value, current, kind)})
            return replace(config, rules=tuple(new if r.id == rule.id else r for r in config.rules))
    except (AttributeError, TypeError, ValueError) as exc:
        raise QAError(f"--sweep {key}={value}: {exc}") from None
    raise QAError(f"--sweep {key}: expected matching.NAME, scoring.NAME or rules.ID.FIELD")


def _typed(value: str, current, kind=None):
    if kind is None:
        kind = type(current) if current is not None else str
    if kind is bool:
        if value.lower() not in ("true", "false"):
            raise ValueError(f"expected true or false, got {value!r}")
        return value.lower() == "true"
    if kind in (int, float):
        return kind(value)
    return value


def sweep(config: Config, analyses: list[tuple[Analysis, dict]], labels: Labels, key: str,
          values: list[str]) -> list[tuple[str, BacktestReport]]:
    """Backtest the same analyses under each value of one setting."""
    return [(value, backtest(judge_all(with_setting(config, key, value), analyses), labels,
                             settings={key: value})) for value in values]


# --------------------------------------------------------------------------- text
def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def render_report(report: BacktestReport, *, show_disagreements: bool = True) -> str:
    lines = [f"backtest: {report.calls} labelled call(s) with results, rulebook {report.rulebook or '?'}, "
             f"labels {report.labels}"]
    header = f"  {'rule':<7}{'calls':>6}{'accuracy':>10}{'precision':>11}{'recall':>8}{'tp':>5}{'fp':>4}{'fn':>4}" \
             f"{'evidence ≤1 s':>15}"
    lines += [header, "  " + "-" * (len(header) - 2)]
    for s in report.rules:
        evidence = f"{s.evidence_ok}/{s.evidence_checked}" if s.evidence_checked else "–"
        off = "  (disabled)" if not s.enabled else ""
        lines.append(f"  {s.rule:<7}{s.calls:>6}{_pct(s.accuracy):>10}{_pct(s.precision):>11}{_pct(s.recall):>8}"
                     f"{s.tp:>5}{s.fp:>4}{s.fn:>4}{evidence:>15}{off}")
    if report.score_errors:
        within = sum(e <= 5 for e in report.score_errors)
        lines.append(f"  score: mean absolute difference {report.score_mae:.2f} points over "
                     f"{len(report.score_errors)} call(s), max {max(report.score_errors):g}, "
                     f"{within} within 5 points")
    if report.unmatched:
        lines.append(f"  no result for {len(report.unmatched)} labelled call(s): {', '.join(report.unmatched[:10])}"
                     + (" …" if len(report.unmatched) > 10 else ""))
    if show_disagreements:
        for s in report.rules:
            for cid, label, predicted in s.disagreements[:10]:
                lines.append(f"  {s.rule}: {cid} labelled {label}, judged {predicted}")
    return "\n".join(lines)


def render_sweep(key: str, runs: list[tuple[str, BacktestReport]]) -> str:
    """One line per value: micro accuracy over all labelled rules, score MAE, and each rule whose accuracy moves."""
    moving = [r.rule for r in runs[0][1].rules
              if len({_pct(rep.rule(r.rule).accuracy) for _, rep in runs}) > 1] if runs else []
    head = f"  {key:<28}{'accuracy':>10}{'score MAE':>11}" + "".join(f"{r:>9}" for r in moving)
    lines = [f"sweep of {key} (accuracy per rule shown where it changes)", head]
    for value, rep in runs:
        total = sum(s.calls for s in rep.rules)
        acc = sum(s.agree for s in rep.rules) / total if total else None
        mae = "–" if rep.score_mae is None else f"{rep.score_mae:.2f}"
        lines.append(f"  {value:<28}{_pct(acc):>10}{mae:>11}" + "".join(f"{_pct(rep.rule(r).accuracy):>9}"
                                                                      for r in moving))
    return "\n".join(lines)


def collect(inputs: list[str], config: Config, *, scorer=None, progress=None) -> tuple[list[dict], list]:
    """Results and (where there are any) analyses from the inputs: results stores (``.sqlite``/``.db`` or a
    ``postgresql://`` address, re-judged under ``config``), result JSON files (taken as they are) and audio
    files or folders (scored now). Returns (results, analyses); a bad audio file becomes an error result."""
    from qa_audio.batch.jobs import AUDIO_SUFFIXES, find_audio
    from qa_audio.pipeline import Scorer
    from qa_audio.results.store import is_server, open_store
    from qa_audio.signal.audio import load_audio

    results: list[dict] = []
    analyses: list[tuple[Analysis, dict]] = []
    audio: list[Path] = []
    for item in inputs:
        path = Path(item)
        if is_server(item) or (path.suffix.lower() in (".sqlite", ".db", ".sqlite3") and not path.is_dir()):
            with open_store(item, readonly=True) as store:
                stored = stored_analyses(store)
            analyses += stored
            results += judge_all(config, stored)
        elif path.is_dir():
            audio += find_audio(path)
            found = (_parse_result(p) for p in sorted(path.glob("*.json")) if p.name != "labels.json")
            results += [data for data, _problem in found if data is not None]
        elif path.suffix.lower() == ".json":
            results.append(_read_result(path))
        elif path.suffix.lower() in AUDIO_SUFFIXES or path.exists():
            audio.append(path)
        else:
            raise QAError(f"{path}: not found")
    if audio:
        scorer = scorer or Scorer(config)
        for i, path in enumerate(audio, start=1):
            try:
                recording = load_audio(path, max_duration_s=scorer.config.audio.max_duration_s)
                analysis = scorer.recheck(scorer.analyze(recording), recording)
            except QAError as exc:
                results.append({"call_id": path.stem, "verdict": "error", "error": str(exc),
                                "audio": {"path": str(path)}})
                continue
            analyses.append((analysis.to_dict(), {}))
            results.append(scorer.judge(analysis).to_dict())
            if progress:
                progress(i, len(audio), path)
    return results, analyses


def _parse_result(path: Path) -> tuple[dict | None, str | None]:
    """(result, None) for a qa-audio result JSON file, else (None, what is wrong with it)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"not a result JSON file: {exc}"
    if not isinstance(data, dict) or "findings" not in data:
        return None, "not a qa-audio result (no findings)"
    return data, None


def _read_result(path: Path) -> dict:
    data, problem = _parse_result(path)
    if data is None:
        raise QAError(f"{path}: {problem}")
    return data
