"""IoT Hub topics against the reference strings (A.6-A.11, A.16) and the SDK's own parser."""

from __future__ import annotations

import pytest
from azure.iot.device.iothub.models import Message
from azure.iot.device.iothub.pipeline import mqtt_topic_iothub as sdk

from twin_explorer.localhub.protocols.mqtt.iothub_topics import (
    DESIRED_PATCH_FILTER,
    METHOD_REQUEST_FILTER,
    TWIN_RESPONSE_FILTER,
    MethodResponse,
    ReportedPatch,
    Telemetry,
    TopicError,
    TwinGet,
    build_property_bag,
    c2d_filter,
    c2d_topic,
    desired_patch_topic,
    input_filter,
    input_message_topic,
    may_subscribe,
    method_request_topic,
    method_response_topic,
    parse_device_publish,
    parse_property_bag,
    reported_patch_topic,
    telemetry_topic,
    twin_get_topic,
    twin_response_topic,
)

RID = "65b25ea3-5891-4f2f-8fc9-a8a38c77b9fe"


def test_subscription_filters_are_the_sdks():
    assert sdk.get_twin_response_topic_for_subscribe() == TWIN_RESPONSE_FILTER
    assert sdk.get_twin_patch_topic_for_subscribe() == DESIRED_PATCH_FILTER
    assert sdk.get_method_topic_for_subscribe() == METHOD_REQUEST_FILTER
    assert sdk.get_input_topic_for_subscribe("d1", "m1") == input_filter("d1", "m1")
    assert sdk.get_c2d_topic_for_subscribe("d2") == c2d_filter("d2")
    assert input_filter("d1", "m1") == "devices/d1/modules/m1/inputs/#"


# -- device -> hub -------------------------------------------------------------------------


def test_twin_get():
    topic = f"$iothub/twin/GET/?$rid={RID}"
    assert sdk.get_twin_topic_for_publish("GET", "/", RID) == topic == twin_get_topic(RID)
    assert parse_device_publish(topic, b" ") == TwinGet(RID)


def test_reported_patch():
    topic = "$iothub/twin/PATCH/properties/reported/?$rid=r2"
    body = b'{"temp": 21.5, "nested": {"a": null}}'
    assert sdk.get_twin_topic_for_publish("PATCH", "/properties/reported/", "r2") == topic
    assert reported_patch_topic("r2") == topic
    assert parse_device_publish(topic, body) == ReportedPatch("r2", body)


def test_method_response():
    topic = "$iothub/methods/res/201/?$rid=42"
    assert sdk.get_method_topic_for_publish("42", 201) == topic == method_response_topic(201, "42")
    assert parse_device_publish(topic, b'{"r": 1}') == MethodResponse("42", 201, b'{"r": 1}')


def test_request_ids_are_percent_decoded():
    rid = "a b/c&d=e"
    assert parse_device_publish(sdk.get_twin_topic_for_publish("GET", "/", rid), b" ") == TwinGet(
        rid
    )
    topic = sdk.get_method_topic_for_publish(rid, -1)
    assert parse_device_publish(topic, b"null") == MethodResponse(rid, -1, b"null")


def test_module_telemetry_from_the_reference_trace():
    topic = (
        "devices/d1/modules/m1/messages/events/"
        "%24.mid=mid-1&%24.cid=c1&%24.ct=application%2Fjson&%24.ce=utf-8&a=2&b%20key=v%2F1"
    )
    assert parse_device_publish(topic, b'{"t": 1}') == Telemetry(
        device_id="d1",
        module_id="m1",
        properties={"a": "2", "b key": "v/1"},
        system_properties={
            "$.mid": "mid-1",
            "$.cid": "c1",
            "$.ct": "application/json",
            "$.ce": "utf-8",
        },
        body=b'{"t": 1}',
    )


def test_output_message_and_bare_device_telemetry():
    output = parse_device_publish("devices/d1/modules/m1/messages/events/%24.on=out%201", b"hello")
    assert isinstance(output, Telemetry)
    assert output.output_name == "out 1"
    assert output.properties == {}
    device = parse_device_publish("devices/d1/messages/events/", b"x")
    assert device == Telemetry("d1", None, {}, {}, b"x")
    assert device.output_name is None
    assert parse_device_publish("devices/d1/messages/events", b"") == Telemetry("d1", None)


def test_sdk_built_telemetry_topics_parse_back():
    message = Message("x", message_id="m 1", content_type="application/json")
    message.output_name = "out/1"
    message.custom_properties = {"z": "1=2", "a": "&"}
    topic = sdk.encode_message_properties_in_topic(
        message, sdk.get_telemetry_topic_for_publish("d1", "m1")
    )
    parsed = parse_device_publish(topic, b"x")
    assert parsed.system_properties == {
        "$.on": "out/1",
        "$.mid": "m 1",
        "$.ct": "application/json",
    }
    assert parsed.properties == {"a": "&", "z": "1=2"}
    # Our builder writes what the SDK writes for the same properties.
    rebuilt = telemetry_topic(
        "d1",
        "m1",
        [
            ("$.on", "out/1"),
            ("$.mid", "m 1"),
            ("$.ct", "application/json"),
            ("a", "&"),
            ("z", "1=2"),
        ],
    )
    assert rebuilt == topic


@pytest.mark.parametrize(
    ("bag", "expected"),
    [
        ("", {}),
        ("k=v", {"k": "v"}),
        ("flag", {"flag": None}),
        ("e=", {"e": ""}),
        ("k=a=b", {"k": "a=b"}),  # split on the first "=" only
        ("%24.mid=1&x%2Fy=%26", {"$.mid": "1", "x/y": "&"}),
        ("a=1&&b=2", {"a": "1", "b": "2"}),
        ("p=a+b", {"p": "a+b"}),  # "+" is not a space here
    ],
)
def test_property_bag_parsing(bag, expected):
    assert parse_property_bag(bag) == expected


@pytest.mark.parametrize(
    "topic",
    [
        "$iothub/twin/GET?$rid=1",  # the SDK always sends "/?"
        "$iothub/twin/GET/",
        "$iothub/twin/GET/?rid",
        "$iothub/twin/GET/?$version=1",
        "$iothub/twin/GET/x/?$rid=1",
        "$iothub/twin/PATCH/properties/reported/",
        "$iothub/twin/PATCH/properties/desired/?$rid=1",
        "$iothub/methods/res/abc/?$rid=1",
        "$iothub/methods/res/200/",
        "$iothub/methods/POST/m/?$rid=1",
        "devices/d1/messages/devicebound/",
        "devices/d1/modules/m1/inputs/in/",
        "devices//messages/events/",
        "devices/d1/messages/eventsX",
        "something/else",
    ],
)
def test_unknown_or_malformed_topics_raise(topic):
    with pytest.raises(TopicError):
        parse_device_publish(topic, b"")


# -- hub -> device: what we build must satisfy the SDK's parser -----------------------------


def test_twin_responses():
    assert twin_response_topic(200, RID) == f"$iothub/twin/res/200/?$rid={RID}"
    patched = twin_response_topic(204, "r2", version=2)
    assert patched == "$iothub/twin/res/204/?$rid=r2&$version=2"
    for topic, rid, status in (
        (patched, "r2", "204"),
        (twin_response_topic(400, "a b&c"), "a b&c", "400"),
    ):
        assert sdk.is_twin_response_topic(topic)
        assert sdk.get_twin_request_id_from_topic(topic) == rid
        assert sdk.get_twin_status_code_from_topic(topic) == status


def test_desired_patch():
    topic = desired_patch_topic(8)
    assert topic == "$iothub/twin/PATCH/properties/desired/?$version=8"
    assert sdk.is_twin_desired_property_patch_topic(topic)


def test_method_requests():
    topic = method_request_topic("my method", "42")
    assert topic == "$iothub/methods/POST/my%20method/?$rid=42"
    assert sdk.get_method_name_from_topic(topic) == "my method"
    assert sdk.get_method_request_id_from_topic(topic) == "42"
    odd = method_request_topic("a/b?c", "x=y")
    assert sdk.get_method_name_from_topic(odd) == "a/b?c"
    assert sdk.get_method_request_id_from_topic(odd) == "x=y"


def test_input_messages_encode_everything():
    props = {"$.mid": "m1", "$.cid": "c/1", "k": "a=b&c", "flag": None, "empty": ""}
    topic = input_message_topic("d1", "m1", "in 1", props)
    assert topic == (
        "devices/d1/modules/m1/inputs/in%201/%24.mid=m1&%24.cid=c%2F1&k=a%3Db%26c&flag&empty="
    )
    assert sdk.is_input_topic(topic, "d1", "m1")
    assert sdk.get_input_name_from_topic(topic) == "in 1"
    message = Message(b"")
    sdk.extract_message_properties_from_topic(topic, message)
    assert message.message_id == "m1"
    assert message.correlation_id == "c/1"
    assert message.custom_properties == {"k": "a=b&c", "flag": None, "empty": ""}


def test_c2d_messages():
    assert c2d_topic("d2") == "devices/d2/messages/devicebound/"
    topic = c2d_topic(
        "d2",
        [
            ("$.mid", "m1"),
            ("$.to", "/devices/d2/messages/deviceBound"),
            ("$.exp", "2030-01-01T00:00:00Z"),
            ("iothub-ack", "full"),
            ("$.uid", "u"),
            ("k", "v"),
        ],
    )
    # The observed C2D topic of reference A.11, byte for byte.
    assert topic == (
        "devices/d2/messages/devicebound/%24.mid=m1&%24.to=%2Fdevices%2Fd2%2Fmessages%2FdeviceBound"
        "&%24.exp=2030-01-01T00%3A00%3A00Z&iothub-ack=full&%24.uid=u&k=v"
    )
    message = Message(b"")
    assert sdk.is_c2d_topic(topic, "d2")
    sdk.extract_message_properties_from_topic(topic, message)
    assert (message.message_id, message.expiry_time_utc, message.ack, message.user_id) == (
        "m1",
        "2030-01-01T00:00:00Z",
        "full",
        "u",
    )
    assert message.custom_properties == {"k": "v"}


def test_property_bag_round_trip():
    props = {"a b": "c/d", "$.x": "=&%", "none": None}
    assert parse_property_bag(build_property_bag(props)) == props


@pytest.mark.parametrize(
    ("topic_filter", "device", "module"),
    [
        ("$iothub/twin/res/#", True, True),
        ("$iothub/methods/POST/+", True, True),  # narrower than an own filter
        ("devices/d1/messages/devicebound/#", True, False),
        ("devices/+/messages/devicebound/#", True, False),  # the Azure SDK for C's form
        ("devices/d1/modules/m1/inputs/#", False, True),
        ("#", False, False),
        ("$iothub/#", False, False),
        ("devices/d2/messages/devicebound/#", False, False),
        ("devices/d1/modules/m2/inputs/#", False, False),
        ("devices/d1/#", False, False),
        ("devices/+/modules/+/inputs/#", False, False),
        ("not a/#/filter", False, False),
    ],
)
def test_an_identity_may_subscribe_to_its_own_filters_only(topic_filter, device, module):
    assert may_subscribe("d1", None, topic_filter) is device
    assert may_subscribe("d1", "m1", topic_filter) is module
