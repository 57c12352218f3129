"""A small HTTP/1.1 server: GET and HEAD on a few paths, keep-alive, TLS from the caller.

It serves ``/metrics``, ``/healthz`` and ``/ready`` to Prometheus and probes, nothing
else, so it is kept to what they need: requests are read whole (a body over 64 KiB is
refused), a connection idle for 75 s is closed (aiohttp's keep-alive timeout), a
malformed request gets 400 and a closed connection. One ``guard`` coroutine sees every
request before its route (the web config's rate limit, client certificates, basic auth).
At most ``max_connections`` are open at once: each holds a file descriptor, and an agent
out of them can no longer open the logs it tails. One more gets 503 and is closed.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from typing import Any

import h11

log = logging.getLogger("agent.http")

_READ_SIZE = 65536
_MAX_REQUEST_BODY = 64 * 1024
_IDLE_TIMEOUT = 75.0
_TEXT = "text/plain; charset=utf-8"
_REASONS = {int(status): status.phrase.encode("ascii") for status in HTTPStatus}


@dataclass(slots=True)
class Request:
    """What a handler may look at: method, path, query, headers (lower-case names)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    extra_info: Callable[[str], Any]  # the transport's get_extra_info ("peercert", ...)

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


@dataclass(slots=True)
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def text(cls, text: str, status: int = 200) -> Response:
        return cls(status, text.encode("utf-8"), {"Content-Type": _TEXT})


Handler = Callable[[Request], Awaitable[Response]]
Guard = Callable[[Request, Handler], Awaitable[Response]]


class HttpServer:
    """Routes GET (and HEAD) by exact path; ``guard`` wraps every request, routed or not."""

    def __init__(
        self,
        routes: Mapping[str, Handler],
        guard: Guard | None = None,
        *,
        max_connections: int = 0,
        on_refused: Callable[[], None] | None = None,
    ) -> None:
        self._routes = routes
        self._guard = guard
        self._max_connections = max_connections  # 0: no cap
        self._on_refused = on_refused
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[asyncio.StreamWriter] = set()

    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext | None) -> int:
        """Listen; returns the port bound (``port`` 0 picks a free one)."""
        self._server = await asyncio.start_server(
            self._serve, host, port, ssl=ssl_context, reuse_address=True, limit=_READ_SIZE
        )
        sockets = self._server.sockets
        return int(sockets[0].getsockname()[1]) if sockets else port

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._connections):
            writer.close()
        await self._server.wait_closed()
        self._server = None

    async def _route(self, request: Request) -> Response:
        handler = self._routes.get(request.path)
        if handler is None:
            return Response.text("404: Not Found", 404)
        if request.method not in ("GET", "HEAD"):
            response = Response.text("405: Method Not Allowed", 405)
            response.headers["Allow"] = "GET, HEAD"
            return response
        return await handler(request)

    async def _respond(self, request: Request) -> Response:
        try:
            if self._guard is not None:
                return await self._guard(request, self._route)
            return await self._route(request)
        except Exception:
            log.exception("error answering %s %s", request.method, request.path)
            return Response.text("500: Internal Server Error", 500)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._max_connections and len(self._connections) >= self._max_connections:
            self._refuse(writer)
            return
        self._connections.add(writer)
        protocol = h11.Connection(h11.SERVER)
        try:
            while True:
                try:
                    async with asyncio.timeout(_IDLE_TIMEOUT):
                        request = await _read_request(protocol, reader, writer)
                except h11.RemoteProtocolError as exc:
                    if protocol.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                        status = exc.error_status_hint
                        refusal = Response.text(f"{status}\n", status)
                        await _send(protocol, writer, "GET", refusal, True)
                    break
                if request is None:
                    break
                if isinstance(request, Response):  # refused while reading (body too large)
                    await _send(protocol, writer, "GET", request, True)
                    break
                response = await self._respond(request)
                await _send(protocol, writer, request.method, response, False)
                if protocol.our_state is not h11.DONE or protocol.their_state is not h11.DONE:
                    break
                protocol.start_next_cycle()
        except (OSError, TimeoutError, h11.LocalProtocolError):
            pass  # the peer left, stalled or cannot be answered: just close
        finally:
            self._connections.discard(writer)
            writer.close()

    def _refuse(self, writer: asyncio.StreamWriter) -> None:
        """503 before reading the request (HTTP/1.1 allows it), so the scraper logs a reason
        instead of a reset connection; the 503 is written without waiting on the peer."""
        if self._on_refused is not None:
            self._on_refused()
        writer.write(_TOO_MANY_CONNECTIONS)
        writer.close()


_TOO_MANY_CONNECTIONS = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 25\r\nConnection: close\r\n\r\n503: too many connections"
)


async def _next_event(
    protocol: h11.Connection, reader: asyncio.StreamReader
) -> h11.Event | type[h11.PAUSED] | type[h11.NEED_DATA]:
    while True:
        event = protocol.next_event()
        if event is not h11.NEED_DATA:
            return event
        protocol.receive_data(await reader.read(_READ_SIZE))


async def _read_request(
    protocol: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> Request | Response | None:
    """The next request with its body read (and ignored); None when the client is done."""
    event = await _next_event(protocol, reader)
    if not isinstance(event, h11.Request):
        return None  # ConnectionClosed, or PAUSED after a client's Connection: close
    target = event.target.decode("ascii", "replace")
    path, _, query = target.partition("?")
    headers: dict[str, str] = {}
    for raw_name, raw_value in event.headers:
        name = raw_name.decode("ascii")
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    received = 0
    while True:
        part = await _next_event(protocol, reader)
        if isinstance(part, h11.Data):
            received += len(part.data)
            if received > _MAX_REQUEST_BODY:
                return Response.text("413: Request Entity Too Large", 413)
        elif isinstance(part, h11.EndOfMessage):
            break
        else:
            return None
    method = event.method.decode("ascii", "replace")
    return Request(method, path, query, headers, writer.get_extra_info)


async def _send(
    protocol: h11.Connection,
    writer: asyncio.StreamWriter,
    method: str,
    response: Response,
    closing: bool,
) -> None:
    """Write ``response``; ``closing``: the connection ends after it, and says so."""
    headers = [(name, value) for name, value in response.headers.items()]
    headers.append(("Content-Length", str(len(response.body))))
    headers.append(("Date", formatdate(usegmt=True)))
    if closing:
        headers.append(("Connection", "close"))
    reason = _REASONS.get(response.status, b"")
    head = h11.Response(status_code=response.status, headers=headers, reason=reason)
    data = protocol.send(head) or b""
    if response.body and method != "HEAD":
        data += protocol.send(h11.Data(data=response.body)) or b""
    data += protocol.send(h11.EndOfMessage()) or b""
    writer.write(data)
    await writer.drain()
