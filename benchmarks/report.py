"""One scenario's outcome written three ways: JSON (machines), Markdown (people), PNG (eyes).

``<out>/<scenario>.json`` holds everything: the machine, the headline ``summary`` that
``budgets.yaml`` is checked against, the raw ``details`` (time series, per-run figures),
the tables and the budget verdicts. ``.md`` renders the tables and verdicts with the
machine on top; ``.png`` is the scenario's plot (matplotlib, Agg backend: no display).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.budgets import Verdict
from benchmarks.machine import one_line

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Any]]

    def markdown(self) -> str:
        lines = [
            f"### {self.title}",
            "",
            "| " + " | ".join(self.columns) + " |",
            "|" + "|".join("---" for _ in self.columns) + "|",
        ]
        lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in self.rows]
        return "\n".join(lines)


@dataclass
class ScenarioResult:
    """What a scenario hands back; ``summary`` keys are what ``budgets.yaml`` names."""

    scenario: str
    title: str
    summary: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Draws the scenario's figure onto a matplotlib Figure.
    plot: Callable[[Any], None] | None = None


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if value == 0 or abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 1:
            return f"{value:.2f}"
        return f"{value:.3g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value).replace("|", "\\|")


def verdict_table(verdicts: list[Verdict]) -> Table:
    return Table(
        "Budgets (benchmarks/budgets.yaml)",
        ["figure", "measured", "budget", "verdict", "why this budget"],
        [
            [
                v.budget.metric,
                v.value if v.value is not None else "not measured",
                f"{'≤' if v.budget.kind == 'max' else '≥'} {_cell(v.budget.limit)}",
                "within" if v.ok else "**OVER**",
                v.budget.why,
            ]
            for v in verdicts
        ],
    )


def markdown(
    result: ScenarioResult, machine: dict[str, Any], meta: dict[str, Any], verdicts: list[Verdict]
) -> str:
    mode = "quick mode (figures not meaningful: CI smoke run)" if meta["quick"] else "full run"
    parts = [
        f"## {result.title}",
        "",
        f"`python -m benchmarks run {result.scenario}`: {mode}, started {meta['started_at']}, "
        f"took {meta['duration_seconds']:.0f} s.",
        "",
        f"Machine: {one_line(machine)}.",
        "",
    ]
    if verdicts:
        parts += [verdict_table(verdicts).markdown(), ""]
    for table in result.tables:
        parts += [table.markdown(), ""]
    parts += [f"- {note}" for note in result.notes]
    if result.notes:
        parts.append("")
    parts.append(f"![{result.scenario}]({result.scenario}.png)")
    return "\n".join(parts) + "\n"


def markdown_of(document: dict[str, Any], verdicts: list[Verdict]) -> str:
    """The Markdown page of a written JSON result (with verdicts against today's budgets)."""
    result = ScenarioResult(
        scenario=document["scenario"],
        title=document["title"],
        summary=document["summary"],
        tables=[Table(**t) for t in document["tables"]],
        notes=document["notes"],
    )
    meta = {k: document[k] for k in ("quick", "started_at", "duration_seconds")}
    return markdown(result, document["machine"], meta, verdicts)


def plot_png(result: ScenarioResult, path: Path, machine: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(11, 6.5))
    try:
        if result.plot is not None:
            result.plot(fig)
        else:
            fig.text(0.5, 0.5, "no plot for this scenario", ha="center")
        fig.suptitle(result.title, fontsize=12)
        fig.text(0.01, 0.005, one_line(machine), fontsize=7, color="dimgray")
        fig.tight_layout(rect=(0, 0.03, 1, 0.96))
        fig.savefig(path, dpi=90)
    finally:
        plt.close(fig)


def write(
    result: ScenarioResult,
    out_dir: Path,
    machine: dict[str, Any],
    meta: dict[str, Any],
    verdicts: list[Verdict],
) -> list[Path]:
    """Write ``<scenario>.json``, ``.md`` and ``.png`` into ``out_dir``; return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    base = out_dir / result.scenario
    document = {
        "scenario": result.scenario,
        "title": result.title,
        **meta,
        "machine": machine,
        "summary": result.summary,
        "budget": [v.as_json() for v in verdicts],
        "tables": [asdict(t) for t in result.tables],
        "notes": result.notes,
        "details": result.details,
    }
    paths = [base.with_suffix(".json"), base.with_suffix(".md"), base.with_suffix(".png")]
    paths[0].write_text(json.dumps(document, indent=2, default=float) + "\n")
    paths[1].write_text(markdown(result, machine, meta, verdicts))
    plot_png(result, paths[2], machine)
    return paths


def read(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    return document
