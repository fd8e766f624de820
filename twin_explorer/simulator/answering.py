"""Direct methods for a simulated module: a fixed answer per name, or wait for one.

A mixin of :class:`SimulatedModule`; it only needs the attributes declared below.
Every call ends in one ``method_answered`` or ``method_expired`` event for listeners,
and one method-call event in the patch stream (who answered, how long it took).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from twin_explorer.simulator import sdk
from twin_explorer.simulator.errors import SimulatorError
from twin_explorer.simulator.events import Counters, EventKind, ModuleEvent, Status
from twin_explorer.simulator.methods import MethodTable, Mode, PendingMethod
from twin_explorer.twin.events import Direction, PatchStream, method_call

# Who answered, as the patch log says it.
BY_RULE = "rule"
BY_USER = "asked: answered by you"
BY_NOBODY = "timeout"


class MethodAnswering:
    methods: MethodTable
    pending: dict[str, PendingMethod]
    counters: Counters
    status: Status
    operation_timeout: float
    patches: PatchStream | None
    device_id: str
    module_id: str | None
    source: str

    if TYPE_CHECKING:  # provided by SimulatedModule

        def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]: ...
        def _emit(self, kind: EventKind, **data: Any) -> ModuleEvent: ...
        def _require_online(self) -> Any: ...

    def _method_request(self, request: Any) -> None:
        if self.status is Status.CLOSED:
            return
        started = time.monotonic()
        rule = self.methods.rule_for(request.name)
        if rule.mode is Mode.FIXED:
            self._spawn(self._answer(request, rule.status, rule.payload, BY_RULE, started))
            return
        future = asyncio.get_running_loop().create_future()
        pending = PendingMethod(
            request.request_id, request.name, request.payload, self.methods.ask_timeout, future
        )
        self.pending[pending.request_id] = pending
        self._emit(
            EventKind.METHOD_REQUESTED,
            name=request.name,
            request_id=request.request_id,
            payload=request.payload,
            timeout=pending.timeout,
        )
        self._spawn(self._wait_for_answer(request, pending, started))

    async def _wait_for_answer(self, request: Any, pending: PendingMethod, started: float) -> None:
        try:
            async with asyncio.timeout(pending.remaining()):
                status, payload = await asyncio.shield(pending.future)
        except TimeoutError:
            pending.future.cancel()
            reason = f"nobody answered within {pending.timeout:g} s"
            self._unanswered(request, reason, BY_NOBODY, started)
            return
        finally:
            self.pending.pop(pending.request_id, None)
        await self._answer(request, status, payload, BY_USER, started)

    async def _answer(self, request: Any, status: int, payload: Any, by: str, started: float):
        try:
            client = self._require_online()
            await sdk.call(
                client.send_method_response(sdk.method_response(request, status, payload)),
                self.operation_timeout,
                "the method response",
            )
        except SimulatorError as error:
            self._unanswered(request, f"the answer could not be sent: {error.text}", by, started)
            return
        self.counters.methods_answered += 1
        self._emit(
            EventKind.METHOD_ANSWERED,
            name=request.name,
            request_id=request.request_id,
            request=request.payload,
            status=status,
            payload=payload,
            by=by,
        )
        self._publish_call(request, started, by, status=status, response=payload)

    def _unanswered(self, request: Any, reason: str, by: str, started: float) -> None:
        expired = EventKind.METHOD_EXPIRED
        self._emit(expired, name=request.name, request_id=request.request_id, reason=reason)
        self._publish_call(request, started, by, status=None, error=reason)

    def _publish_call(self, request: Any, started: float, by: str, **outcome: Any) -> None:
        if self.patches is None:
            return
        self.patches.publish(
            method_call(
                self.device_id,
                self.module_id,
                Direction.RECEIVED,
                name=request.name,
                payload=request.payload,
                seconds=time.monotonic() - started,
                answered_by=by,
                source=self.source,
                **outcome,
            )
        )
