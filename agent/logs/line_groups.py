"""A chunk's lines into push groups: the default pipeline's per-line loop (no stages).

Each line is parsed for its level and ids; the ids the config wants are appended to the
target's metadata pairs, and the entry joins the group of its (stream, level), ``stream``
being ``""`` when stdout and stderr share a Loki stream. Lines older than ``min_ts`` are
counted and left out (Loki would refuse them); truncated lines are counted. The size is
in characters, line and metadata, as the in-flight window counts it. ``group_lines`` is
the C loop when ``_speedups`` is built, else this one; tests compare the two.
"""

from __future__ import annotations

from collections.abc import Callable

from agent.logs.dockerjson import CompleteLine
from agent.logs.model import PushEntry
from agent.logs.parse import ParsedFields
from agent.logs.speedups import native

Metadata = tuple[tuple[str, str], ...]
# entries by (stream or "", level), entry chars, entries, oldest ts, truncated, too old
LineGroups = tuple[dict[tuple[str, str], list[PushEntry]], int, int, int, int, int]


def python_group_lines(
    lines: list[CompleteLine],
    parse: Callable[[str], ParsedFields] | None,
    base_md: Metadata,
    base_md_size: int,
    want_account: bool,
    want_user: bool,
    want_request: bool,
    by_stream: bool,
    min_ts: int,
    cls: type[PushEntry],
    /,
) -> LineGroups:
    by_key: dict[tuple[str, str], list[PushEntry]] = {}
    size = count = truncated = too_old = oldest_ts = 0
    new_entry = tuple.__new__
    for ts_ns, stream, text, cut, _end, _attrs in lines:
        if cut:
            truncated += 1
        if ts_ns < min_ts:
            too_old += 1
            continue
        metadata, md_size = base_md, base_md_size
        if parse is not None:
            level, account, user, request = parse(text)
            if account is not None and want_account:
                metadata += (("accountId", account),)
                md_size += 9 + len(account)
            if user is not None and want_user:
                metadata += (("userId", user),)
                md_size += 6 + len(user)
            if request is not None and want_request:
                metadata += (("requestId", request),)
                md_size += 9 + len(request)
        else:
            level = "unknown"
        key = (stream if by_stream else "", level)
        group = by_key.get(key)
        if group is None:
            group = by_key[key] = []
        group.append(new_entry(cls, (ts_ns, text, metadata)))
        size += len(text) + md_size
        if not count or ts_ns < oldest_ts:
            oldest_ts = ts_ns
        count += 1
    return by_key, size, count, oldest_ts, truncated, too_old


group_lines: Callable[..., LineGroups] = (
    native.group_lines if native is not None else python_group_lines
)
