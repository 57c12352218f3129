"""The Loki that end-to-end tests push to and read back from.

By default it is the in-process :class:`~tests.loki_receiver.LokiReceiver`. With
``NEXO_TEST_LOKI_URL=http://host:3100`` set, the same receiver runs as a proxy in front of
that real Loki (validation and fault injection still apply; accepted requests are forwarded
byte for byte) and :meth:`LokiBackend.fetch` reads back through ``query_range``, so every
end-to-end test also checks the real thing. ``NEXO_TEST_LOKI_TENANT`` sets the tenant used
for queries (and added to pushes that carry none) when that Loki runs with auth enabled.

Tests assert through ``fetch()`` only and isolate their data with a unique ``host`` label
value (:func:`unique_host`). Use the fixture by importing it into ``conftest.py``::

    from tests.loki_backend import loki  # noqa: F401
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from tests.loki_receiver import (
    NS,
    PUSH_PATH,
    QUERY_RANGE_PATH,
    LokiReceiver,
    ReceivedEntry,
    render_selector,
)

# Loki adds these on ingest when the client did not send them (discover_service_name,
# discover_log_levels); fetch() hides them so assertions read the same in both modes.
_LOKI_ADDED_LABELS = ("service_name",)
_LOKI_ADDED_METADATA = ("detected_level",)
_QUERY_LIMIT = 5000  # Loki's default max_entries_limit_per_query


def unique_host(prefix: str = "e2e") -> str:
    """A ``host`` label value no other test (or earlier run against a real Loki) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@dataclass
class LokiBackend:
    """What an end-to-end test talks to: where to push, the receiver, and how to read back."""

    receiver: LokiReceiver
    real_url: str | None = None
    tenant: str | None = None
    query_limit: int = _QUERY_LIMIT
    _session: aiohttp.ClientSession | None = field(default=None, repr=False)

    @staticmethod
    async def start(real_url: str | None = None, tenant: str | None = None) -> LokiBackend:
        """The receiver, started; a proxy to ``real_url`` (a Loki base URL) when given."""
        upstream = real_url.rstrip("/") + PUSH_PATH if real_url else None
        receiver = LokiReceiver(upstream_url=upstream, upstream_tenant=tenant)
        await receiver.start()
        session = None
        if real_url:
            session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return LokiBackend(receiver, real_url, tenant, _session=session)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        await self.receiver.close()

    @property
    def push_url(self) -> str:
        """The URL to configure the agent with (always the receiver, real Loki or not)."""
        return self.receiver.push_url

    @property
    def is_real(self) -> bool:
        return self.real_url is not None

    async def fetch(
        self,
        selector: dict[str, str],
        start_ns: int | None = None,
        end_ns: int | None = None,
        tenant: str | None = None,
    ) -> list[ReceivedEntry]:
        """Entries whose labels include ``selector`` with ``start_ns <= ts < end_ns``.

        Sorted by timestamp (stable, so equal timestamps keep arrival order in-process).
        """
        now = time.time_ns()
        start = now - 7 * 86400 * NS if start_ns is None else start_ns
        end = now + 3600 * NS if end_ns is None else end_ns
        if self.real_url is None:
            found = [e for e in self.receiver.entries(selector, tenant) if start <= e.ts_ns < end]
            return sorted(found, key=lambda e: e.ts_ns)
        return await self._query_range(selector, start, end, tenant or self.tenant)

    async def wait_for(
        self,
        selector: dict[str, str],
        count: int,
        within: float = 15.0,
        start_ns: int | None = None,
    ) -> list[ReceivedEntry]:
        """Poll :meth:`fetch` until at least ``count`` entries are there (or time runs out)."""
        deadline = time.monotonic() + within
        while True:
            found = await self.fetch(selector, start_ns)
            if len(found) >= count or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.05 if self.real_url is None else 0.5)

    async def _query_range(
        self, selector: dict[str, str], start: int, end: int, tenant: str | None
    ) -> list[ReceivedEntry]:
        assert self._session is not None and self.real_url is not None
        headers = {"X-Loki-Response-Encoding-Flags": "categorize-labels"}
        if tenant:
            headers["X-Scope-OrgID"] = tenant
        query = render_selector(sorted(selector.items()))
        pushed = self._pushed_index()
        out: list[ReceivedEntry] = []
        seen_at_boundary: dict[tuple[Any, ...], int] = {}
        while True:
            params = {
                "query": query,
                "start": str(start),
                "end": str(end),
                "limit": str(self.query_limit),
                "direction": "forward",
            }
            async with self._session.get(
                self.real_url.rstrip("/") + QUERY_RANGE_PATH,
                params=params,
                headers=headers,
            ) as response:
                response.raise_for_status()
                doc = await response.json()
            page = [
                self._entry(stream["stream"], value, tenant or "fake", pushed)
                for stream in doc["data"]["result"]
                for value in stream["values"]
            ]
            page.sort(key=lambda e: e.ts_ns)
            # Paging restarts at the last timestamp (start is inclusive): skip what was
            # already returned at that timestamp.
            fresh = []
            for entry in page:
                key = (tuple(sorted(entry.labels.items())), entry.ts_ns, entry.line)
                if seen_at_boundary.get(key, 0) > 0:
                    seen_at_boundary[key] -= 1
                    continue
                fresh.append(entry)
            out.extend(fresh)
            if len(page) < self.query_limit or not fresh:
                return out
            start = page[-1].ts_ns
            seen_at_boundary = {}
            for entry in page:
                if entry.ts_ns == start:
                    key = (tuple(sorted(entry.labels.items())), entry.ts_ns, entry.line)
                    seen_at_boundary[key] = seen_at_boundary.get(key, 0) + 1

    def _pushed_index(self) -> dict[tuple[Any, ...], ReceivedEntry]:
        """What the proxy saw accepted, to tell client-sent fields from Loki-added ones."""
        return {(e.ts_ns, e.line): e for e in self.receiver.entries()}

    @staticmethod
    def _entry(
        labels: dict[str, str],
        value: list[Any],
        tenant: str,
        pushed: dict[tuple[Any, ...], ReceivedEntry],
    ) -> ReceivedEntry:
        ts_ns, line = int(value[0]), value[1]
        categories = value[2] if len(value) > 2 else {}
        metadata = dict(categories.get("structuredMetadata") or {})
        sent = pushed.get((ts_ns, line))
        labels = dict(labels)
        for name in _LOKI_ADDED_LABELS:
            if name in labels and (sent is None or name not in sent.labels):
                del labels[name]
        for name in _LOKI_ADDED_METADATA:
            if name in metadata and (sent is None or name not in sent.metadata):
                del metadata[name]
        return ReceivedEntry(labels, ts_ns, line, metadata, tenant)


@pytest.fixture
async def loki() -> AsyncIterator[LokiBackend]:
    """A started Loki backend (in-process, or a proxy to ``NEXO_TEST_LOKI_URL``)."""
    backend = await LokiBackend.start(
        os.environ.get("NEXO_TEST_LOKI_URL") or None,
        os.environ.get("NEXO_TEST_LOKI_TENANT") or None,
    )
    try:
        yield backend
    finally:
        await backend.close()
