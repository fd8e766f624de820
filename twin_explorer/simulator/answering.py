"""Direct methods for a simulated module: a fixed answer per name, or wait for one.

A mixin of :class:`SimulatedModule`; it only needs the attributes declared below.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from twin_explorer.simulator import sdk
from twin_explorer.simulator.errors import SimulatorError
from twin_explorer.simulator.events import Counters, EventKind, ModuleEvent, Status
from twin_explorer.simulator.methods import MethodTable, Mode, PendingMethod


class MethodAnswering:
    methods: MethodTable
    pending: dict[str, PendingMethod]
    counters: Counters
    status: Status
    operation_timeout: float

    if TYPE_CHECKING:  # provided by SimulatedModule

        def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]: ...
        def _emit(self, kind: EventKind, **data: Any) -> ModuleEvent: ...
        def _require_online(self) -> Any: ...

    def _method_request(self, request: Any) -> None:
        if self.status is Status.CLOSED:
            return
        rule = self.methods.rule_for(request.name)
        if rule.mode is Mode.FIXED:
            self._spawn(self._answer(request, rule.status, rule.payload, "rule"))
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
        self._spawn(self._wait_for_answer(request, pending))

    async def _wait_for_answer(self, request: Any, pending: PendingMethod) -> None:
        try:
            async with asyncio.timeout(pending.remaining()):
                status, payload = await asyncio.shield(pending.future)
        except TimeoutError:
            pending.future.cancel()
            self._unanswered(request, f"nobody answered within {pending.timeout:g} s")
            return
        finally:
            self.pending.pop(pending.request_id, None)
        await self._answer(request, status, payload, "user")

    async def _answer(self, request: Any, status: int, payload: Any, how: str) -> None:
        try:
            client = self._require_online()
            await sdk.call(
                client.send_method_response(sdk.method_response(request, status, payload)),
                self.operation_timeout,
                "the method response",
            )
        except SimulatorError as error:
            self._unanswered(request, f"the answer could not be sent: {error.text}")
            return
        self.counters.methods_answered += 1
        self._emit(
            EventKind.METHOD_ANSWERED,
            name=request.name,
            request_id=request.request_id,
            request=request.payload,
            status=status,
            payload=payload,
            by=how,
        )

    def _unanswered(self, request: Any, reason: str) -> None:
        expired = EventKind.METHOD_EXPIRED
        self._emit(expired, name=request.name, request_id=request.request_id, reason=reason)
