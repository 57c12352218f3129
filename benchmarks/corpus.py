"""A realistic host's log mix, as Docker's json-file driver writes it.

What a real Node.js/Go host prints, interleaved line by line (shares of 20): pino JSON (6),
winston JSON (3), logfmt (3), NestJS text without (2) and with ANSI colours (2), free text
(nginx access lines, 4). One line in :data:`LONG_EVERY` is a 20-60 KiB JSON payload dump,
which Docker splits into 16 KiB *partial* records (only the last ends in ``"\\n"``), so the
pipeline's partial-line joining is part of the cost. Ids are unique per line, as request
ids are in production, and the content is a pure function of the line number, so every
tool measured on it reads the same bytes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

# Docker's copier buffer: a longer line is written as several records of this many bytes.
PARTIAL_SIZE = 16 * 1024
LONG_EVERY = 500
_LEVELS_PINO = (30, 30, 30, 30, 40, 50, 20)
_LEVELS_WINSTON = ("info", "info", "info", "warn", "error", "debug")
_NEST_LEVELS = ("LOG", "LOG", "LOG", "WARN", "ERROR", "DEBUG")


def _mix(i: int) -> int:
    """A cheap, deterministic scramble of ``i`` (ids and choices look random, repeat never)."""
    return (i * 2654435761 + 0x9E3779B9) & 0xFFFFFFFF


def corpus_line(i: int) -> str:
    """Line number ``i`` of the corpus (no trailing newline)."""
    h = _mix(i)
    account = f"acc-{h % 500:04d}"
    user = f"usr-{h % 7919}"
    request = f"{h:08x}-{i:08x}"
    if i % LONG_EVERY == LONG_EVERY - 1:
        size = 20_000 + h % 40_000
        payload = ("0123456789abcdef" * (size // 16 + 1))[:size]
        return json.dumps(
            {"level": 40, "msg": "payload too large", "requestId": request, "body": payload},
            separators=(",", ":"),
        )
    kind = i % 20
    if kind < 6:
        return json.dumps(
            {
                "level": _LEVELS_PINO[h % len(_LEVELS_PINO)],
                "time": 1764174000000 + i,
                "pid": 1,
                "hostname": "api-7d9f8c",
                "req": {"id": request, "method": "GET", "url": f"/api/v1/orders?page={h % 9}"},
                "accountId": account,
                "userId": user,
                "msg": "request completed",
                "responseTime": h % 300,
            },
            separators=(",", ":"),
        )
    if kind < 9:
        return json.dumps(
            {
                "level": _LEVELS_WINSTON[h % len(_LEVELS_WINSTON)],
                "message": f"invoice {i} settled",
                "timestamp": "2026-11-26T16:19:03.123Z",
                "service": "billing",
                "requestId": request,
                "accountId": account,
            }
        )
    if kind < 12:
        return (
            f"level=info ts=2026-11-26T16:19:03.123Z caller=worker.go:42 "
            f'msg="job finished" request_id={request} user_id={user} duration_ms={h % 97}'
        )
    if kind < 14:
        return (
            f"[Nest] 42  - 11/26/2026, 4:19:03 PM     LOG [OrdersService] Order {i} created "
            f"accountId={account} userId={user} requestId={request}"
        )
    if kind < 16:
        level = _NEST_LEVELS[h % len(_NEST_LEVELS)]
        return (
            f"\x1b[32m[Nest] 42  - \x1b[39m11/26/2026, 4:19:03 PM \x1b[33m{level:>7}\x1b[39m "
            f"\x1b[38;5;3m[PaymentsService] \x1b[39m\x1b[33mRetrying charge for {account}\x1b[39m"
        )
    return (
        f'10.0.{h % 255}.7 - - [26/Nov/2026:16:19:03 +0000] "GET /api/v1/orders/{i} HTTP/1.1" '
        f'200 {h % 5000} "-" "Mozilla/5.0 (X11; Linux x86_64)" rt=0.0{h % 90:02d}'
    )


def docker_time(ts_ns: int) -> str:
    """Go's RFC3339Nano in UTC, trailing fraction zeros cut, as Docker stamps records."""
    seconds, nanos = divmod(ts_ns, 10**9)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{nanos:09d}".rstrip("0")
    return f"{stamp}.{fraction}Z" if fraction else f"{stamp}Z"


def docker_records(line: str, ts_ns: int, stream: str) -> bytes:
    """``line`` as json-file records: one, or 16 KiB partials when longer (ASCII lines)."""
    stamp = docker_time(ts_ns)
    data = line + "\n"
    pieces = [data[k : k + PARTIAL_SIZE] for k in range(0, len(data), PARTIAL_SIZE)]
    return b"".join(
        f'{{"log":{json.dumps(piece, ensure_ascii=False)},"stream":"{stream}",'
        f'"time":"{stamp}"}}\n'.encode()
        for piece in pieces
    )


def records_per_line(line: str) -> int:
    """How many json-file records Docker writes for ``line`` (tools that do not join
    partials ship each one as an entry)."""
    return (len(line) + 1 + PARTIAL_SIZE - 1) // PARTIAL_SIZE
