"""A chunk's lines into stage entries: the per-line loop in front of the stages.

Each line is parsed for its level and ids (a JSON line once, its object kept as the
entry's raw fields when ``reuse_json``), which become fields; the ids the config wants
also go to the entry's metadata (the target's dict, copied only for a line with ids).
Labels are the shared dict of the line's (stream or ``""``, level). Each entry carries
where reading may resume if it is held back: just after the line before it.
``line_entries`` is the C loop when ``_speedups`` is built, else this one; tests compare
the two.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agent.logs.dockerjson import CompleteLine
from agent.logs.parse import ParsedFields
from agent.logs.speedups import native
from agent.logs.stages.base import Entry


def python_line_entries(
    lines: list[CompleteLine],
    parse: Callable[[str], ParsedFields] | None,
    parse_json: Callable[[dict[str, object]], ParsedFields],
    json_object: Callable[[str], dict[str, object] | None],
    reuse_json: bool,
    base_md: dict[str, str],
    want_account: bool,
    want_user: bool,
    want_request: bool,
    by_stream: bool,
    base_labels: dict[tuple[str, str], dict[str, str]],
    labels_for: Callable[[str, str], dict[str, str]],
    cls: type[Entry],
    seq: int,
    resume_offset: int,
    resume_file: Any,
    file_id: Any,
    /,
) -> tuple[list[Entry], int]:
    """The entries, and how many lines were truncated."""
    truncated = 0
    entries: list[Entry] = []
    for ts_ns, stream, text, cut, end, _attrs in lines:
        if cut:
            truncated += 1
        fields: dict[str, str] = {}
        metadata = base_md
        obj = json_object(text) if reuse_json and text and text[0] in "{ \t" else None
        if parse is not None:
            if obj is not None:
                level, account, user, request = parse_json(obj)
            else:
                level, account, user, request = parse(text)
            fields["level"] = level
            if account is not None or user is not None or request is not None:
                metadata = dict(base_md)
                if account is not None:
                    fields["accountId"] = account
                    if want_account:
                        metadata["accountId"] = account
                if user is not None:
                    fields["userId"] = user
                    if want_user:
                        metadata["userId"] = user
                if request is not None:
                    fields["requestId"] = request
                    if want_request:
                        metadata["requestId"] = request
        else:
            level = "unknown"
        label_key = (stream if by_stream else "", level)
        labels = base_labels.get(label_key)
        if labels is None:
            labels = labels_for(*label_key)
        resume = (seq, resume_offset, resume_file)
        entry = cls(ts_ns, text, stream, labels, fields, metadata, resume)
        if obj is not None:
            entry.parsed = True
            entry.raw = obj
        entries.append(entry)
        resume_file, resume_offset = file_id, end or resume_offset
    return entries, truncated


line_entries: Callable[..., tuple[list[Entry], int]] = (
    native.line_entries if native is not None else python_line_entries
)
