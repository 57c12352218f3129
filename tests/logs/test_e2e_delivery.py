"""End to end: real dockerd, real containers, the real agent process, a Loki that checks.

Each test isolates its data with a unique ``host`` label and ships only its own
containers (an include filter on a unique name prefix). With ``NEXO_TEST_LOKI_URL`` set the
same tests push through the checking receiver to a real Loki and read back with
``query_range``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from tests.agent_process import AgentProcess, agent_config
from tests.loki_backend import LokiBackend, unique_host

# One iteration writes five lines in five formats on both streams.
MIXED_FORMATS = r"""
i=0
while [ $i -lt {n} ]; do
  echo "{{\"level\":30,\"time\":1,\"msg\":\"pino $i\",\"req\":{{\"id\":\"req-$i\"}},\"accountId\":\"acc-$((i%7))\"}}"
  echo "level=error msg=\"logfmt $i\" request_id=lf-$i user_id=u-$((i%5))" >&2
  printf '\033[32m[Nest] 42  - \033[39m11/26/2026, 4:19:03 PM \033[31m  ERROR\033[39m \033[33m[AuthService]\033[39m Login failed %s account=acc-%s\n' $i $((i%3))
  echo "{{\"level\":\"warn\",\"message\":\"winston $i\",\"userId\":\"w-$i\",\"traceId\":\"t-$i\"}}"
  echo "Upload request: seq=$i file=\"a.pdf\" size=12 user=up-$i"
  i=$((i+1))
done
sleep 3600
"""  # noqa: E501


def mixed_expected(n: int) -> Counter[str]:
    lines: Counter[str] = Counter()
    for i in range(n):
        pino = f'"msg":"pino {i}","req":{{"id":"req-{i}"}},"accountId":"acc-{i % 7}"'
        lines[f'{{"level":30,"time":1,{pino}}}'] += 1
        lines[f'level=error msg="logfmt {i}" request_id=lf-{i} user_id=u-{i % 5}'] += 1
        lines[
            "\x1b[32m[Nest] 42  - \x1b[39m11/26/2026, 4:19:03 PM \x1b[31m  ERROR\x1b[39m "
            f"\x1b[33m[AuthService]\x1b[39m Login failed {i} account=acc-{i % 3}"
        ] += 1
        lines[f'{{"level":"warn","message":"winston {i}","userId":"w-{i}","traceId":"t-{i}"}}'] += 1
        lines[f'Upload request: seq={i} file="a.pdf" size=12 user=up-{i}'] += 1
    return lines


def e2e_config(tmp_path: Path, loki: LokiBackend, host: str, prefix: str, **extra: Any) -> Any:
    overrides: dict[str, Any] = {"docker": {"include": {"names": [f"{prefix}*"]}}}
    for key, value in extra.items():
        overrides.setdefault(key, {}).update(value)
    return agent_config(tmp_path, loki.push_url, host, **overrides)


async def test_mixed_formats_arrive_exactly_once_with_labels_and_metadata(
    tmp_path: Path, loki: LokiBackend, run_container: Any
) -> None:
    host = unique_host()
    prefix = f"e2e-{uuid.uuid4().hex[:8]}-"
    n = 400
    # One container exists before the agent starts (initial listing), one starts after
    # (events stream).
    run_container(MIXED_FORMATS.format(n=n), name=prefix + "before")
    agent = AgentProcess(tmp_path, e2e_config(tmp_path, loki, host, prefix))
    agent.start()
    try:
        await agent.wait_healthy()
        await asyncio.sleep(0.5)
        run_container(MIXED_FORMATS.format(n=n), name=prefix + "after")
        expected_total = 2 * 5 * n
        got = await loki.wait_for({"host": host}, expected_total, within=60)
        await asyncio.sleep(1.0)  # anything extra (duplicates) would arrive now
        got = await loki.fetch({"host": host})
    finally:
        agent.terminate()
    assert agent.proc is not None and agent.proc.returncode == 0, agent.stderr()

    for name in ("before", "after"):
        entries = [e for e in got if e.labels.get("container") == prefix + name]
        assert Counter(e.line for e in entries) == mixed_expected(n), name

    by_line = {e.line: e for e in got if e.labels["container"] == prefix + "before"}
    pino = by_line['{"level":30,"time":1,"msg":"pino 3","req":{"id":"req-3"},"accountId":"acc-3"}']
    assert pino.labels["level"] == "info"
    assert pino.labels["stream"] == "stdout"
    assert pino.labels["host"] == host
    assert pino.labels["service_name"] == prefix + "before"
    assert pino.metadata["requestId"] == "req-3"
    assert pino.metadata["accountId"] == "acc-3"
    assert len(pino.metadata["container_id"]) == 64
    logfmt = by_line['level=error msg="logfmt 4" request_id=lf-4 user_id=u-4']
    assert logfmt.labels["level"] == "error" and logfmt.labels["stream"] == "stderr"
    assert logfmt.metadata["requestId"] == "lf-4" and logfmt.metadata["userId"] == "u-4"
    nest = next(e for e in by_line.values() if "Login failed 5 " in e.line)
    assert nest.labels["level"] == "error" and nest.metadata["accountId"] == "acc-2"
    winston = by_line['{"level":"warn","message":"winston 6","userId":"w-6","traceId":"t-6"}']
    assert winston.labels["level"] == "warn"
    assert winston.metadata["userId"] == "w-6" and winston.metadata["requestId"] == "t-6"
    free = by_line['Upload request: seq=7 file="a.pdf" size=12 user=up-7']
    assert free.metadata["userId"] == "up-7"
    # IDs are never labels, and no stream carries more than Loki's 15 labels.
    for entry in got:
        assert not {"accountId", "userId", "requestId", "container_id"} & set(entry.labels)
        assert len(entry.labels) <= 15
    # Timestamps are Docker's own, in file order per stream.
    stdout_ts = [e.ts_ns for e in got if e.labels["container"] == prefix + "before"]
    assert all(ts > 1_700_000_000 * 10**9 for ts in stdout_ts)
    assert not loki.receiver.reasons()  # Loki rejected nothing


async def test_initial_position_end_skips_history_only_of_containers_present_at_first_start(
    tmp_path: Path, loki: LokiBackend, run_container: Any
) -> None:
    host = unique_host()
    prefix = f"e2e-{uuid.uuid4().hex[:8]}-"
    # "after" is printed once the test says so (docker exec), not after a fixed sleep: a
    # slow start under load must not turn it into history.
    old = run_container(
        'echo "history before the agent"; while [ ! -e /tmp/go ]; do busybox usleep 50000; done;'
        ' echo "after the agent started"; sleep 3600',
        name=prefix + "old",
    )
    await asyncio.sleep(1.0)  # the history line is on disk before the first start
    config = e2e_config(tmp_path, loki, host, prefix)
    config["logs"]["docker"] = {"initial_position": "end"}
    agent = AgentProcess(tmp_path, config)
    agent.start()
    try:
        # Ready = discovery listed what exists at the first start; "new" comes after.
        await agent.wait_ready()
        done = await asyncio.to_thread(old.exec_run, ["busybox", "touch", "/tmp/go"])
        assert done.exit_code == 0, done.output
        run_container('echo "new container line"; sleep 3600', name=prefix + "new")
        got = await loki.wait_for({"host": host}, 2, within=30)
        await asyncio.sleep(1.0)
        got = await loki.fetch({"host": host})
    finally:
        agent.terminate()
    assert old.id
    lines = sorted(e.line for e in got)
    assert lines == ["after the agent started", "new container line"]
