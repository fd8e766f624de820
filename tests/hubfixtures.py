"""Shared pytest fixtures for tests that need a running local hub.

A pytest plugin: load it with ``pytest_plugins = ["tests.hubfixtures"]`` in a conftest.

* ``local_hub``: a real ``twin-explorer hub`` subprocess, started by the app's own
  ``LocalHubProcess`` on OS-chosen ports, as a :class:`HubProcess`. Always ended at
  teardown.
* ``hub_server``: a :class:`HubServer` started in-process on the test's event loop:
  faster, for tests that need no process boundary. Call blocking SDK methods through
  ``asyncio.to_thread`` in those tests, or the hub (same loop) cannot answer.
* ``start_local_hub``: a factory for more than one hub, or hubs with extra arguments.
* ``hub_rest``: a :class:`RestClient` (raw aiohttp, SAS-signed like the SDK) on
  ``hub_server``, for exact status codes, headers and bodies the SDK hides.
* ``service_for(hub)``: the app's ``HubService`` on either kind of hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import shutil
import signal
import ssl
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from twin_explorer.localhub.runtime.server import HubServer
from twin_explorer.localhub.runtime.tls import ensure_certificates
from twin_explorer.service.hub import HubService
from twin_explorer.service.local_hub import LocalHubError, LocalHubProcess

# The keys of the ``hub`` command's ready line (HubServer.ready_info).
READY_KEYS = frozenset(
    {
        "hostname",
        "service_connection_string",
        "ca_cert",
        "rest_port",
        "mqtt_port",
        "amqp_port",
        "proxy_port",
        "data_dir",
        "pid",
        "version",
        "eventhub_connection_string",
        "eventhub_name",
    }
)
READY_TIMEOUT = 60.0
# How a test ends a hub process: a signal, a closed stdin, ... (None: the app's own stop).
Ending = Callable[[asyncio.subprocess.Process], object]
STOP_TIMEOUT = 15.0


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
        # A file-like body: aiohttp warns that a large raw bytes body blocks its loop.
        body = io.BytesIO(data) if isinstance(data, bytes) else data
        async with self.session.request(
            method, self.base_url + path, data=body, headers=all_headers, params=params
        ) as response:
            return response.status, response.headers, await response.read()

    async def json(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        status, _, body = await self.request(method, path, **kwargs)
        return status, json.loads(body) if body else None

    async def close(self) -> None:
        await self.session.close()


async def assert_error(response: tuple, status: int, code: str, *words: str) -> dict:
    """Assert ``response`` (``RestClient.request``'s) is the hub's error envelope for
    ``status`` and ``code``, its message naming each of ``words``; returns the envelope."""
    got_status, headers, body = response
    assert got_status == status, body
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert headers["iothub-errorcode"] == code
    envelope = json.loads(body)
    assert envelope["Message"].startswith(f"ErrorCode:{code};")
    assert envelope["ExceptionMessage"].startswith("Tracking ID:")
    for word in words:
        assert word in envelope["Message"], envelope["Message"]
    return envelope


class HubProcess:
    """A ``twin-explorer hub`` child process, started and stopped by the app's own
    :class:`~twin_explorer.service.local_hub.LocalHubProcess` (so tests run the hub the
    way the app does), for synchronous test code.

    The app's class is async: it runs on one loop in a background thread shared by every
    hub of the run, so sync tests (and tests on any other loop) can start, signal and
    stop hubs. Each start makes a fresh app process with the current ``extra_args``.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        extra_args: Sequence[str] = (),
        executable: Sequence[str] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.extra_args = list(extra_args)
        self.executable = executable
        self.info: dict[str, Any] = {}  # the ready line
        self.returncode: int | None = None  # once it exited
        self.trailing_stdout = ""  # whatever the hub printed after its ready line
        self._app: LocalHubProcess | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._stderr: list[str] = []

    # -- lifetime -----------------------------------------------------------------------

    def start(self, timeout: float = READY_TIMEOUT) -> dict[str, Any]:
        """Start the process and wait for its one JSON ready line."""
        if self.running:
            raise LocalHubError("the hub process is already running")
        self._app = LocalHubProcess(
            self.data_dir,
            demo=False,
            mqtt_port=0,  # OS-chosen, like the REST and proxy ports
            extra_args=list(self.extra_args),
            executable=self.executable,
            on_stderr=self._stderr.append,
        )
        self.info, self.returncode, self.trailing_stdout = {}, None, ""
        _on_hub_loop(self._start(self._app, timeout), timeout + STOP_TIMEOUT)
        return self.info

    async def _start(self, app: LocalHubProcess, within: float) -> None:
        try:
            async with asyncio.timeout(within):
                await app.start()
        except (TimeoutError, LocalHubError) as exc:
            proc = app.process
            await app.stop()
            self.returncode = proc.returncode if proc is not None else None
            why = f"stayed silent for {within} s" if isinstance(exc, TimeoutError) else exc
            raise LocalHubError(
                f"the hub exited ({self.returncode}) without a ready line: {why}; stderr:\n"
                + self.stderr_tail()
            ) from None
        self._proc = app.process
        self.info = app.ready

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """The app's own stop (stdin closed, SIGTERM). Returns the exit code."""
        return self._end(None, timeout)

    def terminate(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM alone, and wait."""
        return self._end(lambda proc: proc.send_signal(signal.SIGTERM), timeout)

    def interrupt(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGINT (Ctrl+C) and wait."""
        return self._end(lambda proc: proc.send_signal(signal.SIGINT), timeout)

    def close_stdin(self, timeout: float = STOP_TIMEOUT) -> int:
        """Close its stdin alone, as when the app holding it dies, and wait."""
        return self._end(lambda proc: proc.stdin and proc.stdin.close(), timeout)

    def kill(self) -> int:
        """SIGKILL: no shutdown code runs, like a crash or power loss."""
        return self._end(lambda proc: proc.kill(), STOP_TIMEOUT)

    def restart(self, timeout: float = READY_TIMEOUT) -> dict[str, Any]:
        """Stop (if running) and start again on the same data dir; ports may change."""
        if self.running:
            self.stop()
        return self.start(timeout)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise LocalHubError("the hub process was never started")
        return self._proc.pid

    def _end(self, how: Ending | None, timeout: float) -> int:
        if self._proc is None or self._app is None:
            raise LocalHubError("the hub process was never started")
        return _on_hub_loop(self._ended(self._app, self._proc, how, timeout), 3 * timeout)

    async def _ended(
        self,
        app: LocalHubProcess,
        proc: asyncio.subprocess.Process,
        how: Ending | None,
        within: float,
    ) -> int:
        if how is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                how(proc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(within):
                    await proc.wait()
            if proc.returncode is None:  # ``how`` did not end it: SIGKILL shows in the code
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        await app.stop()  # the app's own stop when ``how`` is None; else only reaps it
        if proc.stdout is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(within):
                    self.trailing_stdout = (await proc.stdout.read()).decode()
        assert proc.returncode is not None
        self.returncode = proc.returncode
        return proc.returncode

    def cleanup(self) -> None:
        """Teardown: make sure no process outlives the test."""
        if self._proc is not None and self.returncode is None:
            self.kill()

    def stderr_tail(self, chars: int = 4000) -> str:
        return "\n".join(self._stderr)[-chars:]

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


_hub_loop: tuple[asyncio.AbstractEventLoop, threading.Thread] | None = None


def _on_hub_loop(coro: Coroutine[Any, Any, Any], timeout: float) -> Any:
    """Run ``coro`` on the hub processes' loop (started on first use) and wait for it."""
    global _hub_loop
    if _hub_loop is None:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="hub-processes", daemon=True)
        thread.start()
        _hub_loop = loop, thread
    return asyncio.run_coroutine_threadsafe(coro, _hub_loop[0]).result(timeout)


def pytest_sessionfinish(session) -> None:
    """Close the hub processes' loop once every fixture (and its hub) is gone."""
    global _hub_loop
    if _hub_loop is not None:
        loop, thread = _hub_loop
        _hub_loop = None
        loop.call_soon_threadsafe(loop.stop)
        thread.join(STOP_TIMEOUT)
        loop.close()


class QuickService(HubService):
    """The real service, with the SDK's own connection retries off: they spend about
    5 s on each refused call, which only slows the tests of a hub going away down."""

    def _manager(self):
        manager = super()._manager()
        manager.protocol.config.retry_policy.retries = 0
        return manager


def service_for(
    hub: HubProcess | HubServer,
    connection_string: str | None = None,
    *,
    sdk_retries: bool = True,
    **options: Any,
) -> HubService:
    """The app's HubService on a local hub (a process or in-process), trusting its CA and
    ignoring proxy variables; ``connection_string`` defaults to the hub's owner string,
    ``sdk_retries=False`` turns the SDK's connection retries off (:class:`QuickService`)."""
    if isinstance(hub, HubServer):
        default, ca_cert = hub.service_connection_string(), str(hub.certificates.ca_cert)
    else:
        default, ca_cert = hub.service_connection_string, hub.ca_cert
    service = HubService if sdk_retries else QuickService
    return service(connection_string or default, ca_cert=ca_cert, use_env_proxies=False, **options)


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
def start_local_hub(hub_data_dir) -> Iterator[Callable[..., HubProcess]]:
    """Factory: ``start_local_hub(name="hub", extra_args=())`` -> a started hub."""
    hubs: list[HubProcess] = []

    def start(name: str = "hub", extra_args: Sequence[str] = ()) -> HubProcess:
        hub = HubProcess(hub_data_dir(name), extra_args=extra_args)
        hubs.append(hub)
        hub.start()
        return hub

    yield start
    for hub in hubs:
        hub.cleanup()


@pytest.fixture
def local_hub(start_local_hub) -> HubProcess:
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
