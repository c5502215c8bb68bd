"""The people around the review, from the terminal: ``users``, ``assign``, ``appeals`` and ``calibration``.

Whoever runs these holds the store file, so acts as an admin; ``--user`` names the account that acts
(it goes to the audit trail, and for a ruling must be a supervisor other than the one disputed).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from qa_audio.errors import QAError
from qa_audio.results.records import APPEAL_STATUSES

STORE_HELP = ("results store: an SQLite file, or a PostgreSQL database as postgresql://USER@HOST:PORT/DB"
              " (password from ~/.pgpass or PGPASSWORD)")

EXIT_OK = 0


def add_commands(sub) -> None:
    """users, assign, appeals, calibration."""
    _users_commands(sub)

    p = sub.add_parser("assign", help="give calls' review to a supervisor (their spot-check queue shows them first)")
    p.add_argument("call_ids", nargs="+", metavar="CALL_ID")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--to", metavar="SUPERVISOR", help="the supervisor who reviews them")
    who.add_argument("--unassign", action="store_true", help="back to the shared queue")
    p.add_argument("--user", default="cli", help="who assigns (kept in the audit trail)")
    p.add_argument("--db", required=True, help=STORE_HELP)
    p.set_defaults(func=cmd_assign)

    appeals = sub.add_parser("appeals", help="agents' appeals (申诉): list them, rule on one")
    asub = appeals.add_subparsers(dest="appeals_command", required=True)
    p = asub.add_parser("list", help="appeals with their state (open ones by default)")
    p.add_argument("--status", choices=(*APPEAL_STATUSES, "all"), default="open")
    p.add_argument("--json", action="store_true")
    p.add_argument("--db", required=True, help=STORE_HELP)
    p.set_defaults(func=cmd_appeals_list)
    p = asub.add_parser("decide", help="rule on an appeal: uphold (the finding stands) or overturn (reversed)")
    p.add_argument("appeal_id", type=int, metavar="APPEAL")
    p.add_argument("ruling", choices=("uphold", "overturn"))
    p.add_argument("--reason", required=True)
    p.add_argument("--user", required=True, help="the supervisor who rules (not the one whose decision is disputed)")
    p.add_argument("--db", required=True, help=STORE_HELP)
    p.add_argument("--config", help="config YAML (its privacy settings mask the reason)")
    p.set_defaults(func=cmd_appeals_decide)

    _calibration_commands(sub)


def _users_commands(sub) -> None:
    users = sub.add_parser("users", help="accounts of the review page: admins, supervisors, agents")
    usub = users.add_subparsers(dest="users_command", required=True)
    p = usub.add_parser("add", help="add a user, or reset one's password and role "
                                    "(the password from the terminal, stdin or $QA_AUDIO_PASSWORD)")
    p.add_argument("name")
    _role_arguments(p, required=False)
    p.add_argument("--db", required=True, help=STORE_HELP)
    p.set_defaults(func=cmd_users_add)
    p = usub.add_parser("list", help="every account with its role and scope")
    p.add_argument("--db", required=True, help=STORE_HELP)
    p.set_defaults(func=cmd_users_list)
    for name, active in (("disable", False), ("enable", True)):
        p = usub.add_parser(name, help=f"{name} an account ({'its sessions end at once' if not active else 'again'})")
        p.add_argument("name")
        p.add_argument("--db", required=True, help=STORE_HELP)
        p.set_defaults(func=cmd_users_active, active=active)
    p = usub.add_parser("set-role", help="change an account's role and scope")
    p.add_argument("name")
    _role_arguments(p, required=True)
    p.add_argument("--db", required=True, help=STORE_HELP)
    p.set_defaults(func=cmd_users_set_role)


def _role_arguments(p, *, required: bool) -> None:
    p.add_argument("--role", choices=("admin", "supervisor", "agent"), required=required,
                   help="admin: manages users, sees all; supervisor: reviews their teams' calls; agent: sees and "
                        "appeals their own calls" + ("" if required else
                                                     " (default: a new user is a supervisor, an existing one keeps "
                                                     "the role and scope)"))
    p.add_argument("--team", action="append", default=[], metavar="TEAM",
                   help="a supervisor's team (repeat for several; none: every team)")
    p.add_argument("--agent-id", metavar="ID", help="an agent's id, as the calls' metadata gives it")


def _teams(args) -> list[str]:
    return [t.strip() for item in args.team for t in item.split(",") if t.strip()]


def cmd_users_add(args) -> int:
    import getpass

    from qa_audio.results.access import check_user_fields
    from qa_audio.results.review import hash_password
    from qa_audio.results.store import open_store

    teams, role, agent_id = _teams(args), args.role, args.agent_id
    if role is None:
        with open_store(args.db) as store:
            existing = store.account(args.name)
        role = existing.role if existing else "supervisor"
        if existing and not teams and not agent_id:
            teams, agent_id = list(existing.teams), existing.agent_id
    check_user_fields(args.name, role, teams, agent_id)
    password = os.environ.get("QA_AUDIO_PASSWORD")
    if password is None:
        if not sys.stdin.isatty():
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass(f"password for {args.name}: ")
            if getpass.getpass("again: ") != password:
                raise QAError("the passwords do not match")
    with open_store(args.db) as store:
        store.add_user(args.name, hash_password(password), role=role, teams=teams, agent_id=agent_id)
        store.log_action(actor="cli", action="user:add", reason=f"{args.name} {role}")
        user = store.account(args.name)
    assert user is not None
    print(f"user {args.name} ({user.role}, {user.describe().split(chr(9))[2]}) can now log in to qa-audio serve")
    return EXIT_OK


def cmd_users_list(args) -> int:
    from qa_audio.results.store import open_store

    with open_store(args.db, readonly=True) as store:
        users = store.users()
    print("name\trole\tscope\tstate")
    for user in users:
        print(user.describe())
    return EXIT_OK


def _existing(store, name: str):
    user = store.account(name)
    if user is None:
        raise QAError(f"{store.path}: no user {name!r} (qa-audio users list shows them)")
    return user


def cmd_users_active(args) -> int:
    from qa_audio.results.store import open_store

    with open_store(args.db, create=False) as store:
        _existing(store, args.name)
        store.set_active(args.name, args.active)
        store.log_action(actor="cli", action="user:enable" if args.active else "user:disable", reason=args.name)
    print(f"user {args.name} {'enabled' if args.active else 'disabled: its sessions have ended'}")
    return EXIT_OK


def cmd_users_set_role(args) -> int:
    from qa_audio.results.access import check_user_fields
    from qa_audio.results.store import open_store

    teams = _teams(args)
    check_user_fields(args.name, args.role, teams, args.agent_id)
    with open_store(args.db, create=False) as store:
        before = _existing(store, args.name)
        store.set_role(args.name, role=args.role, teams=teams, agent_id=args.agent_id)
        store.log_action(actor="cli", action="user:set-role", reason=f"{args.name} {before.role} → {args.role}")
        user = store.account(args.name)
    assert user is not None
    print(user.describe())
    return EXIT_OK


def cmd_assign(args) -> int:
    from qa_audio.results.store import open_store

    with open_store(args.db, create=False) as store:
        if args.to:
            to = _existing(store, args.to)
            if not to.reviews or not to.active:
                raise QAError(f"{args.to} is not an active supervisor or admin")
        calls = [store.find_call(ref) for ref in args.call_ids]
        for call in calls:
            if args.to and not to.scope.allows(call.metadata):
                raise QAError(f"{call.call_id}: team {call.metadata.get('team') or '(none)'} is not one of "
                              f"{args.to}'s teams")
        for call in calls:
            store.assign(call_pk=call.pk, to=args.to, by=args.user)
    print(f"{len(calls)} call(s) " + (f"assigned to {args.to}" if args.to else "back in the shared queue"))
    return EXIT_OK


def cmd_appeals_list(args) -> int:
    from qa_audio.results.store import open_store

    with open_store(args.db, readonly=True) as store:
        appeals = store.appeals(status=None if args.status == "all" else args.status)
    if args.json:
        print(json.dumps([a.to_dict() for a in appeals], ensure_ascii=False, indent=1))
        return EXIT_OK
    if not appeals:
        print(f"no {'' if args.status == 'all' else args.status + ' '}appeals")
    for a in appeals:
        ruled = f" · {a.status} by {a.ruled_by} {(a.ruled_at or '')[:16]}: {a.ruling_reason}" if not a.open else ""
        print(f"#{a.id} {a.call_id} {a.rule} [{a.status}] by {a.agent} ({a.agent_id or '–'}) {a.filed_at[:16]}: "
              f"{a.reason} · disputes {a.disputed_by or 'the checker'}{ruled}")
    return EXIT_OK


def cmd_appeals_decide(args) -> int:
    from qa_audio.config import load_config
    from qa_audio.results.appeals import decide_appeal
    from qa_audio.results.store import open_store

    privacy = load_config(args.config).privacy
    with open_store(args.db, create=False) as store:
        ruler = _existing(store, args.user)
        if not ruler.active:
            raise QAError(f"{args.user} is disabled")
        ruling = decide_appeal(store, args.appeal_id, ruler=ruler, ruling=args.ruling, reason=args.reason,
                               privacy=privacy)
    a = ruling.appeal
    shown = "–" if ruling.score is None else format(ruling.score, "g")
    print(f"appeal #{a.id} {a.call_id} {a.rule}: {a.status} by {a.ruled_by}; final score {shown} {ruling.verdict}")
    return EXIT_OK


def _calibration_commands(sub) -> None:
    cal = sub.add_parser("calibration", help="calibration sessions: supervisors judge the same calls blind")
    csub = cal.add_subparsers(dest="calibration_command", required=True)
    p = csub.add_parser("create", help="a new session: calls and the reviewers who judge them")
    p.add_argument("name")
    p.add_argument("--calls", nargs="+", required=True, metavar="CALL_ID")
    p.add_argument("--reviewers", required=True, help="two or more supervisors, comma-separated")
    p.add_argument("--user", required=True, help="the supervisor who sets it up")
    p.add_argument("--db", required=True, help=STORE_HELP)
    p.set_defaults(func=cmd_calibration_create)
    p = csub.add_parser("list", help="the sessions and who has handed in what")
    p.add_argument("--db", required=True, help=STORE_HELP)
    p.set_defaults(func=cmd_calibration_list)
    p = csub.add_parser("report", help="agreement per rule, Cohen's / Fleiss' kappa, the calls they disagree on")
    p.add_argument("session_id", type=int, metavar="SESSION")
    p.add_argument("--json", action="store_true")
    p.add_argument("--db", required=True, help=STORE_HELP)
    p.set_defaults(func=cmd_calibration_report)
    p = csub.add_parser("labels", help="the reviewers' majority decisions as labels for qa-audio backtest")
    p.add_argument("session_id", type=int, metavar="SESSION")
    p.add_argument("-o", "--output", metavar="FILE")
    p.add_argument("--db", required=True, help=STORE_HELP)
    p.set_defaults(func=cmd_calibration_labels)


def cmd_calibration_create(args) -> int:
    from qa_audio.results.calibration import create_session
    from qa_audio.results.store import open_store

    with open_store(args.db, create=False) as store:
        creator = _existing(store, args.user)
        sid = create_session(store, name=args.name, creator=creator, members=args.reviewers.split(","),
                             call_refs=args.calls)
        session = store.calibration(sid)
    assert session is not None
    print(f"calibration session {sid} '{session.name}': {len(session.calls)} call(s), reviewers "
          f"{', '.join(session.members)}; each hands it in on the review page (/calibration/{sid})")
    return EXIT_OK


def _session(store, sid: int):
    session = store.calibration(sid)
    if session is None:
        raise QAError(f"{store.path}: no calibration session {sid}")
    return session


def cmd_calibration_list(args) -> int:
    from qa_audio.results.store import open_store

    with open_store(args.db, readonly=True) as store:
        sessions = store.calibration_sessions()
    if not sessions:
        print("no calibration sessions")
    for s in sessions:
        done = ", ".join(f"{m} {n}/{len(s.calls)}" for m, n in s.progress().items())
        print(f"#{s.id} {s.name} · by {s.created_by} {s.created_at[:16]} · {len(s.calls)} call(s) · handed in: {done}")
    return EXIT_OK


def cmd_calibration_report(args) -> int:
    from qa_audio.results.calibration import build_report, render_report
    from qa_audio.results.store import open_store

    with open_store(args.db, readonly=True) as store:
        report = build_report(store, _session(store, args.session_id))
    print(json.dumps(report.to_dict(), ensure_ascii=False, indent=1) if args.json else render_report(report))
    return EXIT_OK


def cmd_calibration_labels(args) -> int:
    from qa_audio.results.calibration import calibration_labels
    from qa_audio.results.store import open_store

    with open_store(args.db, readonly=True) as store:
        labels = calibration_labels(store, _session(store, args.session_id))
    text = json.dumps(labels, ensure_ascii=False, indent=1)
    if args.output:
        try:
            Path(args.output).write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            raise QAError(f"{args.output}: cannot write: {exc.strerror or exc}") from None
        print(f"{args.output}: {sum(len(v) for v in labels['calls'].values())} label(s) on {len(labels['calls'])} "
              f"call(s)", file=sys.stderr)
    else:
        print(text)
    return EXIT_OK
