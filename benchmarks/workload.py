"""The reference load: real containers under the real dockerd, logging mixed formats at a rate.

Each container runs a busybox ``sh`` loop that prints one line per iteration in the
format its index gives it (pino JSON, winston JSON, logfmt, NestJS text with and without
ANSI colours, free text with ``key=value`` pairs: the formats the parser recognises), every
tenth line at error level on stderr, with a sleep every ten lines. Every line carries
``seq=<n>`` (``"seq":n`` in JSON), numbered from 0 per container, so the receiver can
tell exactly what was lost or duplicated. Containers use ``--network none``.
"""

from __future__ import annotations

import shlex
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.harness import BUSYBOX_IMAGE, CONTAINER_PREFIX, remove_containers_named

ESC = "\x1b"
# (normal line on stdout, error line on stderr); "{i}" is the sequence number.
FORMATS: dict[str, tuple[str, str]] = {
    "pino": (
        '{"level":30,"time":1764174000000,"pid":1,"hostname":"api","req":{"id":"req-{i}"},'
        '"accountId":"acc-7","seq":{i},"msg":"request completed"}',
        '{"level":50,"time":1764174000000,"pid":1,"hostname":"api","req":{"id":"req-{i}"},'
        '"accountId":"acc-7","seq":{i},"msg":"request failed","err":{"type":"Error"}}',
    ),
    "winston": (
        '{"level":"info","message":"order placed","timestamp":"2026-11-26T16:19:03.120Z",'
        '"userId":"u-42","requestId":"r-{i}","seq":{i}}',
        '{"level":"error","message":"payment declined","timestamp":"2026-11-26T16:19:03.120Z",'
        '"userId":"u-42","requestId":"r-{i}","seq":{i}}',
    ),
    "logfmt": (
        'level=info ts=2026-11-26T16:19:03Z msg="cache refreshed" request_id=r-{i} seq={i}'
        " duration_ms=12",
        'level=error ts=2026-11-26T16:19:03Z msg="cache refresh failed" request_id=r-{i}'
        " seq={i} err=timeout",
    ),
    "nest": (
        "[Nest] 42  - 11/26/2026, 4:19:03 PM     LOG [AuthService] Login ok account=acc-7 seq={i}",
        "[Nest] 42  - 11/26/2026, 4:19:03 PM   ERROR [AuthService] Login failed account=acc-7"
        " seq={i}",
    ),
    "nest_ansi": (
        f"{ESC}[32m[Nest] 42  - {ESC}[39m11/26/2026, 4:19:03 PM {ESC}[32m    LOG{ESC}[39m "
        f"{ESC}[33m[RouterExplorer]{ESC}[39m {ESC}[32mMapped route seq={{i}}{ESC}[39m",
        f"{ESC}[31m[Nest] 42  - {ESC}[39m11/26/2026, 4:19:03 PM {ESC}[31m  ERROR{ESC}[39m "
        f"{ESC}[33m[ExceptionsHandler]{ESC}[39m {ESC}[31mboom seq={{i}}{ESC}[39m",
    ),
    "text": (
        'Upload request: file="report-{i}.pdf" size=52311 account=acc-7 seq={i}',
        'Upload failed: file="report-{i}.pdf" reason="disk full" account=acc-7 seq={i}',
    ),
}
FORMAT_NAMES = tuple(FORMATS)


def _sh_echo(template: str) -> str:
    """``echo`` of ``template`` with ``{i}`` replaced by ``$i`` and everything else literal."""
    return "echo " + '"$i"'.join(shlex.quote(part) for part in template.split("{i}"))


def writer_script(fmt: str, lines_per_second: float, burst: int = 10) -> str:
    """A busybox ``sh`` loop printing ``fmt`` lines at about ``lines_per_second``."""
    normal, error = FORMATS[fmt]
    # about 1 ms per burst goes to the loop itself and the usleep fork
    pause_us = max(0, int(burst / lines_per_second * 1e6) - 1000)
    return (
        "i=0; while true; do"
        f" if [ $((i % {burst})) -eq 0 ]; then {_sh_echo(error)} >&2;"
        f" busybox usleep {pause_us}; else {_sh_echo(normal)}; fi;"
        " i=$((i+1)); done"
    )


@contextmanager
def logging_containers(
    client: Any, count: int, total_lines_per_second: float
) -> Iterator[list[Any]]:
    """``count`` containers sharing ``total_lines_per_second``; removed on exit."""
    run_id = uuid.uuid4().hex[:6]
    rate = total_lines_per_second / count
    started: list[Any] = []

    def start(i: int) -> Any:
        fmt = FORMAT_NAMES[i % len(FORMAT_NAMES)]
        return client.containers.run(
            BUSYBOX_IMAGE,
            ["sh", "-c", writer_script(fmt, rate)],
            name=f"{CONTAINER_PREFIX}{run_id}-{i}-{fmt}",
            detach=True,
            network_mode="none",
            labels={"com.docker.compose.project": "bench", "com.docker.compose.service": fmt},
        )

    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            for container in pool.map(start, range(count)):
                started.append(container)
        for container in started:
            container.reload()
        yield started
    finally:
        remove_containers_named(client, f"{CONTAINER_PREFIX}{run_id}-")


def stop_writers(containers: list[Any]) -> None:
    """Kill the writers (their json-file logs stay until the containers are removed)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda c: c.kill(), containers))


class WrittenLines:
    """Counts the records dockerd has written to each container's json-file log, incrementally.

    Reads only what was appended since the last call, so polling it every second stays
    cheap however long the run (the benchmark's own reads must not compete with the agent).
    """

    def __init__(self, containers: list[Any]) -> None:
        self._paths = {c.name: Path(c.attrs["LogPath"]) for c in containers}
        self._offsets = dict.fromkeys(self._paths, 0)
        self._counts = dict.fromkeys(self._paths, 0)

    def per_container(self) -> dict[str, int]:
        for name, path in self._paths.items():
            try:
                with path.open("rb") as file:
                    file.seek(self._offsets[name])
                    chunk = file.read()
            except FileNotFoundError:
                continue
            complete = chunk.rfind(b"\n") + 1
            self._counts[name] += chunk.count(b"\n", 0, complete)
            self._offsets[name] += complete
        return dict(self._counts)

    def total(self) -> int:
        return sum(self.per_container().values())


def wait_for(condition: Any, timeout: float, interval: float = 0.5) -> bool:
    """Poll ``condition()`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True
