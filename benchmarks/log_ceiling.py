"""Scenario 3: the log pipeline's ceiling on one pinned core, per input format.

First the realistic mixed corpus (``benchmarks/corpus.py``: formats interleaved, colours,
lines over 16 KiB split into partials) through the agent with protobuf and with JSON
encoding, and through Fluent Bit and Promtail when ``FLUENTBIT_BIN`` / ``PROMTAIL_BIN``
name their binaries. Then each single format runs :func:`benchmarks.log_throughput.run_once`
(pre-written json-file logs, the agent on core 0, the receiver on core 1, start-up
excluded), and the corpus runs once more under cProfile to show where the time goes.
cProfile slows the agent down and sees only the event-loop thread, so its run gives
shares of time, not throughput.
"""

from __future__ import annotations

import pstats
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.log_throughput import CORPUS, FORMATS, build_data_root, run_once
from benchmarks.other_agents import OTHER_AGENTS, available, run_other
from benchmarks.procstat import MIB
from benchmarks.report import ScenarioResult, Table

TITLE = "Log throughput ceiling: one pinned core, per input format"
# Each corpus configuration runs this many times, in turn; its median run is reported (a
# single run of the same code varies by about 8% on a shared VM).
CORPUS_ROUNDS = 3


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


# A realistic six-stage pipeline (issue 12's benchmark): join Node.js stack traces, drop
# debug chatter, keep 1 in 4 access lines, mask secrets, take pino's own time, and count
# errors and request durations by container.
SIX_STAGES: list[dict[str, Any]] = [
    {"multiline": {"preset": "nestjs", "max_wait": "1s"}},
    {"drop": {"source": "level", "value": "debug", "drop_counter_reason": "debug"}},
    {"sample": {"match": '|= "HTTP/1.1"', "every": 4}},
    {"redact": {"detectors": ["all"]}},
    {"timestamp": {"source": "time", "format": "UnixMs"}},
    {
        "metrics": {
            "metrics": {
                "log_errors_total": {
                    "type": "counter",
                    "description": "Error lines by container.",
                    "labels": ["container"],
                    "source": "level",
                    "config": {"value": "error", "action": "inc"},
                },
                "request_duration_seconds": {
                    "type": "histogram",
                    "description": "pino responseTime by container.",
                    "labels": ["container"],
                    "source": "responseTime",
                    "scale": 0.001,
                    "config": {"buckets": [0.01, 0.05, 0.1, 0.25, 0.5, 1]},
                },
            }
        }
    },
]


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median lines per CPU s, with every run's figure beside it and the
    highest peak RSS of them all (memory is judged by its worst case)."""
    ordered = sorted(runs, key=lambda r: r["lines_per_cpu_second"] or 0)
    chosen = dict(ordered[len(ordered) // 2])
    chosen["lines_per_cpu_second_runs"] = [r["lines_per_cpu_second"] for r in runs]
    chosen["peak_rss_bytes"] = max(r["peak_rss_bytes"] for r in runs)
    return chosen


def _corpus_runs(
    tmp: Path, lines: int, containers: int, rounds: int
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], list[str]]:
    """The realistic corpus through the agent (both encodings, and with six stages) and
    the other agents, ``rounds`` times in turn; each configuration's median run.

    Runs alternate, so a machine that speeds up or slows down during the scenario moves
    every configuration alike and the ratios stay fair.
    """
    staged = Path(tmp) / "corpus-staged"
    records = build_data_root(staged, lines, containers, CORPUS)
    total = (lines // containers) * containers
    configs: dict[str, dict[str, Any]] = {
        "protobuf": {"encoding": "protobuf"},
        "json": {"encoding": "json"},
        "six stages": {"stages": SIX_STAGES},
    }
    tools = [tool for tool in OTHER_AGENTS if available(tool) is not None]
    missing = [
        f"{tool.name} not run: set {tool.env} to its binary"
        for tool in OTHER_AGENTS
        if tool not in tools
    ]
    agent_runs: dict[str, list[dict[str, Any]]] = {name: [] for name in configs}
    other_runs: dict[str, list[dict[str, Any]]] = {tool.name: [] for tool in tools}
    for round_ in range(rounds):
        for name, options in configs.items():
            workdir = Path(tmp) / f"corpus-{name.replace(' ', '-')}-{round_}"
            workdir.mkdir()
            agent_runs[name].append(
                run_once(lines, containers, CORPUS, workdir, staged=staged, **options)
            )
        for tool in tools:
            workdir = Path(tmp) / f"{tool.name}-{round_}"
            workdir.mkdir()
            other_runs[tool.name].append(run_other(tool, staged, workdir, total, records))
    agent = {name: _median_run(runs) for name, runs in agent_runs.items()}
    others = {name: _median_run(runs) for name, runs in other_runs.items()}
    return agent, others, missing


def _mib(value: int) -> float:
    return round(value / MIB, 1)


def run(quick: bool) -> ScenarioResult:
    lines, containers = (5_000, 4) if quick else (500_000, 20)
    corpus_lines = 5_000 if quick else 1_000_000
    rounds = 1 if quick else CORPUS_ROUNDS
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="nexo-bench-ceiling-") as tmp:
        agent, others, missing = _corpus_runs(Path(tmp), corpus_lines, containers, rounds)
        for fmt in FORMATS:
            workdir = Path(tmp) / fmt
            workdir.mkdir()
            results[fmt] = run_once(lines, containers, fmt, workdir)
        workdir = Path(tmp) / "profile"
        workdir.mkdir()
        profile_file = Path(tmp) / "agent.prof"
        # cProfile makes every call about ten times dearer: a tenth of the lines suffices
        profiled = run_once(corpus_lines // 10, containers, CORPUS, workdir, profile=profile_file)
        profile = profile_summary(profile_file)
    lines_per_second = [r["lines_per_second"] for r in results.values()]
    corpus = agent["protobuf"]
    summary: dict[str, Any] = {
        "corpus": {
            "lines_per_cpu_second": corpus["lines_per_cpu_second"],
            "json_lines_per_cpu_second": agent["json"]["lines_per_cpu_second"],
            "six_stages_lines_per_cpu_second": agent["six stages"]["lines_per_cpu_second"],
            "six_stages_share_of_default": round(
                agent["six stages"]["lines_per_cpu_second"] / corpus["lines_per_cpu_second"], 3
            ),
            "cpu_seconds_per_million_lines": corpus["cpu_seconds_per_million_lines"],
            # Issue 11's target is for the default pipeline; the JSON encoding and the six
            # stages (which load pydantic, their options' models) are reported beside it.
            "peak_rss_mib": _mib(corpus["peak_rss_bytes"]),
            "json_peak_rss_mib": _mib(agent["json"]["peak_rss_bytes"]),
            "six_stages_peak_rss_mib": _mib(agent["six stages"]["peak_rss_bytes"]),
        },
        "formats": {
            fmt: {
                "lines_per_second": r["lines_per_second"],
                "cpu_seconds_per_million_lines": r["cpu_seconds_per_million_lines"],
                "peak_rss_mib": _mib(r["peak_rss_bytes"]),
            }
            for fmt, r in results.items()
        },
        "min_lines_per_second": min(lines_per_second),
        "max_cpu_seconds_per_million_lines": max(
            r["cpu_seconds_per_million_lines"] for r in results.values()
        ),
        "max_peak_rss_mib": _mib(max(r["peak_rss_bytes"] for r in results.values())),
    }
    summary["corpus"]["lines_per_cpu_second_runs"] = {
        name: r["lines_per_cpu_second_runs"] for name, r in {**agent, **others}.items()
    }
    for name, other in others.items():
        key = name.replace("-", "")
        summary["corpus"][f"{key}_lines_per_cpu_second"] = other["lines_per_cpu_second"]
        if other["lines_per_cpu_second"] and corpus["lines_per_cpu_second"]:
            summary["corpus"][f"ratio_over_{key}"] = round(
                corpus["lines_per_cpu_second"] / other["lines_per_cpu_second"], 3
            )
    side_by_side = [
        [
            f"nexo-agent ({encoding})" if encoding != "six stages" else "nexo-agent (six stages)",
            "defaults: parsing, ids as metadata"
            if encoding != "six stages"
            else "defaults + multiline, drop, sample, redact, timestamp, metrics",
            r["lines_per_cpu_second"],
            r["cpu_seconds_per_million_lines"],
            _mib(r["peak_rss_bytes"]),
            "yes",
        ]
        for encoding, r in agent.items()
    ] + [
        [
            name,
            r["config"],
            r["lines_per_cpu_second"] or "-",
            r["cpu_seconds_per_million_lines"] or "-",
            _mib(r["peak_rss_bytes"]),
            "yes" if r["complete"] else f"no ({r['entries_received']}/{r['entries_expected']})",
        ]
        for name, r in others.items()
    ]
    tables = [
        Table(
            f"Mixed corpus: {corpus['lines']:,} lines in {containers} json-file logs "
            "(pino, winston, logfmt, NestJS with and without colours, access lines; "
            "1 in 500 lines 20-60 KiB, split into 16 KiB partials), each agent on one core",
            ["agent", "config", "lines per CPU s", "CPU s per million", "peak RSS MiB", "all"],
            side_by_side,
        ),
        Table(
            f"{lines:,} lines from {containers} containers per format, agent on one core",
            ["format", "lines/s", "CPU s per million lines", "lines per CPU s", "peak RSS MiB"],
            [
                [
                    fmt,
                    r["lines_per_second"],
                    r["cpu_seconds_per_million_lines"],
                    r["lines_per_cpu_second"],
                    _mib(r["peak_rss_bytes"]),
                ]
                for fmt, r in results.items()
            ],
        ),
        Table(
            "Where the time goes (cProfile, mixed corpus, own time by module)",
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
        f"Mixed corpus: every configuration ran {rounds} time(s), in turn; the table gives "
        "each one's median run (lines per CPU s) with the highest peak RSS of its runs, and "
        "the JSON every run's figure (lines_per_cpu_second_runs).",
        "Wall time runs from the moment the container directories appear in the data root "
        "(the agent is already up) until the receiver has counted every line; CPU is the "
        "agent's utime+stime over the same window.",
        "The receiver decodes every push in its own process on the other core, so its CPU "
        "is not the agent's.",
        "Fluent Bit and Promtail read the same files (hard links) and count CPU from their "
        "own start. Fluent Bit's JSON parser leaves logfmt and text lines unparsed, so it "
        "does less than the agent; Promtail does not join partial records, so it ships "
        "more entries (its figure still divides by lines).",
        *missing,
        f"The profiled run ({profiled['lines']:,} lines) is slower than the others because "
        "of cProfile's own cost; read its shares, not its speed.",
    ]

    def plot(fig: Any) -> None:
        left, right = fig.subplots(1, 2)
        names = [row[0] for row in side_by_side]
        values = [row[2] if isinstance(row[2], int) else 0 for row in side_by_side]
        left.bar(names, values, color="tab:blue")
        left.set_ylabel("lines per CPU second (mixed corpus)")
        fmts = list(results)
        right.bar(fmts, [results[n]["cpu_seconds_per_million_lines"] for n in fmts])
        right.set_ylabel("CPU seconds per million lines")
        for axis in (left, right):
            axis.tick_params(axis="x", rotation=20)

    return ScenarioResult(
        scenario="log_ceiling",
        title=TITLE,
        summary=summary,
        details={
            "corpus": agent,
            "other_agents": others,
            "runs": results,
            "profiled_run": profiled,
            "profile": profile,
        },
        tables=tables,
        notes=notes,
        plot=plot,
    )
