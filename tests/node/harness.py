"""Drive the unmodified Node.js SDKs from a test: ``device_client.js`` (device SDK, MQTT),
``http_device_client.js`` (device SDK, HTTPS) and ``service_client.js`` (service SDK,
``Registry`` over HTTPS).

Each program takes JSON commands on stdin and prints JSON events on stdout; the harness
sends one command and waits, with a time limit, for its answer, keeping every other event
(desired patches) for ``next_event``. ``./tools/dev test`` installs node and the SDK
(``npm ci`` into ``tests/node/node_modules``).

The Node SDK dials ``mqtts://<GatewayHostName or HostName>`` and takes no proxy for MQTT
over TCP; mqtt.js takes a port in that URL, so ``GatewayHostName=localhost:<port>`` sends it
to the local hub's MQTT port while the SAS token and username still name ``HostName``.
The service SDK only ever dials port 443: see ``tests/node/netns.py``; so do the device
SDK's WebSocket transports (``MqttWs``, ``AmqpWs``: ``wss://<host>:443/$iothub/websocket``),
which a device process then reaches the same way (``transport=`` and ``network=``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import pytest

if TYPE_CHECKING:
    from tests.node.netns import PrivateLoopback
    from twin_explorer.localhub.runtime.server import HubServer

NODE_DIR = Path(__file__).resolve().parent
PROGRAM = NODE_DIR / "device_client.js"
HTTP_PROGRAM = NODE_DIR / "http_device_client.js"
SERVICE_PROGRAM = NODE_DIR / "service_client.js"
TIMEOUT = 30.0


def node_or_skip() -> str:
    """The node executable; the test is skipped only when node is not installed at all."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (./tools/dev test installs it)")
    if not (NODE_DIR / "node_modules" / "azure-iot-device-mqtt").is_dir():
        raise AssertionError(f"the Node SDK is not installed: run npm ci in {NODE_DIR}")
    return node


def via_mqtt_port(connection_string: str, port: int) -> str:
    """The connection string with ``GatewayHostName=localhost:<port>`` (see module doc)."""
    return f"{connection_string};GatewayHostName=localhost:{port}"


class NodeProgram:
    """One Node.js program driven over stdin/stdout, one JSON object a line."""

    # Events that answer no command; kept for ``next_event``.
    UNSOLICITED: tuple[str, ...] = ()

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self._pending: list[dict[str, Any]] = []

    @staticmethod
    def environment(**values: str) -> dict[str, str]:
        """This process's environment plus ``values`` (the program's settings)."""
        return {**os.environ, **values}

    @staticmethod
    async def spawn(
        program: Path, env: dict[str, str], preexec_fn: Callable[[], None] | None = None
    ) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            node_or_skip(),
            str(program),
            cwd=NODE_DIR,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            preexec_fn=preexec_fn,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def answer(self, op: str, **fields: Any) -> dict[str, Any]:
        """Run one command; its answer, an error answer too (other events are kept)."""
        stdin = self._process.stdin
        assert stdin is not None
        stdin.write(json.dumps({"op": op, **fields}).encode() + b"\n")
        await stdin.drain()
        while True:
            event = await self._read()
            if event["event"] in self.UNSOLICITED:
                self._pending.append(event)
                continue
            return event

    async def next_event(self, within: float = TIMEOUT) -> dict[str, Any]:
        """The next event that was no command's answer."""
        if self._pending:
            return self._pending.pop(0)
        return await self._read(within)

    async def _read(self, within: float = TIMEOUT) -> dict[str, Any]:
        stdout = self._process.stdout
        assert stdout is not None
        try:
            async with asyncio.timeout(within):
                line = await stdout.readline()
        except TimeoutError:
            raise AssertionError(f"node said nothing for {within:g} s") from None
        if not line:
            raise AssertionError(f"node exited ({await self._process.wait()})")
        return json.loads(line)

    async def kill(self) -> None:
        """End the program at once (SIGKILL): its connections drop without a goodbye."""
        if self._process.returncode is None:
            self._process.kill()
            await self._process.wait()

    async def stop(self) -> None:
        process = self._process
        if process.returncode is None and process.stdin is not None:
            process.stdin.close()  # the program closes its client and exits
            try:
                async with asyncio.timeout(TIMEOUT):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()


class NodeDevice(NodeProgram):
    """One ``device_client.js`` process for one identity."""

    UNSOLICITED = ("desired", "client_error", "method", "c2d")

    @classmethod
    async def start(
        cls,
        connection_string: str,
        port: int | None,
        ca_file: Path,
        *,
        transport: str = "mqtt",
        network: PrivateLoopback | None = None,
        ws_proxy_port: int | None = None,
        x509: tuple[Path, Path] | None = None,
    ) -> NodeDevice:
        """``transport``: "mqtt", "amqp", "mqttws" or "amqpws"; ``port`` the hub's port for
        it, put in ``GatewayHostName`` (the SDK dials that over MQTT and AMQP; None: the
        string as it is). The WebSocket transports dial 443, which ``network`` (a namespace
        to run in) or the hub's CONNECT proxy on ``ws_proxy_port`` leads to the hub.
        With ``x509`` (certificate and key files) the device authenticates with them; its
        connection string is then ``HostName=<host>;DeviceId=<d>;x509=true``, whose
        HostName gets the port (the SDK's X.509 path ignores GatewayHostName)."""
        settings: dict[str, str] = {}
        if x509 is not None:
            if port is not None:  # None: WebSockets, which dial <HostName>:443
                host = connection_string.split("HostName=", 1)[1].split(";", 1)[0]
                connection_string = connection_string.replace(
                    f"HostName={host}", f"HostName=localhost:{port}", 1
                )
            settings = {"TE_CERT_FILE": str(x509[0]), "TE_KEY_FILE": str(x509[1])}
        elif port is not None:
            connection_string = via_mqtt_port(connection_string, port)
        env = cls.environment(
            TE_CONNECTION_STRING=connection_string,
            TE_CA_FILE=str(ca_file),
            TE_TRANSPORT=transport,
            NODE_EXTRA_CA_CERTS=str(ca_file),  # the AMQP transport's TLS trusts it so
            **settings,
        )
        if ws_proxy_port is not None:
            env["TE_WS_PROXY"] = f"http://127.0.0.1:{ws_proxy_port}"
        preexec_fn = network.enter if network is not None else None
        return cls(await cls.spawn(PROGRAM, env, preexec_fn))

    async def call(self, op: str, **fields: Any) -> dict[str, Any]:
        """Run one command; its answer, or AssertionError when it failed."""
        event = await self.answer(op, **fields)
        if event.get("op") == op and event["event"] == "error":
            raise AssertionError(f"node: {op} failed: {event['message']}")
        return event


class NodeHttpDevice(NodeDevice):
    """One ``http_device_client.js`` process: a device over the SDK's HTTPS transport,
    reaching the hub through its HTTP CONNECT proxy (the SDK's ``http.agent`` option)."""

    UNSOLICITED = ("message", "client_error")

    @classmethod
    async def start_https(
        cls, connection_string: str, proxy_port: int, ca_file: Path
    ) -> NodeHttpDevice:
        env = cls.environment(
            TE_CONNECTION_STRING=connection_string,
            TE_CA_FILE=str(ca_file),
            TE_PROXY_PORT=str(proxy_port),
        )
        return cls(await cls.spawn(HTTP_PROGRAM, env))


class NodeService(NodeProgram):
    """One ``service_client.js`` process: the Node service SDK's ``Registry``, reaching
    the hub through a :class:`~tests.node.netns.PrivateLoopback` (see its module doc)."""

    UNSOLICITED = ("feedback",)

    @classmethod
    async def start(
        cls, connection_string: str, ca_file: Path, network: PrivateLoopback | None
    ) -> NodeService:
        """``network``: the namespace to run in; None: this process's own (a test already
        in a private one, see ``netns.run_in_private_network``)."""
        env = cls.environment(
            TE_CONNECTION_STRING=connection_string,
            NODE_EXTRA_CA_CERTS=str(ca_file),  # Node's own way to trust one more CA
        )
        for key in ("HTTPS_PROXY", "https_proxy", "NODE_OPTIONS"):
            env.pop(key, None)
        preexec_fn = network.enter if network is not None else None
        return cls(await cls.spawn(SERVICE_PROGRAM, env, preexec_fn))

    async def registry(self, method: str, *args: Any) -> dict[str, Any]:
        """``registry[method](...args)``: ``{"event": "result", "status", "body"}`` or
        ``{"event": "error", "name", "status", "body", "message"}``."""
        return await self.answer("registry", method=method, args=list(args))

    async def job(
        self, method: str, *args: Any, start: str | None = None, max_seconds: int | None = None
    ) -> dict[str, Any]:
        """``jobClient[method](...args[, new Date(start), max_seconds])``, answered as
        :meth:`registry` answers."""
        return await self.answer(
            "job", method=method, args=list(args), start=start, maxSeconds=max_seconds
        )

    async def job_pages(self, *args: Any) -> list[list[dict[str, Any]]]:
        """Every page of ``jobClient.createQuery(...args)`` (jobType, jobStatus, pageSize)."""
        answer = await self.answer("jobQuery", args=list(args))
        assert answer["event"] == "result", answer
        return answer["pages"]


@contextlib.asynccontextmanager
async def node_service(server: HubServer) -> AsyncIterator[NodeService]:
    """A :class:`NodeService` on an in-process hub, in its own network namespace whose
    port 443 leads to the hub's REST port (skipped where namespaces are not allowed)."""
    from tests.hubfixtures import strip_port
    from tests.node.netns import private_loopback_or_skip

    network = private_loopback_or_skip()
    try:
        await network.forward_to("127.0.0.1", server.rest_port)
        connection_string = strip_port(server.service_connection_string(), server.hostname)
        async with await NodeService.start(
            connection_string, server.certificates.ca_cert, network
        ) as service:
            yield service
    finally:
        await network.close()
