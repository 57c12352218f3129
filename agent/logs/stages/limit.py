"""``limit``: cap how many entries a stream ships per second (a token bucket per stream).

A container stuck in a loop can write a hundred thousand lines a second; this keeps it
from filling Loki's ingestion limit for everyone else on the tenant.

.. code-block:: yaml

    - limit:
        rate: 100        # entries per second, per stream (stdout, stderr) of the target
        burst: 500       # entries let through at once after a quiet spell (default: rate)
        drop: true       # drop what is over the rate (default); false: hold it back

With ``drop: true`` entries over the rate are dropped and counted in
``nexo_agent_stage_dropped_entries_total{reason="rate_limited"}``. With ``drop: false``
nothing is lost: entries over the rate wait, in order, and go as the bucket refills; while
any wait, the reader stops reading, so the log file on disk is the buffer, not memory
(Promtail's ``drop: false`` blocks its pipeline the same way).
"""

from __future__ import annotations

import heapq
import time
from collections import deque

from pydantic import Field

from agent.logs.stages.base import Entry, Resume, Stage, StageContext
from agent.logs.stages.options import StageConfig


class LimitConfig(StageConfig):
    rate: float = Field(gt=0, allow_inf_nan=False)
    burst: int | None = Field(default=None, ge=1)
    drop: bool = True


class _Bucket:
    """One stream's tokens, and what it holds back when lossless."""

    __slots__ = ("held", "held_bytes", "last", "tokens")

    def __init__(self, tokens: float, now: float) -> None:
        self.tokens = tokens
        self.last = now
        self.held: deque[Entry] = deque()
        self.held_bytes = 0


class Limit(Stage):
    type_name = "limit"
    config_class = LimitConfig

    def __init__(self, config: StageConfig, context: StageContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, LimitConfig)
        self.rate = config.rate
        self.burst = float(config.burst if config.burst is not None else max(1, int(config.rate)))
        self.drop = config.drop
        # The wall clock, as the reader's ``flush(time.time())``; steps back are absorbed.
        self.clock = context.clock or time.time
        self.buckets: dict[str, _Bucket] = {}

    def _refill(self, bucket: _Bucket, now: float) -> None:
        elapsed = now - bucket.last
        if elapsed > 0:
            bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.rate)
        bucket.last = now  # also when the clock stepped back: count from here

    def _bucket(self, stream: str, now: float) -> _Bucket:
        bucket = self.buckets.get(stream)
        if bucket is None:
            bucket = self.buckets[stream] = _Bucket(self.burst, now)
        else:
            self._refill(bucket, now)
        return bucket

    def apply(self, entries: list[Entry]) -> list[Entry]:
        now = self.clock()
        buckets: dict[str, _Bucket] = {}  # refilled once per batch
        kept: list[Entry] = []
        dropped = 0
        drop = self.drop
        for e in entries:
            bucket = buckets.get(e.stream)
            if bucket is None:
                bucket = buckets[e.stream] = self._bucket(e.stream, now)
            if drop:
                if bucket.tokens >= 1.0:
                    bucket.tokens -= 1.0
                    kept.append(e)
                else:
                    dropped += 1
            elif not bucket.held and bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                kept.append(e)
            else:
                bucket.held.append(e)
                bucket.held_bytes += e.size
        if dropped:
            self.count_drop("rate_limited", dropped)
        return kept

    def flush(self, now: float, final: bool) -> list[Entry]:
        released: list[list[Entry]] = []
        for bucket in self.buckets.values():
            held = bucket.held
            if not held:
                continue
            self._refill(bucket, now)
            out: list[Entry] = []
            if final:
                out.extend(held)
                held.clear()
                bucket.held_bytes = 0
            else:
                while held and bucket.tokens >= 1.0:
                    bucket.tokens -= 1.0
                    e = held.popleft()
                    bucket.held_bytes -= e.size
                    out.append(e)
            if out:
                released.append(out)
        if len(released) <= 1:
            return released[0] if released else []
        # Streams interleave as they were read; each keeps its own order.
        return list(heapq.merge(*released, key=lambda e: e.resume[:2]))

    def oldest_held(self) -> Resume | None:
        oldest: Resume | None = None
        for bucket in self.buckets.values():
            if bucket.held:
                resume = bucket.held[0].resume
                if oldest is None or resume[:2] < oldest[:2]:
                    oldest = resume
        return oldest

    def held_bytes(self) -> int:
        return sum(bucket.held_bytes for bucket in self.buckets.values())

    def wants_pause(self) -> bool:
        return any(bucket.held for bucket in self.buckets.values())


STAGE = Limit
