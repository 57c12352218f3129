"""The few Docker Engine API calls the agent makes: version, info, list, inspect, events.

Paths are unversioned, so the daemon answers in its own API version; the fields read are
stable since API 1.24. ``docker.host`` forms: ``unix://`` (the socket), ``tcp://`` and
``http://`` (plain), ``https://`` (TLS with the Docker CLI's ``DOCKER_CERT_PATH``
ca.pem/cert.pem/key.pem; the daemon's certificate is always verified).
"""

from __future__ import annotations

import os
import ssl
from collections.abc import AsyncGenerator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import orjson

from agent.http.client import HttpClient

# An events record is a few hundred bytes to a few KiB (labels); one that outgrows this
# means the stream is not what it claims to be.
_MAX_EVENT_BYTES = 16 << 20


class DockerApiError(Exception):
    """The daemon answered with an error status (its JSON ``message`` as the text)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Docker API error {status}: {message}")
        self.status = status
        self.message = message


def _tls_context() -> ssl.SSLContext:
    """TLS to a remote daemon, always verified: against DOCKER_CERT_PATH's ca.pem when
    there is one (else the system CAs), presenting its cert.pem/key.pem when there are."""
    cert_dir = Path(os.environ.get("DOCKER_CERT_PATH") or Path.home() / ".docker")
    ca = cert_dir / "ca.pem"
    context = ssl.create_default_context(cafile=str(ca) if ca.is_file() else None)
    cert, key = cert_dir / "cert.pem", cert_dir / "key.pem"
    if cert.is_file() and key.is_file():
        context.load_cert_chain(str(cert), str(key))
    return context


class DockerClient:
    """One daemon. Each call is bounded by ``timeout``; the events stream only by connecting."""

    def __init__(self, host: str, timeout: float) -> None:
        url = "http://" + host.removeprefix("tcp://") if host.startswith("tcp://") else host
        tls = _tls_context() if url.startswith("https://") else None
        self._http = HttpClient(url, ssl_context=tls, connect_timeout=timeout)
        self._timeout = timeout

    async def close(self) -> None:
        await self._http.close()

    async def __aenter__(self) -> DockerClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _get(self, target: str) -> Any:
        response = await self._http.request(
            "GET", target, timeout=self._timeout, body_limit=256 << 20
        )
        if response.status >= 300:
            raise DockerApiError(response.status, _message(response.body))
        return orjson.loads(response.body)

    async def version(self) -> dict[str, Any]:
        return dict(await self._get("/version"))

    async def info(self) -> dict[str, Any]:
        return dict(await self._get("/info"))

    async def containers(self) -> list[dict[str, Any]]:
        """Every container's summary, stopped ones included."""
        return list(await self._get("/containers/json?all=1"))

    async def inspect(self, container_id: str) -> dict[str, Any] | None:
        """A container's inspect document, or ``None`` when it is gone (404)."""
        try:
            return dict(await self._get(f"/containers/{quote(container_id, safe='')}/json"))
        except DockerApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def events(
        self, filters: Mapping[str, list[str]], since: str
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Events from ``since`` on, as the daemon writes them (one JSON object a line),
        until the stream ends; a broken stream raises."""
        query = urlencode({"filters": orjson.dumps(dict(filters)).decode(), "since": since})
        async with self._http.stream("GET", f"/events?{query}") as stream:
            if stream.status >= 300:
                raise DockerApiError(stream.status, _message(await stream.read(65536)))
            pending = b""
            while chunk := await stream.read_chunk():
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield orjson.loads(line)
                if len(pending) > _MAX_EVENT_BYTES:
                    raise ValueError(f"a Docker event over {_MAX_EVENT_BYTES} bytes")
            if pending.strip():
                yield orjson.loads(pending)


def _message(body: bytes) -> str:
    try:
        return str(orjson.loads(body).get("message") or body[:300].decode("utf-8", "replace"))
    except (orjson.JSONDecodeError, AttributeError):
        return body[:300].decode("utf-8", "replace").strip()
