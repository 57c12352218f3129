"""Simple regexes as the globs that match the same strings, and ``{a,b}`` glob braces.

Promtail selects containers with RE2 regexes (relabel ``keep``/``drop``, Docker's ``name``
filter) and files with doublestar globs (``{a,b}`` alternatives); nexo-agent selects both
with Python globs (``fnmatch``, ``glob``). Only regexes that are literal text, ``.``,
``.*``, ``.+``, groups of alternatives and optional (``?``) literals or groups translate;
for anything else the caller reports the rule instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass

# A glob is a tuple of tokens: a literal character, ANY (one character) or STAR (any run).
ANY = "\0any"
STAR = "\0star"
Glob = tuple[str, ...]
MAX_GLOBS = 32
_LITERAL_ESCAPES = set(".-/\\^$*+?()[]{}|:_=@#%&~'\"!,<> ")


class _NotSimple(Exception):
    pass


@dataclass
class _Parser:
    text: str
    pos: int = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def alternatives(self) -> list[Glob]:
        out = self.sequence()
        while self.peek() == "|":
            self.pos += 1
            out = out + self.sequence()
        if len(out) > MAX_GLOBS:
            raise _NotSimple
        return out

    def sequence(self) -> list[Glob]:
        globs: list[Glob] = [()]
        while self.peek() not in ("", "|", ")"):
            atom = self.atom()
            globs = [g + a for g in globs for a in atom]
            if len(globs) > MAX_GLOBS:
                raise _NotSimple
        return globs

    def atom(self) -> list[Glob]:
        ch = self.peek()
        self.pos += 1
        if ch == "(":
            if self.text.startswith("?:", self.pos):
                self.pos += 2
            elif self.peek() == "?":
                raise _NotSimple  # flags, named groups, lookaround
            inner = self.alternatives()
            if self.peek() != ")":
                raise _NotSimple
            self.pos += 1
            return self.optional(inner)
        if ch == ".":
            quant = self.peek()
            if quant == "*":
                self.pos += 1
                return [(STAR,)]
            if quant == "+":
                self.pos += 1
                return [(ANY, STAR)]
            if quant in ("?", "{"):
                raise _NotSimple
            return [(ANY,)]
        if ch == "\\":
            escaped = self.peek()
            self.pos += 1
            if escaped not in _LITERAL_ESCAPES:
                raise _NotSimple  # \d, \w, \s, \x..., \Q...
            return self.optional([(escaped,)])
        if ch in "[]{}*+?^$":
            raise _NotSimple
        return self.optional([(ch,)])

    def optional(self, atom: list[Glob]) -> list[Glob]:
        quant = self.peek()
        if quant == "?":
            self.pos += 1
            return [*atom, ()]
        if quant in ("*", "+", "{"):
            raise _NotSimple
        return atom


def regex_globs(regex: str) -> list[Glob] | None:
    """The globs matching what ``regex`` matches (anchored at both ends, as in relabeling),
    or ``None`` when the regex is not simple enough. A leading ``^`` / trailing ``$`` is
    allowed."""
    text = regex
    if text.startswith("^"):
        text = text[1:]
    if text.endswith("$") and not text.endswith("\\$"):
        text = text[:-1]
    parser = _Parser(text)
    try:
        globs = parser.alternatives()
    except _NotSimple:
        return None
    if parser.pos != len(text):
        return None
    return _dedupe(globs)


def _dedupe(globs: list[Glob]) -> list[Glob]:
    seen: dict[Glob, None] = {}
    for glob in globs:
        # Collapse runs like STAR STAR, which match the same as one STAR.
        tokens: list[str] = []
        for token in glob:
            if token == STAR and tokens and tokens[-1] == STAR:
                continue
            tokens.append(token)
        seen[tuple(tokens)] = None
    return list(seen)


def is_literal(glob: Glob) -> bool:
    return all(t not in (ANY, STAR) for t in glob)


def literal(glob: Glob) -> str:
    return "".join(glob)


def fnmatch_text(glob: Glob) -> str:
    """The glob as ``fnmatch`` text, literal ``*?[`` escaped as ``[*]`` ``[?]`` ``[[]``."""
    out: list[str] = []
    for token in glob:
        if token == STAR:
            out.append("*")
        elif token == ANY:
            out.append("?")
        elif token in "*?[":
            out.append(f"[{token}]")
        else:
            out.append(token)
    return "".join(out)


def expand_braces(pattern: str, limit: int = 64) -> list[str]:
    """``/var/log/{a,b}/*.log`` -> ``['/var/log/a/*.log', '/var/log/b/*.log']`` (nested
    braces too, as doublestar reads them); a pattern without braces comes back alone.
    Raises ``ValueError`` for unbalanced braces or more than ``limit`` results."""
    start = pattern.find("{")
    if start < 0:
        if "}" in pattern:
            raise ValueError(f"unbalanced '}}' in {pattern!r}")
        return [pattern]
    depth = 0
    parts: list[str] = []
    last = start + 1
    for i in range(start, len(pattern)):
        ch = pattern[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                parts.append(pattern[last:i])
                head, tail = pattern[:start], pattern[i + 1 :]
                out: list[str] = []
                for part in parts:
                    out.extend(expand_braces(head + part + tail, limit))
                    if len(out) > limit:
                        raise ValueError(f"{pattern!r} expands to more than {limit} paths")
                return list(dict.fromkeys(out))
        elif ch == "," and depth == 1:
            parts.append(pattern[last:i])
            last = i + 1
    raise ValueError(f"unbalanced '{{' in {pattern!r}")
