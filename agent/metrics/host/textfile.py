"""textfile: metrics that cron jobs and scripts leave in ``*.prom`` files.

Like node_exporter's textfile collector: every ``*.prom`` file in the configured directory
is parsed as text exposition format 0.0.4; a file that does not parse (or carries sample
timestamps) is skipped whole and sets ``node_textfile_scrape_error 1`` while every other
file is still served; ``node_textfile_mtime_seconds{file}`` tells how fresh each good file
is. The parser is strict like Go's ``expfmt.TextParser``: prometheus_client's parser
accepts lines node_exporter rejects. A file is parsed again only when it changes.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client import Metric
from prometheus_client.core import GaugeMetricFamily

from agent.config import HostMetricsConfig
from agent.metrics import kernelfs
from agent.metrics.host.registry import ScrapeContext, register

log = logging.getLogger("agent.metrics.host")

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}
_UNESCAPE = {"\\": "\\", '"': '"', "n": "\n"}


class TextfileError(ValueError):
    pass


@dataclass
class ParsedFamily:
    name: str
    type: str = "untyped"
    help: str | None = None
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)
    typed: bool = False


def _parse_labels(text: str, start: int, line_no: int) -> tuple[dict[str, str], int]:
    """Parse ``{a="b",c="d"}`` starting after ``{``; returns labels and the index after ``}``."""
    labels: dict[str, str] = {}
    i = start
    while True:
        while i < len(text) and text[i] == " ":
            i += 1
        if i < len(text) and text[i] == "}":
            return labels, i + 1
        match = _LABEL_NAME.match(text, i)
        if not match:
            raise TextfileError(f"line {line_no}: invalid label name")
        name = match.group(0)
        i = match.end()
        while i < len(text) and text[i] == " ":
            i += 1
        if text[i : i + 2] != '="':
            raise TextfileError(f"line {line_no}: expected '=\"' after label {name}")
        i += 2
        value: list[str] = []
        while True:
            if i >= len(text):
                raise TextfileError(f"line {line_no}: unterminated label value")
            char = text[i]
            if char == "\\":
                escaped = _UNESCAPE.get(text[i + 1 : i + 2])
                if escaped is None:
                    raise TextfileError(f"line {line_no}: invalid escape in label value")
                value.append(escaped)
                i += 2
            elif char == '"':
                i += 1
                break
            else:
                value.append(char)
                i += 1
        if name in labels:
            raise TextfileError(f"line {line_no}: duplicate label {name}")
        labels[name] = "".join(value)
        while i < len(text) and text[i] == " ":
            i += 1
        if i < len(text) and text[i] == ",":
            i += 1
        elif i < len(text) and text[i] != "}":
            raise TextfileError(f"line {line_no}: expected ',' or '}}' in labels")


def _parse_float(text: str, line_no: int) -> float:
    lowered = text.lower()
    if lowered in ("nan", "+inf", "-inf", "inf", "+nan", "-nan"):
        return float(lowered.lstrip("+"))
    try:
        return float(text)
    except ValueError:
        raise TextfileError(f"line {line_no}: invalid value {text!r}") from None


def _family_of(sample: str, families: dict[str, ParsedFamily]) -> str:
    for suffix in ("_bucket", "_sum", "_count"):
        if sample.endswith(suffix):
            base = sample[: -len(suffix)]
            family = families.get(base)
            kind = family.type if family is not None else None
            if kind == "histogram" or (kind == "summary" and suffix != "_bucket"):
                return base
    return sample


def parse_exposition(text: str) -> list[ParsedFamily]:
    """Text format 0.0.4 -> families; raises :class:`TextfileError` on anything malformed."""
    families: dict[str, ParsedFamily] = {}
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    for line_no, raw in enumerate(text.split("\n"), 1):
        line = raw.strip(" \t\r")
        if not line:
            continue
        if line.startswith("#"):
            parts = line[1:].strip().split(None, 2)
            if len(parts) < 2 or parts[0] not in ("HELP", "TYPE"):
                continue  # an ordinary comment
            name = parts[1]
            if not _NAME.fullmatch(name):
                raise TextfileError(f"line {line_no}: invalid metric name {name!r}")
            family = families.setdefault(name, ParsedFamily(name))
            if parts[0] == "HELP":
                if family.help is not None:
                    raise TextfileError(f"line {line_no}: second HELP line for {name}")
                rest = parts[2] if len(parts) > 2 else ""
                family.help = re.sub(r"\\([\\n])", lambda m: "\n" if m[1] == "n" else "\\", rest)
            else:
                kind = parts[2].strip() if len(parts) > 2 else ""
                if kind not in _TYPES:
                    raise TextfileError(f"line {line_no}: unknown metric type {kind!r}")
                if family.typed:
                    raise TextfileError(f"line {line_no}: second TYPE line for {name}")
                if family.samples:
                    raise TextfileError(f"line {line_no}: TYPE for {name} after its samples")
                family.type, family.typed = kind, True
            continue
        match = _NAME.match(line)
        if not match:
            raise TextfileError(f"line {line_no}: invalid metric name")
        sample_name = match.group(0)
        i = match.end()
        labels: dict[str, str] = {}
        if i < len(line) and line[i] == "{":
            labels, i = _parse_labels(line, i + 1, line_no)
        tail = line[i:].split()
        if not tail or (i < len(line) and line[i] not in " \t"):
            raise TextfileError(f"line {line_no}: expected a value after {sample_name}")
        if len(tail) > 2:
            raise TextfileError(f"line {line_no}: unexpected text after the value")
        if len(tail) == 2:
            raise TextfileError(
                f"line {line_no}: client-side timestamps are not supported (file skipped)"
            )
        value = _parse_float(tail[0], line_no)
        family_name = _family_of(sample_name, families)
        owner = families.get(family_name)
        if owner is None:
            owner = families[family_name] = ParsedFamily(family_name)
        series = (sample_name, tuple(sorted(labels.items())))
        if series in seen:
            raise TextfileError(f"line {line_no}: repeated series {sample_name}{labels}")
        seen.add(series)
        owner.samples.append((sample_name, labels, value))
    return [family for family in families.values() if family.samples]


def _to_metric(family: ParsedFamily, help_text: str) -> Metric:
    kind = family.type
    name = family.name
    if kind == "counter":
        if name.endswith("_total"):
            name = name[:-6]
        else:
            # prometheus_client renders every counter as <name>_total; a counter without
            # the suffix keeps its sample name only as untyped.
            kind = "untyped"
    metric = Metric(name, help_text, "unknown" if kind == "untyped" else kind)
    for sample_name, labels, value in family.samples:
        metric.add_sample(sample_name, labels, value)
    return metric


@register("textfile")
class TextfileCollector:
    def __init__(self, cfg: HostMetricsConfig) -> None:
        self._directory = str(cfg.textfile_directory) if cfg.textfile_directory else None
        self._parsed: dict[str, tuple[tuple[int, int, int], list[ParsedFamily]]] = {}

    def collect(self, ctx: ScrapeContext) -> Iterable[Metric]:
        errored = False
        mtimes: dict[str, float] = {}
        merged: dict[str, ParsedFamily] = {}
        sources: dict[str, list[str]] = {}
        if self._directory is not None:
            try:
                names = sorted(os.listdir(self._directory))
            except OSError as exc:
                log.error("textfile directory %s unreadable: %s", self._directory, exc)
                names, errored = [], True
            for name in names:
                if not name.endswith(".prom"):
                    continue
                path = os.path.join(self._directory, name)
                try:
                    st, families = self._read(path)
                    self._merge(path, families, merged, sources)
                except (OSError, TextfileError) as exc:
                    log.error("textfile %s skipped: %s", path, exc)
                    errored = True
                    continue
                mtimes[path] = st.st_mtime
            self._parsed = {p: v for p, v in self._parsed.items() if p in mtimes}

        out: list[Metric] = []
        for family_name, family in merged.items():
            help_text = family.help or f"Metric read from {', '.join(sources[family_name])}"
            out.append(_to_metric(family, help_text))
        if mtimes:
            mtime = GaugeMetricFamily(
                "node_textfile_mtime_seconds",
                "Unixtime mtime of textfiles successfully read.",
                labels=["file"],
            )
            for path, value in sorted(mtimes.items()):
                mtime.add_metric([path], value)
            out.append(mtime)
        out.append(
            GaugeMetricFamily(
                "node_textfile_scrape_error",
                "1 if there was an error opening or reading a file, 0 otherwise",
                value=1 if errored else 0,
            )
        )
        return out

    def _read(self, path: str) -> tuple[os.stat_result, list[ParsedFamily]]:
        st = os.stat(path)
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        cached = self._parsed.get(path)
        if cached is not None and cached[0] == key:
            return st, cached[1]
        families = parse_exposition(kernelfs.read_text(path))
        self._parsed[path] = (key, families)
        return st, families

    @staticmethod
    def _merge(
        path: str,
        families: list[ParsedFamily],
        merged: dict[str, ParsedFamily],
        sources: dict[str, list[str]],
    ) -> None:
        """Add one file's families; a type clash or a repeated series rejects the file."""
        for family in families:
            existing = merged.get(family.name)
            if existing is not None and existing.type != family.type:
                raise TextfileError(
                    f"{family.name} has type {family.type}, another file says {existing.type}"
                )
            if existing is not None:
                seen = {(n, tuple(sorted(lb.items()))) for n, lb, _ in existing.samples}
                for sample_name, labels, _ in family.samples:
                    if (sample_name, tuple(sorted(labels.items()))) in seen:
                        raise TextfileError(f"{sample_name}{labels} already read from another file")
        for family in families:
            existing = merged.get(family.name)
            if existing is None:
                merged[family.name] = ParsedFamily(
                    family.name, family.type, family.help, list(family.samples)
                )
                sources[family.name] = [path]
            else:
                existing.samples.extend(family.samples)
                sources[family.name].append(path)
                if existing.help is None:
                    existing.help = family.help
