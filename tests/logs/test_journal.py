"""The systemd journal as a source: real journal files, real journalctl, the real agent.

Journal files are written by systemd-journal-remote from export format; the agent follows
them with ``journalctl --directory`` as it would follow a host's mounted /var/log/journal.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

from agent.config import ConfigError, JournalConfig, load_config
from agent.logs.journal import PRIORITY_LEVELS, journalctl_command, message_text
from tests.agent_process import AgentProcess, Delivery, agent_config, saved_position
from tests.conftest import require_binary
from tests.logs.journal_files import unit_entry, write_journal
from tests.loki_backend import LokiBackend, unique_host


def test_command_resumes_after_the_cursor_else_follows_initial_position() -> None:
    cfg = JournalConfig(
        enabled=True, path=Path("/j"), units=["api.service"], matches=["PRIORITY=3"]
    )
    assert journalctl_command(cfg, "s=1;i=2") == [
        "journalctl", "--output=json", "--follow", "--all", "--no-pager", "--directory=/j",
        "--after-cursor=s=1;i=2", "--no-tail", "--unit=api.service", "PRIORITY=3",
    ]  # fmt: skip
    assert "--lines=0" in journalctl_command(cfg, None)
    beginning = msgspec.structs.replace(cfg, initial_position="beginning")
    assert "--no-tail" in journalctl_command(beginning, None)


@pytest.mark.parametrize(
    "journal, message",
    [
        ({"matches": ["priority=3"]}, "is not a journal match"),
        ({"units": [" "]}, "a unit name may not be empty"),
        ({"initial_position": "middle"}, "initial_position"),
        ({"stages": [{"nonsense": {}}]}, "unknown stage"),
    ],
)
def test_a_bad_journal_config_is_refused_naming_the_key(
    tmp_path: Path, journal: dict[str, Any], message: str
) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump({"logs": {"journal": {"enabled": True, **journal}}}))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.key.startswith("logs.journal") and message in str(caught.value)


def test_binary_messages_become_text_and_priorities_become_levels() -> None:
    assert message_text([104, 105, 255]) == "hi\ufffd"
    assert message_text("plain") == "plain"
    assert message_text(None) is None
    assert [PRIORITY_LEVELS[str(p)] for p in range(8)] == [
        "fatal", "fatal", "fatal", "error", "warn", "info", "info", "debug",
    ]  # fmt: skip


def journal_config(
    tmp_path: Path, loki: LokiBackend, host: str, directory: Path, **journal: Any
) -> dict[str, Any]:
    require_binary("journalctl")
    return agent_config(
        tmp_path,
        loki.push_url,
        host,
        logs={
            "docker": {"enabled": False},
            "journal": {
                "enabled": True,
                "path": str(directory),
                "initial_position": "beginning",
                **journal,
            },
        },
    )


async def test_journal_entries_arrive_with_unit_labels_levels_and_parsed_fields(
    tmp_path: Path, loki: LokiBackend
) -> None:
    host = unique_host("journal")
    directory = tmp_path / "journal"
    write_journal(
        directory / "system.journal",
        [
            unit_entry(
                "api.service", '{"level":"error","requestId":"r-42","msg":"payment failed"}'
            ),
            unit_entry("api.service", "listening on :8080", priority=5),
            unit_entry("api.service", "GET /healthz 200"),
            unit_entry("cron.service", "job done", priority=4, transport="syslog"),
            unit_entry("api.service", b"binary \xff\xfe tail", priority=3),
            {
                "_TRANSPORT": "kernel",
                "PRIORITY": "2",
                "SYSLOG_IDENTIFIER": "kernel",
                "MESSAGE": "oops",
            },
        ],
    )
    drop_health = [{"drop": {"expression": "healthz"}}]
    agent = AgentProcess(
        tmp_path, journal_config(tmp_path, loki, host, directory, stages=drop_health)
    )
    agent.start()
    try:
        got = await loki.wait_for({"host": host}, 5, within=30)
        await asyncio.sleep(1.0)
        got = await loki.fetch({"host": host})
    finally:
        agent.terminate()
    by_line = {e.line: e for e in got}
    assert len(got) == 5 and "GET /healthz 200" not in by_line
    payment = by_line['{"level":"error","requestId":"r-42","msg":"payment failed"}']
    assert payment.labels["unit"] == "api.service"
    assert payment.labels["syslog_identifier"] == "api"
    assert payment.labels["service_name"] == "api"
    assert payment.labels["transport"] == "stdout"
    assert payment.labels["level"] == "error"  # the message's own level (PRIORITY was 6)
    assert payment.metadata.get("requestId") == "r-42"
    assert by_line["listening on :8080"].labels["level"] == "info"  # notice
    cron = by_line["job done"]
    assert (cron.labels["level"], cron.labels["transport"]) == ("warn", "syslog")
    assert by_line["binary \ufffd\ufffd tail"].labels["level"] == "error"
    kernel = by_line["oops"]
    assert kernel.labels["level"] == "fatal" and "unit" not in kernel.labels
    assert kernel.labels["host"] == host


async def test_units_and_matches_select_entries(tmp_path: Path, loki: LokiBackend) -> None:
    host = unique_host("journal")
    directory = tmp_path / "journal"
    write_journal(
        directory / "system.journal",
        [
            unit_entry("api.service", "api info"),
            unit_entry("api.service", "api error", priority=3),
            unit_entry("cron.service", "cron error", priority=3),
        ],
    )
    cfg = journal_config(
        tmp_path, loki, host, directory, units=["api.service"], matches=["PRIORITY=3"]
    )
    agent = AgentProcess(tmp_path, cfg)
    agent.start()
    try:
        await loki.wait_for({"host": host}, 1, within=30)
        await asyncio.sleep(1.5)
        lines = [e.line for e in await loki.fetch({"host": host})]
        await wait_for_sample(agent, 'nexo_agent_dependency_up{dependency="journal"}', 1.0)
    finally:
        agent.terminate()
    assert lines == ["api error"]


async def test_follows_appends_and_rotation_then_resumes_on_the_cursor_exactly_once(
    tmp_path: Path, loki: LokiBackend
) -> None:
    host = unique_host("journal")
    directory = tmp_path / "journal"
    tag = uuid.uuid4().hex[:6]
    expected = [f"{tag} line {i:04d}" for i in range(400)]
    write_journal(
        directory / "system.journal", [unit_entry("api.service", m) for m in expected[:100]]
    )
    cfg = journal_config(tmp_path, loki, host, directory)
    agent = AgentProcess(tmp_path, cfg)
    agent.start()
    try:
        await loki.wait_for({"host": host}, 100, within=30)
        # Appended to the open file, then a new file (journald's rotation).
        write_journal(
            directory / "system.journal", [unit_entry("api.service", m) for m in expected[100:200]]
        )
        write_journal(
            directory / "system@0001.journal",
            [unit_entry("api.service", m) for m in expected[200:300]],
        )
        await loki.wait_for({"host": host}, 300, within=30)
        await asyncio.sleep(1.5)  # positions saved after the acknowledgement
    finally:
        assert agent.terminate() == 0
    saved = saved_position(tmp_path / "positions.json", f"journal:{directory}")
    assert saved["cursor"].startswith("s=")
    # Written while the agent is down: the next start resumes after the saved cursor.
    write_journal(
        directory / "system@0001.journal", [unit_entry("api.service", m) for m in expected[300:]]
    )
    agent = AgentProcess(tmp_path, cfg, name="agent-2")
    agent.start()
    try:
        await loki.wait_for({"host": host}, 400, within=30)
        await asyncio.sleep(1.5)
        delivery = Delivery.check((e.line for e in await loki.fetch({"host": host})), expected)
    finally:
        agent.terminate()
    assert delivery.exactly_once, str(delivery)


async def test_a_corrupted_journal_file_is_skipped_with_a_warning_and_the_rest_read(
    tmp_path: Path, loki: LokiBackend
) -> None:
    host = unique_host("journal")
    directory = tmp_path / "journal"
    write_journal(
        directory / "system.journal", [unit_entry("api.service", f"good {i}") for i in range(20)]
    )
    (directory / "user-1000.journal").write_bytes(b"LPKSHHRH" + bytes(range(256)) * 64)
    agent = AgentProcess(tmp_path, journal_config(tmp_path, loki, host, directory))
    agent.start()
    try:
        got = await loki.wait_for({"host": host}, 20, within=30)
    finally:
        agent.terminate()
    assert sorted(e.line for e in got) == sorted(f"good {i}" for i in range(20))
    assert "user-1000.journal" in agent.stderr() and "journalctl:" in agent.stderr()


async def test_a_missing_journal_directory_is_said_and_picked_up_once_it_appears(
    tmp_path: Path, loki: LokiBackend
) -> None:
    host = unique_host("journal")
    directory = tmp_path / "not-mounted-yet"
    agent = AgentProcess(tmp_path, journal_config(tmp_path, loki, host, directory))
    agent.start()
    try:
        await agent.wait_healthy()
        key = 'nexo_agent_dependency_up{dependency="journal"}'
        await wait_for_sample(agent, key, 0.0)
        write_journal(directory / "system.journal", [unit_entry("api.service", "finally")])
        got = await loki.wait_for({"host": host}, 1, within=40)
        assert [e.line for e in got] == ["finally"]
        await wait_for_sample(agent, key, 1.0)
    finally:
        agent.terminate()
    assert "journalctl exited" in agent.stderr()


async def wait_for_sample(agent: AgentProcess, key: str, value: float, within: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while (await agent.metrics()).get(key) != value:
        assert asyncio.get_running_loop().time() < deadline, f"{key} never {value}"
        await asyncio.sleep(0.2)


async def test_loki_outage_and_kill_9_lose_nothing(tmp_path: Path, loki: LokiBackend) -> None:
    """During an outage journalctl waits on its pipe; after kill -9 the agent resumes at the
    last acknowledged cursor: at-least-once, never a gap."""
    host = unique_host("journal")
    directory = tmp_path / "journal"
    tag = uuid.uuid4().hex[:6]
    expected = [f"{tag} entry {i:04d}" for i in range(600)]
    write_journal(
        directory / "system.journal", [unit_entry("api.service", m) for m in expected[:200]]
    )
    cfg = journal_config(tmp_path, loki, host, directory)
    agent = AgentProcess(tmp_path, cfg)
    agent.start()
    try:
        await loki.wait_for({"host": host}, 200, within=30)
        loki.receiver.fail_for(3.0, status=503)
        write_journal(
            directory / "system.journal", [unit_entry("api.service", m) for m in expected[200:400]]
        )
        await loki.wait_for({"host": host}, 400, within=40)
        await asyncio.sleep(1.5)  # the cursor of the 400th is saved
        agent.kill()
        write_journal(
            directory / "system.journal", [unit_entry("api.service", m) for m in expected[400:]]
        )
    finally:
        agent.close()
    agent = AgentProcess(tmp_path, cfg, name="agent-2")
    agent.start()
    try:
        await loki.wait_for({"host": host}, 600, within=30)
        await asyncio.sleep(1.0)
        delivery = Delivery.check((e.line for e in await loki.fetch({"host": host})), expected)
    finally:
        agent.terminate()
    assert delivery.lost == 0, str(delivery)
    assert delivery.duplicates <= 20, str(delivery)
