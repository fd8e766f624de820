"""``HubServer``: one local hub with everything it listens on, started and closed as one.

It owns, in start order: the TLS certificates (created on first start), the core over
the SQLite file, and a list of listeners behind one small interface (:class:`Listener`:
name, the IoT Hub port it stands for, start, close, port): the MQTT device endpoint, the
REST API over HTTPS, and the HTTP CONNECT proxy whose routes come from that list, so the
unmodified SDKs reach each listener on whatever port it got (reference A.1, B.1).
``close()`` undoes all of it in reverse, including live connections, and may be called
any number of times.

Ports: each listener asks for its port; when that port is taken (or not ours to bind),
it logs why and lets the OS choose, so a second hub on the machine still starts.
``0`` always lets the OS choose; ``None`` turns the MQTT or AMQP server or the proxy off.
:meth:`HubServer.ready_info` says where everything ended up.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import ipaddress
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from twin_explorer import __version__
from twin_explorer.localhub.core.hub import HubCore
from twin_explorer.localhub.runtime.config import (
    DEFAULT_AMQP_PORT,
    DEFAULT_HOST,
    DEFAULT_HOSTNAME,
    DEFAULT_MQTT_PORT,
    DEFAULT_PROXY_PORT,
    DEFAULT_REST_PORT,
)
from twin_explorer.localhub.runtime.demo import seed_demo
from twin_explorer.localhub.runtime.proxy import ConnectProxy, port_routes
from twin_explorer.localhub.runtime.tls import CertPaths, ensure_certificates, hub_tls_context
from twin_explorer.localhub.runtime.watchdog import LoopWatchdog
from twin_explorer.localhub.store.datadir import DIR_MODE, DataDirLock, make_private
from twin_explorer.localhub.transports.amqp.server import AmqpServer
from twin_explorer.localhub.transports.listeners import ConnectionGate, Limits
from twin_explorer.localhub.transports.mqtt.server import MqttServer
from twin_explorer.localhub.transports.rest.listener import RestListener
from twin_explorer.localhub.transports.websocket import (
    StreamHandlers,
    WebSocketEndpoint,
    WebSocketLimits,
)

logger = logging.getLogger(__name__)

_UNAVAILABLE = (errno.EADDRINUSE, errno.EACCES)
HTTPS_PORT = 443
FLUSH_SECONDS = 1.0  # write-behind activity and events reach the disk at least this often


class Listener(Protocol):
    """What HubServer needs of each thing it listens with."""

    name: str  # "MQTT", "REST", "proxy": for logs and ready_info (lowercased)
    iothub_port: int | None  # the IoT Hub port clients dial for it (proxy routes), if any

    async def start(self, host: str, port: int) -> int: ...

    async def close(self) -> None: ...


MqttFactory = Callable[[HubCore, Any], Listener]


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
        amqp_port: int | None = DEFAULT_AMQP_PORT,
        proxy_port: int | None = DEFAULT_PROXY_PORT,
        demo: bool = False,
        mqtt_factory: MqttFactory | None = None,
        limits: Limits | None = None,
        websocket_limits: WebSocketLimits | None = None,
        disable_local_auth: bool = False,
        entra_auto_approve: bool = False,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        # One gate for every listener: timeouts, and one connection cap below the
        # descriptor limit (raised to the hard limit here).
        self.gate = ConnectionGate(limits)
        self.host = host
        self.hostname = hostname
        self.demo = demo
        self.disable_local_auth = disable_local_auth
        self.entra_auto_approve = entra_auto_approve
        self._wanted = {
            "rest": rest_port,
            "mqtt": mqtt_port,
            "amqp": amqp_port,
            "proxy": proxy_port,
        }
        self._mqtt_factory = mqtt_factory or functools.partial(MqttServer, gate=self.gate)
        # Subprotocol -> serve_stream for WebSockets on the REST port (/$iothub/websocket).
        self.stream_handlers = StreamHandlers()
        self._websocket_limits = websocket_limits
        self._core: HubCore | None = None
        self._certs: CertPaths | None = None
        self._listeners: list[Listener] = []
        self._watchdog: LoopWatchdog | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._folder_lock = DataDirLock(self.data_dir)
        self._ports: dict[str, int | None] = dict.fromkeys(self._wanted)
        self.amqp: AmqpServer | None = None  # its serve_stream carries AMQP over WebSockets
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

    @property
    def listeners(self) -> list[Listener]:
        """The started listeners, in start order."""
        return list(self._listeners)

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
        self._core = core = HubCore.open(self.data_dir, self.hostname)
        if self.demo:
            seed_demo(core)  # the first start only
        core.local_auth_disabled = self.disable_local_auth
        core.entra.auto_approve = self.entra_auto_approve
        # The token signing key, made on first start: off the loop, like the TLS keys.
        await asyncio.to_thread(lambda: core.entra.key_id)
        tls = hub_tls_context(self._certs)

        wanted: list[tuple[Listener, int]] = []
        if self._wanted["mqtt"] is not None:
            mqtt = self._mqtt_factory(core, tls)
            wanted.append((mqtt, self._wanted["mqtt"]))
            if serve_stream := getattr(mqtt, "serve_stream", None):
                self.stream_handlers.register("mqtt", serve_stream)
        if self._wanted["amqp"] is not None:
            self.amqp = AmqpServer(core, tls, gate=self.gate)
            wanted.append((self.amqp, self._wanted["amqp"]))
            self.stream_handlers.register("AMQPWSB10", self.amqp.serve_stream)
        websockets = WebSocketEndpoint(self.stream_handlers, self.gate, self._websocket_limits)
        rest = RestListener(core, tls, self.gate, self.public_info, extend=websockets.install)
        wanted.append((rest, self._wanted["rest"]))
        for listener, port in wanted:
            await self._listen(listener, port)
        core.entra.base_url = f"https://{self.hostname}:{self._ports['rest']}"

        if self._wanted["proxy"] is not None:
            target = _connect_address(self.host)
            routes = port_routes(
                [self.hostname, *extra_hosts],
                {
                    listener.iothub_port: (target, self._ports[listener.name.lower()])
                    for listener in self._listeners
                    if listener.iothub_port is not None
                },
            )
            proxy = ConnectProxy(
                routes, header_timeout=self.gate.limits.header_timeout, gate=self.gate
            )
            await self._listen(proxy, self._wanted["proxy"])
        self._flusher = asyncio.get_running_loop().create_task(self._flush_forever())

    async def _listen(self, listener: Listener, port: int) -> None:
        """Start a listener on ``port``, or on an OS-chosen port when that one is taken."""
        self._listeners.append(listener)  # closed with the others even if start fails
        try:
            bound = await listener.start(self.host, port)
        except OSError as exc:
            if port == 0 or exc.errno not in _UNAVAILABLE:
                raise
            logger.warning(
                "%s port %d on %s is unavailable (%s); using a port the OS chooses",
                listener.name,
                port,
                self.host,
                exc.strerror or exc,
            )
            bound = await listener.start(self.host, 0)
        self._ports[listener.name.lower()] = bound

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            try:
                self.core.flush()
            except Exception:
                logger.exception("writing activity and events failed")

    async def _close(self) -> None:
        if self._state in ("new", "closed"):
            self._state = "closed"
            return
        self._state = "closing"
        flusher, self._flusher = self._flusher, None
        if flusher is not None:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
        # Front to back: no new tunnels, no device traffic, no pending method calls
        # (they are answered 503), then REST (the service side), then the file.
        listeners, self._listeners = self._listeners, []
        core, self._core = self._core, None
        for listener in sorted(reversed(listeners), key=lambda item: item.name == "REST"):
            if listener.name == "REST" and core is not None:
                core.methods.close()
            try:
                await listener.close()
            except Exception:
                logger.exception("closing the %s listener failed", listener.name)
        self.gate.close()  # connections still in their TLS handshake
        if core is not None:
            core.close()
        self._folder_lock.release()
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog.stop()
        self._ports = dict.fromkeys(self._wanted)
        self.amqp = None
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
    def amqp_port(self) -> int | None:
        return self._ports["amqp"]

    @property
    def proxy_port(self) -> int | None:
        return self._ports["proxy"]

    def service_connection_string(self, policy: str = "iothubowner") -> str:
        """A service connection string: ``HostName=<hostname>`` when the REST port is 443,
        as IoT Hub's are (the Node service SDK takes no port in it), else
        ``HostName=<hostname>:<rest port>`` (the Python SDK takes the port)."""
        port = self.rest_port
        host = self.hostname if port == HTTPS_PORT else f"{self.hostname}:{port}"
        return self.core.service_connection_string(policy, host)

    def public_info(self) -> dict[str, Any]:
        """Where the hub listens; no secrets (``GET /_localhub/info``)."""
        return {
            "hostname": self.hostname,
            "rest_port": self._ports["rest"],
            "mqtt_port": self._ports["mqtt"],
            "amqp_port": self._ports["amqp"],
            "proxy_port": self._ports["proxy"],
            "version": __version__,
            **self._entra_info(),
        }

    def ready_info(self) -> dict[str, Any]:
        """Everything a client needs, as the ``hub`` command prints it when ready."""
        return {
            **self.public_info(),
            "service_connection_string": self.service_connection_string(),
            # Secret beside the connection string, which is as secret: never logged.
            "entra_client_secret": self.core.entra.client_secret,
            "eventhub_connection_string": self.core.eventhub_connection_string(),
            "eventhub_name": self.core.eventhub.name,
            "ca_cert": str(self.certificates.ca_cert.absolute()),
            "data_dir": str(self.data_dir),
            "pid": os.getpid(),
        }

    def _entra_info(self) -> dict[str, Any]:
        """The Entra ID authority and its test client (without its secret)."""
        if self._core is None:
            return {}
        entra = self._core.entra
        return {
            "local_auth": not self._core.local_auth_disabled,
            "entra_authority": entra.base_url,
            "entra_tenant_id": entra.tenant_id,
            "entra_client_id": entra.client_id,
            "entra_test_user": entra.user_name,
        }

    def _summary(self) -> str:
        ports = ", ".join(f"{name} {port}" for name, port in self._ports.items() if port)
        entra = f"; Entra ID authority {self.core.entra.authority_url}"
        if self.core.local_auth_disabled:
            entra += ", shared keys disabled"
        return f"{self.hostname} on {self.host} ({ports}), data in {self.data_dir}{entra}"


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
