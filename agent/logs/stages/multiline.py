"""``multiline``: join a stack trace (or any multi-line message) into one entry.

Docker writes one record per line, so a Java exception arrives as forty entries and Loki
shows forty rows; searching for the exception finds its first line only. This stage joins
the lines of one entry back together, per stream (stdout and stderr never mix):

.. code-block:: yaml

    - multiline:
        firstline: '^\\d{4}-\\d{2}-\\d{2} '   # RE2: a matching line starts a new entry
        max_lines: 128        # a block this long is shipped as it is (default 128)
        max_wait: 3s          # a block with no new line for this long is shipped (3s)
        max_bytes: 256KiB     # never join past this size (default 256KiB)
        separator: "\\n"      # between the joined lines (default a newline)
    - multiline:
        preset: java          # or nestjs, nodejs, python, go (instead of firstline)

Presets know each runtime's traces (see :data:`PRESETS`); where a regex cannot tell
(a Python exception line ends a traceback, a Go frame line is no log line) they follow
the trace line by line; under every preset a blank line belongs to the entry before it.
The joined entry keeps its first line's time, labels, stream and metadata; its fields
are read again from the joined text when a stage asks for one.
Lines before any first line (a stream that starts mid-trace) form an entry of their own.
A block that never ends is cut at ``max_lines`` / ``max_bytes``: the next lines form a
new entry. Lines merged away count in ``nexo_agent_stage_changed_entries_total``.
"""

from __future__ import annotations

import heapq
import re
import time

from pydantic import AliasChoices, Field, model_validator

from agent.logs.stages.base import Entry, Resume, Stage, StageContext
from agent.logs.stages.options import ByteSize, Duration, StageConfig
from agent.logs.stages.pattern import Pattern, compile_pattern

# Preset name -> what starts an entry under it (the rules are the classes below).
PRESETS: dict[str, str] = {
    "nestjs": "any line but an indented one ('    at ...'), a blank one, one closing an "
    "object ('}', ']', ')') or an error header ('TypeError: ...') that follows a NestJS "
    "'[Nest] <pid>  - ...' error line",
    "nodejs": "a line not indented and not closing an object ('}', ']', ')'); an uncaught "
    "exception's 'file.js:LINE' header keeps its source line, caret and error together",
    "java": "a line that is not indented, not 'Caused by:' / '... N more', and not an "
    "exception header 'pkg.SomeException: msg' (which belongs to the log line before it)",
    "python": "a line that is not indented; 'Traceback (most recent call last):' starts an "
    "entry that runs to its exception line, chained tracebacks included",
    "go": "a line that is not indented; 'panic:' / 'fatal error:' start an entry that keeps "
    "goroutine headers, frames, blank lines and 'exit status N'",
}

# The presets' own patterns: fixed, anchored, each repetition bounded by a character it
# cannot match, so Python's ``re`` stays linear even on a 256 KiB line (see the tests).
_ANSI_NEST_OR_JSON = re.compile(r"(?:\x1b\[[0-9;]*m)*(?:\[Nest\] \d+ |\{)")
_NODE_SOURCE_HEADER = re.compile(r"[^\s:]+(?::[^\s:]+)*:\d+$")
_NODE_ERROR_HEADER = re.compile(r"(?:[A-Za-z_$][\w$]*\.)*[A-Za-z_$][\w$]*(?:Error|Exception)\b")
_JAVA_CONTINUATION = re.compile(
    r"(?:$|[ \t]|Caused by: |\.\.\. \d+ "
    r"|(?:[A-Za-z_$][\w$]*\.)+[\w$]*(?:Exception|Error|Throwable)(?::|$))"
)
_PY_GROUP_TRACEBACK = re.compile(r"[ \t]*\+ Exception Group Traceback")
_GO_START = re.compile(r"(?:panic: |fatal error: |SIG[A-Z]+: |goroutine \d+ )")
_GO_GOROUTINE = re.compile(r"goroutine \d+ ")
_GO_FRAME = re.compile(r"[^\s(]+\(")
_GO_REGISTER = re.compile(r"(?:PC=0x|[a-z0-9]{2,3} +0x[0-9a-f]+$)")
_GO_EXIT = re.compile(r"exit status \d+$")

_PY_TRACEBACK = "Traceback (most recent call last):"
_PY_CHAIN = (
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
)
_INDENT = (" ", "\t")
_DIGITS = frozenset("0123456789")


class MultilineConfig(StageConfig):
    firstline: str | None = None
    preset: str | None = None
    max_lines: int = Field(default=128, ge=1)
    # Promtail spells it max_wait_time: a converted config keeps working.
    max_wait: Duration = Field(
        default=3.0, validation_alias=AliasChoices("max_wait", "max_wait_time")
    )
    max_bytes: ByteSize = Field(default=256 * 1024, ge=1)
    separator: str = "\n"

    @model_validator(mode="after")
    def _one_rule(self) -> MultilineConfig:
        if (self.firstline is None) == (self.preset is None):
            raise ValueError(
                "give exactly one of firstline (a regex a new entry's first line matches) "
                f"or preset ({', '.join(PRESETS)})"
            )
        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r} (presets: {', '.join(PRESETS)})")
        return self


class _Stream:
    """One stream's block being joined, and where its preset's rule stands in a trace."""

    __slots__ = ("first", "last_seen", "lines", "mode", "parts", "size")

    def __init__(self) -> None:
        self.first: Entry | None = None
        self.parts: list[str] | None = None  # only once a second line joins
        self.lines = 0
        self.size = 0  # bytes of the joined text
        self.last_seen = 0.0
        self.mode = 0  # the rule's state: 0 outside any trace


class _Rule:
    """Says whether a line begins a new entry; may follow a trace through ``stream.mode``.
    Called for every line, whether or not a block is open."""

    def begins(self, line: str, stream: _Stream) -> bool:
        raise NotImplementedError


class _FirstLine(_Rule):
    def __init__(self, pattern: Pattern) -> None:
        self.search = pattern.search

    def begins(self, line: str, stream: _Stream) -> bool:
        return self.search(line)


class _NestJS(_Rule):
    """NestJS's ConsoleLogger colours its lines even without a TTY unless NO_COLOR is set,
    so the ``[Nest]`` marker may follow ANSI escapes."""

    def begins(self, line: str, stream: _Stream) -> bool:
        if _ANSI_NEST_OR_JSON.match(line) is not None:
            return True
        if not line or line.startswith(_INDENT) or line[0] in "}])":
            return False
        # ``TypeError: ...`` printed under the ``[Nest] ... ERROR`` line; any other line
        # (another logger's, a logfmt line) is an entry of its own.
        return _NODE_ERROR_HEADER.match(line) is None


class _NodeJS(_Rule):
    """``err.stack`` frames are indented; ``console.error(err)`` closes an error's own
    properties (``code``, ``[cause]``) with ``}``. An uncaught exception prints
    ``/app/index.js:3``, the source line, a caret, a blank line, the stack, and at last
    ``Node.js v20.11.0``: all one entry."""

    _PREAMBLE = 1

    def begins(self, line: str, stream: _Stream) -> bool:
        if not line or line.startswith(_INDENT):
            return False
        if stream.mode == self._PREAMBLE:
            stream.mode = 0  # the error itself, after the source line and caret
            return False
        if line[0] in "}])" or line.startswith("Node.js v"):
            return False
        if line[-1] in _DIGITS and " " not in line and _NODE_SOURCE_HEADER.match(line):
            stream.mode = self._PREAMBLE
        return True


class _Java(_Rule):
    """Frames (``\\tat``), ``\\t... 3 more`` and suppressed traces are indented; ``Caused
    by:`` is not. Logback and Log4j print the exception header (``java.lang.Illegal
    StateException: msg``) on the line after the message it belongs to."""

    def begins(self, line: str, stream: _Stream) -> bool:
        return _JAVA_CONTINUATION.match(line) is None


class _Python(_Rule):
    """A state machine, since the exception line that ends a traceback is not indented
    and looks like any line::

        Traceback (most recent call last):          <- begins, FRAMES
          File "/app/main.py", line 8, in <module>   <- indented: continues
        ValueError: bad input                        <- first unindented: continues, AFTER
                                                     <- blank: continues
        During handling of the above exception...   <- continues, CHAIN
        Traceback (most recent call last):           <- continues, FRAMES again

    Python 3.11 exception groups (``  + Exception Group Traceback``) are indented
    throughout. The message line a ``logger.exception`` call writes before the traceback
    stays an entry of its own (it cannot be told from an unrelated line before an
    uncaught exception); so does a message with further unindented lines after the
    exception line (``add_note``)."""

    FRAMES, AFTER, CHAIN, GROUP = 1, 2, 3, 4

    def begins(self, line: str, stream: _Stream) -> bool:
        mode = stream.mode
        if not line:
            return False  # a blank line belongs to the entry before it
        indented = line.startswith(_INDENT)
        if mode == self.FRAMES:
            if not indented:
                stream.mode = self.AFTER
            return False
        if mode == self.GROUP and indented:
            return False
        if mode == self.AFTER:
            if indented:
                return False
            if line in _PY_CHAIN:
                stream.mode = self.CHAIN
                return False
        elif mode == self.CHAIN:
            if line.startswith(_PY_TRACEBACK):
                stream.mode = self.FRAMES
                return False
            if _PY_GROUP_TRACEBACK.match(line):
                stream.mode = self.GROUP
                return False
        # Outside a traceback.
        if line.startswith(_PY_TRACEBACK):
            stream.mode = self.FRAMES
            return True
        if indented:
            if _PY_GROUP_TRACEBACK.match(line):
                stream.mode = self.GROUP
                return True
            stream.mode = 0
            return False
        stream.mode = 0
        return True


class _Go(_Rule):
    """A panic's frames are a function line (``main.(*Server).handle(0xc000010000)``,
    unindented) and its file line (tab-indented); goroutines are separated by blank
    lines. Inside a trace every such line continues; the first other line (the restarted
    program's first log line) begins anew. ``exit status N`` (``go run``) ends a trace."""

    TRACE = 1

    def begins(self, line: str, stream: _Stream) -> bool:
        if stream.mode == self.TRACE:
            if not line or line.startswith(_INDENT):
                return False
            if line.startswith(("panic: ", "fatal error: ")):
                return True  # another program's panic: a new trace
            if (
                _GO_GOROUTINE.match(line)
                or line.startswith(("[signal ", "created by ", "...", "runtime stack:"))
                or (line.endswith(")") and _GO_FRAME.match(line))
                or _GO_REGISTER.match(line)
            ):
                return False
            if _GO_EXIT.match(line):
                stream.mode = 0
                return False
            stream.mode = 0
            return True
        if not line or line.startswith(_INDENT):
            return False
        if _GO_START.match(line):
            stream.mode = self.TRACE
        return True


_RULES: dict[str, type[_Rule]] = {
    "nestjs": _NestJS,
    "nodejs": _NodeJS,
    "java": _Java,
    "python": _Python,
    "go": _Go,
}


def _utf8_size(line: str) -> int:
    return len(line) if line.isascii() else len(line.encode("utf-8", "surrogatepass"))


class Multiline(Stage):
    type_name = "multiline"
    config_class = MultilineConfig

    def __init__(self, config: StageConfig, context: StageContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, MultilineConfig)
        self.cfg = config
        if config.firstline is not None:
            self.rule: _Rule = _FirstLine(compile_pattern(config.firstline, "firstline"))
        else:
            assert config.preset is not None
            self.rule = _RULES[config.preset]()
        self.separator = config.separator
        self.separator_size = _utf8_size(config.separator)
        self.clock = context.clock or time.time
        self.streams: dict[str, _Stream] = {}

    def apply(self, entries: list[Entry]) -> list[Entry]:
        now = self.clock()
        begins = self.rule.begins
        streams = self.streams
        max_lines = self.cfg.max_lines
        max_bytes = self.cfg.max_bytes
        sep_size = self.separator_size
        out: list[Entry] = []
        name: str | None = None
        s = _Stream()  # replaced before use: every entry has a stream name
        for e in entries:
            if e.stream != name:  # a chunk's entries mostly come from one stream
                name = e.stream
                found = streams.get(name)
                if found is None:
                    found = streams[name] = _Stream()
                s = found
                s.last_seen = now
            line = e.line
            size = len(line) if line.isascii() else len(line.encode("utf-8", "surrogatepass"))
            if (
                not begins(line, s)
                and s.first is not None
                and s.size + sep_size + size <= max_bytes
            ):
                if s.parts is None:
                    s.parts = [s.first.line, line]
                else:
                    s.parts.append(line)
                s.lines += 1
                s.size += sep_size + size
                if s.lines >= max_lines or s.size >= max_bytes:
                    out.append(self._release(s))
                continue
            first = s.first
            if first is not None:
                # Most entries are one line: nothing to join, release it as it is.
                out.append(first if s.parts is None else self._release(s))
            s.first = e
            s.parts = None
            s.lines = 1
            s.size = size
            if max_lines == 1 or size >= max_bytes:
                out.append(self._release(s))
        return out

    def _release(self, s: _Stream) -> Entry:
        first = s.first
        assert first is not None
        parts = s.parts
        if parts is not None:
            first.line = self.separator.join(parts)
            first.parsed = False  # fields are read again from the joined text
            self.count_change(len(parts) - 1)
        s.first = None
        s.parts = None
        s.lines = s.size = 0
        return first

    def flush(self, now: float, final: bool) -> list[Entry]:
        due: list[list[Entry]] = []
        max_wait = self.cfg.max_wait
        for s in self.streams.values():
            if s.first is None:
                continue
            if now < s.last_seen:
                s.last_seen = now  # the wall clock stepped back: wait max_wait from now
            if final or now - s.last_seen >= max_wait:
                due.append([self._release(s)])
        if len(due) <= 1:
            return due[0] if due else []
        return list(heapq.merge(*due, key=lambda e: e.resume[:2]))

    def oldest_held(self) -> Resume | None:
        oldest: Resume | None = None
        for s in self.streams.values():
            first = s.first
            if first is not None and (oldest is None or first.resume[:2] < oldest[:2]):
                oldest = first.resume
        return oldest

    def held_bytes(self) -> int:
        return sum(s.size for s in self.streams.values())


STAGE = Multiline
