"""Log pipeline throughput: pre-written json-file logs -> agent on one pinned core -> receiver.

Builds a fake Docker data root (``containers/<id>/config.v2.json``, ``hostconfig.json`` and
``<id>-json.log`` with Docker's exact record format), runs the real agent with socket-free
discovery pinned to one core (``taskset -c 0``), and a counting Loki receiver in another
process on another core. Reports lines/s, CPU seconds per million lines and peak RSS.

    python -m benchmarks.log_throughput --lines 1000000 --containers 20 [--format mixed]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

FORMATS = ("json", "logfmt", "nest", "text", "mixed")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def app_line(fmt: str, i: int) -> str:
    """One application line in the given format (``mixed`` cycles through the others)."""
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


def docker_record(line: str, ts_ns: int, stream: str) -> bytes:
    """A json-file record exactly as Docker writes it (trailing zeros of the fraction cut)."""
    seconds, nanos = divmod(ts_ns, 10**9)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{nanos:09d}".rstrip("0")
    time_str = f"{stamp}.{fraction}Z" if fraction else f"{stamp}Z"
    log = json.dumps(line + "\n", ensure_ascii=False)
    return f'{{"log":{log},"stream":"{stream}","time":"{time_str}"}}\n'.encode()


def build_data_root(root: Path, lines: int, containers: int, fmt: str) -> None:
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
                buf.append(docker_record(app_line(fmt, i), base_ns + i * 1000, stream))
                if len(buf) >= 10000:
                    out.write(b"".join(buf))
                    buf.clear()
            out.write(b"".join(buf))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


RECEIVER = r"""
import asyncio, sys, snappy
from aiohttp import web
from agent.logs.loki_encode import PushRequest
count = 0
async def push(request):
    global count
    body = await request.read()
    msg = PushRequest()
    msg.ParseFromString(snappy.uncompress(body))
    count += sum(len(s.entries) for s in msg.streams)
    return web.Response(status=204)
async def counted(request):
    return web.Response(text=str(count))
app = web.Application(client_max_size=64 * 1024 * 1024)
app.router.add_post("/loki/api/v1/push", push)
app.router.add_get("/count", counted)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


async def fetch_count(port: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /count HTTP/1.0\r\nHost: x\r\n\r\n")
    data = await reader.read()
    writer.close()
    return int(data.split(b"\r\n\r\n", 1)[1] or 0)


def pinned(cmd: list[str], core: int) -> list[str]:
    return ["taskset", "-c", str(core), *cmd] if shutil.which("taskset") else cmd


async def run_once(lines: int, containers: int, fmt: str, workdir: Path) -> dict[str, Any]:
    data_root = workdir / "docker"
    build_data_root(data_root, lines, containers, fmt)
    total = (lines // containers) * containers
    port = free_port()
    receiver = subprocess.Popen(  # noqa: ASYNC220 (started once, before measuring)
        pinned([sys.executable, "-c", RECEIVER, str(port)], 1 if os.cpu_count() != 1 else 0)
    )
    config = {
        "hostname": "bench",
        "log_level": "warning",
        "server": {"listen_address": f"127.0.0.1:{free_port()}"},
        "logs": {
            "positions_file": str(workdir / "positions.json"),
            "docker": {"discovery": "files", "data_root": str(data_root), "poll_interval": "1s"},
            "loki": {"url": f"http://127.0.0.1:{port}/loki/api/v1/push"},
            "pipeline": {"max_in_flight_bytes": "8MiB"},
        },
        "metrics": {"host": {"enabled": False}, "containers": {"enabled": False}},
    }
    config_path = workdir / "agent.yaml"
    config_path.write_text(yaml.safe_dump(config))
    try:
        for _ in range(100):
            try:
                await fetch_count(port)
                break
            except OSError:
                await asyncio.sleep(0.05)
        started = time.monotonic()
        profile = os.environ.get("NEXO_BENCH_PROFILE")
        runner = ["-m", "cProfile", "-o", profile] if profile else []
        agent = subprocess.Popen(  # noqa: ASYNC220
            pinned([sys.executable, *runner, "-m", "agent", "--config", str(config_path)], 0)
        )
        try:
            received = 0
            while received < total:
                await asyncio.sleep(0.05)
                received = await fetch_count(port)
                if agent.poll() is not None:
                    raise RuntimeError(f"agent exited with {agent.returncode}")
                if time.monotonic() - started > 900:
                    raise RuntimeError(f"timed out with {received}/{total} lines")
            wall = time.monotonic() - started
            cpu = proc_cpu_seconds(agent.pid)
            rss = proc_peak_rss(agent.pid)
        finally:
            agent.send_signal(signal.SIGTERM)
            agent.wait(30)
    finally:
        receiver.terminate()
        receiver.wait(10)
    return {
        "format": fmt,
        "lines": total,
        "containers": containers,
        "wall_seconds": round(wall, 3),
        "lines_per_second": round(total / wall),
        "cpu_seconds": round(cpu, 3),
        "cpu_seconds_per_million_lines": round(cpu / total * 1e6, 3),
        "lines_per_cpu_second": round(total / cpu) if cpu else None,
        "peak_rss_bytes": rss,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--containers", type=int, default=20)
    parser.add_argument("--format", choices=FORMATS, default="mixed")
    parser.add_argument("--output", type=Path, help="write the JSON result here")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="nexo-bench-"))
    try:
        result = asyncio.run(run_once(args.lines, args.containers, args.format, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
