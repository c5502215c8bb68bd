"""YAML with origins: every node knows its file and line, duplicate keys are refused, sections are
read with type and range checks, and ``extends:`` chains are merged (settings by key, rules by id)."""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import yaml

from qa_audio.errors import ConfigError


# --------------------------------------------------------------------------- YAML with lines
class _Node:
    """A parsed YAML value that remembers its line (1-based)."""

    __slots__ = ("key_line", "line", "origin", "value")

    def __init__(self, value: Any, line: int, origin: Path | None = None):
        self.value = value
        self.line = line
        self.key_line = line
        self.origin = origin          # the file it was read from (an extends: chain has several)


class _Duplicate(Exception):
    def __init__(self, key: str, line: int, first: int):
        self.key, self.line, self.first = key, line, first


def _compose(node: yaml.Node, origin: Path, where: str = "") -> _Node:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, _Node] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            name = f"{where}.{key}" if where else key
            if key in out:      # YAML would let the second silently win: a rulebook must not
                raise _Duplicate(name, key_node.start_mark.line + 1, out[key].key_line)
            out[key] = _compose(value_node, origin, name)
            out[key].key_line = key_node.start_mark.line + 1
        return _Node(out, line, origin)
    if isinstance(node, yaml.SequenceNode):
        return _Node([_compose(item, origin, f"{where}[{i}]") for i, item in enumerate(node.value)], line, origin)
    scalar = yaml.safe_load(yaml.serialize(node)) if node.tag != "tag:yaml.org,2002:str" else node.value
    return _Node(scalar, line, origin)


def _load_yaml(path: Path) -> _Node:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, f"cannot read: {exc}") from None
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(path, f"invalid YAML: {problem}", line=line) from None
    if root is None:
        raise ConfigError(path, "file is empty")
    try:
        return _compose(root, path)
    except _Duplicate as dup:
        raise ConfigError(path, f"duplicate key (first given on line {dup.first}); YAML would silently keep only "
                                f"one of them", line=dup.line, field=dup.key) from None


_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


class _Section:
    """Typed access to one mapping of the config, with errors that name the field."""

    def __init__(self, path: Path, node: _Node, prefix: str):
        path = node.origin or path
        if not isinstance(node.value, dict):
            raise ConfigError(path, "expected a mapping", line=node.line, field=prefix or None)
        self.path, self.node, self.prefix = path, node, prefix
        self.used: set[str] = set()

    def _name(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def has(self, key: str) -> bool:
        return key in self.node.value

    def raw(self, key: str) -> _Node | None:
        self.used.add(key)
        return self.node.value.get(key)

    def fail(self, key: str, message: str) -> ConfigError:
        node = self.node.value.get(key, self.node)
        return ConfigError(node.origin or self.path, message, line=node.line, field=self._name(key))

    def section(self, key: str, *, required: bool = False) -> _Section:
        node = self.raw(key)
        if node is None or node.value is None:
            if required:
                raise self.fail(key, "missing required section")
            return _Section(self.path, _Node({}, self.node.line), self._name(key))
        return _Section(self.path, node, self._name(key))

    def get(self, key: str, kind: type | tuple, default: Any = ..., *, choices=None,
            min_value: float | None = None, max_value: float | None = None) -> Any:
        node = self.raw(key)
        if node is None:
            if default is ...:
                raise self.fail(key, "missing required field")
            return default
        value = node.value
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if float in kinds and isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
            value = float(value)      # YAML 1.1 reads 1e3 (no dot) as text
        if float in kinds and isinstance(value, str) and value.strip().lower().lstrip("+-.") in ("nan", "inf",
                                                                                              "infinity"):
            value = float(value.strip().lstrip("."))
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(key, f"must be a finite number, got {value!r}")
        if value is None and type(None) in kinds:
            return None
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join(k.__name__ for k in kinds if k is not type(None))
            raise self.fail(key, f"expected {names}, got {value!r}")
        if choices is not None and value not in choices:
            raise self.fail(key, f"expected one of {', '.join(map(str, choices))}, got {value!r}")
        if min_value is not None and value < min_value:
            raise self.fail(key, f"must be at least {min_value}, got {value!r}")
        if max_value is not None and value > max_value:
            raise self.fail(key, f"must be at most {max_value}, got {value!r}")
        return value

    def str_list(self, key: str) -> tuple[str, ...]:
        node = self.raw(key)
        if node is None:
            return ()
        items = node.value if isinstance(node.value, list) else None
        if items is None or not all(isinstance(i.value, str) and i.value for i in items):
            raise self.fail(key, "expected a list of names")
        return tuple(i.value for i in items)

    def check_unknown(self) -> None:
        for key, node in self.node.value.items():
            if key not in self.used:
                raise ConfigError(node.origin or self.path, "unknown field", line=node.key_line, field=self._name(key))


MAX_EXTENDS = 8


def _load_tree(path: Path, chain: tuple[Path, ...] = ()) -> tuple[_Node, tuple[Path, ...]]:
    """The config at ``path`` with its ``extends:`` chain merged in; the files of the chain, base first."""
    root = _load_yaml(path)
    if not isinstance(root.value, dict):
        raise ConfigError(path, "expected a mapping at the top of the config", line=root.line)
    base_node = root.value.get("extends")
    if base_node is None:
        return root, (path,)
    if not isinstance(base_node.value, str) or not base_node.value:
        raise ConfigError(path, "expected the path of the config this one extends", line=base_node.line,
                          field="extends")
    base_path = (path.parent / base_node.value).resolve()
    if base_path in chain or base_path == path.resolve():
        raise ConfigError(path, f"extends {base_node.value}, which extends this file again (a loop)",
                          line=base_node.line, field="extends")
    if len(chain) >= MAX_EXTENDS:
        raise ConfigError(path, f"more than {MAX_EXTENDS} configs in the extends chain", line=base_node.line,
                          field="extends")
    if not base_path.is_file():
        raise ConfigError(path, f"extends {base_node.value}: no such file ({base_path})", line=base_node.line,
                          field="extends")
    base, files = _load_tree(base_path, (*chain, path.resolve()))
    overlay = _Node({k: v for k, v in root.value.items() if k != "extends"}, root.line, path)
    return _merge(base, overlay, ""), (*files, path)


def _merge(base: _Node, over: _Node, where: str) -> _Node:
    """``over`` on top of ``base``: mappings merge key by key, the rule list merges by rule id
    (an entry with ``remove: true`` drops the rule), anything else is replaced."""
    if isinstance(base.value, dict) and isinstance(over.value, dict):
        out = dict(base.value)
        for key, node in over.value.items():
            out[key] = _merge(out[key], node, f"{where}.{key}" if where else key) if key in out else node
        return _Node(out, over.line, over.origin)
    if where == "rules" and isinstance(base.value, list) and isinstance(over.value, list):
        return _merge_rules(base, over)
    return over


def _rule_id(node: _Node) -> str | None:
    value = node.value.get("id") if isinstance(node.value, dict) else None
    return value.value if value is not None and isinstance(value.value, str) else None


def _merge_rules(base: _Node, over: _Node) -> _Node:
    rules = list(base.value)
    for entry in over.value:
        rule_id = _rule_id(entry)
        at = next((i for i, r in enumerate(rules) if rule_id and _rule_id(r) == rule_id), None)
        remove = entry.value.get("remove") if isinstance(entry.value, dict) else None
        if remove is not None:
            if remove.value is not True or set(entry.value) != {"id", "remove"}:
                raise ConfigError(entry.origin, "remove: true takes only the rule's id", line=remove.line,
                                  field=f"rules.{rule_id}.remove")
            if at is None:
                raise ConfigError(entry.origin, f"remove: no rule {rule_id} in the config this one extends",
                                  line=entry.line, field=f"rules.{rule_id}")
            del rules[at]
        elif at is None:
            rules.append(entry)
        else:
            rules[at] = _merge(rules[at], entry, f"rules.{rule_id}")
    return _Node(rules, over.line, over.origin)


def _origins(root: _Node) -> dict[str, str]:
    """Where every scalar setting came from (``scoring.pass_score`` → ``file:line``), rules by id."""
    out: dict[str, str] = {}

    def walk(node: _Node, where: str) -> None:
        if isinstance(node.value, dict):
            for key, child in node.value.items():
                walk(child, f"{where}.{key}" if where else key)
        elif isinstance(node.value, list) and where == "rules":
            for item in node.value:
                rule_id = _rule_id(item)
                if rule_id:
                    walk(item, f"rules.{rule_id}")
        else:
            out[where] = f"{node.origin}:{node.line}"

    walk(root, "")
    return out
