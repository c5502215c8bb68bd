"""The results store itself, from the terminal: ``store info`` (where it is, its schema and what it holds)
and ``store copy`` (move a whole store into a new one: an SQLite file into PostgreSQL)."""
from __future__ import annotations

import sys

from qa_audio.cli.people import STORE_HELP


def add_commands(sub) -> None:
    store = sub.add_parser("store", help="the results store: what it holds; copy it into PostgreSQL")
    ssub = store.add_subparsers(dest="store_command", required=True)
    p = ssub.add_parser("info", help="the store's database, schema version and counts")
    p.add_argument("--db", required=True, help=STORE_HELP)
    p.set_defaults(func=cmd_store_info)
    p = ssub.add_parser("copy", help="copy every call, result, review, appeal and account into a new, empty "
                                     "store (e.g. results.sqlite → postgresql://…), in one transaction")
    p.add_argument("source", help="the store to copy from (" + STORE_HELP + ")")
    p.add_argument("target", help="an empty store to copy into (created if it is a new SQLite file)")
    p.set_defaults(func=cmd_store_copy)


def cmd_store_info(args) -> int:
    from qa_audio.results.store import open_store

    with open_store(args.db, readonly=True) as store:
        counts = store.counts()
        print(f"store {store.path}: {store.dialect.kind}, schema {store.schema_version}")
        print(", ".join(f"{n} {k.replace('_', ' ')}" for k, n in counts.items()))
    return 0


def cmd_store_copy(args) -> int:
    from qa_audio.results.store import open_store
    from qa_audio.results.store.transfer import copy_store

    with open_store(args.source, create=False) as source, open_store(args.target) as target:
        copied = copy_store(source, target,
                            on_table=lambda table, n: print(f"  {table}: {n}", file=sys.stderr) if n else None)
        print(f"copied {source.path} into {target.path}: {copied.get('calls', 0)} calls, "
              f"{copied.get('results', 0)} results, {copied.get('reviews', 0)} reviews, "
              f"{copied.get('users', 0)} accounts ({sum(copied.values())} rows)")
    return 0
