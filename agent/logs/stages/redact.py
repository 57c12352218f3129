"""``redact``: mask secrets and personal data before anything leaves the host.

Loki keeps what it is sent, and everyone with read access to a tenant sees it: a password
or card number that reaches it cannot be taken back. This stage masks them in the line,
in the extracted fields and in structured metadata, whatever stage put them there.

.. code-block:: yaml

    - redact:
        detectors: [all]        # or some of: email, card, jwt, bearer, aws, secrets
        patterns:               # optional, RE2; only the group named `secret` is masked
          - 'session=(?P<secret>[0-9a-f]{32})'
        replacement: "***"      # the default
    - redact:
        detectors: [email]
        hash: {key_file: /run/secrets/redact_key}   # h:<16 hex>: equal values stay joinable

Detectors:

- ``email``: ``name@domain.tld`` (hashed in lower case).
- ``card``: 13-19 digits, optionally in groups split by spaces or dashes, starting with 2-6
  (Mastercard, Amex, Visa, Discover, UnionPay...) and passing the Luhn check (hashed as
  digits only). Epoch timestamps in ms/us/ns are 13, 16 and 19 digits long and one in ten
  passes Luhn: they start with 1, hence the first-digit rule. Decimal fractions are left
  alone; a card written as a bare JSON number becomes a JSON string.
- ``jwt``: three base64url segments starting ``eyJ``.
- ``bearer``: the token after ``Bearer``, and the credentials of an ``Authorization``
  value, field or metadata (``Basic``/``Bearer``/``Token`` scheme kept).
- ``aws``: access key ids (``AKIA``/``ASIA`` + 16) and ``aws_secret_access_key`` values.
- ``secrets``: values of keys whose name ends in password, passwd, pwd, secret, token,
  api_key (apikey, api-key) or private_key, any case (so ``DB_PASSWORD``, ``accessToken``,
  ``client_secret`` too): ``key=value``, ``key="..."``, ``key='...'``, JSON
  ``"key":"..."`` or ``"key":123`` (the number becomes a string), the same as escaped
  JSON inside a JSON string, and fields or metadata of that name.

A masked line that was valid JSON stays valid JSON. ``hash`` replaces each value with
``h:`` + the first 16 hex digits of HMAC-SHA256(key, value) instead of ``replacement``.
Changed entries count in ``nexo_agent_stage_changed_entries_total``. Each detector first
looks for a cheap sign (``@``, ``eyJ``, a long digit run, a key word) and the regex only
runs on lines that have one; each custom pattern costs one regex pass per line.
"""

from __future__ import annotations

import functools
import hmac
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from agent.logs.parse import LEVELS
from agent.logs.speedups import native as _native
from agent.logs.stages.base import Entry, Stage, StageContext
from agent.logs.stages.options import StageConfig
from agent.logs.stages.pattern import Pattern, compile_pattern

DETECTORS = ("email", "card", "jwt", "bearer", "aws", "secrets")
_EMAIL, _CARD, _JWT, _BEARER, _AWS, _SECRETS = (1 << i for i in range(6))
_BITS = dict(zip(DETECTORS, (_EMAIL, _CARD, _JWT, _BEARER, _AWS, _SECRETS), strict=True))

# Key names whose values are secrets: the name ends in one of these, in any case.
_KEY = r"[A-Za-z0-9_.\-]*(?i:passw(?:or)?d|pwd|secret|token|api[_\-]?key|private[_\-]?key)"
_JSON_STRING = r'(?:[^"\\]|\\.)*'
# A JSON string inside a JSON string (``"msg":"body {\"password\":\"x\"}"``): every inner
# escape arrives escaped once more (``\"`` as ``\\\"``).
_ESCAPED_STRING = r'(?:[^"\\]|\\\\(?:\\.|[^"\\]))*'
_TOKEN = r"[A-Za-z0-9\-._~+/]+=*"  # RFC 6750 b64token, and Basic's base64


def _keyed_rules(
    detector: int, key: str, value: str, scheme: str = ""
) -> list[tuple[str, int, str]]:
    """Rules for the value of one key: in JSON (``"key": "value"``, the whole string), in
    JSON inside a JSON string, and in text (``key: value``, ``key=value``, ``key =
    "value"``; ``value`` says what it is made of). A quote after the key only goes with
    the JSON forms, so ``"key": true`` is left alone."""
    return [
        ("secret", detector, rf'("{key}"\s*:\s*"{scheme})({_JSON_STRING})(")'),
        ("secret", detector, rf'(\\"{key}\\"\s*:\s*\\"{scheme})({_ESCAPED_STRING})(\\")'),
        ("secret", detector, rf"""({key}\s*[:=]\s*\\?["']?{scheme})({value})()"""),
    ]


# (kind, detector, regex with exactly three groups: kept before, masked, kept after).
# Earlier rules win where two could start at the same place.
_RULES: list[tuple[str, int, str]] = [
    ("secret", _SECRETS, rf'("{_KEY}"\s*:\s*")({_JSON_STRING})(")'),
    ("secret_number", _SECRETS, rf'("{_KEY}"\s*:\s*)(-?[0-9][0-9.eE+\-]*)()'),
    ("secret", _SECRETS, rf'(\\"{_KEY}\\"\s*:\s*\\")({_ESCAPED_STRING})(\\")'),
    # A number in JSON inside a string stays unquoted: it is text to the outer JSON.
    ("secret", _SECRETS, rf'(\\"{_KEY}\\"\s*:\s*)(-?[0-9][0-9.eE+\-]*)()'),
    ("secret", _SECRETS, rf'({_KEY}=")({_JSON_STRING})(")'),
    ("secret", _SECRETS, rf'({_KEY}=\\")({_ESCAPED_STRING})(\\")'),
    ("secret", _SECRETS, rf"({_KEY}=')([^']*)(')"),
    # A backslash only goes with the character it escapes, so an escaped quote that ends a
    # JSON string is never cut in half.
    ("secret", _SECRETS, rf"""({_KEY}=)((?:[^\s"',;&\\]|\\[^"'])+)()"""),
    *_keyed_rules(_BEARER, "(?i:authorization)", _TOKEN, scheme=r"(?:(?i:basic|bearer|token)\s+)?"),
    ("secret", _BEARER, rf"((?i:\bbearer)\s+)({_TOKEN})()"),
    *_keyed_rules(_AWS, "(?i:aws_secret_access_key)", r"[A-Za-z0-9/+=]+"),
    ("secret", _AWS, r"()(\b(?:AKIA|ASIA)[A-Z0-9]{16}\b)()"),
    ("secret", _JWT, r"()(eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*)()"),
    (
        "email",
        _EMAIL,
        r"()([A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,})()",
    ),
    # Digits after a decimal point are a fraction, not a card: matched to be kept.
    ("keep", _CARD, r"()(\.[0-9]{13,})()"),
    ("card", _CARD, r"()(\b[2-6][0-9](?:[ \-]?[0-9]){11,17}\b)()"),
]

# Pre-check text: ASCII letters lower-cased, digits as "0", spaces and dashes deleted (a
# card's groups become one digit run; "api-key" still contains "key").
_FOLD = bytes(ord("0") if 48 <= c <= 57 else c + 32 if 65 <= c <= 90 else c for c in range(256))
_SEPARATORS = b" -"
_NUMBER_MARK = "\x00"  # around masked cards in JSON lines (see _quote_numbers)
_KEY_CACHE_MAX = 4096
# The built-in parsing's level names ("error", "unknown"): never a secret, often not in the
# line as written (pino's 50), so not worth a second look.
_LEVELS = frozenset(LEVELS)
# Values already found to hold nothing (at most this many, each at most this long).
_CLEAN_CACHE_MAX = 4096
_CLEAN_VALUE_MAX = 256
_SAFE_REPLACEMENT = Pattern(r'[^"\\\x00-\x1f]*')


# Where a card number could start: what the card rule needs before its own \b and Luhn
# check. Hex ids (8ff34741-00000008) and epoch times (1764174000000) are no start.
_CARD_START = re.compile(r"(?<![A-Za-z0-9_])[2-6][0-9](?:[ \-]?[0-9]){11}")


def _python_signs(text: str, enabled: int) -> int:
    """The detectors among ``enabled`` whose cheap sign the text shows: only they can
    match in it (``_speedups.redact_signs`` does the same in C)."""
    data = text.encode("utf-8", "surrogatepass")
    raw = data.translate(_FOLD, _SEPARATORS)
    # As str: ``in`` on str is two to three times cheaper than on bytes.
    folded = raw.decode("latin-1")
    bits = 0
    if enabled & _EMAIL and "@" in folded:
        bits = _EMAIL
    if enabled & _JWT and "eyJ" in text:
        bits |= _JWT
    if enabled & (_SECRETS | _AWS):
        secret = "secret" in folded
        if enabled & _SECRETS and (
            secret or "passw" in folded or "pwd" in folded or "token" in folded or "key" in folded
        ):
            bits |= _SECRETS
        if enabled & _AWS and (secret or "AKIA" in text or "ASIA" in text):
            bits |= _AWS
    if enabled & _BEARER and ("bearer" in folded or "authorization" in folded):
        bits |= _BEARER
    if enabled & _CARD and _CARD_START.search(text) is not None:
        bits |= _CARD
    return bits


# The C version when built: the pre-check runs on every line and every extracted value.
signs_of: Callable[[str, int], int] = _native.redact_signs if _native is not None else _python_signs


def _quote_numbers(text: str) -> str:
    """Quote the marked masks that stand outside JSON strings (where a number stood),
    leave those inside strings bare (in JSON written into a string, a number is text)."""
    parts = text.split(_NUMBER_MARK)
    inside = False
    for i in range(0, len(parts), 2):
        part = parts[i]
        quote = part.find('"')
        while quote >= 0:
            start = quote
            while start and part[start - 1] == "\\":
                start -= 1
            if (quote - start) % 2 == 0:  # not escaped
                inside = not inside
            quote = part.find('"', quote + 1)
        if i + 1 < len(parts) and not inside:
            parts[i + 1] = f'"{parts[i + 1]}"'
    return "".join(parts)


def _luhn(digits: str) -> bool:
    total = 0
    double = False
    for ch in reversed(digits):
        d = ord(ch) - 48
        if double:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
        double = not double
    return total % 10 == 0


class HashConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str | None = None
    key_file: Path | None = None

    @model_validator(mode="after")
    def _one_key(self) -> HashConfig:
        if (self.key is None) == (self.key_file is None):
            raise ValueError("hash needs exactly one of key or key_file")
        if self.key is not None and not self.key:
            raise ValueError("hash.key is empty")
        return self


class RedactConfig(StageConfig):
    detectors: list[str] = ["all"]
    patterns: list[str] = []
    replacement: str = "***"
    hash: HashConfig | None = None

    @field_validator("detectors", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("detectors")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        for name in value:
            if name != "all" and name not in _BITS:
                raise ValueError(
                    f"unknown detector {name!r} (detectors: all, {', '.join(DETECTORS)})"
                )
        return value

    @field_validator("replacement")
    @classmethod
    def _json_safe(cls, value: str) -> str:
        # The replacement lands inside JSON strings: a quote or backslash would break them.
        if not _SAFE_REPLACEMENT.fullmatch(value):
            raise ValueError("must not contain quotes, backslashes or control characters")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> RedactConfig:
        if self.hash is not None and "replacement" in self.model_fields_set:
            raise ValueError("give replacement or hash, not both")
        if not self.detectors and not self.patterns:
            raise ValueError("nothing to redact: give detectors or patterns")
        return self


def _read_key(config: HashConfig) -> bytes:
    if config.key is not None:
        return config.key.encode()
    assert config.key_file is not None
    try:
        key = config.key_file.read_bytes().strip()
    except OSError as exc:
        raise ValueError(f"hash.key_file: cannot read {config.key_file}: {exc.strerror}") from None
    if not key:
        raise ValueError(f"hash.key_file: {config.key_file} is empty")
    return key


# The rules of some detectors as one pattern, and its replacement callbacks for text and
# for JSON lines (where a card written as a number must become a string).
_Combined = tuple[Pattern, Callable[[list[str]], str], Callable[[list[str]], str]]
# A custom pattern, its replacement callback and its multi-line twin (see redact_values).
_Custom = tuple[Pattern, Callable[[list[str]], str], Pattern | None]


class Redact(Stage):
    type_name = "redact"
    config_class = RedactConfig

    def __init__(self, config: StageConfig, context: StageContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, RedactConfig)
        enabled = 0
        for name in config.detectors:
            enabled |= sum(_BITS.values()) if name == "all" else _BITS[name]
        self.enabled = enabled
        self.replacement = config.replacement
        self.key = _read_key(config.hash) if config.hash is not None else None
        self.patterns: list[_Custom] = []
        for i, expression in enumerate(config.patterns):
            pattern = compile_pattern(expression, f"patterns[{i}]")
            if pattern.fullmatch(""):
                raise ValueError(f"patterns[{i}]: {expression!r} matches the empty string")
            group = pattern.group_index("secret")
            replace = self._custom
            if group is not None:
                replace = functools.partial(self._custom_group, group)
            # Field values are first searched all at once, joined by newlines: multi-line
            # mode keeps ^ and $ meaning each value's start and end there.
            probe = (
                None
                if "\\A" in expression or "\\z" in expression
                else Pattern(f"(?m:{expression})")
            )
            self.patterns.append((pattern, replace, probe))
        self.combined: dict[int, _Combined] = {}
        self.key_kinds: dict[str, str] = {}
        self.key_pattern = Pattern(_KEY)
        # Shortest text any enabled rule can mask ("pwd=x"); custom patterns may be shorter.
        self.min_length = 1 if self.patterns else 5
        self.clean: set[str] = set(_LEVELS)

    # -- masking ----------------------------------------------------------------------
    def mask(self, value: str) -> str:
        key = self.key
        if key is None:
            return self.replacement
        return "h:" + hmac.digest(key, value.encode("utf-8", "surrogatepass"), "sha256").hex()[:16]

    def _replace(self, kinds: list[str], json: bool, groups: list[str]) -> str:
        for i, kind in enumerate(kinds):
            before, value, after = groups[3 * i + 1 : 3 * i + 4]
            if not (before or value or after):
                continue  # another alternative matched
            if kind == "keep" or not value:
                return groups[0]
            if kind == "secret":
                return before + self.mask(value) + after
            if kind == "secret_number":
                return before + '"' + self.mask(value) + '"'
            if kind == "email":
                return self.mask(value.lower() if self.key is not None else value)
            # card
            digits = value.replace(" ", "").replace("-", "")
            if not _luhn(digits):
                return groups[0]
            if json and len(digits) == len(value):
                # Perhaps a JSON number: marked, and quoted by _quote_numbers if so.
                return _NUMBER_MARK + self.mask(digits) + _NUMBER_MARK
            return self.mask(digits)
        return groups[0]

    def _combined(self, bits: int) -> _Combined:
        found = self.combined.get(bits)
        if found is None:
            rules = [(kind, regex) for kind, bit, regex in _RULES if bit & bits]
            pattern = Pattern("|".join(regex for _, regex in rules))
            kinds = [kind for kind, _ in rules]
            found = (
                pattern,
                functools.partial(self._replace, kinds, False),
                functools.partial(self._replace, kinds, True),
            )
            self.combined[bits] = found
        return found

    def redact(
        self, text: str, bits: int | None = None, patterns: list[_Custom] | None = None
    ) -> str:
        """``text`` with what the detectors in ``bits`` (by default those whose sign the
        text shows) and the custom ``patterns`` (by default all) find masked."""
        if bits is None:
            bits = signs_of(text, self.enabled) if self.enabled else 0
        if bits:
            pattern, as_text, as_json = self._combined(bits)
            # In JSON, a masked card that stood as a number must become a string.
            json = text[:1] in ("{", "[") and _NUMBER_MARK not in text
            text = pattern.sub(text, as_json if json else as_text)[0]
            if json and _NUMBER_MARK in text:
                text = _quote_numbers(text)
        for pattern, replace, _ in self.patterns if patterns is None else patterns:
            text = pattern.sub(text, replace)[0]
        return text

    def _custom(self, groups: list[str]) -> str:
        return self.mask(groups[0])

    def _custom_group(self, group: int, groups: list[str]) -> str:
        whole, secret = groups[0], groups[group]
        # Every occurrence within the match: masking too much beats leaking.
        return whole.replace(secret, self.mask(secret)) if secret else whole

    def key_kind(self, name: str) -> str:
        """What a field or metadata key says about its value: "secret", "auth" or ""."""
        kind = self.key_kinds.get(name)
        if kind is None:
            enabled = self.enabled
            low = name.lower()
            kind = ""
            if (enabled & _SECRETS and self.key_pattern.fullmatch(name)) or (
                enabled & _AWS and low.endswith("aws_secret_access_key")
            ):
                kind = "secret"
            elif enabled & _BEARER and low.endswith("authorization"):
                kind = "auth"
            if len(self.key_kinds) >= _KEY_CACHE_MAX:
                self.key_kinds.clear()
            self.key_kinds[name] = kind
        return kind

    def redact_values(self, values: dict[str, str], clean_line: str | None) -> dict[str, str]:
        """``values`` itself when nothing changes, else a new dict.

        A value found in ``clean_line`` (a line that shows no detector's sign) cannot show
        one either. The others are checked joined, in one pass, and one by one only when
        that finds something.
        """
        changed: dict[str, str] | None = None
        pending: list[str] = []
        customs = self.patterns
        min_length = self.min_length
        kinds = self.key_kinds
        clean = self.clean
        for name, value in values.items():
            kind = kinds.get(name)
            if kind is None:
                kind = self.key_kind(name)
            if kind and value:
                masked = self.mask(value)
                if kind == "auth":
                    scheme, space, credentials = value.partition(" ")
                    if space and scheme.isalpha() and credentials.strip():
                        masked = scheme + space + self.mask(credentials.strip())
                if masked != value:
                    if changed is None:
                        changed = dict(values)
                    changed[name] = masked
            elif (
                len(value) >= min_length
                and value not in clean
                and (customs or clean_line is None or value not in clean_line)
            ):
                pending.append(name)
        if pending:
            joined = "\n".join([values[name] for name in pending])
            bits = signs_of(joined, self.enabled) if self.enabled else 0
            found = [c for c in customs if c[2] is None or c[2].search(joined)]
            if not (bits or found):
                # Repeating values (a container id, an account id) are looked at once.
                if len(clean) > _CLEAN_CACHE_MAX:
                    clean.clear()
                    clean.update(_LEVELS)
                clean.update(values[n] for n in pending if len(values[n]) <= _CLEAN_VALUE_MAX)
            else:
                for name in pending:
                    value = values[name]
                    masked = self.redact(value, None if bits else 0, found)
                    if masked != value:
                        if changed is None:
                            changed = dict(values)
                        changed[name] = masked
        return values if changed is None else changed

    def needs_look(self, values: dict[str, str], clean_line: str | None) -> bool:
        """Whether :meth:`redact_values` could change anything (the cheap part of it)."""
        if _native is not None:  # the same loop in C
            look = _native.redact_needs_look
            return bool(
                look(
                    self.key_kinds,
                    self.min_length,
                    self.clean,
                    bool(self.patterns),
                    values,
                    clean_line,
                )
            )
        kinds = self.key_kinds
        min_length = self.min_length
        customs = self.patterns
        clean = self.clean
        for name, value in values.items():
            if kinds.get(name) != "" or (
                len(value) >= min_length
                and value not in clean
                and (customs or clean_line is None or value not in clean_line)
            ):
                return True
        return False

    def apply(self, entries: list[Entry]) -> list[Entry]:
        enabled = self.enabled
        customs = self.patterns
        signs = signs_of
        redact = self.redact
        needs_look: Callable[[dict[str, str], str | None], bool] = self.needs_look
        if _native is not None:  # the C loop, without a method call around it per entry
            needs_look = functools.partial(
                _native.redact_needs_look,
                self.key_kinds,
                self.min_length,
                self.clean,
                bool(customs),
            )
        redact_values = self.redact_values
        chosen = entries
        if _native is not None and not customs:
            # Most entries show no sign and carry no field worth a look: C finds the few
            # that do, and only those go through the loop below.
            pending = _native.redact_pending(
                entries, enabled, self.key_kinds, self.min_length, self.clean
            )
            chosen = [entries[i] for i in pending]
        changed = 0
        for e in chosen:
            line = e.line
            bits = signs(line, enabled) if enabled else 0
            hit = False
            if bits or customs:
                masked = redact(line, bits)
                if masked != line:
                    e.line = masked
                    hit = True
            clean_line = None if bits else line
            if bits and e.raw:
                # The line's own fields, parsed before it was masked: mask them too.
                e.parse_line_fields()
            fields = e.fields
            if fields and needs_look(fields, clean_line):
                new = redact_values(fields, clean_line)
                if new is not fields:
                    e.fields = new
                    hit = True
            metadata = e.metadata
            if metadata and needs_look(metadata, clean_line):
                new = redact_values(metadata, clean_line)
                if new is not metadata:
                    e.metadata = new
                    hit = True
            if hit:
                changed += 1
        if changed:
            self.count_change(changed)
        return entries


STAGE = Redact
