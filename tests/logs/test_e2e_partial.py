"""End to end: lines longer than Docker's 16 KiB copier buffer, and lines without an end.

Docker writes a long line as 16 KiB partial records (no ``\\n`` in ``log``) plus a final
one, and stdout and stderr chunks interleave in the same file; a process that exits in
the middle of a line leaves a partial record that nothing will ever complete. The agent
must put each line back together byte for byte, cut it at ``max_line_size`` when asked,
and ship an unfinished last line once its writer is gone.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from tests.agent_process import AgentProcess, Delivery
from tests.logs.test_e2e_delivery import e2e_config
from tests.loki_backend import LokiBackend, unique_host

_UNIT = "0123456789abcdefghijklmnopqrstuvwxyz"


def long_line(tag: str, seq: int, size: int) -> str:
    """What :func:`print_long_line` prints: a recognisable prefix, then filler, ``size`` bytes."""
    text = f"{tag} seq={seq} {_UNIT}"
    while len(text) < size:
        text += text
    return text[:size]


def print_long_line(tag: str, seq: int, size: int, stream: str = "") -> str:
    """busybox awk printing :func:`long_line` (doubling, so even 200 KB is instant)."""
    redirect = " >&2" if stream == "stderr" else ""
    return (
        f'awk -v u="{tag} seq={seq} {_UNIT}" -v n={size}'
        " 'BEGIN { s = u; while (length(s) < n) s = s s; print substr(s, 1, n) }'"
        f"{redirect}"
    )


async def ship(
    tmp_path: Path,
    loki: LokiBackend,
    run_container: Any,
    script: str,
    expected_count: int,
    **pipeline: Any,
) -> tuple[list[Any], dict[str, float]]:
    """Run the agent and one container; the entries once ``expected_count`` arrived."""
    host = unique_host()
    prefix = f"e2e-part-{uuid.uuid4().hex[:8]}-"
    agent = AgentProcess(
        tmp_path, e2e_config(tmp_path, loki, host, prefix, logs={"pipeline": pipeline})
    )
    agent.start()
    try:
        await agent.wait_healthy()
        run_container(script, name=prefix + "writer")
        await loki.wait_for({"host": host}, expected_count, within=30)
        await asyncio.sleep(1.0)  # duplicates or stray fragments would arrive now
        entries = await loki.fetch({"host": host})
        metrics = await agent.metrics()
    finally:
        agent.terminate()
    return entries, metrics


async def test_long_lines_on_both_streams_arrive_whole_and_byte_identical(
    tmp_path: Path, loki: LokiBackend, run_container: Any
) -> None:
    stdout_sizes = [16_384, 16_385, 40_000, 102_400, 200_000]
    stderr_sizes = [40_000, 102_400]
    # Short numbered lines between the long ones; stderr written concurrently, so its
    # 16 KiB chunks interleave with stdout's in the file.
    out = "; ".join(
        f'echo "short seq={i}"; {print_long_line("out", i, size)}'
        for i, size in enumerate(stdout_sizes)
    )
    err = "; ".join(
        print_long_line("err", i, size, "stderr") for i, size in enumerate(stderr_sizes)
    )
    script = f"( {out} ) & ( {err} ) & wait; echo 'short seq=end'; sleep 3600"
    expected = [f"short seq={i}" for i in range(len(stdout_sizes))] + ["short seq=end"]
    expected += [long_line("out", i, size) for i, size in enumerate(stdout_sizes)]
    expected += [long_line("err", i, size) for i, size in enumerate(stderr_sizes)]

    entries, metrics = await ship(tmp_path, loki, run_container, script, len(expected))

    delivery = Delivery.check((e.line for e in entries), expected)
    assert delivery.exactly_once, str(delivery)
    streams = {e.line[:3]: e.labels["stream"] for e in entries if e.line[:3] in ("out", "err")}
    assert streams == {"out": "stdout", "err": "stderr"}
    assert metrics["nexo_agent_truncated_lines_total{}"] == 0


async def test_line_over_max_line_size_arrives_cut_to_the_cap_and_counted(
    tmp_path: Path, loki: LokiBackend, run_container: Any
) -> None:
    cap = 64 * 1024
    script = "; ".join(
        [
            'echo "short seq=0"',
            print_long_line("capped", 1, cap),  # exactly at the cap: untouched
            print_long_line("capped", 2, 100 * 1024),  # over: cut to the cap
            'echo "short seq=3"',
            "sleep 3600",
        ]
    )
    expected = ["short seq=0", long_line("capped", 1, cap), long_line("capped", 2, cap)]
    expected.append("short seq=3")

    entries, metrics = await ship(
        tmp_path, loki, run_container, script, len(expected), max_line_size="64KiB"
    )

    delivery = Delivery.check((e.line for e in entries), expected)
    assert delivery.exactly_once, str(delivery)
    assert metrics["nexo_agent_truncated_lines_total{}"] == 1


async def test_unterminated_last_line_of_an_exited_container_arrives(
    tmp_path: Path, loki: LokiBackend, run_container: Any
) -> None:
    # A partial flush timeout far beyond the wait: only the container's death can
    # finish the line in time.
    script = "echo 'before seq=0'; printf 'unterminated seq=1 no newline at exit'"
    expected = ["before seq=0", "unterminated seq=1 no newline at exit"]

    entries, metrics = await ship(
        tmp_path, loki, run_container, script, len(expected), partial_flush_timeout="60s"
    )

    delivery = Delivery.check((e.line for e in entries), expected)
    assert delivery.exactly_once, str(delivery)
    assert metrics['nexo_agent_dropped_entries_total{reason="malformed_record"}'] == 0


async def test_long_lines_straddling_a_compressed_rotation_arrive_as_one_entry_each(
    tmp_path: Path, loki: LokiBackend, run_container: Any
) -> None:
    """max-size=40k, max-file=2, compress: most 20-58 KiB lines begin in one file and end in
    the next (which Docker then gzips); each must still arrive once, whole."""
    sizes = [20_000 + (i * 7_919) % 38_000 for i in range(24)]
    script = "; ".join(
        f"{print_long_line('straddle', i, size)}; busybox usleep 150000"
        for i, size in enumerate(sizes)
    )
    host = unique_host()
    prefix = f"e2e-straddle-{uuid.uuid4().hex[:8]}-"
    agent = AgentProcess(tmp_path, e2e_config(tmp_path, loki, host, prefix))
    agent.start()
    try:
        await agent.wait_healthy()
        run_container(
            script,
            name=prefix + "writer",
            log_config={
                "type": "json-file",
                "config": {"max-size": "40k", "max-file": "2", "compress": "true"},
            },
        )
        await loki.wait_for({"host": host}, len(sizes), within=60)
        await asyncio.sleep(1.5)  # halves of split lines would arrive now
        entries = await loki.fetch({"host": host})
        metrics = await agent.metrics()
    finally:
        agent.terminate()
    expected = [long_line("straddle", i, size) for i, size in enumerate(sizes)]
    delivery = Delivery.check((e.line for e in entries), expected)
    assert delivery.exactly_once, str(delivery)
    assert metrics.get('nexo_agent_dropped_entries_total{reason="rotated_away"}', 0) == 0
