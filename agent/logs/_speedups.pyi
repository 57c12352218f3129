from collections.abc import Sequence

from agent.logs.dockerjson import CompleteLine
from agent.logs.model import PushEntry

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
