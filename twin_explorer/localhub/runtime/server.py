"""``HubServer``: one local hub with everything it listens on, started and closed as one.

It owns, in start order: the TLS certificates (created on first start), the core over
the SQLite file, the REST API over HTTPS, the MQTT server (when the build has one) and
the HTTP CONNECT proxy that lets the unmodified device SDK reach MQTT and REST on
whatever ports they got (reference A.1, B.1). ``close()`` undoes all of it in reverse,
including live connections, and may be called any number of times.

Ports: each listener asks for its port; when that port is taken (or not ours to bind),
it logs why and lets the OS choose, so a second hub on the machine still starts.
``0`` always lets the OS choose; ``None`` turns the MQTT server or the proxy off.
:meth:`HubServer.ready_info` says where everything ended up.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import importlib
import ipaddress
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from twin_explorer import __version__
from twin_explorer.localhub.core.hub import HubCore
from twin_explorer.localhub.errors import DiskFull, HubError
from twin_explorer.localhub.runtime.config import (
    DEFAULT_HOST,
    DEFAULT_HOSTNAME,
    DEFAULT_MQTT_PORT,
    DEFAULT_PROXY_PORT,
    DEFAULT_REST_PORT,
)
from twin_explorer.localhub.runtime.demo import seed_demo
from twin_explorer.localhub.runtime.proxy import ConnectProxy, hub_routes
from twin_explorer.localhub.runtime.tls import CertPaths, ensure_certificates, server_context
from twin_explorer.localhub.runtime.watchdog import LoopWatchdog
from twin_explorer.localhub.store.datadir import DIR_MODE, DataDirLock, make_private
from twin_explorer.localhub.transports.listeners import ConnectionGate, Limits, busy_while
from twin_explorer.localhub.transports.rest import MethodInvoker, create_app
from twin_explorer.localhub.transports.rest.wire import error_response

logger = logging.getLogger(__name__)

# How long close() lets in-flight REST requests finish before cancelling them; a direct
# method call can wait minutes for a device, and shutdown must not.
REST_SHUTDOWN_SECONDS = 2.0
_UNAVAILABLE = (errno.EADDRINUSE, errno.EACCES)


class MqttListener(MethodInvoker, Protocol):
    """What HubServer needs of the MQTT server: listen, close, deliver direct methods."""

    async def start(self, host: str, port: int) -> int: ...

    async def close(self) -> None: ...


MqttFactory = Callable[[HubCore, Any], MqttListener]


MQTT_SERVER_MODULE = "twin_explorer.localhub.transports.mqtt.server"


def default_mqtt_factory() -> MqttFactory | None:
    """``MqttServer`` from :data:`MQTT_SERVER_MODULE`, or None while the build has none.

    Only the module's absence means "no MQTT"; an import error inside it is a bug and
    propagates.
    """
    try:
        module = importlib.import_module(MQTT_SERVER_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != MQTT_SERVER_MODULE:
            raise
        return None
    return module.MqttServer


class HubServer:
    """A running local hub. Use ``async with HubServer(...) as hub:`` or start/close."""

    def __init__(
        self,
        data_dir: Path | str,
        *,
        host: str = DEFAULT_HOST,
        hostname: str = DEFAULT_HOSTNAME,
        rest_port: int = DEFAULT_REST_PORT,
        mqtt_port: int | None = DEFAULT_MQTT_PORT,
        proxy_port: int | None = DEFAULT_PROXY_PORT,
        demo: bool = False,
        mqtt_factory: MqttFactory | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        # One gate for every listener: timeouts, and one connection cap below the
        # descriptor limit (raised to the hard limit here).
        self.gate = ConnectionGate(limits)
        self.host = host
        self.hostname = hostname
        self.demo = demo
        self._wanted = {"rest": rest_port, "mqtt": mqtt_port, "proxy": proxy_port}
        if mqtt_factory is None and (default := default_mqtt_factory()) is not None:
            mqtt_factory = functools.partial(default, gate=self.gate)
        self._mqtt_factory = mqtt_factory
        self._core: HubCore | None = None
        self._certs: CertPaths | None = None
        self._runner: web.AppRunner | None = None
        self._mqtt: MqttListener | None = None
        self._proxy: ConnectProxy | None = None
        self._watchdog: LoopWatchdog | None = None
        self._folder_lock = DataDirLock(self.data_dir)
        self._ports: dict[str, int | None] = {"rest": None, "mqtt": None, "proxy": None}
        self._state = "new"
        self._lock = asyncio.Lock()

    # -- lifetime -----------------------------------------------------------------------

    async def __aenter__(self) -> HubServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Bring everything up; on any failure, close what was started and re-raise."""
        async with self._lock:
            if self._state != "new":
                raise RuntimeError(f"HubServer cannot start: it is {self._state}")
            self._state = "starting"
            try:
                await self._start()
            except BaseException:
                await self._close()
                raise
            self._state = "running"
        logger.info("local hub ready: %s", self._summary())

    async def close(self) -> None:
        """Stop listening, end live connections, close the core. Safe to repeat."""
        async with self._lock:
            await self._close()

    @property
    def running(self) -> bool:
        return self._state == "running"

    @property
    def core(self) -> HubCore:
        if self._core is None:
            raise RuntimeError("HubServer is not started")
        return self._core

    @property
    def certificates(self) -> CertPaths:
        if self._certs is None:
            raise RuntimeError("HubServer is not started")
        return self._certs

    async def _start(self) -> None:
        self._watchdog = LoopWatchdog()
        self._watchdog.start()
        # Lock first: a second hub must not even chmod the first one's files.
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        self._folder_lock.acquire()
        make_private(self.data_dir)
        extra_hosts = [h for h in (self.hostname, self.host) if not _is_wildcard(h)]
        # Key generation takes a moment on first start; keep the loop free meanwhile.
        self._certs = await asyncio.to_thread(ensure_certificates, self.data_dir, extra_hosts)
        self._core = HubCore.open(self.data_dir, self.hostname)
        if self.demo:
            seed_demo(self._core)  # the first start only
        tls = server_context(self._certs)

        if self._wanted["mqtt"] is not None:
            if self._mqtt_factory is None:
                logger.warning("this build has no MQTT server; devices cannot connect")
            else:
                self._mqtt = self._mqtt_factory(self._core, tls)
                self._ports["mqtt"] = await _listen(
                    "MQTT", self._mqtt.start, self.host, self._wanted["mqtt"]
                )

        app = create_app(self._core, invoker=self._mqtt, info=self.public_info)
        app.middlewares.append(_gated_requests(self.gate))
        app.middlewares.append(_answer_disk_full)
        self._runner = web.AppRunner(
            app,
            access_log=None,
            shutdown_timeout=REST_SHUTDOWN_SECONDS,
            handler_cancellation=True,  # a client that gives up ends its method wait
        )
        await self._runner.setup()
        self._ports["rest"] = await _listen(
            "REST", self._rest_starter(tls), self.host, self._wanted["rest"]
        )

        if self._wanted["proxy"] is not None:
            target = _connect_address(self.host)
            mqtt_port = self._ports["mqtt"]
            routes = hub_routes(
                [self.hostname, *extra_hosts],
                mqtt=(target, mqtt_port) if mqtt_port is not None else None,
                rest=(target, self._ports["rest"]),
            )
            self._proxy = ConnectProxy(
                routes, header_timeout=self.gate.limits.header_timeout, gate=self.gate
            )
            self._ports["proxy"] = await _listen(
                "proxy", self._proxy.start, self.host, self._wanted["proxy"]
            )

    def _rest_starter(self, tls: Any) -> Callable[[str, int], Awaitable[int]]:
        async def start(host: str, port: int) -> int:
            assert self._runner is not None
            site = _GatedSite(self._runner, host, port, self.gate, tls)
            try:
                await site.start()
            except BaseException:
                await site.stop()  # unregister the failed site before a retry
                raise
            return site.bound_port

        return start

    async def _close(self) -> None:
        if self._state in ("new", "closed"):
            self._state = "closed"
            return
        self._state = "closing"
        # Front to back: no new tunnels, no device traffic (which also fails pending
        # method calls), then REST, then the file.
        proxy, self._proxy = self._proxy, None
        mqtt, self._mqtt = self._mqtt, None
        runner, self._runner = self._runner, None
        core, self._core = self._core, None
        for name, closer in (
            ("proxy", proxy.close if proxy else None),
            ("MQTT", mqtt.close if mqtt else None),
            ("REST", runner.cleanup if runner else None),
        ):
            if closer is None:
                continue
            try:
                await closer()
            except Exception:
                logger.exception("closing the %s listener failed", name)
        self.gate.close()  # connections still in their TLS handshake
        if core is not None:
            core.close()
        self._folder_lock.release()
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog.stop()
        self._ports = {"rest": None, "mqtt": None, "proxy": None}
        self._state = "closed"
        logger.info("local hub closed")

    # -- what clients need to know ------------------------------------------------------

    @property
    def rest_port(self) -> int:
        port = self._ports["rest"]
        if port is None:
            raise RuntimeError("HubServer is not started")
        return port

    @property
    def mqtt_port(self) -> int | None:
        return self._ports["mqtt"]

    @property
    def proxy_port(self) -> int | None:
        return self._ports["proxy"]

    def service_connection_string(self, policy: str = "iothubowner") -> str:
        """A service connection string with ``HostName=<hostname>:<rest port>``."""
        return self.core.service_connection_string(policy, f"{self.hostname}:{self.rest_port}")

    def public_info(self) -> dict[str, Any]:
        """Where the hub listens; no secrets (``GET /_localhub/info``)."""
        return {
            "hostname": self.hostname,
            "rest_port": self._ports["rest"],
            "mqtt_port": self._ports["mqtt"],
            "proxy_port": self._ports["proxy"],
            "version": __version__,
        }

    def ready_info(self) -> dict[str, Any]:
        """Everything a client needs, as the ``hub`` command prints it when ready."""
        return {
            **self.public_info(),
            "service_connection_string": self.service_connection_string(),
            "ca_cert": str(self.certificates.ca_cert.absolute()),
            "data_dir": str(self.data_dir),
            "pid": os.getpid(),
        }

    def _summary(self) -> str:
        ports = ", ".join(f"{name} {port}" for name, port in self._ports.items() if port)
        return f"{self.hostname} on {self.host} ({ports}), data in {self.data_dir}"


async def _listen(
    what: str, start: Callable[[str, int], Awaitable[int]], host: str, port: int
) -> int:
    """Start a listener on ``port``, or on an OS-chosen port when that one is taken."""
    try:
        return await start(host, port)
    except OSError as exc:
        if port == 0 or exc.errno not in _UNAVAILABLE:
            raise
        logger.warning(
            "%s port %d on %s is unavailable (%s); using a port the OS chooses",
            what,
            port,
            host,
            exc.strerror or exc,
        )
        return await start(host, 0)


class _GatedSite(web.BaseSite):
    """aiohttp's TCPSite, but accepting through the hub's gate (which also runs TLS)."""

    def __init__(
        self, runner: web.AppRunner, host: str, port: int, gate: ConnectionGate, tls: Any
    ) -> None:
        super().__init__(runner)
        self._host, self._port, self._gate, self._tls = host, port, gate, tls
        self.bound_port = port

    @property
    def name(self) -> str:
        return f"https://{self._host}:{self.bound_port}"

    async def start(self) -> None:
        await super().start()
        assert self._runner.server is not None
        self._server = await self._gate.serve(
            self._runner.server, self._host, self._port, tls=self._tls
        )
        self.bound_port = self._server.sockets[0].getsockname()[1]


def _gated_requests(gate: ConnectionGate) -> Any:
    """Tell the gate when a REST connection is busy; the body must arrive in time."""

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        with busy_while(gate, request.transport):
            if request.can_read_body:
                try:
                    async with asyncio.timeout(gate.limits.header_timeout):
                        await request.read()  # cached: the handler reads it again
                except TimeoutError:
                    response = error_response(
                        HubError(408, "RequestTimeout", 408000, "The request body came too slowly.")
                    )
                    response.force_close()
                    return response
            return await handler(request)

    return middleware


@web.middleware
async def _answer_disk_full(request: web.Request, handler: Any) -> web.StreamResponse:
    """Answer a full disk without a log line per request: the store logged it once."""
    try:
        return await handler(request)
    except DiskFull as error:
        return error_response(error)


def _is_wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return host == ""


def _connect_address(host: str) -> str:
    """Where the proxy dials the hub's own listeners: loopback when bound to all."""
    if not _is_wildcard(host):
        return host
    return "::1" if ":" in host else "127.0.0.1"
