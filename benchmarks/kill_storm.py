"""Scenario 6: ``kill -9`` under a rotation storm: nothing lost, about a second repeated per kill.

Issue 10's measurement, as a figure: five containers write numbered lines into json-file
logs rotating every couple of seconds (``max-size=512k``, ``max-file=3``, the first one
compressed), while the agent is killed with SIGKILL at random 1.5-4 s intervals and
started again on its positions file each time. Positions only ever record what Loki
acknowledged, so nothing may be lost; what is sent twice is what was acknowledged after
the last positions write. A sixth container with ``max-file=1`` shows the one loss no
agent can prevent: Docker truncates its only file while the agent is down; the agent must
count it and say so, with the bytes known lost.
"""

from __future__ import annotations

import random
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    BUSYBOX_IMAGE,
    CONTAINER_PREFIX,
    agent_config,
    docker_client,
    remove_containers_named,
    start_agent,
    stop_agent,
)
from benchmarks.receiver import ReceiverProcess
from benchmarks.report import ScenarioResult, Table
from benchmarks.workload import wait_for

TITLE = "kill -9 under a rotation storm: lines lost and repeated per kill"
_LOST_BYTES = re.compile(r'"min_bytes": ?(\d+)|"bytes": ?(\d+)')


def writer(count: int, per_second: float) -> str:
    """busybox sh: ``count`` lines ``storm seq=<i> <pad>`` at about ``per_second``."""
    burst = 20
    pause_us = max(0, int(burst / per_second * 1e6) - 1000)
    pad = "x" * 90
    return (
        f'i=0; while [ $i -lt {count} ]; do echo "storm seq=$i {pad}"; i=$((i+1));'
        f" if [ $((i % {burst})) -eq 0 ]; then busybox usleep {pause_us}; fi; done;"
        " exec sleep 3600"
    )


def start_writers(client: Any, run_id: str, count: int, per_second: float) -> list[Any]:
    started = []
    for i in range(6):
        options = {"max-size": "512k", "max-file": "3" if i < 5 else "1"}
        if i == 0:
            options["compress"] = "true"
        kind = "maxfile1" if i == 5 else ("gz" if i == 0 else "plain")
        started.append(
            client.containers.run(
                BUSYBOX_IMAGE,
                ["sh", "-c", writer(count, per_second)],
                name=f"{CONTAINER_PREFIX}{run_id}-storm{i}-{kind}",
                detach=True,
                network_mode="none",
                log_config={"type": "json-file", "config": options},
            )
        )
    return started


def storm(quick: bool) -> dict[str, Any]:
    count, per_second, kills = (4_000, 800.0, 3) if quick else (40_000, 1_300.0, 10)
    gap = (1.0, 2.0) if quick else (1.5, 4.0)
    rng = random.Random(2026)
    client = docker_client()
    run_id = f"{random.randrange(16**6):06x}"
    with (
        tempfile.TemporaryDirectory(prefix="nexo-bench-storm-") as tmp,
        ReceiverProcess(track_seq=True) as receiver,
    ):
        workdir = Path(tmp)
        config = agent_config(workdir, receiver.push_url, metrics=False)
        containers: list[Any] = []
        timeline: list[tuple[float, int, int]] = []  # at each kill: t, entries, duplicates
        agent = start_agent(workdir, config)
        try:
            containers = start_writers(client, run_id, count, per_second)
            began = time.monotonic()
            for _ in range(kills):
                time.sleep(rng.uniform(*gap))
                agent.kill()
                stats = receiver.stats()
                timeline.append((time.monotonic() - began, stats["entries"], stats["duplicates"]))
                agent = start_agent(workdir, config)
            names = [c.name for c in containers]
            complete = wait_for(
                lambda: all(
                    receiver.stats()["containers"].get(n, {}).get("max_seq", -1) >= count - 1
                    for n in names
                ),
                timeout=300,
                interval=1.0,
            )
            writing = time.monotonic() - began
            time.sleep(2.0)  # late duplicates
            final = receiver.stats()
        finally:
            stop_agent(agent)
            remove_containers_named(client, f"{CONTAINER_PREFIX}{run_id}-")
        log_text = agent.log_path.read_text(errors="replace")
    lost_said = [line for line in log_text.splitlines() if "log data lost" in line]
    said_bytes = sum(int(a or b) for m in lost_said for a, b in _LOST_BYTES.findall(m)[:1])
    per = final["containers"]
    rotating = [n for n in per if "maxfile1" not in n]
    maxfile1 = next((n for n in per if "maxfile1" in n), "")
    return {
        "kills": kills,
        "drained": complete,
        "writing_seconds": round(writing, 1),
        "written_lines": count * len(containers),
        "lost_lines_rotating": sum(count - per[n]["distinct"] for n in rotating)
        + count * (5 - len(rotating)),
        "duplicate_lines": final["duplicates"],
        "duplicates_per_kill": round(final["duplicates"] / kills, 1),
        "duplicate_seconds_per_kill": round(
            final["duplicates"] / kills / (per_second * len(containers)), 2
        ),
        "lost_lines_max_file_1": count - (per[maxfile1]["distinct"] if maxfile1 else 0),
        "loss_warnings": len(lost_said),
        "loss_bytes_said": said_bytes,
        "timeline": timeline,
    }


def run(quick: bool) -> ScenarioResult:
    summary = storm(quick)
    timeline = summary.pop("timeline")
    tables = [
        Table(
            f"{summary['kills']} kills over {summary['writing_seconds']} s, "
            "6 containers (512k files; max-file 3 x5, one gzip; max-file 1 x1)",
            [
                "written",
                "lost (max-file 3)",
                "duplicates",
                "per kill",
                "seconds of load per kill",
                "lost (max-file 1, inherent)",
                "loss warnings / bytes said",
            ],
            [
                [
                    summary["written_lines"],
                    summary["lost_lines_rotating"],
                    summary["duplicate_lines"],
                    summary["duplicates_per_kill"],
                    summary["duplicate_seconds_per_kill"],
                    summary["lost_lines_max_file_1"],
                    f"{summary['loss_warnings']} / {summary['loss_bytes_said']}",
                ]
            ],
        )
    ]
    notes = [
        "Production defaults (positions written within 1 s of each acknowledgement, 1 MiB / "
        "1 s batches), host and container metrics off. Duplicates are seqs that arrived more "
        "than once; the 'seconds of load' column divides them by the write rate.",
        "The max-file=1 container loses what Docker truncated while the agent was down; the "
        "agent logs each such loss once with the bytes known lost (a lower bound: the rest of "
        "a file that had reached max-size).",
    ]

    def plot(fig: Any) -> None:
        axis = fig.subplots()
        t = [row[0] for row in timeline]
        axis.plot(t, [row[1] for row in timeline], "o-", label="entries received")
        axis.plot(t, [row[2] for row in timeline], "s-", label="of which duplicates")
        for at in t:
            axis.axvline(at, color="tab:red", alpha=0.3)
        axis.set_xlabel("seconds (red: kill -9)")
        axis.set_ylabel("entries at each kill")
        axis.legend(fontsize=8, loc="upper left")

    return ScenarioResult(
        scenario="kill_storm",
        title=TITLE,
        summary=summary,
        details={"at_each_kill": timeline},
        tables=tables,
        notes=notes,
        plot=plot,
    )
