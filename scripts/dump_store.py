"""Everything the store-reading code makes of one store, as one JSON file, to compare two trees.

    PYTHONPATH=TREE python scripts/dump_store.py STORE OUT.json [LABELS.json]

Run it from outside either tree (so ``PYTHONPATH`` decides which qa_audio is imported), once
with the old tree and once with the new one, and compare the files: every stored analysis
re-judged under the default rulebook, ``show`` (text and ``--json``) for every call, the HR
export (json) and, with labels, a backtest. A refactoring that changes none of them changed
no behaviour a user sees.
"""
from __future__ import annotations

import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path

from qa_audio import cli
from qa_audio.batch.backtest import judge_all, stored_analyses
from qa_audio.config import load_config
from qa_audio.results.store import open_store


def _run(*argv: object) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = cli.main([str(a) for a in argv])
    return code, out.getvalue()


def main() -> int:
    db, target = sys.argv[1], Path(sys.argv[2])
    labels = sys.argv[3] if len(sys.argv) > 3 else None
    with open_store(db, readonly=True) as store:
        results = judge_all(load_config(None), stored_analyses(store))
        ids = [r["call_id"] for r in store.current_rows()]
    for r in results:            # what differs between two trees by construction
        r.get("versions", {}).pop("qa_audio", None)
        r.get("settings", {}).pop("config", None)
    dump: dict = {"judged": sorted(results, key=lambda r: r["audio"]["path"]),
                  "show": {cid: _run("show", cid, "--db", db) for cid in ids},
                  "show_json": {cid: _run("show", cid, "--db", db, "--json") for cid in ids}}
    with tempfile.TemporaryDirectory() as tmp:
        hr = Path(tmp) / "hr.json"
        dump["export"] = _run("export", "--db", db, "--period", "2000-01-01..2100-01-01", "-o", hr, "--format", "json")
        dump["export_file"] = json.loads(hr.read_text(encoding="utf-8")) if hr.exists() else None
    if dump["export_file"]:
        dump["export_file"].get("about", {}).pop("generated_at", None)
    if labels:
        dump["backtest"] = _run("backtest", "--labels", labels, db)
    target.write_text(json.dumps(dump, ensure_ascii=False, indent=1, sort_keys=True, default=str), encoding="utf-8")
    print(f"{target}: {len(results)} results re-judged, {len(ids)} calls shown")
    return 0


if __name__ == "__main__":
    sys.exit(main())
