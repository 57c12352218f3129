"""The web config file: exporter-toolkit's format, checked as strictly, reloaded on change."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import pytest

from agent.config import ConfigError, load_config
from agent.metrics.webconfig import WebConfigError, WebConfigWatcher, load_web_config
from tests.metrics.webcerts import PASSWORD, USER, Pki, bcrypt_hash


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.create(tmp_path_factory.mktemp("pki"))


def web_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "web-config.yml"
    path.write_text(body)
    return path


def tls_section(pki: Pki, extra: str = "") -> str:
    d = pki.directory
    return f"tls_server_config:\n  cert_file: {d}/server.crt\n  key_file: {d}/server.key\n{extra}"


def test_empty_file_means_plain_http_and_no_auth(tmp_path: Path) -> None:
    config = load_web_config(web_config(tmp_path, ""))
    assert config.tls is None and config.users == {} and config.headers == {}


def test_tls_defaults_are_exporter_toolkits(pki: Pki, tmp_path: Path) -> None:
    config = load_web_config(web_config(tmp_path, tls_section(pki)))
    assert config.tls is not None
    assert config.tls.minimum_version == ssl.TLSVersion.TLSv1_2
    assert config.tls.maximum_version == ssl.TLSVersion.TLSv1_3
    assert config.tls.verify_mode == ssl.CERT_NONE
    assert config.tls.context.options & ssl.OP_CIPHER_SERVER_PREFERENCE
    assert set(config.files) == {
        str(tmp_path / "web-config.yml"),
        str(pki.directory / "server.crt"),
        str(pki.directory / "server.key"),
    }


def test_relative_files_are_taken_from_the_web_config_directory(pki: Pki) -> None:
    path = pki.directory / "relative.yml"
    path.write_text("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n")
    config = load_web_config(path)
    assert config.tls is not None
    assert str(pki.directory / "server.crt") in config.files


def test_inline_certificate_and_key_need_no_files(pki: Pki, tmp_path: Path) -> None:
    cert = (pki.directory / "server.crt").read_text()
    key = (pki.directory / "server.key").read_text()
    indent = "\n    ".join
    body = (
        "tls_server_config:\n"
        f"  cert: |\n    {indent(cert.splitlines())}\n"
        f"  key: |\n    {indent(key.splitlines())}\n"
    )
    config = load_web_config(web_config(tmp_path, body))
    assert config.tls is not None


def test_client_auth_ciphers_and_versions_are_applied(pki: Pki, tmp_path: Path) -> None:
    body = tls_section(
        pki,
        f"  client_ca_file: {pki.ca_file}\n"
        "  client_auth_type: RequireAndVerifyClientCert\n"
        "  min_version: TLS13\n"
        "  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256]\n"
        "  curve_preferences: [X25519, CurveP256]\n"
        "  client_allowed_sans: [scraper.example.com]\n",
    )
    config = load_web_config(web_config(tmp_path, body))
    assert config.tls is not None
    assert config.tls.verify_mode == ssl.CERT_REQUIRED
    assert config.tls.minimum_version == ssl.TLSVersion.TLSv1_3
    assert config.tls.ciphers == "ECDHE-RSA-AES128-GCM-SHA256"
    assert config.tls.client_allowed_sans == frozenset({"scraper.example.com"})


def test_users_headers_and_rate_limit(tmp_path: Path) -> None:
    hashed = bcrypt_hash(PASSWORD)
    body = (
        f"basic_auth_users:\n  {USER}: '{hashed}'\n"
        "http_server_config:\n  http2: false\n  headers:\n"
        "    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=31536000\n"
        "rate_limit:\n  interval: 100ms\n  burst: 5\n"
    )
    config = load_web_config(web_config(tmp_path, body))
    assert config.users == {USER: hashed.encode()}
    assert config.headers["X-Frame-Options"] == "deny"
    assert config.rate_limit is not None and config.rate_limit.interval == 0.1
    assert config.http2 is False


BAD_FILES = {
    "unknown top key": ("basic_auth: {}\n", "basic_auth: unknown key"),
    "unknown tls key": ("tls_server_config:\n  certfile: x\n", "tls_server_config.certfile"),
    "not a mapping": ("- a\n", "must be a mapping"),
    "invalid yaml": ("tls_server_config: [\n", "invalid YAML"),
    "bad hash": ("basic_auth_users:\n  admin: plaintext\n", "basic_auth_users.admin: not a bcrypt"),
    "bcrypt cost too high": (
        "basic_auth_users:\n  admin: '$2y$99$" + "a" * 53 + "'\n",
        "cost 99",
    ),
    "header not allowed": (
        "http_server_config:\n  headers:\n    X-Powered-By: me\n",
        'HTTP header "X-Powered-By" can not be configured',
    ),
    "header value not allowed": (
        "http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n",
        "invalid value for X-Content-Type-Options",
    ),
    "cert without key": ("tls_server_config:\n  cert_file: /x.crt\n", "missing one of key"),
    "key without cert": ("tls_server_config:\n  key_file: /x.key\n", "missing one of cert"),
    "missing cert file": (
        "tls_server_config:\n  cert_file: /nonexistent.crt\n  key_file: /nonexistent.key\n",
        "failed to read cert_file (/nonexistent.crt)",
    ),
    "rate limit burst 0": ("rate_limit:\n  interval: 1s\n  burst: 0\n", "rate_limit.burst"),
    "rate limit bad interval": ("rate_limit:\n  interval: soon\n", "rate_limit.interval"),
}


@pytest.mark.parametrize("body, message", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_bad_file_is_refused_with_the_key_and_reason(
    tmp_path: Path, body: str, message: str
) -> None:
    with pytest.raises(WebConfigError, match=None) as caught:
        load_web_config(web_config(tmp_path, body))
    assert message in str(caught.value)


BAD_TLS = {
    "ca without client auth": (
        "  client_ca_file: {ca}\n",
        "client CA's have been configured without a Client Auth Policy",
    ),
    "client auth without ca": (
        "  client_auth_type: RequireAndVerifyClientCert\n",
        "needs client_ca_file",
    ),
    "unverified client certs": (
        "  client_auth_type: RequireAnyClientCert\n  client_ca_file: {ca}\n",
        "RequireAnyClientCert (a client certificate taken without verification) is not supported",
    ),
    "invalid client auth": ("  client_auth_type: Maybe\n", "invalid ClientAuth: Maybe"),
    "unknown version": ("  min_version: TLS14\n", "unknown TLS version: TLS14"),
    "min above max": ("  min_version: TLS13\n  max_version: TLS12\n", "min_version is above"),
    "invented cipher": ("  cipher_suites: [TLS_INVENTED_CIPHER]\n", "unknown cipher"),
    "invented curve": ("  curve_preferences: [CurveP999]\n", "unknown curve: CurveP999"),
    "ca file is not a certificate": (
        "  client_ca_file: {key}\n  client_auth_type: VerifyClientCertIfGiven\n",
        "client_ca_file",
    ),
}


@pytest.mark.parametrize("extra, message", BAD_TLS.values(), ids=BAD_TLS.keys())
def test_bad_tls_settings_are_refused(pki: Pki, tmp_path: Path, extra: str, message: str) -> None:
    body = tls_section(pki, extra.format(ca=pki.ca_file, key=pki.directory / "server.key"))
    with pytest.raises(WebConfigError) as caught:
        load_web_config(web_config(tmp_path, body))
    assert message in str(caught.value)


def test_key_that_does_not_match_the_certificate_is_refused(pki: Pki, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    Pki.create(other)
    body = (
        f"tls_server_config:\n  cert_file: {pki.directory}/server.crt\n"
        f"  key_file: {other}/server.key\n"
    )
    with pytest.raises(WebConfigError, match="failed to load X509KeyPair"):
        load_web_config(web_config(tmp_path, body))


def test_agent_config_refuses_a_broken_web_config_naming_both_files(tmp_path: Path) -> None:
    web = web_config(tmp_path, "basic_auth_users:\n  admin: hunter2\n")
    agent = tmp_path / "agent.yaml"
    agent.write_text(f"server:\n  web_config_file: {web}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(agent)
    assert caught.value.key == "server.web_config_file"
    assert str(web) in caught.value.reason and "not a bcrypt hash" in caught.value.reason


def test_changed_file_is_reloaded_and_a_broken_one_keeps_the_last_good(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = web_config(tmp_path, f"basic_auth_users:\n  {USER}: '{bcrypt_hash('one')}'\n")
    watcher = WebConfigWatcher(path)
    first = watcher.current
    assert watcher.refresh() is first  # unchanged: the same object, no re-parse

    second_hash = bcrypt_hash("two")
    path.write_text(f"basic_auth_users:\n  {USER}: '{second_hash}'\n")
    os.utime(path, ns=(1, 1))  # a new mtime even within the clock's granularity
    assert watcher.refresh().users[USER] == second_hash.encode()
    assert watcher.last_reload_ok and watcher.reloads == 1

    path.write_text("basic_auth_users:\n  admin: [\n")
    second = watcher.current
    assert watcher.refresh() is second
    assert not watcher.last_reload_ok and watcher.failed_reloads == 1
    assert "web config not reloaded" in caplog.text
    assert watcher.refresh() is second and watcher.failed_reloads == 1  # said once per change


def test_turning_tls_on_needs_a_restart(pki: Pki, tmp_path: Path) -> None:
    path = web_config(tmp_path, "")
    watcher = WebConfigWatcher(path)
    path.write_text(tls_section(pki))
    assert watcher.refresh().tls is None
    assert not watcher.last_reload_ok


def test_a_rotated_certificate_is_a_change(pki: Pki, tmp_path: Path) -> None:
    rotated = tmp_path / "rotated"
    rotated.mkdir()
    rpki = Pki.create(rotated)
    path = web_config(tmp_path, tls_section(rpki))
    watcher = WebConfigWatcher(path)
    first = watcher.current
    rpki.issue_server("server")
    os.utime(rotated / "server.crt", ns=(2, 2))
    assert watcher.refresh() is not first and watcher.last_reload_ok
