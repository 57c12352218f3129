"""``nexo-agent doctor``: check, one line each, what a user would otherwise debug by hand.

Every check runs against the real thing the agent would use (the config file, the Docker
socket, the files under Docker's data root, Loki, the positions directory, the host
mounts) and reports ``ok`` or ``FAIL`` with the fix. Exit status 1 when anything failed,
so it can gate a deployment script.
"""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from agent.config import AgentConfig, ConfigError, load_config

_API_TIMEOUT = 5.0
PUSH_PATH = "/loki/api/v1/push"


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the report."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


class _DockerFacts:
    """What the Docker checks learn once and share."""

    def __init__(self) -> None:
        self.root: Path | None = None
        self.containers: list[dict[str, Any]] = []
        self.reachable = False


def run_doctor(config_path: str | None, push_test: bool, out: TextIO = sys.stdout) -> int:
    """Print the report; 0 when every check passed, 1 otherwise (config broken: 1 too)."""
    checks: list[Check] = []
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        _print(out, Check("config", False, str(exc), "correct the key named above"))
        return 1
    notes = config.deprecations
    detail = f"{config_path or 'built-in defaults'} is valid"
    fix = ""
    if notes:
        detail += f" ({len(notes)} deprecated key{'s' if len(notes) > 1 else ''})"
        fix = "\n".join(notes)
    checks.append(Check("config", True, detail, fix))
    _print(out, checks[0])
    facts = _DockerFacts()
    steps: list[Callable[[], Check | None]] = [
        lambda: _check_docker(config, facts),
        lambda: _check_data_root(config, facts),
        lambda: _check_one_log_file(config, facts),
        lambda: _check_loki_ready(config),
        lambda: _check_loki_push(config) if push_test else None,
        lambda: _check_positions(config),
        lambda: _check_journal(config),
        *[(lambda key=key: _check_host_path(config, key)) for key in _HOST_PATHS],
        lambda: _check_cgroupfs(config),
    ]
    for step in steps:
        check = step()
        if check is not None:
            checks.append(check)
            _print(out, check)
    failed = sum(not c.ok for c in checks)
    out.write(f"\n{len(checks) - failed} ok, {failed} FAIL\n")
    return 1 if failed else 0


def _print(out: TextIO, check: Check) -> None:
    out.write(f"{'ok' if check.ok else 'FAIL':<5} {check.name:<14} {check.detail}\n")
    label = "fix:" if not check.ok else "note:"
    for line in check.fix.split("\n") if check.fix else ():
        out.write(f"{'':<20} {label} {line}\n")
    out.flush()


# -- Docker ------------------------------------------------------------------------------


def _wants_docker(config: AgentConfig) -> bool:
    return (config.logs.enabled and config.logs.docker.enabled) or config.metrics.containers.enabled


def _check_docker(config: AgentConfig, facts: _DockerFacts) -> Check | None:
    if not _wants_docker(config):
        return None
    docker = config.docker
    if docker.discovery == "files":
        return Check("docker", True, "discovery: files (no socket needed)")
    from agent.logs.discovery.docker_api import docker_problem

    try:
        version, info, facts.containers = asyncio.run(_docker_facts(docker.host))
    except Exception as exc:
        reason, fix = docker_problem(docker.host, exc)
        return Check("docker", False, reason, fix)
    facts.reachable = True
    root = info.get("DockerRootDir")
    facts.root = Path(root) if root else None
    return Check(
        "docker",
        True,
        f"{docker.host}: Docker {version.get('Version', '?')}, API {version.get('ApiVersion', '?')}"
        f", {len(facts.containers)} containers, data root {root}, "
        f"default log driver {info.get('LoggingDriver', '?')}",
    )


async def _docker_facts(host: str) -> tuple[Mapping[str, Any], Mapping[str, Any], list[Any]]:
    """The daemon's version, info and every container's inspect data (one removed meanwhile
    is left out)."""
    from agent.logs.discovery.docker_api import connect

    async with connect(host, _API_TIMEOUT) as client:
        version = await client.version()
        info = await client.info()
        inspected = [await client.inspect(str(c.get("Id"))) for c in await client.containers()]
    return version, info, [data for data in inspected if data is not None]


def _check_data_root(config: AgentConfig, facts: _DockerFacts) -> Check | None:
    if not _wants_docker(config) or not (config.logs.enabled and config.logs.docker.enabled):
        return None
    docker = config.docker
    if docker.discovery == "api" and not facts.reachable:
        return None  # said above; without Docker there is no data root to compare
    seen = docker.data_root or facts.root or docker.files_root
    containers = seen / "containers"
    mount_fix = (
        f"mount Docker's data root ({facts.root or '/var/lib/docker'}) into the agent "
        f"read-only and set docker.data_root to where it is mounted"
    )
    try:
        present = set(os.listdir(containers))
    except FileNotFoundError:
        return Check("data_root", False, f"{containers} does not exist", mount_fix)
    except PermissionError:
        return Check(
            "data_root",
            False,
            f"permission denied listing {containers}",
            "the agent needs read and search (x) access to it: run as root, or grant it "
            f"(setfacl -R -m u:$AGENT_USER:rX {containers})",
        )
    except OSError as exc:
        return Check("data_root", False, f"cannot list {containers}: {exc.strerror}", mount_fix)
    if docker.discovery == "api":
        ids = {str(c.get("Id")) for c in facts.containers}
        if ids and not ids & present:
            return Check(
                "data_root",
                False,
                f"{containers} holds none of Docker's {len(ids)} containers: it is not the "
                f"data root of this Docker ({facts.root})",
                mount_fix,
            )
        mapped = f" (Docker's {facts.root})" if docker.data_root else ""
        return Check("data_root", True, f"{seen}{mapped} readable, {len(present)} containers")
    return Check("data_root", True, f"{seen} readable, {len(present)} container directories")


def _check_one_log_file(config: AgentConfig, facts: _DockerFacts) -> Check | None:
    if not (config.logs.enabled and config.logs.docker.enabled) or not facts.reachable:
        return None
    from agent.logs.access import check_log_file
    from agent.logs.discovery.inventory import container_from_inspect
    from agent.logs.discovery.targets import log_target_for

    for data in facts.containers:
        info = container_from_inspect(data, config.docker.data_root, facts.root)
        target = log_target_for(info, config.logs.pipeline, config.hostname)
        if target is None or not target.started:
            continue
        problem = check_log_file(target, config.docker.data_root)
        if problem is not None:
            return Check("log_file", False, f"{info.name}: {problem.reason}", problem.fix)
        return Check("log_file", True, f"{info.name}: {target.path} readable")
    return Check("log_file", True, "no started container with a json-file log to try")


# -- Loki --------------------------------------------------------------------------------


def _loki_base(url: str) -> str:
    return url[: -len(PUSH_PATH)] if url.endswith(PUSH_PATH) else url.rsplit("/", 1)[0]


def _auth_headers(config: AgentConfig) -> dict[str, str]:
    loki = config.logs.loki
    headers = dict(loki.headers)
    if loki.tenant_id:
        headers["X-Scope-OrgID"] = loki.tenant_id
    token = loki.bearer_token
    if loki.bearer_token_file:
        token = loki.bearer_token_file.read_text(encoding="utf-8").strip()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    elif loki.basic_auth is not None:
        auth = loki.basic_auth
        password = auth.password
        if auth.password_file:
            password = auth.password_file.read_text(encoding="utf-8").strip()
        pair = base64.b64encode(f"{auth.username}:{password}".encode()).decode("ascii")
        headers["Authorization"] = f"Basic {pair}"
    return headers


def _check_loki_ready(config: AgentConfig) -> Check | None:
    if not config.logs.enabled:
        return None
    from agent.logs.loki import build_ssl_context

    loki = config.logs.loki
    path_fix = ""
    if not loki.url.endswith(PUSH_PATH):
        path_fix = f"logs.loki.url usually ends with {PUSH_PATH}"
    ready = _loki_base(loki.url) + "/ready"
    context: ssl.SSLContext | None = (
        build_ssl_context(loki.tls) if loki.url.startswith("https:") else None
    )
    try:
        request = urllib.request.Request(ready, headers=_auth_headers(config))
        with urllib.request.urlopen(request, timeout=_API_TIMEOUT, context=context) as resp:
            body = resp.read(200).decode("utf-8", "replace").strip()
            return Check("loki", True, f"{ready}: {resp.status} {body}", path_fix)
    except urllib.error.HTTPError as exc:
        body = exc.read(200).decode("utf-8", "replace").strip()
        fix = path_fix or "Loki answers but is not ready: see its own logs (it may be starting)"
        return Check("loki", False, f"{ready}: HTTP {exc.code} {body}", fix)
    except (OSError, ValueError) as exc:
        return Check(
            "loki",
            False,
            f"{ready}: {getattr(exc, 'reason', exc)}",
            "check logs.loki.url and that Loki runs and is reachable from here",
        )


def _check_loki_push(config: AgentConfig) -> Check:
    """One real push through the agent's own client (encoding, TLS, auth, tenant)."""
    import msgspec
    from prometheus_client import CollectorRegistry

    from agent.config import BackoffConfig, Duration
    from agent.logs.loki import LokiPushClient
    from agent.logs.model import PushBatch, PushEntry, StreamLabels
    from agent.metrics.self import AgentMetrics

    # A short, bounded retry: doctor must answer in seconds, not back off for minutes.
    quick = BackoffConfig(min_period=Duration(0.1), max_period=Duration(0.2), max_retries=1)
    loki = msgspec.structs.replace(config.logs.loki, backoff=quick)
    labels = StreamLabels.of({"host": config.hostname, "job": "nexo-agent-doctor"})
    batch = PushBatch()
    batch.add(labels, PushEntry(time.time_ns(), "nexo-agent doctor: test push"))

    async def push() -> Any:
        client = LokiPushClient(loki, AgentMetrics(CollectorRegistry()))
        await client.start()
        try:
            return await client.send(batch)
        finally:
            await client.close()

    result = asyncio.run(push())
    if result.delivered:
        return Check("loki_push", True, f"test line accepted (HTTP {result.status})")
    fix = "see the agent's logs.loki settings"
    if result.status in (401, 403):
        fix = "check logs.loki.basic_auth, bearer_token(_file) and tenant_id"
    elif result.status == 404:
        fix = f"the push path is {PUSH_PATH}: logs.loki.url must end with it"
    problem = f"HTTP {result.status}" if result.status else "no answer"
    return Check("loki_push", False, f"test push to {loki.url} failed: {problem}", fix)


# -- local files -------------------------------------------------------------------------


def _check_positions(config: AgentConfig) -> Check | None:
    if not config.logs.enabled:
        return None
    path = config.logs.positions_file
    fix = (
        "give the agent a writable directory for logs.positions_file (a volume when it runs "
        "in a container)"
    )
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".nexo-doctor-"):
            pass
        if path.exists() and not os.access(path, os.R_OK | os.W_OK):
            return Check("positions", False, f"{path} exists but is not readable and writable", fix)
    except OSError as exc:
        return Check("positions", False, f"cannot write in {path.parent}: {exc.strerror}", fix)
    state = "exists" if path.exists() else "will be created"
    return Check("positions", True, f"{path} writable ({state})")


# procfs/sysfs/rootfs key -> a file node_exporter's default collectors cannot do without.
_HOST_PATHS = {"procfs": "stat", "sysfs": "class", "rootfs": "etc"}


def _check_journal(config: AgentConfig) -> Check | None:
    """With ``logs.journal`` on: journalctl runs and reads the journal the agent would."""
    journal = config.logs.journal
    if not (config.logs.enabled and journal.enabled):
        return None
    command = [journal.journalctl, "--output=json", "--lines=1", "--no-pager", "--quiet"]
    where = "this machine's journal"
    if journal.path is not None:
        command.append(f"--directory={journal.path}")
        where = str(journal.path)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=15)
    except FileNotFoundError:
        fix = "install journalctl (Debian: systemd) or set logs.journal.journalctl to its path"
        return Check("journal", False, f"{journal.journalctl} not found", fix)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("journal", False, f"journalctl failed: {exc}")
    if done.returncode != 0:
        reason = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        fix = (
            "mount the host's journal (-v /var/log/journal:/host/journal:ro) and set "
            "logs.journal.path to it, or fix its permissions"
        )
        return Check("journal", False, f"journalctl cannot read {where}: {reason[0]}", fix)
    state = "has entries" if done.stdout.strip() else "is empty so far"
    return Check("journal", True, f"journalctl reads {where}; it {state}")


def _check_host_path(config: AgentConfig, key: str) -> Check | None:
    host = config.metrics.host
    if not host.enabled:
        return None
    base: Path = getattr(host, key)
    probe = base / _HOST_PATHS[key]
    mount = {"procfs": "/proc", "sysfs": "/sys", "rootfs": "/"}[key]
    fix = (
        f"set metrics.host.{key} to where the host's {mount} is mounted "
        f"(e.g. -v {mount}:/host{mount if mount != '/' else ''}:ro)"
    )
    if not probe.exists():
        return Check(key, False, f"{probe} does not exist", fix)
    if not os.access(probe, os.R_OK):
        return Check(key, False, f"{probe} is not readable", fix)
    return Check(key, True, f"{base} readable")


def _check_cgroupfs(config: AgentConfig) -> Check | None:
    containers = config.metrics.containers
    if not containers.enabled:
        return None
    root = containers.cgroupfs
    if (root / "cgroup.controllers").exists():
        return Check("cgroupfs", True, f"{root}: cgroup v2")
    if (root / "memory").is_dir() or (root / "cpu,cpuacct").is_dir():
        return Check("cgroupfs", True, f"{root}: cgroup v1")
    return Check(
        "cgroupfs",
        False,
        f"no cgroup filesystem under {root}",
        "mount the host's /sys/fs/cgroup read-only and set metrics.containers.cgroupfs",
    )
