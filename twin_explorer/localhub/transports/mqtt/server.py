"""The local hub's device endpoint: MQTT 3.1.1 over TLS, as azure-iot-device speaks it.

:class:`MqttServer` owns the listener, one :class:`DeviceLink` task per connection, the
MQTT sessions that outlive connections, and a periodic keep-alive check. Everything IoT
Hub decides (who may connect, who is online, twin operations, direct methods) is the
core's; the links only translate. Reference sections: A (device side) and F.

Rules it keeps (checklist F):
- CONNACK 0, or 5 for every authentication failure (never 1, A.4).
- One connection per identity (core presence): a newer CONNECT closes the older
  connection, so two processes using one identity knock each other off, as on IoT Hub.
- Clean-session-0 sessions keep subscriptions and un-acked QoS 1 messages across
  reconnects; the SDK never re-subscribes (A.5). Their subscriptions are also saved in the
  hub's store, so they survive a hub restart too.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from OpenSSL import SSL

from twin_explorer.localhub.core.events import HubEvent, IdentityDeleted
from twin_explorer.localhub.protocols.mqtt import Disconnected
from twin_explorer.localhub.transports.listeners import (
    ConnectionGate,
    GatedServer,
    abort_when_done,
)
from twin_explorer.localhub.transports.mqtt.link import MAX_OUTBOUND, DeviceLink
from twin_explorer.localhub.transports.mqtt.sessions import MqttSessions
from twin_explorer.twin.identity import identity_path

if TYPE_CHECKING:
    from twin_explorer.localhub.core.hub import HubCore

logger = logging.getLogger(__name__)

SWEEP_INTERVAL = 1.0  # seconds between keep-alive checks
IOTHUB_PORT = 8883  # the port devices dial (A.1)


class MqttServer(GatedServer):
    """Device-side MQTT server over ``core``.

    ``start(host, port)`` listens; ``close()`` (or leaving ``async with``) ends everything.
    ``clock`` (seconds) drives keep-alive checks only; the core keeps its own time.
    """

    name = "MQTT"
    scheme = "mqtts"
    iothub_port = IOTHUB_PORT

    def __init__(
        self,
        core: HubCore,
        tls: SSL.Context | None,
        *,
        clock: Callable[[], float] = time.time,
        sweep_interval: float = SWEEP_INTERVAL,
        max_outbound: int = MAX_OUTBOUND,
        gate: ConnectionGate | None = None,
    ) -> None:
        super().__init__(gate, tls)
        self.core = core
        self._clock = clock
        self._sweep_interval = sweep_interval
        self._max_outbound = max_outbound
        self._mqtt_sessions = MqttSessions(core.store)
        self.sessions = self._mqtt_sessions.sessions
        self._links: dict[DeviceLink, asyncio.Task[None]] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._unsubscribe = core.events.subscribe(self._on_event)

    # -- lifetime -----------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on ``host:port`` (0: the OS chooses) and return the bound port."""
        self._check_startable()
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        # The gate runs TLS with its handshake timeout and closes a connection that
        # sends no CONNECT in its header timeout; keep-alive rules once admitted.
        bound = await self._listen(host, port)
        self._sweeper = self._loop.create_task(self._sweep_forever())
        return bound

    async def close(self) -> None:
        """Stop listening, fail method calls pending on our connections, close every
        connection and wait for every task. Safe to call more than once."""
        self._unsubscribe()
        self._unsubscribe = lambda: None
        server = await self._stop_listening()
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            sweeper.cancel()
        self.core.methods.abort({link.identity.client_id for link in self._links if link.identity})
        tasks = list(self._links.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, *([sweeper] if sweeper else []), return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    def _start(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, via: str
    ) -> asyncio.Task[None] | None:
        if self._closed:
            writer.transport.abort()
            return None
        transport = writer.transport
        link = DeviceLink(
            self.core,
            self._mqtt_sessions,
            reader,
            writer,
            self._clock,
            settled=lambda: self._gate.settled(transport),
            max_outbound=self._max_outbound,
            via=via,
        )
        logger.debug("%s connection from %s", via, link.peer)
        task = asyncio.get_running_loop().create_task(link.run())
        self._links[link] = task
        task.add_done_callback(lambda _: self._links.pop(link, None))
        abort_when_done(task, writer)
        return task

    # -- what the core tells us ---------------------------------------------------------

    def _on_event(self, event: HubEvent) -> None:
        """A deleted identity's sessions go with it (the core closes its connections)."""
        if not isinstance(event, IdentityDeleted) or self._closed or self._loop is None:
            return
        if threading.get_ident() == self._loop_thread:
            self._mqtt_sessions.discard(event.device_id, event.module_id)
        else:
            self._loop.call_soon_threadsafe(
                self._mqtt_sessions.discard, event.device_id, event.module_id
            )

    # -- inspection and control ---------------------------------------------------------

    @property
    def connection_count(self) -> int:
        """Open connections, authenticated or not."""
        return len(self._links)

    def connected_clients(self) -> list[str]:
        """Client ids (``d`` or ``d/m``) with a live, accepted MQTT connection."""
        return [cid for cid in self.core.presence.online() if self._link(cid) is not None]

    def _link(self, client_id: str) -> DeviceLink | None:
        link = self.core.presence.target(client_id)
        return link if isinstance(link, DeviceLink) and link.connected else None

    def disconnect(self, device_id: str, module_id: str | None = None) -> bool:
        """Drop an identity's connection as a network failure would; the SDK reconnects."""
        link = self.core.presence.target(identity_path(device_id, module_id))
        if not isinstance(link, DeviceLink):
            return False
        link.close("dropped by the hub", abort=True)
        return True

    def check_timeouts(self) -> int:
        """Close connections silent for more than 1.5 x keep-alive (or without CONNECT in
        time); returns how many. Runs every ``sweep_interval`` seconds by itself."""
        now = self._clock()
        closed = 0
        for link in list(self._links):
            if link.conn.check_timeout(now):
                event = link.conn.next_event()
                why = (
                    f"{event.reason.value}: {event.detail}"
                    if isinstance(event, Disconnected)
                    else ""
                )
                link.close(why or "timed out", abort=True)
                closed += 1
        return closed

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval)
            try:
                self.check_timeouts()
            except Exception:
                logger.exception("keep-alive check failed")
