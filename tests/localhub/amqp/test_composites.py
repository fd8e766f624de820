"""Performatives, termini and message sections: full-length encoding, tolerant decoding,
and the Node client's logged messages decoded with their exact types."""

from __future__ import annotations

import uuid

import pytest

from twin_explorer.localhub.protocols.amqp import (
    Accepted,
    AmqpDecodeError,
    Attach,
    Begin,
    Close,
    Data,
    Described,
    Detach,
    Disposition,
    End,
    Error,
    Flow,
    Header,
    Int,
    Long,
    Message,
    Modified,
    Open,
    Properties,
    Rejected,
    Released,
    SaslChallenge,
    SaslInit,
    SaslMechanisms,
    SaslOutcome,
    SaslResponse,
    Sequence,
    Source,
    Symbol,
    Target,
    Timestamp,
    Transfer,
    UInt,
    ULong,
    Value,
    decode,
    decode_message,
    encode,
    encode_message,
    errors,
)

from . import golden

# Reference gotcha 1: field counts azure-eventhub indexes by position.
FULL_LENGTH = [
    (Open(container_id="hub"), 0x10, 10),
    (Begin(next_outgoing_id=0, incoming_window=1, outgoing_window=1), 0x11, 8),
    (Attach(name="l", handle=0, role=True), 0x12, 14),
    (Flow(incoming_window=1, next_outgoing_id=0, outgoing_window=1), 0x13, 11),
    (Transfer(handle=0), 0x14, 11),
    (Disposition(role=True, first=0), 0x15, 6),
    (Detach(handle=0), 0x16, 3),
    (End(), 0x17, 1),
    (Close(), 0x18, 1),
    (Source(), 0x28, 11),
    (Target(), 0x29, 7),
    (Error(errors.NOT_FOUND), 0x1D, 3),
    (Rejected(), 0x25, 1),
    (Modified(), 0x27, 3),
    (SaslMechanisms(["ANONYMOUS"]), 0x40, 1),
    (SaslInit(Symbol("PLAIN")), 0x41, 3),
    (SaslChallenge(b"c"), 0x42, 1),
    (SaslResponse(b"r"), 0x43, 1),
    (SaslOutcome(code=0), 0x44, 2),
    (Header(), 0x70, 5),
    (Properties(), 0x73, 13),
]


@pytest.mark.parametrize(("value", "code", "count"), FULL_LENGTH,
                         ids=[type(v).__name__ for v, _, _ in FULL_LENGTH])
def test_every_field_is_written_even_when_null(value, code, count):
    wire = encode(value)
    assert wire[:3] == bytes((0x00, 0x53, code))
    assert wire[3] in (0xC0, 0xD0), "a composite with fields is never list0"
    written = wire[5] if wire[3] == 0xC0 else int.from_bytes(wire[8:12], "big")
    assert written == count
    assert decode(wire) == value


def test_fieldless_outcomes_are_list0():
    assert encode(Accepted()) == b"\x00\x53\x24\x45"
    assert encode(Released()) == b"\x00\x53\x26\x45"


def test_rhea_list0_end_and_close_decode_with_defaults():
    assert decode(b"\x00\x53\x17\x45") == End(error=None)
    assert decode(b"\x00\x53\x18\x45") == Close(error=None)


def test_short_open_gets_spec_defaults():
    # rhea's OPEN: container-id and hostname only (reference A.3).
    wire = b"\x00\x53\x10\xc0\x11\x02\xa1\x03abc\xa1\x09localhost"
    open_ = decode(wire)
    assert open_.container_id == "abc" and open_.hostname == "localhost"
    assert open_.max_frame_size == 0xFFFFFFFF and open_.channel_max == 0xFFFF
    assert open_.idle_timeout is None


def test_symbolic_descriptors_are_understood():
    wire = encode(Described(Symbol("amqp:accepted:list"), []))
    assert decode(wire) == Accepted()


def test_performative_field_types_are_checked():
    wrong_handle = b"\x00\x53\x16\xc0\x03\x01\xa1\x00"  # detach handle as a string
    with pytest.raises(AmqpDecodeError, match="handle"):
        decode(wrong_handle)
    missing = b"\x00\x53\x16\x45"  # detach without its mandatory handle
    with pytest.raises(AmqpDecodeError, match="mandatory"):
        decode(missing)


def test_attach_echo_keeps_filters_and_capabilities():
    selector = Symbol("apache.org:selector-filter:string")
    source = Source(address="amqps://localhost/myhub/ConsumerGroups/$Default/Partitions/0",
                    filter={selector: Described(selector, "amqp.annotation.x-opt-offset > '-1'")})
    attach = Attach(name="r", handle=3, role=True, source=source, target=Target(address="t"),
                    max_message_size=1048576,
                    desired_capabilities=[Symbol("com.microsoft:georeplication")],
                    properties={Symbol("com.microsoft:timeout"): UInt(0)})
    back = decode(encode(attach))
    assert back == attach
    assert back.desired_capabilities == [Symbol("com.microsoft:georeplication")]
    assert type(back.max_message_size) is ULong


# ---------------------------------------------------------------- golden messages


def test_cbs_put_token_from_node():
    m = decode_message(golden.CBS_PUT_TOKEN)
    assert m.properties.message_id == "ca9dcd72-ec3e-4ca3-966c-dbd7287352fb"
    assert type(m.properties.message_id) is str
    assert m.properties.to == "$cbs" and m.properties.reply_to == "cbs"
    assert m.application_properties == {
        "operation": "put-token", "type": "servicebus.windows.net:sastoken",
        "name": "localhost%2Fdevices%2Fd1%2Fmodules%2Fm1"}
    assert all(type(k) is str for k in m.application_properties)
    assert isinstance(m.body, Value) and m.body.value.startswith("SharedAccessSignature sr=")
    assert len(encode_message(m)) >= len(golden.CBS_PUT_TOKEN)  # ours writes full lists
    assert decode_message(encode_message(m)) == m


def test_cbs_reply_status_is_a_long():
    m = decode_message(golden.CBS_REPLY)
    assert m.application_properties["status-code"] == 200
    assert type(m.application_properties["status-code"]) is Long
    assert m.properties.correlation_id == "ca9dcd72-ec3e-4ca3-966c-dbd7287352fb"


def test_twin_get_annotations_use_symbol_keys_and_a_data_body():
    m = decode_message(golden.TWIN_GET)
    assert m.message_annotations == {Symbol("operation"): "GET"}
    assert all(type(k) is Symbol for k in m.message_annotations)
    assert m.body == [Data(b" ")] and m.data == b" "
    assert m.properties.correlation_id == "e55bdabc-9f90-41d9-a7d5-d9029b428ac0"


def test_telemetry_content_type_and_encoding_are_symbols():
    m = decode_message(golden.TELEMETRY)
    assert m.properties.message_id == "mid-1"
    assert m.properties.content_type == Symbol("application/json")
    assert type(m.properties.content_type) is Symbol
    assert type(m.properties.content_encoding) is Symbol
    assert m.application_properties == {"alert": "yes", "iothub-outputname": "out1"}
    assert m.data == b'{"temp":20}'


def test_method_ids_are_uuids_and_status_an_int():
    request = decode_message(golden.METHOD_REQUEST)
    response = decode_message(golden.METHOD_RESPONSE)
    assert isinstance(request.properties.correlation_id, uuid.UUID)
    assert response.properties.correlation_id == request.properties.correlation_id
    assert type(response.application_properties["IoThub-status"]) is Int
    # Echoed back, the uuid keeps its type code 0x98.
    echo = encode_message(Message(properties=Properties(
        correlation_id=response.properties.correlation_id)))
    assert b"\x98" + request.properties.correlation_id.bytes in echo


def test_desired_push_and_patch():
    push = decode_message(golden.DESIRED_PUSH)
    assert push.message_annotations == {Symbol("version"): Long(3)}
    assert push.properties == Properties()  # sent as list0
    patch = decode_message(golden.TWIN_PATCH)
    assert patch.message_annotations[Symbol("resource")] == "/properties/reported"
    assert patch.data == b'{"fw":"1.2.1","weather":{"t":72}}'


@pytest.mark.parametrize("payload", [golden.CBS_PUT_TOKEN, golden.CBS_REPLY, golden.TWIN_GET,
                                     golden.TWIN_PATCH, golden.TELEMETRY, golden.DESIRED_PUSH,
                                     golden.METHOD_REQUEST, golden.METHOD_RESPONSE])
def test_golden_messages_round_trip(payload):
    m = decode_message(payload)
    assert decode_message(encode_message(m)) == m


def test_every_section_round_trips():
    m = Message(
        header=Header(durable=True, priority=4, ttl=1000),
        delivery_annotations={Symbol("x-opt-lock"): b"t"},
        message_annotations={Symbol("x-opt-sequence-number"): Long(7),
                             Symbol("x-opt-offset"): "10",
                             Symbol("x-opt-enqueued-time"): Timestamp(1796538111000)},
        properties=Properties(message_id=ULong(0), content_type="application/json",
                              creation_time=1796538111000, group_sequence=2),
        application_properties={"$.mid": "c2d-1", "n": Int(3)},
        body=[Data(b"a"), Data(b"b")],
        footer={Symbol("f"): True},
    )
    back = decode_message(encode_message(m))
    assert back.data == b"ab"
    assert type(back.properties.content_type) is Symbol
    assert type(back.properties.creation_time) is Timestamp
    assert back.message_annotations == m.message_annotations
    assert back == decode_message(encode_message(back))
    for body in (Value({"a": [1, 2]}), [Sequence([1, "x"]), Sequence([])], []):
        assert decode_message(encode_message(Message(body=body))).body == body


@pytest.mark.parametrize("wire", [
    b"\x00\x53\x77\x40\x00\x53\x77\x40",        # two amqp-value sections
    b"\x00\x53\x75\xa0\x00\x00\x53\x77\x40",    # data mixed with value
    b"\x00\x53\x73\x45\x00\x53\x70\x45",        # properties before header
    b"\x00\x53\x79\x40",                        # unknown section
    b"\x00\x53\x72\x40",                        # annotations that are not a map
    b"\x00\x53\x75\xa1\x00",                    # data section holding a string
    b"\x40",                                    # not a section at all
])
def test_malformed_messages_raise(wire):
    with pytest.raises(AmqpDecodeError):
        decode_message(wire)
