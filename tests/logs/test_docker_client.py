"""The Docker API client's TLS: a remote daemon's certificate is always verified."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme

from agent.logs.discovery.docker_client import _tls_context


def test_a_tls_daemon_is_verified_against_docker_cert_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = trustme.CA()
    client = ca.issue_cert("docker-client")
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    client.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    client.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    monkeypatch.setenv("DOCKER_CERT_PATH", str(tmp_path))
    monkeypatch.delenv("DOCKER_TLS_VERIFY", raising=False)
    context = _tls_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.get_ca_certs()  # the daemon's CA from ca.pem


def test_without_certificates_the_system_cas_verify(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CERT_PATH", str(tmp_path))  # empty: no ca.pem, no client cert
    context = _tls_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
