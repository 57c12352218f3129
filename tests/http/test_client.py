"""The agent's HTTP client against scripted peers on 127.0.0.1 and a unix socket."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from agent.http.client import HttpClient, HttpError

Peer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return lines[0], headers, body


def answer(status: int, body: bytes = b"", extra: str = "") -> bytes:
    return f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


class ScriptedPeer:
    """A TCP server running ``peer`` per connection; counts connections."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.connections = 0
        self.url = ""
        self._server: asyncio.AbstractServer | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.peer(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> ScriptedPeer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/push?x=1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()


Seen = list[tuple[str, dict[str, str], bytes]]


async def test_requests_share_one_kept_connection() -> None:
    seen: Seen = []

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            seen.append(await read_request(reader))
            writer.write(answer(204))

    async with ScriptedPeer(peer) as server, HttpClient(server.url) as client:
        for n in range(3):
            response = await client.request("POST", body=b"batch %d" % n, headers=[("A", "b")])
            assert response.status == 204 and response.body == b""
    assert server.connections == 1
    assert [s[0] for s in seen] == ["POST /push?x=1 HTTP/1.1"] * 3
    assert seen[2][1]["host"] == server.url.split("/")[2]
    assert seen[2][1]["a"] == "b" and seen[2][2] == b"batch 2"


async def test_a_kept_connection_the_peer_closed_is_replaced_without_a_failure() -> None:
    """A keep-alive timeout on the server's side must not cost a failed push."""

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(204))
        await writer.drain()  # then close: the client still holds the connection

    async with ScriptedPeer(peer) as server, HttpClient(server.url) as client:
        assert (await client.request("POST", body=b"1")).status == 204
        await asyncio.sleep(0.05)
        assert (await client.request("POST", body=b"2")).status == 204
    assert server.connections == 2


async def test_a_kept_connection_closed_unanswered_as_it_is_reused_is_retried_once() -> None:
    """The peer's idle close can cross the next request: it is sent again, fresh."""

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(204))
        await writer.drain()
        await read_request(reader)  # the second request on this connection: no answer

    async with ScriptedPeer(peer) as server, HttpClient(server.url) as client:
        assert (await client.request("POST", body=b"1")).status == 204
        assert (await client.request("POST", body=b"2")).status == 204
    assert server.connections == 2


async def test_a_reset_after_the_request_was_answered_in_part_is_an_error() -> None:
    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
        await writer.drain()

    async with ScriptedPeer(peer) as server, HttpClient(server.url) as client:
        with pytest.raises(HttpError):
            await client.request("POST", body=b"x")


async def test_garbage_instead_of_an_answer_is_an_http_error() -> None:
    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"\x00\x01 not http at all\r\n\r\n")
        await writer.drain()

    async with ScriptedPeer(peer) as server, HttpClient(server.url) as client:
        with pytest.raises(HttpError):
            await client.request("GET")


async def test_a_silent_peer_times_out() -> None:
    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(30)

    async with ScriptedPeer(peer) as server, HttpClient(server.url) as client:
        with pytest.raises(TimeoutError):
            await client.request("GET", timeout=0.2)


async def test_a_refused_connection_raises_connection_refused() -> None:
    async with ScriptedPeer(lambda r, w: asyncio.sleep(0)) as server:
        url = server.url
    with pytest.raises(ConnectionRefusedError):
        await HttpClient(url).request("GET")


async def test_body_is_cut_at_the_limit_and_the_connection_not_kept() -> None:
    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(answer(500, b"e" * 100_000))

    async with ScriptedPeer(peer) as server, HttpClient(server.url) as client:
        for _ in range(2):
            response = await client.request("GET", body_limit=1024)
            assert response.status == 500 and response.body == b"e" * 1024
    assert server.connections == 2


async def test_chunked_answers_and_repeated_headers_are_read() -> None:
    seen: Seen = []

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        writer.write(
            b"HTTP/1.1 429 Too Many\r\nTransfer-Encoding: chunked\r\nRetry-After: 3\r\n"
            b"X-A: 1\r\nX-A: 2\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        )

    async with ScriptedPeer(peer) as server:
        url_with_user = server.url.replace("http://", "http://us%40er:p%3Ass@")
        async with HttpClient(url_with_user) as client:
            response = await client.request("GET")
    assert response.status == 429 and response.body == b"hello world"
    assert response.headers["retry-after"] == "3" and response.headers["x-a"] == "1, 2"
    expected = "Basic " + base64.b64encode(b"us@er:p:ss").decode()
    assert seen[0][1]["authorization"] == expected


async def test_a_unix_socket_streams_lines_as_they_come(tmp_path: Path) -> None:
    sent = asyncio.Event()

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        writer.write(b"6\r\none\ntw\r\n")
        await writer.drain()
        await sent.wait()
        writer.write(b"3\r\no\n\n\r\n0\r\n\r\n")
        await writer.drain()

    path = tmp_path / "d.sock"
    server = await asyncio.start_unix_server(peer, str(path))
    try:
        client = HttpClient(f"unix://{path}")
        async with client.stream("GET", "/events") as stream:
            assert stream.status == 200
            assert await stream.read_chunk() == b"one\ntw"
            sent.set()
            assert await stream.read() == b"o\n\n"
            assert await stream.read_chunk() == b""
    finally:
        server.close()
