"""The Prometheus exporters' web configuration file (``web-config.yml``) for ``/metrics``.

The same YAML node_exporter, Promtail and Prometheus read through exporter-toolkit
(``tls_server_config``, ``http_server_config``, ``basic_auth_users``, ``rate_limit``), parsed
as strictly (an unknown key is an error) and with the same defaults (TLS 1.2 to 1.3, server
cipher preference), so one file secures every exporter on a host. Relative file names are
taken from the web config file's directory, as exporter-toolkit does.

Where Python's ``ssl`` cannot do what Go's ``crypto/tls`` does the file is refused with the
reason rather than half applied: ``RequestClientCert`` and ``RequireAnyClientCert`` (a client
certificate taken but never verified) have no OpenSSL server mode in Python's ``ssl``.
``curve_preferences`` is validated and then left to OpenSSL's defaults (X25519, P-256, P-384,
P-521), which Python cannot reorder; ``http2`` is accepted and the server speaks HTTP/1.1.
"""

from __future__ import annotations

import logging
import os
import re
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.config import parse_duration

log = logging.getLogger(__name__)


class WebConfigError(ValueError):
    """The web config file is unusable; the message names the key and the reason."""


# exporter-toolkit's extraHTTPHeaders: the only headers it lets a file set, with the
# values it accepts where they form an enumeration.
ALLOWED_HEADERS: dict[str, tuple[str, ...]] = {
    "Strict-Transport-Security": (),
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": (),
    "Content-Security-Policy": (),
}

TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}

# Go's crypto/tls suite names (tls.CipherSuites()) -> OpenSSL's. Go ignores the setting for
# TLS 1.3 suites (always all enabled); so does OpenSSL's cipher list, which is TLS <= 1.2.
CIPHER_SUITES = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_AES_128_GCM_SHA256": "",
    "TLS_AES_256_GCM_SHA384": "",
    "TLS_CHACHA20_POLY1305_SHA256": "",
}
CURVES = ("CurveP256", "CurveP384", "CurveP521", "X25519")

# client_auth_type -> (verify mode, whether Python's ssl can do it)
CLIENT_AUTH_TYPES = {
    "": ssl.CERT_NONE,
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
UNVERIFIED_CLIENT_AUTH = ("RequestClientCert", "RequireAnyClientCert", "RequireClientCert")

# A bcrypt hash as Go's bcrypt.Cost accepts it: $2a$/$2b$/$2x$/$2y$, a two-digit cost, 53
# characters of salt and digest.
_BCRYPT_HASH = re.compile(r"\$2[abxy]?\$(\d\d)\$[./A-Za-z0-9]{53}")
_BCRYPT_MIN_COST, _BCRYPT_MAX_COST = 4, 31


@dataclass(frozen=True)
class TLSServerSettings:
    """``tls_server_config``, resolved: what the listener is built from."""

    context: ssl.SSLContext
    verify_mode: ssl.VerifyMode
    minimum_version: ssl.TLSVersion
    maximum_version: ssl.TLSVersion
    ciphers: str | None
    prefer_server_ciphers: bool
    client_allowed_sans: frozenset[str] | None
    files: tuple[str, ...]


@dataclass(frozen=True)
class RateLimit:
    """``rate_limit``: a token bucket over all requests (exporter-toolkit's rate.Limiter)."""

    interval: float
    burst: int


@dataclass(frozen=True)
class WebConfig:
    """One loaded web config file; ``files`` are those whose change means a reload."""

    tls: TLSServerSettings | None = None
    users: dict[str, bytes] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    rate_limit: RateLimit | None = None
    http2: bool = True
    files: tuple[str, ...] = ()


def load_web_config(path: str | Path) -> WebConfig:
    """Read and check a web config file, certificates included; raises WebConfigError."""
    import yaml

    path = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WebConfigError(f"cannot read the web config file: {exc}") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise WebConfigError(f"invalid YAML: {exc}") from exc
    if raw is None:
        raw = {}
    top = _mapping(
        raw, "", {"tls_server_config", "http_server_config", "basic_auth_users", "rate_limit"}
    )
    base = os.path.dirname(os.path.abspath(path))
    tls = None
    tls_raw = top.get("tls_server_config")
    if tls_raw is not None:
        tls = _tls_settings(_mapping(tls_raw, "tls_server_config", _TLS_KEYS), base)
    http = _mapping(top.get("http_server_config") or {}, "http_server_config", _HTTP_KEYS)
    headers = _headers(http.get("headers") or {})
    http2 = _typed(http.get("http2", True), bool, "http_server_config.http2")
    users = _users(top.get("basic_auth_users") or {})
    return WebConfig(
        tls=tls,
        users=users,
        headers=headers,
        rate_limit=_rate_limit(top.get("rate_limit")),
        http2=http2,
        files=(path, *(tls.files if tls else ())),
    )


_TLS_KEYS = {
    "cert",
    "key",
    "client_ca",
    "cert_file",
    "key_file",
    "client_auth_type",
    "client_ca_file",
    "cipher_suites",
    "curve_preferences",
    "min_version",
    "max_version",
    "prefer_server_cipher_suites",
    "client_allowed_sans",
}
_HTTP_KEYS = {"http2", "headers"}


def _mapping(value: Any, where: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise WebConfigError(f"{where or 'the top level'}: must be a mapping")
    unknown = sorted(str(key) for key in value if key not in allowed)
    if unknown:
        prefix = f"{where}." if where else ""
        raise WebConfigError(
            f"{prefix}{unknown[0]}: unknown key (known: {', '.join(sorted(allowed))})"
        )
    return value


def _typed(value: Any, kind: type, where: str) -> Any:
    if not isinstance(value, kind):
        raise WebConfigError(f"{where}: expected {kind.__name__}, got {value!r}")
    return value


def _string(section: dict[str, Any], key: str) -> str:
    value = section.get(key)
    if value is None:
        return ""
    return str(_typed(value, str, f"tls_server_config.{key}"))


def _tls_settings(section: dict[str, Any], base: str) -> TLSServerSettings:
    cert_file = _in_dir(base, _string(section, "cert_file"))
    key_file = _in_dir(base, _string(section, "key_file"))
    ca_file = _in_dir(base, _string(section, "client_ca_file"))
    cert_text, key_text, ca_text = (
        _string(section, "cert"),
        _string(section, "key"),
        _string(section, "client_ca"),
    )
    auth = _string(section, "client_auth_type")
    if not (cert_file or cert_text):
        raise WebConfigError("tls_server_config: missing one of cert or cert_file")
    if not (key_file or key_text):
        raise WebConfigError("tls_server_config: missing one of key or key_file")
    if auth in UNVERIFIED_CLIENT_AUTH:
        raise WebConfigError(
            f"tls_server_config.client_auth_type: {auth} (a client certificate taken without "
            "verification) is not supported; use RequireAndVerifyClientCert or "
            "VerifyClientCertIfGiven with client_ca_file"
        )
    if auth not in CLIENT_AUTH_TYPES:
        raise WebConfigError(f"tls_server_config.client_auth_type: invalid ClientAuth: {auth}")
    verify_mode = CLIENT_AUTH_TYPES[auth]
    if (ca_file or ca_text) and verify_mode == ssl.CERT_NONE:
        raise WebConfigError(
            "tls_server_config: client CA's have been configured without a Client Auth Policy"
        )
    if verify_mode != ssl.CERT_NONE and not (ca_file or ca_text):
        raise WebConfigError(
            f"tls_server_config: client_auth_type {auth} needs client_ca_file or client_ca"
        )
    minimum = _version(section, "min_version", "TLS12")
    maximum = _version(section, "max_version", "TLS13")
    if minimum > maximum:
        raise WebConfigError("tls_server_config: min_version is above max_version")
    ciphers = _ciphers(section.get("cipher_suites"))
    for curve in _string_list(section.get("curve_preferences"), "curve_preferences"):
        if curve not in CURVES:
            raise WebConfigError(f"tls_server_config.curve_preferences: unknown curve: {curve}")
    prefer = _typed(
        section.get("prefer_server_cipher_suites", True),
        bool,
        "tls_server_config.prefer_server_cipher_suites",
    )
    sans_raw = section.get("client_allowed_sans")
    sans = None if sans_raw is None else frozenset(_string_list(sans_raw, "client_allowed_sans"))

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        if cert_file or key_file:
            _load_chain(context, cert_file, key_file, cert_text, key_text)
        else:
            _load_chain(context, "", "", cert_text, key_text)
    except (OSError, ssl.SSLError) as exc:
        raise WebConfigError(f"tls_server_config: failed to load X509KeyPair: {exc}") from exc
    try:
        if ca_file:
            context.load_verify_locations(cafile=ca_file)
        elif ca_text:
            context.load_verify_locations(cadata=ca_text)
    except (OSError, ssl.SSLError) as exc:
        where = "client_ca_file" if ca_file else "client_ca"
        raise WebConfigError(f"tls_server_config.{where}: {exc}") from exc
    settings = TLSServerSettings(
        context=context,
        verify_mode=verify_mode,
        minimum_version=minimum,
        maximum_version=maximum,
        ciphers=ciphers,
        prefer_server_ciphers=prefer,
        client_allowed_sans=sans,
        files=tuple(name for name in (cert_file, key_file, ca_file) if name),
    )
    apply_handshake_settings(context, settings)
    return settings


def apply_handshake_settings(context: ssl.SSLContext, settings: TLSServerSettings) -> None:
    """Set what a connection copies from its context when it is accepted.

    Swapping a connection's context during the handshake (certificate reload) carries the
    certificate and the client CAs but not these, so on reload they are applied in place to
    the listener's own context too.
    """
    context.verify_mode = settings.verify_mode
    context.minimum_version = settings.minimum_version
    context.maximum_version = settings.maximum_version
    if settings.ciphers:
        context.set_ciphers(settings.ciphers)
    if settings.prefer_server_ciphers:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    context.set_alpn_protocols(["http/1.1"])


def _load_chain(
    context: ssl.SSLContext, cert_file: str, key_file: str, cert_text: str, key_text: str
) -> None:
    """Certificate and key from files or inline PEM (kept in memory: a memfd, not a file)."""
    fds: list[int] = []
    try:
        if not cert_file:
            cert_file = _memfd(cert_text, fds)
        if not key_file:
            key_file = _memfd(key_text, fds)
        for name, what in ((cert_file, "cert_file"), (key_file, "key_file")):
            if not os.access(name, os.R_OK):
                raise OSError(f"failed to read {what} ({name})")
        context.load_cert_chain(cert_file, key_file)
    finally:
        for fd in fds:
            os.close(fd)


def _memfd(text: str, fds: list[int]) -> str:
    fd = os.memfd_create("nexo-web-config", 0)
    fds.append(fd)
    os.write(fd, text.encode())
    return f"/proc/self/fd/{fd}"


def _in_dir(base: str, name: str) -> str:
    return os.path.join(base, name) if name and not os.path.isabs(name) else name


def _version(section: dict[str, Any], key: str, default: str) -> ssl.TLSVersion:
    name = _string(section, key) or default
    if name not in TLS_VERSIONS:
        raise WebConfigError(f"tls_server_config.{key}: unknown TLS version: {name}")
    return TLS_VERSIONS[name]


def _ciphers(value: Any) -> str | None:
    names = _string_list(value, "cipher_suites")
    if not names:
        return None
    openssl: list[str] = []
    for name in names:
        if name not in CIPHER_SUITES:
            raise WebConfigError(f"tls_server_config.cipher_suites: unknown cipher: {name}")
        if CIPHER_SUITES[name]:
            openssl.append(CIPHER_SUITES[name])
    return ":".join(openssl) or None


def _string_list(value: Any, key: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise WebConfigError(f"tls_server_config.{key}: expected a list of strings")
    return value


def _headers(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise WebConfigError("http_server_config.headers: must be a mapping")
    headers: dict[str, str] = {}
    for name, header_value in value.items():
        if name not in ALLOWED_HEADERS:
            raise WebConfigError(
                f'http_server_config.headers: HTTP header "{name}" can not be configured'
            )
        allowed = ALLOWED_HEADERS[name]
        if allowed and header_value not in allowed:
            raise WebConfigError(
                f"http_server_config.headers: invalid value for {name}. "
                f"Expected one of: {list(allowed)}, but got: {header_value!r}"
            )
        headers[name] = str(header_value)
    return headers


def _users(value: Any) -> dict[str, bytes]:
    if not isinstance(value, dict):
        raise WebConfigError("basic_auth_users: must be a mapping of user name to bcrypt hash")
    users: dict[str, bytes] = {}
    for user, hashed in value.items():
        where = f"basic_auth_users.{user}"
        if not isinstance(hashed, str):
            raise WebConfigError(f"{where}: expected a bcrypt hash string")
        match = _BCRYPT_HASH.fullmatch(hashed)
        if match is None:
            raise WebConfigError(
                f"{where}: not a bcrypt hash (expected $2y$10$ and 53 more characters)"
            )
        cost = int(match.group(1))
        if not _BCRYPT_MIN_COST <= cost <= _BCRYPT_MAX_COST:
            raise WebConfigError(f"{where}: bcrypt cost {cost} is outside 4..31")
        users[str(user)] = hashed.encode()
    return users


def _rate_limit(value: Any) -> RateLimit | None:
    if value is None:
        return None
    section = _mapping(value, "rate_limit", {"interval", "burst"})
    try:
        interval = parse_duration(section.get("interval", 0))
    except ValueError as exc:
        raise WebConfigError(f"rate_limit.interval: {exc}") from exc
    burst = _typed(section.get("burst", 0), int, "rate_limit.burst")
    if interval <= 0:
        return None  # exporter-toolkit: no interval, no limiter
    if burst < 1:
        raise WebConfigError("rate_limit.burst: must be at least 1 (0 would refuse every request)")
    return RateLimit(interval=interval, burst=burst)


def file_signature(files: tuple[str, ...]) -> tuple[tuple[int, int, int] | None, ...]:
    """What changes when any of the files is rewritten, replaced or removed."""
    signature: list[tuple[int, int, int] | None] = []
    for name in files:
        try:
            st = os.stat(name)
        except OSError:
            signature.append(None)
        else:
            signature.append((st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(signature)


class WebConfigWatcher:
    """The current web config, reloaded when its file (or a certificate it names) changes.

    A file that no longer loads keeps the last good config in force and is logged once
    per change; so is a change that would turn TLS on or off, which needs a restart (the
    listener is either TLS or not, as in exporter-toolkit). Raises WebConfigError at
    construction: a broken file at startup stops the agent.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.current = load_web_config(self.path)
        self._signature = file_signature(self.current.files)
        self.last_reload_ok = True
        self.reloads = 0
        self.failed_reloads = 0

    def refresh(self) -> WebConfig:
        """The config to apply to this request or handshake (a few ``stat`` calls)."""
        signature = file_signature(self.current.files)
        if signature == self._signature:
            return self.current
        self._signature = signature
        try:
            loaded = load_web_config(self.path)
            if (loaded.tls is None) != (self.current.tls is None):
                raise WebConfigError(
                    "turning TLS on or off needs a restart of the agent; "
                    "the listener keeps its current mode"
                )
        except WebConfigError as exc:
            self.last_reload_ok = False
            self.failed_reloads += 1
            log.error(
                "web config not reloaded, the last good one stays in force",
                extra={"path": self.path, "error": str(exc)},
            )
            return self.current
        self.current = loaded
        self._signature = file_signature(loaded.files)
        self.last_reload_ok = True
        self.reloads += 1
        log.info("web config reloaded", extra={"path": self.path, "tls": loaded.tls is not None})
        return loaded
