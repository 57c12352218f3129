"""App line -> level, accountId, userId, requestId, with no per-service configuration.

The line itself is always shipped unchanged; this only extracts the fields that become the
``level`` label and structured metadata. Recognised shapes, by first character:

- ``{`` -> JSON object (pino, winston, NestJS json logger, ECS, anything flat or with the
  ids inside ``req``/``user``/``context``/``meta``/…); invalid or non-object JSON falls
  through to the text rules;
- text: ANSI colours stripped, NestJS ConsoleLogger prefix, logfmt / free-text
  ``key=value`` and ``key="value"`` pairs, level words such as ``[ERROR]``, ``WARN``,
  ``error:`` or ``level: warn`` near the start of the line.

This runs once per shipped line: dispatch on the first character, dictionary lookups for
keys, precompiled linear-time regexes, and no regex at all unless a cheap substring check
says it can match. It never raises, whatever the line holds.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

import orjson

from agent.logs.speedups import native as _native

LEVELS = ("debug", "info", "warn", "error", "fatal", "unknown")
MAX_VALUE_LEN = 256  # longer id values are junk, not identifiers: ignored
_LEVEL_SCAN = 256  # level words are looked for in this many leading characters


class ParsedFields(NamedTuple):
    """``level`` is one of :data:`LEVELS`; an id is ``None`` when the line carries none."""

    level: str
    account_id: str | None
    user_id: str | None
    request_id: str | None


UNKNOWN = ParsedFields("unknown", None, None, None)

_LEVEL_WORDS = {
    "trace": "debug",
    "debug": "debug",
    "dbg": "debug",
    "verbose": "debug",
    "silly": "debug",
    "fine": "debug",
    "finer": "debug",
    "finest": "debug",
    "info": "info",
    "inf": "info",
    "information": "info",
    "informational": "info",
    "notice": "info",
    "log": "info",  # NestJS "LOG"
    "http": "info",  # winston npm levels
    "warn": "warn",
    "warning": "warn",
    "wrn": "warn",
    "error": "error",
    "err": "error",
    "eror": "error",
    "severe": "error",
    "fatal": "fatal",
    "critical": "fatal",
    "crit": "fatal",
    "panic": "fatal",
    "emergency": "fatal",
    "emerg": "fatal",
    "alert": "fatal",
}
# Exact-case hits first so the common spellings cost one lookup and no lower().
_LEVELS_BY_SPELLING = {
    **_LEVEL_WORDS,
    **{w.upper(): n for w, n in _LEVEL_WORDS.items()},
    **{w.capitalize(): n for w, n in _LEVEL_WORDS.items()},
}


def normalize_level(value: object) -> str:
    """One of :data:`LEVELS` for a level word, or for a pino/bunyan number (10…60) as int.

    Digit strings are not numbers here: in text, ``level=80`` is more often a battery than
    a severity.
    """
    if type(value) is str:
        level = _LEVELS_BY_SPELLING.get(value)
        if level is not None:
            return level
        if len(value) > 16:
            return "unknown"
        return _LEVEL_WORDS.get(value.strip().lower(), "unknown")
    if type(value) is int:
        return _numeric_level(value)
    return "unknown"


def _numeric_level(n: int) -> str:
    # pino/bunyan: 10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal; custom levels
    # in between round down.
    if n >= 60:
        return "fatal"
    if n >= 50:
        return "error"
    if n >= 40:
        return "warn"
    if n >= 30:
        return "info"
    if n >= 10:
        return "debug"
    return "unknown"


# --- key spellings -------------------------------------------------------------------------

# Roles, also the index of each result slot.
_LEVEL, _ACCOUNT, _USER, _REQUEST, _TRACE = range(5)


def _spellings(*words: str) -> set[str]:
    """camelCase, camelID, PascalCase, snake_case, kebab-case, flat and upper variants."""
    lower = [w.lower() for w in words]
    head, tail = lower[0], lower[1:]
    out = {
        "_".join(lower),
        "-".join(lower),
        "".join(lower),
        ".".join(lower),
        "_".join(lower).upper(),
        "-".join(w.capitalize() for w in lower),
        head + "".join(w.capitalize() for w in tail),
        "".join(w.capitalize() for w in lower),
    }
    if tail and tail[-1] == "id":
        stem = head + "".join(w.capitalize() for w in tail[:-1])
        out |= {stem + "ID", stem[0].upper() + stem[1:] + "ID", "-".join(lower[:-1]) + "-ID"}
        out.add("-".join(w.capitalize() for w in lower[:-1]) + "-ID")
    return out


def _key_roles() -> dict[str, int]:
    roles: dict[str, int] = {}
    for role, names in (
        (_LEVEL, [("level",), ("lvl",), ("severity",), ("levelname",), ("loglevel",)]),
        (_LEVEL, [("log", "level"), ("log", "lvl"), ("severity", "text")]),
        (_ACCOUNT, [("account", "id"), ("account",), ("acct", "id"), ("acct",)]),
        (_USER, [("user", "id"), ("user",), ("uid",)]),
        (_REQUEST, [("request", "id"), ("req", "id"), ("x", "request", "id")]),
        (_REQUEST, [("correlation", "id"), ("x", "correlation", "id")]),
        (_TRACE, [("trace", "id"), ("x", "trace", "id")]),
    ):
        for words in names:
            for key in _spellings(*words):
                roles.setdefault(key, role)
    roles["dd.trace_id"] = _TRACE
    return roles


_KEY_ROLES = _key_roles()

# An object under one of these keys is searched too (and, from the top level, the objects
# inside it: req.headers, meta.account); its "id" key takes the given role (pino's req.id,
# {"user": {"id": …}}), other keys keep their usual role. Other objects are not searched.
_NEST_ID_ROLES: dict[int | None, tuple[str, ...]] = {
    _REQUEST: ("req", "request"),
    _USER: ("user",),
    _ACCOUNT: ("account",),
    _TRACE: ("trace",),
    None: (
        "log",
        "context",
        "ctx",
        "meta",
        "metadata",
        "headers",
        "http",
        "fields",
        "data",
        "extra",
        "labels",
        "tags",
        "attributes",
        "attrs",
        "mdc",
        "session",
        "auth",
    ),
}
_NESTS: dict[str, int | None] = {
    spelling: role
    for role, keys in _NEST_ID_ROLES.items()
    for key in keys
    for spelling in (key, key.capitalize())
}
_MESSAGE_KEYS = ("msg", "message")


# --- JSON ----------------------------------------------------------------------------------

_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError
_native_walk = _native.walk_fields if _native is not None else None
_new_tuple = tuple.__new__  # skips NamedTuple's Python-level __new__ on the hot path
# Result slots while walking a line, indexed by role; the first value found wins.
_Slots = list[object]


def _walk(obj: dict[str, object], slots: _Slots, id_role: int | None, depth: int) -> None:
    nests: list[tuple[dict[str, object], int | None]] | None = None
    roles = _KEY_ROLES
    for key, value in obj.items():
        kind = type(value)
        if kind is dict:
            if depth and key in _NESTS:
                if nests is None:
                    nests = []
                nests.append((value, _NESTS[key]))  # type: ignore[arg-type]
            continue
        role = roles.get(key)
        if role is None:
            if key != "id" or id_role is None:
                continue
            role = id_role
        if slots[role] is not None:
            continue
        if kind is str:
            if value and len(value) <= MAX_VALUE_LEN:  # type: ignore[arg-type]
                slots[role] = value
        elif kind is int:
            slots[role] = value if role == _LEVEL else str(value)
        elif kind is float and role != _LEVEL:
            slots[role] = str(value)
    if nests is not None:
        for nested, nested_id_role in nests:
            _walk(nested, slots, nested_id_role, depth - 1)


def _python_parse_json(obj: dict[str, object]) -> ParsedFields:
    """Level and ids of a line already decoded as a JSON object (``_native.json_fields``
    does the same in C when built)."""
    slots: _Slots = [None, None, None, None, None]
    if _native_walk is not None:  # the same walk in C (agent/logs/speedups.py)
        _native_walk(obj, slots, None, 2, _KEY_ROLES, _NESTS, _LEVEL, MAX_VALUE_LEN)
    else:
        _walk(obj, slots, None, 2)
    if slots[_ACCOUNT] is None or slots[_USER] is None or slots[_REQUEST] is None:
        # NestJS and many services put "account=acc-1" inside the message text.
        for key in _MESSAGE_KEYS:
            message = obj.get(key)
            if type(message) is str:
                if "=" in message:
                    _scan_pairs(message, slots)
                break
    return _fields(normalize_level(slots[_LEVEL]), slots)


def _fields(level: str, slots: _Slots) -> ParsedFields:
    request = slots[_REQUEST]
    if request is None:
        request = slots[_TRACE]
    return _new_tuple(ParsedFields, (level, slots[_ACCOUNT], slots[_USER], request))


# --- text ----------------------------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;:?]*[ -/]*[@-~]")
# NestJS ConsoleLogger: "[Nest] 42  - 11/26/2026, 4:19:03 PM   ERROR [AuthService] …"; the
# date is locale-formatted, so only its length is bounded.
_NEST = re.compile(r"\[Nest\] +\d+ +- +.{0,48}? (LOG|ERROR|WARN|DEBUG|VERBOSE|FATAL) ")
# key=value / key="value" pairs; the quoted form stops at the first unescaped quote. A key
# starts where no key character precedes it (the lookbehind, checked after the first
# character so the engine can skip ahead to key-start characters), so a long run of word
# characters costs one attempt, not one per position; the possessive key never backtracks.
_PAIR = re.compile(
    r"""([A-Za-z_@](?<![\w.\-@].)[\w.\-]{0,63}+)="""
    r"""(?:"((?:[^"\\]++|\\.)*+)"|'([^']*+)'|([^\s"',;&]++))"""
)
# The same matches in C when built (about five times cheaper: no attempt per character).
_find_pairs = _native.find_pairs if _native is not None else _PAIR.findall
find_pairs = _find_pairs  # (key, double-quoted, single-quoted, bare) per pair, for stages
# Every known key spelling, lower-cased, ends in one of these just before its "=" (the
# test suite checks it); _scan_pairs spells the same check out for speed.
_KEY_ENDINGS = (
    "id=",
    "account=",
    "acct=",
    "user=",
    "level=",
    "lvl=",
    "severity=",
    "name=",
    "text=",
)
_LEVEL_NAMES = (
    "TRACE|DEBUG|INFO|NOTICE|WARNING|WARN|ERROR|ERR|FATAL|CRITICAL|CRIT|PANIC|ALERT|EMERGENCY|"
    "EMERG|SEVERE|VERBOSE"
)
# Upper-case level words: a plain alternation lets the regex engine skip ahead on its first
# character; word boundaries are checked by hand (see _text_level).
_UPPER_LEVEL = re.compile(_LEVEL_NAMES)
_BRACKET_LEVEL = re.compile(rf"\[(?i:({_LEVEL_NAMES}))\]")  # [error], [Warn]
_PREFIX_LEVEL = re.compile(rf"(?i:({_LEVEL_NAMES}))\s*:")  # "error: …" at the start
_LEVEL_FIELD = re.compile(r"(?i:level)\s*[:=]\s*[\"']?([A-Za-z]{2,16})")  # level: warn
# Characters that glue a level word into a bigger token: MY_ERROR_CODE, /ERROR/page,
# c.e.INFO. A "." after the word still ends it ("… hit an ERROR.").
_JOINS_BEFORE = frozenset("_.-/")
_JOINS_AFTER = frozenset("_-/")


def _scan_pairs(text: str, slots: _Slots) -> None:
    low = text.lower()
    # Any of _KEY_ENDINGS? Spelled out, most frequent first: 4x cheaper than any() over the
    # tuple, and the pair regex costs several times more than these substring checks.
    if not (
        "id=" in low
        or "level=" in low
        or "user=" in low
        or "account=" in low
        or "lvl=" in low
        or "severity=" in low
        or "acct=" in low
        or "name=" in low
        or "text=" in low
    ):
        return
    roles = _KEY_ROLES
    for key, double_quoted, single_quoted, bare in _find_pairs(text):
        role = roles.get(key)
        if role is None or slots[role] is not None:
            continue
        if bare:
            value = bare.rstrip(".:)]}") if bare[-1] in ".:)]}" else bare  # "acc-17." in prose
        elif double_quoted:
            value = double_quoted
            if "\\" in value:
                value = value.replace('\\"', '"').replace("\\\\", "\\")
        else:
            value = single_quoted
        if value and len(value) <= MAX_VALUE_LEN:
            slots[role] = value


def _text_level(line: str) -> str:
    if line.startswith("[Nest]"):
        m = _NEST.match(line, 0, _LEVEL_SCAN)
        if m is not None:
            return _LEVEL_WORDS[m.group(1).lower()]
    # search() from each match's end is finditer() without the iterator (half the cost
    # on the usual line, which holds no upper-case level word at all).
    m = _UPPER_LEVEL.search(line, 0, _LEVEL_SCAN)
    while m is not None:
        start, end = m.span()
        before = line[start - 1] if start else " "
        after = line[end] if end < len(line) else " "
        if not (before.isalnum() or before in _JOINS_BEFORE) and not (
            after.isalnum() or after in _JOINS_AFTER
        ):
            return _LEVEL_WORDS[m.group().lower()]
        m = _UPPER_LEVEL.search(line, end, _LEVEL_SCAN)
    if "[" in line:
        m = _BRACKET_LEVEL.search(line, 0, _LEVEL_SCAN)
        if m is not None:
            return _LEVEL_WORDS[m.group(1).lower()]
    if line.find(":", 0, 12) != -1:
        m = _PREFIX_LEVEL.match(line)
        if m is not None:
            return _LEVEL_WORDS[m.group(1).lower()]
    if line.find("evel", 0, _LEVEL_SCAN) != -1 or line.find("EVEL", 0, _LEVEL_SCAN) != -1:
        m = _LEVEL_FIELD.search(line, 0, _LEVEL_SCAN)
        if m is not None:
            return normalize_level(m.group(1))
    return "unknown"


def _parse_text(line: str) -> ParsedFields:
    if "\x1b" in line:
        line = _ANSI.sub("", line)
    if "=" not in line:
        level = _text_level(line)
        if level == "unknown":
            return UNKNOWN
        return _new_tuple(ParsedFields, (level, None, None, None))
    slots: _Slots = [None, None, None, None, None]
    _scan_pairs(line, slots)
    level = normalize_level(slots[_LEVEL])
    if level == "unknown":
        level = _text_level(line)
    return _fields(level, slots)


# --- entry point ---------------------------------------------------------------------------


def parse_line(line: str) -> ParsedFields:
    """Level and ids of one app line; :data:`UNKNOWN` when it carries none. Never raises."""
    if not line:
        return UNKNOWN
    if line[0] in "{ \t":  # only JSON candidates pay for the call
        obj = json_object(line)
        if obj is not None:
            return _parse_json(obj)
    return _parse_text(line)


def json_object(line: str) -> dict[str, object] | None:
    """The line as a JSON object, when it is one (the stages keep it as the line's fields)."""
    first = line[:1]
    if first == "{" or (first in (" ", "\t") and line.lstrip().startswith("{")):
        try:
            obj = _loads(line)
        except _JSONDecodeError:
            return None
        if type(obj) is dict:
            return obj
    return None


def _parse_json_only(line: str) -> ParsedFields:
    obj = json_object(line)
    if obj is not None:
        return _parse_json(obj)
    return _parse_level_only(line)


def _parse_level_only(line: str) -> ParsedFields:
    if "\x1b" in line:
        line = _ANSI.sub("", line)
    level = _text_level(line)
    return UNKNOWN if level == "unknown" else _new_tuple(ParsedFields, (level, None, None, None))


def _parse_text_pairs(line: str) -> ParsedFields:
    return _parse_text(line) if line else UNKNOWN


if _native is not None:
    _native.configure_json_fields(
        _KEY_ROLES,
        _NESTS,
        MAX_VALUE_LEN,
        _MESSAGE_KEYS,
        _scan_pairs,
        _LEVELS_BY_SPELLING,
        normalize_level,
        ParsedFields,
    )
    _parse_json: Callable[[dict[str, object]], ParsedFields] = _native.json_fields
else:
    _parse_json = _python_parse_json
parse_json_object = _parse_json


def parser_for(fmt: str | None) -> Callable[[str], ParsedFields]:
    """The built-in parsing for a container's ``nexo.logs.format``: ``json`` reads JSON
    objects only, ``logfmt`` and ``nestjs`` key=value pairs and level words (never JSON),
    ``text`` the level word only; ``None``: detected per line (:func:`parse_line`)."""
    if fmt == "json":
        return _parse_json_only
    if fmt in ("logfmt", "nestjs"):
        return _parse_text_pairs
    if fmt == "text":
        return _parse_level_only
    return parse_line
