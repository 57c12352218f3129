"""One state per outside dependency: logged when a problem begins and ends, never per retry."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import CollectorRegistry

from agent.dependencies import DependencyStates


def gauge(registry: CollectorRegistry, dependency: str) -> float | None:
    return registry.get_sample_value("nexo_agent_dependency_up", {"dependency": dependency})


def test_a_problem_is_logged_once_when_it_begins_and_once_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = CollectorRegistry()
    states = DependencyStates(registry)
    assert gauge(registry, "docker") == 1.0
    with caplog.at_level(logging.INFO, logger="agent.dependencies"):
        for _ in range(50):  # fifty retries
            states.down("docker", "no Docker socket at /var/run/docker.sock", "start Docker")
        assert gauge(registry, "docker") == 0.0
        states.down("docker", "Docker refuses connections")  # another reason: said again
        states.up("docker")
        states.up("docker")
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert messages[:2] == [
        ("WARNING", "docker unavailable: no Docker socket at /var/run/docker.sock"),
        ("WARNING", "docker unavailable: Docker refuses connections"),
    ]
    assert len(messages) == 3
    assert messages[2][0] == "INFO"
    assert messages[2][1].startswith("docker available again after ")
    assert caplog.records[0].__dict__["fix"] == "start Docker"
    assert gauge(registry, "docker") == 1.0
    assert states.problems() == {}
