"""Sending push batches to Loki: one POST per batch, retries, and what is settled when.

Status handling follows Promtail's client (``clients/pkg/promtail/client/client.go``) with
one deliberate difference (260, below):

* 2xx except 260: delivered.
* 429, 5xx, 260, connection errors and timeouts: retried with jittered exponential backoff
  (``backoff.min_period`` doubling up to ``backoff.max_period``); ``max_retries`` 0 retries
  until the data is delivered or the agent stops.
* 401, 403 and 404: retried like a 5xx, unlike Promtail, which drops the batch. They say
  the agent is misconfigured (credentials, tenant, push path), not that the data is bad;
  dropping would lose every line until the operator notices. Reading pauses at the
  in-flight bound and the files on disk hold the rest until the config is fixed.
* every other 4xx (400 above all): never retried. Loki validates per entry and stores the
  valid ones of a request before answering 400 (``distributor.go``), so a re-send would only
  duplicate the stored lines and fail again. The entries are settled: the caller may move
  positions past them.

Loki being away, refusing credentials or answering 404 is one state of the ``loki``
dependency (:mod:`agent.dependencies`): logged when it begins and when it ends, not per
retry.

A shutdown (:meth:`LokiPushClient.request_stop`) interrupts a backoff wait at once and the
send returns ``aborted``: nothing is counted as dropped, because the entries are still on
disk and will be read again after the restart.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import random
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

from agent import __version__
from agent.config import LokiClient, TLSConfig
from agent.dependencies import LOKI
from agent.http.client import HttpClient, HttpError
from agent.logs.loki_encode import EncodedPush, encode, split_batch
from agent.logs.model import PushBatch
from agent.metrics.self import AgentMetrics

__all__ = ["LokiPushClient", "SendResult", "split_batch"]

log = logging.getLogger("agent.logs.loki")

# Loki answers 260 (its default ``block_ingestion_status_code``) while a tenant is blocked
# by ``block_ingestion_until`` (pkg/validation/limits.go). It is 2xx-class but nothing was
# stored; the block is temporary by definition, so the batch is retried like a 429 rather
# than counted as delivered (which would silently lose it).
BLOCKED_TENANT_STATUS = 260
# Configuration problems on the agent's side: retried, never dropped (see above).
_MISCONFIGURED = frozenset({401, 403, 404})
_MAX_ERROR_BODY = 1024


@dataclass(frozen=True, slots=True)
class SendResult:
    """What became of one batch.

    ``delivered``: Loki accepted it. ``dropped``: entries that will never reach Loki (a 4xx,
    or retries exhausted). ``aborted``: a shutdown interrupted the retries; nothing settled.
    ``status`` is the last HTTP status seen (``None``: no answer at all).
    """

    delivered: bool
    dropped: int = 0
    aborted: bool = False
    status: int | None = None
    attempts: int = 0

    @property
    def settled(self) -> bool:
        """True when the caller may acknowledge the entries (delivered or dropped for good)."""
        return not self.aborted


class _SecretFile:
    """A credential read from a file, re-read whenever the file changes (token rotation)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self.value = ""

    def read(self) -> str:
        try:
            st = os.stat(self.path)
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
            if stamp != self._stamp:
                self.value = self.path.read_text(encoding="utf-8").strip()
                self._stamp = stamp
        except OSError as exc:
            if self._stamp is None:
                raise
            log.warning("cannot re-read %s, keeping the previous value: %s", self.path, exc)
        return self.value


def build_ssl_context(tls: TLSConfig) -> ssl.SSLContext:
    """Client TLS context: custom CA, optional client certificate, optional no-verify."""
    context = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
    if tls.cert_file and tls.key_file:
        context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    if tls.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def backoff_delay(attempt: int, min_period: float, max_period: float) -> float:
    """Delay before retry ``attempt`` (1-based): exponential, capped, with 'equal jitter'.

    The jitter (50-100 % of the exponential step) keeps many agents that lost the same
    Loki from retrying in lockstep when it comes back.
    """
    step = min(max_period, min_period * 2.0 ** min(attempt - 1, 62))
    return step * random.uniform(0.5, 1.0)


class LokiPushClient:
    """Sends :class:`PushBatch` values to one Loki push endpoint.

    ``start()`` opens the HTTP session and reads credential files; ``close()`` ends it.
    ``send()`` may be called concurrently; each call encodes its batch once.
    """

    def __init__(self, config: LokiClient, metrics: AgentMetrics) -> None:
        self.config = config
        self.metrics = metrics
        self._http: HttpClient | None = None
        self._stop = asyncio.Event()
        self._static_headers: dict[str, str] = {}
        self._bearer_file: _SecretFile | None = None
        self._password_file: _SecretFile | None = None

    async def start(self) -> None:
        cfg = self.config
        headers = dict(cfg.headers)
        headers["User-Agent"] = f"nexo-agent/{__version__}"
        if cfg.tenant_id:
            headers["X-Scope-OrgID"] = cfg.tenant_id
        self._static_headers = headers
        if cfg.bearer_token_file:
            self._bearer_file = _SecretFile(cfg.bearer_token_file)
            self._bearer_file.read()
        if cfg.basic_auth and cfg.basic_auth.password_file:
            self._password_file = _SecretFile(cfg.basic_auth.password_file)
            self._password_file.read()
        tls = cfg.url.startswith("https:")
        self._http = HttpClient(
            cfg.url,
            ssl_context=build_ssl_context(cfg.tls) if tls else None,
            server_hostname=(cfg.tls.server_name or None) if tls else None,
        )

    async def close(self) -> None:
        self.request_stop()
        if self._http is not None:
            await self._http.close()
            self._http = None

    def request_stop(self) -> None:
        """Make every pending and future backoff wait end at once (shutdown)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _headers(self, encoded: EncodedPush) -> dict[str, str]:
        """Static headers, the credential as of now (files are re-read), the body's type."""
        headers = dict(self._static_headers)
        cfg = self.config
        if cfg.bearer_token:
            headers["Authorization"] = f"Bearer {cfg.bearer_token}"
        elif self._bearer_file is not None:
            headers["Authorization"] = f"Bearer {self._bearer_file.read()}"
        elif cfg.basic_auth is not None:
            password = (
                self._password_file.read() if self._password_file else cfg.basic_auth.password
            )
            userpass = f"{cfg.basic_auth.username}:{password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(userpass).decode("ascii")
        headers.update(encoded.headers())
        return headers

    async def _post(self, encoded: EncodedPush) -> tuple[int | None, str, float | None]:
        """One attempt: (status or None for no answer, error text, Retry-After seconds)."""
        assert self._http is not None, "LokiPushClient.start() was not awaited"
        started = time.perf_counter()
        try:
            response = await self._http.request(
                "POST",
                headers=self._headers(encoded).items(),
                body=encoded.body,
                timeout=self.config.timeout or None,
                body_limit=_MAX_ERROR_BODY,
            )
        except (HttpError, TimeoutError, OSError) as exc:
            self.metrics.request_duration.labels("error").observe(time.perf_counter() - started)
            return None, f"{type(exc).__name__}: {exc}", None
        status = response.status
        text = ""
        if status >= 300 or status == BLOCKED_TENANT_STATUS:
            text = response.body.decode("utf-8", "replace").strip()
        self.metrics.request_duration.labels(str(status)).observe(time.perf_counter() - started)
        return status, text, _retry_after(response.headers.get("retry-after"))

    def _encode(self, batch: PushBatch) -> EncodedPush:
        return encode(batch, self.config.encoding, self.config.json_gzip)

    def seal(self, batch: PushBatch) -> PushBatch:
        """Encode ``batch`` now and let go of its entries; :meth:`send` posts the body.

        A batch held while earlier ones are sent (or Loki is down) then costs its
        compressed size, about a tenth of the entries as Python objects.
        """
        if batch.entry_count and batch.encoded is None:
            batch.encoded = self._encode(batch)
            batch.streams = {}
        return batch

    async def send(self, batch: PushBatch) -> SendResult:
        """POST ``batch`` until it is delivered, dropped for good, or a shutdown aborts it.

        After :meth:`request_stop` a send still makes one attempt (the final drain) but
        never waits to retry: a retryable failure then returns ``aborted``.
        """
        if not batch.entry_count:
            return SendResult(True)
        encoded = batch.encoded if batch.encoded is not None else self._encode(batch)
        backoff = self.config.backoff
        attempt = 0
        while True:
            attempt += 1
            status, text, retry_after = await self._post(encoded)
            if status is not None and 200 <= status < 300 and status != BLOCKED_TENANT_STATUS:
                self.metrics.dependencies.up(LOKI)
                self.metrics.sent_entries.inc(batch.entry_count)
                self.metrics.sent_bytes.inc(batch.size_bytes)
                self.metrics.encoded_bytes.inc(len(encoded.body))
                if attempt > 1:
                    log.debug("push to Loki succeeded after %d attempts", attempt)
                return SendResult(True, status=status, attempts=attempt)
            retryable = (
                status is None
                or status in (429, BLOCKED_TENANT_STATUS)
                or status in _MISCONFIGURED
                or status >= 500
            )
            if not retryable:
                log.warning(
                    "Loki refused a batch of %d entries with HTTP %s (not retried): %s",
                    batch.entry_count,
                    status,
                    text[:_MAX_ERROR_BODY],
                )
                return self._drop(batch, "ingester_error", status, attempt)
            if backoff.max_retries and attempt > backoff.max_retries:
                reason = "rate_limited" if status == 429 else "retries_exhausted"
                log.warning(
                    "dropping a batch of %d entries after %d attempts, last: %s %s",
                    batch.entry_count,
                    attempt,
                    status if status is not None else "no answer",
                    text[:200],
                )
                return self._drop(batch, reason, status, attempt)
            if self._stop.is_set():
                return SendResult(False, aborted=True, status=status, attempts=attempt)
            delay = backoff_delay(attempt, backoff.min_period, backoff.max_period)
            if retry_after is not None:
                delay = min(max(delay, retry_after), backoff.max_period)
            self._report(status, text)
            log.debug(
                "push to Loki failed (%s %s), retry %d in %.2fs",
                status if status is not None else "no answer",
                text[:200],
                attempt,
                delay,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
            if self._stop.is_set():
                return SendResult(False, aborted=True, status=status, attempts=attempt)
            self.metrics.batch_retries.inc()

    def _report(self, status: int | None, text: str) -> None:
        """The ``loki`` dependency is down: one stable reason per kind of failure."""
        url = self.config.url
        deps = self.metrics.dependencies
        if status is None:
            deps.down(
                LOKI,
                f"Loki unreachable at {url} ({text[:200]})",
                "check logs.loki.url and that Loki runs and is reachable from the agent; "
                "lines wait on disk meanwhile",
            )
        elif status in (401, 403):
            deps.down(
                LOKI,
                f"Loki refuses the agent's credentials (HTTP {status}: {text[:200]})",
                "check logs.loki.basic_auth, bearer_token(_file) and tenant_id (X-Scope-OrgID)"
                "; lines wait on disk until it is fixed",
            )
        elif status == 404:
            deps.down(
                LOKI,
                f"Loki answers 404 Not Found for {url}",
                "the push path is /loki/api/v1/push: logs.loki.url must end with it, e.g. "
                "http://loki:3100/loki/api/v1/push",
            )
        elif status in (429, BLOCKED_TENANT_STATUS):
            deps.down(
                LOKI,
                f"Loki rate-limits or blocks this tenant (HTTP {status})",
                "raise Loki's ingestion_rate_mb / ingestion_burst_size_mb for the tenant, "
                "or ship less; lines wait on disk meanwhile",
            )
        else:
            deps.down(
                LOKI,
                f"Loki fails with HTTP {status}",
                "see Loki's own logs; lines wait on disk meanwhile",
            )

    def _drop(self, batch: PushBatch, reason: str, status: int | None, attempts: int) -> SendResult:
        self.metrics.dropped_entries.labels(reason).inc(batch.entry_count)
        self.metrics.dropped_bytes.labels(reason).inc(batch.size_bytes)
        return SendResult(False, dropped=batch.entry_count, status=status, attempts=attempts)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a numeric ``Retry-After`` header (Loki itself does not send one)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
