"""``replace``: rewrite parts of the line (or of a field) found by a regex, as Promtail's
``replace`` stage does.

.. code-block:: yaml

    - replace:
        expression: "password=(\\S+)"    # each capture group is replaced...
        replace: "***"                   # ...by this
    - replace:
        expression: "client=(?P<ip>[\\d.]+)"
        replace: "{{ .Value | Hash }}"    # not supported: see below
    - replace:
        expression: "user=(\\w+)"
        replace: "<{{ .Value }}@{{ .tenant }}>"  # .Value: the captured text; .name: a field
        source: msg                      # rewrite this field instead of the line

As in Promtail, every capture group of every match is replaced and named groups are also
set as fields (with the replaced value). Unlike Promtail, an expression without any group
replaces the whole match (Promtail leaves the line alone). The template understands
``{{ .Value }}`` and ``{{ .field }}``; other Go template functions are refused at load.
Changed entries count in ``nexo_agent_stage_changed_entries_total``.
"""

from __future__ import annotations

import re

from agent.logs.stages.base import Entry, Stage, StageContext
from agent.logs.stages.options import StageConfig
from agent.logs.stages.pattern import compile_pattern

_REFERENCE = re.compile(r"\{\{\s*\.(\w+)\s*\}\}")
_ANY_TEMPLATE = re.compile(r"\{\{.*?\}\}")


class ReplaceConfig(StageConfig):
    expression: str
    replace: str = ""
    source: str | None = None


class Replace(Stage):
    type_name = "replace"
    config_class = ReplaceConfig

    def __init__(self, config: StageConfig, context: StageContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, ReplaceConfig)
        self.cfg = config
        self.pattern = compile_pattern(config.expression)
        unsupported = [
            t for t in _ANY_TEMPLATE.findall(config.replace) if not _REFERENCE.fullmatch(t)
        ]
        if unsupported:
            raise ValueError(
                f"replace: template {unsupported[0]!r} is not supported "
                "(only {{ .Value }} and {{ .field }})"
            )
        self.template = config.replace
        self.plain = _REFERENCE.search(config.replace) is None
        self.names = {index: name for name, index in self.pattern.named_groups()}

    def _render(self, value: str, entry: Entry) -> str:
        if self.plain:
            return self.template

        def ref(m: re.Match[str]) -> str:
            name = m.group(1)
            if name == "Value":
                return value
            return entry.field(name) or ""

        return _REFERENCE.sub(ref, self.template)

    def _rewrite(self, text: str, entry: Entry) -> str | None:
        data, matches = self.pattern.all_spans(text)
        if not matches:
            return None
        out: list[bytes] = []
        last = 0
        named: dict[str, str] = {}
        for spans in matches:
            groups = spans[1:] or spans[:1]  # no groups: the whole match
            for index, (start, end) in enumerate(groups, start=1):
                if start < 0 or start < last:
                    continue
                captured = data[start:end].decode("utf-8", "replace")
                replaced = self._render(captured, entry)
                out.append(data[last:start])
                out.append(replaced.encode("utf-8", "surrogatepass"))
                last = end
                name = self.names.get(index)
                if name is not None and len(spans) > 1:
                    named[name] = replaced
        out.append(data[last:])
        if named:
            entry.fields.update(named)
        return b"".join(out).decode("utf-8", "replace")

    def apply(self, entries: list[Entry]) -> list[Entry]:
        source = self.cfg.source
        changed = 0
        for e in entries:
            if source is None:
                text = self._rewrite(e.line, e)
                if text is not None:
                    e.line = text
                    changed += 1
            else:
                value = e.field(source)
                if value is None:
                    continue
                text = self._rewrite(value, e)
                if text is not None:
                    e.fields[source] = text
                    changed += 1
        if changed:
            self.count_change(changed)
        return entries


STAGE = Replace
