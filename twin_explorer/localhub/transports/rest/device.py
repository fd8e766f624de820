"""The device side of the HTTPS API, as ``azure-iot-device-http`` and .NET's
``HttpTransportHandler`` speak it: telemetry in, cloud-to-device messages polled.

``POST /devices/{d}[/modules/{m}]/messages/events``: one message (the body as is,
application properties in ``iothub-app-*`` headers, system properties in ``iothub-*``
headers) or, with ``Content-Type: application/vnd.microsoft.iothub.json``, a batch: a
JSON array of ``{"body": <base64>, "base64Encoded": true, "properties": {..}}`` whose
property names are the same header names. 204 once the event log holds them.

``GET /devices/{d}/messages/deviceBound``: 204 when the queue is empty, else 200 with the
body, the lock token as a quoted ``ETag`` and the message's properties as ``iothub-*``
headers. ``DELETE .../deviceBound/{etag}`` completes it, with ``?reject`` rejects it,
``POST .../deviceBound/{etag}/abandon`` abandons it: 204, or 412 (412002) for a lock that
is unknown or ran out. Node spells the segment ``devicebound``, .NET ``deviceBound``.

``POST /devices/{d}/files`` (and ``.../files/notifications``): file upload needs a blob
store, which the local hub does not have; it answers as IoT Hub does when it cannot hand
out a blob SAS URI: 400 with errorCode 400022 in the nested envelope.

Handlers only turn requests into core calls (``core.device_messages``) and back.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web

from twin_explorer.localhub.core.device_messages import (
    LOCK_SECONDS_RANGE,
    D2CMessage,
    check_batch_count,
    message_too_large,
)
from twin_explorer.localhub.errors import HubError, argument_invalid
from twin_explorer.localhub.transports.rest.device_auth import device_identity
from twin_explorer.localhub.transports.rest.wire import (
    int_param,
    nested_error_response,
    parse_json,
)

if TYPE_CHECKING:
    from twin_explorer.localhub.core.c2d import C2DMessage
    from twin_explorer.localhub.core.hub import HubCore

BATCH_CONTENT_TYPE = "application/vnd.microsoft.iothub.json"
APP_PREFIX = "iothub-app-"
# Node sends a digital twin component's subject without the iothub-app- prefix.
UNPREFIXED_APP_PROPERTIES = frozenset({"dt-subject"})
# iothub-* header -> the system property name the core keeps (MQTT's, reference A.10).
SYSTEM_HEADERS = {
    "iothub-messageid": "$.mid",
    "iothub-correlationid": "$.cid",
    "iothub-userid": "$.uid",
    "iothub-contenttype": "$.ct",
    "iothub-contentencoding": "$.ce",
    "iothub-interface-id": "$.ifid",
    "iothub-expiry": "$.exp",
}
# C2D system properties (as the core keeps them) -> the response header IoT Hub sends.
C2D_HEADERS = {
    "$.cid": "iothub-correlationid",
    "$.uid": "iothub-userid",
    "$.exp": "iothub-expiry",
    "iothub-ack": "iothub-ack",
    "$.ct": "Content-Type",
    "$.ce": "iothub-contentencoding",
}
LOCK_TIMEOUT = "iothub-messagelocktimeout"


def device_routes(core: HubCore) -> list[web.RouteDef]:
    """The device HTTPS routes over ``core``."""
    api = DeviceApi(core)
    device = "/devices/{device_id}"
    module = device + "/modules/{module_id}"
    bound = device + "/messages/{bound:(?i:devicebound)}"
    return [
        web.post(device + "/messages/events", api.send_events),
        web.post(module + "/messages/events", api.send_events),
        web.get(bound, api.receive),
        web.delete(bound + "/{lock_token}", api.complete_or_reject),
        web.post(bound + "/{lock_token}/abandon", api.abandon),
        web.post(device + "/files", api.file_upload),
        web.post(device + "/files/notifications", api.file_upload),
    ]


class DeviceApi:
    """Route handlers bound to one core."""

    def __init__(self, core: HubCore) -> None:
        self.core = core

    async def send_events(self, request: web.Request) -> web.Response:
        identity = device_identity(self.core, request)
        raw = await request.read()
        if request.content_type == BATCH_CONTENT_TYPE:
            messages = parse_batch(raw)
        else:
            messages = [message_from_headers(request.headers.items(), raw)]
        self.core.device_messages.send_events(identity, messages)
        await self._committed()
        return web.Response(status=204)

    async def _committed(self) -> None:
        """Wait for the event log to write what was taken (IoT Hub acknowledges only
        what it keeps); a full disk answers 507 and the device sends again."""
        written: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        def done(ok: bool) -> None:
            if not written.done():
                written.set_result(ok)

        self.core.devices.after_commit(done)
        if not await written:
            raise HubError(
                507, "InsufficientStorage", 507000, "The hub could not keep the message."
            )

    async def receive(self, request: web.Request) -> web.Response:
        identity = device_identity(self.core, request)
        text = request.headers.get(LOCK_TIMEOUT) or request.query.get(LOCK_TIMEOUT)
        seconds = int_param(text, LOCK_TIMEOUT, *LOCK_SECONDS_RANGE)
        message = self.core.device_messages.receive(identity, seconds)
        if message is None:
            return web.Response(status=204)
        return web.Response(status=200, body=message.body, headers=c2d_headers(message))

    async def complete_or_reject(self, request: web.Request) -> web.Response:
        identity = device_identity(self.core, request)
        messages = self.core.device_messages
        settle = messages.reject if "reject" in request.query else messages.complete
        settle(identity, _lock_token(request))
        return web.Response(status=204)

    async def abandon(self, request: web.Request) -> web.Response:
        identity = device_identity(self.core, request)
        self.core.device_messages.abandon(identity, _lock_token(request))
        return web.Response(status=204)

    async def file_upload(self, request: web.Request) -> web.Response:
        """No blob store stands behind the local hub: every upload step is refused."""
        identity = device_identity(self.core, request)
        self.core.devices.activity(identity)
        return nested_error_response(no_file_storage())


def no_file_storage() -> HubError:
    """What IoT Hub answers a file upload request with when it cannot hand out a blob SAS
    URI (errorCode 400022, "BadRequest", in the nested envelope)."""
    return HubError(
        400,
        "BadRequest",
        400022,
        "File upload needs a storage account linked to the hub; the local hub has none, "
        "so devices cannot upload files to it.",
    )


def too_large(request: web.Request) -> HubError | None:
    """Telemetry over the hub's request size limit is IoT Hub's 413001, not a 400."""
    if request.path.endswith("/messages/events"):
        return message_too_large(request.content_length)
    return None


def _lock_token(request: web.Request) -> str:
    # The path carries the token; If-Match repeats it (quoted by .NET, bare by Node).
    return request.match_info["lock_token"].strip('"')


def message_from_headers(headers: Any, body: bytes) -> D2CMessage:
    """One message: properties from ``iothub-app-*``, system properties from the
    ``iothub-*`` headers IoT Hub maps (others, like ``iothub-to``, address the request)."""
    app: dict[str, str] = {}
    system: dict[str, str] = {}
    for name, value in headers:
        _sort_property(name, value, app, system, header=True)
    return D2CMessage(body, app, system)


def _sort_property(
    name: str, value: str, app: dict[str, str], system: dict[str, str], *, header: bool
) -> None:
    lowered = name.lower()
    if lowered.startswith(APP_PREFIX):
        app[name[len(APP_PREFIX) :]] = value
    elif lowered in SYSTEM_HEADERS:
        system[SYSTEM_HEADERS[lowered]] = value
    elif lowered in UNPREFIXED_APP_PROPERTIES or not (header or lowered.startswith("iothub-")):
        app[name] = value


def parse_batch(raw: bytes) -> list[D2CMessage]:
    """A batch body; 400 with the reason for anything that is not one."""
    items = parse_json(raw)
    if not isinstance(items, list):
        raise argument_invalid("A message batch must be a JSON array of messages.")
    check_batch_count(len(items))  # before the work of reading each one
    return [_batch_message(index, item) for index, item in enumerate(items)]


def _batch_message(index: int, item: object) -> D2CMessage:
    where = f"Message {index} of the batch"
    if not isinstance(item, dict):
        raise argument_invalid(f"{where} is not a JSON object.")
    body = item.get("body")
    if not isinstance(body, str):
        raise argument_invalid(f"{where} has no body string.")
    encoded = item.get("base64Encoded", True)
    if not isinstance(encoded, bool):
        raise argument_invalid(f"{where}: base64Encoded must be true or false.")
    if encoded:
        try:
            data = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise argument_invalid(f"{where}: the body is not base64.") from None
    else:
        data = body.encode("utf-8")
    properties = item.get("properties", {})
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        raise argument_invalid(f"{where}: properties must be a JSON object.")
    app: dict[str, str] = {}
    system: dict[str, str] = {}
    for name, value in properties.items():
        if not isinstance(value, str):
            raise argument_invalid(f"{where}: property {name!r} must be a string.")
        _sort_property(name, value, app, system, header=False)
    return D2CMessage(data, app, system)


def c2d_headers(message: C2DMessage) -> dict[str, str]:
    """The headers IoT Hub answers a C2D poll with (values as it formats them)."""
    assert message.lock_token is not None
    headers = {
        "ETag": f'"{message.lock_token}"',
        "iothub-messageid": message.message_id,
        "iothub-sequencenumber": str(message.sequence_number),
        "iothub-to": f"/devices/{message.device_id}/messages/deviceBound",
        "iothub-enqueuedtime": _dotnet_time(message.enqueued_ns),
        # 0 on the first delivery, as the hub counts earlier deliveries.
        "iothub-deliverycount": str(message.delivery_count - 1),
        "iothub-expiry": _dotnet_time(message.expiry_ns),
        "Content-Type": "application/octet-stream",
    }
    for key, value in message.properties.items():
        header = C2D_HEADERS.get(key)
        if header is not None:
            headers[header] = _header_value(str(value))
        elif not key.startswith("$."):  # other system properties have no header
            headers[_header_name(APP_PREFIX + key)] = _header_value(str(value))
    return headers


# Property names and values may hold anything; a header may not. What a header cannot
# carry is percent-encoded (UTF-8), so no property breaks the response or is dropped.
_TOKEN_SAFE = "!#$&'*+-.^_`|~"
_VALUE_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


def _header_name(name: str) -> str:
    return quote(name, safe=_TOKEN_SAFE)


def _header_value(value: str) -> str:
    if all(" " <= c < "\x7f" for c in value):
        return value
    return quote(value, safe=_VALUE_SAFE)


def _dotnet_time(ns: int) -> str:
    """``12/22/2017 12:14:12 AM``: how IoT Hub prints times in C2D headers."""
    moment = datetime.fromtimestamp(ns / 1e9, UTC)
    hour = moment.hour % 12 or 12
    return (
        f"{moment.month}/{moment.day}/{moment.year} {hour}:{moment.minute:02d}:"
        f"{moment.second:02d} {'AM' if moment.hour < 12 else 'PM'}"
    )
