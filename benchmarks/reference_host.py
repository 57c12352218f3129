"""Scenario 1: the reference host, all three jobs at once, against the replaced agents' budgets.

20 real containers under the real dockerd log 2,000 lines/s in total in mixed formats
(:mod:`benchmarks.workload`); the agent, with production defaults and host and container
metrics on, ships them to the counting receiver (another process) and is scraped every
15 s, then, resuming from the same positions, every 1 s. Over a window that starts once
the agent is up and has caught up, its CPU (utime+stime of all its threads) and RSS are
sampled every second.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.budgets import replaced_agents
from benchmarks.harness import (
    PeriodicScraper,
    agent_config,
    agent_pid,
    agent_port,
    docker_client,
    start_agent,
    stop_agent,
)
from benchmarks.procstat import MIB, ProcessSampler, Sample, cores_between
from benchmarks.receiver import ReceiverProcess
from benchmarks.report import ScenarioResult, Table
from benchmarks.workload import FORMAT_NAMES, WrittenLines, logging_containers, wait_for

TITLE = "Reference host: logs, host metrics and container metrics at once, under a steady load"
VARIANTS = (("scrape_15s", 15.0), ("scrape_1s", 1.0))


def cpu_series(samples: list[Sample], step: float = 5.0) -> tuple[list[float], list[float]]:
    """CPU cores used over consecutive ``step``-second spans (a 1 s tick is too coarse)."""
    samples = sorted(samples, key=lambda s: s.t)
    times, cores = [], []
    start = samples[0]
    for sample in samples[1:]:
        if sample.t - start.t >= step:
            times.append(sample.t)
            cores.append(cores_between(start, sample))
            start = sample
    return times, cores


def measure_variant(
    workdir: Path,
    receiver: ReceiverProcess,
    written: WrittenLines,
    name: str,
    interval: float,
    window: float,
    rate: float,
) -> dict[str, Any]:
    agent = start_agent(workdir, agent_config(workdir, receiver.push_url), name=name)
    try:
        # first start reads what the containers wrote before it: wait until it is current
        caught_up = wait_for(
            lambda: receiver.entries() >= written.total() - 2 * rate, timeout=120, interval=0.5
        )
        if not caught_up:
            raise RuntimeError(f"{name}: the agent did not catch up with the load in 120 s")
        time.sleep(2.0)
        with (
            ProcessSampler(agent_pid(agent), 1.0) as sampler,
            PeriodicScraper(agent_port(agent), interval) as scraper,
        ):
            first, received_0, written_0 = sampler.sample(), receiver.entries(), written.total()
            time.sleep(window)
            last, received_1, written_1 = sampler.sample(), receiver.entries(), written.total()
        peak = sampler.peak_rss()
    finally:
        stop_agent(agent)
    samples = sorted(sampler.samples, key=lambda s: s.t)
    inside = [s for s in samples if first.t <= s.t <= last.t]
    cores = cores_between(first, last)
    series_t, series_cores = cpu_series(inside)
    return {
        "scrape_interval_seconds": interval,
        "window_seconds": round(last.t - first.t, 1),
        "cpu_cores": round(cores, 4),
        "host_share": round(cores / len(os.sched_getaffinity(0)), 5),
        "rss_mib_mean": round(statistics.mean(s.rss_bytes for s in inside) / MIB, 1),
        "rss_mib_max_sampled": round(max(s.rss_bytes for s in inside) / MIB, 1),
        "peak_rss_mib": round(peak / MIB, 1),
        "written_lines_per_second": round((written_1 - written_0) / (last.t - first.t)),
        "shipped_lines_per_second": round((received_1 - received_0) / (last.t - first.t)),
        "scrapes": len(scraper.latencies_ms),
        "scrape_errors": scraper.errors,
        "scrape_latency_ms_median": round(statistics.median(scraper.latencies_ms), 2)
        if scraper.latencies_ms
        else None,
        "scrape_body_bytes_gzip": scraper.bytes,
        "series": {
            "t": [round(s.t - first.t, 2) for s in inside],
            "rss_mib": [round(s.rss_bytes / MIB, 2) for s in inside],
            "cpu_t": [round(t - first.t, 2) for t in series_t],
            "cpu_cores": [round(c, 4) for c in series_cores],
        },
    }


def run(quick: bool) -> ScenarioResult:
    count, rate = (4, 400.0) if quick else (20, 2000.0)
    window = 4.0 if quick else 90.0
    client = docker_client()
    variants: dict[str, dict[str, Any]] = {}
    try:
        with (
            tempfile.TemporaryDirectory(prefix="nexo-bench-reference-") as tmp,
            ReceiverProcess() as receiver,
            logging_containers(client, count, rate) as containers,
        ):
            written = WrittenLines(containers)
            for name, interval in VARIANTS:
                variants[name] = measure_variant(
                    Path(tmp), receiver, written, name, interval, window, rate
                )
    finally:
        client.close()
    replaced = replaced_agents()
    total_cpu = sum(a["cpu_cores"] for a in replaced.values())
    total_mem = sum(a["memory_mib"] for a in replaced.values())
    summary: dict[str, Any] = {
        name: {k: v for k, v in variant.items() if k != "series"}
        for name, variant in variants.items()
    }
    summary["max_peak_rss_mib"] = max(v["peak_rss_mib"] for v in variants.values())
    summary["replaced_cpu_cores"] = total_cpu
    summary["replaced_memory_mib"] = total_mem
    summary["share_of_replaced_cpu_15s"] = round(variants["scrape_15s"]["cpu_cores"] / total_cpu, 4)
    summary["share_of_replaced_memory"] = round(summary["max_peak_rss_mib"] / total_mem, 4)
    rows = [
        [
            f"every {v['scrape_interval_seconds']:.0f} s",
            v["cpu_cores"],
            f"{v['host_share']:.2%}",
            f"{v['cpu_cores'] / total_cpu:.1%}",
            v["rss_mib_mean"],
            v["peak_rss_mib"],
            v["written_lines_per_second"],
            v["shipped_lines_per_second"],
            v["scrapes"],
            v["scrape_latency_ms_median"],
        ]
        for v in variants.values()
    ]
    tables = [
        Table(
            f"nexo-agent doing all three jobs ({count} containers, {window:.0f} s window)",
            [
                "scraped",
                "CPU (cores)",
                "share of host",
                f"share of the replaced {total_cpu:g} CPU",
                "RSS mean MiB",
                "peak RSS MiB",
                "lines/s written",
                "lines/s shipped",
                "scrapes",
                "scrape latency ms",
            ],
            rows,
        ),
        Table(
            "Against the budgets of the agents it replaces",
            ["agent", "CPU (cores)", "memory MiB"],
            [[name, b["cpu_cores"], b["memory_mib"]] for name, b in replaced.items()]
            + [
                ["the three together", total_cpu, total_mem],
                [
                    "**nexo-agent** (scraped every 15 s)",
                    variants["scrape_15s"]["cpu_cores"],
                    variants["scrape_15s"]["peak_rss_mib"],
                ],
            ],
        ),
    ]
    notes = [
        f"Workload: {count} busybox containers under dockerd, {rate:g} lines/s in total, one "
        f"format each in turn ({', '.join(FORMAT_NAMES)}), every tenth line an error on stderr.",
        "The agent runs with configs/agent.yaml's defaults (batch 1 MiB / 1 s, protobuf + "
        "snappy, Docker API discovery, host and container metrics) and ships only the "
        "benchmark's containers; Prometheus is simulated by a keep-alive gzip scraper in the "
        "benchmark process. The receiver (another process) and dockerd are not charged to "
        "the agent.",
        "CPU is utime+stime of the agent process over the window; 'peak RSS' is the "
        "kernel's VmHWM, which includes start-up.",
    ]

    def plot(fig: Any) -> None:
        top, bottom = fig.subplots(2, 1, sharex=True)
        for v in variants.values():
            label = f"scraped every {v['scrape_interval_seconds']:.0f} s"
            top.plot(v["series"]["cpu_t"], v["series"]["cpu_cores"], "o-", label=label)
            bottom.plot(v["series"]["t"], v["series"]["rss_mib"], label=label)
        for agent, style in zip(replaced, (":", "--", "-."), strict=False):
            top.axhline(
                replaced[agent]["cpu_cores"], color="gray", linestyle=style, label=f"{agent} budget"
            )
            bottom.axhline(
                replaced[agent]["memory_mib"],
                color="gray",
                linestyle=style,
                label=f"{agent} budget",
            )
        top.set_ylabel("CPU cores (5 s spans)")
        top.set_ylim(
            0, max(0.35, *(max(v["series"]["cpu_cores"] or [0]) for v in variants.values()))
        )
        top.legend(fontsize=8, loc="upper right")
        bottom.set_ylabel("RSS MiB")
        bottom.set_ylim(0, 270)
        bottom.set_xlabel("seconds into the measuring window")
        bottom.legend(fontsize=8, loc="upper right")

    return ScenarioResult(
        scenario="reference_host",
        title=TITLE,
        summary=summary,
        details={"variants": variants, "containers": count, "lines_per_second": rate},
        tables=tables,
        notes=notes,
        plot=plot,
    )
