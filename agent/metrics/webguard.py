"""What a web config asks of every request: rate limit, client certificate, basic auth, headers.

Basic auth follows exporter-toolkit's handler: bcrypt (deliberately slow, tens of ms a
check) runs one at a time and off the event loop, and its verdicts are cached per
(user, hash, password) so a scrape every 15 s costs one bcrypt check, not one a scrape.
An unknown user is checked against a fixed hash, so timing does not tell which users exist.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import random
import ssl
import time
from collections.abc import Callable

from prometheus_client import Counter

from agent.http.server import Handler, Request, Response
from agent.metrics.webconfig import RateLimit, WebConfig

# bcrypt of "fakepassword", exporter-toolkit's stand-in hash for unknown users.
_FAKE_HASH = b"$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi"
_CACHE_SIZE = 100

HEALTH_PATHS = frozenset({"/healthz", "/ready"})


class TokenBucket:
    """Go's ``rate.NewLimiter(rate.Every(interval), burst)``: ``allow()`` or not."""

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._tokens = float(limit.burst)
        self._at = time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self._tokens = min(
            float(self.limit.burst), self._tokens + (now - self._at) / self.limit.interval
        )
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class BasicAuthCheck:
    """Verdicts of bcrypt checks, cached with random eviction like exporter-toolkit's."""

    def __init__(self) -> None:
        self._verdicts: dict[tuple[str, bytes, str], bool] = {}
        self._bcrypt_lock = asyncio.Lock()

    async def allowed(self, users: dict[str, bytes], header: str | None) -> bool:
        credentials = _basic_credentials(header)
        if credentials is None:
            return False
        user, password = credentials
        hashed = users.get(user)
        key = (user, hashed or _FAKE_HASH, password)
        verdict = self._verdicts.get(key)
        if verdict is None:
            async with self._bcrypt_lock:
                matches = await asyncio.to_thread(_bcrypt_check, password, key[1])
            verdict = hashed is not None and matches
            if len(self._verdicts) >= _CACHE_SIZE:
                for victim in random.sample(list(self._verdicts), len(self._verdicts) // 10 + 1):
                    del self._verdicts[victim]
            self._verdicts[key] = verdict
        return verdict


def _bcrypt_check(password: str, hashed: bytes) -> bool:
    import bcrypt  # only hosts with basic auth pay for the import

    try:
        # Go's $2y$ is bcrypt's $2b$ (both the fixed variant); the library knows $2b$.
        if hashed.startswith(b"$2y$"):
            hashed = b"$2b$" + hashed[4:]
        return bool(bcrypt.checkpw(password.encode(), hashed))
    except ValueError:
        return False


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


class WebGuard:
    """Applies the web config in force to each request, before its route."""

    def __init__(
        self,
        current: Callable[[], WebConfig],
        health_endpoints_open: bool,
        refused: Counter,
    ) -> None:
        self._current = current
        self._health_open = health_endpoints_open
        self._refused = refused
        self._auth = BasicAuthCheck()
        self._bucket: TokenBucket | None = None

    async def check(self, request: Request, handler: Handler) -> Response:
        config = self._current()
        response = await self._checked(config, request, handler)
        for name, value in config.headers.items():
            response.headers[name] = value
        return response

    async def _checked(self, config: WebConfig, request: Request, handler: Handler) -> Response:
        if config.rate_limit is None:
            self._bucket = None
        elif self._bucket is None or self._bucket.limit != config.rate_limit:
            self._bucket = TokenBucket(config.rate_limit)
        if self._bucket is not None and not self._bucket.allow():
            return self._refuse("rate_limited", 429, "Too Many Requests")
        tls = config.tls
        if tls is not None and (
            tls.client_allowed_sans is not None or tls.verify_mode == ssl.CERT_REQUIRED
        ):
            peer = request.extra_info("peercert")
            # A connection accepted before a reload turned client certificates on has none:
            # fail closed rather than serve it under the old settings.
            if not peer:
                return self._refuse("forbidden", 403, "client certificate required")
            sans = tls.client_allowed_sans
            if sans is not None and not any(
                value in sans for _kind, value in peer.get("subjectAltName", ())
            ):
                return self._refuse("forbidden", 403, "client certificate SAN not allowed")
        if not config.users or (self._health_open and request.path in HEALTH_PATHS):
            return await handler(request)
        if await self._auth.allowed(config.users, request.header("Authorization")):
            return await handler(request)
        response = self._refuse("unauthorized", 401, "Unauthorized")
        response.headers["WWW-Authenticate"] = "Basic"
        return response

    def _refuse(self, reason: str, status: int, text: str) -> Response:
        self._refused.labels(reason).inc()
        return Response.text(text + "\n", status)
