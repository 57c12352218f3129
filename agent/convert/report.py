"""What a conversion could not carry over, each item with the input line it came from.

Three kinds, because the operator acts on them differently:

- ``omitted``: the input asked for something the converted config does not do (a
  Kubernetes scrape config, a ``tenant`` stage, a position that could not be seeded). Any
  of these makes ``convert`` exit 1 unless ``--allow-partial``.
- ``differs``: translated, but nexo-agent behaves differently in a way that can matter
  (Promtail labels every custom metric by all the entry's labels; nexo needs a list).
- ``note``: translated exactly, or left out because nexo-agent does not need it
  (the ``docker`` stage; Promtail's HTTP server settings); said so nothing is a surprise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["omitted", "differs", "note"]

_TITLES: dict[Kind, str] = {
    "omitted": "not translated",
    "differs": "translated with a difference",
    "note": "notes",
}


@dataclass(frozen=True, slots=True)
class Finding:
    kind: Kind
    file: str
    line: int  # 1-based; 0 when the item has no place in the input
    where: str  # the input key, e.g. scrape_configs[1].pipeline_stages[3].tenant
    message: str

    def render(self) -> str:
        place = f"{self.file}:{self.line}" if self.line else self.file
        where = f" {self.where}:" if self.where else ""
        return f"{place}:{where} {self.message}"


@dataclass
class Report:
    """Findings in the order they were made (input order, section by section)."""

    findings: list[Finding] = field(default_factory=list)

    def omitted(self, file: str, line: int, where: str, message: str) -> None:
        self.findings.append(Finding("omitted", file, line, where, message))

    def differs(self, file: str, line: int, where: str, message: str) -> None:
        self.findings.append(Finding("differs", file, line, where, message))

    def note(self, file: str, line: int, where: str, message: str) -> None:
        self.findings.append(Finding("note", file, line, where, message))

    def of_kind(self, kind: Kind) -> list[Finding]:
        return [f for f in self.findings if f.kind == kind]

    @property
    def complete(self) -> bool:
        """Whether everything asked for was carried over (differences aside)."""
        return not self.of_kind("omitted")

    def render(self) -> str:
        out: list[str] = []
        for kind in ("omitted", "differs", "note"):
            items = self.of_kind(kind)
            if not items:
                continue
            out.append(f"{_TITLES[kind]} ({len(items)}):")
            out.extend(f"  {item.render()}" for item in items)
        return "\n".join(out) + ("\n" if out else "")
