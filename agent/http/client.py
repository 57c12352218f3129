"""An HTTP/1.1 client for one origin: keep-alive connections, timeouts, a streamed body.

One :class:`HttpClient` per peer (a Loki push URL, a Docker socket). Connections are kept
for the next request and thrown away when the peer closed them or a request failed; a
request on a kept connection that the peer closed meanwhile (its keep-alive timeout) is
sent once more on a new one, before any answer was read, so an idle gap never shows as
a failure. Bodies are read whole (up to a limit) or, for Docker's events, chunk by chunk.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import h11

Headers = Iterable[tuple[str, str]]

_READ_SIZE = 65536
_MAX_IDLE = 16  # kept connections; more in flight than this are closed after use


class HttpError(Exception):
    """The peer broke HTTP/1.1 or closed the connection before the answer was complete."""


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A whole answer. ``headers`` has lower-case names; ``body`` is cut at the limit asked."""

    status: int
    headers: dict[str, str]
    body: bytes


class _Connection:
    """One socket and its h11 state machine."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.protocol = h11.Connection(h11.CLIENT)
        # Any byte of an answer read on the current request: a kept connection that ends
        # before one (the peer closed it as it was reused) may take the request again.
        self.answered = False

    @property
    def usable(self) -> bool:
        return not (self.writer.is_closing() or self.reader.at_eof())

    async def send(self, *events: h11.Event) -> None:
        self.writer.write(b"".join(self.protocol.send(event) or b"" for event in events))
        await self.writer.drain()

    async def next_event(self) -> h11.Event | type[h11.PAUSED]:
        protocol = self.protocol
        while True:
            try:
                event = protocol.next_event()
            except h11.RemoteProtocolError as exc:
                raise HttpError(f"bad HTTP answer: {exc}") from None
            if event is not h11.NEED_DATA:
                return event  # type: ignore[return-value]  # h11's sentinel types
            data = await self.reader.read(_READ_SIZE)
            if data:
                self.answered = True
            protocol.receive_data(data)

    async def read_head(self) -> tuple[int, dict[str, str]]:
        while True:
            event = await self.next_event()
            if isinstance(event, h11.Response):
                return event.status_code, _header_dict(event.headers)
            if isinstance(event, h11.ConnectionClosed):
                raise HttpError("the server closed the connection without an answer")
            # h11.InformationalResponse (100 Continue and the like): the answer follows.

    async def read_chunk(self) -> bytes:
        """The next piece of the body; ``b""`` once the answer is complete."""
        if self.protocol.their_state is h11.DONE:
            return b""
        event = await self.next_event()
        if isinstance(event, h11.Data):
            return bytes(event.data)
        if isinstance(event, h11.EndOfMessage):
            return b""
        raise HttpError(f"unexpected {type(event).__name__} in an answer's body")

    def next_cycle(self) -> bool:
        """Ready the connection for another request; False if it cannot take one."""
        protocol = self.protocol
        if protocol.our_state is h11.DONE and protocol.their_state is h11.DONE:
            protocol.start_next_cycle()
            self.answered = False
            return self.usable
        return False

    def close(self) -> None:
        self.writer.close()


def _header_dict(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("ascii").lower()  # h11 lower-cases names already
        value = raw_value.decode("latin-1")
        found[name] = f"{found[name]}, {value}" if name in found else value
    return found


class HttpClient:
    """Requests to one origin: ``http://``, ``https://`` or ``unix:///path/to.sock``.

    ``connect_timeout`` bounds opening a connection (TLS handshake included); each call's
    ``timeout`` bounds the whole exchange. User info in the URL becomes basic auth unless
    a request sets its own ``Authorization``.
    """

    def __init__(
        self,
        url: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        connect_timeout: float | None = None,
    ) -> None:
        parts = urlsplit(url)
        self._unix_path: str | None = None
        self._ssl: ssl.SSLContext | None = None
        if parts.scheme == "unix":
            self._unix_path = unquote(parts.netloc + parts.path) or "/"
            self.host_header = "localhost"
            self._host, self._port = "localhost", 0
        else:
            if parts.scheme not in ("http", "https"):
                raise ValueError(f"unsupported URL scheme {parts.scheme!r} in {url!r}")
            tls = parts.scheme == "https"
            self._host = parts.hostname or "localhost"
            self._port = parts.port or (443 if tls else 80)
            host = f"[{self._host}]" if ":" in self._host else self._host
            self.host_header = host if parts.port is None else f"{host}:{parts.port}"
            if tls:
                self._ssl = ssl_context or ssl.create_default_context()
        self._server_hostname = server_hostname
        self.path = parts.path or "/"
        if parts.query:
            self.path += "?" + parts.query
        self._authorization: str | None = None
        if parts.username is not None:
            userpass = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self._authorization = "Basic " + base64.b64encode(userpass.encode()).decode()
        self._connect_timeout = connect_timeout
        self._idle: list[_Connection] = []

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _open(self) -> _Connection:
        if self._unix_path is not None:
            opening = asyncio.open_unix_connection(self._unix_path, limit=_READ_SIZE)
        elif self._ssl is not None:
            opening = asyncio.open_connection(
                self._host,
                self._port,
                ssl=self._ssl,
                server_hostname=self._server_hostname or self._host,
                limit=_READ_SIZE,
            )
        else:
            opening = asyncio.open_connection(self._host, self._port, limit=_READ_SIZE)
        reader, writer = await asyncio.wait_for(opening, self._connect_timeout)
        return _Connection(reader, writer)

    def _request_events(
        self, method: str, target: str | None, headers: Headers, body: bytes
    ) -> tuple[h11.Event, ...]:
        fields = [("Host", self.host_header)]
        fields.extend(headers)
        if self._authorization and not any(k.lower() == "authorization" for k, _ in fields):
            fields.append(("Authorization", self._authorization))
        if body or method in ("POST", "PUT", "PATCH"):
            fields.append(("Content-Length", str(len(body))))
        request = h11.Request(method=method, target=target or self.path, headers=fields)
        if body:
            return (request, h11.Data(data=body), h11.EndOfMessage())
        return (request, h11.EndOfMessage())

    async def request(
        self,
        method: str,
        target: str | None = None,
        headers: Headers = (),
        body: bytes = b"",
        *,
        timeout: float | None = None,
        body_limit: int = 1 << 20,
    ) -> HttpResponse:
        """One exchange; ``target`` defaults to the URL's own path and query.

        Raises :class:`HttpError`, ``OSError`` (connecting, a reset) or ``TimeoutError``.
        The body beyond ``body_limit`` bytes is not read (and the connection not kept).
        """
        events = self._request_events(method, target, headers, body)
        async with asyncio.timeout(timeout):
            while True:
                connection, kept = self._kept() or (await self._open(), False)
                try:
                    await connection.send(*events)
                    status, response_headers = await connection.read_head()
                    content = await _read_body(connection, body_limit)
                except (OSError, HttpError):
                    connection.close()
                    if kept and not connection.answered:
                        continue  # the peer dropped an idle connection: once more, fresh
                    raise
                except BaseException:  # a timeout or a cancel: the exchange is unfinished
                    connection.close()
                    raise
                self._release(connection)
                return HttpResponse(status, response_headers, content)

    @contextlib.asynccontextmanager
    async def stream(
        self, method: str, target: str, headers: Headers = ()
    ) -> AsyncIterator[HttpStream]:
        """An answer whose body is read as it arrives; no bound but the connect timeout."""
        connection = await self._open()
        try:
            await connection.send(*self._request_events(method, target, headers, b""))
            status, response_headers = await connection.read_head()
            yield HttpStream(status, response_headers, connection)
        finally:
            connection.close()

    def _kept(self) -> tuple[_Connection, bool] | None:
        while self._idle:
            connection = self._idle.pop()
            if connection.usable:
                return connection, True
            connection.close()
        return None

    def _release(self, connection: _Connection) -> None:
        if connection.next_cycle() and len(self._idle) < _MAX_IDLE:
            self._idle.append(connection)
        else:
            connection.close()


class HttpStream:
    """The head of a streamed answer and its body, a chunk at a time."""

    def __init__(self, status: int, headers: dict[str, str], connection: _Connection) -> None:
        self.status = status
        self.headers = headers
        self._connection = connection

    async def read_chunk(self) -> bytes:
        """The next piece of the body as the peer sent it; ``b""`` at its end."""
        return await self._connection.read_chunk()

    async def read(self, limit: int = 1 << 20) -> bytes:
        """The rest of the body, up to ``limit`` bytes."""
        return await _read_body(self._connection, limit)


async def _read_body(connection: _Connection, limit: int) -> bytes:
    content = bytearray()
    while len(content) < limit:
        chunk = await connection.read_chunk()
        if not chunk:
            break
        content += chunk
    return bytes(content[:limit])
