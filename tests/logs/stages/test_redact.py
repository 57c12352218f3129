"""``redact``: secrets masked in the line, the fields and the metadata, nothing else."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import re
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from agent.logs.stages import parse_stages
from agent.logs.stages.base import Entry, StageContext
from agent.logs.stages.redact import _CARD, _RULES, _luhn, signs_of
from agent.metrics.self import AgentMetrics
from tests.logs.stages.helpers import entry, pipeline


def redacted(line: str, **options: Any) -> str:
    e = entry(line)
    pipeline({"redact": options}).process([e])
    return e.line


# -- email -----------------------------------------------------------------------------
def test_email_is_masked() -> None:
    assert redacted("login ok user=bob.smith+x@mail.example.com from 10.0.0.1") == (
        "login ok user=*** from 10.0.0.1"
    )


def test_at_signs_that_are_not_emails_stay() -> None:
    for line in (
        '{"@timestamp":"2024-05-01T12:00:00Z","msg":"x"}',
        "loaded @nestjs/core@10.3.0",
        "ssh git@localhost failed",
        "image nginx@sha256:abc123",
    ):
        assert redacted(line) == line


# -- cards ------------------------------------------------------------------------------
def test_luhn_valid_card_numbers_are_masked_with_or_without_separators() -> None:
    assert redacted("paid with 4111 1111 1111 1111 ok") == "paid with *** ok"
    assert redacted("paid with 5500-0055-5555-5559 ok") == "paid with *** ok"
    assert redacted("amex 378282246310005.") == "amex ***."


def test_numbers_failing_luhn_are_not_cards() -> None:
    order = "4000123412341235"
    assert not _luhn(order)
    assert redacted(f"order {order} shipped") == f"order {order} shipped"
    assert redacted("pay 4111111111111112 declined") == "pay 4111111111111112 declined"


def test_order_ids_epochs_and_fractions_are_not_cards() -> None:
    # Each passes Luhn: the first digit (epoch times start with 1) or context rules them out.
    epoch_ms, epoch_ns, order_id = "1714564800139", "1714564800123456796", "1234567890123460"
    for number in (epoch_ms, epoch_ns, order_id):
        assert _luhn(number)
    line = f'{{"time":{epoch_ms},"ns":{epoch_ns},"orderId":"{order_id}","pi":3.4111111111111111}}'
    assert redacted(line) == line
    assert redacted("id x4111111111111111 and 41111111111111111111") == (
        "id x4111111111111111 and 41111111111111111111"
    )


def test_card_as_json_number_becomes_a_string_and_json_stays_valid() -> None:
    out = redacted('{"card":4111111111111111,"items":[5500005555555559, 2],"n":1}')
    assert json.loads(out) == {"card": "***", "items": ["***", 2], "n": 1}
    # in JSON written into a string, the number is text: masked without quotes
    line = json.dumps({"body": json.dumps({"card": 4111111111111111, "password": 1234})})
    assert json.loads(json.loads(redacted(line))["body"].replace("***", '"***"')) == {
        "card": "***",
        "password": "***",
    }


def test_keys_with_json_literals_stay_valid_json() -> None:
    line = '{"authorization":true,"aws_secret_access_key":null,"token":false,"pwd":[1]}'
    assert redacted(line) == line


# -- tokens -----------------------------------------------------------------------------
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"


def test_jwt_is_masked_and_lookalikes_are_not() -> None:
    assert redacted(f"session {JWT} refreshed") == "session *** refreshed"
    assert redacted("prefix eyJ but no dots") == "prefix eyJ but no dots"


def test_bearer_and_authorization_credentials_are_masked_scheme_kept() -> None:
    assert redacted("Authorization: Basic dXNlcjpwYXNz") == "Authorization: Basic ***"
    assert redacted("calling with Bearer abc.def-ghi_jk~l+m/n==") == "calling with Bearer ***"
    assert redacted("authorization=raw-token-123 next") == "authorization=*** next"
    out = redacted('{"headers":{"authorization":"Bearer xyz","accept":"*/*"}}')
    assert json.loads(out) == {"headers": {"authorization": "Bearer ***", "accept": "*/*"}}
    assert redacted("basic setup done, authorization failed") == (
        "basic setup done, authorization failed"
    )


def test_aws_key_ids_and_secret_keys_are_masked() -> None:
    line = (
        "id AKIAIOSFODNN7EXAMPLE aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    )
    assert redacted(line, detectors=["aws"]) == "id *** aws_secret_access_key = ***"
    assert redacted("temp ASIAIOSFODNN7EXAMPLE", detectors="aws") == "temp ***"
    assert redacted("AKIA is short: AKIA123", detectors=["aws"]) == "AKIA is short: AKIA123"


# -- secrets by key name ---------------------------------------------------------------------
def test_secret_values_in_key_value_text() -> None:
    line = (
        'login password=hunter2 user=bob DB_PASSWORD=\'a b\' apiKey="q\\"w" x-api-key=zz,'
        " accessToken=t0k client_secret=s&x=1"
    )
    assert redacted(line) == (
        "login password=*** user=bob DB_PASSWORD='***' apiKey=\"***\" x-api-key=***,"
        " accessToken=*** client_secret=***&x=1"
    )


def test_keys_that_only_contain_a_secret_word_stay() -> None:
    line = "password_hash=abc token_count=5 passwordless=true tokens=9 password= x"
    assert redacted(line) == line


def test_json_secrets_are_masked_and_json_stays_valid() -> None:
    line = json.dumps(
        {
            "password": 'p"w\\x',
            "accessToken": "t",
            "pwd": 1234,
            "token": None,
            "nested": {"client_secret": "s", "ok": "v"},
            "msg": 'body {"password":"se\\"cret"} then password="xx" and pwd=yy',
            "url": "/cb?token=abc&next=/",
        },
        separators=(",", ":"),
    )
    out = json.loads(redacted(line))
    assert out == {
        "password": "***",
        "accessToken": "***",
        "pwd": "***",
        "token": None,
        "nested": {"client_secret": "***", "ok": "v"},
        "msg": 'body {"password":"***"} then password="***" and pwd=***',
        "url": "/cb?token=***&next=/",
    }


def test_empty_secret_values_stay_empty() -> None:
    assert redacted('{"password":""} password=""') == '{"password":""} password=""'


# -- fields and metadata --------------------------------------------------------------------
def test_fields_and_metadata_are_masked_in_new_dicts() -> None:
    shared_metadata = {"client": "bob@example.com", "trace": "t-1"}
    shared_fields = {
        "level": "info",
        "password": "abc",
        "authorization": "Bearer xyz",
        "note": "card 4111-1111-1111-1111",
        "userId": "u-1",
    }
    e = Entry(0, "plain line u-1", "stdout", {}, shared_fields, shared_metadata)
    other = Entry(0, "another line", "stdout", {}, {}, shared_metadata)
    pipeline({"redact": {}}).process([e, other])
    assert e.fields == {
        "level": "info",
        "password": "***",
        "authorization": "Bearer ***",
        "note": "card ***",
        "userId": "u-1",
    }
    assert e.metadata == {"client": "***", "trace": "t-1"}
    assert other.metadata == e.metadata
    assert shared_metadata == {"client": "bob@example.com", "trace": "t-1"}
    assert shared_fields["password"] == "abc"


def test_fields_parsed_after_redaction_come_from_the_masked_line() -> None:
    e = entry('{"level":"info","email":"bob@example.com","password":"x"}')
    pipeline({"redact": {}}).process([e])
    assert e.field("email") == "***"
    assert e.field("password") == "***"


def test_changed_entries_are_counted_once_each() -> None:
    metrics = AgentMetrics(CollectorRegistry())
    stages = pipeline({"redact": {"name": "pii"}}, context=StageContext(metrics=metrics))
    batch = [
        entry("a@b.co and password=x"),
        entry("clean"),
        entry("clean", fields={"token": "t"}),
    ]
    stages.process(batch)
    assert metrics.stage_changed.labels("pii")._value.get() == 2


# -- hashing --------------------------------------------------------------------------------
def expected_hash(key: bytes, value: str) -> str:
    return "h:" + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:16]


def test_keyed_hash_is_equal_for_equal_values_and_differs_by_key(tmp_path: Path) -> None:
    line = "from Bob@Example.com to bob@example.com and carol@example.com"
    first = redacted(line, detectors=["email"], hash={"key": "k1"})
    again = redacted(line, detectors=["email"], hash={"key": "k1"})
    key_file = tmp_path / "key"
    key_file.write_text("k2\n")
    other_key = redacted(line, detectors=["email"], hash={"key_file": str(key_file)})
    bob = expected_hash(b"k1", "bob@example.com")  # emails hash in lower case
    assert first == again == f"from {bob} to {bob} and {expected_hash(b'k1', 'carol@example.com')}"
    assert other_key == first.replace(bob, expected_hash(b"k2", "bob@example.com")).replace(
        expected_hash(b"k1", "carol@example.com"), expected_hash(b"k2", "carol@example.com")
    )
    assert redacted("4111 1111 1111 1111", detectors=["card"], hash={"key": "k"}) == (
        expected_hash(b"k", "4111111111111111")
    )


def test_hash_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="replacement or hash, not both"):
        parse_stages([{"redact": {"replacement": "x", "hash": {"key": "k"}}}])
    with pytest.raises(ValueError, match="exactly one of key or key_file"):
        parse_stages([{"redact": {"hash": {}}}])
    with pytest.raises(ValueError, match="cannot read"):
        parse_stages([{"redact": {"hash": {"key_file": str(tmp_path / "missing")}}}])


# -- custom patterns ---------------------------------------------------------------------
def test_custom_pattern_masks_its_secret_group_or_the_whole_match() -> None:
    options = {
        "detectors": [],
        "patterns": [r"session=(?P<secret>[0-9a-f]{8})\b", r"SSN \d{3}-\d{2}-\d{4}"],
    }
    line = "session=deadbeef ok, SSN 123-45-6789 filed, session=short"
    assert redacted(line, **options) == "session=*** ok, *** filed, session=short"


def test_custom_patterns_apply_to_fields() -> None:
    e = entry("line", fields={"customer": "cust-4711", "level": "info"})
    pipeline({"redact": {"detectors": [], "patterns": ["^cust-[0-9]+$"]}}).process([e])
    assert e.fields == {"customer": "***", "level": "info"}


def test_bad_options_are_rejected_with_the_reason() -> None:
    with pytest.raises(ValueError, match=r"unknown detector 'phone'.*email, card, jwt"):
        parse_stages([{"redact": {"detectors": ["email", "phone"]}}])
    with pytest.raises(ValueError, match=r"patterns\[0\]: invalid regular expression"):
        parse_stages([{"redact": {"patterns": ["("]}}])
    with pytest.raises(ValueError, match="matches the empty string"):
        parse_stages([{"redact": {"patterns": ["x*"]}}])
    with pytest.raises(ValueError, match="quotes, backslashes"):
        parse_stages([{"redact": {"replacement": 'a"b'}}])
    with pytest.raises(ValueError, match="nothing to redact"):
        parse_stages([{"redact": {"detectors": []}}])


def test_replacement_is_configurable() -> None:
    assert redacted("mail a@b.co", replacement="<redacted>") == "mail <redacted>"


# -- size and speed -------------------------------------------------------------------------
def test_secret_in_a_200_kib_line_is_masked() -> None:
    filler = "x" * (100 * 1024)
    line = f"{filler} password=hunter2 card 4111111111111111 {filler}"
    started = time.perf_counter()
    out = redacted(line)
    assert time.perf_counter() - started < 1.0
    assert out == f"{filler} password=*** card *** {filler}"


def test_catastrophic_looking_pattern_runs_in_linear_time() -> None:
    line = "a" * 100_000 + "!"
    started = time.perf_counter()
    assert redacted(line, patterns=["(a+)+$"]) == line
    assert time.perf_counter() - started < 1.0


CARD_PIECES = [
    "4",
    "2",
    "6",
    "1",
    "0",
    "9",
    "4111 1111 1111 1111",
    " ",
    "-",
    "f",
    "_",
    "x",
    "é",
    ".",
    '"',
]


@pytest.mark.parametrize("seed", range(200))
def test_the_card_sign_shows_wherever_the_card_rule_can_match(seed: int) -> None:
    """The sign is the pre-check that lets a line skip the card regex: it may show where
    no card is, never miss one."""
    card = re.compile(next(regex for kind, _, regex in _RULES if kind == "card"))
    rng = random.Random(seed)
    for _ in range(50):
        text = "".join(rng.choice(CARD_PIECES) for _ in range(rng.randrange(10, 50)))
        if card.search(text):
            assert signs_of(text, _CARD) & _CARD, repr(text)


def test_hex_ids_and_epoch_times_show_no_card_sign() -> None:
    for text in ('"requestId":"8ff34741-00000008"', '"time":1764174000000', "id=a4111111111111111"):
        assert not signs_of(text, _CARD), text
    assert signs_of("paid with 4111 1111 1111 1111", _CARD)
    assert (
        redacted("req 8ff34741-00000008 card 4111-1111-1111-1111")
        == "req 8ff34741-00000008 card ***"
    )
