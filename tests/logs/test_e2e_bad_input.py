"""End to end: what a log file can throw at the agent besides well-formed lines.

Containers can print invalid UTF-8, binary junk and a 1 MiB line (Docker keeps its
records valid JSON, replacing invalid UTF-8 with U+FFFD); records that are not valid
json-file records at all can only come from someone else writing to the file, so the test
appends them itself. Static files can vanish, or turn into a directory. Through all of
it the good lines around the bad ones arrive exactly once and the agent stays healthy.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from tests.agent_process import (
    AgentProcess,
    Delivery,
    agent_config,
    log_path_of,
    numbered_lines,
    numbered_writer,
)
from tests.logs.test_e2e_delivery import e2e_config
from tests.loki_backend import LokiBackend, unique_host

CAP = 256 * 1024  # the default logs.pipeline.max_line_size


def docker_time() -> str:
    now = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now // 10**9)) + f".{now % 10**9:09d}Z"


def malformed_records() -> list[bytes]:
    """Lines of a json-file log that are no json-file record (each counted once)."""
    now = docker_time()
    return [
        b"this is not json at all",
        b'{"log":"missing stream and time\\n"}',
        b'{"log":"bad time\\n","stream":"stdout","time":"yesterday"}',
        b'{"log":"bad stream\\n","stream":"stdin","time":"%s"}' % now.encode(),
        b'{"log":42,"stream":"stdout","time":"%s"}' % now.encode(),
        b"[1,2,3]",
        b"\x00\x01\x02\xff\xfe binary junk",
        b'{"log":"record cut short","stre',
    ]


async def wait_for_lines(loki: LokiBackend, host: str, wanted: list[str]) -> None:
    """Until every line of ``wanted`` arrived (or 30 s passed)."""
    deadline = time.monotonic() + 30
    while True:
        got = {e.line for e in await loki.fetch({"host": host})}
        if all(line in got for line in wanted) or time.monotonic() > deadline:
            return
        await asyncio.sleep(0.1)


async def test_bad_records_are_counted_and_the_good_lines_around_them_arrive(
    tmp_path: Path, loki: LokiBackend, run_container: Any
) -> None:
    host = unique_host()
    prefix = f"e2e-bad-{uuid.uuid4().hex[:8]}-"
    control = tmp_path / "control"
    control.mkdir()
    script = "; ".join(
        [
            numbered_writer("good", 100, per_pause=1000),
            r"printf '\377\376 invalid utf8 seq=1\n'",
            "head -c 4096 /dev/urandom",  # binary junk, a few "lines" of it
            "echo",
            "printf 'huge seq=2 '; head -c 1048565 /dev/zero | tr '\\000' z; echo",
            # Hold on while the test appends records Docker never writes.
            "while [ ! -e /control/go ]; do busybox usleep 50000; done",
            numbered_writer("good", 100, start=100, per_pause=1000),
            "sleep 3600",
        ]
    )
    good = numbered_lines("good", 200)
    huge = ("huge seq=2 " + "z" * 1048565)[:CAP]
    utf8 = ["\ufffd\ufffd invalid utf8 seq=1", "appended \ufffd\ufffd invalid utf8 seq=3"]
    agent = AgentProcess(tmp_path, e2e_config(tmp_path, loki, host, prefix))
    agent.start()
    try:
        await agent.wait_healthy()
        writer = run_container(
            script, name=prefix + "writer", volumes={str(control): {"bind": "/control"}}
        )
        await wait_for_lines(loki, host, [*good[:100], utf8[0], huge])
        appended = [
            *malformed_records(),
            b'{"log":"appended \xff\xfe invalid utf8 seq=3\\n","stream":"stdout","time":"%s"}'
            % docker_time().encode(),
        ]
        fd = os.open(log_path_of(writer), os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, b"".join(record + b"\n" for record in appended))
        finally:
            os.close(fd)
        (control / "go").touch()
        await wait_for_lines(loki, host, [*good, utf8[1]])
        await asyncio.sleep(1.0)
        got = [e.line for e in await loki.fetch({"host": host})]
        metrics = await agent.metrics()
        await agent.wait_healthy()
    finally:
        agent.terminate()
    assert agent.proc is not None and agent.proc.returncode == 0, agent.stderr()
    known = set(good) | set(utf8) | {huge}
    delivery = Delivery.check((line for line in got if line in known), [*good, *utf8, huge])
    assert delivery.exactly_once, str(delivery)
    assert any(line not in known for line in got), "the binary junk did not arrive"
    assert metrics['nexo_agent_dropped_entries_total{reason="malformed_record"}'] == len(
        malformed_records()
    )
    assert metrics["nexo_agent_truncated_lines_total{}"] == 1
    assert not loki.receiver.reasons()


def static_config(tmp_path: Path, loki: LokiBackend, host: str, logs_dir: Path) -> Any:
    return agent_config(
        tmp_path,
        loki.push_url,
        host,
        logs={"docker": {"enabled": False}, "files": [{"paths": [str(logs_dir / "*.log")]}]},
    )


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as file:
        file.write(data)


async def test_junk_in_a_static_file_does_not_stop_the_good_lines(
    tmp_path: Path, loki: LokiBackend
) -> None:
    host = unique_host()
    logs_dir = tmp_path / "logs"
    logs_dir.mkdir()
    app_log = logs_dir / "app.log"
    good = numbered_lines("plain", 300)
    app_log.write_text("".join(line + "\n" for line in good[:100]))
    agent = AgentProcess(tmp_path, static_config(tmp_path, loki, host, logs_dir))
    agent.start()
    try:
        await agent.wait_healthy()
        append(app_log, b"\xff\xfe invalid utf8 plain\n\x00\x01\x02 nul and control\r\n")
        append(app_log, os.urandom(4096).replace(b"\n", b"") + b"\n")  # one binary line
        append(app_log, b"big plain " + b"b" * (1024 * 1024) + b"\n")  # 1 MiB line
        append(app_log, "".join(line + "\n" for line in good[100:]).encode())
        expected = [*good, "\ufffd\ufffd invalid utf8 plain", "\x00\x01\x02 nul and control"]
        expected.append(("big plain " + "b" * (1024 * 1024))[:CAP])
        await wait_for_lines(loki, host, expected)
        await asyncio.sleep(1.0)
        got = [e.line for e in await loki.fetch({"host": host})]
        truncated = await agent.metric("nexo_agent_truncated_lines_total")
        await agent.wait_healthy()
    finally:
        agent.terminate()
    known = set(expected)
    delivery = Delivery.check((line for line in got if line in known), expected)
    assert delivery.exactly_once, str(delivery)
    assert len(got) == len(expected) + 1  # plus the binary line, whatever it decoded to
    assert truncated == 1
    assert not loki.receiver.reasons()


async def test_static_file_that_vanishes_and_comes_back_is_followed_again(
    tmp_path: Path, loki: LokiBackend
) -> None:
    host = unique_host()
    logs_dir = tmp_path / "logs"
    logs_dir.mkdir()
    app_log = logs_dir / "app.log"
    first, second = numbered_lines("gone", 50), numbered_lines("back", 50)
    app_log.write_text("".join(line + "\n" for line in first))
    agent = AgentProcess(tmp_path, static_config(tmp_path, loki, host, logs_dir))
    agent.start()
    try:
        await agent.wait_healthy()
        await wait_for_lines(loki, host, first)
        app_log.unlink()
        await asyncio.sleep(3.0)  # longer than the follower's grace for a missing path
        app_log.write_text("".join(line + "\n" for line in second))
        await wait_for_lines(loki, host, second)
        got = [e.line for e in await loki.fetch({"host": host})]
        await agent.wait_healthy()
    finally:
        agent.terminate()
    assert agent.proc is not None and agent.proc.returncode == 0, agent.stderr()
    delivery = Delivery.check(got, [*first, *second])
    assert delivery.exactly_once, str(delivery)


async def test_static_file_replaced_by_a_directory_is_an_error_not_a_crash(
    tmp_path: Path, loki: LokiBackend
) -> None:
    host = unique_host()
    logs_dir = tmp_path / "logs"
    logs_dir.mkdir()
    app_log = logs_dir / "app.log"
    before, after = numbered_lines("file", 50), numbered_lines("again", 50)
    app_log.write_text("".join(line + "\n" for line in before))
    agent = AgentProcess(tmp_path, static_config(tmp_path, loki, host, logs_dir))
    agent.start()
    try:
        await agent.wait_healthy()
        await wait_for_lines(loki, host, before)
        app_log.unlink()
        app_log.mkdir()  # the path now names a directory
        errors = await agent.wait_for_metric(
            "nexo_agent_read_errors_total", 1, within=15, container=str(app_log)
        )
        await agent.wait_healthy()
        shutil.rmtree(app_log)
        app_log.write_text("".join(line + "\n" for line in after))
        await wait_for_lines(loki, host, after)
        got = [e.line for e in await loki.fetch({"host": host})]
    finally:
        agent.terminate()
    assert agent.proc is not None and agent.proc.returncode == 0, agent.stderr()
    assert errors >= 1
    delivery = Delivery.check(got, [*before, *after])
    assert delivery.exactly_once, str(delivery)
