from collections.abc import Callable, Sequence
from typing import Any

from agent.logs.dockerjson import CompleteLine
from agent.logs.line_groups import LineGroups
from agent.logs.model import PushEntry
from agent.logs.parse import ParsedFields
from agent.logs.stages.base import Entry
from agent.logs.stages.grouping import Grouped

def scan_records(
    data: bytes,
    start: int,
    base_offset: int,
    limit: int,
    cls: type[CompleteLine],
    out: list[CompleteLine],
    /,
) -> int: ...
def encode_push_request(streams: list[tuple[str, Sequence[PushEntry]]], /) -> bytes: ...
def walk_fields(
    obj: dict[str, object],
    slots: list[object],
    id_role: int | None,
    depth: int,
    roles: dict[str, int],
    nests: dict[str, int | None],
    level_role: int,
    max_len: int,
    /,
) -> None: ...
def find_pairs(text: str, /) -> list[tuple[str, str, str, str]]: ...
def redact_signs(text: str, enabled: int, /) -> int: ...
def redact_needs_look(
    kinds: dict[str, str],
    min_length: int,
    clean: set[str],
    customs: bool,
    values: dict[str, str],
    clean_line: str | None,
    /,
) -> bool: ...
def group_entries(entries: list[Entry], min_ts: int, cls: type[PushEntry], /) -> Grouped: ...
def group_lines(
    lines: list[CompleteLine],
    parse: Callable[[str], ParsedFields] | None,
    base_md: tuple[tuple[str, str], ...],
    base_md_size: int,
    want_account: bool,
    want_user: bool,
    want_request: bool,
    by_stream: bool,
    min_ts: int,
    cls: type[PushEntry],
    /,
) -> LineGroups: ...
def line_entries(
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
) -> tuple[list[Entry], int]: ...
def configure_json_fields(
    roles: dict[str, int],
    nests: dict[str, int | None],
    max_len: int,
    message_keys: tuple[str, ...],
    scan_pairs: Callable[[str, list[str | int | None]], None],
    spellings: dict[str, str],
    normalize: Callable[[object], str],
    cls: type[ParsedFields],
    /,
) -> None: ...
def json_fields(obj: dict[str, object], /) -> ParsedFields: ...
