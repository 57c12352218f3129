"""Shared fixtures: a real Docker Engine, the locally built busybox image, real binaries.

Outside CI a missing dependency skips the tests that need it; with ``CI=true`` it fails
them, so a broken CI machine can never turn into a green run that tested nothing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.loki_backend import loki  # noqa: F401  (fixture)

BUSYBOX_IMAGE = "nexo-test/busybox:latest"
IN_CI = os.environ.get("CI", "").lower() == "true"


def require(condition: bool, what: str) -> None:
    """Skip (developer machine) or fail (CI) when a test dependency is missing."""
    if condition:
        return
    message = f"missing test dependency: {what} (run tests/setup/prepare.sh)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def require_binary(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"binary {name}")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    try:
        import docker

        client = docker.from_env(timeout=30)
        client.ping()
    except Exception as exc:  # any failure to reach dockerd is a missing dependency
        require(False, f"a running dockerd ({exc})")
        raise
    try:
        client.images.get(BUSYBOX_IMAGE)
    except Exception:
        require(False, f"image {BUSYBOX_IMAGE}")
    yield client
    client.close()


@pytest.fixture
def run_container(docker_client: Any) -> Iterator[Callable[..., Any]]:
    """Start a busybox container (``--network none``); every one is removed at teardown."""
    started: list[Any] = []

    def run(command: str, name: str | None = None, **kwargs: Any) -> Any:
        kwargs.setdefault("network_mode", "none")
        kwargs.setdefault("detach", True)
        container = docker_client.containers.run(
            BUSYBOX_IMAGE,
            ["sh", "-c", command],
            name=name or f"nexo-test-{uuid.uuid4().hex[:10]}",
            **kwargs,
        )
        started.append(container)
        return container

    yield run
    for container in started:
        with contextlib.suppress(Exception):
            container.remove(force=True)
