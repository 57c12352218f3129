"""Scenario 7: what starting costs: ``--version``, ``--check-config``, and start to ``/ready``.

An agent restarts with every deploy, every node reboot and every crash loop, and a CLI
call such as ``--version`` in a health script must answer at once. The CPU seconds of the
child process are read from ``wait4``'s rusage (the whole process, imports included); the
time to ``/ready`` is wall time from ``exec`` until ``/ready`` answers 200 (metrics server
up, Docker discovery synced), with the CPU the process used until then.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import yaml

from benchmarks.agent_process import free_port
from benchmarks.harness import agent_config, docker_client
from benchmarks.procstat import peak_rss_bytes
from benchmarks.receiver import ReceiverProcess
from benchmarks.report import ScenarioResult, Table

TITLE = "Start-up: --version, --check-config and start to /ready"
REPO = Path(__file__).resolve().parent.parent


def cli_cpu_seconds(*args: str) -> float:
    """User + system CPU of one ``python -m agent ARGS`` run, imports included."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=REPO,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"nexo-agent {' '.join(args)} exited {proc.returncode}")
    return float(usage.ru_utime + usage.ru_stime)


def time_to_ready(config_path: Path, port: int, scrapes: int = 0) -> dict[str, float]:
    """Start the agent, poll ``/ready`` every 10 ms; wall seconds, CPU seconds and RSS then.

    ``scrapes``: then scrape ``/metrics`` so many times, and report the peak RSS after
    them (a metrics agent's memory is what it holds once it has served a scrape).
    """
    began = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "--config", str(config_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=REPO,
    )
    try:
        handle = psutil.Process(proc.pid)
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"agent exited {proc.returncode} before /ready")
            if time.monotonic() - began > 60:
                raise RuntimeError("agent not ready within 60 s")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.01)
        wall = time.monotonic() - began
        cpu = handle.cpu_times()
        rss = handle.memory_info().rss
        for _ in range(scrapes):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
                r.read()
        if scrapes:
            rss = peak_rss_bytes(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)
    return {"wall_seconds": wall, "cpu_seconds": cpu.user + cpu.system, "rss_mib": rss / 2**20}


def measure(quick: bool) -> dict[str, Any]:
    runs = 3 if quick else 9
    docker_client()  # the /ready figures need dockerd: fail early and clearly
    version = [cli_cpu_seconds("--version") for _ in range(runs)]
    check = [
        cli_cpu_seconds("--config", str(REPO / "configs/agent.yaml"), "--check-config")
        for _ in range(runs)
    ]
    ready: dict[str, list[dict[str, float]]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="nexo-bench-startup-") as tmp,
        ReceiverProcess() as receiver,
    ):
        workdir = Path(tmp)
        variants = (("logs_and_metrics", True, True), ("logs_only", False, True))
        for name, metrics, logs in (*variants, ("metrics_only", True, False)):
            config = agent_config(workdir, receiver.push_url, metrics=metrics)
            config["logs"]["enabled"] = logs
            port = free_port()
            config["server"]["listen_address"] = f"127.0.0.1:{port}"
            path = workdir / f"{name}.yaml"
            path.write_text(yaml.safe_dump(config))
            scrapes = 0 if logs else 2
            ready[name] = [time_to_ready(path, port, scrapes) for _ in range(runs)]

    def median(values: list[float]) -> float:
        return round(statistics.median(values), 3)

    full = ready["logs_and_metrics"]
    return {
        "runs": runs,
        "version_cpu_seconds": median(version),
        "check_config_cpu_seconds": median(check),
        "ready_cpu_seconds": median([r["cpu_seconds"] for r in full]),
        "ready_wall_seconds": median([r["wall_seconds"] for r in full]),
        "ready_rss_mib": median([r["rss_mib"] for r in full]),
        "logs_only": {
            "ready_cpu_seconds": median([r["cpu_seconds"] for r in ready["logs_only"]]),
            "ready_wall_seconds": median([r["wall_seconds"] for r in ready["logs_only"]]),
            "ready_rss_mib": median([r["rss_mib"] for r in ready["logs_only"]]),
        },
        "metrics_only": {
            "ready_cpu_seconds": median([r["cpu_seconds"] for r in ready["metrics_only"]]),
            "peak_rss_mib": median([r["rss_mib"] for r in ready["metrics_only"]]),
        },
        "samples": {"version": version, "check_config": check, "ready": ready},
    }


def run(quick: bool) -> ScenarioResult:
    summary = measure(quick)
    samples = summary.pop("samples")
    logs_only = summary["logs_only"]
    tables = [
        Table(
            f"Medians of {summary['runs']} runs each",
            ["what", "CPU s", "wall s", "RSS MiB"],
            [
                ["nexo-agent --version", summary["version_cpu_seconds"], "", ""],
                [
                    "--check-config (configs/agent.yaml)",
                    summary["check_config_cpu_seconds"],
                    "",
                    "",
                ],
                [
                    "start to /ready: logs + host + container metrics",
                    summary["ready_cpu_seconds"],
                    summary["ready_wall_seconds"],
                    summary["ready_rss_mib"],
                ],
                [
                    "start to /ready: logs only",
                    logs_only["ready_cpu_seconds"],
                    logs_only["ready_wall_seconds"],
                    logs_only["ready_rss_mib"],
                ],
                [
                    "start to /ready, 2 scrapes: host + container metrics only (peak RSS)",
                    summary["metrics_only"]["ready_cpu_seconds"],
                    "",
                    summary["metrics_only"]["peak_rss_mib"],
                ],
            ],
        )
    ]
    notes = [
        "CPU is the child's rusage (user + system), imports included. /ready means the "
        "metrics server answers and Docker discovery has listed and inspected every "
        "container (the benchmark host's own containers included).",
    ]

    def plot(fig: Any) -> None:
        axis = fig.subplots()
        groups = {
            "--version": samples["version"],
            "--check-config": samples["check_config"],
            "to /ready (all)": [r["cpu_seconds"] for r in samples["ready"]["logs_and_metrics"]],
            "to /ready (logs)": [r["cpu_seconds"] for r in samples["ready"]["logs_only"]],
        }
        axis.boxplot(list(groups.values()))
        axis.set_xticks(range(1, len(groups) + 1), list(groups))
        axis.set_ylabel("CPU seconds")
        axis.set_ylim(bottom=0)

    return ScenarioResult(
        scenario="startup",
        title=TITLE,
        summary=summary,
        details={"samples": samples},
        tables=tables,
        notes=notes,
        plot=plot,
    )
