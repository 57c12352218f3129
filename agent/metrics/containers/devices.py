"""Block device names for the ``device`` label of container I/O metrics.

cgroups count I/O per ``major:minor``; cAdvisor labels it ``/dev/<name>`` (its disk map,
then its filesystem list, else ``"major:minor"``). ``/proc/partitions`` lists every disk
and partition with its numbers, so one read gives the same names; it is read again only
when a device shows up that the last read did not know (a disk attached later).
"""

from __future__ import annotations

import logging

from agent.metrics.kernelfs import read_bytes

log = logging.getLogger(__name__)


class BlockDeviceNames:
    def __init__(self, procfs: str) -> None:
        self._path = f"{procfs}/partitions"
        self._names: dict[tuple[int, int], str] = {}
        self._loaded = False

    def name(self, major: int, minor: int) -> str:
        key = (major, minor)
        found = self._names.get(key)
        if found is None:
            self._reload()
            found = self._names.get(key)
            if found is None:
                found = self._names[key] = f"{major}:{minor}"
        return found

    def _reload(self) -> None:
        try:
            data = read_bytes(self._path)
        except OSError as exc:
            if not self._loaded:
                log.warning("cannot read %s, devices are labelled major:minor: %s", self._path, exc)
            self._loaded = True
            return
        self._loaded = True
        # "major minor  #blocks  name" after a header line and a blank line.
        for line in data.splitlines()[1:]:
            fields = line.split()
            if len(fields) == 4 and fields[0].isdigit():
                name = "/dev/" + fields[3].decode("utf-8", "replace")
                self._names[(int(fields[0]), int(fields[1]))] = name
