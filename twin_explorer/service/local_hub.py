"""Run the local hub as a child process of the app.

The hub runs in its own process (``twin-explorer hub``, the same executable, so a frozen
build works too): hub load never stalls the UI, and a hub crash never takes the window
with it. The child prints one JSON line when it is ready; that line is all the app needs
to connect to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twin_explorer import paths
from twin_explorer.connection.strings import parse
from twin_explorer.localhub.runtime.cli import COULD_NOT_START
from twin_explorer.service.hub import HubService

log = logging.getLogger(__name__)

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


class LocalHubError(RuntimeError):
    """The local hub could not start; the message says why in plain words."""


@dataclass(frozen=True)
class LocalHubInfo:
    hostname: str
    service_connection_string: str
    ca_cert: str
    rest_port: int
    mqtt_port: int | None
    proxy_port: int | None
    data_dir: str
    # The Event Hub-compatible endpoint (on the AMQP port; None when AMQP is off).
    amqp_port: int | None = None
    eventhub_connection_string: str | None = None
    eventhub_name: str | None = None

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> LocalHubInfo:
        return cls(
            hostname=doc["hostname"],
            service_connection_string=doc["service_connection_string"],
            ca_cert=doc["ca_cert"],
            rest_port=int(doc["rest_port"]),
            mqtt_port=doc.get("mqtt_port"),
            proxy_port=doc.get("proxy_port"),
            data_dir=doc["data_dir"],
            amqp_port=doc.get("amqp_port"),
            eventhub_connection_string=doc.get("eventhub_connection_string"),
            eventhub_name=doc.get("eventhub_name"),
        )

    @property
    def eventhub_endpoint(self) -> str | None:
        """``custom_endpoint_address`` for azure-eventhub clients (with
        ``transport_type=TransportType.Amqp`` and ``connection_verify=ca_cert``)."""
        return None if self.amqp_port is None else f"sb://localhost:{self.amqp_port}"

    def __repr__(self) -> str:  # the connection string carries the owner key
        return f"LocalHubInfo(hostname={self.hostname!r}, rest_port={self.rest_port})"


def hub_command() -> list[str]:
    """How to start ``twin-explorer`` itself: the frozen executable, or this Python."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    return [sys.executable, "-m", "twin_explorer"]


def hub_arguments(
    data_dir: Path, *, mqtt_port: int = 8883, demo: bool = False, extra: list[str] | None = None
) -> list[str]:
    """``hub`` with its arguments: REST and proxy on OS-chosen ports, and tied to the
    parent's life (``--exit-with-stdin``: the hub goes away with it, even after a crash)."""
    return [
        "hub",
        "--data-dir",
        str(data_dir),
        "--rest-port",
        "0",
        "--proxy-port",
        "0",
        "--mqtt-port",
        str(mqtt_port),
        "--exit-with-stdin",
        *(["--demo"] if demo else []),
        *(extra or []),
    ]


def default_data_dir() -> Path:
    return paths.data_dir() / "localhub"


class LocalHubProcess:
    """Start, watch and stop one ``twin-explorer hub`` child process."""

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        demo: bool = True,
        mqtt_port: int = 8883,
        extra_args: list[str] | None = None,
        executable: Sequence[str] | None = None,
        on_stderr: Callable[[str], None] | None = None,
    ) -> None:
        self.data_dir = data_dir or default_data_dir()
        self.demo = demo
        self.mqtt_port = mqtt_port
        self.extra_args = extra_args or []
        # How to run ``twin-explorer`` (default: hub_command()), e.g. behind a wrapper.
        self.executable = list(executable) if executable is not None else hub_command()
        self.on_stderr = on_stderr  # called with each line the hub writes to stderr
        self.info: LocalHubInfo | None = None
        self.ready: dict[str, Any] = {}  # the ready line as the hub printed it
        self._proc: asyncio.subprocess.Process | None = None
        self._stderr_task: asyncio.Task[None] | None = None
        self._stderr_tail: list[str] = []
        self._refusal: str | None = None  # the hub's own word on why it could not start

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    @property
    def process(self) -> asyncio.subprocess.Process | None:
        """The child process while started (its pid, exit code, signals), else None."""
        return self._proc

    def command(self) -> list[str]:
        """The child's command line."""
        return [
            *self.executable,
            *hub_arguments(
                self.data_dir, mqtt_port=self.mqtt_port, demo=self.demo, extra=self.extra_args
            ),
        ]

    async def start(self) -> LocalHubInfo:
        log.info("starting the local hub in %s", self.data_dir)
        self._proc = await asyncio.create_subprocess_exec(
            *self.command(),
            stdin=asyncio.subprocess.PIPE,  # never written; closing it stops the hub
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._stderr_task = asyncio.ensure_future(self._drain_stderr())
        assert self._proc.stdout is not None
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                line = await self._proc.stdout.readline()
        except TimeoutError:
            await self.stop()
            raise LocalHubError(
                f"The local hub did not start within {READY_TIMEOUT:.0f} seconds."
            ) from None
        if not line:
            await self._wait_exit()
            if self._refusal:
                raise LocalHubError(f"The local hub could not start. {self._refusal}")
            tail = "\n".join(self._stderr_tail[-5:])
            raise LocalHubError(
                "The local hub stopped while starting"
                + (f":\n{tail}" if tail else " without saying why.")
            )
        try:
            self.ready = json.loads(line)
            self.info = LocalHubInfo.from_json(self.ready)
        except (ValueError, KeyError) as exc:
            await self.stop()
            raise LocalHubError(f"The local hub's ready line was not understood ({exc}).") from None
        log.info("local hub ready on REST port %s", self.info.rest_port)
        return self.info

    async def _drain_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        while line := await self._proc.stderr.readline():
            text = line.decode("utf-8", "replace").rstrip()
            self._stderr_tail = [*self._stderr_tail[-49:], text]
            if text.startswith(COULD_NOT_START):
                self._refusal = text[len(COULD_NOT_START) :]
            if self.on_stderr is not None:
                self.on_stderr(text)
            log.debug("hub: %s", text)

    async def _wait_exit(self) -> int | None:
        if self._proc is None:
            return None
        code = await self._proc.wait()
        if self._stderr_task is not None:
            with contextlib.suppress(Exception):
                await self._stderr_task
        return code

    async def stop(self) -> None:
        """Close its stdin and SIGTERM it (both ask for a clean stop), then SIGKILL if it
        does not exit in time."""
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None:
            if proc.stdin is not None:
                proc.stdin.close()
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(STOP_TIMEOUT):
                    await proc.wait()
            except TimeoutError:
                log.warning("the local hub did not stop in time; killing it")
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        await self._wait_exit()
        self._proc = None
        log.info("local hub stopped")


_LOOPBACK = ("localhost", "127.0.0.1", "::1", "[::1]")


def make_service(connection_string: str) -> HubService:
    """A HubService for a saved or pasted connection string.

    A string naming this machine most likely points at a local hub (ours, or one started
    with ``twin-explorer hub``): trust the local hub's CA for it and ignore proxy
    variables, since a corporate HTTPS_PROXY must never capture loopback traffic.
    """
    ca_cert, use_env_proxies = local_trust(parse(connection_string).host)
    return HubService(connection_string, ca_cert=ca_cert, use_env_proxies=use_env_proxies)


def local_trust(host: str) -> tuple[str | None, bool]:
    """(CA to trust, whether proxy variables apply) for a hub host: this machine's local
    hub CA and no proxy for loopback, the system's trust and proxies otherwise."""
    if host.lower() in _LOOPBACK:
        ca = default_data_dir() / "tls" / "ca.pem"
        return (str(ca) if ca.exists() else None), False
    return None, True
