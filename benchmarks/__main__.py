"""``python -m benchmarks``: run the overhead scenarios and check them against their budgets.

    python -m benchmarks run SCENARIO|all [--quick] [--out DIR] [--check]
    python -m benchmarks check DIR          # re-check written results against budgets.yaml
    python -m benchmarks summarize DIR      # write DIR's results as one RESULTS.md

Each scenario writes ``DIR/<scenario>.json``, ``.md`` and ``.png`` (default DIR:
``benchmarks/results``). ``--check`` and ``check`` exit 1 when a figure is over its budget
and name it. A scenario that cannot run (no dockerd, no node_exporter) exits 3; one that
crashes exits 2 (with ``all``, after the other scenarios have run).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import budgets, machine, report
from benchmarks.harness import CONTAINER_PREFIX, MissingDependency, remove_leftover_containers

# name -> module with ``run(quick: bool) -> ScenarioResult``, in the order ``all`` runs them.
SCENARIOS = {
    "reference_host": "benchmarks.reference_host",
    "app_impact": "benchmarks.app_impact",
    "log_ceiling": "benchmarks.log_ceiling",
    "scrape_cost": "benchmarks.scrape_cost",
    "loki_outage": "benchmarks.loki_outage",
    "kill_storm": "benchmarks.kill_storm",
    "startup": "benchmarks.startup",
}
DEFAULT_OUT = Path(__file__).with_name("results")
RESULTS_MD = Path(__file__).with_name("RESULTS.md")


def run_scenario(name: str, quick: bool, out: Path) -> list[budgets.Verdict]:
    described = machine.describe()
    started = time.monotonic()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    print(f"== {name} ({'quick' if quick else 'full'}) started {started_at}", flush=True)
    result = importlib.import_module(SCENARIOS[name]).run(quick)
    described["load_average_end"] = machine.load_average()
    meta: dict[str, Any] = {
        "quick": quick,
        "started_at": started_at,
        "duration_seconds": round(time.monotonic() - started, 1),
    }
    verdicts = budgets.evaluate(name, result.summary, budgets.load())
    for path in report.write(result, out, described, meta, verdicts):
        print(f"   wrote {path}")
    for verdict in verdicts:
        print(f"   {verdict.text()}")
    return verdicts


def _stop(signum: int, frame: Any) -> None:
    # SIGTERM as Ctrl-C: the scenarios' ``finally`` blocks remove their containers.
    raise KeyboardInterrupt


def command_run(args: argparse.Namespace) -> int:
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    signal.signal(signal.SIGTERM, _stop)
    removed = remove_leftover_containers()
    if removed:
        print(f"removed {removed} {CONTAINER_PREFIX}* containers an interrupted run left behind")
    over: list[budgets.Verdict] = []
    crashed: list[str] = []
    missing: list[str] = []
    for name in names:
        try:
            over += [v for v in run_scenario(name, args.quick, args.out) if not v.ok]
        except MissingDependency as exc:
            print(f"!! {name} cannot run: missing {exc}", file=sys.stderr)
            missing.append(name)
        except Exception:
            traceback.print_exc()
            print(f"!! {name} crashed", file=sys.stderr)
            crashed.append(name)
    if crashed:
        print(f"crashed: {', '.join(crashed)}", file=sys.stderr)
        return 2
    if missing:
        return 3
    if args.check and over:
        print("over budget:\n" + "\n".join(f"  {v.text()}" for v in over), file=sys.stderr)
        return 1
    return 0


def result_files(directory: Path) -> list[Path]:
    order = list(SCENARIOS)
    found = [p for p in directory.glob("*.json") if p.stem in SCENARIOS]
    return sorted(found, key=lambda p: order.index(p.stem))


def command_check(args: argparse.Namespace) -> int:
    files = result_files(args.directory)
    if not files:
        print(f"no benchmark results in {args.directory}", file=sys.stderr)
        return 2
    loaded = budgets.load()
    over = []
    for path in files:
        document = report.read(path)
        if document.get("quick"):
            print(f"   ({path.name} is a quick run: its figures are not meaningful)")
        for verdict in budgets.evaluate(document["scenario"], document["summary"], loaded):
            print(f"   {verdict.text()}")
            if not verdict.ok:
                over.append(verdict)
    if over:
        print("over budget:\n" + "\n".join(f"  {v.text()}" for v in over), file=sys.stderr)
        return 1
    print("every figure is within its budget")
    return 0


def command_summarize(args: argparse.Namespace) -> int:
    """One Markdown page from the per-scenario pages (images linked relative to it)."""
    files = result_files(args.directory)
    if not files:
        print(f"no benchmark results in {args.directory}", file=sys.stderr)
        return 2
    first = report.read(files[0])
    relative = Path(args.directory).resolve()
    with contextlib.suppress(ValueError):  # outside the page's directory: keep it absolute
        relative = relative.relative_to(args.output.resolve().parent)
    parts = [
        "# nexo-agent benchmark results",
        "",
        "Generated by `python -m benchmarks summarize` from the latest full run "
        "(`python -m benchmarks run all`); how to rerun and read them: "
        "[README.md](README.md).",
        "",
        f"Machine: {machine.one_line(first['machine'])}.",
        "",
    ]
    documents = [report.read(path) for path in files]
    loads = [d["machine"].get("load_average_start", ["?"])[0] for d in documents] + [
        documents[-1]["machine"].get("load_average_end", ["?"])[0]
    ]
    parts += [f"- {note}" for note in args.note] + ([""] if args.note else [])
    parts += [
        "1-minute load average at each scenario's start and at the end: "
        + ", ".join(str(x) for x in loads)
        + f" (on {first['machine'].get('logical_cpus')} logical CPUs; anything above zero "
        "is other work sharing the machine).",
        "",
        "## At a glance",
        "",
        "| scenario | figure | measured | budget | target | verdict |",
        "|---|---|---|---|---|---|",
    ]
    if any(d.get("quick") for d in documents):
        parts[1:1] = ["", "**Quick-mode results: the figures below are not meaningful.**"]
    loaded = budgets.load()
    for document in documents:
        for v in budgets.evaluate(document["scenario"], document["summary"], loaded):
            sign = "≤" if v.budget.kind == "max" else "≥"
            target = f"{sign} {v.budget.target:g}" if v.budget.target is not None else ""
            verdict = "within" if v.ok else "**OVER**"
            if v.meets_target is False:
                verdict += ", misses target"
            measured = "not measured" if v.value is None else f"{v.value:,.6g}"
            parts.append(
                f"| {document['scenario']} | {v.budget.metric} | {measured} | "
                f"{sign} {v.budget.limit:g} | {target} | {verdict} |"
            )
    parts.append("")
    for path, document in zip(files, documents, strict=True):
        # rendered again from the JSON, so the verdicts follow the current budgets.yaml
        verdicts = budgets.evaluate(document["scenario"], document["summary"], loaded)
        text = report.markdown_of(document, verdicts)
        parts.append(text.replace(f"]({path.stem}.png)", f"]({relative}/{path.stem}.png)"))
    args.output.write_text("\n".join(parts))
    print(f"wrote {args.output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run one scenario or all")
    run.add_argument("scenario", choices=[*SCENARIOS, "all"])
    run.add_argument("--quick", action="store_true", help="seconds and small counts (CI)")
    run.add_argument("--out", type=Path, default=DEFAULT_OUT, help="result directory")
    run.add_argument("--check", action="store_true", help="exit 1 when over budget")
    run.set_defaults(handler=command_run)
    check = commands.add_parser("check", help="check written results against budgets.yaml")
    check.add_argument("directory", type=Path)
    check.set_defaults(handler=command_check)
    summarize = commands.add_parser("summarize", help="write the results as one page")
    summarize.add_argument("directory", type=Path, nargs="?", default=DEFAULT_OUT)
    summarize.add_argument("--output", type=Path, default=RESULTS_MD)
    summarize.add_argument(
        "--note", action="append", default=[], help="a remark about the run (repeatable)"
    )
    summarize.set_defaults(handler=command_summarize)
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
