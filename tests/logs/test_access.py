"""What the agent says when a container's log file cannot be read: the path, Docker's path,
and the key to set or the mount to add."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.logs.access import check_log_file
from agent.logs.model import LogTarget

CID = "ab" * 32


def target(path: Path, docker_path: str = "") -> LogTarget:
    return LogTarget(
        key=f"docker:{CID}", kind="docker", path=path, name="web", docker_path=docker_path
    )


def test_readable_file_has_no_problem(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    log.write_text("")
    assert check_log_file(target(log), None) is None


def test_missing_mount_names_both_paths_and_the_mount_to_add(tmp_path: Path) -> None:
    mount = tmp_path / "host-docker"
    reported = f"/data/docker/containers/{CID}/{CID}-json.log"
    path = mount / "containers" / CID / f"{CID}-json.log"
    problem = check_log_file(target(path, reported), mount)
    assert problem is not None and problem.kind == "not_found"
    assert problem.reason == (
        f"log file not found at {path} (Docker reports {reported}); {mount} does not exist"
    )
    assert problem.fix.startswith(f"docker.data_root is {mount}: mount Docker's data root")
    assert f"-v /data/docker:{mount}:ro" in problem.fix


def test_missing_file_without_data_root_says_to_mount_or_set_it(tmp_path: Path) -> None:
    path = tmp_path / "containers" / CID / f"{CID}-json.log"
    problem = check_log_file(target(path, str(path)), None)
    assert problem is not None
    assert "Docker reports" not in problem.reason  # same path: said once
    assert "set docker.data_root" in problem.fix


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the check as another user")
def test_permission_denied_names_the_file_and_the_access_needed(tmp_path: Path) -> None:
    """As an unprivileged user (what a hardened install runs as), the root-only directory
    that Docker's files live in cannot be entered."""
    private = tmp_path / "containers" / CID
    private.mkdir(parents=True)
    log = private / f"{CID}-json.log"
    log.write_text("{}\n")
    tmp_path.chmod(0o700)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child drops root, checks, reports through the pipe
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            problem = check_log_file(target(log), None)
            text = "" if problem is None else f"{problem.kind}\n{problem.reason}\n{problem.fix}"
            os.write(write_end, text.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        output = pipe.read().decode()
    os.waitpid(pid, 0)
    kind, reason, fix = output.splitlines()
    assert kind == "permission_denied"
    assert reason == f"permission denied reading {log}"
    assert "read access to the file and search (x) access" in fix
