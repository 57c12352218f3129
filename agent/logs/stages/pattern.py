"""Users' regular expressions, run by RE2.

A stage's regex runs on every line a container writes, and one line crafted (or merely
unlucky) against a backtracking engine can take minutes: ``(a+)+$`` on forty ``a``\\ s
and a ``!`` does in Python's ``re``. RE2 runs in time linear in the input for any pattern,
and it is the syntax Promtail's Go ``regexp`` accepts, so a converted Promtail config means
what it meant there. The low-level ``_re2`` calls are used directly: the ``re2`` module's
``re``-compatible wrapper costs three times as much per call on the hot path.
"""

from __future__ import annotations

from collections.abc import Callable

import re2
from re2 import _re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # errors are reported by our ValueError, not on stderr
_UNANCHORED = _re2.RE2.Anchor.UNANCHORED
_ANCHOR_BOTH = _re2.RE2.Anchor.ANCHOR_BOTH
_NO_MATCH = (-1, -1)


class Pattern:
    """A compiled expression: ``search``/``fullmatch`` answer yes or no, ``groups`` gives
    the named groups of the first match, ``sub`` replaces every match."""

    __slots__ = ("_names", "_regexp", "expression")

    def __init__(self, expression: str, case_insensitive: bool = False) -> None:
        if not isinstance(expression, str):
            raise ValueError(f"a regular expression must be a string, not {expression!r}")
        self.expression = expression
        source = f"(?i){expression}" if case_insensitive else expression
        regexp = _re2.RE2(source.encode("utf-8", "surrogatepass"), _OPTIONS)
        if not regexp.ok():
            error = regexp.error().decode("utf-8", "replace")
            raise ValueError(f"invalid regular expression {expression!r}: {error}")
        self._regexp = regexp
        self._names = sorted(
            ((n.decode(), i) for n, i in regexp.NamedCapturingGroups()), key=lambda p: p[1]
        )

    def __repr__(self) -> str:
        return f"Pattern({self.expression!r})"

    @property
    def group_names(self) -> list[str]:
        return [name for name, _ in self._names]

    def search(self, text: str) -> bool:
        data = text.encode("utf-8", "surrogatepass")
        return bool(self._regexp.Match(_UNANCHORED, data, 0, len(data))[0] != _NO_MATCH)

    def fullmatch(self, text: str) -> bool:
        data = text.encode("utf-8", "surrogatepass")
        return bool(self._regexp.Match(_ANCHOR_BOTH, data, 0, len(data))[0] != _NO_MATCH)

    def groups(self, text: str) -> dict[str, str] | None:
        """The named groups of the first match (unmatched optional groups left out)."""
        data = text.encode("utf-8", "surrogatepass")
        spans = self._regexp.Match(_UNANCHORED, data, 0, len(data))
        if spans[0] == _NO_MATCH:
            return None
        found: dict[str, str] = {}
        for name, index in self._names:
            start, end = spans[index]
            if start >= 0:
                found[name] = data[start:end].decode("utf-8", "replace")
        return found

    def named_groups(self) -> list[tuple[str, int]]:
        return list(self._names)

    def group_index(self, name: str) -> int | None:
        for group, index in self._names:
            if group == name:
                return int(index)
        return None

    def all_spans(self, text: str) -> tuple[bytes, list[list[tuple[int, int]]]]:
        """The UTF-8 bytes of ``text`` and each non-overlapping match's group spans in them
        (``[0]`` the whole match; ``(-1, -1)`` for a group that took no part)."""
        data = text.encode("utf-8", "surrogatepass")
        end = len(data)
        match = self._regexp.Match
        found: list[list[tuple[int, int]]] = []
        pos = 0
        while pos <= end:
            spans = match(_UNANCHORED, data, pos, end)
            start, stop = spans[0]
            if start < 0:
                break
            found.append(list(spans))
            pos = stop + 1 if stop == start else stop
        return data, found

    def sub(self, text: str, replace: Callable[[list[str]], str]) -> tuple[str, int]:
        """``text`` with each non-overlapping match replaced by ``replace(groups)``
        (``groups[0]`` the whole match, unmatched groups ``""``), and the count."""
        data = text.encode("utf-8", "surrogatepass")
        end = len(data)
        match = self._regexp.Match
        out: list[bytes] = []
        last = pos = count = 0
        while pos <= end:
            spans = match(_UNANCHORED, data, pos, end)
            start, stop = spans[0]
            if start < 0:
                break
            groups = [data[a:b].decode("utf-8", "replace") if a >= 0 else "" for a, b in spans]
            out.append(data[last:start])
            out.append(replace(groups).encode("utf-8", "surrogatepass"))
            last = stop
            count += 1
            # An empty match would match again at the same place: step past it.
            pos = stop + 1 if stop == start else stop
        if not count:
            return text, 0
        out.append(data[last:])
        return b"".join(out).decode("utf-8", "replace"), count


def compile_pattern(expression: str, what: str = "expression") -> Pattern:
    """Compile or raise ``ValueError`` naming the option (``what``) and RE2's reason."""
    try:
        return Pattern(expression)
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None
