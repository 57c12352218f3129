"""Scenario 4: what a Prometheus scrape costs, host metrics and container metrics.

Host: :mod:`benchmarks.host_scrape` (the agent's MetricsServer vs Debian's
``prometheus-node-exporter`` serving the same collectors, rounds alternating between the
two in the same run, server CPU from ``/proc/<pid>/stat``). Containers:
:mod:`benchmarks.container_scrape` (real busybox containers, the collector's CPU per
scrape as their number grows).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from benchmarks import container_scrape, host_scrape
from benchmarks.harness import docker_client
from benchmarks.report import ScenarioResult, Table

TITLE = "Scrape cost: host metrics vs node_exporter, container metrics vs container count"
SCRAPE_INTERVAL = 15.0


def run(quick: bool) -> ScenarioResult:
    rounds, batch = (3, 5) if quick else (20, 25)
    sizes, repeat = ([1, 5], 5) if quick else ([1, 10, 50, 100], 20)
    host = host_scrape.run(rounds=rounds, batch=batch, gzip=True)
    # The same scrape behind one web config (TLS + bcrypt basic auth) on both servers.
    tls_rounds = rounds if quick else 10
    with tempfile.TemporaryDirectory() as directory:
        secured = host_scrape.Secured.create(Path(directory))
        host_tls = host_scrape.run(rounds=tls_rounds, batch=batch, gzip=True, secured=secured)
    client = docker_client()
    try:
        containers = [container_scrape.measure(client, n, repeat) for n in sizes]
    finally:
        client.close()
    largest = containers[-1]
    per_scrape_ms = host["agent"]["cpu_ms_per_scrape"] + largest["render_ms"]
    summary: dict[str, Any] = {
        "host": {
            "agent": host["agent"],
            "node_exporter": host["node_exporter"],
            "cpu_ratio_agent_over_node_exporter": round(
                host["cpu_ratio_agent_over_node_exporter"], 3
            ),
            "latency_ratio_agent_over_node_exporter": round(
                host["latency_ratio_agent_over_node_exporter"], 3
            ),
        },
        "host_tls": {
            "agent": host_tls["agent"],
            "node_exporter": host_tls["node_exporter"],
            "cpu_ratio_agent_over_node_exporter": round(
                host_tls["cpu_ratio_agent_over_node_exporter"], 3
            ),
            # TLS + auth CPU per scrape over the plain scrape's, per server
            "agent_tls_over_plain": round(
                host_tls["agent"]["cpu_ms_per_scrape"] / host["agent"]["cpu_ms_per_scrape"], 3
            ),
            "node_exporter_tls_over_plain": round(
                host_tls["node_exporter"]["cpu_ms_per_scrape"]
                / host["node_exporter"]["cpu_ms_per_scrape"],
                3,
            ),
        },
        "containers_largest": largest,
        # host + container scrape every 15 s, as a share of one core
        "cpu_cores_at_15s_interval": round(per_scrape_ms / 1000 / SCRAPE_INTERVAL, 5),
    }
    families = host["families"]
    tables = [
        Table(
            f"Host metrics per scrape (gzip, keep-alive; median of {rounds} rounds of "
            f"{batch} scrapes, alternating targets)",
            ["target", "CPU ms per scrape", "latency ms", "body bytes (gzip)", "node_* families"],
            [
                [
                    "nexo-agent",
                    host["agent"]["cpu_ms_per_scrape"],
                    host["agent"]["latency_ms"],
                    int(host["agent"]["bytes"]),
                    families["agent_host"],
                ],
                [
                    "node_exporter",
                    host["node_exporter"]["cpu_ms_per_scrape"],
                    host["node_exporter"]["latency_ms"],
                    int(host["node_exporter"]["bytes"]),
                    families["node_exporter_host"],
                ],
                [
                    "agent / node_exporter",
                    summary["host"]["cpu_ratio_agent_over_node_exporter"],
                    summary["host"]["latency_ratio_agent_over_node_exporter"],
                    "",
                    "",
                ],
            ],
        ),
        Table(
            "Host metrics per scrape, plain HTTP vs TLS + basic auth from one web config file "
            f"(gzip, keep-alive; medians of {rounds} and {tls_rounds} rounds of {batch})",
            ["target", "plain CPU ms", "TLS + auth CPU ms", "TLS / plain", "TLS latency ms"],
            [
                [
                    label,
                    host[key]["cpu_ms_per_scrape"],
                    host_tls[key]["cpu_ms_per_scrape"],
                    summary["host_tls"][f"{key}_tls_over_plain"],
                    host_tls[key]["latency_ms"],
                ]
                for label, key in (("nexo-agent", "agent"), ("node_exporter", "node_exporter"))
            ],
        ),
        Table(
            f"Container metrics per scrape (collector CPU, median of {repeat})",
            [
                "containers",
                "series",
                "collect CPU ms",
                "collect + limits refresh ms",
                "full exposition CPU ms",
                "exposition elapsed ms",
                "µs CPU per container",
            ],
            [
                [
                    r["containers"],
                    r["series"],
                    r["collect_ms"],
                    r["refresh_ms"],
                    r["render_ms"],
                    r["render_wall_ms"],
                    r["collect_us_per_container"],
                ]
                for r in containers
            ],
        ),
    ]
    notes = [
        "Host: node_exporter runs with the agent's filters and without the collectors the "
        "agent does not have (" + ", ".join(host_scrape.NOT_IN_AGENT) + "); "
        f"node_exporter families the agent lacks: {families['node_exporter_host_not_in_agent']}.",
        "CPU per scrape is the on-CPU time of the server's threads over a batch of scrapes "
        "(the scheduler's nanosecond schedstat of each thread), median over rounds.",
        f"At a {SCRAPE_INTERVAL:.0f} s scrape interval, host plus {largest['containers']} "
        f"containers cost {summary['cpu_cores_at_15s_interval']:.4f} of a core.",
    ]

    def plot(fig: Any) -> None:
        left, right = fig.subplots(1, 2)
        names = ["nexo-agent", "node_exporter"]
        keys = ["agent", "node_exporter"]
        x = range(len(names))
        left.bar([i - 0.2 for i in x], [host[k]["cpu_ms_per_scrape"] for k in keys], 0.4)
        left.bar([i + 0.2 for i in x], [host[k]["latency_ms"] for k in keys], 0.4)
        left.set_xticks(list(x), names)
        left.legend(["CPU ms per scrape", "latency ms"])
        left.set_title("host metrics, same run")
        counts = [r["containers"] for r in containers]
        right.plot(counts, [r["render_ms"] for r in containers], "o-", label="exposition CPU")
        right.plot(counts, [r["collect_ms"] for r in containers], "s-", label="collect CPU")
        right.plot(
            counts, [r["render_wall_ms"] for r in containers], "^--", label="exposition elapsed"
        )
        right.set_xlabel("running containers")
        right.set_ylabel("ms per scrape")
        right.set_title("container metrics")
        right.legend()

    return ScenarioResult(
        scenario="scrape_cost",
        title=TITLE,
        summary=summary,
        details={"host": host, "containers": containers},
        tables=tables,
        notes=notes,
        plot=plot,
    )
