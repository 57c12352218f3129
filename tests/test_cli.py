"""The command line as an operator meets it: real process, real files, real exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import yaml

from agent import __version__
from agent.config import ConfigError, expand_env, load_config, parse_duration, parse_size

REPO = Path(__file__).resolve().parent.parent


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=REPO,
    )


def test_version_prints_the_package_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"nexo-agent {__version__}"


def test_check_config_prints_the_effective_default_config() -> None:
    result = run_cli("--config", "configs/agent.yaml", "--check-config")
    assert result.returncode == 0, result.stderr
    effective = yaml.safe_load(result.stdout)
    assert effective["logs"]["loki"]["batch_size"] == 1024 * 1024
    assert effective["logs"]["pipeline"]["max_line_size"] == 256 * 1024
    assert effective["logs"]["loki"]["backoff"]["max_period"] == 300.0
    assert effective["logs"]["pipeline"]["read_interval"] == 1.0
    assert effective["hostname"]  # filled in from the machine when left empty


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("logs:\n  lokki: {}\n", "logs.lokki", "did you mean 'loki'"),
        ("logs:\n  loki:\n    batch_sise: 1MiB\n", "logs.loki.batch_sise", "'batch_size'"),
        ("logs:\n  loki:\n    batch_wait: soon\n", "logs.loki.batch_wait", "not a duration"),
        ("logs:\n  pipeline:\n    max_line_size: huge\n", "logs.pipeline.max_line_size", "size"),
        ("logs:\n  pipeline:\n    read_interval: 0s\n", "logs.pipeline.read_interval", "than 0"),
        ("logs:\n  pipeline:\n    read_interval: 2m\n", "logs.pipeline.read_interval", "60"),
        ("logs:\n  loki:\n    encoding: xml\n", "logs.loki.encoding", "protobuf"),
        ("logs:\n  files:\n    - paths: 3\n", "logs.files[0].paths", "array"),
        (
            "logs:\n  loki:\n    backoff: {max_retries: -1}\n",
            "logs.loki.backoff.max_retries",
            ">= 0",
        ),
        ("docker:\n  include: {namez: [a]}\n", "docker.include.namez", "'names'"),
        ("logs:\n  loki:\n    tenant_id: 123\n", "logs.loki.tenant_id", "quote it"),
        ("logs:\n  loki:\n    headers: {3: x}\n", "logs.loki.headers", "a key is not text"),
        ("metrics:\n  host:\n    collectors: {cpu: maybe}\n", "collectors[...]", "bool"),
        ("logs: [1, 2\n", "", "invalid YAML"),
        ("- just\n- a list\n", "", "mapping"),
    ],
)
def test_broken_config_names_file_key_and_reason_and_exits_2(
    tmp_path: Path, text: str, key: str, reason: str
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    result = run_cli("--config", str(path), "--check-config")
    assert result.returncode == 2
    assert str(path) in result.stderr
    assert key in result.stderr
    assert reason in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    result = run_cli("--config", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert "cannot read config" in result.stderr


def test_env_expansion_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "env.yaml"
    path.write_text(
        "hostname: ${NEXO_T_HOST}\n"
        "logs:\n  loki:\n    url: ${NEXO_T_URL:-http://127.0.0.1:9/x}\n"
        "    tenant_id: ${NEXO_T_UNSET}\n"
    )
    config = load_config(path, environ={"NEXO_T_HOST": "web-1"})
    assert config.hostname == "web-1"
    assert config.logs.loki.url == "http://127.0.0.1:9/x"
    assert config.logs.loki.tenant_id == ""
    assert expand_env("${A:-x}-${A}", {"A": ""}) == "x-"


def test_quoted_numbers_and_booleans_are_taken_as_such(tmp_path: Path) -> None:
    path = tmp_path / "quoted.yaml"
    path.write_text("logs:\n  enabled: 'false'\n  loki:\n    backoff: {max_retries: '3'}\n")
    config = load_config(path)
    assert config.logs.enabled is False and config.logs.loki.backoff.max_retries == 3


def test_auth_options_are_mutually_exclusive(tmp_path: Path) -> None:
    path = tmp_path / "auth.yaml"
    path.write_text(
        "logs:\n  loki:\n    bearer_token: t\n    basic_auth: {username: u, password: p}\n"
    )
    with pytest.raises(ConfigError, match="not both"):
        load_config(path)


@pytest.mark.parametrize(
    ("value", "seconds"), [("500ms", 0.5), ("5s", 5.0), ("1m", 60.0), ("2h", 7200.0), (3, 3.0)]
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    ("value", "size"), [("256KiB", 262144), ("1MiB", 1048576), ("4MB", 4194304), (10, 10)]
)
def test_sizes_are_binary_like_lokis(value: object, size: int) -> None:
    assert parse_size(value) == size


def test_dry_run_prints_one_json_object_per_entry(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text('{"level":"error","requestId":"r-1","msg":"boom"}\nplain line user=u-9\n')
    config = {
        "hostname": "dry",
        "server": {"listen_address": "127.0.0.1:0"},
        "logs": {
            "positions_file": str(tmp_path / "positions.json"),
            "docker": {"enabled": False},
            "files": [{"paths": [str(tmp_path / "*.log")], "labels": {"job": "app"}}],
            "loki": {"batch_wait": "100ms"},
        },
        "metrics": {"host": {"enabled": False}, "containers": {"enabled": False}},
    }
    path = tmp_path / "dry.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "--config", str(path), "--dry-run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )
    assert proc.stdout is not None
    lines = [proc.stdout.readline(), proc.stdout.readline()]
    proc.terminate()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    first, second = (orjson.loads(line) for line in lines)
    assert first["line"] == '{"level":"error","requestId":"r-1","msg":"boom"}'
    assert first["labels"]["job"] == "app" and first["labels"]["level"] == "error"
    assert first["labels"]["host"] == "dry"
    assert first["metadata"] == {"requestId": "r-1"}
    assert isinstance(first["ts_ns"], str) and int(first["ts_ns"]) > 0
    assert second["metadata"] == {"userId": "u-9"}
    # A dry run never moves positions: the next real run still ships these lines.
    assert not (tmp_path / "positions.json").exists()
    # The agent's own logs are JSON on stderr.
    for raw in err.decode().splitlines():
        assert orjson.loads(raw)["logger"].startswith("agent")


def test_empty_hostname_in_a_container_comes_from_the_hosts_rootfs(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/hostname").write_text("web-7\n")
    path = tmp_path / "c.yaml"
    path.write_text(f"hostname: ''\nmetrics:\n  host:\n    rootfs: {tmp_path}\n")
    assert load_config(path).hostname == "web-7"


def test_the_agent_raises_its_open_file_limit_to_the_hard_limit() -> None:
    """Held cgroup files and tailed logs need more than the usual soft 1024."""
    code = (
        "import resource\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))\n"
        "from agent.app import raise_open_file_limit\n"
        "raise_open_file_limit()\n"
        "print(resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_a_broken_stage_is_named_by_its_index_type_and_option(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "logs:\n  pipeline:\n    stages:\n"
        '      - drop: {expression: "GET /healthz"}\n'
        '      - drop: {expression: "("}\n'
    )
    out = subprocess.run(
        [sys.executable, "-m", "agent", "--check-config", "--config", str(path)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert "logs.pipeline.stages[1].drop: expression: invalid regular expression" in out.stderr


def test_an_empty_value_inside_stages_keeps_its_meaning(tmp_path: Path) -> None:
    """Elsewhere ``key:`` means the default; in a stage it means "the same name"."""
    path = tmp_path / "stages.yaml"
    path.write_text(
        "logs:\n  pipeline:\n    stages:\n"
        "      - json: {expressions: {level: , user: ctx.user}}\n"
        "      - labels: {values: {level: }}\n"
    )
    config = load_config(path)
    assert config.logs.pipeline.stages[1] == {"labels": {"values": {"level": None}}}
