from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote

import pytest
from azure.iot.device.common.auth.sastoken import RenewableSasToken
from azure.iot.device.common.auth.signing_mechanism import SymmetricKeySigningMechanism
from azure.iot.device.iothub.abstract_clients import _form_sas_uri
from azure.iot.hub.auth import ConnectionStringAuthentication
from azure.iot.hub.sastoken import SasToken as HubSasToken
from hypothesis import given, settings
from hypothesis import strategies as st

from twin_explorer.connection import sas
from twin_explorer.connection.sas import (
    BadSignature,
    ExpiredToken,
    SasTokenError,
    generate_device_token,
    generate_service_token,
    parse_token,
    resource_matches,
    verify_token,
)

# 32 bytes whose base64 holds '+', '/' and '=': exercises every quoting difference.
KEY = base64.b64encode(bytes(range(250, 256)) + bytes(range(100, 126))).decode()
SECOND_KEY = base64.b64encode(bytes(range(32))).decode()
# Chosen so the signatures below contain '+' and '/', where the SDKs' quoting differs.
NOW = 1_700_000_011.0


def _expected_sig(resource_encoded: str, expiry: int, key: str = KEY) -> str:
    digest = hmac.new(
        base64.b64decode(key), f"{resource_encoded}\n{expiry}".encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode()


# -- generation: fixed vectors -----------------------------------------------------------


def test_service_token_fixed_vector_b2_shape():
    token = generate_service_token("localhost:8443", "iothubowner", KEY, now=NOW)
    sig = _expected_sig("localhost%3A8443", 1_700_003_611)
    assert token == (
        "SharedAccessSignature sr=localhost%3A8443"
        f"&sig={quote(sig, safe='/')}&se=1700003611&skn=iothubowner"
    )
    assert token == (
        "SharedAccessSignature sr=localhost%3A8443"
        "&sig=warczxQVoNQ/C7XlLYv4BYVUQk5PzbcgH4R1Sd5%2BG4M%3D&se=1700003611&skn=iothubowner"
    )


def test_device_token_fixed_vector_a3_shape():
    token = generate_device_token("localhost/devices/d1/modules/m1", KEY, ttl=60, now=NOW)
    sig = _expected_sig("localhost%2Fdevices%2Fd1%2Fmodules%2Fm1", 1_700_000_071)
    assert token == (
        "SharedAccessSignature sr=localhost%2Fdevices%2Fd1%2Fmodules%2Fm1"
        f"&sig={quote(sig, safe='')}&se=1700000071"
    )
    assert "skn=" not in token
    assert "/" not in token.split("sig=")[1]  # A.3: '/' is %2F in a device signature


def test_policy_signed_device_token_appends_skn():
    token = generate_device_token("h/devices/d1", KEY, now=NOW, policy="device")
    assert token.endswith("&se=1700003611&skn=device")


def test_expiry_truncates_like_the_sdks():
    token = generate_device_token("h/devices/d1", KEY, ttl=10, now=1_700_000_000.9)
    assert parse_token(token).expiry == 1_700_000_010


def test_bad_key_is_a_plain_error():
    with pytest.raises(SasTokenError, match="not valid base64"):
        generate_service_token("h", "p", "not base64!", now=NOW)


# -- generation: cross-checked against the SDKs' own token classes ------------------------
# The SDKs read time.time(); building ours with now = their se - ttl reproduces their clock.


@pytest.mark.parametrize("host", ["hub.azure-devices.net", "localhost:8443", "127.0.0.1:1"])
def test_service_token_matches_azure_iot_hub(host):
    theirs = str(HubSasToken(host, KEY, "iothubowner", ttl=3600))
    expiry = parse_token(theirs).expiry
    assert generate_service_token(host, "iothubowner", KEY, now=expiry - 3600) == theirs


def test_service_token_matches_the_hub_sdk_authorization_header():
    auth = ConnectionStringAuthentication(
        f"HostName=localhost:8443;SharedAccessKeyName=registryRead;SharedAccessKey={KEY}"
    )
    header = auth.signed_session().headers["Authorization"]
    expiry = parse_token(header).expiry
    mine = generate_service_token("localhost:8443", "registryRead", KEY, now=expiry - 3600)
    assert mine == header


@pytest.mark.parametrize(("device", "module"), [("d1", None), ("d1", "m1"), ("a:b@c", "m-1.x")])
@pytest.mark.parametrize("policy", [None, "device"])
def test_device_token_matches_azure_iot_device(device, module, policy):
    uri = _form_sas_uri("hub.example", device, module)
    assert sas.device_resource_uri("hub.example", device, module) == uri
    theirs = str(
        RenewableSasToken(uri, SymmetricKeySigningMechanism(KEY), key_name=policy, ttl=123)
    )
    expiry = parse_token(theirs).expiry
    assert generate_device_token(uri, KEY, ttl=123, now=expiry - 123, policy=policy) == theirs


# -- parsing -------------------------------------------------------------------------------


def test_parse_service_token():
    token = parse_token(generate_service_token("localhost:8443", "iothubowner", KEY, now=NOW))
    assert token.resource == "localhost:8443"
    assert token.raw_resource == "localhost%3A8443"
    assert token.expiry == 1_700_003_611
    assert token.key_name == "iothubowner"
    assert token.signature == _expected_sig("localhost%3A8443", 1_700_003_611)
    assert token.signature not in repr(token)


def test_parse_device_token_has_no_key_name():
    token = parse_token(generate_device_token("h/devices/d1", KEY, now=NOW))
    assert (token.resource, token.raw_resource) == ("h/devices/d1", "h%2Fdevices%2Fd1")
    assert token.key_name is None


def test_parse_tolerates_field_order_and_outer_whitespace():
    token = parse_token("  SharedAccessSignature se=5&skn=p&sig=abc%3D&sr=h  ")
    assert (token.resource, token.signature, token.expiry, token.key_name) == ("h", "abc=", 5, "p")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not a SharedAccessSignature"),
        ("sr=h&sig=abc&se=1", "not a SharedAccessSignature"),
        ("Bearer sr=h&sig=abc&se=1", "not a SharedAccessSignature"),
        ("SharedAccessSignature sr=h&sig=abc", "missing se"),
        ("SharedAccessSignature sig=abc&se=1", "missing sr"),
        ("SharedAccessSignature sr=h&se=1", "missing sig"),
        ("SharedAccessSignature sr=h&sig=&se=1", "missing sig"),
        ("SharedAccessSignature sr=h&sig=abc&se=soon", "se is not a whole number"),
        ("SharedAccessSignature sr=h&sig=abc&se=-1", "se is not a whole number"),
        ("SharedAccessSignature sr=h&sig=abc&se=1&se=2", "se twice"),
        ("SharedAccessSignature sr=h&sig=abc&se=1&foo=x", "unknown field 'foo'"),
        ("SharedAccessSignature sr=h&sig=abc&se=1&abc", "not of the form name=value"),
    ],
)
def test_parse_rejections(text, message):
    with pytest.raises(SasTokenError) as info:
        parse_token(text)
    assert message in str(info.value)
    assert "abc" not in str(info.value)


# -- verification --------------------------------------------------------------------------


def test_verify_accepts_sdk_tokens_with_primary_or_secondary_key():
    service = parse_token(str(HubSasToken("localhost:8443", KEY, "iothubowner")))
    device = parse_token(
        str(RenewableSasToken("h/devices/d1/modules/m1", SymmetricKeySigningMechanism(KEY)))
    )
    for token in (service, device):
        verify_token(token, [KEY, SECOND_KEY])
        verify_token(token, [SECOND_KEY, KEY])
        verify_token(token, ["not base64!", KEY])  # a damaged key does not lock out the other


def test_verify_rejects_wrong_key():
    token = parse_token(generate_device_token("h/devices/d1", KEY, now=NOW))
    with pytest.raises(BadSignature):
        verify_token(token, [SECOND_KEY], now=NOW)
    with pytest.raises(BadSignature):
        verify_token(token, [], now=NOW)


def test_verify_rejects_expired_and_expiry_boundary():
    token = parse_token(generate_device_token("h/devices/d1", KEY, ttl=60, now=NOW))
    verify_token(token, [KEY], now=NOW + 59)
    with pytest.raises(ExpiredToken, match="expired"):
        verify_token(token, [KEY], now=NOW + 60)
    with pytest.raises(ExpiredToken):
        verify_token(token, [KEY], now=NOW + 10_000)


def _tamper(token: str, field: str, value: str) -> str:
    head, body = token.split(" ", 1)
    parts = dict(p.split("=", 1) for p in body.split("&"))
    parts[field] = value
    return head + " " + "&".join(f"{k}={v}" for k, v in parts.items())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("se", "1700009999"),  # extended lifetime
        ("sr", "h%2Fdevices%2Fd2"),  # another device
        ("sig", quote(base64.b64encode(b"x" * 32).decode(), safe="")),
        ("sig", "!!!not-base64"),
    ],
)
def test_verify_rejects_tampered_tokens(field, value):
    good = generate_device_token("h/devices/d1", KEY, now=NOW)
    token = parse_token(_tamper(good, field, value))
    with pytest.raises(BadSignature):
        verify_token(token, [KEY], now=NOW)


def test_verify_rejects_flipped_signature_bit():
    token = parse_token(generate_device_token("h/devices/d1", KEY, now=NOW))
    raw = bytearray(base64.b64decode(token.signature))
    raw[0] ^= 1
    forged = sas.SasToken(
        token.resource, token.raw_resource, base64.b64encode(raw).decode(), token.expiry, None
    )
    with pytest.raises(BadSignature):
        verify_token(forged, [KEY], now=NOW)


@pytest.mark.parametrize(
    "signed_form",
    [
        "h%2fdevices%2fd1",  # lower-case hex, as the docs describe
        "h/devices/d1",  # unencoded, as the hub SDK's AMQP client signs
        "h%2Fdevices%2Fd1",  # upper-case, as Python emits
    ],
)
@pytest.mark.parametrize("sent_form", ["h%2fdevices%2fd1", "h%2Fdevices%2Fd1", "h/devices/d1"])
def test_verify_is_lenient_about_resource_encoding(signed_form, sent_form):
    sig = quote(_expected_sig(signed_form, 1_700_003_611), safe="")
    token = parse_token(f"SharedAccessSignature sr={sent_form}&sig={sig}&se=1700003611")
    verify_token(token, [KEY], now=NOW)
    assert token.resource == "h/devices/d1"


def test_verify_service_sig_with_literal_slash_and_quote_plus_resource():
    token = generate_service_token("localhost:8443", "iothubowner", KEY, now=NOW)
    assert "/" in token.split("sig=")[1].split("&")[0]  # B.2: '/' left literal
    verify_token(parse_token(token), [KEY], now=NOW)


@settings(max_examples=60, deadline=None)
@given(
    key=st.binary(min_size=16, max_size=64),
    device=st.text(
        st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="/"),
        min_size=1,
        max_size=20,
    ),
    ttl=st.integers(min_value=1, max_value=10**6),
)
def test_generated_device_tokens_verify_and_cover_their_identity(key, device, ttl):
    key_b64 = base64.b64encode(key).decode()
    uri = sas.device_resource_uri("Hub.Example", device, "m1")
    token = parse_token(generate_device_token(uri, key_b64, ttl=ttl, now=NOW))
    assert token.resource == uri
    verify_token(token, [key_b64], now=NOW)
    assert resource_matches(token.resource, f"hub.example/devices/{device}/modules/m1")


# -- resource matching (D.3) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("have", "want", "expected"),
    [
        ("h/devices/d1", "h/devices/d1", True),
        ("h/devices/d1", "h/devices/d1/modules/m1", True),
        ("h/devices/d1/", "h/devices/d1/modules/m1", True),
        ("h", "h/devices/d1/modules/m1", True),
        ("h/devices/d1", "h/devices/d10", False),
        ("/a/b", "/a/b/c", True),
        ("/a/b", "/a/bc", False),
        ("h/devices/d1/modules/m1", "h/devices/d1", False),
        ("h/devices/d1/modules/m1", "h/devices/d1/modules/m2", False),
        ("h/devices/D1", "h/devices/d1", False),  # ids are case-sensitive
        ("HUB.Example/devices/d1", "hub.example/devices/d1", True),
        ("localhost:8443", "localhost/devices/d1", True),
        ("localhost", "localhost:8443/devices/d1", True),
        ("localhost:8443", "localhost:8443", True),
        ("localhost:8443", "localhost:9443", False),
        ("other/devices/d1", "h/devices/d1", False),
        ("h.example", "h.example.evil/devices/d1", False),
        ("https://h/devices/d1", "h/devices/d1/modules/m", True),
        ("[::1]:8443", "[::1]/devices/d1", True),
        ("h:bad/devices/d1", "h/devices/d1", False),
        ("", "h", False),
    ],
)
def test_resource_matches(have, want, expected):
    assert resource_matches(have, want) is expected


def test_generate_key_is_32_random_bytes():
    keys = {sas.generate_key() for _ in range(20)}
    assert len(keys) == 20
    for key in keys:
        assert len(base64.b64decode(key, validate=True)) == 32
        assert len(key) == 44


def test_event_hubs_tokens_sign_with_the_key_text_and_pass_only_when_asked():
    # azure-eventhub (pyamqp) HMACs with the key's text, not its base64-decoded bytes.
    from azure.eventhub._pyamqp.utils import generate_sas_token

    key = base64.b64encode(b"k" * 32).decode()
    text = generate_sas_token("sb://localhost/hub", "service", key, expiry=4_000_000_000)
    token = parse_token(text)
    verify_token(token, [key], now=0, text_keys=True)
    with pytest.raises(BadSignature):
        verify_token(token, [key], now=0)
