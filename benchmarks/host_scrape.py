"""CPU time and latency per /metrics scrape: the agent's host metrics vs node_exporter.

Both run as separate processes on loopback in the same run and serve the same families:
node_exporter (Debian's ``prometheus-node-exporter``) is started with node_exporter
1.12's default filters and only the collectors the agent also has; the agent side is the
real ``MetricsServer`` (aiohttp, uvloop when installed) with the host collector and the
agent's ``process_*`` collector, started with ``--serve``. Each round scrapes one target
``--batch`` times back to back and reads the on-CPU time of the server's threads from
``/proc/<pid>/task/*/schedstat`` (nanoseconds; ``/proc/<pid>/stat``'s 10 ms clock ticks
made one round's figure a multiple of 0.4 ms) before and after;
rounds alternate between the two targets so load on the machine hits both alike. CPU
per scrape and latency are reported as medians over rounds, with the agent/node_exporter
ratio, and written as JSON.

    python -m benchmarks.host_scrape                    # 20 rounds x 25 scrapes each
    python -m benchmarks.host_scrape --rounds 5 --gzip  # quicker, with Accept-Encoding: gzip
    python -m benchmarks.host_scrape --tls              # TLS + basic auth on both

With ``--tls`` both servers read the same Prometheus web config file (a throwaway CA's
certificate for 127.0.0.1 and one bcrypt user) and the client scrapes over TLS with basic
auth, on a kept-alive connection as Prometheus does.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.config import HostMetricsConfig
from benchmarks.procstat import peak_rss_bytes, thread_cpu_seconds

NODE_EXPORTER = "prometheus-node-exporter"

# Debian's extra default collector, which upstream leaves off and the agent lacks.
NOT_IN_AGENT = ("systemd",)


def node_exporter_args(cfg: HostMetricsConfig, port: int, textfile_dir: str) -> list[str]:
    """Flags that make a node_exporter serve what the agent serves with ``cfg``.

    The filters come from the agent's config (node_exporter 1.12's defaults unless
    changed), because Debian's build patches its own defaults (it hides /run and lo).
    """
    return [
        f"--web.listen-address=127.0.0.1:{port}",
        f"--collector.textfile.directory={textfile_dir}",
        f"--collector.filesystem.mount-points-exclude={cfg.filesystem_mount_points_exclude}",
        f"--collector.filesystem.fs-types-exclude={cfg.filesystem_fs_types_exclude}",
        f"--collector.diskstats.device-exclude={cfg.diskstats_device_exclude}",
        f"--collector.netdev.device-exclude={cfg.netdev_device_exclude}",
        f"--collector.netclass.ignored-devices={cfg.netclass_ignored_devices}",
        *(f"--no-collector.{name}" for name in NOT_IN_AGENT),
    ]


@dataclass(frozen=True)
class Secured:
    """A web config file both servers read, and what a client needs to pass it."""

    web_config: Path
    ca_file: Path
    authorization: str

    @classmethod
    def create(cls, directory: Path) -> Secured:
        import bcrypt
        import trustme

        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1")
        ca.cert_pem.write_to_path(str(directory / "ca.pem"))
        cert.cert_chain_pems[0].write_to_path(str(directory / "server.crt"))
        cert.private_key_pem.write_to_path(str(directory / "server.key"))
        # bcrypt's default cost (12), as an operator would hash with htpasswd -B -C 12
        hashed = bcrypt.hashpw(b"bench-password", bcrypt.gensalt()).decode()
        web_config = directory / "web-config.yml"
        web_config.write_text(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
            f"basic_auth_users:\n  prometheus: '{hashed}'\n"
        )
        token = base64.b64encode(b"prometheus:bench-password").decode()
        return cls(web_config, directory / "ca.pem", f"Basic {token}")

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


def wait_ready(url: str, timeout: float = 15.0, secured: Secured | None = None) -> None:
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(url)
    context = None
    if secured is not None:
        request.add_header("Authorization", secured.authorization)
        context = secured.client_context()
    while True:
        try:
            with urllib.request.urlopen(request, timeout=2, context=context) as response:
                response.read()
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def families(url: str, secured: Secured | None = None) -> set[str]:
    """Host families (node_*, process_*) a target serves, once it is up."""
    wait_ready(url, secured=secured)
    request = urllib.request.Request(url)
    context = None
    if secured is not None:
        request.add_header("Authorization", secured.authorization)
        context = secured.client_context()
    with urllib.request.urlopen(request, timeout=10, context=context) as response:
        text = response.read().decode()
    return {
        line.split()[2]
        for line in text.splitlines()
        if line.startswith("# TYPE ") and line.split()[2].startswith(("node_", "process_"))
    }


def start_node_exporter(
    binary: str, port: int, textfile_dir: str, secured: Secured | None = None
) -> subprocess.Popen[bytes]:
    web = [f"--web.config.file={secured.web_config}"] if secured else []
    return subprocess.Popen(
        [binary, *node_exporter_args(HostMetricsConfig(), port, textfile_dir), *web],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def start_agent(
    port: int, textfile_dir: str, secured: Secured | None = None
) -> subprocess.Popen[bytes]:
    web = ["--web-config", str(secured.web_config)] if secured else []
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.host_scrape",
            "--serve",
            str(port),
            "--textfile-dir",
            textfile_dir,
            *web,
        ],
        cwd=Path(__file__).resolve().parent.parent,
    )


class Scraper:
    """A keep-alive HTTP/1.1 client, like Prometheus reusing its connection."""

    def __init__(self, port: int, gzip: bool, secured: Secured | None = None) -> None:
        conn = socket.create_connection(("127.0.0.1", port))
        if secured is not None:
            conn = secured.client_context().wrap_socket(conn, server_hostname="127.0.0.1")
        self._conn = conn
        encoding = "Accept-Encoding: gzip\r\n" if gzip else ""
        auth = f"Authorization: {secured.authorization}\r\n" if secured else ""
        self._request = (
            f"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{encoding}{auth}"
            "Accept: text/plain;version=0.0.4\r\n\r\n"
        ).encode()
        self._file = self._conn.makefile("rb")

    def scrape(self) -> int:
        self._conn.sendall(self._request)
        length = None
        chunked = False
        while True:
            line = self._file.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "transfer-encoding" and "chunked" in value:
                chunked = True
        if chunked:
            total = 0
            while True:
                size = int(self._file.readline().split(b";")[0], 16)
                if size == 0:
                    self._file.readline()
                    return total
                total += len(self._file.read(size))
                self._file.readline()
        assert length is not None
        return len(self._file.read(length))

    def close(self) -> None:
        self._file.close()
        self._conn.close()


def measure(
    pid: int, port: int, batch: int, gzip: bool, secured: Secured | None = None
) -> dict[str, float]:
    scraper = Scraper(port, gzip, secured)
    try:
        scraper.scrape()  # connection and first-scrape warm-up outside the window
        latencies = []
        cpu_before = thread_cpu_seconds(pid)
        size = 0
        for _ in range(batch):
            start = time.perf_counter()
            size = scraper.scrape()
            latencies.append(time.perf_counter() - start)
        cpu_after = thread_cpu_seconds(pid)
    finally:
        scraper.close()
    return {
        "cpu_ms_per_scrape": (cpu_after - cpu_before) * 1000 / batch,
        "latency_ms": statistics.median(latencies) * 1000,
        "bytes": size,
    }


def run(
    rounds: int = 20,
    batch: int = 25,
    gzip: bool = False,
    textfile_dir: str | None = None,
    secured: Secured | None = None,
) -> dict[str, Any]:
    """Both targets measured in the same run; medians over rounds and the ratios."""
    from benchmarks.agent_process import free_port
    from benchmarks.harness import MissingDependency

    binary = shutil.which(NODE_EXPORTER)
    if binary is None:
        raise MissingDependency(f"{NODE_EXPORTER} (run tests/setup/prepare.sh)")
    textfile = Path(textfile_dir or "/tmp/nexo-bench-textfile")
    textfile.mkdir(parents=True, exist_ok=True)
    (textfile / "bench.prom").write_text('# TYPE bench_info gauge\nbench_info{job="cron"} 1\n')
    ne_port, agent_port = free_port(), free_port()
    node_exporter = start_node_exporter(binary, ne_port, str(textfile), secured)
    agent = start_agent(agent_port, str(textfile), secured)
    scheme = "https" if secured else "http"
    try:
        ne_families = families(f"{scheme}://127.0.0.1:{ne_port}/metrics", secured)
        agent_families = families(f"{scheme}://127.0.0.1:{agent_port}/metrics", secured)
        results: dict[str, list[dict[str, float]]] = {"agent": [], "node_exporter": []}
        for _ in range(rounds):
            results["node_exporter"].append(
                measure(node_exporter.pid, ne_port, batch, gzip, secured)
            )
            results["agent"].append(measure(agent.pid, agent_port, batch, gzip, secured))
        peak_rss = {
            "agent": peak_rss_bytes(agent.pid),
            "node_exporter": peak_rss_bytes(node_exporter.pid),
        }
    finally:
        for process in (agent, node_exporter):
            process.send_signal(signal.SIGTERM)
        for process in (agent, node_exporter):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
    summary: dict[str, Any] = {
        "families": {
            "node_exporter_host": len(ne_families),
            "agent_host": len(agent_families),
            "node_exporter_host_not_in_agent": sorted(ne_families - agent_families),
        },
        "rounds": rounds,
        "scrapes_per_round": batch,
        "gzip": gzip,
        "tls_basic_auth": secured is not None,
    }
    for name, measured in results.items():
        summary[name] = {
            key: statistics.median(r[key] for r in measured)
            for key in ("cpu_ms_per_scrape", "latency_ms", "bytes")
        }
        # the agent here serves host metrics only: its memory as a node_exporter stand-in
        summary[name]["peak_rss_mib"] = round(peak_rss[name] / 2**20, 1)
    summary["cpu_ratio_agent_over_node_exporter"] = (
        summary["agent"]["cpu_ms_per_scrape"] / summary["node_exporter"]["cpu_ms_per_scrape"]
    )
    summary["latency_ratio_agent_over_node_exporter"] = (
        summary["agent"]["latency_ms"] / summary["node_exporter"]["latency_ms"]
    )
    return summary


def serve(port: int, textfile_dir: str, web_config: str | None = None) -> None:
    """The agent side: the real MetricsServer with the host and process collectors."""
    from prometheus_client import CollectorRegistry

    from agent.metrics.host import AgentProcessCollector, build_host_collector
    from agent.metrics.server import MetricsServer

    registry = CollectorRegistry()
    registry.register(
        build_host_collector(HostMetricsConfig(textfile_directory=Path(textfile_dir)))
    )
    registry.register(AgentProcessCollector())
    watcher = None
    if web_config:
        from agent.metrics.webconfig import WebConfigWatcher

        watcher = WebConfigWatcher(web_config)
    server = MetricsServer(registry, f"127.0.0.1:{port}", web_config=watcher)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await server.start()
        await stop.wait()
        await server.stop()

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--batch", type=int, default=25, help="scrapes per round")
    parser.add_argument("--gzip", action="store_true", help="send Accept-Encoding: gzip")
    parser.add_argument("--output", default="/tmp/nexo-bench-host_scrape.json")
    parser.add_argument("--textfile-dir")
    parser.add_argument("--tls", action="store_true", help="TLS + basic auth on both servers")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--web-config", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve, args.textfile_dir, args.web_config)
        return
    try:
        if args.tls:
            import tempfile

            with tempfile.TemporaryDirectory() as directory:
                secured = Secured.create(Path(directory))
                summary = run(args.rounds, args.batch, args.gzip, args.textfile_dir, secured)
        else:
            summary = run(args.rounds, args.batch, args.gzip, args.textfile_dir)
    except RuntimeError as exc:
        raise SystemExit(f"cannot run: {exc}") from exc
    for name in ("agent", "node_exporter"):
        r = summary[name]
        print(
            f"{name:14s} cpu {r['cpu_ms_per_scrape']:6.2f} ms/scrape"
            f"   latency {r['latency_ms']:6.2f} ms   body {int(r['bytes'])} B"
        )
    print(
        f"host families: node_exporter {summary['families']['node_exporter_host']}, "
        f"agent {summary['families']['agent_host']}, node_exporter's not served by the agent: "
        f"{summary['families']['node_exporter_host_not_in_agent']}"
    )
    print(f"cpu ratio agent/node_exporter: {summary['cpu_ratio_agent_over_node_exporter']:.2f}")
    latency_ratio = summary["latency_ratio_agent_over_node_exporter"]
    print(f"latency ratio agent/node_exporter: {latency_ratio:.2f}")
    Path(args.output).write_text(json.dumps(summary, indent=2) + "\n")
    print(f"written: {args.output}")


if __name__ == "__main__":
    main()
