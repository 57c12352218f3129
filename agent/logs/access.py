"""Can the agent read a container's log file, and if not, what exactly should the operator do?

The classic silent failure of a log agent in a container: Docker's data root is not
mounted (or mounted elsewhere than the config says), every path points at nothing, and the
agent ships nothing while looking healthy. This module turns "the file is not there" or
"permission denied" into one sentence naming the path tried, the path Docker reports, and
the key to set or the mount to add.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

from agent.logs.model import LogTarget
from agent.logs.tail import PREOPENED


@dataclass(frozen=True, slots=True)
class FileProblem:
    """Why a target's file cannot be read; ``kind`` groups problems for the dependency state."""

    kind: str  # "not_found", "permission_denied", "unreadable"
    reason: str
    fix: str


def docker_root_of(docker_path: str) -> str:
    """Docker's data root from a ``LogPath`` (``<root>/containers/<id>/<id>-json.log``)."""
    root, sep, _ = docker_path.rpartition("/containers/")
    return root if sep else ""


def check_log_file(target: LogTarget, data_root: Path | None) -> FileProblem | None:
    """``None`` when ``target.path`` can be opened for reading (or was pre-opened)."""
    path = str(target.path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:
        if exc.errno == errno.ENOENT and PREOPENED.has(path):
            return None  # a --rm container already gone: discovery kept it open
        return _problem(target, data_root, exc)
    os.close(fd)
    return None


def _problem(target: LogTarget, data_root: Path | None, exc: OSError) -> FileProblem:
    path = str(target.path)
    reported = target.docker_path
    seen_as = f" (Docker reports {reported})" if reported and reported != path else ""
    docker_root = docker_root_of(reported) or "/var/lib/docker"
    if exc.errno == errno.ENOENT:
        missing = _first_missing(Path(path))
        where = f"; {missing} does not exist" if missing and str(missing) != path else ""
        if data_root is not None:
            fix = (
                f"docker.data_root is {data_root}: mount Docker's data root there read-only "
                f"(-v {docker_root}:{data_root}:ro) or correct docker.data_root"
            )
        else:
            fix = (
                f"the agent must see Docker's data root ({docker_root}): in a container mount "
                f"it (-v {docker_root}:{docker_root}:ro), or mount it elsewhere and set "
                "docker.data_root to that path"
            )
        return FileProblem("not_found", f"log file not found at {path}{seen_as}{where}", fix)
    if exc.errno in (errno.EACCES, errno.EPERM):
        return FileProblem(
            "permission_denied",
            f"permission denied reading {path}{seen_as}",
            "the agent needs read access to the file and search (x) access to every "
            "directory above it: run it as root, or grant it, e.g. "
            f"setfacl -R -m u:$AGENT_USER:rX {Path(path).parent.parent}",
        )
    return FileProblem(
        "unreadable",
        f"cannot open {path}{seen_as}: {exc.strerror or exc}",
        "check the file and the filesystem it is on",
    )


def _first_missing(path: Path) -> Path | None:
    """The highest ancestor of ``path`` (or ``path``) that does not exist."""
    missing = None
    for candidate in (path, *path.parents):
        try:
            exists = candidate.exists()
        except OSError:
            return missing
        if exists:
            return missing
        missing = candidate
    return missing
