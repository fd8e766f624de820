"""Telemetry for a simulated module: one message, or a stream from a template.

A mixin of :class:`SimulatedModule`; it only needs the attributes declared below.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from twin_explorer.simulator import sdk
from twin_explorer.simulator.errors import InvalidSettings, SimulatorError
from twin_explorer.simulator.events import Counters, EventKind, ModuleEvent
from twin_explorer.simulator.telemetry import TelemetryTemplate


def check_message(body: object, properties: object) -> tuple[str, dict[str, str]]:
    """A message as the SDK takes it: text, and names with text values."""
    if not isinstance(body, str):
        raise InvalidSettings("A telemetry message body is text (JSON, sent as UTF-8).")
    props = {} if properties is None else properties
    if not isinstance(props, dict) or not all(
        isinstance(k, str) and k and isinstance(v, str) for k, v in props.items()
    ):
        raise InvalidSettings("Message properties are names with text values.")
    return body, dict(props)


class TelemetrySending:
    counters: Counters
    operation_timeout: float
    _telemetry_task: asyncio.Task[None] | None

    if TYPE_CHECKING:  # provided by SimulatedModule

        def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]: ...
        def _emit(self, kind: EventKind, **data: Any) -> ModuleEvent: ...
        def _require_online(self) -> Any: ...

    async def send_telemetry(self, body: str, properties: dict[str, str] | None = None) -> bool:
        """Send one message; True when the hub acknowledged it. Counted either way.

        ``body`` is text and ``properties`` names with text values (InvalidSettings
        otherwise, before anything is sent or counted).
        """
        body, properties = check_message(body, properties)
        shown = {
            "body": body,
            "properties": properties,
            "content_type": sdk.CONTENT_TYPE,
            "content_encoding": sdk.CONTENT_ENCODING,
        }
        try:
            client = self._require_online()
            await sdk.call(
                client.send_message(sdk.message(body, properties)),
                self.operation_timeout,
                "the telemetry message",
            )
        except SimulatorError as error:
            self.counters.telemetry_failed += 1
            self._emit(
                EventKind.TELEMETRY_FAILED,
                reason=error.text,
                failed=self.counters.telemetry_failed,
                **shown,
            )
            return False
        self.counters.telemetry_sent += 1
        self._emit(EventKind.TELEMETRY_SENT, sent=self.counters.telemetry_sent, **shown)
        return True

    @property
    def telemetry_running(self) -> bool:
        return self._telemetry_task is not None and not self._telemetry_task.done()

    def start_telemetry(self, template: TelemetryTemplate, interval: float) -> None:
        """Send a message from ``template`` every ``interval`` seconds until stopped."""
        if not isinstance(template, TelemetryTemplate):
            raise InvalidSettings(f"Not a telemetry template: {template!r}.")
        if isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0:
            raise InvalidSettings("The telemetry interval must be more than 0 seconds.")
        interval = float(interval)
        self.stop_telemetry()
        self._telemetry_task = self._spawn(self._telemetry_loop(template, interval))

    def stop_telemetry(self) -> None:
        if self._telemetry_task is not None:
            self._telemetry_task.cancel()
            self._telemetry_task = None

    async def _telemetry_loop(self, template: TelemetryTemplate, interval: float) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        counter = 0
        while True:
            counter += 1
            message = template.render(counter)
            await self.send_telemetry(message.body, message.properties)
            next_at += interval
            delay = next_at - loop.time()
            if delay < 0:  # a slow send: skip ahead rather than burst to catch up
                next_at, delay = loop.time(), 0.0
            await asyncio.sleep(delay)
