"""YAML loading that remembers the line of every key, so errors can say `file:line`.

PyYAML's node tree carries marks; we build plain data from it and a map from
each key path (as pydantic reports it in `loc`) to its 1-based line.
"""
from __future__ import annotations

import math
from pathlib import Path

import yaml

from harness.ops.secrets import expand_env

MAX_BYTES = 1 << 20      # a scenario or inventory file is a few kilobytes; 1 MiB is plenty
MAX_DEPTH = 32           # nesting, aliases followed
MAX_NODES = 20_000       # values once aliases are expanded (an alias bomb stops here)
MAX_INT = 2**63 - 1      # larger integers overflow floats, seeds and sockets downstream


class InputError(Exception):
    """Invalid input: one or more `file:line: message` problems. Exit code 2."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


class _Limits:
    """Counts the values built, so that no file can make the build run away."""

    def __init__(self, path: Path):
        self.path, self.nodes = path, 0
        self.loader = yaml.SafeLoader("")  # one per file: making one costs more than a value
        self.scalars: dict[int, object] = {}  # an alias repeats a node: read it once

    def take(self, node, depth: int) -> None:
        self.nodes += 1
        where = f"{self.path}:{node.start_mark.line + 1}"
        if depth > MAX_DEPTH:
            raise InputError([f"{where}: nested more than {MAX_DEPTH} levels deep (or an alias "
                              "that refers to itself); a drill file needs a handful"])
        if self.nodes > MAX_NODES:
            raise InputError([f"{where}: more than {MAX_NODES:,} values once aliases are "
                              "expanded; refusing to build it (an alias bomb?)"])


def _build(node, path: tuple, lines: dict, limits: _Limits, depth: int = 0):
    limits.take(node, depth)
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise InputError([f"{limits.path}:{key_node.start_mark.line + 1}: a key must be "
                                  "a plain word, not a list or a mapping"])
            key = _scalar(key_node, limits)
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                key = key_node.value  # `yes:`, `1.5:`, `null:` as written
            lines[path + (key,)] = key_node.start_mark.line + 1
            out[key] = _build(value_node, path + (key,), lines, limits, depth + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (i,), lines, limits, depth + 1)
                for i, item in enumerate(node.value)]
    value = _scalar(node, limits)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        key = ".".join(str(k) for k in path) or "value"
        raise InputError([f"{limits.path}:{node.start_mark.line + 1}: {key}: a "
                          f"{len(str(abs(value)))}-digit number; no value in a drill file needs "
                          f"more than {MAX_INT:,} (hint: check for a stray digit or a unit "
                          "left out, e.g. 30s)"])
    return value


def _scalar(node, limits: _Limits):
    if id(node) in limits.scalars:
        return limits.scalars[id(node)]
    try:
        value = limits.loader.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError) as exc:  # an unknown tag, a 5,000-digit number
        what = getattr(exc, "problem", None) or str(exc)
        raise InputError([f"{limits.path}:{node.start_mark.line + 1}: cannot read this value: "
                          f"{what}"]) from None
    if isinstance(value, str) and "${" in value:  # a credential kept out of the file
        try:
            value = expand_env(value)
        except KeyError as exc:
            raise InputError([f"{limits.path}:{node.start_mark.line + 1}: ${{{exc.args[0]}}} is "
                              "not set in the environment (hint: export it before the run)"]) from None
    limits.scalars[id(node)] = value
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError([f"{limits.path}:{node.start_mark.line + 1}: {node.value} is not a "
                          "finite number"])
    return value


def load_yaml(path: Path) -> tuple[dict, dict]:
    """(data, lines) of a YAML mapping file; InputError names the line when it is not one."""
    path = Path(path)
    try:
        kind = "ok" if path.is_file() else "not a regular file" if path.exists() else "no such file"
    except OSError as exc:  # a name too long, a loop of links
        kind = exc.strerror or str(exc)
    if kind != "ok":  # a device or a fifo would be read for ever
        raise InputError([f"{str(path)[:200]}: {kind} (hint: give the path of a YAML file)"])
    try:
        if path.stat().st_size > MAX_BYTES:
            raise InputError([f"{path}: larger than {MAX_BYTES // 1024} KiB; a drill file is a "
                              "few kilobytes (is it the right file?)"])
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise InputError([f"{path}: cannot read: {exc.strerror}"]) from exc
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[:exc.start].count(b"\n") + 1
        raise InputError([f"{path}:{line}: not UTF-8 text (byte {exc.object[exc.start]:#04x}); "
                          "save the file as UTF-8"]) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        raise InputError([f"{path}: nested far too deeply to be a drill file"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        what = getattr(exc, "problem", None) or str(exc)
        raise InputError([f"{where}: YAML syntax error: {what} "
                          "(hint: check indentation and that every key ends with ':')"]) from exc
    if node is None or not isinstance(node, yaml.MappingNode):
        raise InputError([f"{path}:1: expected a mapping of keys (name:, load:, faults: ...)"])
    lines: dict = {}
    limits = _Limits(path)
    try:
        return _build(node, (), lines, limits), lines
    finally:
        limits.loader.dispose()


def line_of(lines: dict, loc: tuple) -> int:
    """The line of the deepest part of a pydantic error location the file has; a part it has
    not (the member's tag pydantic puts in for a tagged union, `probes.0.postgres.rate`) is
    stepped over."""
    path, line = (), lines.get((), 1)
    for part in loc:
        if path + (part,) in lines:
            path += (part,)
            line = lines[path]
    return line


def line_problems(err, path: Path, lines: dict, prefix: tuple = ()) -> list[str]:
    """A pydantic ValidationError as `file:line: key.path: message` problems."""
    out = []
    for e in err.errors():
        loc = prefix + tuple(e["loc"])
        where = ".".join(str(x) for x in loc) or "(top)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = f"unknown key '{loc[-1]}' (hint: check its spelling; README lists every key)"
        elif e["type"] == "missing":
            msg = f"missing required key '{loc[-1]}'"
        out.append(f"{path}:{line_of(lines, loc)}: {where}: {msg}")
    return out
