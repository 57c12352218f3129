"""``json``: take fields out of a JSON line, for the stages after it (labels, output, ...).

.. code-block:: yaml

    - json:
        expressions:
          level:                    # empty: the top-level key of the same name
          user: context.user.id     # nested objects
          first_tag: tags[0]        # array index (negative counts from the end)
          route: '"http.route"'     # a key with dots in it, quoted
        source: payload             # optional: parse this field instead of the line
        drop_malformed: false       # true: drop entries whose text is not a JSON object

Without ``expressions`` every top-level key becomes a field. Values become text as in the
rest of the agent: strings as they are, numbers and ``true``/``false`` spelled as in JSON,
``null`` as ``""``, objects and arrays as compact JSON. Fields set here replace earlier
ones of the same name (the built-in ``level``, for instance, then holds the line's own
spelling). Dropped malformed entries count in
``nexo_agent_stage_dropped_entries_total{reason="malformed_json"}``.

Differences from Promtail's ``json`` stage:

- paths are a subset of JMESPath: names, ``"quoted names"`` and ``[index]``, joined by
  dots; anything else (wildcards, filters, functions, pipes) is refused at config load;
- an empty path means the top-level key named like the field, even when that name is no
  JMESPath identifier (``http-status:`` works);
- a path that finds nothing leaves the field as it was, where Promtail sets it to null;
  a JSON ``null`` sets ``""`` (Promtail: null, which later stages then skip);
- ``expressions`` may be left out (Promtail requires it);
- a string holding a lone UTF-16 surrogate escape (``"\\udc80"``) makes the text
  malformed (Go's decoder puts U+FFFD in its place).
"""

from __future__ import annotations

import re
from typing import Any, NoReturn

import orjson
from pydantic import field_validator

from agent.logs.stages.base import Entry, Stage, StageContext, field_text
from agent.logs.stages.options import SourceConfig, StageConfig

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_INDEX = re.compile(r"\[\s*(-?[0-9]+)\s*\]")

Step = str | int  # an object key or an array index
_MISSING: Any = object()


def compile_path(path: str) -> tuple[Step, ...]:
    """``a.b[0]."my.key"`` as the steps ``("a", "b", 0, "my.key")``.

    Raises ``ValueError`` saying where the path leaves the supported subset."""
    steps: list[Step] = []
    text = path.strip()
    pos = 0
    end = len(text)
    want_key = False  # just after a dot: a name must follow
    while pos < end or want_key:
        if want_key or not steps:
            m = _NAME.match(text, pos) or _QUOTED.match(text, pos)
            if m is not None:
                token = m.group()
                steps.append(orjson.loads(token) if token[0] == '"' else token)
                pos = m.end()
                want_key = False
                continue
            if want_key:
                _unsupported(path, text, pos)
        if text.startswith(".", pos) and steps:
            want_key = True
            pos += 1
            continue
        m = _INDEX.match(text, pos)
        if m is None:
            _unsupported(path, text, pos)
        steps.append(int(m.group(1)))
        pos = m.end()
    if not steps:
        raise ValueError(f"empty path {path!r}")
    return tuple(steps)


def _unsupported(path: str, text: str, pos: int) -> NoReturn:
    rest = text[pos:] or "the end"
    raise ValueError(
        f"unsupported path {path!r} at {rest!r}: the json stage takes names (a.b), "
        f'quoted names ("my.key") and indexes (a[0]), joined by dots'
    )


def _lookup(value: Any, steps: tuple[Step, ...]) -> Any:
    for step in steps:
        if isinstance(step, str):
            if type(value) is not dict:
                return _MISSING
            value = value.get(step, _MISSING)
            if value is _MISSING:
                return value
        else:
            if type(value) is not list:
                return _MISSING
            try:
                value = value[step]
            except IndexError:
                return _MISSING
    return value


class JsonFieldsConfig(SourceConfig):
    expressions: dict[str, str | None] | None = None
    drop_malformed: bool = False

    @field_validator("expressions")
    @classmethod
    def _paths_compile(cls, value: dict[str, str | None] | None) -> dict[str, str | None] | None:
        if value is not None:
            if not value:
                raise ValueError("give at least one field: path (or leave expressions out)")
            for name, path in value.items():
                if path:
                    try:
                        compile_path(path)
                    except ValueError as exc:
                        raise ValueError(f"{name}: {exc}") from None
        return value


class JsonFields(Stage):
    type_name = "json"
    config_class = JsonFieldsConfig

    def __init__(self, config: StageConfig, context: StageContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, JsonFieldsConfig)
        self.source = config.source
        self.drop_malformed = config.drop_malformed
        # (field, top-level key or None, steps): a one-step path is a plain dict lookup.
        self.expressions: list[tuple[str, str | None, tuple[Step, ...]]] | None = None
        if config.expressions is not None:
            self.expressions = []
            for name, path in config.expressions.items():
                steps = compile_path(path) if path else (name,)
                key = steps[0] if len(steps) == 1 and type(steps[0]) is str else None
                self.expressions.append((name, key, steps))

    def apply(self, entries: list[Entry]) -> list[Entry]:
        source = self.source
        expressions = self.expressions
        loads = orjson.loads
        decode_error = orjson.JSONDecodeError
        malformed = 0
        kept: list[Entry] = []
        keep = kept.append
        for e in entries:
            if source is None:
                text = e.line
            else:
                value = e.field(source)
                if value is None:  # nothing to parse: not malformed either
                    keep(e)
                    continue
                text = value
            obj: Any = None
            if text[:1] == "{" or text.lstrip()[:1] == "{":
                try:
                    obj = loads(text)
                except decode_error:
                    obj = None
            if type(obj) is not dict:
                malformed += 1
                if not self.drop_malformed:
                    keep(e)
                continue
            fields = e.fields
            if expressions is None:
                for k, v in obj.items():
                    fields[k] = v if type(v) is str else field_text(v)
                if source is None:
                    # What Entry.field would find in this line is all set now.
                    e.parsed = True
            else:
                for name, key, steps in expressions:
                    v = obj.get(key, _MISSING) if key is not None else _lookup(obj, steps)
                    if v is not _MISSING:
                        fields[name] = v if type(v) is str else field_text(v)
            keep(e)
        if malformed and self.drop_malformed:
            self.count_drop("malformed_json", malformed)
        return kept


STAGE = JsonFields
