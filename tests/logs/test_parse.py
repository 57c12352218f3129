"""Level and id extraction from app lines, as real loggers print them."""

from __future__ import annotations

import os
import time

import pytest

from agent.logs.parse import (
    _KEY_ENDINGS,
    _KEY_ROLES,
    LEVELS,
    MAX_VALUE_LEN,
    UNKNOWN,
    ParsedFields,
    parse_line,
)


def fields(
    level: str = "unknown",
    account: str | None = None,
    user: str | None = None,
    request: str | None = None,
) -> ParsedFields:
    return ParsedFields(level, account, user, request)


PINO = [
    # pino's own numeric levels, with pino-http's req.id
    (
        '{"level":10,"time":1764174243000,"pid":1,"hostname":"api","msg":"cache probe"}',
        fields("debug"),
    ),
    ('{"level":20,"time":1764174243000,"msg":"x"}', fields("debug")),
    (
        '{"level":30,"time":1764174243000,"pid":1,"hostname":"api-7f9","req":{"id":"req-7",'
        '"method":"GET","url":"/v1/files"},"accountId":"acc-17","msg":"request completed"}',
        fields("info", "acc-17", None, "req-7"),
    ),
    ('{"level":40,"msg":"slow query","userId":42}', fields("warn", None, "42")),
    ('{"level":50,"err":{"type":"Error","message":"boom"},"msg":"failed"}', fields("error")),
    ('{"level":60,"msg":"out of memory"}', fields("fatal")),
    ('{"level":35,"msg":"custom level between info and warn"}', fields("info")),
    (
        '{"level":30,"req":{"id":1,"headers":{"x-request-id":"hdr-1"}},"msg":"incoming"}',
        fields("info", None, None, "1"),
    ),
    (
        '{"level":30,"req":{"method":"GET","headers":{"x-request-id":"hdr-1"}},"msg":"in"}',
        fields("info", None, None, "hdr-1"),
    ),
]

WINSTON_NEST_JSON = [
    (
        '{"level":"info","message":"User logged in","userId":"u-42","account_id":"acc-1",'
        '"requestId":"r-9","timestamp":"2026-11-26T17:04:19.123Z"}',
        fields("info", "acc-1", "u-42", "r-9"),
    ),
    ('{"level":"warn","message":"quota at 90%"}', fields("warn")),
    ('{"level":"error","message":"upload failed","stack":"Error: x"}', fields("error")),
    ('{"level":"http","message":"GET /"}', fields("info")),
    ('{"level":"silly","message":"noise"}', fields("debug")),
    ('{"level":"verbose","message":"noise"}', fields("debug")),
    # NestJS ConsoleLogger with `json: true`
    (
        '{"level":"log","pid":42,"timestamp":1764174243000,"message":"Nest application started",'
        '"context":"NestApplication"}',
        fields("info"),
    ),
    (
        '{"level":"error","pid":42,"timestamp":1764174243000,'
        '"message":"Login failed account=acc-17 user=u-3","context":"AuthService"}',
        fields("error", "acc-17", "u-3"),
    ),
    ('{"level":"fatal","message":"cannot bind","context":"Main"}', fields("fatal")),
    ('{"level":"verbose","message":"x","context":"Main"}', fields("debug")),
    # other level keys and spellings
    ('{"severity":"ERROR","message":"gcp style"}', fields("error")),
    ('{"severity":"WARNING","message":"gcp style"}', fields("warn")),
    ('{"lvl":"crit","msg":"x"}', fields("fatal")),
    ('{"levelname":"CRITICAL","name":"root","message":"python"}', fields("fatal")),
    ('{"log.level":"warning","message":"ecs flat"}', fields("warn")),
    ('{"log":{"level":"err","logger":"app"},"message":"ecs nested"}', fields("error")),
    ('{"level":"TRACE","msg":"x"}', fields("debug")),
    ('{"level":"Panic","msg":"x"}', fields("fatal")),
    ('{"level":"emergency","msg":"x"}', fields("fatal")),
    ('{"level":"alert","msg":"x"}', fields("fatal")),
    ('{"level":"notice","msg":"x"}', fields("info")),
    ('{"level":" Info ","msg":"x"}', fields("info")),
    ('{"level":"loud","msg":"x"}', fields("unknown")),
    ('{"level":true,"msg":"x"}', fields("unknown")),
    ('{"level":30.0,"msg":"x"}', fields("unknown")),
    ('{"level":["info"],"msg":"x"}', fields("unknown")),
]

NESTED_JSON = [
    (
        '{"severity":"ERROR","user":{"id":123,"name":"bob"},"account":{"id":"acc-5"},'
        '"trace_id":"t-1"}',
        fields("error", "acc-5", "123", "t-1"),
    ),
    (
        '{"level":"info","context":{"accountId":"acc-9","userId":"u-9","requestId":"r-9"}}',
        fields("info", "acc-9", "u-9", "r-9"),
    ),
    (
        '{"level":"info","meta":{"account":{"id":"acc-2"}},"msg":"two levels down"}',
        fields("info", "acc-2"),
    ),
    ('{"msg":"x","metadata":{"user_id":"u-1"}}', fields(user="u-1")),
    ('{"msg":"x","request":{"id":"r-77"}}', fields(request="r-77")),
    ('{"msg":"x","trace":{"id":"tr-1"}}', fields(request="tr-1")),
    ('{"msg":"x","user":"alice"}', fields(user="alice")),
    ('{"msg":"x","user":{"name":"alice"}}', fields()),  # no id in the user object
    # the top level wins over a nest, whatever the key order
    ('{"context":{"userId":"inner"},"userId":"outer"}', fields(user="outer")),
    # objects and lists are not ids; empty strings are not ids
    ('{"accountId":{"x":1},"userId":["u"],"requestId":""}', fields()),
    ('{"accountId":null,"userId":false,"requestId":" "}', fields(request=" ")),
    # unknown nests and deeper levels are not searched
    ('{"payload":{"userId":"u-1"}}', fields()),
    ('{"context":{"meta":{"data":{"userId":"u-1"}}}}', fields()),
    (' \t{"level":"warn","requestId":"r-1"}', fields("warn", request="r-1")),
    (
        '{"accountId":17.5,"userId":12345678901234567890}',
        fields("unknown", "17.5", "12345678901234567890"),
    ),
]

LOGFMT_AND_TEXT = [
    (
        'level=error msg="upload failed" request_id=abc user_id=u-1 account=acc-3',
        fields("error", "acc-3", "u-1", "abc"),
    ),
    (
        'time=2026-11-26T17:04:19Z lvl=warn msg="disk 91%" accountId=acc-1',
        fields("warn", "acc-1"),
    ),
    ('ts=1 severity=INFO msg="ok" traceId=tr-9', fields("info", request="tr-9")),
    ('level=info msg="x" trace_id=tr-9 requestId=r-1', fields("info", request="r-1")),
    (
        'level=debug msg="user=bob said \\"account=fake\\"" user_id=u-7',
        fields("debug", user="u-7"),
    ),
    ("level='warn' user_id='u 1'", fields("warn", user="u 1")),
    (
        'Upload request: file="a.pdf" size=12 account=acc-1',
        fields(account="acc-1"),
    ),
    ("Login failed for (account=acc-17).", fields(account="acc-17")),
    ("GET /v1/items?user_id=5&account=7&page=2 200", fields(account="7", user="5")),
    (
        "payment ok userId=u-1, accountId=acc-2; requestId=r-3",
        fields("unknown", "acc-2", "u-1", "r-3"),
    ),
    ("battery level=80 ok", fields()),  # a number is not a level in text
    ("GET /health 200 1.2ms", UNKNOWN),
    ("   ", UNKNOWN),
    ("", UNKNOWN),
    ("a plain sentence mentioning an error in lowercase", UNKNOWN),
    ("key=value other=thing", UNKNOWN),
]

NEST_TEXT = [
    (
        "[Nest] 42  - 11/26/2026, 4:19:03 PM   ERROR [AuthService] Login failed account=acc-17",
        fields("error", "acc-17"),
    ),
    (
        "[Nest] 42  - 11/26/2026, 4:19:03 PM     LOG [NestFactory] Starting Nest application...",
        fields("info"),
    ),
    ("[Nest] 7  - 26/11/2026 16:19:03    WARN [Cache] miss userId=u-2", fields("warn", user="u-2")),
    ("[Nest] 7  - 11/26/2026, 4:19:03 PM   DEBUG [Db] query took 3ms", fields("debug")),
    ("[Nest] 7  - 11/26/2026, 4:19:03 PM VERBOSE [Db] pool size 10", fields("debug")),
    ("[Nest] 7  - 11/26/2026, 4:19:03 PM   FATAL [Main] cannot start", fields("fatal")),
    # the same lines with ConsoleLogger colours (SGR codes around prefix, level, context, text)
    (
        "\x1b[31m[Nest] 42  - \x1b[39m11/26/2026, 4:19:03 PM \x1b[31m  ERROR\x1b[39m "
        "\x1b[33m[AuthService] \x1b[39m\x1b[31mLogin failed account=acc-17\x1b[39m",
        fields("error", "acc-17"),
    ),
    (
        "\x1b[32m[Nest] 42  - \x1b[39m11/26/2026, 4:19:03 PM \x1b[32m    LOG\x1b[39m "
        "\x1b[33m[RoutesResolver] \x1b[39m\x1b[32mAppController {/}:\x1b[39m",
        fields("info"),
    ),
    (
        "\x1b[33m[Nest] 42  - \x1b[39m11/26/2026, 4:19:03 PM \x1b[33m   WARN\x1b[39m "
        "\x1b[33m[Quota] \x1b[39m\x1b[33mnear limit requestId=r-5\x1b[39m",
        fields("warn", request="r-5"),
    ),
]

LEVEL_WORDS_IN_TEXT = [
    ("2026-11-26 17:04:19.123  WARN 1 --- [main] c.e.Foo : disk almost full", fields("warn")),
    ('2026/11/26 17:04:19 [error] 29#29: *1 open() "/x" failed', fields("error")),
    ("[ERROR] something broke", fields("error")),
    ("[Warning] deprecated flag", fields("warn")),
    ("ERROR: relation does not exist", fields("error")),
    ("ERROR:root:python logging default", fields("error")),
    ("error: cannot find module 'x'", fields("error")),
    ("Warning: Accessing non-existent property", fields("warn")),
    ("level: warn something odd", fields("warn")),
    ("\x1b[32mINFO\x1b[0m server listening on :8080", fields("info")),
    ("I saw FATAL things", fields("fatal")),
    ("job finished with an ERROR.", fields("error")),
    ("c.e.INFO.x loaded", UNKNOWN),
    ("MY_ERROR_CODE=7 happened", UNKNOWN),  # not a word on its own
    ("INFORMATION_SCHEMA query", UNKNOWN),
    ("GET /ERROR/page 404", UNKNOWN),
    ("level=bogus but ERROR here", fields("error")),
]

ID_SPELLINGS = [
    *[
        (f"{key}=v-1", fields(account="v-1"))
        for key in (
            "accountId",
            "account_id",
            "accountID",
            "AccountId",
            "ACCOUNT_ID",
            "account-id",
            "account.id",
            "account",
            "acct",
            "acctId",
            "acct_id",
        )
    ],
    *[
        (f"{key}=v-1", fields(user="v-1"))
        for key in ("userId", "user_id", "userID", "UserId", "USER_ID", "user.id", "user", "uid")
    ],
    *[
        (f"{key}=v-1", fields(request="v-1"))
        for key in (
            "requestId",
            "request_id",
            "requestID",
            "RequestId",
            "reqId",
            "req_id",
            "req.id",
            "x-request-id",
            "X-Request-Id",
            "X-Request-ID",
            "x_request_id",
            "correlationId",
            "correlation_id",
            "x-correlation-id",
            "traceId",
            "trace_id",
            "traceID",
            "trace.id",
        )
    ],
    *[
        (f'{{"{key}":"v-2"}}', fields(request="v-2"))
        for key in ("requestId", "x-request-id", "X-Request-Id", "reqId", "correlationId")
    ],
    *[(f'{{"{key}":7}}', fields(account="7")) for key in ("accountId", "account", "acct_id")],
    *[(f'{{"{key}":"u"}}', fields(user="u")) for key in ("userId", "user_id", "uid", "user")],
]


@pytest.mark.parametrize(
    ("line", "expected"),
    PINO + WINSTON_NEST_JSON + NESTED_JSON + LOGFMT_AND_TEXT + NEST_TEXT + LEVEL_WORDS_IN_TEXT,
)
def test_real_format_lines_yield_level_and_ids(line: str, expected: ParsedFields) -> None:
    assert parse_line(line) == expected


@pytest.mark.parametrize(("line", "expected"), ID_SPELLINGS)
def test_every_usual_id_spelling_is_recognised(line: str, expected: ParsedFields) -> None:
    assert parse_line(line) == expected


def test_every_key_spelling_passes_the_cheap_text_precheck() -> None:
    # The text path skips its pair regex unless the lower-cased line contains one of
    # _KEY_ENDINGS; a spelling outside them would silently never match in text.
    for key in _KEY_ROLES:
        assert (key.lower() + "=").endswith(_KEY_ENDINGS), key
        assert parse_line(f"{key}=warn") != UNKNOWN, key


def test_trace_id_is_a_request_id_only_when_no_request_id_exists() -> None:
    assert parse_line('{"traceId":"t","requestId":"r"}').request_id == "r"
    assert parse_line('{"requestId":"r","traceId":"t"}').request_id == "r"
    assert parse_line('{"traceId":"t"}').request_id == "t"
    assert parse_line("trace_id=t request_id=r").request_id == "r"
    assert parse_line("trace_id=t").request_id == "t"


def test_over_long_values_are_ignored_not_shipped() -> None:
    long_value = "v" * (MAX_VALUE_LEN + 1)
    ok_value = "v" * MAX_VALUE_LEN
    assert parse_line(f'{{"userId":"{long_value}"}}').user_id is None
    assert parse_line(f'{{"userId":"{ok_value}"}}').user_id == ok_value
    assert parse_line(f"user_id={long_value}").user_id is None
    assert parse_line(f'user_id="{long_value}" user=ok').user_id == "ok"


@pytest.mark.parametrize(
    "line",
    [
        '{"level":"info"',
        "{not json at all} level=warn",
        "[1,2,3]",
        '"just a string"',
        "null",
        "{}",
        "{" * 5000,
        '{"a":' * 2000 + "1" + "}" * 2000,
    ],
)
def test_invalid_or_non_object_json_falls_back_to_text(line: str) -> None:
    result = parse_line(line)
    assert result.level in LEVELS
    if line.startswith("{not json"):
        assert result.level == "warn"


@pytest.mark.parametrize(
    "line",
    [
        "日本語のログ userId=ユーザー1 ERROR 失敗",
        "\u2028\u2029\ufeff\x00\x07 level=info",
        "emoji 🎉 account=🎉",
        "\ufffd\ufffd\ufffd",
        "\ud800 lone surrogate user=x",
    ],
)
def test_unicode_lines_parse_without_raising(line: str) -> None:
    result = parse_line(line)
    assert result.level in LEVELS


def test_unicode_values_are_kept() -> None:
    assert parse_line("日本語のログ userId=ユーザー1 ERROR 失敗") == fields(
        "error", user="ユーザー1"
    )
    assert parse_line('{"accountId":"アカウント","level":"warn"}') == fields("warn", "アカウント")


JUNK = {
    "random bytes": os.urandom(1 << 20).decode("latin-1"),
    "unterminated quote": 'user_id="' + "x" * (1 << 20),
    "quote storm": 'a="' * (1 << 18),
    "escaped quote storm": 'a=\\"' * (1 << 18),
    "backslashes": 'user_id="' + "\\" * (1 << 20),
    "single quotes": "user='" * (1 << 18),
    "one long word": "a" * (1 << 20) + "=1",
    "equals": "=" * (1 << 20),
    "spaced keys": "user= " * (1 << 18),
    "63-char keys": ("k" * 63 + "=") * (1 << 14),
    "ansi": "\x1b[" * (1 << 19),
    "ansi params": "\x1b[" + "1;" * (1 << 19),
    "braces": "{" * (1 << 20),
    "big json": '{"msg":"' + "x" * (1 << 20) + '","userId":"u"}',
    "nest prefix": "[Nest] " + "1 " * (1 << 19),
    "level words": "ERRORS" * (1 << 18),
}


@pytest.mark.parametrize("name", list(JUNK))
def test_megabyte_junk_lines_parse_in_linear_time(name: str) -> None:
    line = JUNK[name]
    started = time.perf_counter()
    result = parse_line(line)
    elapsed = time.perf_counter() - started
    assert result.level in LEVELS
    assert elapsed < 1.0, f"{name}: {elapsed:.2f}s"  # linear scans take ~10-70 ms here
    if name == "big json":
        assert result.user_id == "u"
