"""What the running agent keeps in memory: only the libraries its config needs.

pydantic cost the agent 18 MiB of resident memory (issue 11). The agent's own config is
read with msgspec; only pipeline stages' options are pydantic models, so pydantic is loaded
when stages are configured and never otherwise. aiohttp (with aiodocker) cost 13 MiB; the
agent speaks HTTP through :mod:`agent.http` on h11 and never loads it. Checked on the real
process's memory map, after it has started every source, pushed and served a scrape.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from benchmarks.agent_process import AgentProcess, free_port


def _config(tmp_path: Path, stages: list[dict[str, Any]]) -> dict[str, Any]:
    (tmp_path / "docker" / "containers").mkdir(parents=True, exist_ok=True)
    (tmp_path / "app.log").write_text('{"level":"info","msg":"hello"}\n')
    return {
        "hostname": "footprint",
        "server": {"listen_address": f"127.0.0.1:{free_port()}"},
        "docker": {"discovery": "files", "data_root": str(tmp_path / "docker")},
        "logs": {
            "positions_file": str(tmp_path / "positions.json"),
            "files": [{"paths": [str(tmp_path / "app.log")]}],
            "loki": {"url": "http://127.0.0.1:9/loki/api/v1/push"},
            "pipeline": {"stages": stages},
        },
    }


@pytest.mark.parametrize(
    ("stages", "loads_pydantic"),
    [([], False), ([{"drop": {"expression": "healthz"}}], True)],
    ids=["no stages", "a drop stage"],
)
async def test_pydantic_is_loaded_only_for_pipeline_stages(
    tmp_path: Path, stages: list[dict[str, Any]], loads_pydantic: bool
) -> None:
    agent = AgentProcess(tmp_path, _config(tmp_path, stages))
    agent.start()
    try:
        await agent.wait_ready()
        assert await agent.metrics()  # a scrape served
        assert agent.proc is not None
        maps = await asyncio.to_thread(Path(f"/proc/{agent.proc.pid}/maps").read_text)
    finally:
        agent.close()
    assert ("pydantic_core" in maps) is loads_pydantic, agent.stderr()[-2000:]
    assert "aiohttp" not in maps and "multidict" not in maps and "yarl" not in maps
