"""Loads the optional C modules, and the switch that turns them all off.

The C modules (``agent/logs/_speedups.c``, ``agent/metrics/_exposition.c``) are built by
``pip install`` where a C compiler is present. Without them, or with
``NEXO_AGENT_PURE_PYTHON=1``, the same results come from the pure-Python code, only
slower; tests run both ways and compare them.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType


def load(name: str) -> ModuleType | None:
    """The C module ``name``, or None when it was not built or is switched off."""
    if os.environ.get("NEXO_AGENT_PURE_PYTHON", "") not in ("", "0"):
        return None
    try:
        return importlib.import_module(name)
    except ImportError:
        return None
