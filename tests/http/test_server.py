"""The agent's HTTP server, spoken to over raw sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from agent.http.server import Handler, HttpServer, Request, Response


async def hello(request: Request) -> Response:
    return Response.text(f"hello {request.query} {request.header('X-Name')}\n")


async def broken(request: Request) -> Response:
    raise RuntimeError("a bug in a handler")


@pytest.fixture
async def port() -> AsyncIterator[int]:
    server = HttpServer({"/hello": hello, "/broken": broken})
    yield await server.start("127.0.0.1", 0, None)
    await server.stop()


async def exchange(port: int, raw: bytes) -> bytes:
    """Send ``raw`` and read until the server closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(1 << 20), 5)
    finally:
        writer.close()


async def test_keep_alive_answers_pipelined_requests_on_one_connection(port: int) -> None:
    raw = (
        b"GET /hello?a=1 HTTP/1.1\r\nHost: x\r\nX-Name: one\r\n\r\n"
        b"HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    answer = await exchange(port, raw)
    assert answer.count(b"HTTP/1.1 200 OK\r\n") == 3
    assert b"hello a=1 one\n" in answer and answer.endswith(b"hello  \n")
    # HEAD: the GET's length, and no body (only the last GET carries "hello  \n").
    assert answer.count(b"Content-Length: 8\r\n") == 2 and answer.count(b"hello  \n") == 1


async def test_unknown_paths_and_methods_are_refused(port: int) -> None:
    answer = await exchange(port, b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 404 Not Found\r\n")
    raw = b"POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nab"
    answer = await exchange(port, raw)
    assert answer.startswith(b"HTTP/1.1 405 Method Not Allowed\r\n")
    assert b"Allow: GET, HEAD\r\n" in answer


async def test_malformed_requests_get_400_and_a_closed_connection(port: int) -> None:
    for raw in (b"\x16\x03\x01 binary junk\r\n\r\n", b"GET / HTTP/1.1\r\nno colon\r\n\r\n"):
        answer = await exchange(port, raw)
        assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer


async def test_a_large_body_is_refused_without_reading_it(port: int) -> None:
    raw = b"GET /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n" + b"x" * 70_000
    answer = await exchange(port, raw)
    assert answer.startswith(b"HTTP/1.1 413 Request Entity Too Large\r\n")


async def test_a_failing_handler_answers_500_and_the_server_goes_on(port: int) -> None:
    answer = await exchange(port, b"GET /broken HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    answer = await exchange(port, b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")


async def test_the_guard_sees_every_request_routed_or_not() -> None:
    seen: list[str] = []

    async def guard(request: Request, handler: Handler) -> Response:
        seen.append(request.path)
        if request.header("Authorization") != "yes":
            return Response.text("no\n", 401)
        return await handler(request)

    server = HttpServer({"/hello": hello}, guard)
    port = await server.start("127.0.0.1", 0, None)
    try:
        close = b"Connection: close\r\n\r\n"
        assert (await exchange(port, b"GET /hello HTTP/1.1\r\nHost: x\r\n" + close)).startswith(
            b"HTTP/1.1 401 Unauthorized"
        )
        raw = b"GET /nope HTTP/1.1\r\nHost: x\r\nAuthorization: yes\r\n" + close
        assert (await exchange(port, raw)).startswith(b"HTTP/1.1 404")
    finally:
        await server.stop()
    assert seen == ["/hello", "/nope"]


async def test_stop_closes_idle_keep_alive_connections() -> None:
    server = HttpServer({"/hello": hello})
    port = await server.start("127.0.0.1", 0, None)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    assert (await reader.readuntil(b"hello  \n")).startswith(b"HTTP/1.1 200 OK")
    await asyncio.wait_for(server.stop(), 5)
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
