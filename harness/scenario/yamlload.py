"""YAML loading that remembers the line of every key, so errors can say `file:line`.

PyYAML's node tree carries marks; we build plain data from it and a map from
each key path (as pydantic reports it in `loc`) to its 1-based line.
"""
from __future__ import annotations

from pathlib import Path

import yaml


class InputError(Exception):
    """Invalid input: one or more `file:line: message` problems. Exit code 2."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def _build(node, path: tuple, lines: dict):
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out = {}
        for key_node, value_node in node.value:
            key = key_node.value
            lines[path + (key,)] = key_node.start_mark.line + 1
            out[key] = _build(value_node, path + (key,), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (i,), lines) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node):
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def load_yaml(path: Path) -> tuple[dict, dict]:
    """(data, lines) of a YAML mapping file; InputError names the line when it is not one."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise InputError([f"{path}: cannot read: {exc.strerror}"]) from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        what = getattr(exc, "problem", None) or str(exc)
        raise InputError([f"{where}: YAML syntax error: {what} "
                          "(hint: check indentation and that every key ends with ':')"]) from exc
    if node is None or not isinstance(node, yaml.MappingNode):
        raise InputError([f"{path}:1: expected a mapping of keys (name:, load:, faults: ...)"])
    lines: dict = {}
    return _build(node, (), lines), lines


def line_of(lines: dict, loc: tuple) -> int:
    """The line of the deepest known prefix of a pydantic error location."""
    loc = tuple(loc)
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return lines.get((), 1)


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
