"""Log pipeline throughput: pre-written json-file logs -> agent on one pinned core -> receiver.

Builds a fake Docker data root (``containers/<id>/config.v2.json``, ``hostconfig.json`` and
``<id>-json.log`` with Docker's exact record format), runs the real agent with socket-free
discovery pinned to one core (``taskset -c 0``), and a counting Loki receiver
(``benchmarks/receiver.py``) in another process on another core. The agent starts on an
empty data root; once it is healthy the containers' directories are moved in, so the
figures (lines/s, CPU seconds per million lines, peak RSS) leave the interpreter's
start-up out. ``NEXO_BENCH_PROFILE=FILE`` runs the agent under cProfile into FILE.

    python -m benchmarks.log_throughput --lines 1000000 --containers 20 [--format mixed]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from benchmarks.agent_process import free_port
from benchmarks.corpus import corpus_line, docker_records, records_per_line
from benchmarks.harness import pinned
from benchmarks.procstat import cpu_seconds, peak_rss_bytes
from benchmarks.receiver import ReceiverProcess

FORMATS = ("json", "logfmt", "nest", "text", "mixed")
# A realistic host (``benchmarks/corpus.py``): formats interleaved, colours, partial lines.
CORPUS = "corpus"


def app_line(fmt: str, i: int) -> str:
    """One application line in the given format (``mixed`` cycles through the others)."""
    if fmt == CORPUS:
        return corpus_line(i)
    if fmt == "mixed":
        fmt = FORMATS[i % 4]
    if fmt == "json":
        return (
            f'{{"level":{30 + 10 * (i % 3)},"time":1764174000000,"pid":1,"hostname":"api",'
            f'"req":{{"id":"req-{i}"}},"accountId":"acc-{i % 50}","msg":"request completed"}}'
        )
    if fmt == "logfmt":
        return (
            f'level=info ts=2026-11-26T16:19:03Z msg="cache refreshed" request_id=r-{i} '
            f"user_id=u-{i % 100} duration_ms={i % 97}"
        )
    if fmt == "nest":
        return (
            f"[Nest] 42  - 11/26/2026, 4:19:03 PM     LOG [AuthService] Login ok "
            f"account=acc-{i % 50} user={i % 100}"
        )
    return f'Upload request: file="report-{i}.pdf" size={i * 7 % 100000} account=acc-{i % 50}'


def build_data_root(root: Path, lines: int, containers: int, fmt: str) -> int:
    """Containers' directories with their json-file logs; the number of records written."""
    records = 0
    base_ns = time.time_ns() - 3600 * 10**9
    per = lines // containers
    for c in range(containers):
        cid = hashlib.sha256(f"bench-{c}".encode()).hexdigest()
        directory = root / "containers" / cid
        directory.mkdir(parents=True)
        config = {
            "ID": cid,
            "Name": f"/bench-{c}",
            "Created": "2026-11-26T16:00:00.000000000Z",
            "Config": {
                "Image": "bench:latest",
                "Labels": {
                    "com.docker.compose.project": "crm",
                    "com.docker.compose.service": f"svc-{c % 5}",
                },
            },
            "State": {"Running": False, "Pid": 0, "StartedAt": "2026-11-26T16:00:00Z"},
        }
        (directory / "config.v2.json").write_text(json.dumps(config))
        (directory / "hostconfig.json").write_text(json.dumps({"LogConfig": {"Type": "json-file"}}))
        with (directory / f"{cid}-json.log").open("wb") as out:
            buf = []
            for i in range(per):
                stream = "stderr" if i % 10 == 0 else "stdout"
                line = app_line(fmt, i)
                records += records_per_line(line)
                buf.append(docker_records(line, base_ns + i * 1000, stream))
                if len(buf) >= 10000:
                    out.write(b"".join(buf))
                    buf.clear()
            out.write(b"".join(buf))
    return records


# cProfile with a CPU-time clock (``python -m cProfile`` measures wall time, so the event
# loop's idle waits would look like work), switched on by SIGUSR1 once the agent is up so
# the interpreter's start-up stays out, and written when the agent exits.
PROFILED_AGENT = """
import cProfile, runpy, signal, sys, time
profiler = cProfile.Profile(time.process_time)
signal.signal(signal.SIGUSR1, lambda *_: profiler.enable())
output, sys.argv = sys.argv[1], ["agent", *sys.argv[2:]]
try:
    runpy.run_module("agent", run_name="__main__", alter_sys=True)
except SystemExit:
    pass
finally:
    profiler.disable()
    profiler.dump_stats(output)
"""


def wait_healthy(url: str, agent: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                response.read()
                return
        except OSError:
            if agent.poll() is not None:
                raise RuntimeError(f"agent exited with {agent.returncode}") from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def run_once(
    lines: int,
    containers: int,
    fmt: str,
    workdir: Path,
    profile: Path | None = None,
    encoding: str = "protobuf",
    staged: Path | None = None,
    stages: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Ship ``lines`` pre-written lines of ``fmt`` through one pinned agent; the figures.

    ``staged``: a data root already built by :func:`build_data_root` with these arguments
    (hard-linked here, so several runs read the same bytes without writing them again).
    ``stages``: ``logs.pipeline.stages`` to run; as they drop and join lines, the run ends
    when the agent has read every line and Loki acknowledged all it sent, not at a count.
    """
    staging = workdir / "staging"
    if staged is None:
        build_data_root(staging, lines, containers, fmt)
    else:
        shutil.copytree(staged, staging, copy_function=os.link)
    data_root = workdir / "docker"
    (data_root / "containers").mkdir(parents=True)
    total = (lines // containers) * containers
    listen = f"127.0.0.1:{free_port()}"
    with ReceiverProcess(core=1 if os.cpu_count() != 1 else 0) as receiver:
        config = {
            "hostname": "bench",
            "log_level": "warning",
            "server": {"listen_address": listen},
            "docker": {
                "discovery": "files",
                "data_root": str(data_root),
                "poll_interval": "200ms",
            },
            "logs": {
                "positions_file": str(workdir / "positions.json"),
                "loki": {"url": receiver.push_url, "encoding": encoding},
                "pipeline": {"stages": stages or []},
            },
            "metrics": {"host": {"enabled": False}, "containers": {"enabled": False}},
        }
        config_path = workdir / "agent.yaml"
        config_path.write_text(yaml.safe_dump(config))
        if profile is None and os.environ.get("NEXO_BENCH_PROFILE"):
            profile = Path(os.environ["NEXO_BENCH_PROFILE"])
        runner = ["-c", PROFILED_AGENT, str(profile)] if profile else ["-m", "agent"]
        agent = subprocess.Popen(pinned([sys.executable, *runner, "--config", str(config_path)], 0))
        try:
            wait_healthy(f"http://{listen}/healthz", agent)
            if profile:
                agent.send_signal(signal.SIGUSR1)
            cpu_before = cpu_seconds(agent.pid)
            started = time.monotonic()
            for directory in (staging / "containers").iterdir():
                directory.rename(data_root / "containers" / directory.name)
            received = 0
            while received < total if not stages else not _settled(listen, total):
                time.sleep(0.05)
                received = receiver.entries()
                if agent.poll() is not None:
                    raise RuntimeError(f"agent exited with {agent.returncode}")
                if time.monotonic() - started > 900:
                    raise RuntimeError(f"timed out with {received}/{total} lines")
            wall = time.monotonic() - started
            cpu = cpu_seconds(agent.pid) - cpu_before
            rss = peak_rss_bytes(agent.pid)
        finally:
            agent.send_signal(signal.SIGTERM)
            agent.wait(30)
    return {
        "format": fmt,
        "encoding": encoding,
        "lines": total,
        "containers": containers,
        "wall_seconds": round(wall, 3),
        "lines_per_second": round(total / wall),
        "cpu_seconds": round(cpu, 3),
        "cpu_seconds_per_million_lines": round(cpu / total * 1e6, 3),
        "lines_per_cpu_second": round(total / cpu) if cpu else None,
        "peak_rss_bytes": rss,
    }


def _settled(listen: str, total: int) -> bool:
    """Every line read and nothing held or unacknowledged (for runs with stages)."""
    try:
        with urllib.request.urlopen(f"http://{listen}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return False
    read = unacked = 0.0
    for line in text.splitlines():
        if line.startswith("nexo_agent_read_lines_total{"):
            read += float(line.rsplit(" ", 1)[1])
        elif line.startswith(("nexo_agent_in_flight_bytes", "nexo_agent_unacked_bytes{")):
            unacked += float(line.rsplit(" ", 1)[1])
    return read >= total and unacked == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--containers", type=int, default=20)
    parser.add_argument("--format", choices=[*FORMATS, CORPUS], default=CORPUS)
    parser.add_argument("--encoding", choices=["protobuf", "json"], default="protobuf")
    parser.add_argument("--output", type=Path, help="write the JSON result here")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="nexo-bench-"))
    try:
        result = run_once(args.lines, args.containers, args.format, workdir, encoding=args.encoding)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
