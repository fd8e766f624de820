"""``SimulatedModule``: a module (or device) identity run by the app over azure-iot-device.

It connects with a connection string, keeps the twin as the module sees it, answers
desired patches with a :class:`Behaviour`, answers direct methods from a
:class:`MethodTable` (or waits for someone to answer), sends telemetry, and reports
every step to listeners and patches to a shared ``PatchStream``.

Threads (A.15): the SDK calls our handlers on its own threads; each handler only posts
the call onto this module's loop. Everything else runs on that loop.

Reconnects: the SDK reconnects by itself (A.12). The module watches the connection
state, and once back it re-subscribes (a hub that lost its session would otherwise never
deliver another patch, A.5), fetches the twin, and if desired ``$version`` moved while
it was away, handles the difference as one desired change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from twin_explorer.connection import strings
from twin_explorer.simulator import sdk
from twin_explorer.simulator.answering import MethodAnswering
from twin_explorer.simulator.behaviour import (
    BOOKKEEPING,
    Behaviour,
    answer,
    as_behaviour,
    desired_changes,
)
from twin_explorer.simulator.device_https import Credentials, DeviceHttps, base_url
from twin_explorer.simulator.errors import (
    InvalidPatch,
    InvalidSettings,
    NotConnected,
    SimulatorError,
    Unauthorized,
    sdk_retries,
    translate,
)
from twin_explorer.simulator.events import (
    Counters,
    EventKind,
    Listener,
    ModuleEvent,
    Status,
)
from twin_explorer.simulator.inbox import Inbox, InboxMode, Outcome, ReceivedMessage
from twin_explorer.simulator.methods import MethodTable, PendingMethod
from twin_explorer.simulator.sending import TelemetrySending
from twin_explorer.simulator.transport import Transport
from twin_explorer.simulator.x509_files import X509Identity
from twin_explorer.twin import check_size, make_patch, merge_patch, utc_now, validate_section
from twin_explorer.twin.events import Direction, PatchEvent, PatchStream, Section
from twin_explorer.twin.identity import identity_path

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 75.0  # the SDK's own CONNACK watchdog is 60 s (A.4)
SHUTDOWN_TIMEOUT = 10.0
STATUS_HISTORY = 500


def _plain(section: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in section.items() if k not in BOOKKEEPING}


class SimulatedModule(MethodAnswering, TelemetrySending):
    def __init__(
        self,
        connection_string: str,
        *,
        transport: Transport | None = None,
        patches: PatchStream | None = None,
        behaviour: Behaviour = Behaviour.ECHO,
        methods: MethodTable | None = None,
        operation_timeout: float = 30.0,
        resubscribe: bool = True,
        x509: X509Identity | None = None,
        inbox_mode: InboxMode | str = InboxMode.BY_HAND,
    ) -> None:
        try:
            cs = strings.parse(connection_string)
        except strings.ConnectionStringError as exc:
            raise InvalidSettings(f"The connection string cannot be used: {exc}.") from None
        if cs.kind == "service":
            raise InvalidSettings(
                "This is a hub (service) connection string; simulating needs a module or "
                "device connection string (HostName, DeviceId, ModuleId, SharedAccessKey)."
            )
        if x509 is not None and not cs.x509:
            raise InvalidSettings(
                "With a certificate, use the identity's X.509 connection string "
                "(HostName, DeviceId, ModuleId and x509=true)."
            )
        if x509 is None and not cs.shared_access_key:
            raise InvalidSettings(
                "Only connection strings with a SharedAccessKey can be simulated here, "
                "or X.509 ones (x509=true) with the identity's certificate and key."
            )
        self.__x509 = x509  # the key: never shown, logged or repr'd
        self.__connection_string = connection_string  # never shown, logged or repr'd
        self.device_id: str = cs.device_id or ""
        self.module_id: str | None = cs.module_id
        self.host = cs.host
        self.identity = identity_path(self.device_id, self.module_id)
        self.source = f"simulator:{self.identity}"
        self.transport = transport or Transport()
        self.patches = patches
        self.behaviour = behaviour
        self.methods = methods or MethodTable()
        self.operation_timeout = operation_timeout
        self.resubscribe = resubscribe
        # Only devices receive cloud-to-device messages.
        self.inbox: Inbox | None = None
        if cs.module_id is None:
            https = DeviceHttps(
                base_url(cs.host, self.transport.https_port),
                Credentials(cs.host_name, self.device_id, cs.shared_access_key, x509),
                ca_pem=self.transport.ca_pem,
            )
            self.inbox = Inbox(self._emit, https, mode=InboxMode(inbox_mode))

        self.status = Status.IDLE
        self.reason = "not started"
        self.history: deque[ModuleEvent] = deque(maxlen=STATUS_HISTORY)
        self.twin: dict[str, Any] = {"desired": {}, "reported": {}}
        self.counters = Counters()
        self.pending: dict[str, PendingMethod] = {}
        self.last_desired_at: str | None = None

        self._listeners: list[Listener] = []
        self._client: Any = None
        self._hop: sdk.Hop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._queue: asyncio.Queue[tuple[str, dict[str, Any], asyncio.Future[None] | None]] = (
            asyncio.Queue()
        )
        # The desired document as last handled by the behaviour, and its $version.
        self._seen_desired: dict[str, Any] = {}
        self._seen_version: int | None = None
        self._starting = False
        self._state_notices = 0
        self._drop_reason: str | None = None
        self._sync_lock = asyncio.Lock()
        self._sync_again = False
        self._refresh_task: asyncio.Task[None] | None = None
        self._refresh_again = False
        self._telemetry_task: asyncio.Task[None] | None = None
        self._reconnect_task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"SimulatedModule({self.identity!r}, {self.status.value})"

    @property
    def behaviour(self) -> Behaviour:
        """How desired patches are answered; set it to a Behaviour (or its text)."""
        return self._behaviour

    @behaviour.setter
    def behaviour(self, value: Behaviour | str) -> None:
        self._behaviour = as_behaviour(value)

    @property
    def methods(self) -> MethodTable:
        return self._methods

    @methods.setter
    def methods(self, table: MethodTable) -> None:
        if not isinstance(table, MethodTable):
            raise InvalidSettings(f"Not a method table: {table!r}.")
        self._methods = table

    @property
    def is_module(self) -> bool:
        return self.module_id is not None

    @property
    def online(self) -> bool:
        return self.status.online and self._client is not None

    @property
    def desired_version(self) -> int | None:
        return self.twin.get("desired", {}).get("$version")

    # -- listeners ------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` on the loop for every event; returns an unsubscribe."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return unsubscribe

    def _emit(self, kind: EventKind, **data: Any) -> ModuleEvent:
        event = ModuleEvent(kind, self.identity, data)
        if kind is EventKind.STATUS:
            self.history.append(event)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # one broken view must not stop the module
                log.exception("simulator listener failed on %s", event.name)
        return event

    def _set_status(self, status: Status, reason: str) -> None:
        self.status, self.reason = status, reason
        log.info("%s: %s (%s)", self.identity, status.value, reason)
        self._emit(EventKind.STATUS, status=status.value, reason=reason)

    def _publish(self, direction: Direction, section: Section, body: dict, version: int | None):
        if self.patches is not None:
            self.patches.publish(
                PatchEvent(
                    self.device_id,
                    self.module_id,
                    direction,
                    section,
                    body,
                    version=version,
                    source=self.source,
                )
            )

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: background work failed", self.identity, exc_info=task.exception())

    # -- lifetime -------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, subscribe to desired patches and methods, and fetch the twin."""
        if self.status is not Status.IDLE:
            raise SimulatorError(f"{self.identity} was already started.")
        self._hop = sdk.Hop(asyncio.get_running_loop())
        self._starting = True
        self._set_status(Status.CONNECTING, f"connecting to {self.host} {self.transport.route}")
        try:
            self._client = sdk.create_client(
                self.__connection_string,
                module=self.is_module,
                x509=self.__x509,
                **self.transport.client_kwargs(),
            )
            self._spawn(self._desired_worker())
            await sdk.in_thread(self._install_client_handlers)
            await sdk.call(self._client.connect(), CONNECT_TIMEOUT, "the connection")
            self._set_status(Status.SYNCING, "connected; subscribing to desired patches, methods")
            await sdk.in_thread(self._install_receive_handlers)
            self._set_status(Status.SYNCING, "fetching the twin")
            twin = await self._refresh_twin()
            self._seen_desired = _plain(twin.get("desired", {}))
            self._seen_version = twin.get("desired", {}).get("$version")
        except Exception as exc:
            error = translate(exc)
            self._starting = False
            for task in list(self._tasks):
                task.cancel()
            await self._shutdown_client()
            self._set_status(Status.FAILED, error.text)
            raise error from None
        self._starting = False
        self._set_status(Status.CONNECTED, f"ready; desired $version {self._seen_version}")
        if self.inbox is not None:
            self.inbox.start()

    async def close(self) -> None:
        """Disconnect and stop everything this module runs; other modules are untouched."""
        if self.status is Status.CLOSED:
            return
        self.status = Status.CLOSED  # from here on, SDK events are ignored
        self.stop_telemetry()
        for pending in self.pending.values():
            pending.future.cancel()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.inbox is not None:
            await self.inbox.aclose()
        await self._shutdown_client()
        self._set_status(Status.CLOSED, "closed")

    async def _shutdown_client(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            async with asyncio.timeout(SHUTDOWN_TIMEOUT):
                await asyncio.shield(client.shutdown())
        except Exception as exc:  # the client is abandoned either way
            log.warning("%s: shutdown: %s", self.identity, translate(exc).text)

    # -- SDK side: these run on SDK threads and only post onto the loop ----------------------

    def _install_client_handlers(self) -> None:
        self._client.on_connection_state_change = self._sdk_state
        self._client.on_background_exception = self._sdk_background

    def _install_receive_handlers(self) -> None:
        self._client.on_twin_desired_properties_patch_received = self._sdk_desired
        self._client.on_method_request_received = self._sdk_method
        if self._receives_on_arrival:
            self._client.on_message_received = self._sdk_message

    @property
    def _receives_on_arrival(self) -> bool:
        return self.inbox is not None and self.inbox.mode is InboxMode.ON_ARRIVAL

    def _rearm_receive_handlers(self) -> None:
        client = self._client
        if client is None:
            return
        client.on_twin_desired_properties_patch_received = None
        client.on_method_request_received = None
        if self._receives_on_arrival:
            client.on_message_received = None
        self._install_receive_handlers()

    def _post(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._hop is not None:
            self._hop.post(fn, *args)

    def _sdk_state(self) -> None:
        client = self._client
        self._post(self._connection_changed, bool(client is not None and client.connected))

    def _sdk_background(self, exc: Exception) -> None:
        self._post(self._background_error, exc)

    def _sdk_desired(self, patch: dict[str, Any]) -> None:
        self._post(self._queue.put_nowait, ("patch", patch, None))

    def _sdk_method(self, request: Any) -> None:
        self._post(self._method_request, request)

    def _sdk_message(self, message: Any) -> None:
        self._post(self._mqtt_message, message)

    def _mqtt_message(self, message: Any) -> None:
        if self.inbox is not None and self.status is not Status.CLOSED:
            self.inbox.take_mqtt(message)

    # -- connection state (on the loop) -----------------------------------------------------

    def _connection_changed(self, connected: bool) -> None:
        """One notice per connect or disconnect; ``connected`` is read when the SDK's
        handler runs, which may be after the SDK has already reconnected."""
        self._state_notices += 1
        first = self._state_notices == 1  # the notice of the connect in start()
        if first or self._starting or self.status in (Status.CLOSED, Status.IDLE):
            return
        if connected and self.status in (Status.DISCONNECTED, Status.RECONNECTING, Status.FAILED):
            self._set_status(Status.SYNCING, "reconnected")
            self._spawn(self._catch_up())
        elif connected:
            # Connected while we thought we were: the drop and the reconnect both came
            # and went before the notice ran. Patches sent in between are lost: catch up.
            reason, self._drop_reason = self._drop_reason, None
            self._set_status(
                Status.SYNCING, f"reconnected at once after a drop ({reason or 'no reason given'})"
            )
            self._spawn(self._catch_up())
        elif self.status.online:
            reason, self._drop_reason = self._drop_reason, None
            self._set_status(Status.DISCONNECTED, reason or "the connection was lost")
            self._set_status(
                Status.RECONNECTING,
                f"the SDK reconnects at once, then every {self.transport.retry_interval} s",
            )

    def _background_error(self, exc: Exception) -> None:
        if self.status in (Status.CLOSED, Status.IDLE):
            return
        text = translate(exc).text
        if self._starting:
            log.info("%s: while starting: %s", self.identity, text)
        elif self.status.online:
            if type(exc).__name__ == "ConnectionDroppedError":
                self._drop_reason = text  # the state change that follows says it
            else:
                log.warning("%s: %s", self.identity, text)
        elif type(exc).__name__ == "ConnectionDroppedError":
            self._set_status(self.status, text)  # why the connection went, told late
        elif sdk_retries(exc):
            self._set_status(
                Status.RECONNECTING,
                f"{text} Retrying every {self.transport.retry_interval} s.",
            )
        elif isinstance(translate(exc), Unauthorized):
            self._set_status(Status.FAILED, f"{text} The SDK stopped retrying.")
        else:
            # The SDK gives up on errors it deems permanent, among them every proxy error
            # (ProtocolProxyError), which is what a stopped local hub behind its proxy
            # looks like. A simulator should come back when the hub does: retry here.
            self._set_status(
                Status.RECONNECTING,
                f"{text} Retrying every {self.transport.retry_interval} s.",
            )
            if self._reconnect_task is None or self._reconnect_task.done():
                self._reconnect_task = self._spawn(self._reconnect())

    async def _reconnect(self) -> None:
        """Connect again until it works (the SDK's state change then starts the catch-up)."""
        while self.status in (Status.DISCONNECTED, Status.RECONNECTING):
            await asyncio.sleep(self.transport.retry_interval)
            client = self._client
            if client is None or self.status not in (Status.DISCONNECTED, Status.RECONNECTING):
                return
            try:
                await sdk.call(client.connect(), CONNECT_TIMEOUT, "the connection")
            except SimulatorError as error:
                if isinstance(error, Unauthorized):
                    self._set_status(Status.FAILED, f"{error.text} Stopped retrying.")
                    return
                if self.status in (Status.DISCONNECTED, Status.RECONNECTING):
                    self._set_status(
                        Status.RECONNECTING,
                        f"attempt failed: {error.text} "
                        f"Next attempt in {self.transport.retry_interval} s.",
                    )
            else:
                return

    async def _catch_up(self) -> None:
        """After a reconnect: re-subscribe, fetch the twin, handle what changed meanwhile."""
        if self._sync_lock.locked():
            self._sync_again = True
            return
        async with self._sync_lock:
            again = True
            while again and self.status is Status.SYNCING:
                self._sync_again = False
                try:
                    await self._catch_up_once()
                except SimulatorError as error:
                    if self.status is Status.SYNCING:
                        self._set_status(Status.CONNECTED, f"catching up failed: {error.text}")
                again = self._sync_again

    def _step(self, reason: str) -> None:
        """The next catch-up step, unless the connection went away again meanwhile."""
        if self.status is not Status.SYNCING:
            raise NotConnected(f"{self.identity} lost the connection while catching up.")
        self._set_status(Status.SYNCING, reason)

    async def _catch_up_once(self) -> None:
        if self.resubscribe:
            self._step("re-subscribing to desired patches and methods")
            await sdk.in_thread(self._rearm_receive_handlers)
        self._step("fetching the twin")
        before = self._seen_version
        twin = await self._refresh_twin()
        done = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(("snapshot", dict(twin.get("desired", {})), done))
        await done
        if self.status is not Status.SYNCING:
            return
        after = self._seen_version
        if before == after:
            reason = f"up to date: desired $version {after} did not change while away"
        else:
            reason = f"caught up: desired $version {before} -> {after} handled"
        self._set_status(Status.CONNECTED, reason)

    # -- desired patches ----------------------------------------------------------------------

    async def _desired_worker(self) -> None:
        """Handles live patches and post-reconnect snapshots strictly in order."""
        while True:
            kind, body, done = await self._queue.get()
            try:
                await self._take_desired(kind, body)
            except Exception:
                log.exception("%s: handling a desired patch failed", self.identity)
            finally:
                if done is not None and not done.done():
                    done.set_result(None)

    async def _take_desired(self, kind: str, body: dict[str, Any]) -> None:
        version = body.get("$version")
        seen = self._seen_version
        if version is not None and seen is not None and version <= seen:
            return  # already handled (a duplicate, or older than a snapshot)
        if kind == "snapshot":
            changes = make_patch(self._seen_desired, _plain(body))
            self._seen_desired = _plain(body)
            origin = "catch-up"
        else:
            changes = desired_changes(body)
            self._seen_desired = merge_patch(self._seen_desired, changes)
            origin = "patch"
        self._seen_version = version
        await self._handle_desired(changes, version, origin)

    async def _handle_desired(self, changes: dict[str, Any], version: int | None, origin: str):
        now = utc_now()
        self.last_desired_at = now
        self.counters.desired_received += 1
        desired = merge_patch(self.twin.get("desired", {}), changes)
        if version is not None:
            desired["$version"] = version
        self.twin["desired"] = desired
        self._emit(EventKind.DESIRED_RECEIVED, patch=changes, version=version, origin=origin)
        self._publish(Direction.RECEIVED, Section.DESIRED, changes, version)
        self._emit(EventKind.TWIN, twin=self.twin)
        reply = answer(self.behaviour, changes, version=version, received_at=now)
        if reply is not None:
            with contextlib.suppress(SimulatorError):  # report() has told the listeners
                await self.report(reply, origin=self.behaviour.value)
        self.refresh_soon()

    # -- reported properties --------------------------------------------------------------

    def check_reported(self, patch: Any) -> None:
        """Raise InvalidPatch unless ``patch`` is a reported patch IoT Hub would take."""
        issues = validate_section("reported", patch, patch=True)
        if not issues:
            merged = merge_patch(_plain(self.twin.get("reported", {})), patch)
            size = check_size("reported", merged)
            issues = [size] if size is not None else []
        if issues:
            text = "; ".join(issue.message for issue in issues[:3])
            raise InvalidPatch(f"The reported patch is not valid: {text}.", issues)

    async def report(self, patch: dict[str, Any], *, origin: str = "manual") -> None:
        """Send a reported-properties patch (validated first); failures are told too."""
        try:
            self.check_reported(patch)
            client = self._require_online()
            await sdk.call(
                client.patch_twin_reported_properties(patch),
                self.operation_timeout,
                "the reported patch",
            )
        except SimulatorError as error:
            self.counters.reported_failed += 1
            self._emit(EventKind.REPORT_FAILED, patch=patch, origin=origin, reason=error.text)
            raise
        self.counters.reported_sent += 1
        reported = merge_patch(self.twin.get("reported", {}), patch)
        self.twin["reported"] = reported
        self._emit(EventKind.REPORTED_SENT, patch=patch, origin=origin)
        self._publish(Direction.REPORTED, Section.REPORTED, patch, None)
        self._emit(EventKind.TWIN, twin=self.twin)
        self.refresh_soon()

    def _require_online(self) -> Any:
        if not self.online:
            raise NotConnected(f"{self.identity} is not connected ({self.status.value}).")
        return self._client

    # -- the twin as the module sees it ---------------------------------------------------

    async def _refresh_twin(self) -> dict[str, Any]:
        client = self._client
        if client is None:
            raise NotConnected(f"{self.identity} is not connected.")
        twin = await sdk.call(client.get_twin(), self.operation_timeout, "the twin request")
        self.twin = {"desired": twin.get("desired", {}), "reported": twin.get("reported", {})}
        self._emit(EventKind.TWIN, twin=self.twin)
        return twin

    def refresh_soon(self) -> None:
        """Fetch the twin again in the background; requests made meanwhile coalesce."""
        if self._refresh_task is not None and not self._refresh_task.done():
            self._refresh_again = True
            return
        self._refresh_task = self._spawn(self._refresh_loop())

    async def _refresh_loop(self) -> None:
        again = True
        while again and self.online:
            self._refresh_again = False
            try:
                await self._refresh_twin()
            except SimulatorError as error:
                log.info("%s: twin refresh failed: %s", self.identity, error.text)
                return
            again = self._refresh_again

    # -- cloud-to-device messages (devices only) --------------------------------------------

    def _require_inbox(self) -> Inbox:
        if self.inbox is None:
            raise InvalidSettings("Only devices receive cloud-to-device messages; modules do not.")
        return self.inbox

    async def set_inbox_mode(self, mode: InboxMode | str) -> None:
        """Settle C2D messages by hand (HTTPS) or let MQTT complete them on arrival.

        MQTT subscribes to C2D only on arrival: subscribed, the hub would hand every
        message to the MQTT connection, which completes it, before a poll could see it.
        """
        inbox = self._require_inbox()
        mode = InboxMode(mode)
        if mode is inbox.mode:
            return
        await inbox.stop()
        inbox.mode = mode
        client = self._client
        if client is not None and self.online:
            handler = self._sdk_message if mode is InboxMode.ON_ARRIVAL else None
            try:
                await sdk.in_thread(setattr, client, "on_message_received", handler)
            except Exception as exc:
                raise translate(exc) from None
        if self.status not in (Status.IDLE, Status.FAILED, Status.CLOSED):
            inbox.start()  # an idle module starts it once connected; a failed one never

    async def settle_message(self, number: int, outcome: Outcome | str) -> ReceivedMessage:
        """Complete, reject or abandon a pending message received by hand."""
        return await self._require_inbox().settle(number, outcome)
