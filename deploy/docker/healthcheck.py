"""Docker HEALTHCHECK for the nexo-agent image: GET /healthz where the agent listens.

The address comes from NEXO_LISTEN, the variable the image's config reads its
``server.listen_address`` from (a wildcard address is probed on loopback), or from
NEXO_HEALTHCHECK_URL when a mounted config listens elsewhere. Exit 0 = healthy.
"""

import os
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
    try:
        with urllib.request.urlopen(healthz_url(), timeout=4) as response:
            return 0 if response.status == 200 else 1
    except OSError as exc:
        print(f"healthz: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
