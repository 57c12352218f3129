"""HTTP endpoints: ``/metrics`` (exposition 0.0.4, gzip when accepted), ``/healthz``, ``/ready``.

The registry is rendered in a worker thread: host and container collectors read /proc,
/sys and cgroup files (and may wait on a slow statfs), and none of that may stall the
event loop that tails and ships logs.
"""

from __future__ import annotations

import asyncio
import gzip
import re
from collections.abc import Callable, Iterable

from aiohttp import web
from prometheus_client import CollectorRegistry, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

ReadinessCheck = Callable[[], tuple[bool, str]]


class MetricsServer:
    """Serves one explicit registry; ``ready`` reports whether the pipeline is up."""

    def __init__(
        self,
        registry: CollectorRegistry,
        listen_address: str,
        ready: ReadinessCheck | None = None,
    ) -> None:
        self.registry = registry
        host, _, port = listen_address.rpartition(":")
        self.host = host.strip("[]") or "0.0.0.0"
        self.port = int(port)
        self._ready = ready
        self._runner: web.AppRunner | None = None
        self._render_lock = asyncio.Lock()

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/ready", self._readyz)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.build_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None)
        if sockets:
            self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, request: web.Request) -> web.Response:
        # The body is text format 0.0.4 (what node_exporter and cAdvisor serve);
        # prometheus_client >= 0.22 labels its own output 1.0.0.
        headers = {"Content-Type": CONTENT_TYPE_PLAIN_0_0_4}
        compress = "gzip" in request.headers.get("Accept-Encoding", "")
        if compress:
            headers["Content-Encoding"] = "gzip"
        # One render at a time: concurrent scrapes would only multiply the /proc reads.
        async with self._render_lock:
            body = await asyncio.to_thread(_render, self.registry, compress)
        return web.Response(body=body, headers=headers)

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        ok, detail = self._ready() if self._ready else (True, "ready")
        return web.Response(text=detail + "\n", status=200 if ok else 503)


def _render(registry: CollectorRegistry, compress: bool) -> bytes:
    # Render and compress in one worker-thread hop.
    body = render_text(registry)
    return gzip.compress(body, 1) if compress else body


_LEGACY_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LEGACY_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_PLAIN_TYPES = {"counter": "counter", "gauge": "gauge", "unknown": "untyped"}
_OM_SUFFIXES = ("_created", "_gsum", "_gcount")


# Names already checked against the legacy character set, across renders.
_VALID_NAMES: set[str] = set()
_VALID_LABELS: set[str] = set()


class _One:
    def __init__(self, metric: Metric) -> None:
        self._metric = metric

    def collect(self) -> Iterable[Metric]:
        return [self._metric]


# Below 2**53 an int converts to float exactly, so repr(float(n)) is str(n) + ".0".
_EXACT_INT = 1 << 53


def go_float(value: float) -> str:
    """prometheus_client's floatToGoString, minus the function calls per sample.

    Integral values (byte and event counts, most of a container scrape) may be passed as
    ``int``: they skip the float repr and come out the same.
    """
    if type(value) is int and -_EXACT_INT < value < _EXACT_INT:
        if value < 1_000_000:
            return f"{value}.0"
        digits = str(value)  # Go's exponent form, as below
        return f"{f'{digits[0]}.{digits[1:]}0'.rstrip('0.')}e+{len(digits) - 1:02d}"
    d = float(value)
    text = repr(d)
    if text[-1] == "f":  # inf, -inf
        return "+Inf" if d > 0 else "-Inf"
    if text == "nan":
        return "NaN"
    dot = text.find(".")
    if d > 0 and dot > 6:  # Go switches to exponent notation sooner than Python
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return text


def escape_label_value(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return value


class RenderedFamily(Metric):
    """A counter, gauge or untyped family that writes its own sample lines.

    For collectors with thousands of series that share most of their labels: they can
    render those once instead of :func:`render_text` sorting and escaping every sample's
    labels. :func:`render_text` emits the HELP and TYPE lines, then ``sample_lines()``
    verbatim; every other consumer (``generate_latest``, tests) reads ``samples``. A
    subclass guarantees that both say the same, with legacy metric and label names, label
    values escaped, label names sorted and values formatted by :func:`go_float`.
    """

    def sample_lines(self) -> list[str]:
        raise NotImplementedError


def _header(name: str, documentation: str, exposed_type: str | None) -> str:
    documentation = documentation.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {name} {documentation}\n# TYPE {name} {exposed_type}\n"


def render_text(registry: CollectorRegistry) -> bytes:
    """Text exposition 0.0.4: the bytes ``generate_latest`` produces, a few times faster.

    A host scrape is ~500 samples; the generic encoder spends more CPU on them than the
    collectors spend reading /proc. Counters, gauges and untyped families with legacy
    names and no timestamps take the fast path; anything else is handed to
    ``generate_latest`` one family at a time, so the output never differs.
    """
    out: list[str] = []
    append = out.append
    valid_names, valid_labels = _VALID_NAMES, _VALID_LABELS
    if len(valid_names) > 100_000:  # names churn only with textfiles; stay bounded
        valid_names.clear()
        valid_labels.clear()
    for metric in registry.collect():
        exposed_type = _PLAIN_TYPES.get(metric.type)
        name = metric.name + "_total" if metric.type == "counter" else metric.name
        if isinstance(metric, RenderedFamily) and exposed_type is not None:
            append(_header(name, metric.documentation, exposed_type))
            out.extend(metric.sample_lines())
            continue
        fast = exposed_type is not None and _LEGACY_NAME.fullmatch(name) is not None
        lines: list[str] = []
        if fast:
            for sample in metric.samples:
                sample_name = sample.name
                if (
                    sample.timestamp is not None
                    or sample.exemplar is not None
                    or sample_name.endswith(_OM_SUFFIXES)
                    or (sample_name not in valid_names and not _LEGACY_NAME.fullmatch(sample_name))
                ):
                    fast = False
                    break
                valid_names.add(sample_name)
                labels = sample.labels
                if labels:
                    parts = []
                    for key in sorted(labels):
                        if key not in valid_labels:
                            if not _LEGACY_LABEL.fullmatch(key):
                                fast = False
                                break
                            valid_labels.add(key)
                        parts.append(f'{key}="{escape_label_value(labels[key])}"')
                    if not fast:
                        break
                    lines.append(f"{sample_name}{{{','.join(parts)}}} {go_float(sample.value)}\n")
                else:
                    lines.append(f"{sample_name} {go_float(sample.value)}\n")
        if not fast:
            append(generate_latest(_One(metric)).decode("utf-8"))
            continue
        append(_header(name, metric.documentation, exposed_type))
        out.extend(lines)
    return "".join(out).encode("utf-8")
