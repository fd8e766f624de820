"""What a connected device asks of the hub, as protocol-neutral operations (A.6-A.9).

:class:`DeviceOps` answers twin GETs and reported patches with a :class:`Reply` (a status,
the new ``$version`` when there is one, and a JSON payload), takes telemetry and method
responses. A transport maps its wire messages to these calls and the replies to its own
bytes (MQTT: ``$iothub/twin/res/{status}/?$rid=..``). Errors the core raises become
replies with the error's status and IoT Hub's newer JSON error body, never an exception
the connection would die of.

Re-sent requests are answered once: paho re-sends an un-acknowledged QoS 1 PUBLISH with
the same ``$rid`` after a reconnect (A.6, A.12), and so may a client on a fresh packet id
or a clean session. A reported patch with a ``$rid`` seen before gets the answer the
first one got, so it is never merged twice and its ``$version`` bumped twice; a method
response is completed once (``DirectMethods.complete``); telemetry may repeat, as QoS 1
on IoT Hub may.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twin_explorer.localhub.errors import HubError, argument_invalid

if TYPE_CHECKING:
    from twin_explorer.localhub.core.auth import Identity
    from twin_explorer.localhub.core.methods import DirectMethods
    from twin_explorer.localhub.core.twins import Twins

logger = logging.getLogger(__name__)

# Replies remembered per identity for re-sent reported patches (see RecentReplies).
RECENT_REPLIES = 32


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    payload: bytes
    version: int | None = None


def encode_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode_json(body: bytes, what: str) -> Any:
    """Strict JSON (no NaN/Infinity); HubError 400 for anything else (A.7)."""
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError included
        raise argument_invalid(f"The {what} is not valid JSON.") from None


def error_reply(error: HubError) -> Reply:
    return Reply(error.status, encode_json(error.to_device_body()))


class RecentReplies:
    """The last few reported-patch replies per identity, by ``$rid``."""

    def __init__(self, size: int = RECENT_REPLIES) -> None:
        self._size = size
        self._by_client: dict[str, OrderedDict[str, Reply]] = {}

    def get(self, client_id: str, rid: str) -> Reply | None:
        recent = self._by_client.get(client_id)
        return None if recent is None else recent.get(rid)

    def put(self, client_id: str, rid: str, reply: Reply) -> None:
        recent = self._by_client.setdefault(client_id, OrderedDict())
        recent[rid] = reply
        while len(recent) > self._size:
            recent.popitem(last=False)

    def forget(self, client_id: str) -> None:
        self._by_client.pop(client_id, None)


TelemetrySink = Callable[[str, str | None, dict[str, Any], dict[str, Any], bytes], None]
Committed = Callable[[bool], None]


class DeviceOps:
    """The device side of the core, for any transport."""

    def __init__(
        self,
        twins: Twins,
        methods: DirectMethods,
        record_telemetry: TelemetrySink,
        touch: Callable[[str, str | None], None],
        after_commit: Callable[[Committed], None],
    ) -> None:
        self._twins = twins
        self._after_commit = after_commit
        self._methods = methods
        self._record_telemetry = record_telemetry
        self._touch = touch
        self.replies = RecentReplies()

    def twin_get(self, identity: Identity, rid: str) -> Reply:
        """200 with ``{"desired": .., "reported": ..}`` (A.6)."""
        try:
            twin = self._twins.device_twin(identity.device_id, identity.module_id)
        except HubError as error:
            return error_reply(error)
        return Reply(200, encode_json(twin))

    def reported_patch(self, identity: Identity, rid: str, body: bytes) -> Reply:
        """Merge the patch once per ``$rid``: 204 with the new ``$version``, or 400 and why."""
        reply = self.replies.get(identity.client_id, rid)
        if reply is not None:
            logger.debug("%s re-sent reported patch %s; answering it again", identity, rid)
            return reply
        try:
            patch = decode_json(body, "reported properties patch")
            version = self._twins.patch_reported(identity.device_id, identity.module_id, patch)
        except HubError as error:
            reply = error_reply(error)
        else:
            reply = Reply(204, b"", version)
        self.replies.put(identity.client_id, rid, reply)
        return reply

    def telemetry(
        self,
        identity: Identity,
        properties: dict[str, Any],
        system_properties: dict[str, Any],
        body: bytes,
        output_name: str | None = None,
    ) -> None:
        """Take a device-to-cloud message into the event log (the built-in endpoint).
        Acknowledge it to the device from :meth:`after_commit`, not before."""
        if output_name is not None:
            # Module outputs are routed nowhere yet; IoT Hub would apply its routes.
            logger.debug("%s sent to output %r; no route takes it", identity, output_name)
        self._record_telemetry(
            identity.device_id, identity.module_id, properties, system_properties, body
        )

    def after_commit(self, callback: Committed) -> None:
        """``callback(True)`` once the messages taken so far are written (with the group
        commit of this loop turn); ``callback(False)``: they could not be, and are lost."""
        self._after_commit(callback)

    def method_response(self, identity: Identity, rid: str, status: int, body: bytes) -> bool:
        """A device answered a method request; False if no call waits for ``rid``."""
        return self._methods.complete(identity.client_id, rid, status, body)

    def activity(self, identity: Identity) -> None:
        """Note traffic from the identity (lastActivityTime, written behind)."""
        self._touch(identity.device_id, identity.module_id)
