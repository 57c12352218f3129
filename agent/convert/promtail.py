"""A Promtail config as a nexo-agent config, with a report of what did not carry over.

Covered: the first Loki client (``clients[0]`` -> ``logs.loki``), the positions file (a
new name: the formats differ), Docker discovery (``docker_sd_configs`` with its filters
and relabel rules -> ``docker.*``, ``logs.pipeline``), static file targets
(``static_configs`` with ``__path__`` -> ``logs.files``), ``pipeline_stages`` (see
:mod:`agent.convert.promtail_stages`) and the few ``limits_config``/``server`` keys that
mean something to nexo-agent. Everything else is reported with its input line: other
discovery mechanisms (Kubernetes, journal, syslog, push receivers...), a second client, a
second Docker scrape config, relabel rules nexo cannot express.

Promtail's own settings of no meaning to nexo-agent (its HTTP/gRPC server, target sync
periods) are noted and left out; nexo-agent's defaults stay in force for what Promtail
does not say (it also adds ``host``, ``container``, ``compose_*``, ``service_name``,
``stream`` and ``level`` labels, and reads container logs from the files).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from agent.config import PipelineConfig
from agent.convert.globs import expand_braces
from agent.convert.promtail_docker import DockerTranslator
from agent.convert.promtail_stages import (
    StageChecker,
    StageTranslator,
    TargetKind,
    TranslatedStage,
    Untranslatable,
    go_duration,
    mapping,
    with_match,
)
from agent.convert.report import Report
from agent.convert.yaml_io import LineMap, Path_, dump_commented, line_of

# Discovery mechanisms nexo-agent does not have, and why (said once per scrape config).
_OTHER_DISCOVERY = {
    "kubernetes_sd_configs": "Kubernetes pods: nexo-agent discovers Docker containers and "
    "static files only",
    "journal": "nexo-agent does not read the systemd journal",
    "syslog": "nexo-agent receives no syslog",
    "loki_push_api": "nexo-agent receives no pushed logs (Loki push API)",
    "gelf": "nexo-agent receives no GELF",
    "heroku_drain": "nexo-agent receives no Heroku drains",
    "windows_events": "nexo-agent reads no Windows event logs",
    "gcplog": "nexo-agent pulls no Google Cloud logs",
    "azure_event_hub": "nexo-agent reads no Azure Event Hubs",
    "kafka": "nexo-agent consumes no Kafka topics",
    "cloudflare": "nexo-agent pulls no Cloudflare logs",
    "file_sd_configs": "targets from files: nexo-agent takes static globs only (logs.files)",
    "consul_sd_configs": "nexo-agent does no Consul discovery",
    "consulagent_sd_configs": "nexo-agent does no Consul discovery",
}
_IGNORED_TOP = {
    "target_config": "nexo-agent re-globs logs.files every 10 s and follows Docker's events",
    "global": "nexo-agent polls the files it follows on its own schedule",
    "options": "Promtail's stream lag metrics",
    "tracing": "nexo-agent has no Jaeger tracing",
}
_LOG_LEVELS = {"debug": "debug", "info": "info", "warn": "warning", "error": "error"}
# Labels nexo-agent sets itself, ahead of configured fixed labels (targets.py: builtin
# labels first, first wins; stream and level per line): a fixed value for one of them only
# takes effect from a static_labels stage.
_OWN_DOCKER_LABELS = set(PipelineConfig().labels)
_OWN_FILE_LABELS = {"host", "filename", "stream", "level"}
# Marks docker-only stages when logs.files exist too: logs.pipeline.stages runs on files as
# well, and only container entries carry a container label.
DOCKER_ONLY = '{container=~".+"}'


@dataclass
class Conversion:
    """The converted config as data, with its comments, and what seeding positions needs."""

    source: str
    data: dict[str, Any]
    comments: dict[Path_, list[str]]
    header: list[str]
    report: Report
    unavailable_stages: set[str] = field(default_factory=set)

    def render(self) -> str:
        return dump_commented(self.data, self.comments, self.header)

    @property
    def logs(self) -> dict[str, Any]:
        logs: dict[str, Any] = self.data.get("logs", {})
        return logs

    @property
    def positions_file(self) -> str:
        return str(self.logs.get("positions_file", "/var/lib/nexo-agent/positions.json"))

    @property
    def files(self) -> list[dict[str, Any]]:
        files: list[dict[str, Any]] = self.logs.get("files", [])
        return files

    @property
    def docker_enabled(self) -> bool:
        return bool(self.logs.get("docker", {}).get("enabled", True))


def nexo_positions_path(promtail_file: str) -> str:
    """``/run/promtail/positions.yaml`` -> ``/run/promtail/positions.nexo.json``: beside
    Promtail's, never the same file (Promtail would read nexo's JSON as broken YAML)."""
    path = PurePosixPath(promtail_file)
    if path.suffix in (".yaml", ".yml", ".json"):
        return str(path.with_name(f"{path.stem}.nexo.json"))
    return str(path.with_name(f"{path.name}.nexo.json"))


class PromtailConverter:
    def __init__(self, file: str, today: datetime.date | None = None) -> None:
        self.file = file
        self.today = today or datetime.date.today()
        self.report = Report()
        self.checker = StageChecker()
        self.comments: dict[Path_, list[str]] = {}
        self.header_notes: list[str] = []
        self.top: dict[str, Any] = {}
        self.loki: dict[str, Any] = {}
        self.static_labels: dict[str, str] = {}
        self.pipeline_extra: dict[str, Any] = {}
        self.positions_file: str | None = None
        self.docker = DockerTranslator(file, self.report)
        self.docker_job: str | None = None
        self.docker_stages: list[TranslatedStage] = []
        self.files: list[tuple[dict[str, Any], list[TranslatedStage], str]] = []
        self.instance_limit: TranslatedStage | None = None
        self.leading_stages: list[TranslatedStage] = []
        self.docker_line = 0
        self.external_line = 0

    def comment(self, path: Path_, text: str) -> None:
        self.comments.setdefault(path, []).append(text)

    def at(self, line: int) -> str:
        return f"{self.file}:{line}" if line else self.file

    # ---------------------------------------------------------------------- driver

    def convert(self, doc: Any) -> Conversion:
        if doc is None:
            doc = LineMap()
            doc.line, doc.key_lines = 1, {}
        if not isinstance(doc, dict):
            raise Untranslatable("the top level of a Promtail config is a mapping")
        handlers = {
            "server": self._server,
            "clients": self._clients,
            "client": self._clients,
            "positions": self._positions,
            "scrape_configs": self._scrape_configs,
            "limits_config": self._limits,
        }
        if "clients" not in doc and "client" not in doc:
            self.report.note(
                self.file,
                0,
                "clients",
                "none given: logs.loki.url keeps nexo's default (http://127.0.0.1:3100)",
            )
        for key, value in doc.items():
            line = line_of(doc, key)
            handler = handlers.get(str(key))
            if handler is not None:
                try:
                    handler(value, line)
                except Untranslatable as exc:
                    self.report.omitted(self.file, line, str(key), str(exc))
            elif key in _IGNORED_TOP:
                self.report.note(self.file, line, str(key), f"ignored: {_IGNORED_TOP[key]}")
            else:
                self.report.omitted(self.file, line, str(key), "unknown top-level key")
        if self.positions_file is None:
            self.report.note(
                self.file,
                0,
                "positions",
                "none given (Promtail's default: /var/log/positions.yaml): nexo-agent keeps "
                "its own default, /var/lib/nexo-agent/positions.json",
            )
        data = self._assemble()
        return Conversion(
            self.file,
            data,
            self.comments,
            self._header(),
            self.report,
            self.checker.unavailable,
        )

    # ------------------------------------------------------------------ sections

    def _server(self, server: Any, line: int) -> None:
        if not isinstance(server, dict):
            return
        ignored = []
        for key, value in server.items():
            key_line = line_of(server, key, line)
            if key == "http_listen_port":
                self.header_notes.append(
                    f"Promtail served HTTP on port {value} (server.http_listen_port, "
                    f"{self.at(key_line)}); nexo-agent serves /metrics, /healthz and /ready "
                    "on server.listen_address (default 0.0.0.0:9101)."
                )
            elif key == "log_level" and str(value).lower() in _LOG_LEVELS:
                self.top["log_level"] = _LOG_LEVELS[str(value).lower()]
                self.comment(("log_level",), f"from server.log_level ({self.at(key_line)})")
            else:
                ignored.append(str(key))
        if ignored:
            self.report.note(
                self.file,
                line,
                "server",
                f"ignored: {', '.join(ignored)} (Promtail's own HTTP/gRPC server)",
            )

    def _clients(self, clients: Any, line: int) -> None:
        if isinstance(clients, dict):
            clients = [clients]
        if not isinstance(clients, list) or not clients:
            self.report.omitted(self.file, line, "clients", "expected a list of clients")
            return
        for i in range(1, len(clients)):
            url = clients[i].get("url", "?") if isinstance(clients[i], dict) else "?"
            self.report.omitted(
                self.file,
                line_of(clients, i, line),
                f"clients[{i}]",
                f"nexo-agent pushes to one Loki: {url} is not translated",
            )
        client = clients[0]
        client_line = line_of(clients, 0, line)
        if not isinstance(client, dict):
            self.report.omitted(self.file, client_line, "clients[0]", "expected a mapping")
            return
        if client.get("basic_auth") and (
            client.get("bearer_token") or client.get("bearer_token_file")
        ):
            self.report.omitted(
                self.file,
                line_of(client, "basic_auth", client_line),
                "clients[0].basic_auth",
                "basic_auth and a bearer token together (Promtail refuses that too): "
                "only the bearer token is kept",
            )
            skip = {"basic_auth"}
        else:
            skip = set()
        for key, value in client.items():
            if key in skip:
                continue
            at = f"clients[0].{key}"
            key_line = line_of(client, key, client_line)
            try:
                self._client_option(str(key), value, at, key_line)
            except Untranslatable as exc:
                self.report.omitted(self.file, key_line, at, str(exc))
        self.comment(("logs", "loki"), f"from clients[0] ({self.at(client_line)})")
        if not isinstance(client.get("backoff_config"), dict) or (
            "max_retries" not in client["backoff_config"]
        ):
            self.report.note(
                self.file,
                client_line,
                "clients[0].backoff_config.max_retries",
                "not set: Promtail gives up after 10 retries (about 8.5 min) and drops the "
                "batch; nexo-agent keeps retrying while the lines are still on disk (0)",
            )

    def _client_option(self, key: str, value: Any, at: str, line: int) -> None:
        loki = self.loki
        if key in ("url", "tenant_id", "bearer_token", "bearer_token_file"):
            if value not in (None, ""):
                loki[key] = str(value)
        elif key == "batchwait":
            loki["batch_wait"] = go_duration(value)
        elif key == "batchsize":
            loki["batch_size"] = _size(value)
        elif key == "timeout":
            loki["timeout"] = go_duration(value)
        elif key == "headers":
            loki["headers"] = {str(k): str(v) for k, v in mapping(value).items()}
        elif key == "external_labels":
            self.external_line = line
            for name, label in mapping(value).items():
                self.static_labels[str(name)] = str(label)
            self.comment(
                ("logs", "pipeline", "static_labels"),
                f"from clients[0].external_labels ({self.at(line)})",
            )
        elif key == "basic_auth":
            auth = mapping(value)
            if not auth.get("username"):
                raise Untranslatable("basic_auth without a username")
            out = {"username": str(auth["username"])}
            for part in ("password", "password_file"):
                if auth.get(part):
                    out[part] = str(auth[part])
            loki["basic_auth"] = out
        elif key == "tls_config":
            self._tls(mapping(value), at, line)
        elif key == "backoff_config":
            backoff: dict[str, Any] = {}
            for part, option in mapping(value).items():
                if part in ("min_period", "max_period"):
                    backoff[part] = go_duration(option)
                elif part == "max_retries":
                    if not isinstance(option, int) or isinstance(option, bool) or option < 0:
                        raise Untranslatable(f"max_retries {option!r} is not a count")
                    backoff[part] = option
                else:
                    self.report.omitted(self.file, line, f"{at}.{part}", "unknown backoff option")
            loki["backoff"] = backoff
        elif key == "drop_rate_limited_batches":
            if value:
                raise Untranslatable(
                    "nexo-agent retries 429s like other retryable errors; it never drops them"
                )
        elif key in ("follow_redirects", "enable_http2"):
            self.report.note(self.file, line, at, "ignored: nexo-agent's HTTP client decides")
        else:
            raise Untranslatable(
                "no nexo-agent equivalent (logs.loki takes url, tenant_id, basic_auth, "
                "bearer_token(_file), tls, headers, batch and backoff settings)"
            )

    def _tls(self, tls: dict[Any, Any], at: str, line: int) -> None:
        out: dict[str, Any] = {}
        for key, value in tls.items():
            if key in ("ca_file", "cert_file", "key_file", "server_name"):
                if value:
                    out[str(key)] = str(value)
            elif key == "insecure_skip_verify":
                out[str(key)] = bool(value)
            else:
                self.report.omitted(
                    self.file,
                    line_of(tls, key, line),
                    f"{at}.{key}",
                    "logs.loki.tls takes ca_file, cert_file, key_file, server_name and "
                    "insecure_skip_verify only",
                )
        if out:
            self.loki["tls"] = out

    def _positions(self, positions: Any, line: int) -> None:
        positions = mapping(positions)
        filename = str(positions.get("filename") or "/var/log/positions.yaml")
        self.positions_file = nexo_positions_path(filename)
        key_line = line_of(positions, "filename", line)
        self.comment(
            ("logs", "positions_file"),
            f"Promtail kept its positions in {filename} (positions.filename, "
            f"{self.at(key_line)}), a YAML map of path -> offset. nexo-agent's own file is "
            "JSON with file identities, so it has a name of its own; seed it from "
            "Promtail's with: nexo-agent convert promtail ... --positions " + filename,
        )
        for key in positions:
            if key == "sync_period":
                self.report.note(
                    self.file,
                    line_of(positions, key, line),
                    "positions.sync_period",
                    "ignored: nexo-agent writes positions within positions_sync_interval "
                    "(1 s) of Loki's acknowledgement",
                )
            elif key == "ignore_invalid_yaml":
                self.report.note(
                    self.file,
                    line_of(positions, key, line),
                    "positions.ignore_invalid_yaml",
                    "ignored: nexo-agent always moves a corrupt positions file aside and "
                    "starts afresh",
                )
            elif key != "filename":
                self.report.omitted(
                    self.file, line_of(positions, key, line), f"positions.{key}", "unknown key"
                )

    def _limits(self, limits: Any, line: int) -> None:
        limits = mapping(limits)
        rate_keys = ("readline_rate", "readline_burst", "readline_rate_drop")
        if limits.get("readline_rate_enabled"):
            options = {
                "rate": limits.get("readline_rate", 10000),
                "burst": limits.get("readline_burst", 10000),
                "drop": bool(limits.get("readline_rate_drop", True)),
            }
            at = "limits_config.readline_rate_enabled"
            key_line = line_of(limits, "readline_rate_enabled", line)
            translator = self._translator("docker", [])
            self.instance_limit = translator.add("limit", options, None, at, key_line)
            if self.instance_limit is not None:
                self.report.differs(
                    self.file,
                    key_line,
                    at,
                    "a limit stage first in logs.pipeline.stages: nexo counts per container "
                    "(or file), Promtail for the whole instance",
                )
        elif any(k in limits for k in rate_keys):
            self.report.note(
                self.file,
                line,
                "limits_config",
                "readline_rate*: ignored, as readline_rate_enabled is off",
            )
        for key, value in limits.items():
            key_line = line_of(limits, key, line)
            at = f"limits_config.{key}"
            if key in (*rate_keys, "readline_rate_enabled"):
                continue
            if key == "max_line_size":
                if value in (0, "0", None, ""):
                    continue
                try:
                    self.pipeline_extra["max_line_size"] = _size(value)
                except Untranslatable as exc:
                    self.report.omitted(self.file, key_line, at, str(exc))
                    continue
                self.comment(
                    ("logs", "pipeline", "max_line_size"),
                    f"from limits_config.max_line_size ({self.at(key_line)})",
                )
                if not limits.get("max_line_size_truncate"):
                    self.report.differs(
                        self.file,
                        key_line,
                        at,
                        "nexo-agent cuts longer lines to max_line_size; Promtail drops them "
                        "unless max_line_size_truncate is set",
                    )
            elif key == "max_line_size_truncate" or (key == "max_streams" and not value):
                continue
            else:
                self.report.omitted(self.file, key_line, at, "no nexo-agent equivalent")

    # ------------------------------------------------------------ scrape configs

    def _scrape_configs(self, configs: Any, line: int) -> None:
        if configs is None:
            return
        if not isinstance(configs, list):
            self.report.omitted(self.file, line, "scrape_configs", "expected a list")
            return
        for i, sc in enumerate(configs):
            where = f"scrape_configs[{i}]"
            sc_line = line_of(configs, i, line)
            if not isinstance(sc, dict):
                self.report.omitted(self.file, sc_line, where, "expected a mapping")
                continue
            self._scrape_config(sc, where, sc_line)

    def _scrape_config(self, sc: dict[Any, Any], where: str, line: int) -> None:
        job = str(sc.get("job_name", "?"))
        name = f'{where} "{job}"'
        for key in sc:
            key_line = line_of(sc, key, line)
            if key in _OTHER_DISCOVERY or (
                str(key).endswith("_sd_configs") and key != "docker_sd_configs"
            ):
                extra = [k for k in ("relabel_configs", "pipeline_stages") if sc.get(k)]
                why = _OTHER_DISCOVERY.get(str(key), "no nexo-agent equivalent")
                self.report.omitted(
                    self.file,
                    key_line,
                    f"{where}.{key}",
                    why + (f" (its {' and '.join(extra)} go with it)" if extra else ""),
                )
            elif key in ("decompression", "encoding"):
                if key == "encoding" or mapping(sc[key]).get("enabled"):
                    self.report.omitted(
                        self.file,
                        key_line,
                        f"{where}.{key}",
                        "nexo-agent reads plain UTF-8 files (and Docker's own .gz rotations)",
                    )
            elif key not in (
                "job_name",
                "pipeline_stages",
                "relabel_configs",
                "static_configs",
                "docker_sd_configs",
            ):
                self.report.omitted(self.file, key_line, f"{where}.{key}", "unknown key")
        if "docker_sd_configs" in sc:
            self._docker_job(sc, where, name, line)
        if "static_configs" in sc:
            self._static_job(sc, where, name, line)

    def _translator(self, kind: TargetKind, labels: list[str]) -> StageTranslator:
        return StageTranslator(self.file, self.report, self.checker, kind, labels)

    def _docker_job(self, sc: dict[Any, Any], where: str, name: str, line: int) -> None:
        if self.docker_job is not None:
            self.report.omitted(
                self.file,
                line_of(sc, "docker_sd_configs", line),
                f"{where}.docker_sd_configs",
                f"nexo-agent has one Docker discovery; {self.docker_job} is the one translated "
                "(its relabel_configs and pipeline_stages go with it)",
            )
            return
        self.docker_job = name
        self.docker_line = line
        sd_line = line_of(sc, "docker_sd_configs", line)
        self.docker.sd_configs(sc["docker_sd_configs"], f"{where}.docker_sd_configs", sd_line)
        if "relabel_configs" in sc:
            rl_line = line_of(sc, "relabel_configs", line)
            self.docker.relabel(sc["relabel_configs"], f"{where}.relabel_configs", rl_line)
        translator = self._translator("docker", ["container", "compose_service"])
        self.docker_stages = translator.translate(
            sc.get("pipeline_stages"),
            f"{where}.pipeline_stages",
            line_of(sc, "pipeline_stages", line),
        )
        self.comment(
            ("docker",),
            f"from {name}: docker_sd_configs and relabel_configs ({self.at(sd_line)})",
        )

    def _static_job(self, sc: dict[Any, Any], where: str, name: str, line: int) -> None:
        configs = sc["static_configs"]
        sc_line = line_of(sc, "static_configs", line)
        if not isinstance(configs, list):
            self.report.omitted(self.file, sc_line, f"{where}.static_configs", "expected a list")
            return
        entries: list[tuple[dict[str, Any], str, int, int]] = []
        label_names: list[str] = ["filename"]
        for j, static in enumerate(configs):
            at = f"{where}.static_configs[{j}]"
            st_line = line_of(configs, j, sc_line)
            try:
                entry = self._static_entry(static, at, st_line)
            except Untranslatable as exc:
                self.report.omitted(self.file, st_line, at, str(exc))
                continue
            if entry is not None:
                entries.append((entry, at, st_line, line_of(static, "labels", st_line)))
                label_names += [k for k in entry.get("labels", {}) if k not in label_names]
        if not entries:
            return
        relabel_labels = self._static_relabel(sc.get("relabel_configs"), where, line)
        translator = self._translator("file", label_names)
        stages = translator.translate(
            sc.get("pipeline_stages"),
            f"{where}.pipeline_stages",
            line_of(sc, "pipeline_stages", line),
        )
        for entry, at, st_line, labels_line in entries:
            origin = f"from {at} ({name}, {self.at(st_line)})"
            if relabel_labels:
                entry["labels"] = {**entry.get("labels", {}), **relabel_labels}
            own = {k: v for k, v in entry.get("labels", {}).items() if k in _OWN_FILE_LABELS}
            fixed = (
                self._fixed_labels_stage(own, translator, f"{at}.labels", labels_line)
                if own
                else None
            )
            if own:
                entry["labels"] = {
                    k: v for k, v in entry["labels"].items() if k not in _OWN_FILE_LABELS
                }
                if not entry["labels"]:
                    del entry["labels"]
            self.files.append((entry, ([fixed] if fixed else []) + stages, origin))

    def _fixed_labels_stage(
        self, labels: dict[str, str], translator: StageTranslator, origin: str, line: int
    ) -> TranslatedStage | None:  # origin: the input key the labels came from
        """A static_labels stage for fixed labels nexo would otherwise set itself."""
        self.report.note(
            self.file,
            line,
            origin,
            f"the labels {sorted(labels)} are set by a static_labels stage: nexo-agent sets "
            "them itself ahead of fixed labels",
        )
        return translator.add("static_labels", {"values": labels}, None, origin, line)

    def _static_entry(self, static: Any, at: str, line: int) -> dict[str, Any] | None:
        if not isinstance(static, dict):
            self.report.omitted(self.file, line, at, "expected a mapping")
            return None
        labels = mapping(static.get("labels"))
        labels_line = line_of(static, "labels", line)
        path = labels.get("__path__")
        if not path:
            self.report.omitted(
                self.file, labels_line, f"{at}.labels", "no __path__: no files to read"
            )
            return None
        entry: dict[str, Any] = {}
        try:
            entry["paths"] = expand_braces(str(path))
            if labels.get("__path_exclude__"):
                entry["exclude"] = expand_braces(str(labels["__path_exclude__"]))
        except ValueError as exc:
            self.report.omitted(self.file, labels_line, f"{at}.labels", str(exc))
            return None
        path_line = line_of(labels, "__path__", labels_line)
        if any(not p.startswith(("/", "${")) for p in entry["paths"]):
            self.report.differs(
                self.file,
                path_line,
                f"{at}.labels.__path__",
                "a relative path is read relative to nexo-agent's working directory",
            )
        if any("*" in p for p in entry.get("exclude", [])):
            self.report.differs(
                self.file,
                line_of(labels, "__path_exclude__", labels_line),
                f"{at}.labels.__path_exclude__",
                "nexo's exclude is an fnmatch pattern on the absolute path, where '*' also "
                "matches '/' (doublestar's does not)",
            )
        kept = {str(k): str(v) for k, v in labels.items() if not str(k).startswith("__")}
        for key in labels:
            if str(key).startswith("__") and key not in ("__path__", "__path_exclude__"):
                self.report.omitted(
                    self.file,
                    line_of(labels, key, labels_line),
                    f"{at}.labels.{key}",
                    "internal label with no nexo-agent meaning",
                )
        if kept:
            entry["labels"] = kept
        for key in static:
            if key not in ("labels", "targets"):
                self.report.omitted(
                    self.file, line_of(static, key, line), f"{at}.{key}", "unknown key"
                )
        return entry

    def _static_relabel(self, rules: Any, where: str, line: int) -> dict[str, str]:
        """Only rules that set a fixed label translate for files."""
        labels: dict[str, str] = {}
        if not isinstance(rules, list):
            return labels
        for i, rule in enumerate(rules):
            at = f"{where}.relabel_configs[{i}]"
            rule_line = line_of(rules, i, line)
            if (
                isinstance(rule, dict)
                and str(rule.get("action") or "replace") == "replace"
                and not rule.get("source_labels")
                and rule.get("target_label")
                and not str(rule["target_label"]).startswith("__")
                and "$" not in str(rule.get("replacement", "$1"))
                and str(rule.get("regex", "(.*)")) in ("(.*)", "^(.*)$", ".*")
            ):
                labels[str(rule["target_label"])] = str(rule.get("replacement"))
            else:
                self.report.omitted(
                    self.file,
                    rule_line,
                    at,
                    "for files only rules that set a fixed label translate (into the "
                    "logs.files entry's labels)",
                )
        return labels

    # ------------------------------------------------------------------ assembly

    def _assemble(self) -> dict[str, Any]:
        data: dict[str, Any] = dict(self.top)
        sel = self.docker.selection
        if self.docker_job is not None:
            docker: dict[str, Any] = {}
            if sel.host:
                docker["host"] = sel.host
            if sel.resync_interval:
                docker["resync_interval"] = sel.resync_interval
            if sel.include:
                docker["include"] = sel.include
            if sel.exclude:
                docker["exclude"] = sel.exclude
            if docker:
                data["docker"] = docker
            else:
                self.comments.pop(("docker",), None)
        logs: dict[str, Any] = {}
        if self.positions_file is not None:
            logs["positions_file"] = self.positions_file
        if self.docker_job is None:
            logs["docker"] = {"enabled": False}
            self.comment(
                ("logs", "docker"),
                "Promtail had no docker_sd_configs: container logs stay off, as there. "
                "Set enabled: true to ship every container's logs (nexo-agent's main use).",
            )
        if self.files:
            logs["files"] = []
            for i, (entry, stages, origin) in enumerate(self.files):
                if stages:
                    entry["stages"] = [s.stage for s in stages]
                    for k, stage in enumerate(stages):
                        self.comment(("logs", "files", i, "stages", k), f"from {stage.origin}")
                logs["files"].append(entry)
                self.comment(("logs", "files", i), origin)
        pipeline: dict[str, Any] = dict(self.pipeline_extra)
        if sel.docker_labels:
            pipeline["docker_labels"] = sel.docker_labels
            self.comment(
                ("logs", "pipeline", "docker_labels"),
                f"from {self.docker_job} relabel_configs: Docker labels sent under their "
                "sanitised names",
            )
        docker_own = {k: v for k, v in sel.static_labels.items() if k in _OWN_DOCKER_LABELS}
        external_own = {
            k: v
            for k, v in self.static_labels.items()
            if k in _OWN_DOCKER_LABELS | _OWN_FILE_LABELS
        }
        static = {
            k: v
            for k, v in {**sel.static_labels, **self.static_labels}.items()
            if k not in docker_own and k not in external_own
        }
        translator = self._translator("docker", [])
        if docker_own:
            origin = f"{self.docker_job} relabel_configs"
            fixed = self._fixed_labels_stage(docker_own, translator, origin, self.docker_line)
            if fixed is not None:
                self.docker_stages.insert(0, fixed)
        if external_own:
            origin = "clients[0].external_labels"
            fixed = self._fixed_labels_stage(external_own, translator, origin, self.external_line)
            if fixed is not None:
                self.leading_stages.append(fixed)
        if static:
            pipeline["static_labels"] = static
            if sel.static_labels:
                self.comment(
                    ("logs", "pipeline", "static_labels"),
                    f"from {self.docker_job} relabel_configs (fixed values)",
                )
                if self.files:
                    self.report.differs(
                        self.file,
                        self.docker_line,
                        "relabel_configs",
                        f"the fixed labels {sorted(sel.static_labels)} of the Docker scrape "
                        "config are logs.pipeline.static_labels, which files get too "
                        "(their own labels take precedence)",
                    )
        stages = self._pipeline_stages()
        if stages:
            pipeline["stages"] = [s.stage for s in stages]
            for k, stage in enumerate(stages):
                self.comment(("logs", "pipeline", "stages", k), f"from {stage.origin}")
        if pipeline:
            logs["pipeline"] = pipeline
        if self.loki:
            logs["loki"] = self.loki
        data["logs"] = logs
        return data

    def _pipeline_stages(self) -> list[TranslatedStage]:
        stages = list(self.docker_stages)
        if stages and self.files:
            guarded: list[TranslatedStage] = []
            for stage in stages:
                narrowed = with_match(stage.type_name, stage.options, DOCKER_ONLY)
                problem = self.checker.problem(stage.type_name, narrowed[stage.type_name])
                if problem is not None:
                    self.report.omitted(
                        self.file,
                        self.docker_line,
                        stage.origin,
                        f"nexo-agent refuses it for containers only: {problem}",
                    )
                    continue
                guarded.append(TranslatedStage(narrowed, stage.origin))
            stages = guarded
            self.report.differs(
                self.file,
                self.docker_line,
                f"{self.docker_job} pipeline_stages",
                f"the Docker scrape config's stages are logs.pipeline.stages, which nexo also "
                f"runs on logs.files: each is given match {DOCKER_ONLY} (only container "
                "entries have that label; a file line with a JSON 'container' field would "
                "match it too)",
            )
        if self.instance_limit is not None:
            stages.insert(0, self.instance_limit)
        return self.leading_stages + stages

    def _header(self) -> list[str]:
        omitted = self.report.of_kind("omitted")
        header = [
            f"nexo-agent config converted from the Promtail config {self.file} on "
            f"{self.today.isoformat()} by `nexo-agent convert promtail`.",
            "Each section says which Promtail lines it came from. Check it with:",
            "  nexo-agent --config THIS_FILE --check-config",
            "nexo-agent adds labels Promtail did not send unless told to: host, container, "
            "compose_project, compose_service, service_name, stream, level",
            "(logs.pipeline.labels), and its own host and container metrics on /metrics.",
            *self.header_notes,
        ]
        if omitted:
            header.append(f"NOT TRANSLATED ({len(omitted)}; see the report for details):")
            header.extend(f"  {f.render()}" for f in omitted)
        return header


def _size(value: Any) -> int | str:
    from agent.config import parse_size

    try:
        parse_size(value)
    except ValueError:
        raise Untranslatable(f"{value!r} is not a size in bytes") from None
    return value if isinstance(value, int) else str(value)


def convert_text(text: str, file: str, today: datetime.date | None = None) -> Conversion:
    """Convert a Promtail config given as text. Raises ``yaml.YAMLError`` for broken YAML
    and :class:`Untranslatable` when it is not a Promtail config at all."""
    from agent.convert.yaml_io import load_with_lines

    doc = load_with_lines(text)
    conversion = PromtailConverter(file, today).convert(doc)
    env_line = next((n for n, line in enumerate(text.splitlines(), 1) if "${" in line), 0)
    if env_line:
        conversion.report.note(
            file,
            env_line,
            "",
            "${VAR} references are kept: nexo-agent always expands ${VAR} and "
            "${VAR:-default} from its environment (Promtail only with -config.expand-env)",
        )
    return conversion
