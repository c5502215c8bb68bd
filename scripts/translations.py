#!/usr/bin/env python3
"""The translation catalogues: extract the messages, merge them into each language, compile, check.

    python scripts/translations.py extract   # qa_audio/translations/messages.pot from the code and templates
    python scripts/translations.py update    # merge the template into every messages.po (new: untranslated)
    python scripts/translations.py compile   # messages.po → messages.mo (what the pages and exports read)
    python scripts/translations.py check     # exit 1 unless every message is translated, placeholders agree,
                                             # and each .mo is what its .po compiles to

Sources: the package and its templates; keywords: ``_``/``gettext`` in templates and pages, ``N_`` where a
message is marked in the library and translated where it is shown, ``_l`` for lazy labels.
"""
from __future__ import annotations

import io
import re
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
CATALOGUES = ROOT / "qa_audio" / "translations"
TEMPLATE = CATALOGUES / "messages.pot"
KEYWORDS = {"_": None, "gettext": None, "N_": None, "_l": None, "lazy_gettext": None}
METHODS = [("qa_audio/**.py", "python"), ("qa_audio/web/templates/**.html", "jinja2")]
PLACEHOLDER = re.compile(r"%\((\w+)\)[sdrf]")


def extract() -> Catalog:
    catalog = Catalog(project="qa-audio", charset="utf-8")
    for _file, _line, message, _comments, context in extract_from_dir(
            str(ROOT), METHODS, keywords=KEYWORDS, options_map={"qa_audio/web/templates/**.html": {}}):
        catalog.add(message, None, [], context=context)
    return catalog


def _write(catalog: Catalog, path: Path) -> None:
    buf = io.BytesIO()
    write_po(buf, catalog, omit_header=False, sort_output=True, no_location=True, width=120, ignore_obsolete=True)
    path.write_bytes(buf.getvalue())


def _languages() -> list[Path]:
    return sorted(CATALOGUES.glob("*/LC_MESSAGES/messages.po"))


def _read(path: Path) -> Catalog:
    with path.open("rb") as fh:
        return read_po(fh)


def _mo_bytes(catalog: Catalog) -> bytes:
    buf = io.BytesIO()
    write_mo(buf, catalog)
    return buf.getvalue()


def check() -> list[str]:
    """What is wrong with the catalogues (nothing: an empty list)."""
    problems = []
    wanted = {m.id for m in extract() if m.id}
    for po_path in _languages():
        catalog = _read(po_path)
        have = {m.id: m for m in catalog if m.id}
        for msgid in sorted(wanted - set(have)):
            problems.append(f"{po_path}: not in the catalogue: {msgid!r} (run update)")
        for msgid in sorted(set(have) - wanted):
            problems.append(f"{po_path}: no longer used: {msgid!r} (run update)")
        for msgid in sorted(wanted & set(have)):
            message = have[msgid]
            if not message.string:
                problems.append(f"{po_path}: untranslated: {msgid!r}")
            elif message.fuzzy:
                problems.append(f"{po_path}: fuzzy: {msgid!r}")
            elif set(PLACEHOLDER.findall(msgid)) != set(PLACEHOLDER.findall(str(message.string))):
                problems.append(f"{po_path}: placeholders differ: {msgid!r} → {message.string!r}")
        mo_path = po_path.with_suffix(".mo")
        if not mo_path.is_file():
            problems.append(f"{mo_path}: missing (run compile)")
        else:
            with mo_path.open("rb") as fh:
                compiled = {m.id: m.string for m in read_mo(fh) if m.id}
            translated = {m.id: m.string for m in catalog if m.id and m.string and not m.fuzzy}
            if compiled != translated:
                problems.append(f"{mo_path}: out of date with {po_path.name} (run compile)")
    return problems


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "check"
    if command == "extract":
        _write(extract(), TEMPLATE)
        print(f"wrote {TEMPLATE}")
    elif command == "update":
        template = extract()
        _write(template, TEMPLATE)
        for po_path in _languages():
            catalog = _read(po_path)
            catalog.update(template, no_fuzzy_matching=True)
            _write(catalog, po_path)
            print(f"updated {po_path}")
    elif command == "compile":
        for po_path in _languages():
            po_path.with_suffix(".mo").write_bytes(_mo_bytes(_read(po_path)))
            print(f"compiled {po_path.with_suffix('.mo')}")
    elif command == "check":
        problems = check()
        for line in problems:
            print(line, file=sys.stderr)
        if problems:
            return 1
        print(f"catalogues complete: {len(_languages())} language(s)")
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
