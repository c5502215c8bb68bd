"""The ``qa-audio`` command: a thin layer over the library.

Exit codes: 0 success; 1 a config or model problem stops the command; 2 some
input could not be read (every other input is still scored).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from qa_audio.cli import people, stores
from qa_audio.cli.people import STORE_HELP
from qa_audio.config import METADATA_FIELDS
from qa_audio.errors import ConfigError, QAError
from qa_audio.i18n import DEFAULT_LANGUAGE, LANGUAGES
from qa_audio.results.records import StoredResult
from qa_audio.results.show import render_summary
from qa_audio.version import __version__

EXIT_OK, EXIT_FATAL, EXIT_BAD_INPUT = 0, 1, 2


def cmd_score(args) -> int:
    from qa_audio.config import load_config
    from qa_audio.pipeline import Scorer
    from qa_audio.results.privacy import Redactor

    config = load_config(args.config, profile=args.profile)

    def tell(stage: str, seconds: float) -> None:
        print(f"qa-audio: {stage} {seconds:.2f} s", file=sys.stderr, flush=True)

    scorer = Scorer(config, on_stage=tell if args.timings else None)
    redactor = Redactor(config.privacy)
    status = EXIT_OK
    for path in args.paths:
        result = redactor.result(scorer.score_path(path).to_dict())
        if result["verdict"] == "error":
            status = EXIT_BAD_INPUT
            print(f"qa-audio: error: {result['error']}", file=sys.stderr)     # masked by redactor.result
        if args.json:
            print(json.dumps(result, ensure_ascii=False), flush=True)
        elif result["verdict"] != "error":
            print(render_summary(StoredResult.from_dict(result)) + "\n", flush=True)
    return status


def cmd_batch(args) -> int:
    import signal

    from qa_audio.batch.runner import run_batch
    from qa_audio.config import load_config

    if not args.folder and not args.rescore:
        raise QAError("give a folder of recordings (or --rescore to re-judge what the store holds)")
    config = load_config(args.config, profile=args.profile)
    # cron and systemd stop jobs with SIGTERM: finish the bookkeeping as for Ctrl-C
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    summary = run_batch(args.folder, db=args.db, config=config, workers=args.workers, metadata_csv=args.metadata,
                        out_dir=args.out, rescore=args.rescore, scheduler=args.scheduler,
                        command=" ".join(["qa-audio", *sys.argv[1:]]))
    print(summary.describe(), file=sys.stderr)
    from qa_audio.results.privacy import Redactor

    mask = Redactor(config.privacy).identifier
    for _path, cause in summary.errors[:20]:
        print(f"  failed: {mask(cause)}", file=sys.stderr)
    if len(summary.errors) > 20:
        print(f"  … and {len(summary.errors) - 20} more (see the errors table)", file=sys.stderr)
    if args.json:
        print(json.dumps(summary.to_dict()))
    return EXIT_OK


def cmd_show(args) -> int:
    from qa_audio.config import load_config
    from qa_audio.results.privacy import Redactor
    from qa_audio.results.show import render_call
    from qa_audio.results.store import open_store

    redactor = Redactor(load_config(args.config).privacy)
    with open_store(args.db, readonly=True) as store:
        call = store.find_call(args.call_id)
        if args.json:
            result = redactor.result(call.result.to_dict() if call.result else {})
            metadata = {k: redactor.identifier(v) if isinstance(v, str) else v for k, v in call.metadata.items()}
            reviews = {rule: review.to_dict() for rule, review in call.reviews.items()}
            appeals = [a.to_dict() for a in store.appeals(result_id=call.result_id)] if call.result_id else []
            print(json.dumps(dict(result, metadata=metadata, reviews=reviews, final_score=call.final_score,
                                  final_verdict=call.final_verdict, appeals=appeals), ensure_ascii=False, indent=1))
        else:
            print(render_call(call, mask=redactor.text, mask_id=redactor.identifier))
            for a in store.appeals(result_id=call.result_id) if call.result_id else []:
                ruled = f"; {a.status} by {a.ruled_by}: {a.ruling_reason}" if not a.open else "; open"
                print(f"appeal #{a.id} {a.rule} by {a.agent} {a.filed_at[:16]}: {a.reason}{ruled}")
    return EXIT_OK


def cmd_export(args) -> int:
    from qa_audio.results.export import build_export, parse_period
    from qa_audio.results.sheets import write_export
    from qa_audio.results.store import open_store

    period = parse_period(args.period)
    fmt = args.format or (Path(args.output).suffix.lstrip(".").lower() or "xlsx")
    with open_store(args.db, readonly=True) as store:
        export = build_export(store, period=period, by=args.by)
        language = args.language
        if language is None:            # the config's review.language (zh-CN unless it says otherwise)
            from qa_audio.config import load_config

            language = load_config(args.config).review.language if args.config else DEFAULT_LANGUAGE
        files = write_export(export, args.output, fmt=fmt, language=language)
    about = export.about
    print(f"exported {about['calls']} calls in {len(export.groups)} {args.by} rows for {about['period']} "
          f"({about['from']} to {about['to']}) → {', '.join(map(str, files))}", file=sys.stderr)
    if about["calls_without_call_time"]:
        print(f"note: {about['calls_without_call_time']} calls in the store have no call time and are in no period "
              f"(give --metadata or a filename pattern)", file=sys.stderr)
    return EXIT_OK


def cmd_review(args) -> int:
    from qa_audio.results.review import review_finding
    from qa_audio.results.store import open_store

    with open_store(args.db, create=False) as store:
        call = store.find_call(args.call_id)
        score, verdict = review_finding(store, call, args.rule, decision=args.decision, reason=args.reason,
                                        reviewer=args.user)
    shown = "–" if score is None else format(score, "g")
    print(f"{call.call_id}: {args.rule} {args.decision}ed by {args.user}; final score {shown} {verdict}")
    return EXIT_OK


def cmd_labels(args) -> int:
    from qa_audio.results.review import review_labels
    from qa_audio.results.store import open_store

    with open_store(args.db, readonly=True) as store:
        labels = review_labels(store)
    text = json.dumps(labels, ensure_ascii=False, indent=1)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    return EXIT_OK


def cmd_backtest(args) -> int:
    from qa_audio.batch.backtest import backtest, collect, load_labels, render_report, render_sweep, sweep
    from qa_audio.config import load_config

    config = load_config(args.config, profile=args.profile)
    labels = load_labels(args.labels)

    def progress(i, n, path):
        print(f"scored {i}/{n} {path}", file=sys.stderr, flush=True)

    results, analyses = collect(args.inputs, config, progress=progress)
    for r in results:
        if r.get("verdict") == "error":
            print(f"qa-audio: error: {r['error']}", file=sys.stderr)
    report = backtest(results, labels)
    if report.calls == 0:
        raise QAError(f"{args.labels}: none of the {len(labels.calls)} labelled calls has a result in "
                      f"{', '.join(args.inputs)} (calls are matched by call id, the file name without extension)")
    runs = []
    for spec in args.sweep or []:
        key, _, values = spec.partition("=")
        if not values:
            raise QAError(f"--sweep {spec}: expected KEY=V1,V2,…")
        if not analyses:
            raise QAError("--sweep needs audio or a results store (result JSON files cannot be re-judged)")
        runs.append((key, sweep(config, analyses, labels, key, values.split(","))))
    if args.json:
        sweeps = [{"key": key, "runs": [{"value": v, "report": rep.to_dict()} for v, rep in r]} for key, r in runs]
        print(json.dumps({"report": report.to_dict(), "sweeps": sweeps}, ensure_ascii=False))
    else:
        print(render_report(report, show_disagreements=not args.quiet))
        for key, sweep_runs in runs:
            print()
            print(render_sweep(key, sweep_runs))
    return EXIT_OK


def cmd_serve(args) -> int:
    from qa_audio.config import load_config
    from qa_audio.web import serve

    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"qa-audio: warning: serving on {args.host}: anyone who can reach this address sees the login page; "
            "put it behind HTTPS",
            file=sys.stderr,
        )
    try:
        serve(args.db, load_config(args.config), host=args.host, port=args.port, threads=args.threads,
              trusted_proxy=args.trusted_proxy)
    except OSError as exc:
        raise QAError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def cmd_redact_audio(args) -> int:
    from qa_audio.config import load_config
    from qa_audio.results.redact_audio import write_redacted_audio
    from qa_audio.results.store import open_store

    config = load_config(args.config)
    with open_store(args.db, readonly=True) as store:
        call = store.find_call(args.call_id)
    spans = write_redacted_audio(call, args.output, settings=config.privacy, bleep=args.bleep)
    print(
        f"{args.output}: {len(spans)} personal number(s) {'bleeped' if args.bleep else 'silenced'}"
        + "".join(f"\n  {a:.2f}-{b:.2f} s {kind}" for a, b, kind in spans)
    )
    return EXIT_OK


def cmd_doctor(args) -> int:
    import importlib.metadata as md

    from qa_audio.config import load_config
    from qa_audio.speech.models import bundled_versions, cache_dir, resolve_model

    ok = True
    print(f"qa-audio {__version__}  python {sys.version.split()[0]}")
    try:
        config = load_config(args.config)
        print(f"config: {config.path}  rulebook {config.rulebook_name} {config.rulebook}  ({len(config.rules)} rules)")
    except ConfigError as exc:
        print(f"config: PROBLEM {exc}")
        return EXIT_FATAL
    for dist in (
        "faster-whisper",
        "ctranslate2",
        "webrtcvad-wheels",
        "librosa",
        "jieba",
        "numpy",
        "opencc",
        "cn2an",
        "pypinyin",
        "rapidfuzz",
        "soundfile",
        "soxr",
        "av",
    ):
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
            from qa_audio.speech.models import load_model

            load_model(config.model)
            print("model: loads OK")
    except QAError as exc:
        print(f"model: PROBLEM {exc}")
        ok = False
    print("status: OK" if ok else "status: PROBLEMS FOUND")
    return EXIT_OK if ok else EXIT_FATAL


def cmd_rules_check(args) -> int:
    from qa_audio.config import load_config

    config = load_config(args.config)
    print(
        f"{config.path}: OK, rulebook {config.rulebook_name} {config.rulebook}, {len(config.rules)} rules, "
        f"{len(config.lexicons)} lexicons"
    )
    if len(config.files) > 1:
        print("extends: " + " ← ".join(config.files))
        base = config.files[0]
        changed = {k: v for k, v in config.origins.items() if not v.startswith(base + ":")}
        print(f"{len(changed)} value(s) set on top of {base}:")
        for key, where in changed.items():
            print(f"  {key:<40} {where}")
    return EXIT_OK


def cmd_rules_explain(args) -> int:
    from qa_audio.config import load_config
    from qa_audio.judge.rules import explain

    config = load_config(args.config)
    rule = config.rule(args.rule_id)
    print(explain(rule, config))
    fields = {k.split(".", 2)[2]: v for k, v in config.origins.items() if k.startswith(f"rules.{rule.id}.")}
    if fields:
        print("where each value comes from:")
        for key, where in fields.items():
            print(f"  {key:<24} {where}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qa-audio", description="Offline call-quality checker for contact centres.")
    parser.add_argument("--version", action="version", version=f"qa-audio {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _scoring_commands(sub)
    _results_commands(sub)
    _admin_commands(sub)
    people.add_commands(sub)
    stores.add_commands(sub)
    return parser


def _scoring_commands(sub) -> None:
    """score, batch: recordings in, results out."""

    p = sub.add_parser("score", help="score recorded calls")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--config", help="config YAML (default: the bundled configs/default.yaml)")
    p.add_argument("--json", action="store_true", help="one JSON result per call, one per line")
    p.add_argument("--profile", help="a speed profile from the config (e.g. fast: beam 1)")
    p.add_argument("--timings", action="store_true", help="each stage's time on stderr as it ends")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("batch", help="score every recording under a folder into a results store (the nightly job)")
    p.add_argument("folder", nargs="?", metavar="DIR", help="folder of recordings, searched recursively")
    p.add_argument("--db", required=True, help=STORE_HELP + " (created if missing)")
    p.add_argument("--workers", type=int, default=1, help="parallel worker processes, each with its own model")
    p.add_argument("--metadata", metavar="CSV", help="sidecar CSV: file, " + ", ".join(METADATA_FIELDS))
    p.add_argument("--out", metavar="DIR", help="also write one JSON result per call here")
    p.add_argument(
        "--rescore",
        action="store_true",
        help="re-judge stored calls with the current rulebook, from stored transcripts (no ASR)",
    )
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="run on a Dask distributed cluster")
    p.add_argument("--config", help="config YAML (default: the bundled configs/default.yaml)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.add_argument("--profile", help="a speed profile from the config (e.g. fast: beam 1)")
    p.set_defaults(func=cmd_batch)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError(f"expected 1 to 256, got {value}")
    return value


def _results_commands(sub) -> None:
    """show, export, review, labels, backtest: what is made of stored results."""
    p = sub.add_parser("show", help="one stored call: timeline, transcript and findings")
    p.add_argument("call_id", metavar="CALL_ID", help="call id (file stem), a prefix of its audio hash, or its number")
    p.add_argument("--db", required=True, help=STORE_HELP)
    p.add_argument("--json", action="store_true", help="the stored result as JSON")
    p.add_argument("--config", help="config YAML (its privacy settings decide the masking)")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("export", help="scores per agent or team and period, for HR (xlsx, csv or json)")
    p.add_argument("--db", required=True, help=STORE_HELP)
    p.add_argument("--period", required=True, help="2026-11, 2026, 2026-11-03, 2026-W45 or 2026-11-01..2026-11-15")
    p.add_argument("--by", choices=("agent", "team", "client"), default="agent")
    p.add_argument("--format", choices=("xlsx", "csv", "json"), help="default: from the output file's suffix")
    p.add_argument("-o", "--output", required=True, metavar="FILE")
    p.add_argument("--language", choices=LANGUAGES,
                   help=f"headings and words of the xlsx and csv files (default: the config's review.language, "
                        f"else {DEFAULT_LANGUAGE})")
    p.add_argument("--config", help="config YAML (its review.language is the export's default language)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("review", help="confirm or overturn one finding of a stored call (recomputes its final score)")
    p.add_argument("call_id", metavar="CALL_ID")
    p.add_argument("rule", metavar="RULE_ID")
    p.add_argument("decision", choices=("confirm", "overturn"))
    p.add_argument("--reason", required=True)
    p.add_argument("--user", required=True, help="who decides (kept in the audit trail)")
    p.add_argument("--db", required=True, help=STORE_HELP)
    p.set_defaults(func=cmd_review)

    p = sub.add_parser("labels", help="reviewed findings as a labels file for qa-audio backtest")
    p.add_argument("--db", required=True, help=STORE_HELP)
    p.add_argument("-o", "--output", metavar="FILE")
    p.set_defaults(func=cmd_labels)

    p = sub.add_parser("backtest", help="each rule's precision, recall and accuracy against human labels")
    p.add_argument("--labels", required=True, metavar="LABELS.json", help="qa-audio-labels/1 file (see README)")
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="AUDIO_OR_RESULTS",
        help="audio files or folders (scored now), a results store .sqlite (re-judged under --config, "
        "no ASR) or result .json files",
    )
    p.add_argument("--config", help="rulebook to backtest (default: the bundled one)")
    p.add_argument("--profile", help="model profile from the config, for audio inputs")
    p.add_argument(
        "--sweep",
        action="append",
        metavar="KEY=V1,V2,…",
        help="also backtest each value of one setting, e.g. matching.min_similarity=0.7,0.8,0.9 or "
        "rules.GRT-1.min_similarity=0.75,0.85 (repeatable)",
    )
    p.add_argument("--json", action="store_true", help="the report as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no list of disagreeing calls")
    p.set_defaults(func=cmd_backtest)


def _admin_commands(sub) -> None:
    """serve, redact-audio, doctor, rules."""
    p = sub.add_parser("serve", help="the supervisors' review page: queue, calls, audio, timeline, confirm/overturn")
    p.add_argument("--db", required=True, help=STORE_HELP + ", written by qa-audio batch")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--config", help="config YAML (its privacy and review settings apply)")
    p.add_argument("--threads", type=_positive_int, help="worker threads (default: review.threads, 8)")
    p.add_argument("--trusted-proxy", metavar="ADDRESS",
                   help="the reverse proxy's address (e.g. 127.0.0.1): its X-Forwarded-Proto/-For/-Host are believed")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("redact-audio", help="write a copy of a call with spoken personal numbers silenced or bleeped")
    p.add_argument("call_id", metavar="CALL_ID")
    p.add_argument("--db", required=True, help=STORE_HELP)
    p.add_argument("-o", "--output", required=True, metavar="FILE.wav")
    p.add_argument("--bleep", action="store_true", help="a 1 kHz tone instead of silence")
    p.add_argument("--config")
    p.set_defaults(func=cmd_redact_audio)

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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except QAError as exc:
        print(f"qa-audio: error: {exc}", file=sys.stderr)
        return EXIT_FATAL
    except KeyboardInterrupt:
        print("qa-audio: interrupted; what was scored is kept, rerun to continue", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `qa-audio … | head`: the reader has gone, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:
        from qa_audio.results.store import damaged, database_errors, display_name

        if not isinstance(exc, database_errors()):
            raise
        # a store damaged past its first pages shows only when read; a server that went away mid-command
        where = display_name(getattr(args, "db", None) or "the results store")
        print(f"qa-audio: error: {where}: {damaged(exc)}", file=sys.stderr)
        return EXIT_FATAL


if __name__ == "__main__":
    sys.exit(main())
