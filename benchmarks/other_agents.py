"""Fluent Bit and Promtail on the same json-file logs, pinned the same way, same receiver.

Each is configured as its users do for this job (``docker`` partial-line joining where it
has one, JSON parsing, level as a label, ids as structured metadata), reads the data root
from the head, and pushes to the counting receiver (``benchmarks/receiver.py``) on the
other core. Binaries come from ``FLUENTBIT_BIN`` / ``PROMTAIL_BIN`` (build them with
``../shared/tools/build-anchors.sh``); a missing one is reported, never faked.

Unlike the agent's run, whose start-up is left out, these count CPU from process start:
a Go or C binary starts in milliseconds, well inside the noise of a million lines.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from benchmarks.harness import pinned
from benchmarks.procstat import cpu_seconds, peak_rss_bytes
from benchmarks.receiver import ReceiverProcess

# Give up once nothing new arrived for this long (a tool that drops lines never finishes).
STALL_SECONDS = 20.0


@dataclass(frozen=True)
class OtherAgent:
    """How to run one tool: its binary's variable and a config writer."""

    name: str
    env: str
    describe: str
    # (workdir, log glob, push url) -> argv after the binary
    argv: Callable[[Path, str, str], list[str]]
    # entries it ships for the corpus: lines (joins partials) or json-file records
    ships_records: bool


def _fluentbit_argv(workdir: Path, glob: str, push_url: str, parse: bool = True) -> list[str]:
    """``parse``: the JSON parser filter and level/ids from it, as a user would configure
    it; without, Fluent Bit only joins partials and ships the raw line (less work than
    the agent does: an upper bound of its speed here)."""
    port = push_url.split(":")[2].split("/")[0]
    binary = Path(os.environ["FLUENTBIT_BIN"]).resolve()
    parsers = next(
        (
            p
            for p in (binary.parent / "parsers.conf", binary.parent.parent / "parsers.conf")
            if p.exists()
        ),
        None,
    )
    parser = """
[FILTER]
    Name         parser
    Match        *
    Key_Name     log
    Parser       json
    Reserve_Data On
"""
    output = (
        """    labels              job=fluent-bit, stream=$stream, level=$level
    structured_metadata accountId=$accountId, userId=$userId, requestId=$requestId
    line_format         json"""
        if parse
        else """    labels              job=fluent-bit, stream=$stream
    remove_keys         stream, time
    drop_single_key     raw"""
    )
    config = workdir / "fluent-bit.conf"
    config.write_text(
        f"""[SERVICE]
    Flush        1
    Log_Level    warn
    {"Parsers_File " + str(parsers) if parsers else ""}
    HTTP_Server  Off

[INPUT]
    Name              tail
    Path              {glob}
    multiline.parser  docker
    Read_from_Head    On
    Refresh_Interval  1
    Buffer_Chunk_Size 64k
    Buffer_Max_Size   1M
    DB                {workdir / "fluent-bit.db"}
{parser if parse else ""}
[OUTPUT]
    Name                loki
    Match               *
    Host                127.0.0.1
    Port                {port}
{output}
"""
    )
    return ["-c", str(config)]


def _promtail_argv(workdir: Path, glob: str, push_url: str) -> list[str]:
    config = {
        "server": {"disable": True},
        "positions": {"filename": str(workdir / "promtail-positions.yaml")},
        "clients": [{"url": push_url, "batchwait": "1s", "batchsize": 1048576}],
        "scrape_configs": [
            {
                "job_name": "docker",
                "static_configs": [
                    {"targets": ["localhost"], "labels": {"job": "docker", "__path__": glob}}
                ],
                "pipeline_stages": [
                    {"docker": {}},
                    # each parser only on the lines it can read: no error per other line
                    {
                        "match": {
                            "selector": '{job="docker"} |~ "^\\\\{"',
                            "stages": [
                                {
                                    "json": {
                                        "expressions": {
                                            "level": "level",
                                            "accountId": "accountId",
                                            "userId": "userId",
                                            "requestId": "requestId",
                                        }
                                    }
                                }
                            ],
                        }
                    },
                    {
                        "match": {
                            "selector": '{job="docker"} |~ "^level="',
                            "stages": [
                                {"logfmt": {"mapping": {"level": "", "requestId": "request_id"}}},
                                {"logfmt": {"mapping": {"userId": "user_id"}}},
                            ],
                        }
                    },
                    {
                        "match": {
                            "selector": '{job="docker"} |= "[Nest]"',
                            "stages": [
                                {
                                    "regex": {
                                        "expression": r"^(?:\x1b\[[0-9;]*m)?\[Nest\] \d+\s+- "
                                        r"[^A-Z]*(?:\x1b\[[0-9;]*m)?\s*(?P<level>[A-Z]+)"
                                    }
                                },
                                {"regex": {"expression": r"accountId=(?P<accountId>\S+)"}},
                                {"regex": {"expression": r"userId=(?P<userId>\S+)"}},
                                {"regex": {"expression": r"requestId=(?P<requestId>\S+)"}},
                            ],
                        }
                    },
                    {"labels": {"level": ""}},
                    {"structured_metadata": {"accountId": "", "userId": "", "requestId": ""}},
                ],
            }
        ],
    }
    path = workdir / "promtail.yaml"
    path.write_text(yaml.safe_dump(config))
    return ["-config.file", str(path), "-log.level", "warn"]


OTHER_AGENTS = (
    OtherAgent(
        "fluent-bit",
        "FLUENTBIT_BIN",
        "tail + docker multiline + JSON parser, loki out (JSON)",
        _fluentbit_argv,
        ships_records=False,
    ),
    OtherAgent(
        "fluent-bit-raw",
        "FLUENTBIT_BIN",
        "tail + docker multiline, loki out of the raw line: no parsing at all",
        lambda workdir, glob, url: _fluentbit_argv(workdir, glob, url, parse=False),
        ships_records=False,
    ),
    OtherAgent(
        "promtail",
        "PROMTAIL_BIN",
        "docker + json, logfmt, 4 regex (each under a match) + labels + structured metadata",
        _promtail_argv,
        ships_records=True,
    ),
)


def available(tool: OtherAgent) -> str | None:
    """The binary to run, or ``None`` when its variable is unset or points nowhere."""
    binary = os.environ.get(tool.env, "")
    if binary and (Path(binary).is_file() or shutil.which(binary)):
        return binary
    return None


def run_other(
    tool: OtherAgent, staged: Path, workdir: Path, lines: int, records: int
) -> dict[str, Any]:
    """Run ``tool`` over a hard-linked copy of the ``staged`` data root; its figures."""
    binary = available(tool)
    assert binary is not None
    data_root = workdir / "docker"
    shutil.copytree(staged, data_root, copy_function=os.link)
    expected = records if tool.ships_records else lines
    glob = str(data_root / "containers" / "*" / "*-json.log")
    with ReceiverProcess(core=1 if os.cpu_count() != 1 else 0) as receiver:
        argv = tool.argv(workdir, glob, receiver.push_url)
        log = (workdir / f"{tool.name}.log").open("wb")
        started = time.monotonic()
        proc = subprocess.Popen(pinned([binary, *argv], 0), stdout=log, stderr=log)
        try:
            received, last_change, last_count = 0, started, -1
            while received < expected:
                time.sleep(0.05)
                received = receiver.entries()
                now = time.monotonic()
                if received != last_count:
                    last_count, last_change = received, now
                if proc.poll() is not None or now - last_change > STALL_SECONDS:
                    break
            wall = time.monotonic() - started
            alive = proc.poll() is None
            cpu = cpu_seconds(proc.pid) if alive else 0.0
            rss = peak_rss_bytes(proc.pid) if alive else 0
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
    complete = received >= expected
    return {
        "tool": tool.name,
        "config": tool.describe,
        "lines": lines,
        "entries_expected": expected,
        "entries_received": received,
        "complete": complete,
        "wall_seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "cpu_seconds_per_million_lines": round(cpu / lines * 1e6, 3) if cpu else None,
        "lines_per_cpu_second": round(lines / cpu) if cpu and complete else None,
        "peak_rss_bytes": rss,
        "log_tail": (workdir / f"{tool.name}.log").read_text(errors="replace")[-600:],
    }
