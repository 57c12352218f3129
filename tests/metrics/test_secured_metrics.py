"""/metrics behind a web config: TLS, client certificates, basic auth, headers, limits, and a
real Prometheus scraping it over TLS with basic auth."""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import CollectorRegistry, Metric
from prometheus_client.core import GaugeMetricFamily

from agent.metrics.server import MetricsServer
from agent.metrics.webconfig import WebConfigWatcher
from tests.agent_process import free_port
from tests.deploy.prometheus_server import PrometheusServer
from tests.metrics.webcerts import PASSWORD, USER, Pki, bcrypt_hash

HEALTHCHECK = Path(__file__).resolve().parents[2] / "deploy" / "docker" / "healthcheck.py"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.create(tmp_path_factory.mktemp("pki"))


class SlowCollector:
    """A collector that takes ``delay`` seconds, to hold a scrape in flight."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.started = threading.Event()

    def collect(self) -> Iterable[Metric]:
        self.started.set()
        time.sleep(self.delay)
        family = GaugeMetricFamily("nexo_test_value", "A value.")
        family.add_metric([], 1)
        return [family]


def tls_config(pki: Pki, extra: str = "", users: dict[str, str] | None = None) -> str:
    d = pki.directory
    body = f"tls_server_config:\n  cert_file: {d}/server.crt\n  key_file: {d}/server.key\n{extra}"
    if users:
        body += "basic_auth_users:\n" + "".join(f"  {u}: '{h}'\n" for u, h in users.items())
    return body


async def start(
    tmp_path: Path, body: str, *, collector: SlowCollector | None = None, **options: object
) -> MetricsServer:
    path = tmp_path / "web-config.yml"
    path.write_text(body)
    registry = CollectorRegistry()
    registry.register(collector or SlowCollector())
    server = MetricsServer(
        registry,
        "127.0.0.1:0",
        web_config=WebConfigWatcher(path),
        **options,  # type: ignore[arg-type]
    )
    await server.start()
    return server


def client_context(pki: Pki, with_client_cert: bool = False) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca_file))
    if with_client_cert:
        context.load_cert_chain(str(pki.client_file))
    return context


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def get(
    session: aiohttp.ClientSession,
    server: MetricsServer,
    path: str = "/metrics",
    *,
    context: ssl.SSLContext | None = None,
    auth: str | None = None,
) -> tuple[int, str, dict[str, str]]:
    url = f"{server.scheme}://127.0.0.1:{server.port}{path}"
    headers = {"Authorization": auth} if auth else {}
    async with session.get(url, ssl=context if context else False, headers=headers) as response:
        return response.status, await response.text(), dict(response.headers)


async def test_tls_with_basic_auth_serves_metrics_only_to_the_right_password(
    pki: Pki, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    server = await start(tmp_path, tls_config(pki, users={USER: bcrypt_hash(PASSWORD)}))
    context = client_context(pki)
    try:
        status, body, _ = await get(session, server, context=context, auth=basic(USER, PASSWORD))
        assert status == 200 and "nexo_test_value 1.0" in body
        status, body, headers = await get(session, server, context=context)
        assert status == 401 and headers["WWW-Authenticate"] == "Basic"
        assert "nexo_test_value" not in body
        wrong = basic(USER, "guess")
        assert (await get(session, server, context=context, auth=wrong))[0] == 401
        nobody = basic("root", PASSWORD)
        assert (await get(session, server, context=context, auth=nobody))[0] == 401
        # Probes have no password: /healthz and /ready stay open by default.
        assert (await get(session, server, "/healthz", context=context))[0] == 200
        assert (await get(session, server, "/ready", context=context))[0] == 200
        refused = server.registry.get_sample_value(
            "nexo_agent_http_requests_refused_total", {"reason": "unauthorized"}
        )
        assert refused == 3
    finally:
        await server.stop()


async def test_health_endpoints_can_require_auth_too(
    pki: Pki, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    body = f"basic_auth_users:\n  {USER}: '{bcrypt_hash(PASSWORD)}'\n"
    server = await start(tmp_path, body, health_endpoints_open=False)
    try:
        assert server.scheme == "http"
        assert (await get(session, server, "/healthz"))[0] == 401
        auth = basic(USER, PASSWORD)
        assert (await get(session, server, "/healthz", auth=auth))[0] == 200
    finally:
        await server.stop()


async def test_plain_http_to_the_tls_port_is_refused(
    pki: Pki, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    server = await start(tmp_path, tls_config(pki))
    try:
        with pytest.raises(aiohttp.ClientError):
            async with session.get(f"http://127.0.0.1:{server.port}/metrics") as response:
                await response.read()
        assert (await get(session, server, context=client_context(pki)))[0] == 200
    finally:
        await server.stop()


async def test_required_client_certificate_absent_is_refused_present_is_served(
    pki: Pki, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    extra = f"  client_ca_file: {pki.ca_file}\n  client_auth_type: RequireAndVerifyClientCert\n"
    server = await start(tmp_path, tls_config(pki, extra))
    try:
        with pytest.raises(aiohttp.ClientError):
            await get(session, server, context=client_context(pki))
        status, body, _ = await get(session, server, context=client_context(pki, True))
        assert status == 200 and "nexo_test_value" in body
    finally:
        await server.stop()


async def test_client_certificate_without_an_allowed_san_is_forbidden(
    pki: Pki, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    extra = (
        f"  client_ca_file: {pki.ca_file}\n  client_auth_type: RequireAndVerifyClientCert\n"
        "  client_allowed_sans: [prometheus.example.com]\n"
    )
    server = await start(tmp_path, tls_config(pki, extra))
    try:
        assert (await get(session, server, context=client_context(pki, True)))[0] == 403
        (tmp_path / "web-config.yml").write_text(
            tls_config(pki, extra.replace("prometheus.example.com", "scraper.example.com"))
        )
        assert (await get(session, server, context=client_context(pki, True)))[0] == 200
    finally:
        await server.stop()


async def test_configured_headers_are_on_every_response(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    body = (
        "http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n"
        f"basic_auth_users:\n  {USER}: '{bcrypt_hash(PASSWORD)}'\n"
    )
    server = await start(tmp_path, body)
    try:
        for auth in (None, basic(USER, PASSWORD)):
            _, _, headers = await get(session, server, auth=auth)
            assert headers["X-Content-Type-Options"] == "nosniff"
    finally:
        await server.stop()


async def test_password_change_and_certificate_rotation_apply_without_a_restart(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    pki = Pki.create(tmp_path)
    path = tmp_path / "web-config.yml"
    server = await start(tmp_path, tls_config(pki, users={USER: bcrypt_hash("old")}))
    context = client_context(pki)
    try:
        first_cert = await peer_certificate(server.port, context)
        path.write_text(tls_config(pki, users={USER: bcrypt_hash("new")}))
        os.utime(path, ns=(1, 1))
        assert (await get(session, server, context=context, auth=basic(USER, "old")))[0] == 401
        assert (await get(session, server, context=context, auth=basic(USER, "new")))[0] == 200

        pki.issue_server("server")  # rotated in place, as cert-manager or certbot do
        assert await peer_certificate(server.port, context) != first_cert

        # Client certificates turned on by a reload apply to the next connection.
        path.write_text(
            tls_config(
                pki,
                f"  client_ca_file: {pki.ca_file}\n"
                "  client_auth_type: RequireAndVerifyClientCert\n",
            )
        )
        # The connection whose handshake notices the change was accepted under the old
        # settings: it is refused by the request check, later ones by the handshake.
        async with aiohttp.ClientSession() as fresh:
            assert (await get(fresh, server, context=client_context(pki)))[0] == 403
        with pytest.raises(aiohttp.ClientError):
            async with aiohttp.ClientSession() as fresh:
                await get(fresh, server, context=client_context(pki))
        async with aiohttp.ClientSession() as fresh:
            assert (await get(fresh, server, context=client_context(pki, True)))[0] == 200
        # The keep-alive connection from before the change has no client certificate either.
        assert (await get(session, server, context=context))[0] == 403
    finally:
        await server.stop()


async def peer_certificate(port: int, context: ssl.SSLContext) -> bytes:
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        assert der is not None
        return bytes(der)
    finally:
        writer.close()


async def test_broken_reload_keeps_serving_with_the_last_good_config(
    pki: Pki, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    server = await start(tmp_path, tls_config(pki, users={USER: bcrypt_hash(PASSWORD)}))
    context = client_context(pki)
    auth = basic(USER, PASSWORD)
    try:
        (tmp_path / "web-config.yml").write_text(tls_config(pki, users={USER: "plaintext"}))
        status, _, _ = await get(session, server, context=context, auth=auth)
        assert status == 200
        gauge = server.registry.get_sample_value("nexo_agent_web_config_last_reload_successful")
        assert gauge == 0
        # The key file vanishes: new handshakes still get the last good certificate.
        (tmp_path / "web-config.yml").write_text(
            tls_config(pki, users={USER: bcrypt_hash(PASSWORD)}).replace("server.key", "gone.key")
        )
        async with aiohttp.ClientSession() as fresh:
            assert (await get(fresh, server, context=context, auth=auth))[0] == 200
    finally:
        await server.stop()


async def test_scrapes_over_the_limit_get_503_at_once(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    slow = SlowCollector(delay=1.0)
    server = await start(tmp_path, "", collector=slow, max_concurrent_scrapes=1)
    try:
        first = asyncio.create_task(get(session, server))
        await asyncio.to_thread(slow.started.wait, 5)
        began = time.monotonic()
        status, body, _ = await get(session, server)
        assert status == 503 and "too many concurrent scrapes" in body
        assert time.monotonic() - began < 0.5  # refused at once, not queued behind the render
        assert (await first)[0] == 200
        assert (await get(session, server, "/healthz"))[0] == 200  # health is not a scrape
    finally:
        await server.stop()


async def test_connections_over_the_cap_get_503_and_are_counted(tmp_path: Path) -> None:
    server = await start(tmp_path, "", max_connections=1)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await reader.readuntil(b"ok\n")).startswith(b"HTTP/1.1 200 OK")
        extra_reader, extra_writer = await asyncio.open_connection("127.0.0.1", server.port)
        answer = await asyncio.wait_for(extra_reader.read(), 5)
        assert answer.startswith(b"HTTP/1.1 503 Service Unavailable")
        extra_writer.close()
        counted = server.registry.get_sample_value(
            "nexo_agent_http_requests_refused_total", {"reason": "too_many_connections"}
        )
        assert counted == 1.0
        writer.close()
    finally:
        await server.stop()


async def test_rate_limit_answers_429(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    server = await start(tmp_path, "rate_limit:\n  interval: 1h\n  burst: 2\n")
    try:
        statuses = [(await get(session, server, "/healthz"))[0] for _ in range(4)]
        assert statuses == [200, 200, 429, 429]
    finally:
        await server.stop()


async def test_real_prometheus_scrapes_over_tls_with_basic_auth(
    pki: Pki, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    server = await start(tmp_path, tls_config(pki, users={USER: bcrypt_hash(PASSWORD)}))
    target = {"static_configs": [{"targets": [f"127.0.0.1:{server.port}"]}]}
    tls = {"scheme": "https", "tls_config": {"ca_file": str(pki.ca_file)}}
    right = {"basic_auth": {"username": USER, "password": PASSWORD}}
    wrong = {"basic_auth": {"username": USER, "password": "guess"}}
    prometheus = PrometheusServer(
        tmp_path,
        scrape_configs=[
            {"job_name": "secured", **tls, **right, **target},
            {"job_name": "wrong_password", **tls, **wrong, **target},
            {"job_name": "plain_http", **target},
        ],
    )
    prometheus.start()
    api = f"{prometheus.url}/api/v1"
    try:
        deadline = time.monotonic() + 40
        while True:
            try:
                async with session.get(f"{api}/targets") as response:
                    targets = (await response.json())["data"]["activeTargets"]
            except (aiohttp.ClientError, KeyError):
                targets = []
            health = {t["labels"]["job"]: (t["health"], t["lastError"]) for t in targets}
            health.pop("prometheus", None)
            scraped = len(health) == 3 and all(h != "unknown" for h, _ in health.values())
            if scraped and health["secured"][0] == "up":
                break
            assert prometheus.proc is not None and prometheus.proc.poll() is None
            assert time.monotonic() < deadline, f"targets not scraped in time: {health}"
            await asyncio.sleep(0.5)
        assert health["wrong_password"] == ("down", "server returned HTTP status 401 Unauthorized")
        assert health["plain_http"][0] == "down"
        async with session.get(f"{api}/query", params={"query": "nexo_test_value"}) as response:
            result = (await response.json())["data"]["result"]
        assert [r["metric"]["job"] for r in result] == ["secured"]
    finally:
        prometheus.stop()
        await server.stop()


def test_the_agent_process_serves_https_from_its_config_and_check_config_refuses_a_bad_file(
    pki: Pki, tmp_path: Path
) -> None:
    import sys
    import urllib.error
    import urllib.request

    repo = Path(__file__).resolve().parents[2]
    web = tmp_path / "web.yml"
    web.write_text(tls_config(pki, users={USER: bcrypt_hash(PASSWORD)}))
    port = free_port()
    config = tmp_path / "agent.yaml"
    config.write_text(
        f"server:\n  listen_address: 127.0.0.1:{port}\n  web_config_file: {web}\n"
        "logs: {enabled: false}\n"
        "metrics: {containers: {enabled: false}}\n"
    )
    check = subprocess.run(
        [sys.executable, "-m", "agent", "--config", str(config), "--check-config"],
        capture_output=True,
        text=True,
        cwd=repo,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr
    process = subprocess.Popen(
        [sys.executable, "-m", "agent", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=repo,
    )
    context = client_context(pki)
    request = urllib.request.Request(
        f"https://127.0.0.1:{port}/metrics", headers={"Authorization": basic(USER, PASSWORD)}
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(request, context=context, timeout=5) as response:
                    body = response.read().decode()
                break
            except (urllib.error.URLError, ConnectionError):
                assert process.poll() is None, "the agent exited"
                assert time.monotonic() < deadline, "no https /metrics in time"
                time.sleep(0.1)
        assert "node_load1" in body and "nexo_agent_web_config_last_reload_successful 1.0" in body
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"https://127.0.0.1:{port}/metrics", context=context, timeout=5)
        assert refused.value.code == 401
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    assert f'"listen":"https://127.0.0.1:{port}"' in err.decode()

    web.write_text(tls_config(pki).replace("server.key", "missing.key"))
    check = subprocess.run(
        [sys.executable, "-m", "agent", "--config", str(config), "--check-config"],
        capture_output=True,
        text=True,
        cwd=repo,
        timeout=60,
    )
    assert check.returncode == 2
    assert "server.web_config_file" in check.stderr and "missing.key" in check.stderr


async def test_the_image_healthcheck_probes_a_tls_listener_too(pki: Pki, tmp_path: Path) -> None:
    script = HEALTHCHECK

    async def probe(port: int) -> int:
        env = {**os.environ, "NEXO_LISTEN": f"0.0.0.0:{port}"}
        env.pop("NEXO_HEALTHCHECK_URL", None)
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(script), env=env, stderr=asyncio.subprocess.DEVNULL
        )
        return await process.wait()

    users = {USER: bcrypt_hash(PASSWORD)}
    server = await start(tmp_path, tls_config(pki, users=users))
    try:
        assert await probe(server.port) == 0  # TLS + basic auth: /healthz stays open
    finally:
        await server.stop()
    assert await probe(server.port) == 1  # nothing listening
