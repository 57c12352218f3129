"""Typed agent configuration: loaded once, validated once, with file/key-precise errors.

The YAML file may reference the environment as ``${VAR}`` or ``${VAR:-default}``; expansion
happens on the raw text before parsing, so a variable can stand anywhere a scalar can.
An unknown key is an error that names the closest valid key, because a typo in an agent
config otherwise silently falls back to a default and ships (or drops) the wrong data.

The sections are msgspec structs: msgspec validates in C and costs about 1 MiB, where
pydantic cost the agent 18 MiB of its resident memory for a file read once (issue 11).
Pipeline stages keep their pydantic models; they are imported only when stages are set.
"""

from __future__ import annotations

import difflib
import os
import re
import socket
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import Meta, Struct, field

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(Exception):
    """A config problem, already phrased for the operator: file, key and reason."""

    def __init__(self, file: str, key: str, reason: str) -> None:
        self.file, self.key, self.reason = file, key, reason
        super().__init__(f"{file}: {key}: {reason}" if key else f"{file}: {reason}")


def parse_duration(value: Any) -> float:
    """``500ms``, ``5s``, ``1m``, ``2h``, ``7d`` or a bare number of seconds -> seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        match = _DURATION_RE.match(value)
        if match:
            return float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    raise ValueError(f"not a duration: {value!r} (use e.g. 500ms, 5s, 1m, 2h)")


def parse_size(value: Any) -> int:
    """``256KiB``, ``1MiB``, ``4MB`` (binary, like Loki's datasize) or a bare byte count."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        match = _SIZE_RE.match(value)
        if match:
            unit = (match.group(2) or "").lower().rstrip("b").rstrip("i")
            return int(float(match.group(1)) * _SIZE_UNITS[unit])
    raise ValueError(f"not a size: {value!r} (use e.g. 256KiB, 1MiB)")


class Duration(float):
    """Seconds, written in the file as ``500ms``, ``5s``, ``1m`` or a number (see
    :func:`parse_duration`); never negative."""


class ByteSize(int):
    """Bytes, written in the file as ``256KiB``, ``1MiB`` or a number (see
    :func:`parse_size`); never negative."""


class FieldError(ValueError):
    """A section's own check failed on one of its keys: the error names that key."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"`{key}`: {reason}")


def _decode(kind: type, value: Any) -> Any:
    """What msgspec cannot read on its own: durations, sizes and paths."""
    if kind is Duration:
        seconds = parse_duration(value)
        if seconds < 0:
            raise ValueError(f"not a duration: {value!r} (a duration is never negative)")
        return Duration(seconds)
    if kind is ByteSize:
        size = parse_size(value)
        if size < 0:
            raise ValueError(f"not a size: {value!r} (a size is never negative)")
        return ByteSize(size)
    if kind is Path:
        if not isinstance(value, str):
            raise ValueError(f"not a path: {value!r}")
        return Path(value)
    raise NotImplementedError


def _encode(value: Any) -> Any:
    """Durations, sizes and paths as the plain numbers and text ``--check-config`` prints."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, int):
        return int(value)
    raise NotImplementedError


class _Section(Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A config section: unknown keys are errors, and a loaded config never changes."""


class ContainerFilter(_Section, frozen=True):
    """Glob patterns (fnmatch) on container name and image; labels as ``key`` or ``key=value``."""

    names: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)


DEFAULT_DOCKER_ROOT = Path("/var/lib/docker")


# What the Docker client connects to (agent/logs/discovery/docker_client.py).
DOCKER_HOST_SCHEMES = ("unix://", "tcp://", "http://", "https://")


class DockerConfig(_Section, frozen=True):
    """Where Docker is and which containers count: shared by log shipping and container
    metrics, so both always agree on the same set of containers."""

    # ``api``: Docker Engine API (list + events + resync). ``files``: socket-free, reads
    # <data_root>/containers/*/config.v2.json for hardened hosts without the socket.
    discovery: Literal["api", "files"] = "api"
    host: str = "unix:///var/run/docker.sock"
    # Docker's data root *as the agent sees it*. Unset: wherever Docker says it is
    # (``DockerRootDir`` from the API; /var/lib/docker in files mode). Set it when the agent
    # runs in a container with the host's data root mounted elsewhere (e.g.
    # /host/var/lib/docker): Docker's paths are then re-rooted there.
    data_root: Path | None = None
    resync_interval: Duration = Duration(60.0)
    poll_interval: Duration = Duration(2.0)
    include: ContainerFilter = field(default_factory=ContainerFilter)
    exclude: ContainerFilter = field(default_factory=ContainerFilter)

    def __post_init__(self) -> None:
        if not self.host.startswith(DOCKER_HOST_SCHEMES):
            raise FieldError(
                "host",
                f"{self.host!r} is not a Docker endpoint: unix:///var/run/docker.sock, "
                "tcp://HOST:2375 or https://HOST:2376",
            )

    @property
    def files_root(self) -> Path:
        """The data root to read without the API (files discovery, writable-layer sizes)."""
        return self.data_root or DEFAULT_DOCKER_ROOT


class DockerLogs(_Section, frozen=True):
    """What only log shipping needs to know about containers (where is under ``docker``)."""

    enabled: bool = True
    opt_out_label: str = "nexo.logs=false"
    # Where to start on containers that already exist the very first time the agent runs
    # (no positions file yet). Containers seen later are always read from the beginning.
    initial_position: Literal["beginning", "end"] = "beginning"


def _check_stages(stages: list[dict[str, Any]]) -> None:
    """Validate a stage list at load time (regexes compiled, options checked), keep it as
    written: each reader builds its own stage objects from it. An empty list imports no
    stage code (nor pydantic, which the stages' options are written in)."""
    if not stages:
        return
    from agent.logs.stages import parse_stages

    try:
        parse_stages(stages, where="stages")
    except ValueError as exc:
        key, _, reason = str(exc).partition(": ")
        raise FieldError(key, reason) from None


# A list of one-key stage mappings, Promtail's pipeline_stages format (see logs/stages/).
Stages = list[dict[str, Any]]


class StaticFileTarget(_Section, frozen=True):
    paths: list[str]
    exclude: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    # Applied after logs.pipeline.stages, to these files only.
    stages: Stages = field(default_factory=list)

    def __post_init__(self) -> None:
        _check_stages(self.stages)


class PipelineConfig(_Section, frozen=True):
    max_line_size: ByteSize = ByteSize(256 * 1024)
    partial_flush_timeout: Duration = Duration(5.0)
    # A quiet file is looked at again after at most this long (backing off from 50 ms);
    # a busy one is read continuously. Reading a trickle once a second instead of four
    # times halves the agent's CPU at 2,000 lines/s (issue 11): the lines of a second are
    # handled in one warm pass. Lines wait at most this long, plus loki.batch_wait.
    read_interval: Duration = Duration(1.0)
    parse: bool = True
    # Loki labels, in this order of priority; at most 15 are ever sent.
    labels: list[str] = field(
        default_factory=lambda: [
            "host",
            "container",
            "compose_project",
            "compose_service",
            "service_name",
            "stream",
            "level",
        ]
    )
    # Docker container labels promoted to Loki labels (names sanitised to Loki's charset).
    docker_labels: list[str] = field(default_factory=list)
    static_labels: dict[str, str] = field(default_factory=dict)
    structured_metadata: list[str] = field(
        default_factory=lambda: ["accountId", "userId", "requestId", "container_id"]
    )
    # Entries read but not yet acknowledged by Loki, in bytes: reading pauses above it, so
    # memory stays bounded and the log files on disk are the buffer during an outage.
    # Four 1 MiB batches keep the one sender busy. A batch waits its turn encoded and
    # compressed (the shipper seals it), so the window costs little memory: at 8 MiB a 1M-line
    # burst peaked 1 MiB higher (69 MiB), where entries held as objects had cost 9 MiB more.
    max_in_flight_bytes: ByteSize = ByteSize(4 * 1024 * 1024)
    # Drop entries Loki would reject as too old (its reject_old_samples_max_age) instead of
    # sending them for a certain 400.
    max_entry_age: Duration = Duration(7 * 86400.0)
    # Transforms after the built-in parsing, in order (README "Pipeline stages").
    stages: Stages = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 0 < self.read_interval <= 60:
            raise FieldError(
                "read_interval",
                f"must be greater than 0s and at most 60s, not {self.read_interval}s",
            )
        _check_stages(self.stages)


class BasicAuth(_Section, frozen=True):
    username: str
    password: str = ""
    password_file: Path | None = None


class TLSConfig(_Section, frozen=True):
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    server_name: str = ""
    insecure_skip_verify: bool = False


class BackoffConfig(_Section, frozen=True):
    min_period: Duration = Duration(0.5)
    max_period: Duration = Duration(300.0)
    # 0 = retry for as long as the data is still on disk (never drop a retryable batch).
    max_retries: Annotated[int, Meta(ge=0)] = 0


class LokiClient(_Section, frozen=True):
    url: str = "http://127.0.0.1:3100/loki/api/v1/push"
    tenant_id: str = ""
    encoding: Literal["protobuf", "json"] = "protobuf"
    json_gzip: bool = False
    batch_size: ByteSize = ByteSize(1024 * 1024)
    batch_wait: Duration = Duration(1.0)
    # Hard cap of one request body before compression; Loki's default burst is 6 MiB and a
    # request larger than the burst is refused with 429 forever.
    max_request_size: ByteSize = ByteSize(4 * 1024 * 1024)
    timeout: Duration = Duration(10.0)
    basic_auth: BasicAuth | None = None
    bearer_token: str = ""
    bearer_token_file: Path | None = None
    headers: dict[str, str] = field(default_factory=dict)
    tls: TLSConfig = field(default_factory=TLSConfig)
    backoff: BackoffConfig = field(default_factory=BackoffConfig)

    def __post_init__(self) -> None:
        if self.bearer_token and self.bearer_token_file:
            raise ValueError("set bearer_token or bearer_token_file, not both")
        if (self.bearer_token or self.bearer_token_file) and self.basic_auth:
            raise ValueError("set basic_auth or a bearer token, not both")


_JOURNAL_MATCH = re.compile(r"[A-Z0-9_]+=.*|\+", re.DOTALL)


class JournalConfig(_Section, frozen=True):
    """The systemd journal as a source, read through ``journalctl`` (see logs/journal.py)."""

    enabled: bool = False
    # A journal directory (or one .journal file) as the agent sees it, e.g. the host's
    # /var/log/journal mounted into the agent's container. Unset: the machine's journal
    # (/var/log/journal and /run/log/journal).
    path: Path | None = None
    # Only these units (journalctl --unit; globs allowed), and entries matching these
    # journalctl match expressions (FIELD=value; "+" between groups means OR).
    units: list[str] = field(default_factory=list)
    matches: list[str] = field(default_factory=list)
    # First start only (no saved cursor): read what the journal holds, or only new entries.
    initial_position: Literal["beginning", "end"] = "end"
    labels: dict[str, str] = field(default_factory=dict)
    # Applied after logs.pipeline.stages, to journal entries only.
    stages: Stages = field(default_factory=list)
    journalctl: str = "journalctl"

    def __post_init__(self) -> None:
        for match in self.matches:
            if not _JOURNAL_MATCH.fullmatch(match):
                raise FieldError(
                    "matches",
                    f"{match!r} is not a journal match: FIELD=value with an upper-case field "
                    "name (_SYSTEMD_UNIT=nginx.service, PRIORITY=3), or + for OR",
                )
        if any(not unit.strip() for unit in self.units):
            raise FieldError("units", "a unit name may not be empty")
        _check_stages(self.stages)


class LogsConfig(_Section, frozen=True):
    enabled: bool = True
    docker: DockerLogs = field(default_factory=DockerLogs)
    files: list[StaticFileTarget] = field(default_factory=list)
    journal: JournalConfig = field(default_factory=JournalConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    loki: LokiClient = field(default_factory=LokiClient)
    positions_file: Path = Path("/var/lib/nexo-agent/positions.json")
    # Positions are written promptly after an acknowledgement, at most once per interval
    # (and at shutdown): a kill -9 re-sends about this much, never loses anything.
    positions_sync_interval: Duration = Duration(1.0)

    def __post_init__(self) -> None:
        """Stage lists are checked one by one as they load; what spans them (a metric the
        global stages and a file's stages both define, differently) is checked here."""
        if self.pipeline.stages and (any(f.stages for f in self.files) or self.journal.stages):
            from agent.logs.stages import build_pipeline, parse_stages
            from agent.logs.stages.base import StageContext

            context = StageContext()
            build_pipeline(parse_stages(self.pipeline.stages), context)
            for i, spec in enumerate(self.files):
                try:
                    build_pipeline(parse_stages(spec.stages), context)
                except ValueError as exc:
                    raise FieldError(f"files[{i}].stages", str(exc)) from None
            try:
                build_pipeline(parse_stages(self.journal.stages), context)
            except ValueError as exc:
                raise FieldError("journal.stages", str(exc)) from None


class HostMetricsConfig(_Section, frozen=True):
    enabled: bool = True
    procfs: Path = Path("/proc")
    sysfs: Path = Path("/sys")
    rootfs: Path = Path("/")
    # Per-collector switches; collectors not named keep node_exporter's default.
    collectors: dict[str, bool] = field(default_factory=dict)
    textfile_directory: Path | None = None
    filesystem_mount_points_exclude: str = (
        "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)"
    )
    filesystem_fs_types_exclude: str = (
        "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs"
        "|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs"
        "|squashfs|erofs|sysfs|tracefs)$"
    )
    filesystem_stat_timeout: Duration = Duration(5.0)
    diskstats_device_exclude: str = "^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\\d+n\\d+p)\\d+$"
    netdev_device_exclude: str = ""
    netclass_ignored_devices: str = "^$"
    # node_exporter's --path.udev.data (disk model/serial/wwn for node_disk_info).
    udev_data: Path = Path("/run/udev/data")
    # node_exporter's --collector.netdev.netlink: counters from RTM_GETLINK (the agent's
    # network namespace) instead of <procfs>/net/dev; netlink adds receive_nohandler.
    netdev_netlink: bool = True


class ContainerMetricsConfig(_Section, frozen=True):
    enabled: bool = True
    cgroupfs: Path = Path("/sys/fs/cgroup")
    # Docker label keys (fnmatch patterns) exported as container_label_*; unset = all
    # (cAdvisor's default), [] = none.
    labels_allow: list[str] | None = None
    fs_usage: bool = False
    fs_usage_interval: Duration = Duration(300.0)
    # The host's /proc: /proc/<pid>/cgroup (path fallback), /proc/<pid>/net/dev, partitions.
    procfs: Path = Path("/proc")
    # container_cpu_usage_seconds_total per CPU (cpu="cpu00"...) on cgroup v1, like
    # standalone cAdvisor; off = one cpu="total" series. cgroup v2 has only "total".
    percpu: bool = True


class ServerConfig(_Section, frozen=True):
    listen_address: str = "0.0.0.0:9101"
    # A Prometheus exporters' web config (TLS, basic auth, headers, rate limit): the same
    # file node_exporter's --web.config.file reads. Checked at load; reloaded when it changes.
    web_config_file: Path | None = None
    # node_exporter's --web.max-requests: scrapes in flight beyond this get 503 at once (0: no cap).
    max_concurrent_scrapes: Annotated[int, Meta(ge=0)] = 40
    # Open connections beyond this get 503 and are closed (0: no cap): each holds a file
    # descriptor that tailing logs needs more.
    max_connections: Annotated[int, Meta(ge=0)] = 256
    # /healthz and /ready answer without credentials (container healthchecks, probes).
    health_endpoints_open: bool = True

    def __post_init__(self) -> None:
        path = self.web_config_file
        if path is not None:
            from agent.metrics.webconfig import WebConfigError, load_web_config

            try:
                load_web_config(path)
            except WebConfigError as exc:
                raise FieldError("web_config_file", f"{path}: {exc}") from None


class MetricsConfig(_Section, frozen=True):
    host: HostMetricsConfig = field(default_factory=HostMetricsConfig)
    containers: ContainerMetricsConfig = field(default_factory=ContainerMetricsConfig)


class AgentConfig(_Section, frozen=True, dict=True):
    # ``dict=True``: room for what is not a key of the file (the deprecations found in it).
    hostname: str = field(default_factory=socket.gethostname)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    shutdown_timeout: Duration = Duration(10.0)
    server: ServerConfig = field(default_factory=ServerConfig)
    docker: DockerConfig = field(default_factory=DockerConfig)
    logs: LogsConfig = field(default_factory=LogsConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)

    @property
    def deprecations(self) -> list[str]:
        """Deprecated keys found in the file, each with the key that replaces it."""
        return list(self.__dict__.get("deprecations", ()))

    def __post_init__(self) -> None:
        if not self.hostname:
            msgspec.structs.force_setattr(
                self, "hostname", _host_hostname(self.metrics.host.rootfs)
            )


def _host_hostname(rootfs: Path) -> str:
    """The host's name: in a container with the host's / mounted, its ``/etc/hostname``
    (the container's own hostname is its ID, useless as a ``host`` label).

    ``/proc/sys/kernel/hostname`` would not do: it answers for the reader's UTS namespace.
    """
    if rootfs != Path("/"):
        try:
            name = (rootfs / "etc/hostname").read_text().strip()
        except (OSError, UnicodeDecodeError):
            name = ""
        if name:
            return name
    return socket.gethostname()


def expand_env(text: str, environ: dict[str, str] | None = None) -> str:
    """Replace ``${VAR}`` and ``${VAR:-default}``; an unset ``${VAR}`` without default is empty."""
    env = os.environ if environ is None else environ

    def repl(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = env.get(name)
        if value is None or (value == "" and default is not None):
            return default if default is not None else ""
        return value

    return _ENV_RE.sub(repl, text)


def _drop_empty(value: Any) -> Any:
    """A key left empty (``tenant_id:`` or ``${UNSET}``) means "use the default".

    Not inside ``stages``: there an empty value has a meaning of its own, as in Promtail
    (``labels: {values: {level: }}``: the field of the same name)."""
    if isinstance(value, dict):
        return {
            k: v if k == "stages" else _drop_empty(v) for k, v in value.items() if v is not None
        }
    if isinstance(value, list):
        return [_drop_empty(v) for v in value]
    return value


_AT = re.compile(r"^(?P<msg>.*) - at (?P<what>`key` in )?`\$(?P<path>[^`]*)`$", re.DOTALL)
# msgspec's path: .name for a key, [0] for a list item, [...] for a mapping's value
_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<key>.+)`$", re.DOTALL)
_OWN_KEY = re.compile(r"^`(?P<key>[^`]+)`: (?P<msg>.*)$", re.DOTALL)


def _section_at(
    path: list[str | int],
) -> tuple[type[Struct] | None, msgspec.structs.FieldInfo | None]:
    """The section at ``path`` below :class:`AgentConfig` and, when the path ends on one of
    its keys, that key's description (for 'did you mean' and the values a key takes)."""
    section: type[Struct] | None = AgentConfig
    info = None
    for part in path:
        if isinstance(part, int):
            continue
        if section is None:
            return None, None
        info = next((f for f in msgspec.structs.fields(section) if f.name == part), None)
        if info is None:
            return None, None
        section = _struct_in(info.type)
    return section, info


def _struct_in(kind: Any) -> type[Struct] | None:
    """The section type inside ``kind`` (``X``, ``X | None``, ``list[X]``), if any."""
    if isinstance(kind, type) and issubclass(kind, Struct):
        return kind
    for arg in getattr(kind, "__args__", ()):
        found = _struct_in(arg)
        if found is not None:
            return found
    return None


def _describe(error: msgspec.ValidationError) -> tuple[str, str]:
    """msgspec's message (``Expected `int`, got `str` - at `$.logs.loki.batch_size```) as
    the key it is about and a reason phrased for the operator."""
    text = str(error)
    at = _AT.match(text)
    msg, raw_path = (at.group("msg"), at.group("path")) if at else (text, "")
    path: list[str | int] = [
        name if name else int(index) if index.isdigit() else "[...]"
        for name, index in _PATH_PART.findall(raw_path)
    ]
    if at and at.group("what"):
        msg = f"a key is not text ({msg.lower()})"
    unknown = _UNKNOWN.match(msg)
    if unknown:
        name = unknown.group("key")
        section, _ = _section_at(path)
        valid = [f.name for f in msgspec.structs.fields(section)] if section else []
        close = difflib.get_close_matches(name, valid, n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return _key(path, name), f"unknown key{hint} (valid keys: {', '.join(valid)})"
    own = _OWN_KEY.match(msg)
    if own:  # a section's own check, about one of its keys (or a stage list's entry)
        return _key(path, own.group("key")), own.group("msg")
    if msg.startswith("Expected `str`, got"):  # YAML read 123, yes or 1.0 as no text
        msg += " (quote it to keep it as written: '...')"
    if msg.startswith("Invalid enum value"):
        _, info = _section_at(path)
        choices = getattr(info.type, "__args__", ()) if info else ()
        if choices:
            msg += f" (one of: {', '.join(map(str, choices))})"
    return _key(path), msg


def _key(path: list[str | int], last: str = "") -> str:
    key = "".join(
        f"[{p}]" if isinstance(p, int) else p if p == "[...]" else f".{p}" for p in path
    ).lstrip(".")
    if last:
        key += last if last.startswith("[") else f".{last}" if key else last
    return key


_SectionT = TypeVar("_SectionT", bound=Struct)


def from_data(kind: type[_SectionT], raw: Any) -> _SectionT:
    """One section from plain data, checked as in a file (raises ``msgspec.ValidationError``)."""
    # Not strict: "3" is a number and "true" a boolean, as YAML's quoting and ${VAR}
    # expansion make them; a number is still no text and a fraction no whole number.
    return msgspec.convert(raw, kind, strict=False, dec_hook=_decode)


def load_config(path: str | Path | None, environ: dict[str, str] | None = None) -> AgentConfig:
    """Load and validate a config file (``None`` = all defaults). Raises :class:`ConfigError`."""
    if path is None:
        return AgentConfig()
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(name, "", f"cannot read config: {exc}") from exc
    import yaml

    try:
        raw = yaml.safe_load(expand_env(text, environ))
    except yaml.YAMLError as exc:
        raise ConfigError(name, "", f"invalid YAML: {exc}") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(name, "", "the top level must be a mapping of keys")
    raw = _drop_empty(raw)
    try:
        deprecations = _move_deprecated_keys(raw)
    except ValueError as exc:
        raise ConfigError(name, "docker", str(exc)) from exc
    try:
        config = from_data(AgentConfig, raw)
    except msgspec.ValidationError as exc:
        key, reason = _describe(exc)
        raise ConfigError(name, key, reason) from exc
    config.__dict__["deprecations"] = deprecations
    return config


# Keys that moved to the top-level ``docker:`` section (shared by logs and container
# metrics) -> their new name there.
_MOVED_TO_DOCKER: dict[tuple[str, ...], str] = {
    **{
        ("logs", "docker", key): key
        for key in (
            "discovery",
            "host",
            "data_root",
            "resync_interval",
            "poll_interval",
            "include",
            "exclude",
        )
    },
    ("metrics", "containers", "docker_data_root"): "data_root",
}


def _move_deprecated_keys(raw: dict[str, Any]) -> list[str]:
    """Move old keys to ``docker.*`` in place; one deprecation sentence per key moved.

    Raises ``ValueError`` when the old and the new key are both set to different values:
    which one wins would be a guess.
    """
    notes: list[str] = []
    for path, new in _MOVED_TO_DOCKER.items():
        parent: Any = raw
        for part in path[:-1]:
            parent = parent.get(part) if isinstance(parent, dict) else None
        if not isinstance(parent, dict) or path[-1] not in parent:
            continue
        old_key = ".".join(path)
        value = parent.pop(path[-1])
        docker = raw.setdefault("docker", {})
        if not isinstance(docker, dict):
            raise ValueError("the docker section must be a mapping of keys")
        if new in docker and docker[new] != value:
            raise ValueError(f"{old_key} and docker.{new} are both set; keep docker.{new} only")
        docker[new] = value
        notes.append(f"{old_key} is deprecated; use docker.{new} (same meaning)")
    return notes


def effective_config(config: AgentConfig) -> dict[str, Any]:
    """The config with every default filled in, as plain data for ``--check-config``."""
    plain: dict[str, Any] = msgspec.to_builtins(config, enc_hook=_encode)
    return plain
