"""``logfmt``: take fields out of ``key=value`` lines (logfmt, Go's slog, Heroku router).

.. code-block:: yaml

    - logfmt:
        mapping:
          status:                   # empty: the logfmt key of the same name
          duration: dur             # field "duration" from the key "dur"
        source: message             # optional: parse this field instead of the line

Without ``mapping`` every pair becomes a field. Values may be bare (``a=1``), double-quoted
with JSON-style escapes (``msg="say \\"hi\\"\\n"``) or single-quoted; when a key repeats,
the last value wins, as in Promtail. Fields set here replace earlier ones of the same name.

Differences from Promtail's ``logfmt`` stage: pairs are found by the agent's own scanner
(the one its built-in parsing uses), so keys are ``[A-Za-z_@][A-Za-z0-9_.-]*`` up to 64
characters, single quotes are understood, text that is no pair is skipped (Promtail's
decoder reads a bare word or ``key=`` as the key with value ``""``, and stops at the first
syntax error); several fields may map to one key; ``mapping`` may be left out.
"""

from __future__ import annotations

import orjson
from pydantic import field_validator

from agent.logs.parse import find_pairs
from agent.logs.stages.base import Entry, Stage, StageContext
from agent.logs.stages.options import SourceConfig, StageConfig


def unquote(text: str) -> str:
    """A double-quoted logfmt value's escapes resolved (Go's logfmt uses JSON's)."""
    try:
        value = orjson.loads(f'"{text}"')
    except orjson.JSONDecodeError:
        # Not valid JSON escapes (a raw tab, \q): resolve only the quote and backslash.
        return text.replace('\\"', '"').replace("\\\\", "\\")
    return value if type(value) is str else text


class LogfmtFieldsConfig(SourceConfig):
    mapping: dict[str, str | None] | None = None

    @field_validator("mapping")
    @classmethod
    def _not_empty(cls, value: dict[str, str | None] | None) -> dict[str, str | None] | None:
        if value is not None and not value:
            raise ValueError("give at least one field: key (or leave mapping out)")
        return value


class LogfmtFields(Stage):
    type_name = "logfmt"
    config_class = LogfmtFieldsConfig

    def __init__(self, config: StageConfig, context: StageContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, LogfmtFieldsConfig)
        self.source = config.source
        # logfmt key -> the fields it sets
        self.by_key: dict[str, tuple[str, ...]] | None = None
        if config.mapping is not None:
            by_key: dict[str, tuple[str, ...]] = {}
            for name, key in config.mapping.items():
                key = key or name
                by_key[key] = (*by_key.get(key, ()), name)
            self.by_key = by_key

    def apply(self, entries: list[Entry]) -> list[Entry]:
        source = self.source
        by_key = self.by_key
        pairs_of = find_pairs
        for e in entries:
            text = e.line if source is None else e.field(source)
            if text is None or "=" not in text:
                continue
            fields = e.fields
            for key, double_quoted, single_quoted, bare in pairs_of(text):
                names = None
                if by_key is not None:
                    names = by_key.get(key)
                    if names is None:
                        continue
                if double_quoted:
                    value = unquote(double_quoted) if "\\" in double_quoted else double_quoted
                else:
                    value = bare or single_quoted
                if names is None:
                    fields[key] = value
                else:
                    for name in names:
                        fields[name] = value
        return entries


STAGE = LogfmtFields
