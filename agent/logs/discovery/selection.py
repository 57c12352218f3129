"""Which discovered containers count: ``docker.include``/``exclude`` (logs and container
metrics alike, :func:`filter_reason`) and, for logs only, the opt-out label, the log driver
and self-exclusion (:func:`skip_reason`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from fnmatch import fnmatchcase
from pathlib import Path

from agent.config import ContainerFilter, DockerConfig
from agent.logs.discovery.inventory import ContainerInfo, ContainerInventory

OWN_CONTAINER_ENV = "NEXO_AGENT_CONTAINER_ID"
DEFAULT_OPT_OUT_LABEL = "nexo.logs=false"

_ID_IN_PATH_RE = re.compile(r"/containers/([0-9a-f]{64})/")
_ID_IN_CGROUP_RE = re.compile(r"(?:docker[-/]|/libpod-)([0-9a-f]{64})(?:\.scope)?(?:/|$)")
# Docker bind-mounts these three from <data-root>/containers/<id>/ into every container.
_DOCKER_MANAGED_MOUNTS = frozenset({"/etc/hostname", "/etc/hosts", "/etc/resolv.conf"})


def skip_reason(
    container: ContainerInfo,
    cfg: DockerConfig,
    own_container_id: str | None = None,
    opt_out_label: str = DEFAULT_OPT_OUT_LABEL,
) -> str | None:
    """Why this container's logs are not shipped, or ``None`` when they are.

    Reasons: ``own_container`` (the agent never reads itself: its own log lines would
    feed back), ``log_driver`` (only json-file leaves a file to read), ``opt_out``
    (``opt_out_label``), then :func:`filter_reason`'s.
    """
    if own_container_id and container.id.startswith(own_container_id):
        return "own_container"
    if container.log_driver != "json-file" or container.log_path is None:
        return "log_driver"
    if opt_out_label and _label_matches(container.labels, opt_out_label):
        return "opt_out"
    return filter_reason(container, cfg)


def filter_reason(container: ContainerInfo, cfg: DockerConfig) -> str | None:
    """``excluded`` or ``not_included`` by ``docker.exclude``/``include``, else ``None``.

    Include: every non-empty category (names, images, labels) must match at least one of
    its patterns; exclude: any single match excludes.
    """
    if _matches_any(container, cfg.exclude):
        return "excluded"
    if not _matches_all(container, cfg.include):
        return "not_included"
    return None


def _image_candidates(container: ContainerInfo) -> tuple[str, ...]:
    """The reference as given, the repository without tag/digest, and the image ID.

    So ``nginx`` matches ``nginx:1.27`` and ``sha256:ab*`` matches by ID.
    """
    ref = container.image
    repo = ref.split("@", 1)[0]
    slash = repo.rfind("/")
    colon = repo.rfind(":")
    if colon > slash:
        repo = repo[:colon]
    return (ref, repo, container.image_id)


def _label_matches(labels: Mapping[str, str], pattern: str) -> bool:
    key, eq, value = pattern.partition("=")
    if key not in labels:
        return False
    return not eq or labels[key] == value


def _category_hits(container: ContainerInfo, flt: ContainerFilter) -> list[bool | None]:
    """Per category: ``None`` when the filter leaves it empty, else whether any pattern hit."""
    images = _image_candidates(container)
    return [
        any(fnmatchcase(container.name, p) for p in flt.names) if flt.names else None,
        any(fnmatchcase(i, p) for p in flt.images for i in images) if flt.images else None,
        any(_label_matches(container.labels, p) for p in flt.labels) if flt.labels else None,
    ]


def _matches_any(container: ContainerInfo, flt: ContainerFilter) -> bool:
    return any(hit for hit in _category_hits(container, flt))


def _matches_all(container: ContainerInfo, flt: ContainerFilter) -> bool:
    return all(hit for hit in _category_hits(container, flt) if hit is not None)


def detect_own_container_id(
    environ: Mapping[str, str] | None = None, proc: Path = Path("/proc")
) -> str | None:
    """The agent's own container ID, or ``None`` when it does not run in a Docker container.

    ``NEXO_AGENT_CONTAINER_ID`` wins (a full ID or a unique prefix). Otherwise the
    mountinfo entry of /etc/hostname (or hosts, resolv.conf), whose root is
    ``<data-root>/containers/<id>/hostname``: only mounts at those points count, because on
    the host mountinfo also lists every container's ``containers/<id>/mounts/shm``. The
    cgroup path is the last resort; it is ``0::/`` under cgroup v2 with a private cgroupns.
    """
    env = os.environ if environ is None else environ
    override = env.get(OWN_CONTAINER_ENV, "").strip().lower()
    if override:
        return override
    try:
        mountinfo = (proc / "self" / "mountinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        mountinfo = ""
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        if len(fields) > 4 and fields[4] in _DOCKER_MANAGED_MOUNTS:
            match = _ID_IN_PATH_RE.search(fields[3])
            if match:
                return match.group(1)
    try:
        cgroup = (proc / "self" / "cgroup").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    match = _ID_IN_CGROUP_RE.search(cgroup)
    return match.group(1) if match else None


class SelectedContainers:
    """The inventory's containers that pass ``docker.include``/``exclude``: what container
    metrics export, so the filters mean the same for metrics as for logs.

    Without filters it is the inventory's own mapping (no per-scrape cost).
    """

    def __init__(self, inventory: ContainerInventory, docker: DockerConfig) -> None:
        self._inventory = inventory
        self._docker = docker
        self._filtered = bool(
            docker.include.names
            or docker.include.images
            or docker.include.labels
            or docker.exclude.names
            or docker.exclude.images
            or docker.exclude.labels
        )

    @property
    def containers(self) -> Mapping[str, ContainerInfo]:
        live = self._inventory.containers
        if not self._filtered:
            return live
        return {cid: c for cid, c in live.items() if filter_reason(c, self._docker) is None}
