"""``match`` selectors: which entries a stage applies to, in LogQL's syntax.

``{compose_service="api-gateway", level=~"info|debug"} |= "GET" !~ "health"``: label
matchers in braces (``=``, ``!=``, ``=~``, ``!~``; regexes anchored at both ends, as in
LogQL and PromQL) compare a label's value, or an extracted field's when the entry has no
such label; line filters after the braces (``|=`` contains, ``!=`` does not contain,
``|~`` matches somewhere, ``!~`` does not) test the line. The braces may be empty (``{}``)
or left out when only line filters are given. A name that is neither label nor field
compares as the empty string, as a missing label does in LogQL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from agent.logs.stages.base import Entry
from agent.logs.stages.pattern import Pattern

_NAME_START = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_NAME_CHARS = _NAME_START | set("0123456789.")


@dataclass(frozen=True)
class _Matcher:
    name: str
    op: str
    value: str
    pattern: Pattern | None


class Selector:
    """A parsed selector; ``matches(entry)`` is all it offers."""

    def __init__(
        self,
        text: str,
        matchers: list[_Matcher],
        filters: list[Callable[[str], bool]],
        contains: str | None = None,
    ):
        self.text = text
        self.matchers = matchers
        self.filters = filters
        # The whole selector is ``|= "text"`` (the health-check case): a stage tests
        # ``contains in line`` inline, without a call per entry.
        self.contains = contains

    def __repr__(self) -> str:
        return f"Selector({self.text!r})"

    @classmethod
    def parse(cls, text: str) -> Selector:
        """Parse or raise ``ValueError`` saying where and why."""
        if not isinstance(text, str):
            raise ValueError(f"match must be a string like '{{app=\"x\"}}', not {text!r}")
        scanner = _Scanner(text)
        matchers: list[_Matcher] = []
        scanner.skip_space()
        if scanner.peek() == "{":
            scanner.take()
            scanner.skip_space()
            while scanner.peek() != "}":
                name = scanner.name()
                scanner.skip_space()
                op = scanner.operator(("=~", "!~", "!=", "="))
                scanner.skip_space()
                value = scanner.string()
                pattern = None
                if op in ("=~", "!~"):
                    try:
                        Pattern(value)
                        pattern = Pattern(f"(?s:{value})")
                    except ValueError as exc:
                        raise ValueError(f"match {text!r}: {name}{op}: {exc}") from None
                matchers.append(_Matcher(name, op, value, pattern))
                scanner.skip_space()
                if scanner.peek() == ",":
                    scanner.take()
                    scanner.skip_space()
                elif scanner.peek() != "}":
                    scanner.fail("expected ',' or '}'")
            scanner.take()
        filters: list[Callable[[str], bool]] = []
        ops: list[str] = []
        values: list[str] = []
        scanner.skip_space()
        while not scanner.done():
            op = scanner.operator(("|=", "!=", "|~", "!~"))
            scanner.skip_space()
            value = scanner.string()
            filters.append(_line_filter(op, value, text))
            ops.append(op)
            values.append(value)
            scanner.skip_space()
        if not matchers and not filters:
            raise ValueError(f"match {text!r}: selects every entry; leave match out instead")
        only_contains = not matchers and ops == ["|="]
        return cls(text, matchers, filters, values[0] if only_contains else None)

    def matches(self, entry: Entry) -> bool:
        if not self.matchers and len(self.filters) == 1:
            return self.filters[0](entry.line)  # the common health-check selector
        for m in self.matchers:
            value = entry.value(m.name)
            if value is None:
                value = ""
            op = m.op
            if op == "=":
                ok = value == m.value
            elif op == "!=":
                ok = value != m.value
            else:
                assert m.pattern is not None
                ok = m.pattern.fullmatch(value) == (op == "=~")
            if not ok:
                return False
        line = entry.line
        return all(test(line) for test in self.filters)


def _line_filter(op: str, value: str, text: str) -> Callable[[str], bool]:
    if op == "|=":
        return lambda line: value in line
    if op == "!=":
        return lambda line: value not in line
    try:
        pattern = Pattern(value)
    except ValueError as exc:
        raise ValueError(f"match {text!r}: {op}: {exc}") from None
    if op == "|~":
        return pattern.search
    return lambda line: not pattern.search(line)


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, why: str) -> None:
        raise ValueError(f"match {self.text!r}: {why} at character {self.pos + 1}")

    def done(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def take(self) -> str:
        ch = self.peek()
        self.pos += 1
        return ch

    def skip_space(self) -> None:
        while self.peek() in (" ", "\t", "\n"):
            self.pos += 1
            if self.done():
                return

    def name(self) -> str:
        start = self.pos
        if self.peek() not in _NAME_START or not self.peek():
            self.fail("expected a label or field name")
        while self.peek() and self.peek() in _NAME_CHARS:
            self.pos += 1
        return self.text[start : self.pos]

    def operator(self, choices: tuple[str, ...]) -> str:
        for op in choices:
            if self.text.startswith(op, self.pos):
                self.pos += len(op)
                return op
        self.fail(f"expected one of {', '.join(choices)}")
        raise AssertionError  # unreachable: fail raises

    def string(self) -> str:
        quote = self.peek()
        if quote not in ('"', "`"):
            self.fail("expected a quoted string")
        self.pos += 1
        out: list[str] = []
        while True:
            if self.done():
                self.fail("unterminated string")
            ch = self.take()
            if ch == quote:
                return "".join(out)
            if ch == "\\" and quote == '"':
                escaped = self.take()
                out.append({"n": "\n", "t": "\t", "r": "\r"}.get(escaped, escaped))
                if escaped not in ('"', "\\", "n", "t", "r"):
                    out.insert(len(out) - 1, "\\")  # keep regex escapes like \d as written
            else:
                out.append(ch)
