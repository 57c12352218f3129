"""End to end: pipeline stages and per-container label rules, through real dockerd
containers into the Loki receiver (or a real Loki with ``NEXO_TEST_LOKI_URL``)."""

from __future__ import annotations

import asyncio
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.agent_process import AgentProcess
from tests.logs.test_e2e_delivery import e2e_config
from tests.loki_backend import LokiBackend, unique_host

NEST_ERROR = (
    "[Nest] 1  - 12/02/2026, 10:00:00 AM   ERROR [ExceptionsHandler] Cannot read id\n"
    "TypeError: Cannot read properties of undefined (reading 'id')\n"
    "    at OrdersService.find (/app/dist/orders/orders.service.js:42:17)\n"
    "    at OrdersController.get (/app/dist/orders/orders.controller.js:18:30)\n"
)


def shell_lines(text: str) -> str:
    """A busybox ``printf`` command printing ``text`` exactly."""
    escaped = text.replace("\\", "\\\\").replace("'", "'\"'\"'").replace("%", "%%")
    return f"printf '{escaped}'"


def metrics_text(agent: AgentProcess) -> str:
    with urllib.request.urlopen(f"{agent.base_url}/metrics", timeout=5) as response:
        return str(response.read().decode())


def staged_agent(
    tmp_path: Path, loki: LokiBackend, stages: list[dict[str, Any]] | None = None
) -> tuple[AgentProcess, str, str]:
    """An agent for this test's containers (prefix) and host label, with ``stages``."""
    host = unique_host()
    prefix = f"stages-{uuid.uuid4().hex[:8]}-"
    config = e2e_config(tmp_path, loki, host, prefix)
    if stages is not None:
        config["logs"]["pipeline"] = {"stages": stages}
    return AgentProcess(tmp_path, config), host, prefix


def six_stages() -> list[dict[str, Any]]:
    return [
        {"multiline": {"preset": "nestjs", "max_wait": "500ms"}},
        {"drop": {"source": "level", "value": "debug"}},
        {"redact": {"detectors": ["all"]}},
        {"timestamp": {"source": "time", "format": "UnixMs", "max_skew": "24h"}},
        {
            "metrics": {
                "metrics": {
                    "errors_total": {
                        "type": "counter",
                        "description": "Error entries by container.",
                        "labels": ["container"],
                        "source": "level",
                        "config": {"value": "error", "action": "inc"},
                    }
                }
            }
        },
    ]


async def test_stages_and_container_labels_shape_what_arrives(
    tmp_path: Path, loki: LokiBackend, run_container: Any
) -> None:
    host = unique_host()
    prefix = f"stages-{uuid.uuid4().hex[:8]}-"
    pino_ms = (time.time_ns() // 1_000_000) - 600_000  # ten minutes ago: the app's own time
    script = "; ".join(
        [
            shell_lines(NEST_ERROR),
            'for i in 1 2 3 4 5 6 7 8; do echo "GET /healthz 200 $i"; done',
            "echo 'login ok user=bob password=hunter2 mail=bob@example.com'",
            f'echo \'{{"level":30,"time":{pino_ms},"msg":"pino with its own time"}}\'',
            "echo 'level=debug msg=\"chatter\"'",
            "echo 'level=error msg=\"boom\"'",
            "sleep 3600",
        ]
    )
    config = e2e_config(tmp_path, loki, host, prefix)
    config["logs"]["pipeline"] = {"stages": six_stages()}
    agent = AgentProcess(tmp_path, config)
    agent.start()
    try:
        await agent.wait_healthy()
        run_container(
            script,
            name=prefix + "api",
            labels={"nexo.logs.drop": "GET /healthz", "nexo.logs.sample": "1"},
        )
        run_container(
            'for i in $(seq 1 40); do echo "sampled $i"; done; sleep 3600',
            name=prefix + "noisy",
            labels={"nexo.logs.sample": "10"},
        )
        got = await loki.wait_for({"host": host}, 4 + 4, within=60)
        await asyncio.sleep(1.5)  # anything extra would arrive now
        got = await loki.fetch({"host": host}, start_ns=(pino_ms - 60_000) * 1_000_000)
        metrics = metrics_text(agent)
    finally:
        agent.terminate()
    assert agent.proc is not None and agent.proc.returncode == 0, agent.stderr()

    api = [e for e in got if e.labels.get("container") == prefix + "api"]
    lines = [e.line for e in api]
    # multiline: the NestJS error and its stack are one entry
    assert NEST_ERROR.rstrip("\n") in lines, lines
    # label rule: health checks dropped; global drop: debug dropped
    assert not [x for x in lines if "healthz" in x or "chatter" in x], lines
    # redact: nothing secret left
    login = next(x for x in lines if x.startswith("login ok"))
    assert "hunter2" not in login and "bob@example.com" not in login, login
    # timestamp: the pino line carries the app's own time
    pino = next(e for e in api if "pino with its own time" in e.line)
    assert pino.ts_ns == pino_ms * 1_000_000
    # sample label: 1 in 10 of the noisy container
    noisy = [e.line for e in got if e.labels.get("container") == prefix + "noisy"]
    assert noisy == [f"sampled {i}" for i in (1, 11, 21, 31)]
    # metrics stage on /metrics, and the stage counters
    assert f'nexo_app_errors_total{{container="{prefix}api"}} 2.0' in metrics, metrics
    dropped = {
        (s.labels["stage"], s.labels["reason"]): s.value
        for family in text_string_to_metric_families(metrics)
        if family.name == "nexo_agent_stage_dropped_entries"
        for s in family.samples
    }
    # 8 health checks (the container's label) + 1 debug line (the configured stage)
    assert dropped == {("drop", "drop_stage"): 9.0, ("sample", "sampled"): 36.0}, dropped


async def test_an_invalid_label_is_warned_about_once_and_the_container_ships_unmodified(
    tmp_path: Path, loki: LokiBackend, run_container: Any
) -> None:
    agent, host, prefix = staged_agent(tmp_path, loki)
    agent.start()
    try:
        await agent.wait_healthy()
        run_container(
            'for i in $(seq 1 20); do echo "line $i"; done; sleep 3600',
            name=prefix + "odd",
            labels={"nexo.logs.sample": "often", "nexo.logs.drop": "line"},
        )
        got = await loki.wait_for({"host": host}, 20, within=60)
    finally:
        agent.terminate()
    assert [e.line for e in got] == [f"line {i}" for i in range(1, 21)]
    warnings = [x for x in agent.stderr().splitlines() if "nexo.logs.sample" in x]
    assert len(warnings) == 1 and prefix + "odd" in warnings[0], agent.stderr()


async def test_a_secret_split_across_a_16k_partial_is_masked_in_the_joined_line(
    tmp_path: Path, loki: LokiBackend, run_container: Any
) -> None:
    # Docker cuts at 16384 bytes: "password=hunter2secret" straddles the cut.
    pad = 16384 - len("start password=hunt") - 1
    agent, host, prefix = staged_agent(tmp_path, loki, [{"redact": {"detectors": ["secrets"]}}])
    agent.start()
    try:
        await agent.wait_healthy()
        run_container(
            f"printf 'x%.0s' $(seq 1 {pad}); echo ' start password=hunter2secret end'; sleep 3600",
            name=prefix + "long",
        )
        got = await loki.wait_for({"host": host}, 1, within=60)
        await asyncio.sleep(1.0)
        got = await loki.fetch({"host": host})
    finally:
        agent.terminate()
    assert len(got) == 1, [len(e.line) for e in got]
    assert "hunter2" not in got[0].line and "secret end" not in got[0].line
    assert got[0].line.startswith("x" * 100) and got[0].line.endswith(" end")


async def test_a_multiline_block_that_never_ends_is_cut_and_reading_goes_on(
    tmp_path: Path, loki: LokiBackend, run_container: Any
) -> None:
    agent, host, prefix = staged_agent(
        tmp_path, loki, [{"multiline": {"firstline": "^START", "max_lines": 50, "max_wait": "1s"}}]
    )
    agent.start()
    try:
        await agent.wait_healthy()
        run_container(
            'echo START; i=0; while [ $i -lt 500 ]; do echo "    at frame $i"; i=$((i+1)); done;'
            " echo START again; sleep 3600",
            name=prefix + "endless",
        )
        got = await loki.wait_for({"host": host}, 12, within=60)
    finally:
        agent.terminate()
    joined = "\n".join(e.line for e in got)
    assert joined.count("at frame") == 500  # nothing lost, nothing repeated
    assert all(e.line.count("\n") < 50 for e in got)
    assert got[-1].line == "START again"


async def test_a_lossless_limit_holds_reading_and_loses_nothing(
    tmp_path: Path, loki: LokiBackend, run_container: Any
) -> None:
    agent, host, prefix = staged_agent(
        tmp_path, loki, [{"limit": {"rate": 100, "burst": 20, "drop": False}}]
    )
    agent.start()
    try:
        await agent.wait_healthy()
        started = time.monotonic()
        run_container("seq 1 300; sleep 3600", name=prefix + "burst")
        got = await loki.wait_for({"host": host}, 300, within=60)
        took = time.monotonic() - started
    finally:
        agent.terminate()
    assert sorted(int(e.line) for e in got) == list(range(1, 301))
    assert took > 2.0  # 300 entries at 100/s after a burst of 20


async def test_extraction_stages_and_the_other_label_rules_end_to_end(
    tmp_path: Path, loki: LokiBackend, run_container: Any
) -> None:
    agent, host, prefix = staged_agent(
        tmp_path,
        loki,
        [
            {"json": {"expressions": {"route": "req.url", "status": "res.status", "msg": ""}}},
            {"regex": {"match": '{route=""}', "expression": "^(?P<verb>GET|POST) (?P<path>\\S+)"}},
            {"logfmt": {"mapping": {"tenant": ""}}},
            {"labels": {"values": {"status": "", "verb": ""}}},
            {"structured_metadata": {"values": {"route": "", "tenant": ""}}},
            {"static_labels": {"values": {"team": "payments"}}},
            {"label_drop": {"names": ["stream"]}},
            {"replace": {"expression": "card=(\\d+)", "replace": "****"}},
            {"output": {"match": '{route=~"/api/.*"}', "source": "msg"}},
        ],
    )
    agent.start()
    try:
        await agent.wait_healthy()
        json_line = (
            '{"level":"info","msg":"served","req":{"url":"/api/orders"},"res":{"status":201}}'
        )
        run_container(
            f"echo '{json_line}'; echo 'POST /login tenant=acme card=4111'; sleep 3600",
            name=prefix + "app",
        )
        # Labels from a container's own compose file: JSON only, Java-style joins, masking.
        run_container(
            "echo 'level=warn user=x password=hunter2'; echo 'Exception in main'; "
            "printf '\\tat a.B.c(B.java:1)\\n'; sleep 3600",
            name=prefix + "labelled",
            labels={
                "nexo.logs.format": "text",
                "nexo.logs.multiline": "java",
                "nexo.logs.redact": "secrets",
            },
        )
        got = await loki.wait_for({"host": host}, 4, within=60)
        await asyncio.sleep(1.5)
        got = await loki.fetch({"host": host})
    finally:
        agent.terminate()
    app = {e.line: e for e in got if e.labels.get("container") == prefix + "app"}
    assert set(app) == {"served", "POST /login tenant=acme card=****"}, list(app)
    served = app["served"]
    assert served.labels["status"] == "201" and served.labels["team"] == "payments"
    assert "stream" not in served.labels
    assert served.metadata["route"] == "/api/orders"
    login = app["POST /login tenant=acme card=****"]
    assert login.labels["verb"] == "POST" and login.metadata["tenant"] == "acme"
    labelled = [e for e in got if e.labels.get("container") == prefix + "labelled"]
    lines = sorted(e.line for e in labelled)
    assert lines == ["Exception in main\n\tat a.B.c(B.java:1)", "level=warn user=x password=***"]
    # nexo.logs.format=text: the level word only, no key=value fields or ids
    warn = next(e for e in labelled if e.line.startswith("level="))
    assert warn.labels["level"] == "warn" and "userId" not in warn.metadata
