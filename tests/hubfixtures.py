"""Shared pytest fixtures for tests that need a running local hub.

A pytest plugin: load it with ``pytest_plugins = ["tests.hubfixtures"]`` in a conftest.

* ``local_hub``: a real ``twin-explorer hub`` subprocess (``python -m twin_explorer hub``)
  on OS-chosen ports, as a :class:`LocalHubProcess`. Always terminated at teardown.
* ``hub_server``: a :class:`HubServer` started in-process on the test's event loop:
  faster, for tests that need no process boundary. Call blocking SDK methods through
  ``asyncio.to_thread`` in those tests, or the hub (same loop) cannot answer.
* ``start_local_hub``: a factory for more than one hub, or hubs with extra arguments.
* ``hub_rest``: a :class:`RestClient` (raw aiohttp, SAS-signed like the SDK) on
  ``hub_server``, for exact status codes, headers and bodies the SDK hides.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from twin_explorer.localhub.runtime.server import HubServer
from twin_explorer.localhub.runtime.tls import ensure_certificates
from twin_explorer.service.local_hub import hub_arguments, hub_command

# The keys of the ``hub`` command's ready line (HubServer.ready_info).
READY_KEYS = frozenset(
    {
        "hostname",
        "service_connection_string",
        "ca_cert",
        "rest_port",
        "mqtt_port",
        "proxy_port",
        "data_dir",
        "pid",
        "version",
    }
)
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
_REPO_ROOT = Path(__file__).resolve().parent.parent


def trusting_registry_manager(connection_string: str, ca_cert: str, proxy: str | None = None):
    """An unmodified ``IoTHubRegistryManager`` that trusts the local hub's CA (B.1).

    Environment proxies are ignored (``use_env_settings = False``) so a developer's
    HTTPS_PROXY cannot reroute loopback traffic; ``proxy`` (``http://host:port``) sends
    the requests through an HTTP CONNECT proxy instead.
    """
    from azure.iot.hub import IoTHubRegistryManager

    manager = IoTHubRegistryManager.from_connection_string(connection_string)
    config = manager.protocol.config
    config.connection.verify = str(ca_cert)
    config.proxies.use_env_settings = False
    if proxy is not None:
        config.proxies.add("https", proxy)
    return manager


def server_registry_manager(server: HubServer, policy: str = "iothubowner"):
    """A registry manager for an in-process hub, trusting its CA."""
    return trusting_registry_manager(
        server.service_connection_string(policy), server.certificates.ca_cert
    )


def auth_header(connection_string: str) -> str:
    """The Authorization header the service SDK sends for a connection string (B.2)."""
    from azure.iot.hub.auth import ConnectionStringAuthentication

    session = ConnectionStringAuthentication(connection_string).signed_session()
    return session.headers["Authorization"]


class RestClient:
    """Raw HTTPS requests to a hub's REST API, signed the way the service SDK signs."""

    def __init__(self, base_url: str, connection_string: str, ca_cert: Path | str) -> None:
        import aiohttp

        self.base_url = base_url.rstrip("/")
        self.connection_string = connection_string
        self.ssl = ssl.create_default_context(cafile=str(ca_cert))
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self.ssl))

    @classmethod
    def for_server(cls, server: HubServer, policy: str = "iothubowner") -> RestClient:
        """A client for an in-process hub, signing with ``policy``."""
        return cls(
            f"https://{server.hostname}:{server.rest_port}",
            server.service_connection_string(policy),
            server.certificates.ca_cert,
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        data: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        auth: str | None = None,
        api_version: str | None = "2021-04-12",
    ) -> tuple[int, Any, bytes]:
        """(status, headers, body) of one request; ``auth`` overrides the signature."""
        all_headers = {"Authorization": auth or auth_header(self.connection_string)}
        if json_body is not None:
            data = json.dumps(json_body)
        if data is not None:
            all_headers["Content-Type"] = "application/json; charset=utf-8"
        all_headers.update(headers or {})
        params = {"api-version": api_version} if api_version else None
        async with self.session.request(
            method, self.base_url + path, data=data, headers=all_headers, params=params
        ) as response:
            return response.status, response.headers, await response.read()

    async def json(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        status, _, body = await self.request(method, path, **kwargs)
        return status, json.loads(body) if body else None

    async def close(self) -> None:
        await self.session.close()


class LocalHubError(RuntimeError):
    """The hub process failed to start or stop as expected."""


class LocalHubProcess:
    """A ``twin-explorer hub`` child process and what its ready line said."""

    def __init__(
        self,
        data_dir: Path,
        *,
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.extra_args = list(extra_args)
        self.env = env
        self.log_path = log_path or self.data_dir.parent / f"{self.data_dir.name}-stderr.log"
        self.process: subprocess.Popen[str] | None = None
        self.info: dict[str, Any] = {}
        self.trailing_stdout = ""  # whatever the hub printed after its ready line

    # -- lifetime -----------------------------------------------------------------------

    def command(self) -> list[str]:
        # As the app starts its hub (a crashed test run leaves none behind), on OS ports.
        return [*hub_command(), *hub_arguments(self.data_dir, mqtt_port=0, extra=self.extra_args)]

    def start(self, timeout: float = READY_TIMEOUT) -> dict[str, Any]:
        """Start the process and wait for its one JSON ready line."""
        if self.running:
            raise LocalHubError("the hub process is already running")
        env = dict(os.environ if self.env is None else self.env)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_REPO_ROOT), env.get("PYTHONPATH")]))
        # stderr goes to a file: a pipe nobody drains would block the hub once full.
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.PIPE,  # held open until the hub should go
                text=True,
                env=env,
                cwd=_REPO_ROOT,
            )
        line = _read_line(self.process, timeout)
        if not line:
            code = self._reap(STOP_TIMEOUT)
            raise LocalHubError(
                f"the hub exited ({code}) or stayed silent for {timeout} s without a ready "
                f"line; stderr:\n{self.stderr_tail()}"
            )
        self.info = json.loads(line)
        return self.info

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM and wait: the clean shutdown path. Returns the exit code."""
        return self._end(signal.SIGTERM, timeout)

    def interrupt(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGINT (Ctrl+C) and wait."""
        return self._end(signal.SIGINT, timeout)

    def kill(self) -> int:
        """SIGKILL: no shutdown code runs, like a crash or power loss."""
        return self._end(signal.SIGKILL, STOP_TIMEOUT)

    def restart(self, timeout: float = READY_TIMEOUT) -> dict[str, Any]:
        """Stop (if running) and start again on the same data dir; ports may change."""
        if self.running:
            self.stop()
        return self.start(timeout)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        if self.process is None:
            raise LocalHubError("the hub process was never started")
        return self.process.pid

    def _end(self, signum: int, timeout: float) -> int:
        if self.process is None:
            raise LocalHubError("the hub process was never started")
        if self.process.poll() is None:
            self.process.send_signal(signum)
        return self._reap(timeout)

    def _reap(self, timeout: float) -> int:
        assert self.process is not None
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(timeout)
        if self.process.stdout is not None and not self.process.stdout.closed:
            self.trailing_stdout = self.process.stdout.read()
            self.process.stdout.close()
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        return code

    def cleanup(self) -> None:
        """Teardown: make sure no process outlives the test."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        if self.process is not None:
            self._reap(STOP_TIMEOUT)

    def stderr_tail(self, chars: int = 4000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        return ""

    # -- what tests use -----------------------------------------------------------------

    @property
    def hostname(self) -> str:
        return self.info["hostname"]

    @property
    def service_connection_string(self) -> str:
        return self.info["service_connection_string"]

    @property
    def ca_cert(self) -> str:
        return self.info["ca_cert"]

    @property
    def rest_port(self) -> int:
        return self.info["rest_port"]

    @property
    def mqtt_port(self) -> int | None:
        return self.info["mqtt_port"]

    @property
    def proxy_port(self) -> int:
        return self.info["proxy_port"]

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port}"

    def connection_string_without_port(self, connection_string: str | None = None) -> str:
        """The service connection string with ``HostName=<hostname>``, for the proxy."""
        return strip_port(connection_string or self.service_connection_string, self.hostname)

    def registry_manager(self, connection_string: str | None = None, *, via_proxy: bool = False):
        """A registry manager trusting the hub's CA; ``via_proxy`` reaches it as
        ``https://<hostname>`` (port 443) through the hub's CONNECT proxy."""
        if via_proxy:
            return trusting_registry_manager(
                self.connection_string_without_port(connection_string),
                self.ca_cert,
                proxy=self.proxy_url,
            )
        return trusting_registry_manager(
            connection_string or self.service_connection_string, self.ca_cert
        )

    def proxy_env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for a child process whose SDKs reach the hub through the proxy:
        HTTPS_PROXY for azure-iot-hub (requests), MQTT_PROXY for azure-iot-device (paho,
        A.1), REQUESTS_CA_BUNDLE trusting the hub CA, and no NO_PROXY exemption."""
        env = dict(os.environ if base is None else base)
        for key in (
            "NO_PROXY",
            "no_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "MQTT_PROXY",
            "mqtt_proxy",
        ):
            env.pop(key, None)
        env["HTTPS_PROXY"] = self.proxy_url
        env["MQTT_PROXY"] = self.proxy_url
        env["REQUESTS_CA_BUNDLE"] = self.ca_cert
        return env


def strip_port(connection_string: str, hostname: str) -> str:
    parts = [
        f"HostName={hostname}" if part.startswith("HostName=") else part
        for part in connection_string.split(";")
    ]
    return ";".join(parts)


def _read_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The first stdout line, or "" on EOF or timeout (readline has no timeout itself)."""
    result: list[str] = []
    reader = threading.Thread(
        target=lambda: result.append(process.stdout.readline() if process.stdout else ""),
        daemon=True,
    )
    reader.start()
    reader.join(timeout)
    return result[0].strip() if result else ""


@pytest.fixture(scope="session")
def hub_tls_seed(tmp_path_factory) -> Path:
    """One CA and server certificate for the whole run: generating RSA keys costs about
    half a second, so each hub's data dir starts with a copy of these instead."""
    seed = tmp_path_factory.mktemp("hub-tls-seed")
    ensure_certificates(seed)
    return seed / "tls"


@pytest.fixture
def hub_data_dir(tmp_path, hub_tls_seed) -> Callable[[str], Path]:
    """``hub_data_dir(name)``: a fresh data dir under tmp_path with certificates in it."""

    def make(name: str = "hub") -> Path:
        data_dir = tmp_path / name
        if not (data_dir / "tls").exists():
            shutil.copytree(hub_tls_seed, data_dir / "tls")
        return data_dir

    return make


@pytest.fixture
def start_local_hub(hub_data_dir) -> Iterator[Callable[..., LocalHubProcess]]:
    """Factory: ``start_local_hub(name="hub", extra_args=(), env=None)`` -> a started hub."""
    hubs: list[LocalHubProcess] = []

    def start(
        name: str = "hub", extra_args: Sequence[str] = (), env: dict[str, str] | None = None
    ) -> LocalHubProcess:
        hub = LocalHubProcess(hub_data_dir(name), extra_args=extra_args, env=env)
        hubs.append(hub)
        hub.start()
        return hub

    yield start
    for hub in hubs:
        hub.cleanup()


@pytest.fixture
def local_hub(start_local_hub) -> LocalHubProcess:
    """A ``twin-explorer hub`` subprocess on OS-chosen ports, fresh data dir."""
    return start_local_hub()


@pytest_asyncio.fixture
async def hub_server(hub_data_dir) -> AsyncIterator[HubServer]:
    """An in-process HubServer on OS-chosen ports, on the test's event loop."""
    async with HubServer(hub_data_dir(), rest_port=0, mqtt_port=0, proxy_port=0) as server:
        yield server


@pytest_asyncio.fixture
async def hub_rest(hub_server: HubServer) -> AsyncIterator[RestClient]:
    """Raw REST access to ``hub_server`` with its iothubowner connection string."""
    client = RestClient.for_server(hub_server)
    yield client
    await client.close()
