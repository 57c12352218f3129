"""HTTP endpoints: ``/metrics`` (exposition 0.0.4, gzip when accepted), ``/healthz``, ``/ready``.

The registry is rendered in a worker thread: host and container collectors read /proc,
/sys and cgroup files (and may wait on a slow statfs), and none of that may stall the
event loop that tails and ships logs. TLS, basic auth, headers and a rate limit come from
a Prometheus web config file (:mod:`agent.metrics.webconfig`); at most
``max_concurrent_scrapes`` scrapes are in flight, like node_exporter's ``--web.max-requests``.
"""

from __future__ import annotations

import asyncio
import gzip
import re
import ssl
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.samples import Sample

from agent.http.server import HttpServer, Request, Response
from agent.native import load

native_exposition = load("agent.metrics._exposition")

if TYPE_CHECKING:
    from agent.metrics.webconfig import WebConfig, WebConfigWatcher
    from agent.metrics.webguard import WebGuard

ReadinessCheck = Callable[[], tuple[bool, str]]


class MetricsServer:
    """Serves one explicit registry; ``ready`` reports whether the pipeline is up."""

    def __init__(
        self,
        registry: CollectorRegistry,
        listen_address: str,
        ready: ReadinessCheck | None = None,
        *,
        web_config: WebConfigWatcher | None = None,
        max_concurrent_scrapes: int = 0,
        max_connections: int = 0,
        health_endpoints_open: bool = True,
    ) -> None:
        self.registry = registry
        host, _, port = listen_address.rpartition(":")
        self.host = host.strip("[]") or "0.0.0.0"
        self.port = int(port)
        self._ready = ready
        self._http: HttpServer | None = None
        self._render_lock = asyncio.Lock()
        self.max_concurrent_scrapes = max_concurrent_scrapes
        self.max_connections = max_connections
        self._scrapes_in_flight = 0
        self.refused = Counter(
            "nexo_agent_http_requests_refused_total",
            "Requests to the agent's HTTP server refused, by reason (unauthorized, "
            "forbidden: client certificate SAN not allowed, rate_limited, too_many_scrapes, "
            "too_many_connections).",
            ["reason"],
            registry=registry,
        )
        for reason in (
            "unauthorized",
            "forbidden",
            "rate_limited",
            "too_many_scrapes",
            "too_many_connections",
        ):
            self.refused.labels(reason)
        self.web_config = web_config
        self._guard: WebGuard | None = None
        self._tls_context: ssl.SSLContext | None = None
        if web_config is not None:
            from agent.metrics.webguard import WebGuard

            self._applied = web_config.current
            self._guard = WebGuard(self._web_config_now, health_endpoints_open, self.refused)
            reload_ok = Gauge(
                "nexo_agent_web_config_last_reload_successful",
                "1 if the web config file in force is the file on disk, 0 if the last "
                "change to it (or to a certificate it names) could not be loaded.",
                registry=registry,
            )
            reload_ok.set_function(lambda: float(web_config.last_reload_ok))
            tls = web_config.current.tls
            if tls is not None:
                self._tls_context = tls.context
                tls.context.sni_callback = self._on_client_hello

    @property
    def scheme(self) -> str:
        return "https" if self._tls_context is not None else "http"

    def build_server(self) -> HttpServer:
        routes = {"/metrics": self._metrics, "/healthz": self._healthz, "/ready": self._readyz}
        return HttpServer(
            routes,
            self._guard.check if self._guard is not None else None,
            max_connections=self.max_connections,
            on_refused=self.refused.labels("too_many_connections").inc,
        )

    async def start(self) -> None:
        self._http = self.build_server()
        self.port = await self._http.start(self.host, self.port, self._tls_context)

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.stop()
            self._http = None

    def _web_config_now(self) -> WebConfig:
        """The web config in force, reloaded first if its files changed.

        A reloaded TLS config reaches new connections two ways: the settings a connection
        copies when it is accepted (client auth, versions, ciphers) are set on the
        listener's context, and its certificate and client CAs by switching the
        connection to the new context in the handshake's first callback.
        """
        assert self.web_config is not None
        config = self.web_config.refresh()
        if config is not self._applied:
            self._applied = config
            if config.tls is not None and self._tls_context is not None:
                from agent.metrics.webconfig import apply_handshake_settings

                apply_handshake_settings(self._tls_context, config.tls)
        return config

    def _on_client_hello(
        self, connection: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: object
    ) -> None:
        config = self._web_config_now()
        if config.tls is not None and config.tls.context is not self._tls_context:
            connection.context = config.tls.context

    async def _metrics(self, request: Request) -> Response:
        # Over the limit, refuse at once (node_exporter's --web.max-requests): queued
        # scrapes would only time out after costing a render each.
        limit = self.max_concurrent_scrapes
        if limit and self._scrapes_in_flight >= limit:
            self.refused.labels("too_many_scrapes").inc()
            return Response.text(f"too many concurrent scrapes (limit {limit})\n", 503)
        self._scrapes_in_flight += 1
        try:
            # The body is text format 0.0.4 (what node_exporter and cAdvisor serve);
            # prometheus_client >= 0.22 labels its own output 1.0.0.
            headers = {"Content-Type": CONTENT_TYPE_PLAIN_0_0_4}
            compress = "gzip" in request.header("Accept-Encoding")
            if compress:
                headers["Content-Encoding"] = "gzip"
            # One render at a time: concurrent scrapes would only multiply the /proc reads.
            async with self._render_lock:
                body = await asyncio.to_thread(_render, self.registry, compress)
            return Response(200, body, headers)
        finally:
            self._scrapes_in_flight -= 1

    async def _healthz(self, request: Request) -> Response:
        return Response.text("ok\n")

    async def _readyz(self, request: Request) -> Response:
        ok, detail = self._ready() if self._ready else (True, "ready")
        return Response.text(detail + "\n", 200 if ok else 503)


_fast_compress: Callable[[bytes, int, int], bytes] | None
try:
    # zlib-ng's level 1 (its "quick" deflate): a host scrape's 57 KB in half of zlib's CPU,
    # about 4.5x smaller still (issue 11). ISA-L was faster still in isolation but slowed
    # the render after it (its AVX-512 code on this Xeon) and lost overall. zlib stays the
    # fallback where zlib-ng has no wheel.
    from zlib_ng.zlib_ng import compress as _fast_compress
except ImportError:  # pragma: no cover - zlib-ng is a dependency; exotic platforms only
    _fast_compress = None


def gzip_body(body: bytes) -> bytes:
    """``body`` as a gzip member (RFC 1952), at the fastest level that still compresses."""
    if _fast_compress is not None:
        return _fast_compress(body, 1, 31)  # wbits 31: gzip header and trailer
    return gzip.compress(body, 1)


def _render(registry: CollectorRegistry, compress: bool) -> bytes:
    # Render and compress in one worker-thread hop.
    body = render_text(registry)
    return gzip_body(body) if compress else body


_LEGACY_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LEGACY_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_PLAIN_TYPES = {"counter": "counter", "gauge": "gauge", "unknown": "untyped"}
_OM_SUFFIXES = ("_created", "_gsum", "_gcount")


# Names already checked against the legacy character set, across renders.
_VALID_NAMES: set[str] = set()
_VALID_LABELS: set[str] = set()


def is_legacy_name(name: str, *, label: bool = False) -> bool:
    """Whether a metric (or ``label``) name fits text format 0.0.4's character set; the
    answer for a valid name is remembered with :func:`render_text`'s."""
    known = _VALID_LABELS if label else _VALID_NAMES
    if name in known:
        return True
    if not (_LEGACY_LABEL if label else _LEGACY_NAME).fullmatch(name):
        return False
    known.add(name)
    return True


class _One:
    def __init__(self, metric: Metric) -> None:
        self._metric = metric

    def collect(self) -> Iterable[Metric]:
        return [self._metric]


# Below 2**53 an int converts to float exactly, so repr(float(n)) is str(n) + ".0".
_EXACT_INT = 1 << 53


def python_go_float(value: float) -> str:
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


# The same in C when built (agent/metrics/_exposition.c): a scrape formats every value.
go_float: Callable[[float], str] = (
    native_exposition.go_float if native_exposition is not None else python_go_float
)


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

    def derived_samples(self) -> list[Sample]:
        """The same series as ``sample_lines``, as prometheus_client samples."""
        raise NotImplementedError

    # Metric.__init__ assigns an empty list; a rendered family's samples are derived.
    @property
    def samples(self) -> list[Sample]:
        return self.derived_samples()

    @samples.setter
    def samples(self, value: list[Sample]) -> None:
        if value:
            raise AttributeError(f"{type(self).__name__} samples come from its rows")


# (name, documentation, type) -> the HELP and TYPE lines: the same ~260 every scrape.
_HEADERS: dict[tuple[str, str, str | None], str] = {}


def _header(name: str, documentation: str, exposed_type: str | None) -> str:
    key = (name, documentation, exposed_type)
    found = _HEADERS.get(key)
    if found is None:
        escaped = documentation.replace("\\", r"\\").replace("\n", r"\n")
        found = f"# HELP {name} {escaped}\n# TYPE {name} {exposed_type}\n"
        if len(_HEADERS) > 20_000:  # textfile names may churn; stay bounded
            _HEADERS.clear()
        _HEADERS[key] = found
    return found


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
