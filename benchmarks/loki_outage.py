"""Scenario 5: Loki refuses for minutes under the reference load; bounded memory, no loss.

The reference load (:mod:`benchmarks.workload`) runs while the receiver answers 500, then
429, then refuses connections (listener and keep-alive connections closed), a third of
the outage each. The agent keeps what it read but Loki has not acknowledged in memory
only up to ``max_in_flight_bytes`` (the default) and leaves the rest on disk, so its RSS
must stay flat. When the receiver accepts again the agent must catch up; then the writers are
killed, the agent drains, and every ``seq`` of every container written to its json-file
log must have arrived exactly once.

Catch-up is reported in two parts: the wait until the first accepted push (the retry
backoff; capped at ``BACKOFF_MAX`` here instead of the 5 min default, so the run stays
short) and the drain from then until the backlog is down to normal pipeline lag.
"""

from __future__ import annotations

import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from agent.config import PipelineConfig
from benchmarks.harness import (
    agent_config,
    agent_pid,
    agent_port,
    docker_client,
    start_agent,
    stop_agent,
)
from benchmarks.procstat import MIB, ProcessSampler
from benchmarks.receiver import ReceiverProcess
from benchmarks.report import ScenarioResult, Table
from benchmarks.workload import WrittenLines, logging_containers, stop_writers, wait_for

TITLE = "Loki outage: 500, then 429, then connection refused, under the reference load"
BACKOFF_MAX = "30s"
FAULTS = ("500", "429", "refuse")


def agent_gauge(port: int, name: str) -> float | None:
    """Sum of one of the agent's own gauges from its ``/metrics`` (``None`` if unreachable)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return None
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name)] in " {":
            total += float(line.rsplit(" ", 1)[1])
    return total


class Timeline:
    """One row a second: phase, agent RSS, lines written and received, in-flight bytes."""

    def __init__(
        self, sampler: ProcessSampler, receiver: ReceiverProcess, written: WrittenLines, port: int
    ) -> None:
        self.rows: list[dict[str, Any]] = []
        self._sampler, self._receiver, self._written, self._port = sampler, receiver, written, port

    def tick(self, phase: str) -> dict[str, Any]:
        sample = self._sampler.sample()
        stats = self._receiver.stats()
        row = {
            "t": round(sample.t, 2),
            "phase": phase,
            "rss_mib": round(sample.rss_bytes / MIB, 2),
            "written": self._written.total(),
            "received": stats["entries"],
            "accepted_pushes": stats["statuses"].get("204", 0),
            "in_flight_mib": None,
        }
        if len(self.rows) % 5 == 0:
            in_flight = agent_gauge(self._port, "nexo_agent_in_flight_bytes")
            row["in_flight_mib"] = None if in_flight is None else round(in_flight / MIB, 2)
        self.rows.append(row)
        return row

    def run_for(self, seconds: float, phase: str) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.tick(phase)
            time.sleep(max(0.0, min(1.0, deadline - time.monotonic())))


def run(quick: bool) -> ScenarioResult:
    count, rate = (4, 400.0) if quick else (20, 2000.0)
    warmup, per_fault = (2.0, 2.0) if quick else (10.0, 50.0)
    client = docker_client()
    try:
        with (
            tempfile.TemporaryDirectory(prefix="nexo-bench-outage-") as tmp,
            ReceiverProcess(track_seq=True) as receiver,
            logging_containers(client, count, rate) as containers,
        ):
            workdir = Path(tmp)
            written = WrittenLines(containers)
            config = agent_config(
                workdir, receiver.push_url, loki={"backoff": {"max_period": BACKOFF_MAX}}
            )
            agent = start_agent(workdir, config)
            try:
                with ProcessSampler(agent_pid(agent), 1.0) as sampler:
                    timeline = Timeline(sampler, receiver, written, agent_port(agent))
                    outcome = outage(timeline, receiver, written, containers, warmup, per_fault)
                    outcome["peak_rss_mib"] = round(sampler.peak_rss() / MIB, 1)
            finally:
                stop_agent(agent)
            final = receiver.stats()
    finally:
        client.close()
    return result(outcome, final, timeline.rows, count, rate, per_fault, config)


def outage(
    timeline: Timeline,
    receiver: ReceiverProcess,
    written: WrittenLines,
    containers: list[Any],
    warmup: float,
    per_fault: float,
) -> dict[str, Any]:
    timeline.run_for(warmup, "normal")
    outage_start = timeline.tick("normal")
    for fault in FAULTS:
        receiver.fault(fault)
        timeline.run_for(per_fault, f"refusing ({fault})")
    receiver.fault("none")
    recovered = timeline.tick("recovering")
    rss_outage_max = max(r["rss_mib"] for r in timeline.rows if r["phase"].startswith("refusing"))
    accepted_before = recovered["accepted_pushes"]
    first_accept: float | None = None
    caught_up: float | None = None
    lag_allowed = max(
        10.0,
        2 * (recovered["written"] - outage_start["written"]) / (recovered["t"] - outage_start["t"]),
    )  # two seconds of the load: the pipeline's normal lag (1 s batches)
    deadline = time.monotonic() + 600
    while caught_up is None and time.monotonic() < deadline:
        row = timeline.tick("recovering")
        if first_accept is None and row["accepted_pushes"] > accepted_before:
            first_accept = row["t"]
        if first_accept is not None and row["written"] - row["received"] <= lag_allowed:
            caught_up = row["t"]
        else:
            time.sleep(0.5)
    timeline.run_for(3.0, "caught up")
    stop_writers(containers)
    expected = written.per_container()
    complete = wait_for(
        lambda: all(
            receiver.stats()["containers"].get(name, {}).get("complete_below", 0) >= n
            for name, n in expected.items()
        ),
        timeout=120,
        interval=1.0,
    )
    timeline.tick("writers stopped, drained" if complete else "writers stopped, NOT drained")
    return {
        "outage_seconds": round(recovered["t"] - outage_start["t"], 1),
        "backlog_lines_at_recovery": recovered["written"] - recovered["received"],
        "rss_mib_max_during_outage": rss_outage_max,
        "seconds_to_first_accepted_push": None
        if first_accept is None
        else round(first_accept - recovered["t"], 1),
        "drain_seconds": None
        if caught_up is None or first_accept is None
        else round(caught_up - first_accept, 1),
        "catch_up_seconds": None if caught_up is None else round(caught_up - recovered["t"], 1),
        "drained": complete,
        "expected": expected,
    }


def result(
    outcome: dict[str, Any],
    final: dict[str, Any],
    rows: list[dict[str, Any]],
    count: int,
    rate: float,
    per_fault: float,
    config: dict[str, Any],
) -> ScenarioResult:
    expected: dict[str, int] = outcome.pop("expected")
    received = final["containers"]
    lost = 0
    for name, n in expected.items():
        got = received.get(name, {"distinct": 0, "complete_below": 0})
        if got["complete_below"] < n:
            lost += n - min(got["distinct"], n)
    summary: dict[str, Any] = {
        **outcome,
        "written_lines": sum(expected.values()),
        "received_distinct_lines": sum(c["distinct"] for c in received.values()),
        "lost_lines": lost,
        "duplicate_lines": final["duplicates"],
        "refused_pushes": {k: v for k, v in final["statuses"].items() if k != "204"},
    }
    tables = [
        Table(
            f"{outcome['outage_seconds']:.0f} s outage ({per_fault:.0f} s each of "
            f"{', '.join(FAULTS)}) with {count} containers at {rate:g} lines/s",
            [
                "peak RSS MiB",
                "max RSS during outage MiB",
                "backlog at recovery (lines)",
                "first accepted push after (s)",
                "then drained in (s)",
                "catch-up total (s)",
                "written",
                "lost",
                "duplicated",
            ],
            [
                [
                    summary["peak_rss_mib"],
                    summary["rss_mib_max_during_outage"],
                    summary["backlog_lines_at_recovery"],
                    summary["seconds_to_first_accepted_push"],
                    summary["drain_seconds"],
                    summary["catch_up_seconds"],
                    summary["written_lines"],
                    summary["lost_lines"],
                    summary["duplicate_lines"],
                ]
            ],
        ),
    ]
    notes = [
        f"Backoff: {config['logs']['loki']['backoff']}, otherwise production defaults "
        f"(max_in_flight_bytes {PipelineConfig().max_in_flight_bytes / MIB:g} MiB, batches "
        f"of 1 MiB / 1 s). Refused pushes by answer: {summary['refused_pushes']}.",
        "Caught up = the lines written but not yet received are down to two seconds of load "
        "(the normal lag of 1 s batches). Lost = lines in the containers' json-file logs "
        "whose seq never reached the receiver after the writers were killed and the agent "
        "drained; duplicated = seqs that arrived more than once.",
    ]

    def plot(fig: Any) -> None:
        top, bottom = fig.subplots(2, 1, sharex=True)
        t = [r["t"] for r in rows]
        top.plot(t, [r["rss_mib"] for r in rows], label="agent RSS")
        flight = [(r["t"], r["in_flight_mib"]) for r in rows if r["in_flight_mib"] is not None]
        if flight:
            top.plot(*zip(*flight, strict=True), "o", markersize=3, label="in-flight MiB")
        top.axhline(128, color="tab:red", linestyle="--", label="RSS budget 128 MiB")
        top.set_ylabel("MiB")
        top.set_ylim(0, 140)
        top.legend(fontsize=8, loc="center left")
        bottom.plot(t, [r["written"] for r in rows], label="written by containers")
        bottom.plot(t, [r["received"] for r in rows], label="received by 'Loki'")
        bottom.set_ylabel("lines")
        bottom.set_xlabel("seconds")
        bottom.legend(fontsize=8, loc="upper left")
        for fault in FAULTS:
            phase = f"refusing ({fault})"
            inside = [i for i, r in enumerate(rows) if r["phase"] == phase]
            if not inside:
                continue
            start, end = rows[inside[0]]["t"], rows[min(inside[-1] + 1, len(rows) - 1)]["t"]
            for axis in (top, bottom):
                axis.axvspan(start, end, alpha=0.12, color="tab:red")
            top.text(start, 132, fault, fontsize=8)

    return ScenarioResult(
        scenario="loki_outage",
        title=TITLE,
        summary=summary,
        details={"timeline": rows, "per_container": received, "expected": expected},
        tables=tables,
        notes=notes,
        plot=plot,
    )
