"""The AMQP side of C2D with uamqp (azure-iot-hub's own dependency), on the caller's
:class:`~twin_explorer.service.io_thread.IoThread` loop.

Why not ``IoTHubRegistryManager.send_c2d_message``: its client always dials port 5671 of
the host name with the system's trust, so it cannot reach the local hub, and it has no
feedback receiver. Here the sender link stays open between sends (reopened after a
failure), and the feedback receiver, started on demand, completes each feedback message
once its records are handed on and reconnects after losing the hub."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from twin_explorer.connection.redact import redact
from twin_explorer.service.c2d.endpoint import C2DEndpoint
from twin_explorer.service.c2d.feedback import FeedbackRecord, parse_feedback
from twin_explorer.service.c2d.message import MAX_MESSAGE_BYTES, OutgoingMessage, to_amqp

log = logging.getLogger(__name__)

SEND_TIMEOUT = 30.0
CLOSE_TIMEOUT = 5.0
FEEDBACK_PREFETCH = 10
RETRY_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)
KEEP_ALIVE = 120


class C2DError(Exception):
    """Why a message did not go, as a sentence for the person who sent it."""


def explain(
    error: BaseException, message: OutgoingMessage | None = None, *, entra: bool = False
) -> str:
    """A uamqp error in plain words (never a key or token); ``entra`` for a signed-in
    account (a role, not a policy, decides)."""
    from uamqp import errors

    condition = str(getattr(error, "condition", "") or "")
    said = redact(str(error))
    device = f"{message.device_id!r}" if message is not None else "this device"
    if condition.endswith("NotFound"):
        return f"The hub has no device {device}: it may have been deleted."
    if condition.endswith("ResourceLimitExceeded"):
        return (
            f"The queue of device {device} is full: IoT Hub keeps at most 50 messages for a "
            "device until it takes them. Let the device connect and take them, or purge "
            "its queue."
        )
    if condition.endswith("MessageSizeExceeded"):
        return f"The message is too large: IoT Hub takes at most {MAX_MESSAGE_BYTES:,} bytes."
    refused = isinstance(error, errors.AuthenticationException)
    if entra and (refused or condition.endswith("UnauthorizedAccess")):
        return (
            "The hub refused your account: sending messages needs a role with the Service "
            "connect permission on this hub, such as IoT Hub Data Contributor."
        )
    if refused or condition.endswith("UnauthorizedAccess"):
        return (
            "The hub refused this connection: its shared access policy (or your role) needs "
            "the Service connect permission to send messages, or the key is no longer valid."
        )
    if isinstance(error, TimeoutError):
        return (
            "The hub did not answer over AMQP in time: check the network, a firewall (AMQP "
            "uses port 5671) and that the hub's certificate is trusted."
        )
    if isinstance(error, (errors.AMQPConnectionError, ConnectionError, OSError)):
        return (
            "The hub could not be reached over AMQP: check the network and a firewall "
            "(AMQP uses port 5671)."
        )
    if isinstance(error, errors.ClientMessageError):
        return f"The hub refused the message: {said}"
    return f"Sending failed unexpectedly: {said}"


async def _close(client: Any) -> None:
    with contextlib.suppress(Exception, TimeoutError):
        async with asyncio.timeout(CLOSE_TIMEOUT):
            await client.close_async()


class C2DClient:
    """One hub's C2D sender and feedback receiver. Every method runs on the I/O loop;
    ``on_feedback`` and ``on_feedback_problem`` are called there too."""

    def __init__(
        self,
        endpoint: C2DEndpoint,
        on_feedback: Callable[[list[FeedbackRecord]], None],
        on_feedback_problem: Callable[[str | None], None] = lambda text: None,
    ) -> None:
        self.endpoint = endpoint
        self.on_feedback = on_feedback
        self.on_feedback_problem = on_feedback_problem  # None: receiving again
        self._sender: Any = None
        self._send_lock: asyncio.Lock | None = None
        self._feedback: asyncio.Task[None] | None = None
        self._entra = endpoint.credential is not None

    async def send(self, message: OutgoingMessage) -> None:
        """Send and wait for the hub to take it; ``C2DError`` with the reason if not."""
        from uamqp import SendClientAsync

        if self._send_lock is None:
            self._send_lock = asyncio.Lock()
        async with self._send_lock:  # one at a time: the link keeps their order
            try:
                async with asyncio.timeout(SEND_TIMEOUT):
                    if self._sender is None:
                        self._sender = SendClientAsync(
                            f"{self.endpoint.address}/messages/devicebound",
                            auth=self.endpoint.auth(),
                            keep_alive_interval=KEEP_ALIVE,
                        )
                    await self._sender.send_message_async(to_amqp(message))
            except Exception as exc:
                # A refused message leaves the link usable; anything else reopens it.
                if not _message_refusal(exc):
                    sender, self._sender = self._sender, None
                    if sender is not None:
                        await _close(sender)
                log.info("C2D send failed: %s %s", type(exc).__name__, redact(str(exc)))
                raise C2DError(explain(exc, message, entra=self._entra)) from None

    def want_feedback(self) -> None:
        """Start the feedback receiver unless it runs."""
        if self._feedback is None or self._feedback.done():
            self._feedback = asyncio.get_running_loop().create_task(self._receive_feedback())

    async def _receive_feedback(self) -> None:
        from uamqp import ReceiveClientAsync
        from uamqp.constants import ReceiverSettleMode

        failures = 0
        while True:
            client = ReceiveClientAsync(
                f"{self.endpoint.address}/messages/serviceBound/feedback",
                auth=self.endpoint.auth(),
                receive_settle_mode=ReceiverSettleMode.PeekLock,
                auto_complete=False,
                prefetch=FEEDBACK_PREFETCH,
                keep_alive_interval=KEEP_ALIVE,
            )
            try:
                async for received in client.receive_messages_iter_async():
                    if failures:
                        self.on_feedback_problem(None)
                    failures = 0
                    records = parse_feedback(b"".join(received.get_data()))
                    if records:
                        self.on_feedback(records)
                    received.accept()  # handed on: the hub may forget it
            except asyncio.CancelledError:
                await _close(client)
                raise
            except Exception as exc:
                log.info("C2D feedback receiver: %s %s", type(exc).__name__, redact(str(exc)))
                self.on_feedback_problem(f"No feedback for now: {explain(exc, entra=self._entra)}")
            await _close(client)
            delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
            failures += 1
            await asyncio.sleep(delay)

    async def close(self) -> None:
        task, self._feedback = self._feedback, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        sender, self._sender = self._sender, None
        if sender is not None:
            await _close(sender)


def _message_refusal(error: BaseException) -> bool:
    from uamqp import errors

    return isinstance(error, errors.ClientMessageError)
