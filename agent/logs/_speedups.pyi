from collections.abc import Sequence

from agent.logs.dockerjson import CompleteLine
from agent.logs.model import PushEntry
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
