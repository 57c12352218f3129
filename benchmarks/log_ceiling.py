"""Scenario 3: the log pipeline's ceiling on one pinned core, per input format.

Each format runs :func:`benchmarks.log_throughput.run_once` (pre-written json-file logs,
the agent on core 0, the receiver on core 1, start-up excluded), then the mixed format
runs once more under cProfile to show where the time goes. cProfile slows the agent down
and sees only the event-loop thread, so its run gives shares of time, not throughput.
"""

from __future__ import annotations

import pstats
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.log_throughput import FORMATS, run_once
from benchmarks.procstat import MIB
from benchmarks.report import ScenarioResult, Table

TITLE = "Log throughput ceiling: one pinned core, per input format"


def _area(filename: str) -> str:
    """Group a profiled function by where it lives: agent module, library or builtin."""
    if filename.startswith("~") or filename == "":
        return "C builtins (dict.get, len, bytes, json, regex...)"
    path = Path(filename)
    parts = path.parts
    if "agent" in parts:
        index = len(parts) - 1 - parts[::-1].index("agent")
        return "/".join(parts[index:])
    for library in ("asyncio", "aiohttp", "google", "snappy", "cramjam", "yaml", "pydantic"):
        if library in parts:
            return library
    return path.name


def profile_summary(profile: Path, top: int = 12) -> dict[str, Any]:
    """Own time (tottime) by function and by module/area, as shares of the total."""
    stats = pstats.Stats(str(profile))
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in raw.values()) or 1.0
    functions: list[dict[str, Any]] = []
    areas: dict[str, float] = {}
    for (filename, line, name), (_cc, calls, tottime, cumtime, _callers) in raw.items():
        area = _area(filename)
        areas[area] = areas.get(area, 0.0) + tottime
        functions.append(
            {
                "function": f"{area}:{line}({name})" if line else name,
                "calls": calls,
                "own_share": tottime / total,
                "cumulative_share": cumtime / total,
            }
        )
    functions.sort(key=lambda f: -f["own_share"])
    return {
        "profiled_seconds": round(total, 3),
        "by_area": [
            {"area": a, "own_share": t / total}
            for a, t in sorted(areas.items(), key=lambda item: -item[1])[:top]
        ],
        "top_functions": functions[:top],
    }


def run(quick: bool) -> ScenarioResult:
    lines, containers = (5_000, 4) if quick else (500_000, 20)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="nexo-bench-ceiling-") as tmp:
        for fmt in FORMATS:
            workdir = Path(tmp) / fmt
            workdir.mkdir()
            results[fmt] = run_once(lines, containers, fmt, workdir)
        workdir = Path(tmp) / "profile"
        workdir.mkdir()
        profile_file = Path(tmp) / "agent.prof"
        # cProfile makes every call about ten times dearer: a tenth of the lines suffices
        profiled = run_once(lines // 10, containers, "mixed", workdir, profile=profile_file)
        profile = profile_summary(profile_file)
    lines_per_second = [r["lines_per_second"] for r in results.values()]
    summary = {
        "formats": {
            fmt: {
                "lines_per_second": r["lines_per_second"],
                "cpu_seconds_per_million_lines": r["cpu_seconds_per_million_lines"],
                "peak_rss_mib": round(r["peak_rss_bytes"] / MIB, 1),
            }
            for fmt, r in results.items()
        },
        "min_lines_per_second": min(lines_per_second),
        "max_cpu_seconds_per_million_lines": max(
            r["cpu_seconds_per_million_lines"] for r in results.values()
        ),
        "max_peak_rss_mib": round(max(r["peak_rss_bytes"] for r in results.values()) / MIB, 1),
    }
    tables = [
        Table(
            f"{lines:,} lines from {containers} containers per format, agent on one core",
            ["format", "lines/s", "CPU s per million lines", "lines per CPU s", "peak RSS MiB"],
            [
                [
                    fmt,
                    r["lines_per_second"],
                    r["cpu_seconds_per_million_lines"],
                    r["lines_per_cpu_second"],
                    round(r["peak_rss_bytes"] / MIB, 1),
                ]
                for fmt, r in results.items()
            ],
        ),
        Table(
            "Where the time goes (cProfile, mixed format, own time by module)",
            ["module / area", "share of own time"],
            [[a["area"], f"{a['own_share']:.1%}"] for a in profile["by_area"]],
        ),
        Table(
            "Hottest functions (own time)",
            ["function", "calls", "own", "cumulative"],
            [
                [f["function"], f["calls"], f"{f['own_share']:.1%}", f"{f['cumulative_share']:.1%}"]
                for f in profile["top_functions"]
            ],
        ),
    ]
    notes = [
        "Wall time runs from the moment the container directories appear in the data root "
        "(the agent is already up) until the receiver has counted every line; CPU is the "
        "agent's utime+stime over the same window.",
        "The receiver decodes every push in its own process on the other core, so its CPU "
        "is not the agent's.",
        f"The profiled run ({profiled['lines']:,} lines) is slower than the others because "
        "of cProfile's own cost; read its shares, not its speed.",
    ]

    def plot(fig: Any) -> None:
        left, right = fig.subplots(1, 2)
        names = list(results)
        left.bar(names, [results[n]["lines_per_second"] for n in names], color="tab:blue")
        left.axhline(2000, color="tab:red", linestyle="--", label="reference host load")
        left.set_ylabel("lines/s on one core")
        left.legend()
        right.bar(names, [results[n]["cpu_seconds_per_million_lines"] for n in names])
        right.set_ylabel("CPU seconds per million lines")
        for axis in (left, right):
            axis.tick_params(axis="x", rotation=20)

    return ScenarioResult(
        scenario="log_ceiling",
        title=TITLE,
        summary=summary,
        details={"runs": results, "profiled_run": profiled, "profile": profile},
        tables=tables,
        notes=notes,
        plot=plot,
    )
