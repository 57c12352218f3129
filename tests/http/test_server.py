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


async def test_connections_beyond_the_cap_get_503_and_the_held_ones_still_work() -> None:
    refused: list[int] = []
    server = HttpServer({"/hello": hello}, max_connections=2, on_refused=lambda: refused.append(1))
    port = await server.start("127.0.0.1", 0, None)
    request = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
    held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
    try:
        for reader, writer in held:  # both served, both kept open (idle keep-alive)
            writer.write(request)
            assert (await reader.readuntil(b"hello  \n")).startswith(b"HTTP/1.1 200 OK")
        answer = await exchange(port, request)  # a third: refused at once, then closed
        assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
        assert answer.endswith(b"\r\n\r\n503: too many connections")
        assert b"Connection: close\r\n" in answer
        assert refused == [1]
        reader, writer = held[0]
        writer.write(request)  # the held ones go on
        assert (await reader.readuntil(b"hello  \n")).startswith(b"HTTP/1.1 200 OK")
        held[1][1].close()
        await held[1][1].wait_closed()
        for _ in range(50):  # the server sees the close, and a new connection fits again
            answer = await exchange(
                port, request.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
            )
            if answer.startswith(b"HTTP/1.1 200 OK"):
                break
            await asyncio.sleep(0.05)
        assert answer.startswith(b"HTTP/1.1 200 OK")
    finally:
        for _, writer in held:
            writer.close()
        await server.stop()
