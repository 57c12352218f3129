"""``multiline``: traces of each runtime joined into one entry, per stream, bounded."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from agent.logs.stages import parse_stages
from agent.logs.stages.base import Entry, StageContext, StagePipeline
from agent.logs.stages.docker_labels import rules_from_labels
from agent.metrics.self import AgentMetrics
from tests.logs.stages.helpers import entry, lines, pipeline


def feed(text: str, stream: str = "stdout", seq: int = 1) -> list[Entry]:
    """One read chunk: each line an entry whose resume is its start offset."""
    out: list[Entry] = []
    offset = 0
    for i, line in enumerate(text.split("\n")):
        out.append(entry(line, stream=stream, ts_ns=1_000 + i, resume=(seq, offset, "f")))
        offset += len(line) + 1
    return out


def run(stages: StagePipeline, text: str) -> list[str]:
    """Everything the stage makes of ``text``, the held tail included."""
    return lines(stages.process(feed(text))) + lines(stages.flush(0.0, final=True))


NESTJS = """\
[Nest] 1  - 01/15/2024, 10:23:45 AM     LOG [NestApplication] Nest application started +3ms
[Nest] 1  - 01/15/2024, 10:23:47 AM   ERROR [ExceptionsHandler] Cannot read properties of undefined
TypeError: Cannot read properties of undefined (reading 'id')
    at UsersService.findOne (/app/dist/users/users.service.js:27:32)
    at UsersController.findOne (/app/dist/users/users.controller.js:31:34)
    at /app/node_modules/@nestjs/core/router/router-execution-context.js:38:29
    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)
{"level":"info","message":"GET /users/7 200","context":"HTTP"}
\x1b[32m[Nest] 1  - \x1b[39m01/15/2024, 10:23:48 AM \x1b[32m    LOG\x1b[39m \x1b[33m[Router]"""


def test_nestjs_preset_keeps_an_error_with_its_stack() -> None:
    out = run(pipeline({"multiline": {"preset": "nestjs"}}), NESTJS)
    src = NESTJS.split("\n")
    assert out == [src[0], "\n".join(src[1:7]), src[7], src[8]]


def test_nestjs_preset_leaves_other_loggers_lines_on_their_own() -> None:
    text = "\n".join(
        [
            "[Nest] 1  - 01/15/2024, 10:23:47 AM   ERROR [ExceptionsHandler] boom",
            "TypeError: boom",
            "    at UsersService.findOne (/app/dist/users/users.service.js:27:32)",
            'level=debug msg="chatter"',
            "plain text from a shell script",
            'level=error msg="boom"',
        ]
    )
    out = run(pipeline({"multiline": {"preset": "nestjs"}}), text)
    src = text.split("\n")
    assert out == ["\n".join(src[:3]), src[3], src[4], src[5]]


NODE_UNCAUGHT = """\
2024-01-15T10:00:00.000Z server listening on 3000
/app/index.js:3
  throw new Error("boom");
  ^

Error: boom
    at Object.<anonymous> (/app/index.js:3:9)
    at Module._compile (node:internal/modules/cjs/loader:1256:14)
    at node:internal/main/run_main_module:23:47

Node.js v18.17.0
Error: connect ECONNREFUSED 127.0.0.1:5432
    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1555:16) {
  errno: -111,
  code: 'ECONNREFUSED',
  [cause]: Error: socket closed
      at Socket.emit (node:events:517:28)
}
2024-01-15T10:00:02.000Z server listening on 3000"""


def test_nodejs_preset_joins_an_uncaught_exception_and_an_error_with_properties() -> None:
    out = run(pipeline({"multiline": {"preset": "nodejs"}}), NODE_UNCAUGHT)
    src = NODE_UNCAUGHT.split("\n")
    assert out == [src[0], "\n".join(src[1:11]), "\n".join(src[11:18]), src[18]]


JAVA = """\
2024-01-15 10:23:45.100  INFO 1 --- [           main] c.e.shop.ShopApplication : Started
2024-01-15 10:23:45.123 ERROR 1 --- [nio-8080-exec-1] o.a.c.c.C.[.[.[/].[dispatcherServlet] : failed
java.lang.IllegalStateException: order 42 not found
\tat com.example.shop.OrderService.find(OrderService.java:57) ~[classes/:na]
\tat com.example.shop.OrderController.get(OrderController.java:31) ~[classes/:na]
\tat java.base/jdk.internal.reflect.NativeMethodAccessorImpl.invoke0(Native Method)
Caused by: java.sql.SQLException: connection reset
\tat org.postgresql.core.v3.QueryExecutorImpl.execute(QueryExecutorImpl.java:356)
\t... 2 common frames omitted
\tSuppressed: java.io.IOException: close failed
\t\tat org.postgresql.core.PGStream.close(PGStream.java:412)
\t\t... 3 more
2024-01-15 10:23:45.200  INFO 1 --- [nio-8080-exec-2] c.e.shop.OrderController : GET /orders/43
Exception in thread "main" java.lang.RuntimeException: boom
\tat com.example.Main.main(Main.java:5)"""


def test_java_preset_joins_caused_by_and_suppressed_under_the_log_line() -> None:
    out = run(pipeline({"multiline": {"preset": "java"}}), JAVA)
    src = JAVA.split("\n")
    assert out == [src[0], "\n".join(src[1:12]), src[12], "\n".join(src[13:15])]


PYTHON = """\
INFO:     127.0.0.1:52344 - "GET /health HTTP/1.1" 200 OK
ERROR:worker:job 7 failed
Traceback (most recent call last):
  File "/app/worker.py", line 12, in handle
    result = compute(job)
             ^^^^^^^^^^^^
  File "/app/worker.py", line 6, in compute
    return 1 / job.weight
           ~~^~~~~~~~~~~~
ZeroDivisionError: division by zero

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/app/worker.py", line 20, in <module>
    handle(job)
  File "/app/worker.py", line 14, in handle
    raise RuntimeError("job 7 failed") from exc
RuntimeError: job 7 failed
INFO:     127.0.0.1:52346 - "GET /health HTTP/1.1" 200 OK
  + Exception Group Traceback (most recent call last):
  |   File "/app/batch.py", line 9, in <module>
  |     raise ExceptionGroup("2 jobs failed", errors)
  | ExceptionGroup: 2 jobs failed (2 sub-exceptions)
  +-+---------------- 1 ----------------
    | ValueError: job 8
    +---------------- 2 ----------------
    | KeyError: 'job 9'
    +------------------------------------
ValueError: a logged line that merely looks like an exception"""


def test_python_preset_follows_a_chained_traceback_to_its_last_exception_line() -> None:
    out = run(pipeline({"multiline": {"preset": "python"}}), PYTHON)
    src = PYTHON.split("\n")
    assert out == [
        src[0],
        src[1],
        "\n".join(src[2:19]),
        src[19],
        "\n".join(src[20:29]),
        src[29],
    ]


GO = """\
2024/01/15 10:23:45 listening on :8080
panic: runtime error: invalid memory address or nil pointer dereference
[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x6d2f1a]

goroutine 34 [running]:
main.(*Server).handleOrder(0xc0000a4000, {0x7f8c40, 0xc0001b60e0}, 0xc0001d2000)
\t/app/server.go:88 +0x3a
net/http.HandlerFunc.ServeHTTP(0xc000012345?, {0x7f8c40?, 0xc0001b60e0?}, 0x0?)
\t/usr/local/go/src/net/http/server.go:2136 +0x29
created by net/http.(*Server).Serve in goroutine 1
\t/usr/local/go/src/net/http/server.go:3086 +0x4cc

goroutine 1 [IO wait]:
internal/poll.runtime_pollWait(0x7f3b2c1e6f08, 0x72)
\t/usr/local/go/src/runtime/netpoll.go:343 +0x85
...additional frames elided...
exit status 2
2024/01/15 10:23:47 listening on :8080
fatal error: concurrent map writes

goroutine 7 [running]:
main.record({0xc000014090, 0x5})
\t/app/stats.go:14 +0x5a
2024/01/15 10:23:49 listening on :8080"""


def test_go_preset_keeps_a_panic_with_all_its_goroutines() -> None:
    out = run(pipeline({"multiline": {"preset": "go"}}), GO)
    src = GO.split("\n")
    assert out == [src[0], "\n".join(src[1:17]), src[17], "\n".join(src[18:23]), src[23]]


def test_joined_entry_keeps_its_first_line_and_reads_fields_from_the_whole_text() -> None:
    metrics = AgentMetrics(CollectorRegistry())
    stages = pipeline({"multiline": {"firstline": "^START"}}, context=StageContext(metrics=metrics))
    labels = {"service": "api", "level": "error"}
    batch = [
        Entry(5, "START a=1", "stdout", labels, {"level": "error"}, {"k": "v"}, (3, 10, "f")),
        Entry(6, "  b=2", "stdout", {}, {"level": "info"}, {}, (3, 20, "f")),
        Entry(7, "  c=3", "stdout", {}, {}, {}, (3, 30, "f")),
        Entry(8, "START next", "stdout", {}, {}, {}, (3, 40, "f")),
    ]
    (joined,) = stages.process(batch)
    assert joined.line == "START a=1\n  b=2\n  c=3"
    assert (joined.ts_ns, joined.labels, joined.metadata, joined.resume) == (
        5,
        labels,
        {"k": "v"},
        (3, 10, "f"),
    )
    assert joined.field("level") == "error"
    assert (joined.field("a"), joined.field("c")) == ("1", "3")
    assert metrics.stage_changed.labels("multiline")._value.get() == 2


def test_lines_before_any_first_line_form_their_own_entry() -> None:
    stages = pipeline({"multiline": {"preset": "java"}})
    text = "\tat com.example.A.run(A.java:1)\n\tat com.example.B.run(B.java:2)\n2024 INFO next"
    assert run(stages, text) == [
        "\tat com.example.A.run(A.java:1)\n\tat com.example.B.run(B.java:2)",
        "2024 INFO next",
    ]


def test_a_never_ending_stack_is_cut_at_max_lines() -> None:
    stages = pipeline({"multiline": {"preset": "java", "max_lines": 128}})
    frames = [f"\tat com.example.Loop.spin(Loop.java:{i})" for i in range(299)]
    out = run(stages, "\n".join(["java.lang.StackOverflowError", *frames]))
    assert [len(e.split("\n")) for e in out] == [128, 128, 44]
    assert "\n".join(out).split("\n") == ["java.lang.StackOverflowError", *frames]


def test_a_never_ending_stack_is_cut_before_max_bytes() -> None:
    stages = pipeline({"multiline": {"firstline": "^ERR", "max_bytes": "1KiB"}})
    frames = ["  " + "x" * 97 + "é" for _ in range(40)]  # 101 bytes each
    out = run(stages, "\n".join(["ERR boom", *frames]))
    assert all(len(e.encode()) <= 1024 for e in out)
    assert [len(e.split("\n")) for e in out] == [10, 10, 10, 10, 1]
    assert "\n".join(out).split("\n") == ["ERR boom", *frames]


def test_a_line_over_max_bytes_is_shipped_alone_and_at_once() -> None:
    stages = pipeline({"multiline": {"firstline": "^ERR", "max_bytes": "100B"}})
    out = stages.process(feed("ERR " + "y" * 200 + "\n  next"))
    assert lines(out) == ["ERR " + "y" * 200]
    assert lines(stages.flush(0.0, final=True)) == ["  next"]


def test_max_wait_releases_an_idle_block_by_the_injected_clock() -> None:
    now = [1000.0]
    stages = pipeline(
        {"multiline": {"preset": "java", "max_wait": "2s"}},
        context=StageContext(clock=lambda: now[0]),
    )
    assert stages.process(feed("ERROR failed\njava.lang.Exception: x", seq=4)) == []
    assert stages.oldest_held() == (4, 0, "f")
    assert stages.held_bytes() == len("ERROR failed\njava.lang.Exception: x")
    assert stages.flush(1001.9) == []
    now[0] = 1001.5  # a new frame: the wait starts again
    assert stages.process(feed("\tat com.example.A.run(A.java:1)", seq=5)) == []
    assert stages.flush(1003.0) == []
    assert lines(stages.flush(1003.5)) == [
        "ERROR failed\njava.lang.Exception: x\n\tat com.example.A.run(A.java:1)"
    ]
    assert stages.oldest_held() is None
    assert stages.held_bytes() == 0


def test_a_wall_clock_step_back_waits_max_wait_from_then_not_for_the_step() -> None:
    stages = pipeline(
        {"multiline": {"firstline": "^E", "max_wait": "1s"}},
        context=StageContext(clock=lambda: 5000.0),
    )
    stages.process(feed("E one"))
    assert stages.flush(1000.0) == []  # an hour back
    assert lines(stages.flush(1001.0)) == ["E one"]


def test_stdout_and_stderr_are_joined_separately_and_keep_their_order() -> None:
    stages = pipeline({"multiline": {"preset": "java"}})
    batch = [
        entry("out 1", resume=(1, 0, "f")),
        entry("err 1", stream="stderr", resume=(1, 10, "f")),
        entry("\tat out.frame", resume=(1, 20, "f")),
        entry("\tat err.frame", stream="stderr", resume=(1, 30, "f")),
        entry("err 2", stream="stderr", resume=(1, 40, "f")),
        entry("out 2", resume=(1, 50, "f")),
        entry("err 3", stream="stderr", resume=(1, 60, "f")),
    ]
    out = stages.process(batch)
    # Each entry as soon as the next first line of its stream completes it.
    assert [(e.stream, e.line) for e in out] == [
        ("stderr", "err 1\n\tat err.frame"),
        ("stdout", "out 1\n\tat out.frame"),
        ("stderr", "err 2"),
    ]
    # The oldest held entry of either stream bounds the position.
    assert stages.oldest_held() == (1, 50, "f")
    assert [(e.stream, e.line) for e in stages.flush(0.0, final=True)] == [
        ("stdout", "out 2"),
        ("stderr", "err 3"),
    ]


def test_oldest_held_follows_the_held_blocks_first_line_across_chunks() -> None:
    stages = pipeline({"multiline": {"firstline": "^E"}})
    stages.process([entry("E a", resume=(7, 100, "f")), entry(" more", resume=(7, 104, "f"))])
    assert stages.oldest_held() == (7, 100, "f")
    stages.process([entry(" and more", resume=(8, 0, "g"))])
    assert stages.oldest_held() == (7, 100, "f")
    stages.process([entry("E b", resume=(8, 10, "g"))])
    assert stages.oldest_held() == (8, 10, "g")


def test_custom_separator_and_promtails_max_wait_time_spelling() -> None:
    stages = pipeline({"multiline": {"firstline": "^E", "separator": " | ", "max_wait_time": "1s"}})
    assert run(stages, "E a\n b\n c") == ["E a |  b |  c"]
    ((_, config),) = parse_stages([{"multiline": {"preset": "go", "max_wait_time": "250ms"}}])
    assert config.max_wait == 0.25  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"firstline": "("}, r"stages\[0\]\.multiline: firstline: invalid regular expression"),
        ({"firstline": "^E", "preset": "java"}, "give exactly one of firstline .* or preset"),
        ({}, "give exactly one of firstline .* or preset"),
        ({"preset": "ruby"}, r"unknown preset 'ruby' \(presets: nestjs, nodejs, java"),
        ({"firstline": "^E", "max_lines": 0}, r"multiline\.max_lines: .*greater than or equal"),
        ({"preset": "go", "max_wait": "soon"}, "not a duration"),
        ({"preset": "go", "lines": 3}, "unknown option"),
    ],
)
def test_bad_options_are_rejected_at_config_load(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_stages([{"multiline": options}])


def test_the_docker_label_takes_a_preset_or_a_regex() -> None:
    assert rules_from_labels({"nexo.logs.multiline": "python"}).before[0][0] == "multiline"
    assert not rules_from_labels({"nexo.logs.multiline": "^\\d{4}-"}).problems
    bad = rules_from_labels({"nexo.logs.multiline": "(("}).problems
    assert bad and "invalid regular expression" in bad[0][1]


def test_hostile_lines_stay_linear_in_every_preset() -> None:
    long = [
        "(" * 200_000 + ")",
        "a." * 100_000 + "Exception",
        "x:" * 100_000 + "1",
        "1:" * 100_000 + "x",
        "\x1b[" * 100_000,
        "goroutine " + "1" * 200_000,
    ]
    for preset in ("nestjs", "nodejs", "java", "python", "go"):
        stages = pipeline({"multiline": {"preset": preset, "max_bytes": "1MiB"}})
        out = run(stages, "\n".join(["panic: x", *long]))
        assert sum(len(e) for e in out) >= sum(len(s) for s in long)
