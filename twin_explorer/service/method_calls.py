"""Direct method calls the app makes: each one outlives whatever window started it.

A call runs as a task owned here (not by the dialog that asked for it), so closing the
dialog never cancels the call or loses its answer: the answer goes into the patch stream
as a method-call event and to ``on_finished`` (the window's status line) either way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from twin_explorer.service.errors import DeviceOffline, MethodTimeout, ServiceError
from twin_explorer.service.hub import HubService
from twin_explorer.twin.events import Direction, PatchStream, method_call
from twin_explorer.twin.identity import identity_path

SOURCE = "method"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MethodCall:
    """One finished call: the answer (status and payload) or the error in words."""

    device_id: str
    module_id: str | None
    name: str
    payload: Any
    seconds: float
    status: int | None = None
    response: Any = None
    error: str | None = None
    answered_by: str = ""

    @property
    def identity(self) -> str:
        return identity_path(self.device_id, self.module_id)

    @property
    def answered(self) -> bool:
        return self.status is not None

    def summary(self) -> str:
        head = f"{self.name} on {self.identity}"
        if self.answered:
            return f"{head}: status {self.status} in {self.seconds:.1f} s."
        return f"{head}: {self.error}"


def _answered_by(error: ServiceError) -> str:
    if isinstance(error, MethodTimeout):
        return "timeout"
    if isinstance(error, DeviceOffline):
        return "nobody: not connected"
    return "nobody: failed"


class MethodCalls:
    """Starts calls, keeps them running until they end, logs each to the patch stream."""

    def __init__(self, patches: PatchStream | None = None) -> None:
        self.patches = patches
        self.on_finished: Callable[[MethodCall], None] = lambda call: None
        self._tasks: set[asyncio.Task[MethodCall]] = set()

    @property
    def running(self) -> int:
        return len(self._tasks)

    def start(self, service: HubService, *args: Any, **kwargs: Any) -> asyncio.Task[MethodCall]:
        """``call`` as a task kept here; await it (or not) for the ``MethodCall``."""
        task = asyncio.ensure_future(self.call(service, *args, **kwargs))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def call(
        self,
        service: HubService,
        device_id: str,
        module_id: str | None,
        name: str,
        payload: Any = None,
        *,
        response_timeout: int = 30,
        connect_timeout: int = 0,
    ) -> MethodCall:
        started = time.monotonic()
        call = partial(MethodCall, device_id, module_id, name, payload)
        try:
            result = await service.invoke_method(
                device_id,
                module_id,
                name,
                payload,
                response_timeout=response_timeout,
                connect_timeout=connect_timeout,
            )
        except ServiceError as error:
            done = call(
                time.monotonic() - started, error=error.text, answered_by=_answered_by(error)
            )
        else:
            done = call(
                time.monotonic() - started,
                status=result.status,
                response=result.payload,
                answered_by="module" if module_id else "device",
            )
        self._log(done)
        try:
            self.on_finished(done)
        except Exception:  # a broken status line must not lose the answer
            log.exception("telling that a method call ended failed")
        return done

    def _log(self, call: MethodCall) -> None:
        if self.patches is None:
            return
        self.patches.publish(
            method_call(
                call.device_id,
                call.module_id,
                Direction.SENT,
                name=call.name,
                payload=call.payload,
                status=call.status,
                response=call.response,
                seconds=call.seconds,
                answered_by=call.answered_by,
                error=call.error,
                source=SOURCE,
            )
        )

    async def aclose(self) -> None:
        """Shutdown: end the calls still waiting (the hub ends them on its side)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
