"""Credentials never written out: redaction of every output, and `${ENV}` in input files.

A credential can reach a drill three ways: in a URL's userinfo
(`https://user:pw@host`), in a query parameter or field named like a secret
(`?token=`, `api_key:`), or from the environment through `${NAME}` in a YAML
file. All three are masked wherever the harness writes or prints: events,
summaries, reports, JUnit, game-day records, the console.
"""
from __future__ import annotations

import os
import re

MASK = "***"
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s'\"<>]+)@")
_SECRET_WORD = r"(?:pass(?:word|wd)?|secret|token|api[_-]?key|apikey|auth(?:orization)?|key|sig(?:nature)?|credentials?)"
_QUERY = re.compile(r"(?P<name>[?&;]" + _SECRET_WORD + r")=(?P<value>[^&;#\s'\"<>]+)", re.I)
# a libpq connection string's `password=...` (a data probe's dsn), quoted or not
_CONNINFO = re.compile(r"(?P<name>(?:^|(?<=[\s'\"]))pass(?:word|wd)?\s*=\s*)(?P<value>'(?:[^'\\]|\\.)*'|[^\s'\"]+)", re.I)
_HEADER = re.compile(r"(?P<name>\b(?:authorization|x-api-key|x-auth-token)\s*[:=]\s*)(?P<value>[^\s,'\"]+(?: [^\s,'\"]+)?)", re.I)
_FIELD = re.compile(r"^" + _SECRET_WORD + r"$|_" + _SECRET_WORD + r"$", re.I)
_ENV = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)\}")

_from_env: set[str] = set()  # values `${NAME}` brought in: masked wherever they show up


def redact_text(text: str) -> str:
    """The text with every credential masked."""
    for value in sorted(_from_env, key=len, reverse=True):
        text = text.replace(value, MASK)
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    text = _QUERY.sub(lambda m: f"{m['name']}={MASK}", text)
    text = _CONNINFO.sub(lambda m: f"{m['name']}{MASK}", text)
    return _HEADER.sub(lambda m: f"{m['name']}{MASK}", text)


def redact(value):
    """Any JSON-like value with credentials masked: strings, and fields named like secrets."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: (MASK if isinstance(k, str) and _FIELD.search(k) and v not in (None, "")
                    else redact(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


def remember_secret(value: str) -> None:
    """A credential read from elsewhere (a password file): masked wherever it shows up."""
    if value:
        _from_env.add(value)


def expand_env(text: str) -> str:
    """`${NAME}` replaced by the environment's value, which is then treated as a secret;
    KeyError(NAME) when it is not set."""
    def one(m: re.Match) -> str:
        name = m["name"]
        if name not in os.environ:
            raise KeyError(name)
        value = os.environ[name]
        if value:
            _from_env.add(value)
        return value
    return _ENV.sub(one, text)
