"""IoT Hub's MQTT topic grammar, as azure-iot-device 2.14.0 writes and parses it.

Device-to-hub topics are parsed into request values (`parse_device_publish`); hub-to-device
topics are built so that the SDK's own, rather strict, parser accepts them (reference A.6-A.11):
`/?` before the query, every query piece of the form `key=value`, and every property key and
value fully percent-encoded (`/` and `=` included) because the SDK splits on them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from twin_explorer.connection.redact import clip

from .topics import filter_matches, is_valid_filter

# Filters the SDK subscribes to (A.5).
TWIN_RESPONSE_FILTER = "$iothub/twin/res/#"
DESIRED_PATCH_FILTER = "$iothub/twin/PATCH/properties/desired/#"
METHOD_REQUEST_FILTER = "$iothub/methods/POST/#"

# The Azure SDK for C subscribes to C2D with "+" for its own device id
# (AZ_IOT_HUB_CLIENT_C2D_SUBSCRIBE_TOPIC); IoT Hub takes it as the connection's own.
_C2D_ANY_DEVICE_FILTER = "devices/+/messages/devicebound/#"

_TWIN_GET = "$iothub/twin/GET/"
_REPORTED_PATCH = "$iothub/twin/PATCH/properties/reported/"
_METHOD_RESPONSE = re.compile(r"\$iothub/methods/res/([^/?]+)/")
_TELEMETRY = re.compile(
    r"devices/(?P<d>[^/]+)(?:/modules/(?P<m>[^/]+))?/messages/events(?:/(?P<bag>.*))?", re.S
)

PropertyItems = Mapping[str, str | None] | Iterable[tuple[str, str | None]]


class TopicError(ValueError):
    """A device published to a topic IoT Hub does not serve, or with a malformed query."""


@dataclass(frozen=True, slots=True)
class TwinGet:
    rid: str


@dataclass(frozen=True, slots=True)
class ReportedPatch:
    rid: str
    body: bytes


@dataclass(frozen=True, slots=True)
class MethodResponse:
    rid: str
    status: int
    body: bytes


@dataclass(frozen=True, slots=True)
class Telemetry:
    """A device-to-cloud message; module output messages carry `$.on` (A.10)."""

    device_id: str
    module_id: str | None
    properties: dict[str, str | None] = field(default_factory=dict)
    system_properties: dict[str, str | None] = field(default_factory=dict)
    body: bytes = b""

    @property
    def output_name(self) -> str | None:
        return self.system_properties.get("$.on")


DeviceRequest = TwinGet | ReportedPatch | MethodResponse | Telemetry


# --------------------------------------------------------------------------------------------
# Property bags and queries


def _quote(value: object) -> str:
    # safe="" so that "/" and "=" are encoded too; the SDK splits bags on both (A.11).
    return quote(str(value), safe="")


def parse_property_bag(bag: str) -> dict[str, str | None]:
    """`k=v&flag&e=` -> {"k": "v", "flag": None, "e": ""}, both sides percent-decoded (A.10)."""
    properties: dict[str, str | None] = {}
    for piece in bag.split("&"):
        if not piece:
            continue
        key, sep, value = piece.partition("=")
        properties[unquote(key)] = unquote(value) if sep else None
    return properties


def build_property_bag(properties: PropertyItems) -> str:
    """Percent-encode every key and value; a None value is sent as a bare key."""
    items = properties.items() if isinstance(properties, Mapping) else properties
    return "&".join(_quote(k) if v is None else f"{_quote(k)}={_quote(v)}" for k, v in items)


def _request_id(topic: str, path: str) -> str:
    """The `$rid` of `<path>?$rid=...`; the path must end with "/" as the SDK sends it."""
    prefix, sep, query = topic.partition("?")
    if prefix != path or not sep:
        raise TopicError(f"expected {path}?$rid=<rid>, got {clip(topic)!r}")
    for piece in query.split("&"):
        key, has_value, value = piece.partition("=")
        if has_value and unquote(key).lstrip("$") == "rid":
            return unquote(value)
    raise TopicError(f"no $rid in {clip(topic)!r}")


# --------------------------------------------------------------------------------------------
# Device -> hub


def parse_device_publish(topic: str, payload: bytes) -> DeviceRequest:
    """Classify a device PUBLISH. Raises `TopicError` for anything IoT Hub would not accept."""
    if topic.startswith(_TWIN_GET):
        return TwinGet(_request_id(topic, _TWIN_GET))
    if topic.startswith(_REPORTED_PATCH):
        return ReportedPatch(_request_id(topic, _REPORTED_PATCH), payload)
    if match := _METHOD_RESPONSE.match(topic):
        try:
            status = int(unquote(match.group(1)))
        except ValueError:
            raise TopicError(f"method response status is not an integer: {clip(topic)!r}") from None
        return MethodResponse(_request_id(topic, match.group(0)), status, payload)
    if match := _TELEMETRY.fullmatch(topic):
        custom, system = {}, {}
        for key, value in parse_property_bag(match["bag"] or "").items():
            (system if key.startswith("$.") else custom)[key] = value
        return Telemetry(match["d"], match["m"], custom, system, payload)
    raise TopicError(f"unsupported topic {clip(topic)!r}")


def twin_get_topic(rid: str) -> str:
    return f"{_TWIN_GET}?$rid={_quote(rid)}"


def reported_patch_topic(rid: str) -> str:
    return f"{_REPORTED_PATCH}?$rid={_quote(rid)}"


def method_response_topic(status: int, rid: str) -> str:
    return f"$iothub/methods/res/{_quote(status)}/?$rid={_quote(rid)}"


def telemetry_topic(device_id: str, module_id: str | None, properties: PropertyItems = ()) -> str:
    """What the SDK publishes to: ids verbatim, then the bag right after `events/` (A.10)."""
    return f"{identity_topic_base(device_id, module_id)}/messages/events/" + build_property_bag(
        properties
    )


# --------------------------------------------------------------------------------------------
# Hub -> device


def identity_topic_base(device_id: str, module_id: str | None = None) -> str:
    # Device and module ids are never percent-encoded in topics (A.2, SDK wiki).
    return f"devices/{device_id}" + (f"/modules/{module_id}" if module_id else "")


def twin_response_topic(status: int, rid: str, version: int | None = None) -> str:
    """`$iothub/twin/res/<status>/?$rid=<rid>[&$version=<n>]` (A.6, A.7)."""
    topic = f"$iothub/twin/res/{int(status)}/?$rid={_quote(rid)}"
    return topic if version is None else f"{topic}&$version={int(version)}"


def desired_patch_topic(version: int) -> str:
    return f"$iothub/twin/PATCH/properties/desired/?$version={int(version)}"


def method_request_topic(method_name: str, rid: str) -> str:
    """The SDK takes the name from `split("/")[3]` and unquotes it (A.9)."""
    return f"$iothub/methods/POST/{_quote(method_name)}/?$rid={_quote(rid)}"


def input_filter(device_id: str, module_id: str) -> str:
    return f"{identity_topic_base(device_id, module_id)}/inputs/#"


def input_message_topic(
    device_id: str, module_id: str, input_name: str, properties: PropertyItems = ()
) -> str:
    """`devices/<d>/modules/<m>/inputs/<input>/<bag>` (A.11)."""
    base = identity_topic_base(device_id, module_id)
    return f"{base}/inputs/{_quote(input_name)}/{build_property_bag(properties)}"


def c2d_filter(device_id: str) -> str:
    return f"{identity_topic_base(device_id)}/messages/devicebound/#"


def own_filters(device_id: str, module_id: str | None) -> tuple[str, ...]:
    """The topic filters IoT Hub grants an identity: its twin, methods and C2D or inputs."""
    common = (TWIN_RESPONSE_FILTER, DESIRED_PATCH_FILTER, METHOD_REQUEST_FILTER)
    if module_id is not None:
        return (*common, input_filter(device_id, module_id))
    return (*common, c2d_filter(device_id))


def may_subscribe(device_id: str, module_id: str | None, topic_filter: str) -> bool:
    """Is ``topic_filter`` one of the identity's own filters, or narrower than one?

    `#`, `devices/+/...` (but for the SDK-for-C form above) and another identity's topics
    are not: IoT Hub delivers nothing else, and does not grant them either (reference A.5).
    """
    if not is_valid_filter(topic_filter):
        return False
    if topic_filter == _C2D_ANY_DEVICE_FILTER:
        return module_id is None  # as for c2d_filter(): modules get no C2D messages
    # Read as a topic, a narrower filter is matched by the wider one: "+" and "#" in it
    # only match a level an own filter's trailing "#" covers.
    return any(filter_matches(own, topic_filter) for own in own_filters(device_id, module_id))


def c2d_topic(device_id: str, properties: PropertyItems = ()) -> str:
    """`devices/<d>/messages/devicebound/<bag>`; the bag may be empty (A.11)."""
    return f"{identity_topic_base(device_id)}/messages/devicebound/{build_property_bag(properties)}"
