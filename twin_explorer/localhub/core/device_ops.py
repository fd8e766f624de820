"""What the hub answers to a device's twin requests, as plain values (reference A.6, A.7).

No I/O: each function takes the core and a parsed request and returns the :class:`Reply`
to publish, so the answers are testable without a socket. Errors the core raises become
twin responses with the error's status and IoT Hub's newer JSON error body, never an
exception the connection would die of.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twin_explorer.localhub.errors import HubError, argument_invalid
from twin_explorer.localhub.protocols.mqtt.iothub_topics import twin_response_topic

if TYPE_CHECKING:
    from twin_explorer.localhub.core.auth import Identity
    from twin_explorer.localhub.core.hub import HubCore

# Replies remembered per identity for re-sent reported patches (see RecentReplies).
RECENT_REPLIES = 32


@dataclass(frozen=True, slots=True)
class Reply:
    topic: str
    payload: bytes


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


def error_reply(error: HubError, rid: str) -> Reply:
    return Reply(twin_response_topic(error.status, rid), encode_json(error.to_device_body()))


def twin_get_reply(core: HubCore, identity: Identity, rid: str) -> Reply:
    """``$iothub/twin/res/200/?$rid=..`` with ``{"desired": .., "reported": ..}`` (A.6)."""
    try:
        twin = core.device_twin(identity.device_id, identity.module_id)
    except HubError as error:
        return error_reply(error, rid)
    return Reply(twin_response_topic(200, rid), encode_json(twin))


def reported_patch_reply(core: HubCore, identity: Identity, rid: str, body: bytes) -> Reply:
    """Merge the patch: 204 with the new ``$version`` in the topic, or 400 and why (A.7)."""
    try:
        patch = decode_json(body, "reported properties patch")
        version = core.patch_reported(identity.device_id, identity.module_id, patch)
    except HubError as error:
        return error_reply(error, rid)
    return Reply(twin_response_topic(204, rid, version), b"")


class RecentReplies:
    """The last few reported-patch replies per identity, by ``$rid``.

    paho re-sends an un-acknowledged QoS 1 PUBLISH with the same ``$rid`` after a reconnect
    (A.6, A.12), and so may a client on a fresh packet id or a clean session. The repeat
    gets the answer the first one got, so a patch is never merged twice and its
    ``$version`` bumped twice, and the client still hears back.
    """

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
