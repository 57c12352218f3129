"""The optional C speedups (``_speedups.c``) and the switch that turns them off.

Two per-line loops are pure byte shuffling: picking Docker's common json-file record
apart, and writing protobuf push bytes. ``_speedups`` does them in C when it was built
(``pip install`` compiles it where a C compiler is present); without it, or with
``NEXO_AGENT_PURE_PYTHON=1``, the same results come from the pure-Python code, only
slower. Tests run both ways and compare them byte for byte.
"""

from __future__ import annotations

import os
from types import ModuleType


def _load() -> ModuleType | None:
    if os.environ.get("NEXO_AGENT_PURE_PYTHON", "") not in ("", "0"):
        return None
    try:
        from agent.logs import _speedups
    except ImportError:
        return None
    return _speedups


native = _load()


def mode() -> str:
    """``c`` when the C speedups are in use, ``python`` otherwise (for logs and /metrics)."""
    return "c" if native is not None else "python"
