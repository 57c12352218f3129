"""Staged entries into push groups: the per-entry loop between the stages and the shipper.

Entries that share a label dict (a stream's, until a stage changes it) go to one group;
each becomes a :class:`PushEntry` with its metadata as pairs (encoded once per metadata
dict). ``group_entries`` is the C loop when ``_speedups`` is built, else this one; tests
compare the two.
"""

from __future__ import annotations

from itertools import chain

from agent.logs.model import PushEntry
from agent.logs.speedups import native
from agent.logs.stages.base import Entry

# (label dict, its entries as pushed), entry bytes, entries, oldest ts, too old, by level
Grouped = tuple[list[tuple[dict[str, str], list[PushEntry]]], int, int, int, int, dict[str, int]]


def python_group_entries(entries: list[Entry], min_ts: int, cls: type[PushEntry]) -> Grouped:
    """Group ``entries`` by label dict, leaving out those older than ``min_ts`` (counted);
    lines by level (the ``level`` label, else field, else ``unknown``) and their size in
    characters, line and metadata, as the in-flight window counts them."""
    # id(label dict) -> (the dict, its entries, its level label)
    by_labels: dict[int, tuple[dict[str, str], list[PushEntry], str | None]] = {}
    size = count = too_old = oldest_ts = 0
    levels: dict[str, int] = {}
    # Entries without ids share their target's metadata dict: its pairs are made once.
    md_cache: dict[int, tuple[tuple[tuple[str, str], ...], int]] = {}
    new_entry = tuple.__new__
    for e in entries:
        ts_ns = e.ts_ns
        if ts_ns < min_ts:
            too_old += 1
            continue
        labels = e.labels
        group = by_labels.get(id(labels))
        if group is None:
            group = by_labels[id(labels)] = (labels, [], labels.get("level") or None)
        md = e.metadata
        known = md_cache.get(id(md))
        if known is None:
            pairs = tuple(md.items())
            known = md_cache[id(md)] = (pairs, sum(map(len, chain.from_iterable(pairs))))
        line = e.line
        group[1].append(new_entry(cls, (ts_ns, line, known[0])))
        size += len(line) + known[1]
        if not count or ts_ns < oldest_ts:
            oldest_ts = ts_ns
        count += 1
        if group[2] is None:
            level = e.fields.get("level") or "unknown"
            levels[level] = levels.get(level, 0) + 1
    for _, pushed, level_label in by_labels.values():
        if level_label is not None:
            levels[level_label] = levels.get(level_label, 0) + len(pushed)
    groups = [(labels, pushed) for labels, pushed, _ in by_labels.values()]
    return groups, size, count, oldest_ts, too_old, levels


group_entries = native.group_entries if native is not None else python_group_entries
