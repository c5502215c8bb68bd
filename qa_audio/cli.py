"""The ``qa-audio`` command: a thin layer over the library.

Exit codes: 0 success; 1 a config or model problem stops the command; 2 some
input could not be read (every other input is still scored).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import __version__
from .errors import ConfigError, QAError

EXIT_OK, EXIT_FATAL, EXIT_BAD_INPUT = 0, 1, 2


def _fmt_s(value) -> str:
    if value is None:
        return "–"
    m, s = divmod(float(value), 60)
    return f"{int(m)}:{s:04.1f}"


def render_summary(result: dict) -> str:
    """A readable per-call summary of one result-contract dict."""
    if result["verdict"] == "error":
        return f"{result['call_id']}: ERROR {result['error']}"
    t = result["timing"]
    a = result["audio"]
    lines = [f"{result['call_id']}  score {result['score']:g}  verdict {result['verdict'].upper()}"
             f"  ({a['duration_s']:.1f} s, {a['channels']} ch, {a['sample_rate_hz']} Hz)"]
    inter = t["interruptions"]
    lines.append(f"  timing: answered {t['answered']}, rings {t['rings']}, ring-to-answer "
                 f"{'–' if t['ring_to_answer_s'] is None else format(t['ring_to_answer_s'], '.1f') + ' s'}, "
                 f"holds {len(t['holds'])}, interruptions {'n/a (mono)' if inter is None else len(inter)}, "
                 f"dead air {len(t['dead_air'])}")
    for f in result["findings"]:
        mark = {"pass": "ok  ", "fail": "FAIL", "n/a": "n/a "}[f["status"]]
        extra = f" -{f['deduction']:g}" if f["deduction"] else ""
        flags = (" RED-LINE" if f["redline"] else "") + (" (low ASR confidence)" if f["low_confidence"] else "")
        lines.append(f"  [{mark}] {f['rule']:<6} {f['title']}{extra}{flags}")
        if f["status"] == "fail":
            lines.append(f"           {f['detail']}")
            for e in f["evidence"][:3]:
                lines.append(f"           {_fmt_s(e['start_s'])}-{_fmt_s(e['end_s'])} {e['channel']}: {e['text']}")
    return "\n".join(lines)


def cmd_score(args) -> int:
    from .config import load_config
    from .pipeline import Scorer

    config = load_config(args.config)
    scorer = Scorer(config)
    status = EXIT_OK
    for path in args.paths:
        result = scorer.score_path(path).to_dict()
        if result["verdict"] == "error":
            status = EXIT_BAD_INPUT
            print(f"qa-audio: error: {result['error']}", file=sys.stderr)
        if args.json:
            print(json.dumps(result, ensure_ascii=False), flush=True)
        elif result["verdict"] != "error":
            print(render_summary(result) + "\n", flush=True)
    return status


def cmd_doctor(args) -> int:
    import importlib.metadata as md

    from .config import load_config
    from .models import bundled_versions, cache_dir, resolve_model

    ok = True
    print(f"qa-audio {__version__}  python {sys.version.split()[0]}")
    try:
        config = load_config(args.config)
        print(f"config: {config.path}  rulebook {config.rulebook_name} {config.rulebook}  ({len(config.rules)} rules)")
    except ConfigError as exc:
        print(f"config: PROBLEM {exc}")
        return EXIT_FATAL
    for dist in ("faster-whisper", "ctranslate2", "webrtcvad-wheels", "librosa", "jieba", "numpy", "opencc",
                 "cn2an", "pypinyin", "rapidfuzz", "soundfile", "soxr", "av"):
        try:
            print(f"  {dist:<18} {md.version(dist)}")
        except md.PackageNotFoundError:
            print(f"  {dist:<18} MISSING")
            ok = False
    for dist, ver in bundled_versions().items():
        print(f"  {dist:<18} {ver or 'MISSING'}")
    print(f"model cache: {cache_dir()}")
    try:
        info = resolve_model(config.model)
        print(f"model: {info.name} ({info.source}) at {info.path}")
        if args.load:
            from .models import load_model
            load_model(config.model)
            print("model: loads OK")
    except QAError as exc:
        print(f"model: PROBLEM {exc}")
        ok = False
    print("status: OK" if ok else "status: PROBLEMS FOUND")
    return EXIT_OK if ok else EXIT_FATAL


def cmd_rules_check(args) -> int:
    from .config import load_config

    config = load_config(args.config)
    print(f"{config.path}: OK, rulebook {config.rulebook_name} {config.rulebook}, {len(config.rules)} rules, "
          f"{len(config.lexicons)} lexicons")
    return EXIT_OK


def cmd_rules_explain(args) -> int:
    from .config import load_config

    config = load_config(args.config)
    rule = config.rule(args.rule_id)
    if rule.metric is not None:
        print(f"{rule.id}: {rule.title}\n  source: {rule.source}\n  measured from the audio: "
              f"{rule.metric.describe()}\n  weight {rule.weight:g}, severity {rule.severity}")
        return EXIT_OK
    verb = "must say" if rule.expect == "present" else "must not say"
    groups = (" all of: " + ", ".join(rule.all_of)) if rule.all_of else (" any of: " + ", ".join(rule.any_of))
    print(f"{rule.id}: {rule.title}\n  source: {rule.source}\n  the {rule.role} {verb}{groups}"
          f"\n  where: {rule.window.describe()}\n  weight {rule.weight:g}, severity {rule.severity}")
    if rule.redline_lexicons:
        print(f"  red line (fails the call outright): {', '.join(rule.redline_lexicons)}")
    for name in rule.lexicons:
        lex = config.lexicons[name]
        print(f"  {name} ({lex.path}): " + " | ".join(e.text for e in lex.entries))
    m = config.matching
    print(f"  matching: exact, homophone (same pinyin), or pinyin similarity ≥ {m.min_similarity:g} "
          f"for phrases of {m.exact_below_syllables}+ syllables")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qa-audio", description="Offline call-quality checker for contact centres.")
    parser.add_argument("--version", action="version", version=f"qa-audio {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("score", help="score recorded calls")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--config", help="config YAML (default: the bundled configs/default.yaml)")
    p.add_argument("--json", action="store_true", help="one JSON result per call, one per line")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("doctor", help="check the model, packages and config")
    p.add_argument("--config")
    p.add_argument("--load", action="store_true", help="also load the model")
    p.set_defaults(func=cmd_doctor)

    rules = sub.add_parser("rules", help="validate or explain the rulebook")
    rsub = rules.add_subparsers(dest="rules_command", required=True)
    p = rsub.add_parser("check", help="validate a config and its lexicons")
    p.add_argument("config", nargs="?")
    p.set_defaults(func=cmd_rules_check)
    p = rsub.add_parser("explain", help="say in plain words what a rule checks")
    p.add_argument("rule_id")
    p.add_argument("--config")
    p.set_defaults(func=cmd_rules_explain)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except QAError as exc:
        print(f"qa-audio: error: {exc}", file=sys.stderr)
        return EXIT_FATAL
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
