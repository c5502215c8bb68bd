"""The tree shows the pipeline (#17): stages import only downwards, no import circles, small modules and
functions. Read from the source (every import, including those inside functions), no import side effects."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "qa_audio"
# lowest first: a module may import from its own floor or any floor below, never above
FLOORS = [
    ("errors", "version", "i18n"),
    ("config",),
    ("signal",),
    ("speech",),
    ("judge",),
    ("pipeline",),
    ("results",),
    ("batch",),
    ("cli", "web", "__main__"),
]
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80


def _name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _floor(module: str) -> int:
    head = module.split(".")[1] if "." in module else ""
    for i, names in enumerate(FLOORS):
        if head in names:
            return i
    raise AssertionError(f"{module}: not on any floor of tests/test_layout.py")


def _imports(module: str) -> set[str]:
    """The qa_audio modules ``module`` imports, anywhere in its body."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{module}: relative import (the package uses absolute imports)")
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("qa_audio"):
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("qa_audio")]
        found |= {n for n in names if n in MODULES and n != module}
    return found


GRAPH = {m: _imports(m) for m in MODULES}


@pytest.mark.parametrize("module", [m for m in MODULES if m != "qa_audio"])
def test_a_module_imports_only_from_its_floor_or_below(module):
    upward = [i for i in GRAPH[module] if i == "qa_audio" or _floor(i) > _floor(module)]
    assert not upward, f"{module} imports upwards: {upward}"


def test_there_is_no_import_circle():
    state: dict[str, int] = {}

    def visit(m: str, trail: list[str]) -> None:
        state[m] = 1
        for n in sorted(GRAPH[m]):
            if state.get(n) == 1:
                raise AssertionError("import circle: " + " -> ".join(trail[trail.index(n):] + [n]))
            if n not in state:
                visit(n, trail + [n])
        state[m] = 2

    for m in sorted(MODULES):
        if m not in state:
            visit(m, [m])


def test_modules_and_functions_stay_small():
    too_long = []
    for module, path in MODULES.items():
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n")
        if lines > MAX_MODULE_LINES:
            too_long.append(f"{module}: {lines} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{module}.{node.name}: {length} lines")
    assert not too_long, "; ".join(too_long)


def _tool(name: str) -> str:
    import shutil
    import sys

    here = Path(sys.executable).with_name(name)          # the test venv's own (installed by '.[test]')
    found = str(here) if here.exists() else shutil.which(name)
    assert found, f"{name} is not installed: pip install -e '.[test]'"
    return found


def test_ruff_is_clean():
    import subprocess

    proc = subprocess.run([_tool("ruff"), "check", "--no-cache", "."], cwd=PACKAGE.parent, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_mypy_is_clean(tmp_path):
    import subprocess

    proc = subprocess.run([_tool("mypy"), "--cache-dir", str(tmp_path / "mypy-cache")], cwd=PACKAGE.parent,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
