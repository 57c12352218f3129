"""Promtail's Docker discovery (``docker_sd_configs`` + ``relabel_configs``) -> nexo-agent's
``docker.include``/``exclude``, ``logs.pipeline.docker_labels`` and static labels.

Promtail sees each container as a target labelled ``__meta_docker_container_name``
(``/name``, with Docker's leading slash), ``__meta_docker_container_label_<label>`` (the
Docker label's name with every character outside ``[a-zA-Z0-9_]`` made ``_``) and
``__meta_docker_container_log_stream``; relabel rules keep or drop targets and copy those
into Loki labels. nexo-agent selects containers by name glob and exact label key/value,
names the container, its compose project/service and the stream itself, and promotes other
Docker labels by name. Rules are translated when they mean exactly that, else reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.config import DOCKER_HOST_SCHEMES
from agent.convert.globs import ANY, STAR, Glob, fnmatch_text, is_literal, literal, regex_globs
from agent.convert.promtail_stages import Untranslatable, go_duration
from agent.convert.report import Report
from agent.convert.yaml_io import line_of

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
NAME_META = "__meta_docker_container_name"
LABEL_META = "__meta_docker_container_label_"
STREAM_META = "__meta_docker_container_log_stream"
ID_META = "__meta_docker_container_id"

# Docker labels seen everywhere, by their Promtail meta-label spelling: the real key is
# needed to select containers by label (nexo compares keys exactly).
_KNOWN_LABELS = [
    "com.docker.compose.project",
    "com.docker.compose.service",
    "com.docker.compose.container-number",
    "com.docker.compose.oneoff",
    "com.docker.compose.version",
    "com.docker.compose.config-hash",
    "com.docker.compose.project.working_dir",
    "com.docker.compose.project.config_files",
    "com.docker.compose.depends_on",
    "com.docker.compose.image",
    "com.docker.stack.namespace",
    "com.docker.swarm.service.name",
    "com.docker.swarm.task.name",
    "com.docker.swarm.node.id",
    "org.opencontainers.image.title",
    "org.opencontainers.image.version",
    "org.opencontainers.image.source",
    "org.opencontainers.image.revision",
    "org.opencontainers.image.vendor",
    "org.opencontainers.image.created",
]
# Labels nexo-agent sets itself from these Docker labels (agent/logs/discovery/targets.py).
_BUILTIN_FROM_LABEL = {
    "com_docker_compose_project": "compose_project",
    "com_docker_compose_service": "compose_service",
}
_WHOLE_VALUE = {"(.*)", "^(.*)$", "(.+)", "^(.+)$", "(.*?)", "(.+?)"}
_NAME_WITHOUT_SLASH = {"/(.*)", "/(.+)", "/?(.*)", "/?(.+)", "\\/(.*)", "\\/(.+)", "/(.*?)"}
_FIRST_GROUP = {"$1", "${1}"}


def _sanitize(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in name)


_KNOWN_BY_META = {_sanitize(name): name for name in _KNOWN_LABELS}


def docker_label_key(meta_suffix: str) -> str | None:
    """The Docker label behind ``__meta_docker_container_label_<meta_suffix>``, when known:
    a name without ``_`` is itself; otherwise ``_`` may have been ``.``, ``-`` or ``_``."""
    if "_" not in meta_suffix:
        return meta_suffix
    return _KNOWN_BY_META.get(meta_suffix)


@dataclass
class DockerSelection:
    """What the docker scrape config turns into."""

    host: str | None = None
    resync_interval: str | None = None
    include: dict[str, list[str]] = field(default_factory=dict)
    exclude: dict[str, list[str]] = field(default_factory=dict)
    docker_labels: list[str] = field(default_factory=list)
    static_labels: dict[str, str] = field(default_factory=dict)
    # Which rule filled each include category: a second one would be ANDed by Promtail
    # but ORed within a nexo category.
    include_from: dict[str, str] = field(default_factory=dict)


class DockerTranslator:
    def __init__(self, file: str, report: Report) -> None:
        self.file = file
        self.report = report
        self.selection = DockerSelection()

    # ------------------------------------------------------------- docker_sd_configs

    def sd_configs(self, configs: Any, where: str, line: int) -> None:
        if not isinstance(configs, list) or not configs or not isinstance(configs[0], dict):
            self.report.omitted(self.file, line, where, "expected a list of Docker daemons")
            return
        for i in range(1, len(configs)):
            self.report.omitted(
                self.file,
                line_of(configs, i, line),
                f"{where}[{i}]",
                "nexo-agent reads one Docker daemon: only docker_sd_configs[0] is translated",
            )
        sd = configs[0]
        at = f"{where}[0]"
        for key, value in sd.items():
            key_line = line_of(sd, key, line)
            try:
                self._sd_option(str(key), value, f"{at}.{key}", key_line)
            except Untranslatable as exc:
                self.report.omitted(self.file, key_line, f"{at}.{key}", str(exc))

    def _sd_option(self, key: str, value: Any, at: str, line: int) -> None:
        if key == "host":
            if not isinstance(value, str) or not value.startswith(DOCKER_HOST_SCHEMES):
                raise Untranslatable(
                    f"{value!r} is not a Docker endpoint (unix://, tcp:// or http(s)://)"
                )
            if value != DEFAULT_DOCKER_HOST:
                self.selection.host = value
        elif key == "refresh_interval":
            self.selection.resync_interval = go_duration(value)
            self.report.note(
                self.file,
                line,
                at,
                "docker.resync_interval: nexo-agent follows Docker's events as they happen; "
                "the periodic re-list is only its safety net",
            )
        elif key == "filters":
            self._filters(value, at, line)
        elif key in ("port", "host_networking_host", "match_first_network"):
            self.report.note(
                self.file, line, at, "ignored: it only shapes Prometheus scrape addresses"
            )
        elif key == "follow_redirects":
            pass
        else:
            raise Untranslatable(
                "nexo-agent talks to Docker through docker.host only (no proxy, TLS or "
                "HTTP authentication options)"
            )

    def _filters(self, filters: Any, where: str, line: int) -> None:
        if not isinstance(filters, list):
            raise Untranslatable("expected a list of {name, values}")
        for i, flt in enumerate(filters):
            at = f"{where}[{i}]"
            flt_line = line_of(filters, i, line)
            try:
                self._filter(flt, at, flt_line)
            except Untranslatable as exc:
                self.report.omitted(self.file, flt_line, at, str(exc))

    def _filter(self, flt: Any, at: str, line: int) -> None:
        if not isinstance(flt, dict) or not isinstance(flt.get("values"), list):
            raise Untranslatable("expected {name, values: [...]}")
        name = str(flt.get("name", ""))
        values = [str(v) for v in flt["values"]]
        if name == "name":
            # Docker matches each value as an unanchored regex against "/<name>".
            names: list[str] = []
            for value in values:
                regex = value.removeprefix("^") if value.startswith("^") else f".*(?:{value})"
                regex = regex[:-1] if regex.endswith("$") else f"{regex}.*"
                globs = container_name_globs(regex)
                if globs is None:
                    raise Untranslatable(
                        f"name filter {value!r}: only literal names, '.', '.*' and "
                        "alternatives translate into docker.include.names globs"
                    )
                names.extend(globs)
            self._include("names", names, at, line)
        elif name == "label":
            if len(values) != 1:
                raise Untranslatable(
                    "Docker requires every label filter to match; nexo's docker.include.labels "
                    "needs any one of them: only a single label filter translates"
                )
            self._include("labels", values, at, line)
        elif name == "ancestor":
            self._include("images", values, at, line)
            self.report.differs(
                self.file,
                line,
                at,
                "docker.include.images matches the image a container runs; Docker's ancestor "
                "filter also matches images built FROM it",
            )
        elif name == "status" and values == ["running"]:
            self.report.note(
                self.file,
                line,
                at,
                "nexo-agent also reads what is left in a stopped container's log",
            )
        else:
            raise Untranslatable(f"Docker filter {name!r} has no nexo-agent equivalent")

    def _include(self, category: str, patterns: list[str], at: str, line: int) -> None:
        if category in self.selection.include_from:
            raise Untranslatable(
                f"{self.selection.include_from[category]} already selects by {category}; "
                f"Promtail requires both, nexo's docker.include.{category} would take either"
            )
        self.selection.include_from[category] = at
        self.selection.include.setdefault(category, []).extend(patterns)

    def _exclude(self, category: str, patterns: list[str], line: int) -> None:
        bucket = self.selection.exclude.setdefault(category, [])
        bucket.extend(p for p in patterns if p not in bucket)

    # -------------------------------------------------------------- relabel_configs

    def relabel(self, rules: Any, where: str, line: int) -> None:
        if rules is None:
            return
        if not isinstance(rules, list):
            self.report.omitted(self.file, line, where, "expected a list of rules")
            return
        for i, rule in enumerate(rules):
            at = f"{where}[{i}]"
            rule_line = line_of(rules, i, line)
            try:
                if not isinstance(rule, dict):
                    raise Untranslatable("a rule is a mapping")
                self._rule(rule, at, rule_line)
            except Untranslatable as exc:
                self.report.omitted(self.file, rule_line, at, str(exc))

    def _rule(self, rule: dict[Any, Any], at: str, line: int) -> None:
        action = str(rule.get("action") or "replace").lower()
        sources = rule.get("source_labels") or []
        if isinstance(sources, str):
            sources = [sources]
        if not isinstance(sources, list):
            raise Untranslatable(f"source_labels {sources!r} is not a list of label names")
        regex = str(rule.get("regex", "(.*)"))
        if action in ("keep", "drop"):
            if len(sources) != 1:
                raise Untranslatable(f"{action} on {sources!r}: only one source label translates")
            self._keep_drop(action, str(sources[0]), regex, at, line)
        elif action == "replace":
            target = rule.get("target_label")
            if not target:
                raise Untranslatable("replace without target_label")
            replacement = str(rule.get("replacement", "$1"))
            self._replace([str(s) for s in sources], regex, str(target), replacement, at, line)
        elif action in ("labeldrop", "labelkeep") and regex.startswith("__"):
            self.report.note(
                self.file, line, at, "ignored: labels starting with __ are never sent anyway"
            )
        elif action == "labelmap":
            raise Untranslatable(
                "labelmap: nexo promotes Docker labels by name only "
                "(logs.pipeline.docker_labels); list the ones you need there"
            )
        else:
            raise Untranslatable(f"relabel action {action!r} has no nexo-agent equivalent")

    def _keep_drop(self, action: str, source: str, regex: str, at: str, line: int) -> None:
        if source == NAME_META:
            globs = container_name_globs(regex)
            if globs is None:
                raise Untranslatable(
                    f"regex {regex!r} on the container name: only literal text, '.', '.*', "
                    "'.+' and alternatives translate into name globs"
                )
            if not globs:
                raise Untranslatable(
                    f"regex {regex!r} never matches: Promtail sees container names with a "
                    "leading '/'"
                )
            if globs == ["*"]:
                self._match_everything(action, at, line)
            elif action == "keep":
                self._include("names", globs, at, line)
            else:
                self._exclude("names", globs, line)
        elif source.startswith(LABEL_META):
            suffix = source[len(LABEL_META) :]
            key = docker_label_key(suffix)
            if key is None:
                raise Untranslatable(
                    f"nexo selects containers by the Docker label's real key, and "
                    f"{suffix!r} could stand for several ('.', '-' and '_' all became '_'); "
                    f"write it into docker.{'include' if action == 'keep' else 'exclude'}"
                    ".labels as key=value"
                )
            parsed = regex_globs(regex)
            if parsed == [(STAR,)]:
                self._match_everything(action, at, line)
                return
            if parsed == [(ANY, STAR)]:
                patterns = [key]  # any non-empty value: the label is there
            elif parsed and all(is_literal(g) and g for g in parsed):
                patterns = [f"{key}={literal(g)}" for g in parsed]
            else:
                raise Untranslatable(
                    f"regex {regex!r} on label {key!r}: nexo compares label values exactly; "
                    "only literal values and alternatives of them translate"
                )
            if action == "keep":
                self._include("labels", patterns, at, line)
            else:
                self._exclude("labels", patterns, line)
        elif source == STREAM_META:
            raise Untranslatable(
                f"{action} by stream: nexo-agent reads stdout and stderr alike; drop one "
                "with a stage: drop: {match: '{stream=\"stderr\"}'}"
            )
        else:
            raise Untranslatable(f"{action} on {source!r} has no nexo-agent equivalent")

    def _match_everything(self, action: str, at: str, line: int) -> None:
        if action == "drop":
            raise Untranslatable("drops every container")
        self.report.note(self.file, line, at, "ignored: keeps every container")

    def _replace(
        self, sources: list[str], regex: str, target: str, replacement: str, at: str, line: int
    ) -> None:
        if target.startswith("__"):
            raise Untranslatable(f"target {target!r}: nexo-agent has no internal labels")
        if not sources:
            if "$" in replacement:
                raise Untranslatable("a replacement with $ references but no source labels")
            parsed = regex_globs(regex)
            if parsed is None:
                raise Untranslatable(f"regex {regex!r} on no source labels")
            if not any(all(t == STAR for t in g) for g in parsed):
                self.report.note(
                    self.file, line, at, "ignored: its regex never matches the empty source"
                )
                return
            self.selection.static_labels[target] = replacement
            return
        if len(sources) != 1:
            raise Untranslatable(f"several source labels {sources!r} joined into one value")
        source = sources[0]
        copies = replacement in _FIRST_GROUP
        if source == NAME_META:
            if copies and regex.removeprefix("^").removesuffix("$") in _NAME_WITHOUT_SLASH:
                if target != "container":
                    raise Untranslatable(
                        f"the container name as {target!r}: nexo-agent sends it as "
                        "'container' and cannot rename it"
                    )
                self._builtin(target, at, line)
                return
            if copies and regex in _WHOLE_VALUE and target == "container":
                self._builtin(target, at, line)
                self.report.differs(
                    self.file, line, at, "nexo's container label has no leading '/'"
                )
                return
            raise Untranslatable(
                f"regex {regex!r} / replacement {replacement!r} on the container name: only "
                "the plain name (regex '/(.*)') translates, as label 'container'"
            )
        if not copies or regex not in _WHOLE_VALUE:
            raise Untranslatable(
                f"regex {regex!r} / replacement {replacement!r}: only copying the whole "
                "value translates"
            )
        if source.startswith(LABEL_META):
            suffix = source[len(LABEL_META) :]
            builtin = _BUILTIN_FROM_LABEL.get(suffix)
            if builtin == target:
                self._builtin(target, at, line)
            elif suffix == "com_docker_compose_service" and target == "service_name":
                self._builtin(target, at, line)
                self.report.differs(
                    self.file,
                    line,
                    at,
                    "nexo's service_name is the compose service, else the container's "
                    "'service' or 'app' label, else its name (never empty)",
                )
            elif target == suffix:
                if suffix not in self.selection.docker_labels:
                    self.selection.docker_labels.append(suffix)
            else:
                raise Untranslatable(
                    f"nexo promotes a Docker label under its own (sanitised) name {suffix!r} "
                    f"(logs.pipeline.docker_labels) and cannot rename it to {target!r}"
                    + (f"; it already sends it as {builtin!r}" if builtin else "")
                )
        elif source == STREAM_META and target == "stream":
            self._builtin(target, at, line)
        elif source == ID_META:
            raise Untranslatable(
                "the container ID as a label: unbounded; nexo-agent sends it as structured "
                "metadata (container_id)"
            )
        else:
            raise Untranslatable(f"{source!r} as label {target!r} has no nexo-agent equivalent")

    def _builtin(self, target: str, at: str, line: int) -> None:
        self.report.note(
            self.file,
            line,
            at,
            f"nexo-agent sets the {target!r} label itself (logs.pipeline.labels)",
        )


def container_name_globs(regex: str) -> list[str] | None:
    """fnmatch globs for nexo's container names (no leading ``/``) equivalent to ``regex``
    anchored on Promtail's ``/name``; ``[]`` when it can never match, ``None`` when the
    regex is not simple enough."""
    parsed = regex_globs(regex)
    if parsed is None:
        return None
    out: list[str] = []
    for glob in parsed:
        rest: Glob
        if not glob:
            continue
        if glob[0] in ("/", ANY):
            rest = glob[1:]  # the leading slash, literally or as any one character
        elif glob[0] == STAR:
            rest = glob
        else:
            continue  # needs the name to start with something other than '/'
        if rest or glob[0] == STAR:
            text = fnmatch_text(rest)
            if text and text not in out:
                out.append(text)
    return out
