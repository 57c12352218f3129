"""The log pipeline's optional C speedups (``_speedups.c``), loaded by agent/native.py.

Eight per-line loops are plain data shuffling: picking Docker's common json-file record
apart, writing protobuf push bytes, walking a JSON line's keys for level and ids, finding
a text line's ``key=value`` pairs, the redact stage's pre-check for secrets' signs (and
which entries of a chunk it has work for), turning a chunk's lines into push groups (no
stages) or into stage entries, and grouping staged entries for the shipper. The parsing
itself stays in Python, called per line. ``_speedups`` does them in C when it was built
(``pip install`` compiles it where a C compiler is present); without it, or with
``NEXO_AGENT_PURE_PYTHON=1``, the same results come from the pure-Python code, only
slower. Tests run both ways and compare them byte for byte.
"""

from __future__ import annotations

from agent.native import load

native = load("agent.logs._speedups")


def mode() -> str:
    """``c`` when the C speedups are in use, ``python`` otherwise (for logs and /metrics)."""
    return "c" if native is not None else "python"
