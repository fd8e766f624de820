"""Direct methods on the device side: deliver a request, wait for its answer (A.9, B.7).

:class:`DirectMethods` routes a call from any service-side caller (REST today) to the
identity's current connection, whatever its protocol: it knows connections only as
protocol-neutral delivery targets (``core.presence``), so it holds no socket and tests
drive it with a fake target.
Every wait is bounded by the caller's timeouts and every pending call ends when the hub
closes.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from twin_explorer.localhub.core.device_ops import decode_json, encode_json
from twin_explorer.localhub.errors import (
    HubError,
    argument_invalid,
    device_not_online,
    gateway_timeout,
)
from twin_explorer.twin.identity import identity_path

logger = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 128 * 1024  # each way (C.6)


def hub_closing() -> HubError:
    return HubError(503, "ServiceUnavailable", 503000, "The local hub is shutting down.")


class MethodTarget(Protocol):
    """A connection that can take a method request (a live, subscribed device link)."""

    def deliver_method(self, name: str, rid: str, payload: bytes) -> bool: ...


@dataclass
class _Pending:
    client_id: str
    name: str
    future: asyncio.Future[tuple[int, Any]]
    deadline: float  # loop time by which the device must answer


class DirectMethods:
    """Pending method calls by request id, and callers waiting for a device to come online.

    ``find_target(client_id)`` returns the connection of an identity that is connected and
    takes method requests, or None. Presence calls :meth:`target_ready` whenever that may
    have become true (connect, subscribe).
    """

    def __init__(self, find_target: Callable[[str], MethodTarget | None]) -> None:
        self._find_target = find_target
        self._pending: dict[str, _Pending] = {}
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}
        self._idle: list[asyncio.Future[None]] = []  # wait_idle() callers
        # Short, URL-safe request ids, as the hub's own small hex numbers (A.9).
        self._ids = itertools.count(1)
        self._closed = False

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    def deadline(self, rid: str) -> float | None:
        """The loop time by which the call sent as request ``rid`` must be answered (its
        caller's response timeout from delivery), None if no call waits for ``rid``."""
        pending = self._pending.get(rid)
        return None if pending is None else pending.deadline

    async def wait_idle(self) -> None:
        """Return once no method call is pending (answered, timed out or given up)."""
        while self._pending:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._idle.append(waiter)
            await waiter

    async def invoke_method(
        self,
        device_id: str,
        module_id: str | None,
        name: str,
        payload: Any,
        response_timeout: float,
        connect_timeout: float,
    ) -> tuple[int, Any]:
        """Deliver ``name`` to the identity and return the device's ``(status, payload)``.

        HubError 404103 when it is not connected and subscribed within ``connect_timeout``
        (0: it must be already), 504101 when it does not answer within ``response_timeout``.
        """
        if self._closed:
            raise hub_closing()
        body = encode_json(payload)  # None -> b"null", which the SDK reads as None (A.9)
        if len(body) > MAX_PAYLOAD_BYTES:
            raise argument_invalid(
                f"The method payload is {len(body)} bytes; the limit is {MAX_PAYLOAD_BYTES}."
            )
        client_id = identity_path(device_id, module_id)
        target = await self._wait_for_target(client_id, connect_timeout)
        rid = format(next(self._ids), "x")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[int, Any]] = loop.create_future()
        deadline = loop.time() + response_timeout
        self._pending[rid] = _Pending(client_id, name, future, deadline)
        try:
            if not target.deliver_method(name, rid, body):
                raise device_not_online()
            logger.debug("method %r sent to %s as request %s", name, client_id, rid)
            try:
                async with asyncio.timeout_at(deadline):
                    return await future
            except TimeoutError:
                logger.info("method %r on %s: no answer in %gs", name, client_id, response_timeout)
                raise gateway_timeout() from None
        finally:
            self._pending.pop(rid, None)
            if not self._pending:
                idle, self._idle = self._idle, []
                for waiter in idle:
                    if not waiter.done():
                        waiter.set_result(None)

    async def _wait_for_target(self, client_id: str, connect_timeout: float) -> MethodTarget:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, connect_timeout)
        while True:
            target = self._find_target(client_id)
            if target is not None:
                return target
            remaining = deadline - loop.time()
            if remaining <= 0 or self._closed:
                raise device_not_online()
            logger.debug(
                "method call for %s waits up to %.3gs for it to connect", client_id, remaining
            )
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.setdefault(client_id, set()).add(waiter)
            try:
                async with asyncio.timeout(remaining):
                    await waiter
            except TimeoutError:
                pass
            finally:
                waiters = self._waiters.get(client_id)
                if waiters is not None:
                    waiters.discard(waiter)
                    if not waiters:
                        del self._waiters[client_id]

    def target_ready(self, client_id: str) -> None:
        """Wake callers waiting for ``client_id`` to connect and subscribe; they re-check."""
        for waiter in self._waiters.get(client_id, ()):
            if not waiter.done():
                waiter.set_result(None)

    def complete(self, client_id: str, rid: str, status: int, body: bytes) -> bool:
        """A device answered (``$iothub/methods/res/<status>/?$rid=<rid>``). False if no
        call of that identity waits for ``rid`` (late, duplicate or forged)."""
        pending = self._pending.get(rid)
        if pending is None or pending.client_id != client_id or pending.future.done():
            logger.debug("method response %s from %s matches no pending call", rid, client_id)
            return False
        if len(body) > MAX_PAYLOAD_BYTES:
            pending.future.set_exception(
                argument_invalid(
                    f"The device answered {pending.name!r} with {len(body)} bytes; "
                    f"the limit is {MAX_PAYLOAD_BYTES}."
                )
            )
            return True
        try:
            payload = decode_json(body, "method response payload") if body else None
        except HubError as error:
            pending.future.set_exception(error)
            return True
        pending.future.set_result((status, payload))
        return True

    def abort(self, client_ids: set[str]) -> None:
        """Fail the pending calls to these identities: their transport is going away."""
        for pending in list(self._pending.values()):
            if pending.client_id in client_ids and not pending.future.done():
                pending.future.set_exception(hub_closing())

    def close(self) -> None:
        """Fail every pending call and wake every waiter: the hub is going away."""
        self._closed = True
        for pending in list(self._pending.values()):
            if not pending.future.done():
                pending.future.set_exception(hub_closing())
        for waiters in list(self._waiters.values()):
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
