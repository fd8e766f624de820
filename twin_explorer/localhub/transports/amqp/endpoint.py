"""One device or module speaking over an AMQP connection: the core's delivery target.

An AMQP connection may carry several identities (CBS authenticates each: .NET
multiplexes devices), so each identity gets an :class:`IdentityEndpoint` of its own,
and that is what joins the core's presence (one connection per identity, connection
state, method routing, C2D). It knows its identity's links on the connection: the
twin receiver (responses and desired pushes), the method receiver (requests), the C2D
receiver and every link its token authorised (detached when the token expires).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twin_explorer.localhub.core.device_ops import encode_json
from twin_explorer.localhub.transports.amqp import messages

if TYPE_CHECKING:
    from twin_explorer.localhub.core.auth import Identity
    from twin_explorer.localhub.core.c2d import C2DMessage
    from twin_explorer.localhub.protocols.amqp import Link
    from twin_explorer.localhub.transports.amqp.connection import AmqpConnection

logger = logging.getLogger(__name__)

# Method requests a connection may leave unanswered before older ids are forgotten
# (the core times the calls out; this only bounds the map).
MAX_PENDING_METHODS = 1000


class IdentityEndpoint:
    """The links of one identity on one connection (see module doc)."""

    def __init__(self, connection: AmqpConnection, identity: Identity) -> None:
        self.connection = connection
        self.identity = identity
        self.links: set[Link] = set()
        self.twin_receiver: Link | None = None
        self.methods_receiver: Link | None = None
        self.c2d_receiver: Link | None = None
        self.desired = False  # subscribed to desired patches (twin PUT)
        # Method request correlation ids (uuid) -> the core's request ids.
        self.methods: dict[uuid.UUID, str] = {}
        # C2D delivery tags -> the core's lock tokens.
        self.c2d_locks: dict[bytes, str] = {}
        self.joined = False

    def __repr__(self) -> str:
        return f"<IdentityEndpoint {self.identity.client_id} on {self.connection.name}>"

    # -- links ---------------------------------------------------------------------------

    def forget(self, link: Link) -> None:
        self.links.discard(link)
        if link is self.twin_receiver:
            self.twin_receiver = None
            self.desired = False
        if link is self.methods_receiver:
            self.methods_receiver = None
        if link is self.c2d_receiver:
            self.c2d_receiver = None
            # Unsettled messages on it come again (IoT Hub's lock runs out the same way).
            locks, self.c2d_locks = self.c2d_locks, {}
            for lock in locks.values():
                self.connection.core.abandon_c2d(self.identity.device_id, lock)

    # -- DeliveryTarget ------------------------------------------------------------------

    def _on_loop(self, handler: Callable[..., Any], *args: Any) -> None:
        connection = self.connection
        if threading.get_ident() == connection.loop_thread:
            handler(*args)
        elif not connection.loop.is_closed():
            connection.loop.call_soon_threadsafe(handler, *args)

    @property
    def accepts_methods(self) -> bool:
        return self.connection.open and self.methods_receiver is not None

    def deliver_method(self, name: str, rid: str, payload: bytes) -> bool:
        link = self.methods_receiver
        if link is None or not self.connection.open:
            return False
        request_id = uuid.uuid4()
        self.methods[request_id] = rid
        while len(self.methods) > MAX_PENDING_METHODS:
            self.methods.pop(next(iter(self.methods)))
        return self.connection.push(link, messages.method_request(request_id, name, payload))

    def method_rid(self, correlation: Any) -> str | None:
        """The core's request id a method response answers, by its correlation id."""
        if isinstance(correlation, bytes) and len(correlation) == 16:
            correlation = uuid.UUID(bytes=correlation)
        elif isinstance(correlation, str):
            try:
                correlation = uuid.UUID(correlation)
            except ValueError:
                return None
        if not isinstance(correlation, uuid.UUID):
            return None
        return self.methods.pop(correlation, None)

    def deliver_desired(self, patch: dict[str, Any]) -> None:
        self._on_loop(self._push_desired, patch)

    def _push_desired(self, patch: dict[str, Any]) -> None:
        link = self.twin_receiver
        if link is None or not self.desired or not self.connection.open:
            return
        self.connection.push(link, messages.desired_push(encode_json(patch), patch["$version"]))

    @property
    def accepts_c2d(self) -> bool:
        link = self.c2d_receiver
        return (
            self.connection.open
            and link is not None
            and self.identity.module_id is None
            and link.credit > 0
        )

    def deliver_c2d(self, message: C2DMessage) -> bool:
        """Unsettled, with a 16-byte tag; the device's disposition settles it (C.7)."""
        link = self.c2d_receiver
        if link is None or threading.get_ident() != self.connection.loop_thread:
            return False
        assert message.lock_token is not None
        tag = uuid.uuid4().bytes
        wire = messages.c2d_message(
            message.message_id,
            message.device_id,
            message.body,
            message.properties,
            message.expiry_ns,
            message.enqueued_ns,
            message.delivery_count,
            message.lock_token,
        )
        if not self.connection.send_now(link, wire, settled=False, tag=tag):
            return False
        self.c2d_locks[tag] = message.lock_token
        return True

    def settle_c2d(self, tag: bytes, outcome: str) -> None:
        """The device's disposition of a C2D message: complete, reject or abandon."""
        lock = self.c2d_locks.pop(bytes(tag), None)
        if lock is None:
            return
        core, device_id = self.connection.core, self.identity.device_id
        if outcome == "complete":
            core.complete_c2d(device_id, lock)
        elif outcome == "reject":
            core.reject_c2d(device_id, lock)
        else:
            core.abandon_c2d(device_id, lock)

    def close(self, reason: str) -> None:
        self._on_loop(self.connection.drop_identity, self, reason)
