"""Docker HEALTHCHECK for the nexo-agent image: GET /healthz where the agent listens.

The address comes from NEXO_LISTEN, the variable the image's config reads its
``server.listen_address`` from (a wildcard address is probed on loopback), or from
NEXO_HEALTHCHECK_URL when a mounted config listens elsewhere. Exit 0 = healthy.

Behind a web config with TLS (server.web_config_file) the plain request fails; it is
retried over HTTPS without verifying the certificate: this probes liveness on loopback,
sends no credentials (/healthz stays open unless server.health_endpoints_open is off) and
the certificate rarely names 127.0.0.1.
"""

import os
import ssl
import sys
import urllib.request


def healthz_url() -> str:
    explicit = os.environ.get("NEXO_HEALTHCHECK_URL")
    if explicit:
        return explicit
    host, _, port = os.environ.get("NEXO_LISTEN", "0.0.0.0:9101").rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/healthz"


def main() -> int:
    url = healthz_url()
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            return 0 if response.status == 200 else 1
    except OSError as exc:
        if not url.startswith("http://") or "NEXO_HEALTHCHECK_URL" in os.environ:
            print(f"healthz: {exc}", file=sys.stderr)
            return 1
    loopback = ssl.create_default_context()
    loopback.check_hostname = False
    loopback.verify_mode = ssl.CERT_NONE
    try:
        secure = "https://" + url.removeprefix("http://")
        with urllib.request.urlopen(secure, timeout=4, context=loopback) as response:
            return 0 if response.status == 200 else 1
    except OSError as exc:
        print(f"healthz: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
