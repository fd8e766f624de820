"""Who is online: one live connection per identity, whatever protocol it came over.

A transport hands each accepted connection to :class:`Presence` as a
:class:`DeliveryTarget`: the protocol-neutral way the core reaches a device (a method
request, a desired patch, a cloud-to-device message, or close). A newer connection of
the same identity closes the older one, as on IoT Hub, so two processes using one
identity knock each other off in a loop (A.12). Deleted, disabled or re-keyed
identities are closed here, and their reconnect is refused by authentication.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from twin_explorer.localhub.core.auth import Identity
from twin_explorer.localhub.core.context import RemovalReason
from twin_explorer.twin.identity import identity_path

logger = logging.getLogger(__name__)


class DeliveryTarget(Protocol):
    """A live, authenticated connection as the core sees it."""

    @property
    def accepts_methods(self) -> bool:
        """Connected and subscribed to method requests."""
        ...

    def deliver_method(self, name: str, rid: str, payload: bytes) -> bool:
        """Send a method request; False if the connection cannot take it."""
        ...

    def deliver_desired(self, patch: dict[str, Any]) -> None:
        """Send a desired-properties patch (with ``$version``) if the device asked for them."""
        ...

    @property
    def accepts_c2d(self) -> bool:
        """Connected and subscribed to cloud-to-device messages."""
        ...

    def deliver_c2d(self, message: Any) -> bool:
        """Send a cloud-to-device message (locked for this delivery); False if the
        connection cannot take it. The transport completes it with ``complete_c2d``."""
        ...

    def close(self, reason: str) -> None:
        """End the connection from the hub's side."""
        ...


def covers(device_id: str, module_id: str | None, client_id: str) -> bool:
    """Does a removal of ``device_id`` (all modules when ``module_id`` is None) hit it?"""
    if module_id is not None:
        return client_id == identity_path(device_id, module_id)
    return client_id == device_id or client_id.startswith(device_id + "/")


class Presence:
    """The current connection of each identity, and connection state changes.

    ``on_change(identity, connected)`` records and publishes a state change;
    ``on_ready(client_id)`` tells method routing that a target may have appeared.
    """

    def __init__(
        self,
        on_change: Callable[[Identity, bool], None],
        on_ready: Callable[[str], None],
    ) -> None:
        self._online: dict[str, tuple[Identity, DeliveryTarget]] = {}
        self._on_change = on_change
        self._on_ready = on_ready

    def connect(self, identity: Identity, target: DeliveryTarget) -> DeliveryTarget | None:
        """``target`` is now the identity's connection; the older one (returned) is closed."""
        older = self._online.pop(identity.client_id, None)
        if older is not None and older[1] is not target:
            older[1].close("another connection took over this identity")
        self._online[identity.client_id] = (identity, target)
        self._on_change(identity, True)
        self._on_ready(identity.client_id)
        return None if older is None else older[1]

    def ready(self, identity: Identity) -> None:
        """The connection may now take method requests (it subscribed)."""
        self._on_ready(identity.client_id)

    def disconnect(self, identity: Identity, target: DeliveryTarget) -> bool:
        """A connection ended; False if it was no longer the identity's current one."""
        current = self._online.get(identity.client_id)
        if current is None or current[1] is not target:
            return False
        del self._online[identity.client_id]
        self._on_change(identity, False)
        return True

    def target(self, client_id: str) -> DeliveryTarget | None:
        found = self._online.get(client_id)
        return None if found is None else found[1]

    def method_target(self, client_id: str) -> DeliveryTarget | None:
        """The identity's connection if it takes method requests now."""
        target = self.target(client_id)
        return target if target is not None and target.accepts_methods else None

    def online(self) -> list[str]:
        """Client ids (``d`` or ``d/m``) with a current connection."""
        return sorted(self._online)

    def drop(self, device_id: str, module_id: str | None, reason: RemovalReason) -> int:
        """Close the connections a removal covers; how many."""
        hit = [t for cid, (_, t) in list(self._online.items()) if covers(device_id, module_id, cid)]
        for target in hit:
            target.close(f"identity {reason.value}")
        return len(hit)
