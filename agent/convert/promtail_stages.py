"""Promtail ``pipeline_stages`` -> nexo-agent stages, one stage at a time.

nexo-agent's stages are Promtail's, in the same list-of-one-key-mappings form, with the
few differences its stage modules document (a ``labels`` map sits under ``values:``,
``sampling`` is ``sample``, ``max_wait_time`` is ``max_wait``). A ``match`` block has no
nesting in nexo-agent: every stage takes its own ``match`` selector, so the nested stages
are flattened, each given the block's selector. Every translated stage is built with
nexo-agent's own stage code before it is written, so a translation nexo-agent would refuse
at load is reported instead of written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from agent.convert.report import Report
from agent.convert.yaml_io import line_of

TargetKind = Literal["docker", "file"]
StageDict = dict[str, dict[str, Any]]

# Loki's decolorize (pkg/logql/log/fmt.go ansiPattern, from acarl005/stripansi), in RE2.
ANSI_PATTERN = (
    r"[\x{1B}\x{9B}][[\]()#;?]*(?:(?:(?:[a-zA-Z\d]*(?:;[a-zA-Z\d]*)*)?\x{07})"
    r"|(?:(?:\d{1,4}(?:;\d{0,4})*)?[\dA-PRZcf-ntqry=><~]))"
)

# Promtail's docker and cri stages are wrappers around these stages (their docs say so).
_DOCKER_WRAPPER: list[tuple[str, dict[str, Any]]] = [
    ("json", {"expressions": {"output": "log", "stream": "stream", "timestamp": "time"}}),
    ("labels", {"values": {"stream": "stream"}}),
    ("timestamp", {"source": "timestamp", "format": "RFC3339Nano"}),
    ("output", {"source": "output"}),
]
_CRI_WRAPPER: list[tuple[str, dict[str, Any]]] = [
    (
        "regex",
        {
            "expression": r"^(?s)(?P<time>\S+?) (?P<stream>stdout|stderr) (?P<flags>\S+?) "
            r"(?P<content>.*)$"
        },
    ),
    ("labels", {"values": {"stream": "stream"}}),
    ("timestamp", {"source": "time", "format": "RFC3339Nano"}),
    ("output", {"source": "content"}),
]

_NO_EQUIVALENT = {
    "tenant": "nexo-agent sends every entry to one tenant (logs.loki.tenant_id); "
    "per-entry tenants are not supported",
    "pack": "nexo-agent has no pack stage (labels folded into a JSON line)",
    "geoip": "nexo-agent does no GeoIP lookups",
    "eventlogmessage": "nexo-agent reads no Windows event logs",
}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SIMPLE_TEMPLATE = re.compile(r"\{\{-?\s*\.([A-Za-z_][A-Za-z0-9_]*)\s*-?\}\}")
_SELECTOR_NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_.]*)\s*(?:=~|!~|!=|=)")
_LINE = "\0line"  # marker: a stage changes the line (for match line filters)


class Untranslatable(Exception):
    """This input item cannot be expressed in nexo-agent's config (message says why)."""


@dataclass
class TranslatedStage:
    stage: StageDict
    origin: str  # where it came from, for the output's comment

    @property
    def type_name(self) -> str:
        return next(iter(self.stage))

    @property
    def options(self) -> dict[str, Any]:
        return self.stage[self.type_name]


@dataclass
class StageChecker:
    """Builds stages with nexo-agent's own code; remembers stage types this build lacks."""

    unavailable: set[str] = field(default_factory=set)

    def problem(self, type_name: str, options: dict[str, Any]) -> str | None:
        """Why nexo-agent would refuse this stage, or ``None`` (also when it cannot tell)."""
        from agent.logs.stages import parse_stages

        try:
            parse_stages([{type_name: options}], where="")
        except ImportError:
            self.unavailable.add(type_name)
        except ValueError as exc:
            return str(exc).removeprefix(f"[0].{type_name}").lstrip(".: ") or str(exc)
        return None


def clean(value: Any) -> Any:
    """Plain dicts/lists without ``None`` values: nexo's loader drops ``key: null``."""
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


def split_selector(text: str) -> tuple[str, str]:
    """``'{a="1"} |= "x"'`` -> (``'a="1"'``, ``'|= "x"'``); raises ``ValueError``."""
    s = text.strip()
    if not s.startswith("{"):
        return "", s
    quote = ""
    i = 1
    while i < len(s):
        ch = s[i]
        if quote:
            if ch == "\\" and quote == '"':
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in ('"', "`"):
            quote = ch
        elif ch == "}":
            return s[1:i].strip(), s[i + 1 :].strip()
        i += 1
    raise ValueError(f"selector {text!r} has no closing '}}'")


def combine_selectors(outer: str | None, inner: str | None) -> str | None:
    """Both selectors at once: label matchers joined, line filters one after the other."""
    if not outer:
        return inner
    if not inner:
        return outer
    outer_m, outer_f = split_selector(outer)
    inner_m, inner_f = split_selector(inner)
    matchers = ", ".join(m for m in (outer_m, inner_m) if m)
    filters = " ".join(f for f in (outer_f, inner_f) if f)
    return " ".join(p for p in ((f"{{{matchers}}}" if matchers else ""), filters) if p)


def with_match(type_name: str, options: dict[str, Any], selector: str | None) -> StageDict:
    """The stage with ``match`` (first, for the reader) narrowed by ``selector``."""
    rest = {k: v for k, v in options.items() if k != "match"}
    combined = combine_selectors(selector, options.get("match"))
    return {type_name: ({"match": combined, **rest} if combined else rest)}


def selector_names(selector: str) -> set[str]:
    """Label/field names a selector compares, plus ``_LINE`` when it filters the line."""
    try:
        matchers, filters = split_selector(selector)
    except ValueError:
        return set()
    names = set(_SELECTOR_NAME.findall(matchers))
    if filters:
        names.add(_LINE)
    return names


def changed_names(type_name: str, options: dict[str, Any]) -> set[str]:
    """What a stage may change that a later selector could look at (labels, fields, line)."""
    if type_name in ("labels", "static_labels"):
        return set(options.get("values", {}))
    if type_name in ("label_drop",):
        return set(options.get("names", []))
    if type_name == "label_allow":
        return {"*"}
    if type_name == "json":
        return set(options.get("expressions") or {"*"})
    if type_name == "logfmt":
        return set(options.get("mapping") or {"*"})
    if type_name == "regex":
        return set(_group_names(options.get("expression", ""))) or {"*"}
    if type_name == "output":
        return {_LINE}
    if type_name == "replace":
        groups = set(_group_names(options.get("expression", "")))
        return groups | ({options["source"]} if options.get("source") else {_LINE})
    if type_name == "multiline":
        return {_LINE}
    return set()


def _capture_groups(expression: str) -> int | None:
    """How many capture groups RE2 finds (``None``: invalid, left to the stage check)."""
    import re2

    try:
        return int(re2.compile(expression).groups)
    except re2.error:
        return None


def _group_names(expression: str) -> list[str]:
    return re.findall(r"\(\?P?<([A-Za-z_][A-Za-z0-9_]*)>", expression)


def mapping(value: Any, what: str = "") -> dict[Any, Any]:
    """``value`` as a mapping (``None``: empty); ``Untranslatable`` for anything else."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Untranslatable(f"{what or 'this'} must be a mapping, got {value!r}")
    return value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def go_duration(value: Any) -> str:
    """A Go/Prometheus duration (``1h30m``, ``500ms``, ``2d``) as nexo's duration text.

    Raises ``Untranslatable`` for anything else (a bare number is nanoseconds in Go's YAML
    and seconds in nexo's: too easy to get wrong to guess)."""
    from agent.config import parse_duration

    if not isinstance(value, str):
        raise Untranslatable(f"{value!r} is not a duration (write it as e.g. 5s)")
    text = value.strip()
    try:
        parse_duration(text)
        if re.fullmatch(r"\d+(\.\d+)?(ms|s|m|h|d)", text):
            return text
    except ValueError:
        pass
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d|w|y)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        if text == "0":
            return "0s"
        raise Untranslatable(f"{value!r} is not a duration (write it as e.g. 5s)")
    units = {
        "ns": 1e-9,
        "us": 1e-6,
        "µs": 1e-6,
        "ms": 1e-3,
        "s": 1.0,
        "m": 60.0,
        "h": 3600.0,
        "d": 86400.0,
        "w": 604800.0,
        "y": 31536000.0,
    }
    seconds = sum(float(n) * units[u] for n, u in parts)
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    millis = seconds * 1000
    if abs(millis - round(millis)) < 1e-9:
        return f"{round(millis)}ms"
    return repr(seconds)


class StageTranslator:
    """Translates one scrape config's ``pipeline_stages`` for one kind of target."""

    def __init__(
        self,
        file: str,
        report: Report,
        checker: StageChecker,
        kind: TargetKind,
        metric_labels: list[str],
    ) -> None:
        self.file = file
        self.report = report
        self.checker = checker
        self.kind = kind
        # Labels a custom metric gets: the target's steady ones, plus those that labels
        # stages set on the way (Promtail uses every label the entry has).
        self.metric_labels = list(metric_labels)
        self._docker_noted = False
        self._handlers: dict[str, Callable[[Any, str, int], list[tuple[str, dict[str, Any]]]]]
        self._handlers = {
            "docker": self._docker,
            "cri": self._cri,
            "json": self._json,
            "logfmt": self._logfmt,
            "regex": self._regex,
            "replace": self._replace,
            "labels": self._values("labels"),
            "structured_metadata": self._values("structured_metadata"),
            "non_indexed_labels": self._values("structured_metadata"),
            "static_labels": self._static_labels,
            "labeldrop": self._names("label_drop"),
            "labelallow": self._names("label_allow"),
            "timestamp": self._timestamp,
            "output": self._output,
            "drop": self._drop,
            "multiline": self._multiline,
            "limit": self._limit,
            "sampling": self._sampling,
            "metrics": self._metrics,
            "template": self._template,
            "luhn": self._luhn,
            "decolorize": self._decolorize,
        }

    # ------------------------------------------------------------------ pipeline

    def translate(self, stages: Any, where: str, line: int) -> list[TranslatedStage]:
        if stages is None:
            return []
        if not isinstance(stages, list):
            self.report.omitted(self.file, line, where, "expected a list of stages")
            return []
        return self._pipeline(stages, where, None)

    def _pipeline(
        self, stages: list[Any], where: str, selector: str | None
    ) -> list[TranslatedStage]:
        out: list[TranslatedStage] = []
        for i, item in enumerate(stages):
            at = f"{where}[{i}]"
            line = line_of(stages, i)
            if not isinstance(item, dict) or len(item) != 1:
                self.report.omitted(
                    self.file, line, at, "a stage is a mapping with one key, its type"
                )
                continue
            ((name, options),) = item.items()
            at = f"{at}.{name}"
            if name == "match":
                out.extend(self._match(options, at, line, selector))
                continue
            handler = self._handlers.get(str(name))
            if handler is None:
                why = _NO_EQUIVALENT.get(str(name), "not a Promtail stage nexo-agent knows")
                self.report.omitted(self.file, line, at, why)
                continue
            try:
                produced = handler(options, at, line)
            except Untranslatable as exc:
                self.report.omitted(self.file, line, at, str(exc))
                continue
            for type_name, opts in produced:
                stage = self.add(type_name, opts, selector, at, line)
                if stage is not None:
                    out.append(stage)
        return out

    def add(
        self, type_name: str, options: dict[str, Any], selector: str | None, at: str, line: int
    ) -> TranslatedStage | None:
        """Check one nexo stage and track what it labels; ``None`` (reported) if refused."""
        stage = with_match(type_name, clean(options), selector)
        problem = self.checker.problem(type_name, stage[type_name])
        if problem is not None:
            self.report.omitted(
                self.file, line, at, f"nexo-agent refuses the translation: {problem}"
            )
            return None
        if type_name in ("labels", "static_labels"):
            for name in stage[type_name].get("values", {}):
                if name not in self.metric_labels:
                    self.metric_labels.append(name)
        return TranslatedStage(stage, f"{at} (line {line})")

    def _match(self, options: Any, at: str, line: int, outer: str | None) -> list[TranslatedStage]:
        try:
            opts = mapping(options, "match")
            selector = opts.get("selector")
            if not isinstance(selector, str) or not selector.strip():
                raise Untranslatable("match needs a selector")
            combined = combine_selectors(outer, selector)
        except (Untranslatable, ValueError) as exc:
            self.report.omitted(self.file, line, at, str(exc))
            return []
        known = {"selector", "stages", "action", "drop_counter_reason", "pipeline_name"}
        self._ignored(opts, known, at, line)
        if "pipeline_name" in opts:
            self.report.note(
                self.file,
                line,
                f"{at}.pipeline_name",
                "ignored: it only names Promtail's pipeline_duration_seconds histogram",
            )
        action = str(opts.get("action") or "keep")
        if action == "drop":
            reason = opts.get("drop_counter_reason") or "match_stage"
            stage = self.add("drop", {"drop_counter_reason": _text(reason)}, combined, at, line)
            return [stage] if stage is not None else []
        if action != "keep":
            self.report.omitted(self.file, line, at, f"unknown match action {action!r}")
            return []
        nested = opts.get("stages")
        if not isinstance(nested, list) or not nested:
            self.report.omitted(self.file, line, at, "match with action keep needs stages")
            return []
        stages = self._pipeline(nested, f"{at}.stages", combined)
        looked_at = selector_names(selector)
        for stage in stages[:-1]:
            touched = changed_names(stage.type_name, stage.options)
            if "*" in touched or touched & looked_at:
                self.report.differs(
                    self.file,
                    line,
                    at,
                    "nexo-agent has no nested stages: each stage inside is given the selector "
                    f"{selector!r} and tests it anew, and {stage.origin} changes what it "
                    "tests, so the stages after it may see a different answer than Promtail's "
                    "single test",
                )
                break
        return stages

    def _ignored(self, opts: dict[Any, Any], known: set[str], at: str, line: int) -> None:
        for key in opts:
            if key not in known:
                self.report.note(
                    self.file,
                    line_of(opts, key, line),
                    f"{at}.{key}",
                    "ignored: not an option of this Promtail stage (Promtail ignores it too)",
                )

    # -------------------------------------------------------------------- stages

    def _docker(self, options: Any, at: str, line: int) -> list[tuple[str, dict[str, Any]]]:
        if self.kind == "file":
            self.report.note(
                self.file,
                line,
                at,
                "expanded into the json, labels, timestamp and output stages it stands for "
                "(Promtail's docs); nexo-agent's Docker discovery (docker_sd) decodes "
                "json-file natively and would not need it",
            )
            return [(t, dict(o)) for t, o in _DOCKER_WRAPPER]
        if not self._docker_noted:
            self._docker_noted = True
            self.report.note(
                self.file,
                line,
                at,
                "dropped: nexo-agent decodes Docker's json-file records itself (line, "
                "stream, timestamp) before any stage runs",
            )
        return []

    def _cri(self, options: Any, at: str, line: int) -> list[tuple[str, dict[str, Any]]]:
        if self.kind == "docker":
            raise Untranslatable(
                "CRI log lines: nexo-agent reads Docker json-file logs, which it decodes itself"
            )
        self.report.differs(
            self.file,
            line,
            at,
            "expanded into the regex, labels, timestamp and output stages it stands for; "
            "CRI partial lines (flag P) are not joined as Promtail's cri stage does",
        )
        return [(t, dict(o)) for t, o in _CRI_WRAPPER]

    def _json(self, options: Any, at: str, line: int) -> list[tuple[str, dict[str, Any]]]:
        opts = mapping(options, "json")
        self._ignored(opts, {"expressions", "source", "drop_malformed"}, at, line)
        expressions = mapping(opts.get("expressions"), "expressions")
        if not expressions:
            raise Untranslatable("json needs expressions (Promtail refuses it without)")
        out: dict[str, Any] = {
            "expressions": {
                str(name): (
                    _text(path)
                    if path not in (None, "")
                    else (str(name) if _IDENTIFIER.fullmatch(str(name)) else json.dumps(str(name)))
                )
                for name, path in expressions.items()
            }
        }
        if opts.get("source") is not None:
            out["source"] = _text(opts["source"])
        if opts.get("drop_malformed") is not None:
            out["drop_malformed"] = bool(opts["drop_malformed"])
        return [("json", out)]

    def _logfmt(self, options: Any, at: str, line: int) -> list[tuple[str, dict[str, Any]]]:
        opts = mapping(options, "logfmt")
        self._ignored(opts, {"mapping", "source"}, at, line)
        keys = mapping(opts.get("mapping"), "mapping")
        if not keys:
            raise Untranslatable("logfmt needs a mapping (Promtail refuses it without)")
        out: dict[str, Any] = {
            "mapping": {
                str(k): (_text(v) if v not in (None, "") else str(k)) for k, v in keys.items()
            }
        }
        if opts.get("source") is not None:
            out["source"] = _text(opts["source"])
        return [("logfmt", out)]

    def _regex(self, options: Any, at: str, line: int) -> list[tuple[str, dict[str, Any]]]:
        opts = mapping(options, "regex")
        self._ignored(opts, {"expression", "source"}, at, line)
        if not isinstance(opts.get("expression"), str):
            raise Untranslatable("regex needs an expression")
        out: dict[str, Any] = {"expression": opts["expression"]}
        if opts.get("source") is not None:
            out["source"] = _text(opts["source"])
        return [("regex", out)]

    def _replace(self, options: Any, at: str, line: int) -> list[tuple[str, dict[str, Any]]]:
        opts = mapping(options, "replace")
        self._ignored(opts, {"expression", "source", "replace"}, at, line)
        expression = opts.get("expression")
        if not isinstance(expression, str):
            raise Untranslatable("replace needs an expression")
        if _capture_groups(expression) == 0:
            self.report.note(
                self.file,
                line,
                at,
                "dropped: the expression has no capture group, so Promtail's replace "
                "changes nothing",
            )
            return []
        out: dict[str, Any] = {
            "expression": expression,
            "replace": _text(opts.get("replace") or ""),
        }
        if opts.get("source") is not None:
            out["source"] = _text(opts["source"])
        return [("replace", out)]

    def _values(
        self, nexo_type: str
    ) -> Callable[[Any, str, int], list[tuple[str, dict[str, Any]]]]:
        def translate(options: Any, at: str, line: int) -> list[tuple[str, dict[str, Any]]]:
            values = mapping(options, nexo_type)
            if not values:
                raise Untranslatable("no names given")
            return [
                (
                    nexo_type,
                    {
                        "values": {
                            str(k): (_text(v) if v not in (None, "") else str(k))
                            for k, v in values.items()
                        }
                    },
                )
            ]

        return translate

    def _static_labels(self, options: Any, at: str, line: int) -> list[tuple[str, dict[str, Any]]]:
        values = mapping(options, "static_labels")
        kept = {str(k): _text(v) for k, v in values.items() if v is not None}
        for key in values:
            if values[key] is None:
                self.report.note(
                    self.file,
                    line_of(values, key, line),
                    f"{at}.{key}",
                    "left out: no value (Promtail sets nothing for it either)",
                )
        return [("static_labels", {"values": kept})] if kept else []

    def _names(self, nexo_type: str) -> Callable[[Any, str, int], list[tuple[str, dict[str, Any]]]]:
        def translate(options: Any, at: str, line: int) -> list[tuple[str, dict[str, Any]]]:
            if not isinstance(options, list) or not options:
                raise Untranslatable("expected a list of label names")
            return [(nexo_type, {"names": [_text(n) for n in options]})]

        return translate

    def _timestamp(self, options: Any, at: str, line: int) -> list[tuple[str, dict[str, Any]]]:
        opts = mapping(options, "timestamp")
        known = {"source", "format", "fallback_formats", "location", "action_on_failure"}
        self._ignored(opts, known, at, line)
        if not opts.get("source") or not opts.get("format"):
            raise Untranslatable("timestamp needs source and format")

        # Format names (RFC3339, UnixMs, Go's named layouts) and Go layouts mean the same
        # to nexo's timestamp stage.
        out: dict[str, Any] = {"source": _text(opts["source"]), "format": _text(opts["format"])}
        fallback = opts.get("fallback_formats")
        if fallback:
            if not isinstance(fallback, list):
                raise Untranslatable("fallback_formats must be a list")
            out["fallback_formats"] = [_text(f) for f in fallback]
        for key in ("location", "action_on_failure"):
            if opts.get(key) is not None:
                out[key] = _text(opts[key])
        if self.kind == "docker":
            self.report.differs(
                self.file,
                line,
                at,
                "nexo keeps Docker's time when the parsed one is more than max_skew (1h) "
                "away from it (a wrong format or zone); add max_skew: 0 to believe any time, "
                "as Promtail does",
            )
        return [("timestamp", out)]

    def _output(self, options: Any, at: str, line: int) -> list[tuple[str, dict[str, Any]]]:
        opts = mapping(options, "output")
        self._ignored(opts, {"source"}, at, line)
        if not opts.get("source"):
            raise Untranslatable("output needs a source")
        return [("output", {"source": _text(opts["source"])})]

    def _drop(self, options: Any, at: str, line: int) -> list[tuple[str, dict[str, Any]]]:
        opts = mapping(options, "drop")
        known = {
            "source",
            "separator",
            "expression",
            "value",
            "older_than",
            "longer_than",
            "drop_counter_reason",
        }
        self._ignored(opts, known, at, line)
        out: dict[str, Any] = {}
        source = opts.get("source")
        if isinstance(source, list):
            if len(source) > 1:
                raise Untranslatable(
                    f"source lists several names {source!r}: nexo's drop tests one field "
                    "(write one drop stage per field, or a regex on the line)"
                )
            source = source[0] if source else None
        if source is not None:
            out["source"] = _text(source)
        if "separator" in opts:
            self.report.note(
                self.file,
                line_of(opts, "separator", line),
                f"{at}.separator",
                "ignored: with a single source there is nothing to join",
            )
        for key in ("expression", "value", "drop_counter_reason"):
            if opts.get(key) is not None:
                out[key] = _text(opts[key])
        if opts.get("older_than") is not None:
            out["older_than"] = go_duration(opts["older_than"])
        if opts.get("longer_than") is not None:
            out["longer_than"] = opts["longer_than"]
        return [("drop", out)]

    def _multiline(self, options: Any, at: str, line: int) -> list[tuple[str, dict[str, Any]]]:
        opts = mapping(options, "multiline")
        self._ignored(opts, {"firstline", "max_wait_time", "max_lines"}, at, line)
        if not isinstance(opts.get("firstline"), str):
            raise Untranslatable("multiline needs firstline")
        out: dict[str, Any] = {"firstline": opts["firstline"]}
        if opts.get("max_wait_time") is not None:
            out["max_wait"] = go_duration(opts["max_wait_time"])
        if opts.get("max_lines") is not None:
            out["max_lines"] = opts["max_lines"]
        return [("multiline", out)]

    def _limit(self, options: Any, at: str, line: int) -> list[tuple[str, dict[str, Any]]]:
        opts = mapping(options, "limit")
        self._ignored(
            opts, {"rate", "burst", "drop", "by_label_name", "max_distinct_labels"}, at, line
        )
        if opts.get("by_label_name"):
            raise Untranslatable(
                "by_label_name (a limit per label value) has no nexo-agent equivalent; "
                "nexo's limit counts per container or file"
            )
        out = {k: opts[k] for k in ("rate", "burst") if opts.get(k) is not None}
        out["drop"] = bool(opts.get("drop", False))  # Promtail's default: wait, not drop
        self.report.differs(
            self.file,
            line,
            at,
            "nexo's limit is kept per container (or file); Promtail's is shared by all "
            "targets of the scrape config",
        )
        return [("limit", out)]

    def _sampling(self, options: Any, at: str, line: int) -> list[tuple[str, dict[str, Any]]]:
        opts = mapping(options, "sampling")
        self._ignored(opts, {"rate"}, at, line)
        rate = opts.get("rate")
        if not isinstance(rate, int | float) or isinstance(rate, bool) or not 0 < rate <= 1:
            raise Untranslatable(f"rate {rate!r}: nexo's sample takes 0 < rate <= 1")
        return [("sample", {"rate": rate})]

    def _template(self, options: Any, at: str, line: int) -> list[tuple[str, dict[str, Any]]]:
        opts = mapping(options, "template")
        source, template = opts.get("source"), opts.get("template")
        if not isinstance(source, str) or not isinstance(template, str):
            raise Untranslatable("template needs source and template")
        match = _SIMPLE_TEMPLATE.fullmatch(template)
        if match is None:
            raise Untranslatable(
                f"template {template!r}: nexo-agent has no template stage; only a plain "
                "copy ({{ .field }}) translates"
            )
        ref = match.group(1)
        if ref == "Value":
            self.report.note(self.file, line, at, "dropped: {{ .Value }} leaves the field as it is")
            return []
        if not _IDENTIFIER.fullmatch(source):
            raise Untranslatable(f"field name {source!r} cannot be a regex group name")
        copy = {"expression": f"^(?P<{source}>(?s:.*))$"}
        if ref != "Entry":
            copy["source"] = ref
            self.report.differs(
                self.file,
                line,
                at,
                f"a copy of {ref!r} into {source!r} as a regex stage; when {ref!r} is "
                f"missing Promtail sets {source!r} to '<no value>', nexo leaves it unset",
            )
        return [("regex", copy)]

    def _luhn(self, options: Any, at: str, line: int) -> list[tuple[str, dict[str, Any]]]:
        opts = mapping(options, "luhn")
        if opts.get("source"):
            raise Untranslatable("source: nexo's redact masks the line only")
        out: dict[str, Any] = {"detectors": ["card"]}
        out["replacement"] = _text(opts.get("replacement") or "**REDACTED**")
        if opts.get("min_length") is not None:
            self.report.differs(
                self.file,
                line,
                at,
                "min_length is not carried over: nexo's card detector finds 13 to 19 "
                "digit, Luhn-valid numbers",
            )
        return [("redact", out)]

    def _decolorize(self, options: Any, at: str, line: int) -> list[tuple[str, dict[str, Any]]]:
        return [("replace", {"expression": ANSI_PATTERN, "replace": ""})]

    def _metrics(self, options: Any, at: str, line: int) -> list[tuple[str, dict[str, Any]]]:
        opts = mapping(options, "metrics")
        if not opts:
            raise Untranslatable("no metrics defined")
        metrics: dict[str, dict[str, Any]] = {}
        for name, raw in opts.items():
            where = f"{at}.{name}"
            metric_line = line_of(opts, name, line)
            try:
                metrics[str(name)] = self._metric(str(name), raw, where, metric_line)
            except Untranslatable as exc:
                self.report.omitted(self.file, metric_line, where, str(exc))
        if not metrics:
            return []
        # Promtail prefixes each name with promtail_custom_ unless told otherwise; keeping
        # the prefix keeps dashboards working. The most common one becomes the stage's.
        prefixes = [m.pop("prefix") for m in metrics.values()]
        prefix = max(set(prefixes), key=prefixes.count)
        for metric, own in zip(metrics.values(), prefixes, strict=True):
            if own != prefix:
                metric["prefix"] = own
        self.report.differs(
            self.file,
            line,
            at,
            "Promtail labels custom metrics with all of an entry's labels; nexo needs a "
            f"bounded list and uses {self.metric_labels} (the target's labels and those "
            "set by labels stages before it), at most 1000 combinations per metric",
        )
        return [("metrics", {"prefix": prefix, "metrics": metrics})]

    def _metric(self, name: str, raw: Any, at: str, line: int) -> dict[str, Any]:
        cfg = mapping(raw, "metric")
        known = {"type", "description", "source", "prefix", "max_idle_duration", "config"}
        self._ignored(cfg, known, at, line)
        kind = str(cfg.get("type", "")).lower()
        if kind not in ("counter", "gauge", "histogram"):
            raise Untranslatable(f"type {cfg.get('type')!r}: Counter, Gauge or Histogram")
        config = mapping(cfg.get("config"), "config")
        self._ignored(
            config,
            {"action", "value", "match_all", "count_entry_bytes", "buckets"},
            f"{at}.config",
            line,
        )
        prefix = _text(cfg.get("prefix") or "promtail_custom_")
        metric: dict[str, Any] = {"type": kind, "prefix": prefix}
        if cfg.get("description"):
            metric["description"] = _text(cfg["description"])
        if not config.get("match_all"):
            metric["source"] = _text(cfg.get("source") or name)  # Promtail: the name
        metric["labels"] = list(self.metric_labels)
        if cfg.get("max_idle_duration") is not None:
            metric["max_idle"] = go_duration(cfg["max_idle_duration"])
        out_config: dict[str, Any] = {}
        if config.get("action") is not None:
            out_config["action"] = _text(config["action"]).lower()
        if config.get("value") is not None:
            out_config["value"] = _text(config["value"])
        for key in ("match_all", "count_entry_bytes"):
            if config.get(key) is not None:
                out_config[key] = bool(config[key])
        if config.get("buckets") is not None:
            out_config["buckets"] = config["buckets"]
        metric["config"] = out_config
        if kind == "counter" and not name.endswith("_total"):
            self.report.differs(
                self.file,
                line,
                at,
                f"exposed as {prefix}{name}_total (nexo's counters end in _total, as "
                f"Prometheus names them); Promtail exposes {prefix}{name}",
            )
        return metric
