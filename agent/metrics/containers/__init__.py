"""The cAdvisor replacement: ``container_*`` families for every running Docker container.

Data flows one way: the log pipeline's container inventory says which containers exist
(``source``), ``cgroups`` finds each one's cgroup directory, ``stats`` reads its v1 or v2
files, ``network`` reads its namespace's interfaces, ``devices`` names block devices,
``fsusage`` sizes writable layers in the background (off by default), and ``collector``
turns all of it into families at scrape time.
"""

from agent.metrics.containers.collector import (
    FAMILY_NAMES,
    ContainerCollector,
    build_container_collector,
)
from agent.metrics.containers.source import ContainerLike, ContainerSource

__all__ = [
    "FAMILY_NAMES",
    "ContainerCollector",
    "ContainerLike",
    "ContainerSource",
    "build_container_collector",
]
