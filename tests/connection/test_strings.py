from __future__ import annotations

import base64

import pytest
from azure.iot.device.common.auth import connection_string as device_sdk_cs
from azure.iot.hub import connection_string as hub_sdk_cs

from twin_explorer.connection import strings
from twin_explorer.connection.sas import generate_device_token
from twin_explorer.connection.strings import ConnectionString, ConnectionStringError, parse

# Fixed keys; lengths chosen so the base64 ends in padding ('=' inside the value).
KEY = base64.b64encode(bytes(range(250, 256)) + bytes(range(100, 128))).decode()
OTHER_KEY = base64.b64encode(bytes(range(40, 56))).decode()


def test_service_string():
    cs = parse(
        f"HostName=hub.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey={KEY}"
    )
    assert cs.kind == "service"
    assert cs.host_name == cs.host == "hub.azure-devices.net"
    assert cs.port is None
    assert cs.shared_access_key_name == "iothubowner"
    assert cs.shared_access_key == KEY
    assert cs.device_id is cs.module_id is cs.gateway_host_name is None
    assert cs.x509 is False


def test_service_string_with_port_keeps_it_in_host_name():
    cs = parse(f"HostName=localhost:8443;SharedAccessKeyName=service;SharedAccessKey={KEY}")
    assert cs.host_name == "localhost:8443"
    assert (cs.host, cs.port) == ("localhost", 8443)


def test_ipv6_host_with_port():
    cs = parse(f"HostName=[::1]:8443;SharedAccessKeyName=service;SharedAccessKey={KEY}")
    assert (cs.host, cs.port) == ("[::1]", 8443)


def test_device_string():
    cs = parse(f"HostName=hub.example;DeviceId=d1;SharedAccessKey={KEY}")
    assert cs.kind == "device"
    assert (cs.device_id, cs.module_id) == ("d1", None)


def test_module_string_with_gateway():
    cs = parse(
        f"HostName=hub.example;DeviceId=d1;ModuleId=m1;SharedAccessKey={KEY};GatewayHostName=localhost"
    )
    assert cs.kind == "module"
    assert (cs.device_id, cs.module_id, cs.gateway_host_name) == ("d1", "m1", "localhost")


def test_x509_marker():
    cs = parse("HostName=hub.example;DeviceId=d1;x509=true")
    assert cs.x509 is True
    assert cs.shared_access_key is None
    assert strings.format(cs) == "HostName=hub.example;DeviceId=d1;x509=true"


def test_shared_access_signature_string():
    token = generate_device_token("hub.example/devices/d1", KEY, now=1_700_000_000)
    cs = parse(f"HostName=hub.example;DeviceId=d1;SharedAccessSignature={token}")
    assert cs.shared_access_signature == token
    assert parse(str(cs)) == cs


def test_policy_key_device_string():
    cs = parse(f"HostName=h;DeviceId=d1;SharedAccessKeyName=device;SharedAccessKey={KEY}")
    assert cs.kind == "device"
    assert cs.shared_access_key_name == "device"


def test_padding_survives_first_equals_split():
    cs = parse(f"HostName=h;DeviceId=d=1;SharedAccessKey={KEY}")
    assert cs.shared_access_key == KEY and cs.shared_access_key.endswith("=")
    assert cs.device_id == "d=1"


@pytest.mark.parametrize(
    "text",
    [
        f"  HostName=h;DeviceId=d1;SharedAccessKey={KEY};  ",
        f"HostName=h ; DeviceId=d1 ;\n SharedAccessKey={KEY};\n",
        f"HostName=h;;DeviceId=d1;SharedAccessKey={KEY};;",
    ],
)
def test_whitespace_empty_parts_and_trailing_semicolon_are_tolerated(text):
    assert str(parse(text)) == f"HostName=h;DeviceId=d1;SharedAccessKey={KEY}"


def test_canonical_order_matches_reference_table():
    cs = parse(f"SharedAccessKey={KEY};ModuleId=m1;GatewayHostName=gw;DeviceId=d1;HostName=h")
    assert (
        strings.format(cs)
        == f"HostName=h;DeviceId=d1;ModuleId=m1;SharedAccessKey={KEY};GatewayHostName=gw"
    )
    assert str(cs) == strings.format(cs)


@pytest.mark.parametrize(
    "text",
    [
        f"HostName=h;SharedAccessKeyName=iothubowner;SharedAccessKey={KEY}",
        f"HostName=h;DeviceId=d1;SharedAccessKey={KEY}",
        f"HostName=h;DeviceId=d1;ModuleId=m1;SharedAccessKey={KEY}",
        f"HostName=h;DeviceId=d1;ModuleId=m1;SharedAccessKey={KEY};GatewayHostName=gw",
    ],
)
def test_canonical_form_is_accepted_by_both_sdk_parsers(text):
    out = str(parse(text))
    assert out == text
    for sdk in (hub_sdk_cs, device_sdk_cs):
        parsed = sdk.ConnectionString(out)
        assert parsed["HostName"] == "h"
        assert parsed["SharedAccessKey"] == KEY


def test_repr_masks_key_and_signature():
    cs = parse(f"HostName=h;SharedAccessKeyName=iothubowner;SharedAccessKey={KEY}")
    assert KEY not in repr(cs)
    assert "SharedAccessKey=****" in repr(cs)
    assert "iothubowner" in repr(cs)
    token = generate_device_token("h/devices/d1", KEY, now=1_700_000_000)
    sig_cs = parse(f"HostName=h;DeviceId=d1;SharedAccessSignature={token}")
    assert "sig=" not in repr(sig_cs)
    assert sig_cs.masked() == "HostName=h;DeviceId=d1;SharedAccessSignature=****"
    assert KEY not in repr([cs])  # reprs of containers, e.g. in tracebacks


def test_frozen():
    cs = parse(f"HostName=h;DeviceId=d1;SharedAccessKey={KEY}")
    with pytest.raises(AttributeError):
        cs.host_name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the connection string is empty"),
        (" ;; ", "the connection string is empty"),
        (f"DeviceId=d1;SharedAccessKey={KEY}", "the connection string has no HostName"),
        (f"HostName=h;DeviceId=d1;SharedAccessKey={KEY};Foo=bar", "unknown part 'Foo'"),
        (f"hostname=h;DeviceId=d1;SharedAccessKey={KEY}", "did you mean 'HostName'"),
        (
            f"HostName=h;HostName=i;DeviceId=d1;SharedAccessKey={KEY}",
            "HostName appears more than once",
        ),
        (
            f"HostName=h;DeviceId=d1;SharedAccessKey={KEY};SharedAccessKey={KEY}",
            "SharedAccessKey appears more than once",
        ),
        (f"HostName=h;DeviceId=;SharedAccessKey={KEY}", "DeviceId is empty"),
        ("HostName=h;DeviceId=d1;justtext", "part 3 of the connection string has no '='"),
        (
            f"HostName=h;DeviceId=d1;SharedAccessKey={KEY[:-2]}",
            "SharedAccessKey is not valid base64",
        ),
        (f"HostName=h;DeviceId=d1;SharedAccessKey={KEY}!", "SharedAccessKey is not valid base64"),
        (
            f"HostName=h;SharedAccessKey={KEY}",
            "a service connection string needs SharedAccessKeyName",
        ),
        (
            "HostName=h;SharedAccessKeyName=iothubowner",
            "a service connection string needs SharedAccessKey",
        ),
        ("HostName=h", "neither DeviceId nor SharedAccessKeyName"),
        (
            f"HostName=h;ModuleId=m1;SharedAccessKey={KEY}",
            "a module connection string needs DeviceId",
        ),
        ("HostName=h;DeviceId=d1", "a device connection string needs SharedAccessKey"),
        ("HostName=h;DeviceId=d1;ModuleId=m1", "a module connection string needs SharedAccessKey"),
        (f"HostName=h;DeviceId=d1;SharedAccessKey={KEY};x509=true", "cannot use both x509"),
        ("HostName=h;DeviceId=d1;x509=yes", "x509 must be 'true' or 'false'"),
        ("HostName=h;SharedAccessKeyName=p;x509=true", "x509 is only for device and module"),
        (f"HostName=h:8883;DeviceId=d1;SharedAccessKey={KEY}", "cannot have a port in HostName"),
        (
            f"HostName=h;DeviceId=d1;SharedAccessKey={KEY};GatewayHostName=gw:1",
            "cannot have a port in GatewayHostName",
        ),
        (f"HostName=h:99999;SharedAccessKeyName=p;SharedAccessKey={KEY}", "between 1 and 65535"),
        (
            f"HostName=h:abc;SharedAccessKeyName=p;SharedAccessKey={KEY}",
            "port after ':' is not a number",
        ),
        (f"HostName=h b;SharedAccessKeyName=p;SharedAccessKey={KEY}", "may only hold letters"),
        (f"HostName=https://h;SharedAccessKeyName=p;SharedAccessKey={KEY}", "HostName"),
        (f"HostName=h;DeviceId=a/b;SharedAccessKey={KEY}", "DeviceId must be 1 to 128"),
        (f"HostName=h;DeviceId={'d' * 129};SharedAccessKey={KEY}", "DeviceId must be 1 to 128"),
        ("HostName=h;DeviceId=d1;SharedAccessKeyName=device", "SharedAccessKey"),
        (
            f"HostName=h;DeviceId=d1;SharedAccessKey={KEY};"
            "SharedAccessSignature=SharedAccessSignature sr=h&sig=abc&se=1",
            "not both",
        ),
        ("HostName=h;DeviceId=d1;SharedAccessSignature=sig=abc", "not a SharedAccessSignature"),
        (
            "HostName=h;DeviceId=d1;SharedAccessSignature=SharedAccessSignature sr=h&sig=abc",
            "missing se",
        ),
    ],
)
def test_rejections_say_why_in_plain_words_without_secrets(text, message):
    with pytest.raises(ConnectionStringError) as info:
        parse(text)
    assert message in str(info.value)
    assert KEY not in str(info.value)
    assert KEY[:16] not in str(info.value)
    assert "sig=abc" not in str(info.value) and "abc" not in str(info.value)


def test_a_pasted_key_as_a_part_name_is_never_echoed():
    # "key=..." where the "name" is most of a base64 key: must not come back in the message.
    with pytest.raises(ConnectionStringError) as info:
        parse(f"HostName=h;DeviceId=d1;{OTHER_KEY}")
    assert OTHER_KEY.rstrip("=") not in str(info.value)
    assert "not a known part" in str(info.value)


def test_connection_string_error_is_a_value_error():
    assert issubclass(ConnectionStringError, ValueError)
    with pytest.raises(ValueError):
        parse("nonsense")


def test_non_text_is_rejected_plainly():
    with pytest.raises(ConnectionStringError, match="must be text"):
        parse(None)  # type: ignore[arg-type]


def test_build_helpers():
    assert strings.build_device("h", "d1", KEY) == f"HostName=h;DeviceId=d1;SharedAccessKey={KEY}"
    assert (
        strings.build_module("h", "d1", "m1", KEY, gateway_host="gw")
        == f"HostName=h;DeviceId=d1;ModuleId=m1;SharedAccessKey={KEY};GatewayHostName=gw"
    )
    assert (
        strings.build_service("localhost:8443", "iothubowner", KEY)
        == f"HostName=localhost:8443;SharedAccessKeyName=iothubowner;SharedAccessKey={KEY}"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("h", "d1;ModuleId=x", KEY), "DeviceId contains ';'"),
        (("h", " d1", KEY), "DeviceId contains ';' or surrounding spaces"),
        (("h", "d1", "not base64"), "SharedAccessKey is not valid base64"),
        (("h:8883", "d1", KEY), "cannot have a port"),
    ],
)
def test_build_rejects_values_that_would_change_meaning(args, message):
    with pytest.raises(ConnectionStringError) as info:
        strings.build_device(*args)
    assert message in str(info.value)
    assert KEY not in str(info.value)


def test_dataclass_construction_and_equality():
    cs = ConnectionString(host_name="h", device_id="d1", shared_access_key=KEY)
    assert cs == parse(f"HostName=h;DeviceId=d1;SharedAccessKey={KEY}")
    assert cs.kind == "device"
