"""``timestamp``: give an entry the time its application wrote, not the time it was read.

Docker stamps each line when it receives it, which is close to the truth; a line read
from a file only has the moment the agent read it, hours off when a file is read late.
This stage takes the time from a field (Promtail's ``timestamp`` stage):

.. code-block:: yaml

    - timestamp:
        source: time              # default: the first of time, timestamp, ts, @timestamp
        format: auto              # see below
        fallback_formats: [UnixMs, "2006-01-02 15:04:05"]
        location: Europe/Berlin   # zone of times written without one (default UTC)
        max_skew: 1h              # 0: believe any time
        action_on_failure: fudge  # or skip

Formats: ``auto`` (the default: numbers are seconds, ms, us or ns since the epoch, whichever
lands between 2001 and 2286; strings ISO 8601 / RFC 3339), ``RFC3339``, ``RFC3339Nano``,
``Unix``, ``UnixMs``, ``UnixUs``, ``UnixNs``, ``pino`` (epoch ms), ``winston`` (ISO 8601),
``nestjs`` (``05/01/2024, 12:00:00 PM``; with no ``source`` it is read from the
``[Nest] 123  - 05/01/2024, 12:00:00 PM     LOG ...`` line itself, else from the fields
above), Go's named layouts (``RFC1123``, ``Stamp``...) or a Go reference layout such as
``2006-01-02 15:04:05.000`` or ``02/Jan/2006:15:04:05 -0700``, as Promtail takes them.
A layout without a year gets the entry's year. Format names are case-insensitive.

A parsed time further than ``max_skew`` from Docker's own timestamp (either way) is not
believed: it is a wrong format, a wrong zone or a wrong clock, and Docker's time is kept.
Entries from files have no such witness (their time is when the line was read), so only
times more than ``max_skew`` ahead of it are refused there, and a file read late keeps the
times it was written with. Loki itself refuses entries more than its
``creation_grace_period`` (10m by default) in the future.

``action_on_failure`` for entries without a usable time: ``fudge`` (Promtail's default)
gives them the last time taken from this stream plus 1 ns, so they stay after the line
before them (the lines of a stack trace); ``skip`` keeps their own time. Entries whose time
was taken count in ``nexo_agent_stage_changed_entries_total``.
"""

from __future__ import annotations

import difflib
import zoneinfo
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Literal

from pydantic import field_validator

from agent.logs.stages.base import Entry, Stage, StageContext
from agent.logs.stages.options import Duration, StageConfig
from agent.logs.stages.pattern import Pattern

DEFAULT_SOURCES = ("time", "timestamp", "ts", "@timestamp")
NAMED_FORMATS = (
    "auto",
    "RFC3339",
    "RFC3339Nano",
    "Unix",
    "UnixMs",
    "UnixUs",
    "UnixNs",
    "pino",
    "winston",
    "nestjs",
)
# Go's named layouts (time/format.go), which Promtail accepts by name.
GO_LAYOUTS = {
    "ANSIC": "Mon Jan _2 15:04:05 2006",
    "UnixDate": "Mon Jan _2 15:04:05 MST 2006",
    "RubyDate": "Mon Jan 02 15:04:05 -0700 2006",
    "RFC822": "02 Jan 06 15:04 MST",
    "RFC822Z": "02 Jan 06 15:04 -0700",
    "RFC850": "Monday, 02-Jan-06 15:04:05 MST",
    "RFC1123": "Mon, 02 Jan 2006 15:04:05 MST",
    "RFC1123Z": "Mon, 02 Jan 2006 15:04:05 -0700",
    "Kitchen": "3:04PM",
    "Stamp": "Jan _2 15:04:05",
    "StampMilli": "Jan _2 15:04:05.000",
    "StampMicro": "Jan _2 15:04:05.000000",
    "StampNano": "Jan _2 15:04:05.000000000",
}

# value, the entry's own time (for a missing year) -> ns since the epoch, or None.
Parser = Callable[[str, int], int | None]

_NS = 1_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# ``auto`` reads a number in the unit that puts it in [2001-09-09, 2286-11-20).
_AUTO_LOW, _AUTO_HIGH = 10**9, 10**10
_POW10: tuple[int, ...] = tuple(10**n for n in range(10))
_UNIT_DIGITS = {"s": 9, "ms": 6, "us": 3, "ns": 0}
_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_OFFSET_CACHE_MAX = 1024
_MINUTE_CACHE_MAX = 256


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm):
    integer arithmetic, no datetime object per line."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month - 3 if month > 2 else month + 9) + 2) // 5 + day - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def _valid(year: int, month: int, day: int, hour: int, minute: int, second: int) -> bool:
    if not (1 <= month <= 12 and 0 <= hour < 24 and 0 <= minute < 60 and 0 <= second < 60):
        return False
    days = _MONTH_DAYS[month - 1]
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        days = 29
    return 1 <= day <= days


class LocalZone:
    """Wall-clock times of one zone to UTC, the offset cached per half hour."""

    def __init__(self, zone: tzinfo | None) -> None:
        self.zone = zone
        self.offsets: dict[tuple[int, int, int, int, bool], int] = {}
        # The start of a minute written as wall-clock text (NestJS), by that text.
        self.minutes: dict[str, int] = {}

    def offset(self, year: int, month: int, day: int, hour: int, minute: int) -> int:
        zone = self.zone
        if zone is None:
            return 0
        key = (year, month, day, hour, minute >= 30)
        found = self.offsets.get(key)
        if found is None:
            delta = datetime(year, month, day, hour, minute, tzinfo=zone).utcoffset()
            found = int(delta.total_seconds()) if delta is not None else 0
            if len(self.offsets) >= _OFFSET_CACHE_MAX:
                self.offsets.clear()
            self.offsets[key] = found
        return found

    def abbreviation(self, year: int, month: int, day: int, hour: int) -> str | None:
        if self.zone is None:
            return "UTC"
        return datetime(year, month, day, hour, tzinfo=self.zone).tzname()

    def epoch_ns(
        self,
        year: int,
        month: int,
        day: int,
        hour: int,
        minute: int,
        second: int,
        nanos: int,
        offset: int | None,
    ) -> int:
        """``offset``: seconds east of UTC as written, None for this zone's wall clock."""
        if offset is None:
            offset = self.offset(year, month, day, hour, minute)
        seconds = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
        return (seconds - offset) * _NS + nanos


# -- numbers -------------------------------------------------------------------------------
def _decimal_ns(value: str, digits: int) -> int | None:
    """``value`` (a decimal number of some unit) in ns, exactly: ``digits`` is how many
    decimal places one unit has in ns (9 for seconds)."""
    whole, dot, fraction = value.partition(".")
    if not whole.isdigit() or (dot and not fraction.isdigit()):
        if "e" in value or "E" in value:  # 1.7145648001234568e+18, as floats print
            try:
                return int(float(value) * _POW10[digits])
            except (ValueError, OverflowError):
                return None
        return None
    ns = int(whole) * _POW10[digits]
    if fraction and digits:
        ns += int(fraction[:digits].ljust(digits, "0"))
    return ns


def _unix(unit: str) -> Parser:
    digits = _UNIT_DIGITS[unit]

    def parse(value: str, _now: int) -> int | None:
        return _decimal_ns(value, digits)

    return parse


def _plain_number(value: str) -> bool:
    whole, dot, fraction = value.partition(".")
    return whole.isdigit() and (not dot or fraction.isdigit())


def _auto_number(value: str) -> int | None:
    if _plain_number(value):
        magnitude = int(value.partition(".")[0])
    else:
        try:
            magnitude = int(float(value))
        except (ValueError, OverflowError):
            return None
    for digits in (9, 6, 3, 0):
        scale = _POW10[9 - digits]
        if _AUTO_LOW * scale <= magnitude < _AUTO_HIGH * scale:
            return _decimal_ns(value, digits)
    return None


# -- ISO 8601 ------------------------------------------------------------------------------
def _iso(zone: LocalZone) -> Parser:
    """ISO 8601 / RFC 3339 through ``datetime.fromisoformat`` (Python 3.11 takes ``Z``,
    a space for ``T`` and any number of fraction digits, but keeps only 6: the 7th to 9th
    are read here so that ns precision survives)."""

    def parse(value: str, _now: int) -> int | None:
        extra = 0
        dot = value.find(".")
        if dot < 0:
            dot = value.find(",")
        if dot >= 0:
            rest = value[dot + 1 :]
            end = dot + 1 + len(rest) - len(rest.lstrip("0123456789"))
            if end - dot > 7:
                extra = int(value[dot + 7 : min(end, dot + 10)].ljust(3, "0"))
                value = value[: dot + 7] + value[end:]
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            return None
        if when.tzinfo is not None:
            delta = when - _EPOCH
            return (delta.days * 86400 + delta.seconds) * _NS + delta.microseconds * 1000 + extra
        return zone.epoch_ns(
            when.year,
            when.month,
            when.day,
            when.hour,
            when.minute,
            when.second,
            when.microsecond * 1000 + extra,
            None,
        )

    return parse


def _auto(zone: LocalZone) -> Parser:
    iso = _iso(zone)

    def parse(value: str, now: int) -> int | None:
        if _plain_number(value):
            return _auto_number(value)
        ns = iso(value, now)
        if ns is None and ("e" in value or "E" in value):
            ns = _auto_number(value)  # a float printed with an exponent
        return ns

    return parse


# -- NestJS --------------------------------------------------------------------------------
def _nest_time(text: str, zone: LocalZone) -> int | None:
    """``05/01/2024, 12:00:00 PM`` (en-US, the container's local time) at the start of
    ``text``; 24-hour clocks have no AM/PM."""
    parts = text.split(None, 3)
    if len(parts) < 2 or not parts[0].endswith(","):
        return None
    meridiem = parts[2].upper() if len(parts) > 2 else ""
    if meridiem not in ("AM", "PM"):
        meridiem = ""
    # Lines come in bursts within a minute: its start is cached, the seconds added.
    key = parts[0] + parts[1][:-2] + meridiem
    seconds = parts[1][-2:]
    base = zone.minutes.get(key)
    if base is not None and seconds.isdigit():
        return base + int(seconds) * _NS
    date = parts[0][:-1].split("/")
    clock = parts[1].split(":")
    if len(date) != 3 or len(clock) != 3:
        return None
    try:
        month, day, year = (int(p) for p in date)
        hour, minute, second = (int(p) for p in clock)
    except ValueError:
        return None
    if meridiem:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if meridiem == "PM" else 0)
    if not _valid(year, month, day, hour, minute, second):
        return None
    ns = zone.epoch_ns(year, month, day, hour, minute, second, 0, None)
    if len(clock[2]) == 2:
        if len(zone.minutes) >= _MINUTE_CACHE_MAX:
            zone.minutes.clear()
        zone.minutes[key] = ns - second * _NS
    return ns


def _nestjs(zone: LocalZone) -> Parser:
    def parse(value: str, _now: int) -> int | None:
        return _nest_time(value, zone)

    return parse


def _strip_ansi(text: str) -> str:
    """``text`` without ANSI colour sequences (ESC [ ... final byte)."""
    out: list[str] = []
    i = 0
    while (start := text.find("\x1b[", i)) >= 0:
        out.append(text[i:start])
        end = start + 2
        while end < len(text) and not "@" <= text[end] <= "~":
            end += 1
        i = end + 1
    out.append(text[i:])
    return "".join(out)


def nest_line_time(line: str, zone: LocalZone) -> int | None:
    """The time in a NestJS ConsoleLogger line, ``[Nest] 123  - 05/01/2024, ...``,
    coloured or not (Nest colours its output unless NO_COLOR is set)."""
    head = line[:120]
    if "\x1b" in head:
        head = _strip_ansi(head)
    if not head.startswith("[Nest]"):
        return None
    dash = head.find(" - ", 6)
    if dash < 0:
        return None
    return _nest_time(head[dash + 3 : dash + 40], zone)


# -- Go layouts ----------------------------------------------------------------------------
_ZONE_LAYOUTS = (
    ("070000", r"[+-]\d{6}"),
    ("07:00:00", r"[+-]\d{2}:\d{2}:\d{2}"),
    ("0700", r"[+-]\d{4}"),
    ("07:00", r"[+-]\d{2}:\d{2}"),
    ("07", r"[+-]\d{2}"),
)
_ELEMENT_REGEX = {
    "LongMonth": "(?i:" + "|".join(_MONTHS) + ")",
    "Month": "(?i:" + "|".join(m[:3] for m in _MONTHS) + ")",
    "NumMonth": r"\d{1,2}",
    "ZeroMonth": r"\d{2}",
    "LongWeekDay": "(?i:" + "|".join(_WEEKDAYS) + ")",
    "WeekDay": "(?i:" + "|".join(w[:3] for w in _WEEKDAYS) + ")",
    "Day": r"\d{1,2}",
    "UnderDay": r" ?\d{1,2}",
    "ZeroDay": r"\d{2}",
    "UnderYearDay": r" {0,2}\d{1,3}",
    "ZeroYearDay": r"\d{3}",
    "Hour": r"\d{1,2}",
    "Hour12": r"\d{1,2}",
    "ZeroHour12": r"\d{2}",
    "Minute": r"\d{1,2}",
    "ZeroMinute": r"\d{2}",
    "Second": r"\d{1,2}",
    "ZeroSecond": r"\d{2}",
    "LongYear": r"\d{4}",
    "Year": r"\d{2}",
    "PM": "(?i:am|pm)",
    "TZ": r"(?:GMT[+-]\d{1,2}|[A-Z][A-Za-z]{2,4})",
}
_ZERO_ELEMENTS = ("ZeroMonth", "ZeroDay", "ZeroHour12", "ZeroMinute", "ZeroSecond", "Year")
_REGEX_SPECIAL = set("\\.+*?()|[]{}^$")


def _element_at(layout: str, i: int) -> tuple[str, int] | None:
    """The reference-time element starting at ``layout[i]`` and its length, following Go's
    ``nextStdChunk`` (so ``Jan`` needs no lower-case letter after it, ``_2006`` is ``_``
    then the year...)."""
    c = layout[i]
    rest = layout[i:]

    def lower_after(n: int) -> bool:
        return len(rest) > n and "a" <= rest[n] <= "z"

    if c == "J" and rest.startswith("Jan"):
        if rest.startswith("January"):
            return "LongMonth", 7
        if not lower_after(3):
            return "Month", 3
    elif c == "M":
        if rest.startswith("Mon"):
            if rest.startswith("Monday"):
                return "LongWeekDay", 6
            if not lower_after(3):
                return "WeekDay", 3
        if rest.startswith("MST"):
            return "TZ", 3
    elif c == "0":
        if len(rest) > 1 and "1" <= rest[1] <= "6":
            return _ZERO_ELEMENTS[int(rest[1]) - 1], 2
        if rest.startswith("002"):
            return "ZeroYearDay", 3
    elif c == "1":
        return ("Hour", 2) if rest.startswith("15") else ("NumMonth", 1)
    elif c == "2":
        return ("LongYear", 4) if rest.startswith("2006") else ("Day", 1)
    elif c == "_":
        if rest.startswith("_2") and not rest.startswith("_2006"):
            return "UnderDay", 2
        if rest.startswith("__2"):
            return "UnderYearDay", 3
    elif c in "345":
        return {"3": "Hour12", "4": "Minute", "5": "Second"}[c], 1
    elif (c == "P" and rest.startswith("PM")) or (c == "p" and rest.startswith("pm")):
        return "PM", 2
    elif c in "-Z":
        for layout_zone, _ in _ZONE_LAYOUTS:
            if rest.startswith(layout_zone, 1):
                return ("ISOZone" if c == "Z" else "NumZone") + layout_zone, 1 + len(layout_zone)
    elif c in ".," and len(rest) > 1 and rest[1] in "09":
        end = 1
        while end < len(rest) and rest[end] == rest[1]:
            end += 1
        if not (end < len(rest) and rest[end].isdigit()):
            return ("Frac0" if rest[1] == "0" else "Frac9") + str(end - 1), end
    return None


def _go_elements(layout: str) -> list[tuple[str, str]]:
    """``layout`` as (element, text) pairs; literal text has element ""."""
    out: list[tuple[str, str]] = []
    i = start = 0
    while i < len(layout):
        found = _element_at(layout, i)
        if found is None:
            i += 1
            continue
        element, length = found
        if start < i:
            out.append(("", layout[start:i]))
        out.append((element, layout[i : i + length]))
        i += length
        start = i
    if start < len(layout):
        out.append(("", layout[start:]))
    return out


def _element_regex(element: str) -> str:
    if element.startswith(("ISOZone", "NumZone")):
        regex = dict(_ZONE_LAYOUTS)[element[7:]]
        return f"(?:Z|{regex})" if element.startswith("ISOZone") else regex
    if element.startswith("Frac0"):
        return r"[.,]\d{" + element[5:] + "}"
    if element.startswith("Frac9"):
        return r"(?:[.,]\d+)?"
    return _ELEMENT_REGEX[element]


def _zone_offset(text: str) -> int:
    """``Z``, ``+0200``, ``-07:00``, ``+05``, ``-070000`` as seconds east of UTC."""
    if text == "Z":
        return 0
    digits = text[1:].replace(":", "")
    seconds = int(digits[:2]) * 3600 + int(digits[2:4] or 0) * 60 + int(digits[4:6] or 0)
    return -seconds if text[0] == "-" else seconds


def go_layout(layout: str, zone: LocalZone) -> Parser:
    """A parser for a Go reference layout (``2006-01-02 15:04:05.000 -0700``): the layout
    becomes an anchored RE2 expression with a group per element."""
    elements = _go_elements(layout)
    kinds = {element for element, _ in elements if element}
    has_date = bool(kinds & {"Day", "UnderDay", "ZeroDay", "UnderYearDay", "ZeroYearDay"})
    has_clock = bool(kinds & {"Hour", "Hour12", "ZeroHour12"}) and bool(
        kinds & {"Minute", "ZeroMinute"}
    )
    if not (has_date or has_clock):
        raise ValueError("no day and no hour:minute in it")
    regex: list[str] = []
    roles: list[tuple[str, int, Callable[[str], object]]] = []  # (group, slot, conversion)
    for n, (element, text) in enumerate(elements):
        if not element:
            regex.append("".join("\\" + c if c in _REGEX_SPECIAL else c for c in text))
            continue
        if element in ("LongWeekDay", "WeekDay"):
            regex.append(_element_regex(element))
            continue
        name = f"e{n}"
        roles.append((name, *_element_slot(element)))
        regex.append(f"(?P<{name}>{_element_regex(element)})")
        if element in ("Second", "ZeroSecond"):
            following = elements[n + 1][0] if n + 1 < len(elements) else ""
            if not following.startswith("Frac"):
                # Go reads a fraction after the seconds even when the layout has none.
                roles.append((f"f{n}", *_element_slot("Frac9")))
                regex.append(rf"(?P<f{n}>[.,]\d+)?")
    pattern = Pattern("^" + "".join(regex) + "$")
    fixed = _fixed_widths(elements)
    fixed_length = sum(width for width, _, _ in fixed) if fixed is not None else -1
    years: dict[int, int] = {}  # day number -> its year, for layouts without one
    # Where the seconds (and a fraction right after them) sit in a fixed-width value:
    # the rest of the value names a minute, whose start is cached.
    span = _seconds_span(fixed) if fixed is not None else None
    minutes: dict[str, int] = {}

    def sliced(value: str) -> list[object] | None:
        """The slots read by position, for layouts whose every element has one width
        (``2006-01-02 15:04:05.000``): several times cheaper than the regex."""
        assert fixed is not None
        slots: list[object] = [None, 1, 1, 0, 0, 0, 0, 0, "", None, ""]
        pos = 0
        for width, literal, role in fixed:
            text = value[pos : pos + width]
            pos += width
            if literal is not None:
                if text != literal:
                    return None
            elif role is not None:
                slot, convert, check = role
                if not check(text):
                    return None
                slots[slot] = convert(text)
        return slots

    def parse(value: str, now: int) -> int | None:
        if len(value) == fixed_length:
            key = ""
            if span is not None:
                start, end = span
                key = value[:start] + value[end:]
                base = minutes.get(key)
                if base is not None:
                    seconds, fraction = value[start : start + 2], value[start + 2 : end]
                    if seconds.isdigit() and int(seconds) < 60:
                        if not fraction:
                            return base + int(seconds) * _NS
                        if _is_fraction(fraction):
                            fraction_ns = int(fraction[1:10].ljust(9, "0"))
                            return base + int(seconds) * _NS + fraction_ns
            slots = sliced(value)
            if slots is not None:
                ns = from_slots(slots, now)
                if ns is not None and span is not None:
                    second, nanos = slots[5], slots[6]
                    assert isinstance(second, int) and isinstance(nanos, int)
                    if len(minutes) >= _MINUTE_CACHE_MAX:
                        minutes.clear()
                    minutes[key] = ns - second * _NS - nanos
                return ns
        found = pattern.groups(value)
        if found is None:
            return None
        slots = [None, 1, 1, 0, 0, 0, 0, 0, "", None, ""]
        for name, slot, convert in roles:
            text = found.get(name)
            if text:
                slots[slot] = convert(text)
        return from_slots(slots, now)

    def from_slots(slots: list[object], now: int) -> int | None:
        # year, month, day, hour, minute, second, nanos, yday, meridiem, offset, zone name
        year, month, day, hour, minute, second, nanos, yday, meridiem, offset, zone_name = slots
        assert isinstance(month, int) and isinstance(day, int) and isinstance(hour, int)
        assert isinstance(minute, int) and isinstance(second, int) and isinstance(nanos, int)
        assert isinstance(yday, int) and (offset is None or isinstance(offset, int))
        if meridiem:
            if not 1 <= hour <= 12:
                return None
            hour = hour % 12 + (12 if meridiem == "PM" else 0)
        given_year = year
        if not isinstance(year, int):
            today = now // (86400 * _NS)
            year = years.get(today)
            if year is None:
                years.clear()
                year = years[today] = datetime.fromtimestamp(now // _NS, UTC).year
        if yday:
            date = datetime(year, 1, 1) + timedelta(days=yday - 1)
            if date.year != year:
                return None
            month, day = date.month, date.day
        if not _valid(year, month, day, hour, minute, second):
            return None
        if zone_name and offset is None:
            offset = _named_zone_offset(str(zone_name), zone, year, month, day, hour)
        ns = zone.epoch_ns(year, month, day, hour, minute, second, nanos, offset)
        if (
            given_year is None
            and ns - now > 86400 * _NS
            and _valid(year - 1, month, day, hour, minute, second)
        ):
            # No year written: a Dec 31 line read on Jan 1 belongs to last year.
            ns = zone.epoch_ns(year - 1, month, day, hour, minute, second, nanos, offset)
        return ns

    return parse


_FIXED_WIDTHS = {
    "ZeroMonth": 2,
    "ZeroDay": 2,
    "ZeroHour12": 2,
    "ZeroMinute": 2,
    "ZeroSecond": 2,
    "Year": 2,
    "LongYear": 4,
    "ZeroYearDay": 3,
    "Hour": 2,  # Go takes one digit too; such values fall back to the regex
    "Month": 3,
    "WeekDay": 3,
}


def _seconds_span(fixed: list[tuple[int, str | None, _Role | None]]) -> tuple[int, int] | None:
    """Start and end of the seconds and a fraction right after them, when the layout also
    has a year (a yearless value's year depends on when it is read)."""
    pos = 0
    start = end = -1
    has_year = False
    for width, _, role in fixed:
        slot = role[0] if role is not None else -1
        if slot == 0:
            has_year = True
        elif slot == 5:
            start, end = pos, pos + width
        elif slot == 6 and pos == end:
            end = pos + width
        pos += width
    return (start, end) if has_year and start >= 0 else None


def _is_fraction(text: str) -> bool:
    return text[:1] in (".", ",") and text[1:].isdigit()


def _is_zone(text: str) -> bool:
    return text[:1] in ("+", "-") and text[1:].replace(":", "").isdigit()


_Role = tuple[int, Callable[[str], object], Callable[[str], bool]]


def _fixed_widths(
    elements: list[tuple[str, str]],
) -> list[tuple[int, str | None, _Role | None]] | None:
    """(width, literal text or None, (slot, conversion, check) or None) per element, or
    None when some element's width varies. A value of exactly the total width has no
    unwritten fraction after its seconds (Go allows one): that would make it longer."""
    out: list[tuple[int, str | None, _Role | None]] = []
    for element, text in elements:
        if not element:
            out.append((len(text), text, None))
            continue
        if element in _FIXED_WIDTHS:
            width = _FIXED_WIDTHS[element]
        elif element.startswith("Frac0"):
            width = 1 + int(element[5:])
        elif element.startswith("NumZone"):
            width = len(text)
        else:
            return None
        if element == "WeekDay":
            out.append((width, None, None))
            continue
        slot, convert = _element_slot(element)
        if element == "Month":
            check: Callable[[str], bool] = lambda t: t.lower() in _MONTH_NUMBERS  # noqa: E731
        elif element.startswith("Frac0"):
            check = _is_fraction
        elif element.startswith("NumZone"):
            check = _is_zone
        else:
            check = str.isdigit
        out.append((width, None, (slot, convert, check)))
    return out


_MONTH_NUMBERS = {
    **{m: i for i, m in enumerate(_MONTHS, 1)},
    **{m[:3]: i for i, m in enumerate(_MONTHS, 1)},
}


def _element_slot(element: str) -> tuple[int, Callable[[str], object]]:
    """Where a parsed element goes in ``parse``'s slots, and how its text converts."""
    if element in ("LongMonth", "Month"):
        return 1, lambda text: _MONTH_NUMBERS[text.lower()]
    if element in ("NumMonth", "ZeroMonth"):
        return 1, int
    if element in ("Day", "UnderDay", "ZeroDay"):
        return 2, int
    if element in ("Hour", "Hour12", "ZeroHour12"):
        return 3, int
    if element in ("Minute", "ZeroMinute"):
        return 4, int
    if element in ("Second", "ZeroSecond"):
        return 5, int
    if element.startswith("Frac"):
        return 6, lambda text: int(text[1:10].ljust(9, "0"))
    if element in ("UnderYearDay", "ZeroYearDay"):
        return 7, int
    if element == "PM":
        return 8, str.upper
    if element.startswith(("ISOZone", "NumZone")):
        return 9, _zone_offset
    if element == "TZ":
        return 10, str
    if element == "Year":
        return 0, lambda text: int(text) + (1900 if int(text) >= 69 else 2000)  # Go's pivot
    return 0, int  # LongYear


def _named_zone_offset(
    name: str, zone: LocalZone, year: int, month: int, day: int, hour: int
) -> int:
    """Go's rule for ``MST``-style zones: UTC and GMT are UTC; the location's own
    abbreviation means the location's offset; anything else is read as UTC."""
    if name.startswith("GMT") and len(name) > 3:
        return int(name[3:]) * 3600
    if name not in ("UTC", "GMT") and zone.abbreviation(year, month, day, hour) == name:
        return zone.offset(year, month, day, hour, 0)
    return 0


# -- the stage -----------------------------------------------------------------------------
def build_parser(fmt: str, zone: LocalZone) -> Parser:
    """The parser for one format name or Go layout; ``ValueError`` saying why not."""
    named = {name.lower(): name for name in (*NAMED_FORMATS, *GO_LAYOUTS)}
    canonical = named.get(fmt.lower())
    if canonical is None:
        try:
            return go_layout(fmt, zone)
        except ValueError as exc:
            close = difflib.get_close_matches(fmt, list(named.values()), n=1, cutoff=0.6)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ValueError(
                f"format {fmt!r} is not a known format ({', '.join(NAMED_FORMATS)}, Go's "
                f"named layouts) nor a usable Go layout like '2006-01-02 15:04:05' "
                f"({exc}).{hint}"
            ) from None
    if canonical in GO_LAYOUTS:
        return go_layout(GO_LAYOUTS[canonical], zone)
    if canonical == "auto":
        return _auto(zone)
    if canonical in ("RFC3339", "RFC3339Nano", "winston"):
        return _iso(zone)
    if canonical == "nestjs":
        return _nestjs(zone)
    unit = {"Unix": "s", "UnixMs": "ms", "pino": "ms", "UnixUs": "us", "UnixNs": "ns"}
    return _unix(unit[canonical])


def load_zone(name: str | None) -> LocalZone:
    if name is None or name.upper() == "UTC":
        return LocalZone(None)
    try:
        return LocalZone(zoneinfo.ZoneInfo(name))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"location: unknown time zone {name!r} (use e.g. Europe/Berlin)") from None


class TimestampConfig(StageConfig):
    source: str | None = None
    format: str = "auto"
    fallback_formats: list[str] = []
    location: str | None = None
    max_skew: Duration = 3600.0
    action_on_failure: Literal["fudge", "skip"] = "fudge"

    @field_validator("format")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("format is empty")
        return value


class Timestamp(Stage):
    type_name = "timestamp"
    config_class = TimestampConfig

    def __init__(self, config: StageConfig, context: StageContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, TimestampConfig)
        self.zone = load_zone(config.location)
        self.parsers: list[Parser] = [build_parser(config.format, self.zone)]
        for i, fmt in enumerate(config.fallback_formats):
            try:
                self.parsers.append(build_parser(fmt, self.zone))
            except ValueError as exc:
                raise ValueError(f"fallback_formats[{i}]: {exc}") from None
        self.sources = (config.source,) if config.source is not None else DEFAULT_SOURCES
        # NestJS's ConsoleLogger prints its time in the line (its JSON mode in a field).
        self.from_line = config.source is None and config.format.lower() == "nestjs"
        self.max_skew_ns = int(config.max_skew * _NS)
        self.fudge = config.action_on_failure == "fudge"
        self.last: dict[str, int] = {}  # per stream: the last time taken (for fudge)

    def parse(self, value: str, now: int) -> int | None:
        for parser in self.parsers:
            try:
                ns = parser(value, now)
            except (ValueError, OverflowError, IndexError):
                ns = None
            if ns is not None:
                return ns
        return None

    def believable(self, ns: int, entry: Entry) -> bool:
        """Within ``max_skew`` of the entry's own time; only the future counts for file
        entries (no stream), whose own time is when they were read."""
        skew = self.max_skew_ns
        if not skew:
            return True
        ahead = ns - entry.ts_ns
        return ahead <= skew and (ahead >= -skew or not entry.stream)

    def apply(self, entries: list[Entry]) -> list[Entry]:
        sources = self.sources
        from_line = self.from_line
        zone = self.zone
        parse = self.parse
        believable = self.believable
        last = self.last
        fudge = self.fudge
        changed = 0
        for e in entries:
            ns = nest_line_time(e.line, zone) if from_line else None
            if ns is None:
                for source in sources:
                    value = e.field(source)
                    if value:
                        ns = parse(value, e.ts_ns)
                        break
            if ns is not None and believable(ns, e):
                e.ts_ns = ns
                last[e.stream] = ns
                changed += 1
            elif fudge:
                previous = last.get(e.stream)
                if previous is not None and believable(previous + 1, e):
                    e.ts_ns = previous + 1
                    last[e.stream] = previous + 1
        if changed:
            self.count_change(changed)
        return entries


STAGE = Timestamp
