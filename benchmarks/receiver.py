"""A counting Loki push endpoint in its own process, so its CPU is never charged to the agent.

It decodes every push (snappy block + logproto protobuf, or JSON), counts entries, and with
``--track-seq`` remembers which ``seq=<n>`` of which container arrived, so a scenario can
prove that nothing was lost and count duplicates. A control port (always up) answers

- ``GET /stats``: counts as JSON;
- ``POST /fault/<mode>``: ``none``, ``500``, ``429`` (answered before decoding, nothing
  stored, as Loki does when it refuses) or ``refuse`` (the push listener and every open
  keep-alive connection are closed: the agent sees connection refused until ``none``).

    python -m benchmarks.receiver --port P --control-port C [--track-seq]

:class:`ReceiverProcess` starts and drives it from a scenario.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gzip
import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

PUSH_PATH = "/loki/api/v1/push"
# "seq=12" (logfmt, text, Nest) and '"seq":12' (JSON) in the reference workload's lines.
_SEQ = re.compile(r'seq"?[=:](\d+)')
_CONTAINER = re.compile(r'container="([^"]*)"')


def _streams(body: bytes, content_type: str) -> list[tuple[str, list[str]]]:
    """(labels, lines) of each stream of a push: protobuf+snappy (nexo-agent, Promtail) or
    JSON, gzip'ed or not (nexo-agent's json encoding, Fluent Bit's loki output)."""
    if body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    if content_type == "application/json":
        document = json.loads(body)
        return [
            (
                "{" + ", ".join(f'{k}="{v}"' for k, v in stream.get("stream", {}).items()) + "}",
                [value[1] for value in stream.get("values", [])],
            )
            for stream in document.get("streams", [])
        ]
    import snappy

    from agent.logs.loki_encode import PushRequest

    message = PushRequest()
    message.ParseFromString(snappy.uncompress(body))
    return [(s.labels, [e.line for e in s.entries]) for s in message.streams]


def serve(port: int, control_port: int, track_seq: bool) -> None:
    from aiohttp import web

    entries = requests = body_bytes = 0
    statuses: collections.Counter[str] = collections.Counter()
    seen: dict[str, set[int]] = collections.defaultdict(set)
    duplicates = 0
    fault = "none"
    first_ok: float | None = None
    last_ok: float | None = None

    async def push(request: web.Request) -> web.Response:
        nonlocal entries, requests, body_bytes, duplicates, first_ok, last_ok
        body = await request.read()
        requests += 1
        if fault in ("500", "429"):
            statuses[fault] += 1
            text = "Ingestion rate limit exceeded" if fault == "429" else "internal error"
            return web.Response(status=int(fault), text=text)
        for labels, lines in _streams(body, request.content_type):
            entries += len(lines)
            if track_seq:
                match = _CONTAINER.search(labels)
                got = seen[match.group(1) if match else ""]
                for line in lines:
                    seq = _SEQ.search(line)
                    if seq is None:
                        continue
                    n = int(seq.group(1))
                    if n in got:
                        duplicates += 1
                    else:
                        got.add(n)
        body_bytes += len(body)
        statuses["204"] += 1
        now = time.time()
        first_ok = first_ok or now
        last_ok = now
        return web.Response(status=204)

    push_app = web.Application(client_max_size=64 * 1024 * 1024)
    push_app.router.add_post(PUSH_PATH, push)
    push_runner: web.AppRunner | None = None

    async def open_push() -> None:
        nonlocal push_runner
        push_runner = web.AppRunner(push_app, access_log=None)
        await push_runner.setup()
        await web.TCPSite(push_runner, "127.0.0.1", port, reuse_address=True).start()

    async def stats(request: web.Request) -> web.Response:
        containers = {
            name: {
                "distinct": len(got),
                "max_seq": max(got, default=-1),
                # the first seq not received: every line below it arrived
                "complete_below": next(i for i in range(len(got) + 1) if i not in got),
            }
            for name, got in seen.items()
        }
        return web.json_response(
            {
                "entries": entries,
                "requests": requests,
                "body_bytes": body_bytes,
                "statuses": dict(statuses),
                "duplicates": duplicates,
                "fault": fault,
                "first_ok": first_ok,
                "last_ok": last_ok,
                "containers": containers,
            }
        )

    async def set_fault(request: web.Request) -> web.Response:
        nonlocal fault, push_runner
        mode = request.match_info["mode"]
        if mode not in ("none", "500", "429", "refuse"):
            return web.Response(status=400, text=f"unknown fault {mode}")
        if mode == "refuse" and push_runner is not None:
            await push_runner.cleanup()  # closes the listener and open connections
            push_runner = None
        elif mode != "refuse" and push_runner is None:
            await open_push()
        fault = mode
        return web.Response(text=mode)

    async def main() -> None:
        control = web.Application()
        control.router.add_get("/stats", stats)
        control.router.add_post("/fault/{mode}", set_fault)
        runner = web.AppRunner(control, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", control_port).start()
        await open_push()
        await asyncio.Event().wait()

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())


class ReceiverProcess:
    """The receiver as a child process (optionally pinned to one core with ``taskset``)."""

    def __init__(self, *, track_seq: bool = False, core: int | None = None) -> None:
        from benchmarks.agent_process import free_port
        from benchmarks.harness import pinned

        self.port = free_port()
        self.control_port = free_port()
        cmd = [
            sys.executable,
            "-m",
            "benchmarks.receiver",
            "--port",
            str(self.port),
            "--control-port",
            str(self.control_port),
        ]
        if track_seq:
            cmd.append("--track-seq")
        self.proc = subprocess.Popen(
            pinned(cmd, core) if core is not None else cmd,
            cwd=Path(__file__).resolve().parent.parent,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                self.stats()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError("the benchmark Loki receiver did not start") from None
                time.sleep(0.05)

    @property
    def push_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PUSH_PATH}"

    def _control(self, path: str, method: str = "GET") -> bytes:
        url = f"http://127.0.0.1:{self.control_port}{path}"
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=30) as r:
            body: bytes = r.read()
            return body

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self._control("/stats"))
        return result

    def entries(self) -> int:
        return int(self.stats()["entries"])

    def fault(self, mode: str) -> None:
        """``none``, ``500``, ``429`` or ``refuse`` (connection refused)."""
        self._control(f"/fault/{mode}", "POST")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> ReceiverProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--control-port", type=int, required=True)
    parser.add_argument("--track-seq", action="store_true")
    args = parser.parse_args()
    serve(args.port, args.control_port, args.track_seq)


if __name__ == "__main__":
    main()
