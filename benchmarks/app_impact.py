"""Scenario 2: how much slower the applications run when the agent runs beside them.

The application is a fixed CPU-bound job that also logs: one busybox ``awk`` per CPU,
each doing a fixed number of loop iterations and printing a JSON line (flushed, as
``console.log`` does) every few thousand, together about 2,000 lines/s. Every CPU is busy,
so whatever the agent uses is taken from the application: the worst case, not an idle
host. Trials alternate agent off (A) and on (B), A B A B ..., so drift in the host's load
hits both arms alike; the agent is started once and is "off" under SIGSTOP (it can use no
CPU), so pairs can be many and short. A trial's throughput is iterations per second of the
processes' own run time (Docker's ``StartedAt``/``FinishedAt``: container start-up is left
out). The result is the median of the B/A ratios of consecutive pairs and their spread.

With the agent on, it runs with production defaults (Docker API discovery, host and
container metrics), ships the B trials' logs to the receiver (another process, also running
during A trials) and is scraped every 15 s, the first scrape at the start of the trial.
"""

from __future__ import annotations

import os
import signal
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.agent_process import AgentProcess
from benchmarks.harness import (
    BUSYBOX_IMAGE,
    CONTAINER_PREFIX,
    PeriodicScraper,
    agent_config,
    agent_pid,
    agent_port,
    docker_client,
    start_agent,
    stop_agent,
)
from benchmarks.procstat import cpu_seconds
from benchmarks.receiver import ReceiverProcess
from benchmarks.report import ScenarioResult, Table

TITLE = "Application impact: a CPU-bound, logging workload with the agent off and on"
LINES_PER_SECOND = 2000.0
# the agent ships only the B trials' containers (A's run while it is stopped)
ON_PREFIX = f"{CONTAINER_PREFIX}on-"
OFF_PREFIX = f"{CONTAINER_PREFIX}off-"
AWK_PROGRAM = (
    "BEGIN{s=0; for(i=0;i<n;i++){s+=(i%7)*(i%13);"
    ' if(i%m==0){printf "{\\"level\\":30,\\"msg\\":\\"work done\\",\\"i\\":%d,\\"s\\":%d}\\n",'
    " i, s; fflush()}}}"
)


def _docker_time(stamp: str) -> float:
    """Docker's RFC 3339 nanosecond stamp as epoch seconds (microsecond precision)."""
    head, _, frac = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}+00:00").timestamp()


def trial(client: Any, workers: int, iterations: int, every: int, prefix: str) -> dict[str, float]:
    """Run the workload once; iterations per second over the processes' own run time."""
    run_id = uuid.uuid4().hex[:6]

    def one(i: int) -> float:
        container = client.containers.run(
            BUSYBOX_IMAGE,
            ["awk", "-v", f"n={iterations}", "-v", f"m={every}", AWK_PROGRAM],
            name=f"{prefix}{run_id}-{i}",
            detach=True,
            network_mode="none",
        )
        try:
            status = container.wait(timeout=600)
            if status.get("StatusCode") != 0:
                raise RuntimeError(f"workload exited with {status}")
            container.reload()
            state = container.attrs["State"]
            return _docker_time(state["FinishedAt"]) - _docker_time(state["StartedAt"])
        finally:
            container.remove(force=True)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        durations = list(pool.map(one, range(workers)))
    return {
        "iterations_per_second": sum(iterations / d for d in durations),
        "seconds": statistics.mean(durations),
    }


def arm(
    agent: AgentProcess, client: Any, workers: int, iterations: int, every: int, on: bool
) -> dict[str, Any]:
    """One trial with the agent stopped (A) or running and scraped every 15 s (B)."""
    assert agent.proc is not None
    if not on:
        agent.proc.send_signal(signal.SIGSTOP)
        try:
            measured = trial(client, workers, iterations, every, OFF_PREFIX)
        finally:
            agent.proc.send_signal(signal.SIGCONT)
        time.sleep(1.0)  # let it settle: A's docker events arrive now (filtered out)
        return {"arm": "A (agent off)", "agent": False, **measured}
    cpu_before = cpu_seconds(agent_pid(agent))
    with PeriodicScraper(agent_port(agent), 15.0):
        started = time.monotonic()
        measured = trial(client, workers, iterations, every, ON_PREFIX)
        wall = time.monotonic() - started
    cores = (cpu_seconds(agent_pid(agent)) - cpu_before) / wall
    time.sleep(1.0)  # the last lines of B are shipped outside A's trial
    return {"arm": "B (agent on)", "agent": True, "agent_cpu_cores": cores, **measured}


def run(quick: bool) -> ScenarioResult:
    workers = len(os.sched_getaffinity(0))
    # many short pairs rather than a few long ones: the median of the pair ratios is what
    # survives drift in the host's load
    pairs, seconds = (2, 1.5) if quick else (15, 4.0)
    client = docker_client()
    trials: list[dict[str, Any]] = []
    try:
        with (
            tempfile.TemporaryDirectory(prefix="nexo-bench-impact-") as tmp,
            ReceiverProcess() as receiver,
        ):
            workdir = Path(tmp)
            # calibration (also the warm-up): size the job to ``seconds`` per trial
            probe = trial(client, workers, 2_000_000, 2_000_000, OFF_PREFIX)
            per_worker_rate = probe["iterations_per_second"] / workers
            iterations = int(per_worker_rate * seconds)
            every = max(1, int(per_worker_rate * workers / LINES_PER_SECOND))
            # the agent is started once; "off" is SIGSTOP (it uses no CPU at all), "on" is
            # SIGCONT, so pairs can be short and many without paying a start-up each time
            config = agent_config(workdir, receiver.push_url)
            config["docker"] = {"include": {"names": [f"{ON_PREFIX}*"]}}
            agent = start_agent(workdir, config)
            try:
                for index in range(2 * pairs):
                    trials.append(arm(agent, client, workers, iterations, every, on=index % 2 == 1))
            finally:
                stop_agent(agent)
            shipped = receiver.entries()
    finally:
        client.close()
    ratios = [
        trials[i + 1]["iterations_per_second"] / trials[i]["iterations_per_second"]
        for i in range(0, len(trials), 2)
    ]
    median_ratio = statistics.median(ratios)
    overheads = sorted(1 - r for r in ratios)
    summary: dict[str, Any] = {
        "pairs": pairs,
        "workers": workers,
        "median_ratio_on_over_off": round(median_ratio, 4),
        "overhead_median": round(1 - median_ratio, 4),
        "overhead_min": round(overheads[0], 4),
        "overhead_max": round(overheads[-1], 4),
        "overhead_stdev": round(statistics.stdev(overheads), 4) if len(overheads) > 1 else 0.0,
        "agent_cpu_cores_median": round(
            statistics.median(t["agent_cpu_cores"] for t in trials if t["agent"]), 4
        ),
        # if every CPU second the agent used were taken from the workload
        "overhead_cpu_accounting": round(
            statistics.median(t["agent_cpu_cores"] for t in trials if t["agent"]) / workers, 4
        ),
        "trial_seconds_median": round(statistics.median(t["seconds"] for t in trials), 2),
        "lines_shipped": shipped,
    }
    tables = [
        Table(
            "Overhead (1 - throughput on / throughput off, per consecutive pair)",
            [
                "pairs",
                "median",
                "min",
                "max",
                "stdev",
                "agent CPU (cores, median of B)",
                "agent CPU / CPUs",
            ],
            [
                [
                    pairs,
                    f"{summary['overhead_median']:.2%}",
                    f"{summary['overhead_min']:.2%}",
                    f"{summary['overhead_max']:.2%}",
                    f"{summary['overhead_stdev']:.2%}",
                    summary["agent_cpu_cores_median"],
                    f"{summary['overhead_cpu_accounting']:.2%}",
                ]
            ],
        ),
        Table(
            "Trials in the order they ran",
            ["#", "arm", "iterations/s (all workers)", "mean run s", "agent CPU (cores)"],
            [
                [
                    i + 1,
                    t["arm"],
                    round(t["iterations_per_second"]),
                    round(t["seconds"], 2),
                    round(t["agent_cpu_cores"], 4) if t["agent"] else "",
                ]
                for i, t in enumerate(trials)
            ],
        ),
    ]
    notes = [
        f"{workers} workers (one per usable CPU), {iterations:,} iterations each, a JSON log "
        f"line every {every:,} iterations (about {LINES_PER_SECOND:g} lines/s in total); "
        f"{shipped:,} lines reached the receiver during the B trials.",
        "'agent CPU / CPUs' is the overhead if every CPU second the agent used had been "
        "taken from the workload (all CPUs are busy): an upper estimate free of timing noise.",
        "A negative overhead means the B trial happened to run faster: the spread shows how "
        "much the host's own noise moves a trial (other work shares this machine; see the "
        "load average).",
    ]

    def plot(fig: Any) -> None:
        left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 1]})
        for arm, color in (("A (agent off)", "tab:gray"), ("B (agent on)", "tab:orange")):
            xs = [i + 1 for i, t in enumerate(trials) if t["arm"] == arm]
            ys = [t["iterations_per_second"] / 1e6 for t in trials if t["arm"] == arm]
            left.plot(xs, ys, "o", color=color, label=arm, markersize=8)
        left.set_xlabel("trial (in order)")
        left.set_ylabel("million iterations / s")
        left.legend()
        right.boxplot([[o * 100 for o in overheads]], tick_labels=["overhead %"])
        right.axhline(5, color="tab:red", linestyle="--", label="budget 5%")
        right.axhline(1, color="tab:green", linestyle=":", label="target 1%")
        right.axhline(0, color="black", linewidth=0.5)
        right.legend(fontsize=8)

    return ScenarioResult(
        scenario="app_impact",
        title=TITLE,
        summary=summary,
        details={"trials": trials, "ratios": ratios, "iterations": iterations, "every": every},
        tables=tables,
        notes=notes,
        plot=plot,
    )
