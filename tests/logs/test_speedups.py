"""The C speedups give exactly what the pure-Python code gives, record for record and byte
for byte, on every shape of input (the scanner must leave whatever it does not handle to
Python), and they are built wherever a compiler is present."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys

import pytest

from agent.logs import parse, speedups
from agent.logs.dockerjson import CompleteLine, PartialLineBuffer
from agent.logs.loki_encode import PushRequest, _BatchEncoder, _labels_string, encode_protobuf
from agent.logs.model import PushBatch, PushEntry, StreamLabels

native = speedups.native
needs_native = pytest.mark.skipif(native is None, reason="C speedups not built")


def test_speedups_are_built_where_a_compiler_is_present() -> None:
    if os.environ.get("NEXO_AGENT_PURE_PYTHON"):
        pytest.skip("pure Python asked for")
    if os.environ.get("CI") == "true" or shutil.which("cc"):
        assert native is not None, "the C speedups were not built: see `make install` output"
        assert speedups.mode() == "c"


def test_pure_python_switch_turns_them_off() -> None:
    probe = "from agent.logs import speedups; print(speedups.mode())"
    env = {**os.environ, "NEXO_AGENT_PURE_PYTHON": "1"}
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "python"


# -- Docker json-file records -------------------------------------------------------------

GOOD_TIMES = [
    "2026-11-26T16:19:03Z",
    "2026-11-26T16:19:03.1Z",
    "2026-11-26T16:19:03.123456789Z",
    "2024-02-29T23:59:59.000000001Z",
    "1970-01-01T00:00:00Z",
    "2026-11-26t16:19:03.5Z",
]
ODD_TIMES = [
    "2026-11-26T16:19:03.1234567891Z",  # 10 digits: Go truncates
    "2026-11-26T16:19:03.5z",
    "2026-11-26T18:19:03.5+02:00",
    "2026-13-26T16:19:03Z",
    "2026-02-30T16:19:03Z",
    "0000-01-01T00:00:00Z",
    "2026-11-26T24:00:00Z",
    "2026-11-26T16:19:03.Z",
    "2026-11-26 16:19:03Z",
    "",
]
LOGS = [
    "plain ascii line\n",
    "",
    "\n",
    "crlf line\r\n",
    "\r\n",
    'quotes " and \\ backslash / slash\n',
    "tab\there\n",
    "caf\u00e9 \u00fcber \u4e2d\u6587 \U0001f600\n",
    "nul \x00 and bell \x07 escaped\n",
    '{"level":"info","msg":"json inside"}\n',
    "partial chunk without newline ",
    "x" * 40 + "\n",  # over the small test limit: Python caps it
    "y" * 12 + "\n",
]
RAW_SPECIALS = [
    b'{"log":"bad utf8 \xff\xfe here\\n","stream":"stdout","time":"2026-11-26T16:19:03Z"}',
    b'{"log":"cut \xe2\x82 seq\\n","stream":"stderr","time":"2026-11-26T16:19:03.5Z"}',
    b'{"log":"raw \x01 control\\n","stream":"stdout","time":"2026-11-26T16:19:03Z"}',
    b'{"log":"lone \\ud800 surrogate\\n","stream":"stdout","time":"2026-11-26T16:19:03Z"}',
    b'{"log":"pair \\ud83d\\ude00 ok\\n","stream":"stdout","time":"2026-11-26T16:19:03Z"}',
    b'{"log":"bad \\x escape\\n","stream":"stdout","time":"2026-11-26T16:19:03Z"}',
    b'{"log":"attrs\\n","stream":"stdout","attrs":{"tag":"a"},"time":"2026-11-26T16:19:03Z"}',
    b'{"log": "space\\n", "stream": "stdout", "time": "2026-11-26T16:19:03Z"}',
    b'{"stream":"stdout","log":"order\\n","time":"2026-11-26T16:19:03Z"}',
    b'{"log":"other\\n","stream":"stdin","time":"2026-11-26T16:19:03Z"}',
    b'{"log":"extra\\n","stream":"stdout","time":"2026-11-26T16:19:03Z","x":1}',
    b'{"log":1,"stream":"stdout","time":"2026-11-26T16:19:03Z"}',
    b'{"log":"trailing\\n","stream":"stdout","time":"2026-11-26T16:19:03Z"} ',
    b'{"log":"unterminated\\n","stream":"stdout","time":"2026-11-26T16:19:03Z"',
    b"not json at all",
    b"",
    b"[]",
    b'{"log":"ends in backslash \\',
    b"\x00\xff binary junk \x80",
]


def encode_json_string(text: str, rng: random.Random) -> str:
    """A JSON string literal as Docker (Go) might write it: escapes chosen at random."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append(rng.choice(["\\t", "\\u0009"]))
        elif code < 0x20:
            out.append(f"\\u{code:04x}")
        elif ch == "/" and rng.random() < 0.5:
            out.append("\\/")
        elif code > 0xFFFF and rng.random() < 0.5:
            code -= 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04X}")
        elif code > 0x7F and rng.random() < 0.5:
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def random_record(rng: random.Random) -> bytes:
    if rng.random() < 0.15:
        return rng.choice(RAW_SPECIALS)
    log = rng.choice(LOGS)
    stream = rng.choice(["stdout", "stderr"])
    time = rng.choice(GOOD_TIMES if rng.random() < 0.9 else ODD_TIMES)
    body = f'{{"log":{encode_json_string(log, rng)},"stream":"{stream}","time":"{time}"}}'
    return body.encode()


def python_and_c(max_line_size: int) -> tuple[PartialLineBuffer, PartialLineBuffer]:
    return (
        PartialLineBuffer(max_line_size, clock=lambda: 1.0),
        PartialLineBuffer(max_line_size, clock=lambda: 1.0),
    )


@needs_native
@pytest.mark.parametrize("seed", range(40))
def test_scanner_and_python_decoder_agree_on_any_record_stream(seed: int) -> None:
    rng = random.Random(seed)
    records = [random_record(rng) for _ in range(rng.randrange(1, 120))]
    data = b"\n".join(records) + b"\n" + (b'{"log":"half' if rng.random() < 0.5 else b"")
    python, c = python_and_c(max_line_size=rng.choice([64, 256 * 1024]))
    base = rng.randrange(0, 10**9)
    # the same bytes in random chunks, each carrying over its unfinished record
    pos = 0
    rest_py = rest_c = b""
    while pos < len(data):
        step = rng.randrange(1, 400)
        piece = data[pos : pos + step]
        got_py = python._feed_chunk_python(rest_py + piece, base + pos - len(rest_py))
        got_c = c.feed_chunk(rest_c + piece, base + pos - len(rest_c))
        assert got_c == got_py
        assert c._pending == python._pending
        rest_py = (rest_py + piece)[got_py.consumed :]
        rest_c = (rest_c + piece)[got_c.consumed :]
        pos += step
    assert c.flush_all() == python.flush_all()


@needs_native
def test_scanner_takes_the_common_record_and_gives_exact_times() -> None:
    records = [
        b'{"log":"a\\n","stream":"stdout","time":"2026-11-26T16:19:03.000000001Z"}',
        b'{"log":"b\\r\\n","stream":"stderr","time":"2026-11-26T16:19:03Z"}',
        b'{"log":"caf\\u00e9\\n","stream":"stdout","time":"2024-02-29T23:59:59.9Z"}',
    ]
    data = b"\n".join(records) + b"\n"
    out: list[object] = []
    assert native is not None
    from agent.logs.dockerjson import CompleteLine, parse_docker_time

    stop = native.scan_records(data, 0, 100, 1000, CompleteLine, out)
    assert stop == len(data)
    ends = [100 + len(b"\n".join(records[: i + 1])) + 1 for i in range(3)]
    assert [tuple(line) for line in out] == [  # type: ignore[arg-type]
        (parse_docker_time("2026-11-26T16:19:03.000000001Z"), "stdout", "a", False, ends[0], None),
        (parse_docker_time("2026-11-26T16:19:03Z"), "stderr", "b", False, ends[1], None),
        (parse_docker_time("2024-02-29T23:59:59.9Z"), "stdout", "caf\u00e9", False, ends[2], None),
    ]
    assert all(type(line) is CompleteLine for line in out)


# -- protobuf push bytes --------------------------------------------------------------------


def random_text(rng: random.Random, longest: int) -> str:
    alphabet = 'abc xyz="{}\\\n\t\u00e9\u4e2d\U0001f600'
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, longest + 1)))


def random_batch(rng: random.Random) -> PushBatch:
    batch = PushBatch()
    streams = [StreamLabels(())] + [
        StreamLabels.of({"container": random_text(rng, 8) or "c", "level": "info"})
        for _ in range(3)
    ]
    for _ in range(rng.randrange(0, 60)):
        ts = rng.choice([0, 1, 10**9, -1, -(10**9) - 7, rng.randrange(-(2**62), 2**62)])
        line = random_text(rng, rng.choice([0, 30, 300, 20_000]))
        metadata = tuple(
            (rng.choice(["", "accountId", "r\u00e9q"]), random_text(rng, 20))
            for _ in range(rng.randrange(0, 4))
        )
        batch.add(rng.choice(streams), PushEntry(ts, line, metadata))
    return batch


@needs_native
@pytest.mark.parametrize("seed", range(30))
def test_c_encoder_writes_the_python_encoders_bytes(seed: int) -> None:
    batch = random_batch(random.Random(seed))
    python = b"".join(_BatchEncoder().streams(batch))
    assert native is not None
    c = native.encode_push_request(
        [(_labels_string(labels), entries) for labels, entries in batch.streams.items()]
    )
    assert c == python
    decoded = PushRequest()
    decoded.ParseFromString(c)
    assert decoded.SerializeToString() == c  # what the official runtime writes too


@needs_native
def test_c_encoder_refuses_what_it_cannot_encode_and_python_takes_over() -> None:
    assert native is not None
    with pytest.raises(TypeError):
        native.encode_push_request([("{}", [(1, "line", [("a", "b")])])])
    with pytest.raises(OverflowError):
        native.encode_push_request([("{}", [PushEntry(2**70, "x")])])
    batch = PushBatch()
    batch.add(StreamLabels.of({"a": "b"}), PushEntry(5, "line", [("k", "v")]))  # type: ignore[arg-type]
    assert encode_protobuf(batch).body  # the pure-Python encoder took it


# -- JSON line fields -----------------------------------------------------------------------

KEYS = [*list(parse._KEY_ROLES)[:40:3], *list(parse._NESTS)[::2], "id", "msg", "other", "ID"]


def random_value(rng: random.Random, depth: int) -> object:
    kind = rng.randrange(9 if depth else 8)
    if kind == 0:
        return ""
    if kind == 1:
        return "v" * rng.choice([1, 5, parse.MAX_VALUE_LEN, parse.MAX_VALUE_LEN + 1])
    if kind == 2:
        return rng.choice([0, 30, -5, 10**30])
    if kind == 3:
        return rng.choice([True, False])
    if kind == 4:
        return rng.choice([1.5, -0.0, 1e300])
    if kind in (5, 6):
        return None if kind == 5 else ["list"]
    if kind == 7:
        return random_text(rng, 12)
    return random_object(rng, depth - 1)


def random_object(rng: random.Random, depth: int) -> dict[str, object]:
    return {rng.choice(KEYS): random_value(rng, depth) for _ in range(rng.randrange(0, 12))}


@needs_native
@pytest.mark.parametrize("seed", range(200))
def test_c_walk_fills_the_same_slots_as_python(seed: int) -> None:
    assert native is not None
    obj = random_object(random.Random(seed), 4)
    python: list[object] = [None] * 5
    c: list[object] = [None] * 5
    parse._walk(obj, python, None, 2)
    native.walk_fields(
        obj, c, None, 2, parse._KEY_ROLES, parse._NESTS, parse._LEVEL, parse.MAX_VALUE_LEN
    )
    assert c == python
    assert [type(v) for v in c] == [type(v) for v in python]


LEVEL_VALUES = [
    "info", "INFO", "Info", " warn ", "WaRn", "x" * 17, "nope", "", 30, 55, 5, 10**30, -(10**30),
    True, 1.5, None, ["error"],
]  # fmt: skip
MESSAGES = ["plain", "user=u-7 account=acc-3 requestId=r-1", "id=9", 'level="warn"', 12]


@needs_native
@pytest.mark.parametrize("seed", range(300))
def test_c_json_fields_is_pythons(seed: int) -> None:
    """The level, ids and message pairs of a JSON line, in C and in Python."""
    rng = random.Random(seed)
    obj = random_object(rng, 3)
    if rng.random() < 0.6:
        obj[rng.choice(["level", "severity", "lvl"])] = rng.choice(LEVEL_VALUES)
    if rng.random() < 0.5:
        obj[rng.choice(["msg", "message"])] = rng.choice(MESSAGES)
    assert parse._parse_json is not parse._python_parse_json  # the C one is in use
    assert parse._parse_json(obj) == parse._python_parse_json(obj), obj
    assert type(parse._parse_json(obj)) is parse.ParsedFields


# -- key=value pairs of text lines ----------------------------------------------------------

PAIR_PIECES = [
    "=", "=", '"', "'", "\\", "\n", " ", ",", ";", "&", "@", ".", "-", "_", "a", "Z", "id",
    "level", "user_id", "x" * 70, "é", "中", "٣", "\u00a0", "\u2003", "\t", "ß=", "@id=",
    'msg="a \\" b"', "k='v'", "acc-1.", "[Nest]", "9",
]  # fmt: skip


@needs_native
@pytest.mark.parametrize("seed", range(300))
def test_c_pairs_are_the_regexs_matches(seed: int) -> None:
    assert native is not None
    rng = random.Random(seed)
    text = "".join(rng.choice(PAIR_PIECES) for _ in range(rng.randrange(0, 40)))
    assert native.find_pairs(text) == parse._PAIR.findall(text), repr(text)


@needs_native
def test_c_pairs_on_real_lines() -> None:
    assert native is not None
    from benchmarks.corpus import corpus_line

    for i in range(400):
        line = corpus_line(i)
        assert native.find_pairs(line) == parse._PAIR.findall(line), line


# -- the redact stage's pre-check -----------------------------------------------------------

SIGN_PIECES = [
    "secret", "SeCrEt", "sec ret", "passw", "Pass-W", "pwd", "token", "TOK EN", "key", "K-E-Y",
    "AKIA", "ASIA", "akia", "eyJ", "EYJ", "@", "bearer", "Bearer", "authorization", "AUTHOR",
    "4", "1", "2", "6", "7", "0", "5555", "4111 1111 1111 1111", "1700000000000", " ", "-",
    "é", "中", "\udcff", "\U0001f600", "x", ".", "=", '"', "\x00", "\t", "f", "_", "3",
    "J", "I", "AK", "AS", "IA", "ey", "secr", "et", "author", "ization",
]  # fmt: skip


@needs_native
@pytest.mark.parametrize("seed", range(300))
def test_c_redact_signs_are_pythons(seed: int) -> None:
    from agent.logs.stages.redact import _python_signs

    assert native is not None
    rng = random.Random(seed)
    text = "".join(rng.choice(SIGN_PIECES) for _ in range(rng.randrange(0, 60)))
    if seed % 7 == 0:
        text *= 200  # over the C side's stack buffer
    for enabled in range(64):
        assert native.redact_signs(text, enabled) == _python_signs(text, enabled), (
            repr(text),
            enabled,
        )


@needs_native
def test_c_redact_signs_on_real_lines() -> None:
    from agent.logs.stages.redact import _python_signs
    from benchmarks.corpus import corpus_line

    assert native is not None
    for i in range(400):
        line = corpus_line(i)
        assert native.redact_signs(line, 63) == _python_signs(line, 63), line


@needs_native
@pytest.mark.parametrize("seed", range(200))
def test_c_needs_look_is_pythons(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.logs.stages import redact
    from agent.logs.stages.base import StageContext

    assert native is not None
    rng = random.Random(seed)
    options = {"patterns": ["x[0-9]+"]} if seed % 3 == 0 else {}
    stage = redact.Redact(redact.RedactConfig.model_validate(options), StageContext())
    words = ["info", "error", "abcdef", "ab", "password", "apiKey", "user", "x12", "é中文字"]
    for name in ("user", "msg", "apiKey"):  # names already seen, one of them a secret's
        stage.key_kind(name)
    stage.clean.update(rng.sample(words, 3))
    values = {rng.choice(["user", "msg", "apiKey", "new"]): rng.choice(words) for _ in range(4)}
    clean_line = rng.choice([None, "", " ".join(rng.sample(words, 4))])
    in_c = stage.needs_look(values, clean_line)
    monkeypatch.setattr(redact, "_native", None)
    assert stage.needs_look(values, clean_line) is in_c, (values, clean_line)


@needs_native
@pytest.mark.parametrize("seed", range(150))
def test_c_redact_pending_leaves_out_only_entries_the_stage_would_not_touch(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stage with C's pending filter changes exactly what its Python loop over every
    entry changes, in lines, fields and metadata (ids shared between fields and metadata,
    as the reader makes them), with caches warming up as the chunk goes."""
    from agent.logs.stages import redact
    from agent.logs.stages.base import Entry, StageContext

    assert native is not None
    rng = random.Random(seed)
    detectors = rng.choice([["all"], ["email"], ["card", "jwt"], ["secrets", "bearer"]])
    config = redact.RedactConfig.model_validate({"detectors": detectors})
    words = [*SIGN_PIECES, "acc-1", "usr-7", "info", "req 42", "a@b.io", "pw=hunter2x"]
    names = ["level", "accountId", "userId", "password", "msg", "authorization", "apiKey"]

    def entries() -> list[Entry]:
        made = []
        chunk = random.Random(seed)
        for _ in range(chunk.randrange(0, 40)):
            line = " ".join(chunk.choice(words) for _ in range(chunk.randrange(0, 12)))
            if chunk.random() < 0.3:
                line = '{"msg":"' + line.replace('"', "") + '","token":"t0k3n"}'
            fields = {
                chunk.choice(names): chunk.choice(words) for _ in range(chunk.randrange(0, 4))
            }
            shared = {k: v for k, v in fields.items() if chunk.random() < 0.6}
            metadata = {**shared, **({"requestId": "r-1"} if chunk.random() < 0.3 else {})}
            entry = Entry(1, line, "stdout", {}, fields, metadata)
            if line.startswith("{") and chunk.random() < 0.5:
                entry.parsed = True
                entry.raw = {"msg": "x", "token": "t0k3n"}
            made.append(entry)
        return made

    def run() -> list[tuple[str, dict[str, str], dict[str, str]]]:
        stage = redact.Redact(config, StageContext())
        for name in rng.sample(names, 2):
            stage.key_kind(name)  # some names known before the chunk
        out = stage.process(entries())
        return [(e.line, e.fields, e.metadata) for e in out]

    rng.seed(seed)
    in_c = run()
    monkeypatch.setattr(redact, "_native", None)
    rng.seed(seed)
    assert run() == in_c


# -- staged entries into push groups ---------------------------------------------------------


@needs_native
@pytest.mark.parametrize("seed", range(100))
def test_c_group_entries_is_pythons(seed: int) -> None:
    from agent.logs.model import PushEntry
    from agent.logs.stages.base import Entry
    from agent.logs.stages.grouping import python_group_entries

    assert native is not None
    rng = random.Random(seed)
    label_sets = [{"job": "a", "level": "info"}, {"job": "b"}, {"job": "c", "level": ""}, {}]
    metadata = [{}, {"container_id": "f" * 64}, {"userId": "é中"}]
    entries = [
        Entry(
            rng.randrange(0, 100),
            rng.choice(["", "line", "é中文", "x" * 300]),
            rng.choice(["stdout", "stderr", ""]),
            rng.choice(label_sets),
            rng.choice([{}, {"level": "warn"}, {"level": ""}]),
            rng.choice(metadata) if rng.random() < 0.7 else {"requestId": str(rng.random())},
        )
        for _ in range(rng.randrange(0, 60))
    ]
    min_ts = rng.choice([0, 30, 200])
    watched = [*label_sets, *metadata]
    before = [sys.getrefcount(obj) for obj in watched]
    in_c = native.group_entries(entries, min_ts, PushEntry)
    in_python = python_group_entries(entries, min_ts, PushEntry)
    assert in_c == in_python
    assert all(type(e) is PushEntry for _, pushed in in_c[0] for e in pushed)
    del in_c, in_python
    assert [sys.getrefcount(obj) for obj in watched] == before  # nothing leaked


# -- a chunk's lines into push groups (no stages) -----------------------------------------------

# Lines of every kind the loops branch on: empty, text, JSON (with all ids, indented, broken),
# key=value, long.
_LINE_TEXTS = [
    "",
    "plain text",
    '{"level":"error","accountId":"acc-1","userId":"é中","requestId":"r-9","n":1}',
    ' {"msg":"x"}',
    "{not json",
    "level=warn user=u-1 msg=x",
    "x" * 300,
]


def _random_lines(rng: random.Random) -> list[CompleteLine]:
    return [
        CompleteLine(
            rng.randrange(0, 100),
            rng.choice(["stdout", "stderr"]),
            rng.choice(_LINE_TEXTS),
            rng.random() < 0.1,
            rng.choice([0, rng.randrange(1, 1000)]),
            None,
        )
        for _ in range(rng.randrange(0, 60))
    ]


@needs_native
@pytest.mark.parametrize("seed", range(100))
def test_c_group_lines_is_pythons(seed: int) -> None:
    from agent.logs.line_groups import python_group_lines

    assert native is not None
    rng = random.Random(seed)
    lines = _random_lines(rng)
    base_md = rng.choice([(), (("container_id", "f" * 64),)])
    args = (
        lines,
        rng.choice([parse.parse_line, None]),
        base_md,
        sum(len(k) + len(v) for k, v in base_md),
        rng.random() < 0.7,
        rng.random() < 0.7,
        rng.random() < 0.7,
        rng.random() < 0.5,
        rng.choice([0, 30, 200]),
        PushEntry,
    )
    watched = [*_LINE_TEXTS[1:], base_md, "stdout", "stderr"]  # not "": any code holds it
    before = [sys.getrefcount(obj) for obj in watched]
    in_c = native.group_lines(*args)
    in_python = python_group_lines(*args)
    assert in_c == in_python
    assert list(in_c[0]) == list(in_python[0])  # groups in first-seen order
    assert all(type(e) is PushEntry for pushed in in_c[0].values() for e in pushed)
    del in_c, in_python
    assert [sys.getrefcount(obj) for obj in watched] == before  # nothing leaked


@needs_native
def test_c_group_lines_passes_a_parse_failure_on() -> None:
    assert native is not None

    def broken(text: str) -> parse.ParsedFields:
        raise ValueError(text)

    lines = [CompleteLine(1, "stdout", "boom", False, 5, None)]
    with pytest.raises(ValueError, match="boom"):
        native.group_lines(lines, broken, (), 0, True, True, True, True, 0, PushEntry)
    with pytest.raises(TypeError):
        native.group_lines([("short",)], None, (), 0, True, True, True, True, 0, PushEntry)


# -- a chunk's lines into stage entries ---------------------------------------------------------


def _entry_state(entry: object) -> tuple[object, ...]:
    names = ("ts_ns", "line", "stream", "labels", "fields", "metadata", "resume", "parsed", "raw")
    return tuple(getattr(entry, name) for name in names)


@needs_native
@pytest.mark.parametrize("seed", range(100))
def test_c_line_entries_is_pythons(seed: int) -> None:
    from agent.logs.stages.base import Entry
    from agent.logs.stages.line_entries import python_line_entries

    assert native is not None
    rng = random.Random(seed)
    lines = _random_lines(rng)
    shared = {("", "error"): {"job": "a"}, ("stdout", "info"): {"job": "b"}}

    def labels_for(stream: str, level: str) -> dict[str, str]:
        return {"job": stream + level}  # a fresh dict: equal, never the same, across calls

    args = (
        lines,
        rng.choice([parse.parse_line, None]),
        parse.parse_json_object,
        parse.json_object,
        rng.random() < 0.5,
        {"container_id": "f" * 8},
        rng.random() < 0.7,
        rng.random() < 0.7,
        rng.random() < 0.7,
        rng.random() < 0.5,
        shared,
        labels_for,
        Entry,
        7,
        rng.randrange(100),
        rng.choice([None, "file-a"]),
        "file-b",
    )
    watched = [*_LINE_TEXTS[1:], "stdout", "stderr", "file-b"]  # not "": any code holds it
    before = [sys.getrefcount(obj) for obj in watched]
    in_c, truncated_c = native.line_entries(*args)
    in_python, truncated_python = python_line_entries(*args)
    assert truncated_c == truncated_python
    assert [_entry_state(e) for e in in_c] == [_entry_state(e) for e in in_python]
    # the shared label dicts themselves, never copies
    shared_ids = {id(labels) for labels in shared.values()}
    assert [a.labels is b.labels for a, b in zip(in_c, in_python, strict=True)] == [
        id(a.labels) in shared_ids for a in in_c
    ]
    del in_c, in_python
    assert [sys.getrefcount(obj) for obj in watched] == before  # nothing leaked
