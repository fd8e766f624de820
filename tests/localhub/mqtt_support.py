"""Shared helpers for the device-side MQTT tests; this module holds no tests itself.

Two ways to run a hub:
- ``mqtt_hub``: a ``HubServer`` on the test's own loop, for the aio device SDK. The SDK's
  blocking parts (handler setters, A.15) go through ``asyncio.to_thread`` so the hub on the
  same loop can answer them; SDK handlers hop back with ``call_soon_threadsafe`` (``Inbox``).
- ``ThreadedHub``: a ``HubServer`` on a private loop thread, for blocking raw TLS sockets
  (``RawClient``) and the sync SDK client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest_asyncio
from azure.iot.device import ProxyOptions
from azure.iot.device.aio import IoTHubDeviceClient, IoTHubModuleClient

from twin_explorer.connection.sas import device_resource_uri, generate_device_token
from twin_explorer.localhub.core.hub import HubCore
from twin_explorer.localhub.errors import HubError
from twin_explorer.localhub.protocols.mqtt.codec import Decoder, encode
from twin_explorer.localhub.protocols.mqtt.packets import (
    Connack,
    Connect,
    Packet,
    Publish,
    Subscribe,
)
from twin_explorer.localhub.runtime.server import HubServer
from twin_explorer.localhub.runtime.tls import client_context
from twin_explorer.localhub.transports.mqtt.server import MqttServer

TIMEOUT = 20.0
T = TypeVar("T")


# --- identities ---------------------------------------------------------------------------


def sas_identity() -> dict[str, Any]:
    return {"authentication": {"symmetricKey": {}, "type": "sas"}}


def ensure_identity(core: HubCore, device_id: str, module_id: str | None = None) -> str:
    """Create the device (and module) with hub-made keys unless they exist; its
    connection string."""
    with _existing_is_fine():
        core.put_device(
            device_id, {"status": "enabled", **sas_identity(), "capabilities": {}}, None
        )
    if module_id is not None:
        with _existing_is_fine():
            core.put_module(device_id, module_id, sas_identity(), None)
    return core.identity_connection_string(device_id, module_id)


@contextlib.contextmanager
def _existing_is_fine() -> Iterator[None]:
    try:
        yield
    except HubError as error:
        if error.status != 409:
            raise


def identity_password(core: HubCore, device_id: str, module_id: str | None = None) -> bytes:
    """A valid SAS token for a raw CONNECT, signed with the identity's primary key."""
    found = core.get_module(device_id, module_id) if module_id else core.get_device(device_id)
    key = found["authentication"]["symmetricKey"]["primaryKey"]
    uri = device_resource_uri(core.hostname, device_id, module_id)
    return generate_device_token(uri, key).encode()


def capturing_factory(created: list[MqttServer], **kwargs: Any):
    """A HubServer ``mqtt_factory`` that builds MqttServer with ``kwargs`` and keeps it."""

    def factory(core: HubCore, tls: Any) -> MqttServer:
        server = MqttServer(core, tls, **kwargs)
        created.append(server)
        return server

    return factory


# --- a hub on the test's loop, for the aio SDK ----------------------------------------------


@dataclass
class MqttHub:
    server: HubServer
    mqtt: MqttServer

    @property
    def core(self) -> HubCore:
        return self.server.core

    @property
    def ca_pem(self) -> str:
        return self.server.certificates.ca_cert.read_text()

    def service(self, cls: type[T]) -> T:
        """An unmodified service SDK manager (``IoTHubJobManager``, ...) trusting the hub."""
        from tests.hubfixtures import trusting_client

        server = self.server
        return trusting_client(cls, server.service_connection_string(), server.certificates.ca_cert)

    def proxy(self) -> ProxyOptions:
        port = self.server.proxy_port
        assert port is not None
        return ProxyOptions(proxy_type="HTTP", proxy_addr="127.0.0.1", proxy_port=port)

    @contextlib.asynccontextmanager
    async def client(self, connection_string: str, **kwargs: Any) -> AsyncIterator[Any]:
        """An unmodified aio SDK client through the hub's CONNECT proxy; shut down after."""
        async with sdk_client(connection_string, self.ca_pem, self.proxy(), **kwargs) as c:
            yield c


@contextlib.asynccontextmanager
async def sdk_client(
    connection_string: str, ca_pem: str, proxy: ProxyOptions, **kwargs: Any
) -> AsyncIterator[Any]:
    cls = IoTHubModuleClient if ";ModuleId=" in connection_string else IoTHubDeviceClient
    client = cls.create_from_connection_string(
        connection_string, server_verification_cert=ca_pem, proxy_options=proxy, **kwargs
    )
    try:
        yield client
    finally:
        await client.shutdown()


@pytest_asyncio.fixture
async def mqtt_hub(tmp_path: Path) -> AsyncIterator[MqttHub]:
    created: list[MqttServer] = []
    async with HubServer(
        tmp_path / "hub",
        rest_port=0,
        mqtt_port=0,
        proxy_port=0,
        mqtt_factory=capturing_factory(created),
    ) as server:
        yield MqttHub(server, created[0])


async def sdk(manager: Any, method: str, *args: Any) -> Any:
    """One blocking service SDK call, off the loop the hub runs on."""
    return await asyncio.to_thread(getattr(manager, method), *args)


async def until(condition: Callable[[], object], within: float = TIMEOUT) -> None:
    """Wait, a few milliseconds at a time, until ``condition()`` is true."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def desired_patches(client: Any) -> Inbox:
    """Connect an SDK client; the desired patches it receives from then on."""
    await client.connect()
    patches = Inbox()
    await set_handler(client, "on_twin_desired_properties_patch_received", patches)
    return patches


async def set_handler(client: Any, name: str, handler: Any) -> None:
    """Handler setters block until SUBSCRIBE completes (A.15): keep the loop free."""
    await asyncio.to_thread(setattr, client, name, handler)


class Inbox:
    """A callback for SDK threads whose arguments a test awaits on its own loop."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[Any] = asyncio.Queue()

    def __call__(self, item: Any) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    async def get(self, within: float = TIMEOUT) -> Any:
        return await asyncio.wait_for(self._queue.get(), within)

    def empty(self) -> bool:
        return self._queue.empty()


# --- log records as events ------------------------------------------------------------------


class LogWatch(logging.Handler):
    """Collects log messages and lets a test wait, sync or async, for one to appear."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self._changed = threading.Condition()
        self.messages: list[str] = []
        self._wakeups: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    def emit(self, record: logging.LogRecord) -> None:
        with self._changed:
            self.messages.append(record.getMessage())
            self._changed.notify_all()
            wakeups = list(self._wakeups)
        for loop, event in wakeups:
            loop.call_soon_threadsafe(event.set)

    def find(self, *parts: str) -> str | None:
        return self._first(_containing(parts))

    def _first(self, matches: Callable[[str], bool]) -> str | None:
        return self._nth(matches, 1)

    def _nth(self, matches: Callable[[str], bool], count: int) -> str | None:
        with self._changed:
            found = [m for m in self.messages if matches(m)]
        return found[count - 1] if len(found) >= count else None

    def wait_until(self, matches: Callable[[str], bool], timeout: float = TIMEOUT) -> str:
        """Block until a message ``matches``; AssertionError after ``timeout``."""
        with self._changed:
            if not self._changed.wait_for(lambda: any(map(matches, self.messages)), timeout):
                raise AssertionError(f"no such log message in {self.messages}")
        found = self._first(matches)
        assert found is not None
        return found

    def wait_for(self, *parts: str, timeout: float = TIMEOUT) -> str:
        return self.wait_until(_containing(parts), timeout)

    async def wait_for_async(self, *parts: str, within: float = TIMEOUT, count: int = 1) -> str:
        """The ``count``-th message containing every part, once there is one."""
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        entry = (loop, event)
        with self._changed:
            self._wakeups.append(entry)
        try:
            async with asyncio.timeout(within):
                while (found := self._nth(_containing(parts), count)) is None:
                    await event.wait()
                    event.clear()
        except TimeoutError:
            raise AssertionError(f"no log message with {parts} in {self.messages}") from None
        finally:
            with self._changed:
                self._wakeups.remove(entry)
        return found


def _containing(parts: tuple[str, ...]) -> Callable[[str], bool]:
    return lambda message: all(part in message for part in parts)


@contextlib.contextmanager
def watch_log(*names: str) -> Iterator[LogWatch]:
    """Watch DEBUG and up of the named loggers for the duration of the block."""
    watch = LogWatch()
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.addHandler(watch)
    try:
        yield watch
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(watch)
            logger.setLevel(level)


SERVER_LOGS = (
    "twin_explorer.localhub.transports.mqtt.server",
    "twin_explorer.localhub.transports.mqtt.link",
    "twin_explorer.localhub.core.methods",
    "twin_explorer.localhub.core.presence",
    "twin_explorer.localhub.core.device_ops",
)


# --- a hub on its own thread, for blocking sockets --------------------------------------------


class ThreadedHub:
    """A HubServer running on a private event loop thread."""

    def __init__(self, data_dir: Path, **mqtt_kwargs: Any) -> None:
        self._created: list[MqttServer] = []
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.server = HubServer(
            data_dir,
            rest_port=0,
            mqtt_port=0,
            proxy_port=0,
            mqtt_factory=capturing_factory(self._created, **mqtt_kwargs),
        )
        self.wait(self.server.start())
        self.mqtt = self._created[0]
        self.ca_pem = self.server.certificates.ca_cert.read_text()
        self.tls = client_context(self.server.certificates)

    def wait(self, coroutine: Any, timeout: float = TIMEOUT) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Call ``fn`` on the hub's loop thread (the core is not thread-safe)."""

        async def call() -> T:
            return fn(*args)

        return self.wait(call())

    def identity(self, device_id: str, module_id: str | None = None) -> str:
        return self.run(ensure_identity, self.server.core, device_id, module_id)

    def password(self, device_id: str, module_id: str | None = None) -> bytes:
        return self.run(identity_password, self.server.core, device_id, module_id)

    def raw(self, **kwargs: Any) -> RawClient:
        port = self.server.mqtt_port
        assert port is not None
        return RawClient(port, self.tls, **kwargs)

    def close(self) -> None:
        try:
            self.wait(self.server.close())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(TIMEOUT)
            self.loop.close()


class RawClient:
    """A blocking MQTT client over TLS that sends exactly the bytes a test wants."""

    def __init__(self, port: int, tls: ssl.SSLContext, *, rcvbuf: int | None = None) -> None:
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:  # before connect, so the TCP window stays small
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        raw.settimeout(TIMEOUT)
        raw.connect(("127.0.0.1", port))
        self.sock = tls.wrap_socket(raw, server_hostname="localhost")
        self.local_port = self.sock.getsockname()[1]
        self._decoder = Decoder()
        self._packets: list[Packet] = []

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes | Packet) -> None:
        self.sock.sendall(data if isinstance(data, bytes) else encode(data))

    def recv(self) -> Packet:
        """The next packet from the hub; AssertionError if it closed instead."""
        while not self._packets:
            data = self.sock.recv(65536)
            if not data:
                raise AssertionError("the hub closed the connection")
            self._packets.extend(self._decoder.feed(data))
        return self._packets.pop(0)

    def recv_publish(self) -> Publish:
        while True:
            packet = self.recv()
            if isinstance(packet, Publish):
                return packet

    def closed_by_hub(self) -> bool:
        """Read until EOF; True if the hub closed (reset counts), False on timeout."""
        try:
            while self.sock.recv(65536):
                pass
        except TimeoutError:
            return False
        except (ConnectionError, ssl.SSLError):
            return True
        return True

    def connect(
        self,
        client_id: str,
        password: bytes | None,
        *,
        keepalive: int = 60,
        clean_session: bool = False,
        hostname: str = "localhost",
    ) -> Connack:
        username = f"{hostname}/{client_id}/?api-version=2019-10-01"
        self.send(Connect(client_id, clean_session, keepalive, username, password))
        connack = self.recv()
        assert isinstance(connack, Connack), connack
        return connack

    def subscribe(self, packet_id: int, *filters: str) -> None:
        self.send(Subscribe(packet_id, tuple((f, 1) for f in filters)))
        self.recv()  # SUBACK

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
